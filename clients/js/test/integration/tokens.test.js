// Tokens against the real server: a 3-second connection token refreshed
// without reconnecting, refused and expired tokens, subscription tokens.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client, UnauthorizedError } from '../../dist/clarion-client.js';
import { Server, connectionToken, jwt, sleep, subscriptionToken, until } from '../support/server.js';

let server;
const clients = [];
before(async () => {
  server = await Server.start();
});
after(async () => {
  for (const client of clients) client.disconnect(); // also after a failure: no reconnect loop left running
  await server.stop();
});

function newClient(options) {
  const client = new Client(server.wsUrl, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 1000, ...options });
  clients.push(client);
  return client;
}

function recordEvents(client) {
  const events = [];
  for (const name of ['connecting', 'connected', 'disconnected', 'error']) client.on(name, (ctx) => events.push([name, ctx]));
  return events;
}

test('a 3 s connection token is refreshed before expiry, without reconnecting', { timeout: 20000 }, async () => {
  let minted = 0;
  const client = newClient({
    getToken: async () => {
      minted++;
      return connectionToken('alice', 3);
    },
  });
  const events = recordEvents(client);
  client.connect();
  await client.ready(5000);
  const id = client.clientId;
  await sleep(7000); // past two expiries
  assert.equal(client.state, 'connected');
  assert.equal(client.clientId, id, 'the same connection');
  assert.ok(minted >= 3, `getToken called for the connect and at least two refreshes (${minted})`);
  assert.deepEqual(events.map(([n]) => n), ['connecting', 'connected'], 'no reconnect, no error');
  // The connection still works.
  const sub = client.newSubscription('chat:tokens');
  sub.subscribe();
  await sub.ready(5000);
  assert.equal((await sub.presenceStats()).numClients, 1);
  client.disconnect();
});

test('without getToken, an expired token ends in 4003 and the client stops with an error', { timeout: 20000 }, async () => {
  const client = newClient({ token: connectionToken('bob', 2) });
  const events = recordEvents(client);
  client.connect();
  await client.ready(5000);
  await until(() => client.state === 'disconnected', 'the expiry', 10000);
  await sleep(1500);
  const names = events.map(([n]) => n);
  assert.deepEqual(names, ['connecting', 'connected', 'error', 'disconnected'], 'one connection, no loop');
  assert.equal(events[2][1].error.code, 4003);
  assert.equal(events[3][1].code, 4003);
});

test('a refused token (wrong signature) is a clear 4501 error and no reconnect loop', { timeout: 20000 }, async () => {
  let calls = 0;
  const client = newClient({
    getToken: async () => {
      calls++;
      return jwt({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 60 }, 'not-the-secret');
    },
  });
  const events = recordEvents(client);
  client.connect();
  await until(() => client.state === 'disconnected', 'the refusal', 10000);
  await sleep(1500);
  assert.equal(calls, 1);
  const errors = events.filter(([n]) => n === 'error').map(([, ctx]) => ctx.error);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 4501);
  assert.equal(errors[0].temporary, false);
  assert.equal(events.filter(([n]) => n === 'connecting').length, 1);
});

test('getToken throwing UnauthorizedError stops before any connection is made', { timeout: 10000 }, async () => {
  const client = newClient({
    getToken: async () => {
      throw new UnauthorizedError('logged out');
    },
  });
  const events = recordEvents(client);
  client.connect();
  await until(() => client.state === 'disconnected', 'the stop', 5000);
  assert.deepEqual(events.at(-1), ['disconnected', { code: 4501, reason: 'unauthorized' }]);
});

/** Whether the server says when a subscription token expires (`ttl` in the subscribe reply). */
async function subscribeReplyHasTtl() {
  const ws = new WebSocket(server.wsUrl, 'clarion.json.v1');
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const replies = [];
  ws.on('message', (data) => replies.push(...String(data).split('\n').filter(Boolean).map((l) => JSON.parse(l))));
  const token = subscriptionToken('probe', 'private:probe', 60);
  ws.send(`{"id":1,"method":"connect","params":{"token":"${connectionToken('probe', 60)}"}}`);
  ws.send(`{"id":2,"method":"subscribe","params":{"channel":"private:probe","token":"${token}"}}`);
  await until(() => replies.some((r) => r.id === 2), 'the probe subscribe reply', 5000);
  ws.close();
  return typeof replies.find((r) => r.id === 2).result?.ttl === 'number';
}

test('subscription tokens: required, fetched with getToken, and publications keep coming past their expiry', { timeout: 30000 }, async (t) => {
  const refreshes = await subscribeReplyHasTtl();
  if (!refreshes) t.diagnostic('this server sends no subscription ttl: no refresh expected (sub_refresh not there yet)');
  const client = newClient({ token: connectionToken('carol', 3600) });
  client.connect();
  const denied = client.newSubscription('private:room');
  const deniedErrors = [];
  denied.on('error', (ctx) => deniedErrors.push(ctx.error.code));
  denied.subscribe();
  await until(() => denied.state === 'unsubscribed', 'the refusal without a token');
  assert.deepEqual(deniedErrors, [403]);
  client.removeSubscription(denied);

  let minted = 0;
  const sub = client.newSubscription('private:room', {
    getToken: async ({ channel }) => {
      minted++;
      return subscriptionToken('carol', channel, 3);
    },
  });
  const values = [];
  const subscribed = [];
  sub.on('publication', (ctx) => values.push(ctx.data.n));
  sub.on('subscribed', (ctx) => subscribed.push(ctx.recovered));
  sub.subscribe();
  await sub.ready(5000);
  for (let n = 1; n <= 35; n++) {
    await server.api('publish', { channel: 'private:room', data: { n } });
    await sleep(200);
  }
  await until(() => values.at(-1) === 35, 'the last publication');
  assert.deepEqual(values, Array.from({ length: 35 }, (_, i) => i + 1), 'once each, in order');
  if (refreshes) assert.ok(minted >= 2, `a fresh subscription token before or at expiry (${minted} minted)`);
  assert.equal(sub.state, 'subscribed');
  assert.ok(subscribed.slice(1).every((r) => r === true), 'any resubscription recovered');
  client.disconnect();
});
