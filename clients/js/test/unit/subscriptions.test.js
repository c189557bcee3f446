// The subscription state machine: subscribe, resubscribe with recovery
// after a reconnect, exactly-once in-order delivery, server unsubscribes,
// errors, and positions kept across a page reload.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setup, settle, record, names, SDK_CODES } from '../support/fake.js';

const pub = (channel, offset, text, epoch = 'E1') => ({ push: 'publication', channel, offset, epoch, data: { text } });
const texts = (events) => events.filter(([n]) => n === 'publication').map(([, ctx]) => ctx.data.text);

async function connected(options) {
  const ctx = setup(options);
  ctx.client.connect();
  await settle();
  await ctx.server.accept();
  return ctx;
}

test('subscribe sends subscribe; the reply makes it subscribed with its position; publications follow', async () => {
  const { server, client } = await connected();
  const sub = client.newSubscription('chat:lobby');
  const events = record(sub);
  sub.subscribe();
  assert.equal(sub.state, 'subscribing');
  await settle();
  const t = server.current;
  const cmd = t.last('subscribe');
  assert.deepEqual(cmd.params, { channel: 'chat:lobby' });
  t.frame({ id: cmd.id, result: { recoverable: true, offset: 17, epoch: 'E1' } }, pub('chat:lobby', 18, 'a'));
  assert.equal(sub.state, 'subscribed');
  assert.deepEqual(names(events), ['subscribing', 'subscribed', 'publication']);
  assert.deepEqual(events[1][1], {
    channel: 'chat:lobby',
    recovered: false,
    wasRecovering: false,
    recoveredCount: 0,
    offset: 17,
    epoch: 'E1',
  });
  assert.deepEqual(events[2][1], { channel: 'chat:lobby', data: { text: 'a' }, offset: 18, epoch: 'E1', info: undefined });
  assert.deepEqual(sub.lastPosition, { offset: 18, epoch: 'E1' });
});

test('subscribing before connect waits for the connection; all subscriptions go in one frame', async () => {
  const { server, client } = setup();
  const subs = ['a', 'b', 'c'].map((ch) => client.newSubscription(ch));
  for (const sub of subs) sub.subscribe();
  client.connect();
  await settle();
  const t = await server.accept();
  await settle();
  assert.deepEqual(t.commands('subscribe').map((c) => c.params.channel), ['a', 'b', 'c']);
  assert.equal(t.frames.filter((f) => f.includes('"subscribe"')).length, 1, 'one frame for the three');
});

test('after a reconnect it resubscribes with recover from the last delivered position; missed ones come once, in order', async () => {
  const { server, clock, client } = await connected();
  const sub = client.newSubscription('chat:lobby');
  const events = record(sub);
  sub.subscribe();
  await settle();
  let t = server.current;
  t.reply(t.last('subscribe'), { recoverable: true, offset: 5, epoch: 'E1' });
  t.push(pub('chat:lobby', 6, 'six'));
  t.push(pub('chat:lobby', 7, 'seven'));
  t.drop(1006);
  await settle();
  assert.equal(sub.state, 'subscribing');
  assert.deepEqual(events.at(-1), ['subscribing', { channel: 'chat:lobby', code: 1006, reason: '' }]);
  await clock.advance(1000);
  t = await server.accept();
  const cmd = t.last('subscribe');
  assert.deepEqual(cmd.params, { channel: 'chat:lobby', recover: true, offset: 7, epoch: 'E1' });
  // The reply recovers 8 and 9; a live 9 (duplicate) and 10 follow in the same frame.
  t.frame(
    {
      id: cmd.id,
      result: {
        recoverable: true,
        offset: 9,
        epoch: 'E1',
        recovered: true,
        publications: [
          { offset: 7, data: { text: 'seven' } }, // already seen: dropped
          { offset: 8, data: { text: 'eight' } },
          { offset: 9, data: { text: 'nine' } },
        ],
      },
    },
    pub('chat:lobby', 9, 'nine'),
    pub('chat:lobby', 10, 'ten'),
  );
  assert.deepEqual(texts(events), ['six', 'seven', 'eight', 'nine', 'ten']);
  const subscribed = events.filter(([n]) => n === 'subscribed');
  assert.equal(subscribed.length, 2, 'one subscribed event per (re)subscription');
  assert.deepEqual(subscribed[1][1], {
    channel: 'chat:lobby',
    recovered: true,
    wasRecovering: true,
    recoveredCount: 2,
    offset: 9,
    epoch: 'E1',
  });
  assert.deepEqual(sub.lastPosition, { offset: 10, epoch: 'E1' });
});

