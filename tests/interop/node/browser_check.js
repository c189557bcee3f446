#!/usr/bin/env node
// Headless Chromium against a WebSocket echo server (see ../README.md,
// "Browser check").
//
//     node browser_check.js ws://HOST:PORT/PATH
//
// Launches Debian's /usr/bin/chromium through playwright-core (never a
// browser that playwright downloads), with a fresh temporary profile, opens
// a blank page served from 127.0.0.1 and runs one WebSocket session in it
// against URL: text and
// binary round trips (1 MiB messages among them), the negotiated extensions
// (Chromium offers permessage-deflate by default), and a close with 4000.
//
// Prints `PASS name` or `FAIL name: reason` per check, then
// `N passed, M failed`; exits 0 only when every check passed, 1 otherwise,
// 2 on bad arguments.
'use strict';

const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const LAUNCH_TIMEOUT_MS = 60000;
// Time for one step inside the page (a round trip, the close handshake).
const STEP_TIMEOUT_MS = 15000;
// Time for the whole session in the page.
const SESSION_TIMEOUT_MS = 90000;

// The checks, in the order the page runs them.
const CHECKS = ['open', 'extensions', 'text', 'binary', 'big-binary', 'big-text', 'close'];

// A blank page, served from 127.0.0.1. Chromium's Local Network Access
// checks block a page of a public or opaque origin (about:blank, say) from
// connecting to a loopback address (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS);
// a page served from loopback may, as a page served by the server's own
// host would in production.
async function servePage() {
  const server = http.createServer((request, response) => {
    response.setHeader('content-type', 'text/html; charset=utf-8');
    response.end('<!doctype html><title>clarion browser check</title>');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return server;
}

function usage(message) {
  process.stderr.write(`browser_check.js: ${message}\nusage: node browser_check.js ws://HOST:PORT/PATH\n`);
  process.exit(2);
}

// Runs inside the page: one WebSocket session, a result per check. Only
// browser APIs here (playwright serialises this function into the page).
async function session({ url, checks, stepTimeoutMs }) {
  const results = [];
  const record = (name, reason) => results.push({ name, ok: reason === null, reason });
  const events = [];
  let wake = null;
  const push = (event) => {
    events.push(event);
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  };
  const next = async (what) => {
    const deadline = Date.now() + stepTimeoutMs;
    while (events.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${stepTimeoutMs / 1000} s waiting for ${what}`);
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, left);
      });
    }
    return events.shift();
  };
  const describe = (data) => {
    if (typeof data === 'string') {
      return `text ${JSON.stringify(data.slice(0, 40))}${data.length > 40 ? '...' : ''} (${data.length} chars)`;
    }
    return `binary (${data.byteLength} bytes)`;
  };
  const same = (got, want) => {
    if (typeof want === 'string') return got === want;
    if (!(got instanceof ArrayBuffer) || got.byteLength !== want.byteLength) return false;
    const a = new Uint8Array(got);
    const b = new Uint8Array(want);
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  };
  const recv = async () => {
    const e = await next('a message');
    if (e.type === 'message') return e.data;
    if (e.type === 'close') throw new Error(`connection closed (${e.code} ${JSON.stringify(e.reason)}) while waiting for a message`);
    throw new Error(`error event while waiting for a message`);
  };
  const roundTrip = async (messages) => {
    for (const message of messages) {
      ws.send(message);
      const got = await recv();
      if (!same(got, message)) throw new Error(`sent ${describe(message)}, got back ${describe(got)}`);
    }
  };
  const run = async (name, body) => {
    try {
      await body();
      record(name, null);
    } catch (e) {
      record(name, String(e && e.message ? e.message : e));
    }
  };
  const bigBinary = () => {
    const bytes = new Uint8Array(1 << 20);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
    return bytes.buffer;
  };
  const bigText = () => {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz';
    return alphabet.repeat(Math.ceil((1 << 20) / 26)).slice(0, 1 << 20);
  };

  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => push({ type: 'open' });
  ws.onmessage = (e) => push({ type: 'message', data: e.data });
  ws.onclose = (e) => push({ type: 'close', code: e.code, reason: e.reason });
  ws.onerror = () => push({ type: 'error' });

  await run('open', async () => {
    const e = await next('the handshake');
    if (e.type !== 'open') throw new Error(`${e.type} event instead of open${e.code ? ` (close code ${e.code})` : ''}`);
  });
  if (ws.readyState !== WebSocket.OPEN) {
    for (const name of checks.slice(1)) record(name, 'not connected');
    return results;
  }
  await run('extensions', async () => {
    if (!ws.extensions.split(/[,;]/).some((e) => e.trim() === 'permessage-deflate')) {
      throw new Error(`extensions ${JSON.stringify(ws.extensions)} do not include permessage-deflate`);
    }
  });
  await run('text', () => roundTrip(['hello', 'héllo wörld ✓ 😀']));
  await run('binary', () => roundTrip([new Uint8Array([...Array(256).keys()]).buffer]));
  await run('big-binary', () => roundTrip([bigBinary()]));
  await run('big-text', () => roundTrip([bigText()]));
  await run('close', async () => {
    ws.close(4000, 'done');
    for (;;) {
      const e = await next('the close');
      if (e.type === 'error') continue; // a failed close shows as close 1006 next
      if (e.type !== 'close') throw new Error(`expected the close, got a ${e.type}`);
      // CloseEvent.code is the code of the close frame received back.
      if (e.code !== 4000) throw new Error(`server's close code ${e.code}, want 4000`);
      return;
    }
  });
  return results;
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length !== 1 || !/^wss?:\/\//.test(argv[0])) usage('one ws:// or wss:// URL is required');
  const url = argv[0];
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`FAIL browser: ${CHROMIUM} is missing: install Debian's chromium (scripts/install-test-deps.sh)`);
    console.log(`0 passed, 1 failed`);
    return 1;
  }
  // Required here, not at the top: a missing module is reported like a missing browser.
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'clarion-chromium-'));
  let context = null;
  let pageServer = null;
  let results;
  try {
    pageServer = await servePage();
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: LAUNCH_TIMEOUT_MS,
    });
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (m) => process.stderr.write(`browser console: ${m.text()}\n`));
    await page.goto(`http://127.0.0.1:${pageServer.address().port}/`);
    const run = page.evaluate(session, { url, checks: CHECKS, stepTimeoutMs: STEP_TIMEOUT_MS });
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the page's session took over ${SESSION_TIMEOUT_MS / 1000} s`)), SESSION_TIMEOUT_MS);
    });
    try {
      results = await Promise.race([run, timeout]);
    } finally {
      clearTimeout(timer);
    }
  } catch (e) {
    results = [{ name: 'browser', ok: false, reason: String(e && e.message ? e.message : e).split('\n')[0] }];
  } finally {
    if (context) await context.close().catch(() => {});
    if (pageServer) {
      pageServer.closeAllConnections();
      pageServer.close();
    }
    fs.rmSync(profile, { recursive: true, force: true });
  }
  let passed = 0;
  let failed = 0;
  for (const r of results) {
    if (r.ok) {
      passed++;
      console.log(`PASS ${r.name}`);
    } else {
      failed++;
      console.log(`FAIL ${r.name}: ${r.reason}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then(
  (status) => process.exit(status),
  (e) => {
    console.error(e);
    process.exit(1);
  }
);
