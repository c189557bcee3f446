// Publishing: idempotency keys, the queue of calls waiting for a
// connection, resends with the same key, timeouts, errors, framing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setup, settle, SDK_CODES, ClarionError } from '../support/fake.js';

async function connected(options) {
  const ctx = setup(options);
  ctx.client.connect();
  await settle();
  await ctx.server.accept();
  return ctx;
}

/** Resolves to the value or the error, so a rejection is never unhandled. */
const outcome = (promise) => promise.then((value) => ({ value }), (error) => ({ error }));

test('every publish carries a fresh idempotency key (32 hex digits)', async () => {
  const { server, client } = await connected();
  const a = client.publish('chat:x', { text: 'a' });
  const b = client.publish('chat:x', { text: 'b' });
  await settle();
  const [pa, pb] = server.current.commands('publish');
  assert.match(pa.params.idempotency_key, /^[0-9a-f]{32}$/);
  assert.notEqual(pa.params.idempotency_key, pb.params.idempotency_key);
  assert.deepEqual(pa.params.data, { text: 'a' });
  server.current.reply(pa, { offset: 20, epoch: 'E' });
  server.current.reply(pb, {});
  assert.deepEqual(await a, { offset: 20, epoch: 'E' });
  assert.deepEqual(await b, {});
});

test('a given idempotency key is used as is; over 64 bytes is refused', async () => {
  const { server, client } = await connected();
  const p = client.publish('x', 1, { idempotencyKey: 'order-42' });
  await settle();
  assert.equal(server.current.last('publish').params.idempotency_key, 'order-42');
  server.current.reply(server.current.last('publish'), {});
  await p;
  await assert.rejects(client.publish('x', 1, { idempotencyKey: 'k'.repeat(65) }), RangeError);
  await assert.rejects(client.publish('x', 1, { idempotencyKey: 'é'.repeat(33) }), RangeError, '66 bytes');
});

test('publishes made while disconnected wait and go out in order after connecting', async () => {
  const { server, client } = setup();
  const results = [1, 2, 3].map((n) => outcome(client.publish('x', n)));
  client.connect();
  await settle();
  const t = await server.accept();
  await settle();
  const sent = t.commands('publish');
  assert.deepEqual(sent.map((c) => c.params.data), [1, 2, 3]);
  for (const c of sent) t.reply(c, { offset: c.params.data, epoch: 'E' });
  assert.deepEqual((await Promise.all(results)).map((r) => r.value.offset), [1, 2, 3]);
});

test('a publish in flight when the connection drops is resent after reconnect with the same key, and settles once', async () => {
  const { server, clock, client } = await connected();
  const first = server.current;
  let settledCount = 0;
  const p = client.publish('x', 'hello').then((r) => {
    settledCount++;
    return r;
  });
  await settle();
  const key = first.last('publish').params.idempotency_key;
  first.drop(1006);
  await clock.advance(1000);
  const second = await server.accept();
  await settle();
  const resent = second.last('publish');
  assert.equal(resent.params.idempotency_key, key, 'same key');
  assert.deepEqual(resent.params.data, 'hello');
  first.reply(first.last('publish'), { offset: 1, epoch: 'E' }); // the dead connection's reply: ignored
  second.reply(resent, { offset: 1, epoch: 'E' });
  assert.deepEqual(await p, { offset: 1, epoch: 'E' });
  await settle();
  assert.equal(settledCount, 1);
});

test('resubscribes go before queued publishes after a reconnect', async () => {
  const { server, clock, client } = await connected();
  const sub = client.newSubscription('x');
  sub.subscribe();
  await settle();
  server.current.reply(server.current.last('subscribe'), { offset: 1, epoch: 'E' });
  server.current.drop(1006);
  await settle();
  const p = outcome(client.publish('x', 'queued'));
  await clock.advance(1000);
  const t = await server.accept();
  await settle();
  const order = t.sent.map((c) => c.method);
  assert.deepEqual(order, ['connect', 'subscribe', 'publish']);
  t.reply(t.last('publish'), {});
  assert.ok((await p).value);
});