test('recovered: false is reported and the position moves to the new stream', async () => {
  const { server, clock, client } = await connected();
  const sub = client.newSubscription('chat:lobby');
  const events = record(sub);
  sub.subscribe();
  await settle();
  server.current.reply(server.current.last('subscribe'), { recoverable: true, offset: 3, epoch: 'E1' });
  server.current.drop(1006);
  await clock.advance(1000);
  const t = await server.accept();
  t.reply(t.last('subscribe'), { recoverable: true, offset: 0, epoch: 'E2', recovered: false });
  const [, ctx] = events.filter(([n]) => n === 'subscribed')[1];
  assert.equal(ctx.recovered, false);
  assert.equal(ctx.wasRecovering, true);
  assert.deepEqual(sub.lastPosition, { offset: 0, epoch: 'E2' });
  t.push(pub('chat:lobby', 1, 'new stream', 'E2'));
  assert.deepEqual(texts(events), ['new stream']);
});

test('duplicates (offset at or below the last delivered) are dropped', async () => {
  const { server, client } = await connected();
  const sub = client.newSubscription('x');
  const events = record(sub);
  sub.subscribe();
  await settle();
  const t = server.current;
  t.reply(t.last('subscribe'), { offset: 1, epoch: 'E1' });
  for (const n of [2, 3, 2, 3, 1, 4]) t.push(pub('x', n, String(n)));
  assert.deepEqual(texts(events), ['2', '3', '4']);
});

test('a gap (never expected from the server) resubscribes with recovery instead of skipping', async () => {
  const { server, client } = await connected();
  const sub = client.newSubscription('x');
  const events = record(sub);
  sub.subscribe();
  await settle();
  const t = server.current;
  t.reply(t.last('subscribe'), { offset: 1, epoch: 'E1' });
  t.push(pub('x', 2, '2'));
  t.push(pub('x', 5, '5'));
  await settle();
  assert.deepEqual(texts(events), ['2']);
  assert.equal(sub.state, 'subscribing');
  assert.equal(t.commands('unsubscribe').length, 1);
  const again = t.last('subscribe');
  assert.deepEqual(again.params, { channel: 'x', recover: true, offset: 2, epoch: 'E1' });
  t.reply(again, {
    offset: 5,
    epoch: 'E1',
    recovered: true,
    publications: [3, 4, 5].map((n) => ({ offset: n, data: { text: String(n) } })),
  });
  assert.deepEqual(texts(events), ['2', '3', '4', '5']);
});

test('an unsubscribe push with resubscribe (2500) resubscribes with recovery on the same connection', async () => {
  const { server, client } = await connected();
  const sub = client.newSubscription('x');
  const events = record(sub);
  sub.subscribe();
  await settle();
  const t = server.current;
  t.reply(t.last('subscribe'), { offset: 4, epoch: 'E1' });
  t.push({ push: 'unsubscribe', channel: 'x', code: 2500, reason: 'insufficient state', resubscribe: true });
  await settle();
  assert.deepEqual(events.at(-1), ['subscribing', { channel: 'x', code: 2500, reason: 'insufficient state' }]);
  assert.equal(t.commands('unsubscribe').length, 0, 'the server already dropped it');
  assert.deepEqual(t.last('subscribe').params, { channel: 'x', recover: true, offset: 4, epoch: 'E1' });
  assert.equal(server.transports.length, 1);
});

test('an unsubscribe push without resubscribe (2000) ends the subscription', async () => {
  const { server, client } = await connected();
  const sub = client.newSubscription('x');
  const events = record(sub);
  sub.subscribe();
  await settle();
  server.current.reply(server.current.last('subscribe'), {});
  server.current.push({ push: 'unsubscribe', channel: 'x', code: 2000, reason: 'unsubscribed by server', resubscribe: false });
  await settle();
  assert.equal(sub.state, 'unsubscribed');
  assert.deepEqual(events.at(-1), ['unsubscribed', { channel: 'x', code: 2000, reason: 'unsubscribed by server' }]);
  assert.equal(server.current.commands('subscribe').length, 1);
});

