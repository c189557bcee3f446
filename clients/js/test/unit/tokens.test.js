// Connection and subscription tokens: getToken before expiry, refresh
// without reconnecting, the refresh/reconnect race, refused tokens.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setup, settle, record, names, UnauthorizedError } from '../support/fake.js';

/** A getToken whose calls the test resolves by hand. */
function manualTokens() {
  const calls = [];
  const getToken = () =>
    new Promise((resolve, reject) => {
      calls.push({ resolve, reject });
    });
  return { calls, getToken };
}

test('getToken is called when there is no token, and the connect carries its token', async () => {
  let n = 0;
  const { server, client } = setup({ getToken: async () => `tok-${++n}` });
  client.connect();
  await settle();
  const t = await server.accept();
  assert.equal(t.last('connect').params.token, 'tok-1');
  assert.equal(n, 1);
});

test('the token is refreshed before it expires, with `refresh`, without reconnecting', async () => {
  let n = 0;
  const { server, clock, client } = setup({ token: 'tok-0', getToken: async () => `tok-${++n}` });
  client.connect();
  await settle();
  const t = await server.accept({ ttl: 60 });
  assert.equal(n, 0, 'the given token is used first');
  await clock.advance(49999);
  assert.equal(n, 0);
  await clock.advance(1); // 10 s before expiry
  assert.equal(n, 1);
  const refresh = t.last('refresh');
  assert.deepEqual(refresh.params, { token: 'tok-1' });
  t.reply(refresh, { ttl: 60 });
  await clock.advance(50000);
  assert.equal(t.last('refresh').params.token, 'tok-2', 'and again before the new expiry');
  assert.equal(server.transports.length, 1);
  assert.equal(client.state, 'connected');
});

test('a short ttl is refreshed at half its lifetime', async () => {
  let n = 0;
  const { server, clock, client } = setup({ token: 't', getToken: async () => `tok-${++n}` });
  client.connect();
  await settle();
  const t = await server.accept({ ttl: 4 });
  await clock.advance(1999);
  assert.equal(t.commands('refresh').length, 0);
  await clock.advance(1);
  assert.equal(t.commands('refresh').length, 1);
});

test('race: a refresh in flight while the connection drops: one getToken call, the reconnect uses its token', async () => {
  const tokens = manualTokens();
  const { server, clock, client } = setup({ token: 'old', getToken: tokens.getToken });
  client.connect();
  await settle();
  const first = await server.accept({ ttl: 30 });
  await clock.advance(20000); // refresh starts: getToken in flight
  assert.equal(tokens.calls.length, 1);
  first.drop(1006);
  await clock.advance(1000); // the reconnect attempt waits for the same getToken
  assert.equal(tokens.calls.length, 1, 'no second getToken');
  assert.equal(server.transports.length, 1, 'no transport before the token');
  tokens.calls[0].resolve('new');
  await settle();
  const second = await server.accept({ ttl: 30 });
  assert.equal(second.last('connect').params.token, 'new');
  assert.equal(first.commands('refresh').length, 0, 'no refresh on the dead connection');
  assert.equal(second.commands('refresh').length, 0, 'no stale refresh on the new one');
  assert.equal(tokens.calls.length, 1);
  assert.equal(client.state, 'connected');
});

test('race: the connection drops after refresh was sent: its late reply does not schedule anything twice', async () => {
  let n = 0;
  const { server, clock, client } = setup({ token: 'old', getToken: async () => `tok-${++n}` });
  client.connect();
  await settle();
  const first = await server.accept({ ttl: 30 });
  await clock.advance(20000);
  const refresh = first.last('refresh');
  first.drop(1006);
  first.reply(refresh, { ttl: 30 }); // from a dead transport: ignored
  await clock.advance(1000);
  const second = await server.accept({ ttl: 30 });
  assert.equal(second.last('connect').params.token, 'tok-1', 'the fresh token, still valid');
  await clock.advance(19999);
  assert.equal(second.commands('refresh').length, 0);
  await clock.advance(1);
  assert.equal(second.commands('refresh').length, 1);
  assert.equal(client.state, 'connected');
});

test('4003 (token expired) reconnects with a fresh token from getToken', async () => {
  let n = 0;
  const { server, clock, client } = setup({ token: 'stale', getToken: async () => `tok-${++n}` });
  client.connect();
  await settle();
  const first = await server.accept();
  first.disconnect(4003, 'expired', true);
  await clock.advance(1000);
  const second = await server.accept();
  assert.equal(second.last('connect').params.token, 'tok-1');
  assert.equal(client.state, 'connected');
});

test('4003 without getToken stops: reconnecting with the same expired token would loop', async () => {
  const { server, clock, client, events } = setup({ token: 'stale' });
  client.connect();
  await settle();
  (await server.accept()).disconnect(4003, 'expired', true);
  await clock.advance(60000);
  assert.equal(client.state, 'disconnected');
  assert.equal(server.transports.length, 1);
  assert.ok(events.some(([n, ctx]) => n === 'error' && ctx.error.code === 4003));
});

