// The SDK in Node against the real `clarion serve`: reconnects while
// publishing, the server killed and restarted, a slow consumer cut off.
// The application must see every publication once, in order, or be told
// `recovered: false`.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client } from '../../dist/clarion-client.js';
import { Server, connectionToken, sleep, until } from '../support/server.js';

const servers = [];
const clients = [];
after(async () => {
  for (const client of clients) client.disconnect(); // also after a failure: no reconnect loop left running
  for (const server of servers) await server.stop();
});

async function start(options) {
  const server = await Server.start(options);
  servers.push(server);
  return server;
}

function newClient(server, options = {}) {
  const client = new Client(server.wsUrl, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 1000, ...options });
  clients.push(client);
  return client;
}

/** A subscription that records what the application sees. */
function watch(client, channel) {
  const sub = client.newSubscription(channel);
  const seen = { values: [], offsets: [], subscribed: [], log: [] };
  sub.on('publication', (ctx) => {
    seen.values.push(ctx.data.n);
    seen.offsets.push(ctx.offset);
    seen.log.push(['pub', ctx.data.n]);
  });
  sub.on('subscribed', (ctx) => {
    seen.subscribed.push(ctx);
    seen.log.push(['subscribed', ctx.recovered]);
  });
  sub.subscribe();
  return { sub, seen };
}

/** Publishes n = 1..count with the SDK, `every` ms apart; resolves with the outcomes. */
async function publishSequence(client, channel, count, every, midway) {
  const results = [];
  for (let n = 1; n <= count; n++) {
    results.push(client.publish(channel, { n }).then(() => 'ok', (err) => err));
    if (n === Math.floor(count / 2) && midway) await midway();
    await sleep(every);
  }
  return Promise.all(results);
}

test('a forced reconnect while publishing: every publication once, in order, recovered', { timeout: 30000 }, async () => {
  const server = await start();
  const subscriber = newClient(server, { token: connectionToken('reader', 3600) });
  const publisher = newClient(server);
  const { seen } = watch(subscriber, 'feed:forced');
  subscriber.connect();
  publisher.connect();
  await until(() => seen.subscribed.length === 1, 'the first subscribe');
  const connecting = [];
  subscriber.on('connecting', (ctx) => connecting.push(ctx.code));
  const outcomes = await publishSequence(publisher, 'feed:forced', 200, 5, async () => {
    const reply = await server.api('disconnect', { user: 'reader', reconnect: true });
    assert.equal(reply.result.disconnected, 1);
  });
  assert.deepEqual(outcomes.filter((o) => o !== 'ok'), [], 'every publish acknowledged');
  await until(() => seen.values.length >= 200, 'all 200 publications', 15000);
  await sleep(200);
  assert.deepEqual(seen.values, Array.from({ length: 200 }, (_, i) => i + 1));
  assert.deepEqual(connecting, [4005]);
  assert.equal(seen.subscribed.length, 2);
  assert.equal(seen.subscribed[1].recovered, true);
  assert.equal(seen.subscribed[1].wasRecovering, true);
  subscriber.disconnect();
  publisher.disconnect();
});

test('the server killed and restarted while publishing: no duplicate, no reordering, every gap announced by recovered: false', { timeout: 40000 }, async () => {
  const server = await start();
  const subscriber = newClient(server);
  const publisher = newClient(server, { timeout: 15000 });
  const { seen } = watch(subscriber, 'feed:restart');
  subscriber.connect();
  publisher.connect();
  await until(() => seen.subscribed.length === 1, 'the first subscribe');
  const outcomes = await publishSequence(publisher, 'feed:restart', 300, 5, () => server.restart());
  // Publishes made while the server was down waited in the queue and went out after reconnecting.
  assert.deepEqual(outcomes.filter((o) => o !== 'ok').map(String), [], 'every publish acknowledged');
  await until(() => seen.values.at(-1) === 300, 'the last publication', 15000);
  // A gap between two delivered publications is allowed only across a recovered: false.
  let last = 0;
  let announced = false;
  for (const [kind, value] of seen.log) {
    if (kind === 'subscribed') {
      announced = value === false && last > 0;
      continue;
    }
    assert.ok(value > last, `publication ${value} after ${last}: no duplicate, no reordering`);
    if (value !== last + 1) assert.ok(announced, `gap ${last} -> ${value} without recovered: false`);
    last = value;
  }
  const resubscribed = seen.subscribed.slice(1);
  assert.ok(resubscribed.length >= 1, 'resubscribed after the restart');
  assert.equal(resubscribed[0].recovered, false, 'the in-memory history died with the process: a new epoch');
  assert.notEqual(resubscribed[0].epoch, seen.subscribed[0].epoch);
  subscriber.disconnect();
  publisher.disconnect();
});

test('a slow consumer is cut off (4001) and recovers everything it missed, once, in order', { timeout: 90000 }, async () => {
  // A queue of 64 frames: a reader that stops reading overflows it once the
  // kernel's socket buffers are full, and the recovery (one reply frame) fits.
  const config = `
[hub.queue]
max_frames = 64

[hub.namespaces.feed]
allow_publish = true
history_size = 10000
history_ttl = "10m"
allow_history = true
allow_anonymous = true
`;
  const server = await start({ config });
  const sockets = [];
  class RecordingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }
  const subscriber = newClient(server, { websocket: RecordingWebSocket });
  const { seen } = watch(subscriber, 'feed:slow');
  const connecting = [];
  subscriber.on('connecting', (ctx) => connecting.push(ctx.code));
  subscriber.connect();
  await until(() => seen.subscribed.length === 1, 'the first subscribe');
  sockets[0].pause(); // stop reading: the kernel buffers fill, then the server's queue
  const filler = 'x'.repeat(4096);
  let published = 0;
  const publishBatch = (size) =>
    Promise.all(
      Array.from({ length: size }, () => server.api('publish', { channel: 'feed:slow', data: { n: ++published, filler } })),
    );
  // Publish until the server counts a slow consumer (bounded), then a little more.
  while ((await server.api('info', {})).result.slow_consumers === 0) {
    assert.ok(published < 8000, 'the server never cut the paused reader off');
    await publishBatch(25);
  }
  await publishBatch(25);
  sockets[0].resume();
  await until(() => seen.values.length >= published, `all ${published} publications`, 30000);
  await sleep(200);
  assert.deepEqual(connecting, [3001, 4001], 'connect, cut off as a slow consumer, reconnected once');
  // Concurrent API calls: the stream's order is the offsets', not the order n was picked in.
  assert.deepEqual(seen.offsets, Array.from({ length: published }, (_, i) => i + 1));
  assert.deepEqual([...seen.values].sort((a, b) => a - b), Array.from({ length: published }, (_, i) => i + 1));
  assert.equal(seen.subscribed.length, 2);
  assert.equal(seen.subscribed[1].recovered, true);
  assert.ok(seen.subscribed[1].recoveredCount > 0, 'some came from the recovery');
  subscriber.disconnect();
});