test('a permanent subscribe error (403) unsubscribes with an error event; no retry', async () => {
  const { server, clock, client } = await connected();
  const sub = client.newSubscription('secret:x');
  const events = record(sub);
  sub.subscribe();
  await settle();
  server.current.fail(server.current.last('subscribe'), 403, 'permission denied', false);
  assert.equal(sub.state, 'unsubscribed');
  assert.deepEqual(names(events), ['subscribing', 'error', 'unsubscribed']);
  assert.equal(events[1][1].error.code, 403);
  assert.deepEqual(events[2][1], { channel: 'secret:x', code: 403, reason: 'permission denied' });
  await clock.advance(60000);
  assert.equal(server.current.commands('subscribe').length, 1);
  await assert.rejects(sub.ready(), (err) => err.code === SDK_CODES.UNSUBSCRIBED);
});

test('a temporary subscribe error (503, 429) is retried after a backoff delay', async () => {
  const { server, clock, client } = await connected();
  const sub = client.newSubscription('x');
  sub.subscribe();
  await settle();
  const t = server.current;
  t.fail(t.last('subscribe'), 503, 'unavailable', true);
  t.fail(t.last('subscribe'), 429, 'too many requests', true); // stale id: ignored
  assert.equal(sub.state, 'subscribing');
  await clock.advance(1000);
  assert.equal(t.commands('subscribe').length, 2);
  t.fail(t.last('subscribe'), 429, 'too many requests', true);
  await clock.advance(2000);
  assert.equal(t.commands('subscribe').length, 3);
  t.reply(t.last('subscribe'), {});
  assert.equal(sub.state, 'subscribed');
});

test('unsubscribe() while the subscribe is in flight: its reply is ignored and the server is told', async () => {
  const { server, client } = await connected();
  const sub = client.newSubscription('x');
  const events = record(sub);
  sub.subscribe();
  await settle();
  const t = server.current;
  const cmd = t.last('subscribe');
  sub.unsubscribe();
  await settle();
  t.reply(cmd, { offset: 1, epoch: 'E1' });
  t.push(pub('x', 2, 'late'));
  assert.equal(sub.state, 'unsubscribed');
  assert.deepEqual(names(events), ['subscribing', 'unsubscribed']);
  assert.equal(t.commands('unsubscribe').length, 1);
  // And subscribe again at once (a UI remount): a fresh subscribe, handled normally.
  sub.subscribe();
  await settle();
  t.reply(t.last('subscribe'), { offset: 2, epoch: 'E1' });
  assert.equal(sub.state, 'subscribed');
});

test('one subscription per channel; removeSubscription frees the channel', async () => {
  const { client } = setup();
  const sub = client.newSubscription('x');
  assert.throws(() => client.newSubscription('x'), /already a subscription/);
  assert.equal(client.getSubscription('x'), sub);
  client.removeSubscription(sub);
  assert.equal(client.getSubscription('x'), null);
  client.newSubscription('x');
});

test('join and leave reach the subscription', async () => {
  const { server, client } = await connected();
  const sub = client.newSubscription('chat:x');
  const events = record(sub);
  sub.subscribe();
  await settle();
  server.current.reply(server.current.last('subscribe'), {});
  server.current.push({ push: 'join', channel: 'chat:x', info: { client: 'c7', user: 'bob' } });
  server.current.push({ push: 'leave', channel: 'chat:x', info: { client: 'c7', user: 'bob' } });
  assert.deepEqual(events.slice(-2), [
    ['join', { channel: 'chat:x', info: { client: 'c7', user: 'bob' } }],
    ['leave', { channel: 'chat:x', info: { client: 'c7', user: 'bob' } }],
  ]);
});

test('recoverable: false never asks for recovery', async () => {
  const { server, clock, client } = await connected();
  const sub = client.newSubscription('x', { recoverable: false });
  sub.subscribe();
  await settle();
  server.current.reply(server.current.last('subscribe'), { offset: 3, epoch: 'E1' });
  server.current.drop(1006);
  await clock.advance(1000);
  const t = await server.accept();
  assert.deepEqual(t.last('subscribe').params, { channel: 'x' });
});