test('the queue is bounded: past maxQueuedCalls a call rejects with QUEUE_FULL (temporary)', async () => {
  const { client } = setup({ maxQueuedCalls: 2 });
  const a = outcome(client.publish('x', 1));
  const b = outcome(client.publish('x', 2));
  const c = await outcome(client.publish('x', 3));
  assert.ok(c.error instanceof ClarionError);
  assert.equal(c.error.code, SDK_CODES.QUEUE_FULL);
  assert.equal(c.error.temporary, true);
  client.disconnect?.();
  void a;
  void b;
});

test('a call that gets no reply within its timeout rejects with TIMEOUT', async () => {
  const { server, clock, client } = await connected({ timeout: 3000 });
  const p = outcome(client.publish('x', 1));
  const q = outcome(client.presence('chat:x', { timeout: 500 }));
  await clock.advance(500);
  const { error: qe } = await q;
  assert.equal(qe.code, SDK_CODES.TIMEOUT);
  assert.ok(qe.isTimeout());
  await clock.advance(2500);
  const { error } = await p;
  assert.equal(error.code, SDK_CODES.TIMEOUT);
  assert.equal(error.temporary, true);
  server.current.reply(server.current.last('publish'), {}); // too late: ignored
});

test('a queued publish times out too when no connection comes', async () => {
  const { clock, client } = setup({ timeout: 2000 });
  const p = outcome(client.publish('x', 1));
  await clock.advance(2000);
  assert.equal((await p).error.code, SDK_CODES.TIMEOUT);
});

test('an error reply rejects with the server code; 429 is temporary and not retried silently', async () => {
  const { server, clock, client } = await connected();
  const p = outcome(client.publish('x', 1));
  await settle();
  server.current.fail(server.current.last('publish'), 429, 'too many requests', true);
  const { error } = await p;
  assert.ok(error instanceof ClarionError);
  assert.deepEqual([error.code, error.message, error.temporary], [429, 'too many requests', true]);
  await clock.advance(60000);
  assert.equal(server.current.commands('publish').length, 1);
  const q = outcome(client.publish('x', 1));
  await settle();
  server.current.fail(server.current.last('publish'), 403, 'permission denied', false);
  assert.equal((await q).error.temporary, false);
});

test('a permanent disconnect rejects queued publishes with CLIENT_DISCONNECTED', async () => {
  const { server, client } = await connected();
  const p = outcome(client.publish('x', 1));
  await settle();
  server.current.disconnect(4502, 'force disconnect', false);
  await settle();
  const { error } = await p;
  assert.equal(error.code, SDK_CODES.CLIENT_DISCONNECTED);
  assert.equal(error.temporary, false);
});

test('many commands are split into frames of at most 64', async () => {
  const { server, client } = await connected();
  const all = [];
  for (let i = 0; i < 150; i++) all.push(outcome(client.publish('x', i)));
  await settle();
  const t = server.current;
  const frames = t.frames.slice(1).map((f) => f.split('\n').length);
  assert.deepEqual(frames, [64, 64, 22]);
  for (const c of t.commands('publish')) t.reply(c, {});
  assert.equal((await Promise.all(all)).filter((r) => r.value).length, 150);
});

test('presenceStats and history map their results', async () => {
  const { server, client } = await connected();
  const stats = client.presenceStats('chat:x');
  const page = client.history('chat:x', { limit: 1, since: { offset: 3, epoch: 'E' } });
  await settle();
  const t = server.current;
  t.reply(t.last('presence_stats'), { num_clients: 3, num_users: 2 });
  assert.deepEqual(t.last('history').params, { channel: 'chat:x', limit: 1, since: { offset: 3, epoch: 'E' } });
  t.reply(t.last('history'), { publications: [{ offset: 4, data: 'd', info: { client: 'c', user: 'u' } }], offset: 9, epoch: 'E' });
  assert.deepEqual(await stats, { numClients: 3, numUsers: 2 });
  assert.deepEqual(await page, {
    publications: [{ channel: 'chat:x', data: 'd', offset: 4, epoch: 'E', info: { client: 'c', user: 'u' } }],
    offset: 9,
    epoch: 'E',
  });
});
