#!/usr/bin/env node
// web/clarion.js (the demo's browser client) under Node, with the `ws`
// package standing in for the browser's WebSocket, against `clarion serve`:
//
//     node clarion_js_check.js BASE_URL API_KEY TOKEN
//
// TOKEN is a connection token for user `jsuser`. Checks, in order:
//   subscribe   connect with the token and subscribe to chat:js
//   live        a publication made through the server API arrives
//   reconnect   after the API disconnects jsuser with 4005 (reconnect),
//               the client comes back by itself (backoff with jitter)
//   recover     publications made while it was away arrive, in order, from
//               the subscribe reply (`recovered: true`), and none twice
// Prints `PASS name` / `FAIL name: reason`, then `N passed, M failed`.
'use strict';

const path = require('path');

globalThis.WebSocket = require('ws');
require(path.join(__dirname, '..', '..', '..', 'web', 'clarion.js'));
const Clarion = globalThis.Clarion;

const STEP_TIMEOUT_MS = 10000;

function until(predicate, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (predicate()) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() - started > STEP_TIMEOUT_MS) {
        clearInterval(timer);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 10);
  });
}

async function main() {
  const [base, apiKey, token] = process.argv.slice(2);
  if (!base || !apiKey || !token) {
    console.error('usage: node clarion_js_check.js BASE_URL API_KEY TOKEN');
    return 2;
  }
  const api = async (method, body) => {
    const response = await fetch(`${base}/api/${method}`, {
      method: 'POST',
      headers: { authorization: `apikey ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`${method}: ${response.status} ${JSON.stringify(json)}`);
    return json.result;
  };
  const wsUrl = base.replace(/^http/, 'ws') + '/connection/websocket';
  const client = new Clarion(wsUrl, { token, minDelay: 100, maxDelay: 1000 });
  const received = [];
  const subscribed = [];
  let reconnects = 0;
  client.on('reconnecting', () => reconnects++);
  client.subscribe('chat:js', {
    publication: (pub) => received.push(pub),
    subscribed: (result) => subscribed.push(result),
  });
  const results = [];
  const check = async (name, step) => {
    if (results.some((r) => !r.ok)) {
      results.push({ name, ok: false, reason: 'skipped after an earlier failure' });
      return;
    }
    try {
      await step();
      results.push({ name, ok: true });
    } catch (e) {
      results.push({ name, ok: false, reason: String(e && e.message ? e.message : e) });
    }
  };
  client.connect();
  await check('subscribe', () => until(() => subscribed.length === 1, 'the subscribe reply'));
  await check('live', async () => {
    await api('publish', { channel: 'chat:js', data: { n: 1 } });
    await until(() => received.length === 1, 'publication 1');
    if (received[0].offset !== 1) throw new Error(`offset ${received[0].offset}`);
  });
  await check('reconnect', async () => {
    const firstClient = client.clientId;
    const gone = await api('disconnect', { user: 'jsuser', reconnect: true });
    if (gone.disconnected !== 1) throw new Error(`disconnected ${gone.disconnected}`);
    // Published while the client is away (or reconnecting).
    await api('publish', { channel: 'chat:js', data: { n: 2 } });
    await api('publish', { channel: 'chat:js', data: { n: 3 } });
    await until(() => client.state === 'connected' && client.clientId !== firstClient, 'a new session');
    if (reconnects < 1) throw new Error('no reconnect was scheduled');
  });
  await check('recover', async () => {
    await until(() => subscribed.length === 2, 'the resubscribe reply');
    const again = subscribed[1];
    if (again.recovered !== true) throw new Error(`resubscribe: ${JSON.stringify(again)}`);
    await until(() => received.length >= 3, 'publications 2 and 3');
    const ns = received.map((p) => p.data.n);
    if (JSON.stringify(ns) !== '[1,2,3]') throw new Error(`received n = ${JSON.stringify(ns)}`);
  });
  client.disconnect();
  let passed = 0;
  let failed = 0;
  for (const r of results) {
    if (r.ok) passed++;
    else failed++;
    console.log(r.ok ? `PASS ${r.name}` : `FAIL ${r.name}: ${r.reason}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then(
  (status) => process.exit(status),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