test('positionStorage keeps positions across a "page reload" (a new Client on the same storage)', async () => {
  const store = new Map();
  const storage = {
    getItem: (k) => (store.has(k) ? store.get(k) : null),
    setItem: (k, v) => store.set(k, v),
    removeItem: (k) => store.delete(k),
  };
  const first = await connected({ positionStorage: storage });
  const sub = first.client.newSubscription('x');
  sub.subscribe();
  await settle();
  const t = first.server.current;
  t.reply(t.last('subscribe'), { offset: 10, epoch: 'E9' });
  t.push(pub('x', 11, 'eleven', 'E9'));
  assert.deepEqual(JSON.parse(store.get('clarion-client:ws://fake/connection/websocket:x')), { offset: 11, epoch: 'E9' });

  const second = await connected({ positionStorage: storage });
  const again = second.client.newSubscription('x');
  const events = record(again);
  again.subscribe();
  await settle();
  const cmd = second.server.current.last('subscribe');
  assert.deepEqual(cmd.params, { channel: 'x', recover: true, offset: 11, epoch: 'E9' });
  second.server.current.reply(cmd, {
    offset: 12,
    epoch: 'E9',
    recovered: true,
    publications: [{ offset: 12, data: { text: 'twelve' } }],
  });
  assert.deepEqual(texts(events), ['twelve']);
  assert.equal(events.find(([n]) => n === 'subscribed')[1].recovered, true);
});

test('without positionStorage nothing is stored; a storage that throws is survived', async () => {
  const throwing = {
    getItem: () => {
      throw new Error('denied');
    },
    setItem: () => {
      throw new Error('quota');
    },
    removeItem: () => {},
  };
  const { server, client } = await connected({ positionStorage: throwing });
  const sub = client.newSubscription('x');
  const events = record(sub);
  sub.subscribe();
  await settle();
  server.current.reply(server.current.last('subscribe'), { offset: 1, epoch: 'E' });
  server.current.push(pub('x', 2, 'two', 'E'));
  assert.deepEqual(texts(events), ['two']);
  assert.deepEqual(sub.lastPosition, { offset: 2, epoch: 'E' });
});

test('sub.presence / history wait until subscribed, then call', async () => {
  const { server, client } = await connected();
  const sub = client.newSubscription('chat:x');
  sub.subscribe();
  const presence = sub.presence();
  const history = sub.history({ limit: 2, reverse: true });
  await settle();
  const t = server.current;
  assert.equal(t.commands('presence').length, 0, 'not before the subscribe reply');
  t.reply(t.last('subscribe'), { offset: 2, epoch: 'E' });
  await settle();
  t.reply(t.last('presence'), { clients: [{ client: 'c1', user: 'u' }] });
  const h = t.last('history');
  assert.deepEqual(h.params, { channel: 'chat:x', limit: 2, reverse: true });
  t.reply(h, { publications: [{ offset: 2, data: 2 }, { offset: 1, data: 1 }], offset: 2, epoch: 'E' });
  assert.deepEqual(await presence, { clients: [{ client: 'c1', user: 'u' }] });
  const page = await history;
  assert.deepEqual(page.publications.map((p) => [p.offset, p.data, p.epoch, p.channel]), [
    [2, 2, 'E', 'chat:x'],
    [1, 1, 'E', 'chat:x'],
  ]);
});

test('a recovery too big for the server queue (4001 twice before the reply) falls back to recovered: false', async () => {
  const { server, clock, client } = await connected();
  const sub = client.newSubscription('x');
  const events = record(sub);
  sub.subscribe();
  await settle();
  server.current.reply(server.current.last('subscribe'), { offset: 10, epoch: 'E' });
  server.current.drop(1006);
  for (let i = 0; i < 2; i++) {
    await clock.advance(clock.nextDelay());
    const t = await server.accept();
    assert.deepEqual(t.last('subscribe').params, { channel: 'x', recover: true, offset: 10, epoch: 'E' });
    t.disconnect(4001, 'slow consumer', true); // the recovery reply overflowed the queue
    await settle();
  }
  await clock.advance(clock.nextDelay());
  const t = await server.accept();
  assert.deepEqual(t.last('subscribe').params, { channel: 'x' }, 'no recovery the third time');
  t.reply(t.last('subscribe'), { offset: 900, epoch: 'E' });
  const last = events.filter(([n]) => n === 'subscribed').at(-1)[1];
  assert.equal(last.recovered, false);
  assert.equal(sub.state, 'subscribed');
});

test('one 4001 during a recovery is retried with recovery', async () => {
  const { server, clock, client } = await connected();
  const sub = client.newSubscription('x');
  sub.subscribe();
  await settle();
  server.current.reply(server.current.last('subscribe'), { offset: 10, epoch: 'E' });
  server.current.disconnect(4001, 'slow consumer', true);
  await clock.advance(clock.nextDelay());
  (await server.accept()).disconnect(4001, 'slow consumer', true);
  await clock.advance(clock.nextDelay());
  const t = await server.accept();
  assert.equal(t.last('subscribe').params.recover, true, 'the first cut was not during a recovery');
});