test('a refused token (4501) is a clear error, not a reconnect loop', async () => {
  let n = 0;
  const { server, clock, client, events } = setup({ getToken: async () => `tok-${++n}` });
  client.connect();
  await settle();
  server.current.open();
  await settle();
  server.current.disconnect(4501, 'invalid token', false);
  await clock.advance(120000);
  assert.equal(client.state, 'disconnected');
  assert.equal(server.transports.length, 1);
  assert.equal(n, 1);
  const errors = events.filter(([name]) => name === 'error').map(([, ctx]) => ctx.error);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 4501);
  assert.equal(errors[0].message, 'invalid token');
  assert.equal(errors[0].temporary, false);
});

test('getToken throwing UnauthorizedError stops with 4501; any other failure is retried with backoff', async () => {
  let failures = 0;
  const flaky = setup({
    getToken: async () => {
      if (++failures < 3) throw new Error('network down');
      return 'ok';
    },
  });
  flaky.client.connect();
  await flaky.clock.advance(10000);
  await flaky.server.accept();
  assert.equal(flaky.client.state, 'connected');
  assert.equal(flaky.events.filter(([n, ctx]) => n === 'error' && ctx.type === 'token').length, 2);

  const denied = setup({
    getToken: async () => {
      throw new UnauthorizedError('banned');
    },
  });
  denied.client.connect();
  await denied.clock.advance(60000);
  assert.equal(denied.client.state, 'disconnected');
  assert.equal(denied.server.transports.length, 0);
  assert.deepEqual(denied.events.at(-1), ['disconnected', { code: 4501, reason: 'unauthorized' }]);
});

test('subscription token: from getToken, refreshed with sub_refresh before the subscribe ttl', async () => {
  const seen = [];
  const { server, clock, client } = setup();
  client.connect();
  await settle();
  const t = await server.accept();
  const sub = client.newSubscription('private:x', {
    getToken: async (ctx) => {
      seen.push(ctx.channel);
      return `sub-${seen.length}`;
    },
  });
  sub.subscribe();
  await settle();
  const cmd = t.last('subscribe');
  assert.equal(cmd.params.token, 'sub-1');
  t.reply(cmd, { ttl: 60 });
  await clock.advance(50000);
  const refresh = t.last('sub_refresh');
  assert.deepEqual(refresh.params, { channel: 'private:x', token: 'sub-2' });
  assert.deepEqual(seen, ['private:x', 'private:x']);
  t.reply(refresh, { ttl: 60 });
  await clock.advance(50000);
  assert.equal(t.last('sub_refresh').params.token, 'sub-3');
  assert.equal(sub.state, 'subscribed');
  assert.equal(t.commands('subscribe').length, 1, 'no resubscribe');
});

test('subscription token: 2501 resubscribes with a fresh token and recovery', async () => {
  let n = 0;
  const { server, client } = setup();
  client.connect();
  await settle();
  const t = await server.accept();
  const sub = client.newSubscription('private:x', { token: 'given', getToken: async () => `sub-${++n}` });
  const events = record(sub);
  sub.subscribe();
  await settle();
  assert.equal(t.last('subscribe').params.token, 'given');
  t.reply(t.last('subscribe'), { offset: 3, epoch: 'E', ttl: 600 });
  t.push({ push: 'unsubscribe', channel: 'private:x', code: 2501, reason: 'subscription expired', resubscribe: true });
  await settle();
  assert.deepEqual(t.last('subscribe').params, { channel: 'private:x', token: 'sub-1', recover: true, offset: 3, epoch: 'E' });
  t.reply(t.last('subscribe'), { offset: 3, epoch: 'E', recovered: true, publications: [] });
  assert.deepEqual(names(events), ['subscribing', 'subscribed', 'subscribing', 'subscribed']);
});

test('subscription token: 419 on subscribe fetches a fresh one; 401 is final', async () => {
  let n = 0;
  const { server, clock, client } = setup();
  client.connect();
  await settle();
  const t = await server.accept();
  const sub = client.newSubscription('private:x', { getToken: async () => `sub-${++n}` });
  sub.subscribe();
  await settle();
  t.fail(t.last('subscribe'), 419, 'token expired', true);
  await clock.advance(1000);
  assert.equal(t.last('subscribe').params.token, 'sub-2');
  t.fail(t.last('subscribe'), 401, 'unauthorized', false);
  await clock.advance(60000);
  assert.equal(sub.state, 'unsubscribed');
  assert.equal(t.commands('subscribe').length, 2);
});

test('a server without sub_refresh (405) is left to end the subscription with 2501', async () => {
  let n = 0;
  const { server, clock, client } = setup();
  client.connect();
  await settle();
  const t = await server.accept();
  const sub = client.newSubscription('private:x', { getToken: async () => `sub-${++n}` });
  const events = record(sub);
  sub.subscribe();
  await settle();
  t.reply(t.last('subscribe'), { ttl: 20 });
  await clock.advance(10000);
  t.fail(t.last('sub_refresh'), 405, 'unknown method "sub_refresh"', false);
  await clock.advance(60000);
  assert.equal(t.commands('sub_refresh').length, 1);
  assert.equal(sub.state, 'subscribed');
  assert.equal(events.filter(([name]) => name === 'error').length, 0);
});
