// Publishing against the real server: idempotency keys (a retry is
// applied once) and the per-session publish rate (429 surfaced to the
// caller as a temporary error, never retried behind its back).

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client, ClarionError } from '../../dist/clarion-client.js';
import { CONFIG, FAST_PUBLISH, Server, sleep, until } from '../support/server.js';

let server;
const clients = [];
before(async () => {
  // The default rate limits (20 publishes a second, bursts of 40) for this file.
  server = await Server.start({ config: CONFIG.replace(FAST_PUBLISH, '') });
});
after(async () => {
  for (const client of clients) client.disconnect();
  await server.stop();
});

async function connectedClient() {
  const client = new Client(server.wsUrl, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 1000 });
  clients.push(client);
  client.connect();
  await client.ready(5000);
  return client;
}

function collect(client, channel) {
  const sub = client.newSubscription(channel);
  const offsets = [];
  sub.on('publication', (ctx) => offsets.push(ctx.offset));
  sub.subscribe();
  return { sub, offsets };
}

test('a publish retried with the same idempotency key is applied once and answers the first position', { timeout: 20000 }, async () => {
  const reader = await connectedClient();
  const { sub, offsets } = collect(reader, 'feed:idem');
  await sub.ready(5000);
  const writer = await connectedClient();
  const first = await writer.publish('feed:idem', { text: 'once' }, { idempotencyKey: 'order-42' });
  const retry = await writer.publish('feed:idem', { text: 'once' }, { idempotencyKey: 'order-42' });
  const other = await writer.publish('feed:idem', { text: 'twice' });
  assert.deepEqual(retry, first, 'the retry gets the first result');
  assert.equal(other.offset, first.offset + 1, 'the retry took no offset');
  await until(() => offsets.length >= 2, 'two publications');
  await sleep(300);
  assert.deepEqual(offsets, [first.offset, other.offset]);
});

test('over the publish rate: 429 rejects the call (temporary), the connection stays, and a later retry works', { timeout: 20000 }, async () => {
  const reader = await connectedClient();
  const { sub, offsets } = collect(reader, 'feed:rate');
  await sub.ready(5000);
  const writer = await connectedClient();
  const id = writer.clientId;
  const outcomes = await Promise.all(
    Array.from({ length: 60 }, (_, n) => writer.publish('feed:rate', { n }).then((r) => r, (err) => err)),
  );
  const refused = outcomes.filter((o) => o instanceof ClarionError);
  const accepted = outcomes.filter((o) => !(o instanceof ClarionError));
  assert.ok(refused.length > 0, 'a burst of 60 goes over 40');
  assert.ok(accepted.length >= 40, `the burst allowance was used (${accepted.length})`);
  for (const err of refused) assert.deepEqual([err.code, err.temporary], [429, true]);
  assert.equal(writer.clientId, id, 'still the same connection');
  await sleep(1200); // the bucket refills
  const later = await writer.publish('feed:rate', { n: 'later' });
  assert.equal(typeof later.offset, 'number');
  await until(() => offsets.length === accepted.length + 1, 'every accepted publication');
  await sleep(300);
  assert.equal(offsets.length, accepted.length + 1, 'refused ones were not published, nor retried silently');
});
