// The connection state machine against a scripted transport and a fake
// clock: connect, reconnect with backoff, permanent codes, heartbeat.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setup, settle, names, SDK_CODES, ClarionError } from '../support/fake.js';

test('connect sends connect with the token and name, then the client is connected', async () => {
  const { server, client, events } = setup({ token: 'T1', name: 'unit' });
  assert.equal(client.state, 'disconnected');
  client.connect();
  assert.equal(client.state, 'connecting');
  await settle();
  const t = await server.accept({ ping: 25 });
  const connect = t.last('connect');
  assert.equal(connect.params.token, 'T1');
  assert.equal(connect.params.name, 'unit');
  assert.equal(client.state, 'connected');
  assert.equal(client.clientId, 'client-1');
  assert.deepEqual(names(events), ['connecting', 'connected']);
  assert.deepEqual(events[0][1], { code: SDK_CODES.CONNECT_CALLED, reason: 'connect called' });
  assert.deepEqual(events[1][1], { client: 'client-1', transport: 'fake' });
});

test('a temporary disconnect code reconnects after a backoff delay, with the code in `connecting`', async () => {
  const { server, clock, client, events } = setup();
  client.connect();
  await settle();
  const first = await server.accept();
  first.disconnect(4001, 'slow consumer', true);
  await settle();
  assert.equal(client.state, 'connecting');
  assert.deepEqual(events.at(-1), ['connecting', { code: 4001, reason: 'slow consumer' }]);
  assert.equal(server.transports.length, 1, 'not before the backoff delay');
  // random() = 0.5 and attempt 0: min + 0.5 * (2 * min - min) = 750 ms.
  assert.equal(clock.nextDelay(), 750);
  await clock.advance(749);
  assert.equal(server.transports.length, 1);
  await clock.advance(1);
  assert.equal(server.transports.length, 2);
  await server.accept();
  assert.equal(client.state, 'connected');
  assert.deepEqual(names(events), ['connecting', 'connected', 'connecting', 'connected']);
});

test('close codes 1001, 1006, 1011, 1012, 1013 and 4000-4499 reconnect', async () => {
  for (const code of [1001, 1006, 1011, 1012, 1013, 4000, 4004, 4006, 4008, 4499]) {
    const { server, clock, client } = setup();
    client.connect();
    await settle();
    const t = await server.accept();
    t.drop(code, 'x');
    await clock.advance(1000);
    assert.equal(server.transports.length, 2, `close ${code} reconnects`);
    assert.equal(client.state, 'connecting');
  }
});

test('a permanent code (4500-4999) stops: disconnected, an error, no reconnect, calls rejected', async () => {
  for (const code of [4500, 4501, 4502, 4503, 4504, 4505, 4999]) {
    const { server, clock, client, events } = setup();
    client.connect();
    await settle();
    const t = await server.accept();
    const call = client.presence('chat:x');
    call.catch(() => {});
    await settle();
    t.disconnect(code, 'nope', false);
    await settle();
    assert.equal(client.state, 'disconnected', `code ${code}`);
    assert.deepEqual(events.at(-1), ['disconnected', { code, reason: 'nope' }]);
    const [, error] = events.find(([name]) => name === 'error');
    assert.equal(error.error.code, code);
    assert.equal(error.error.temporary, false);
    await assert.rejects(call, (err) => err instanceof ClarionError && err.code === SDK_CODES.CLIENT_DISCONNECTED);
    await clock.advance(120000);
    assert.equal(server.transports.length, 1, `no reconnect after ${code}`);
  }
});

test('the push decides over the close code: reconnect false means stop even for a 4xxx code', async () => {
  const { server, clock, client } = setup();
  client.connect();
  await settle();
  const t = await server.accept();
  t.frame({ push: 'disconnect', code: 4005, reason: 'told to stop', reconnect: false });
  t.drop(4005, 'told to stop');
  await clock.advance(60000);
  assert.equal(client.state, 'disconnected');
  assert.equal(server.transports.length, 1);
});

test('a normal close (1000) or a protocol error close (1002) does not reconnect', async () => {
  for (const code of [1000, 1002]) {
    const { server, clock, client } = setup();
    client.connect();
    await settle();
    (await server.accept()).drop(code, '');
    await clock.advance(60000);
    assert.equal(client.state, 'disconnected');
    assert.equal(server.transports.length, 1);
  }
});

test('the backoff grows with each failed attempt, stays within [min, max], and resets after a success', async () => {
  const { server, clock, client } = setup({ minReconnectDelay: 100, maxReconnectDelay: 1000, random: () => 0.999999 });
  client.connect();
  await settle();
  (await server.accept()).drop(1006);
  await settle();
  const delays = [];
  for (let i = 0; i < 8; i++) {
    const delay = clock.nextDelay();
    delays.push(Math.round(delay));
    await clock.advance(delay);
    server.current.drop(1006); // the attempt fails before opening
    await settle();
  }
  assert.deepEqual(delays, [200, 400, 800, 1000, 1000, 1000, 1000, 1000]);
  await clock.advance(clock.nextDelay());
  await server.accept();
  server.current.drop(1006);
  await settle();
  assert.equal(Math.round(clock.nextDelay()), 200, 'back to the first step after a connection succeeded');
});

test('the reconnect delay is jittered: uniform between min and the step ceiling', async () => {
  const samples = [];
  for (let i = 0; i < 200; i++) {
    const { server, clock, client } = setup({ minReconnectDelay: 500, maxReconnectDelay: 20000, random: Math.random });
    client.connect();
    await settle();
    (await server.accept()).drop(1006);
    await settle();
    samples.push(clock.nextDelay());
  }
  for (const d of samples) assert.ok(d >= 500 && d <= 1000, `first delay ${d} in [500, 1000]`);
  const low = samples.filter((d) => d < 750).length;
  assert.ok(low > 50 && low < 150, `about half below the middle (${low} of 200)`);
  assert.ok(new Set(samples.map((d) => Math.round(d))).size > 100, 'spread, not one value');
});

test('no connect reply within the timeout: the attempt is closed and retried', async () => {
  const { server, clock, client } = setup({ timeout: 5000 });
  client.connect();
  await settle();
  server.current.open();
  await clock.advance(5000);
  assert.deepEqual(server.transports[0].closedWith, { code: SDK_CODES.CONNECT_TIMEOUT, reason: 'connect timeout' });
  await clock.advance(1000);
  assert.equal(server.transports.length, 2);
  assert.equal(client.state, 'connecting');
});

test('heartbeat: after `ping` seconds of silence a ping is sent; an answer keeps the connection', async () => {
  const { server, clock, client } = setup();
  client.connect();
  await settle();
  const t = await server.accept({ ping: 25 });
  await clock.advance(24999);
  assert.equal(t.commands('ping').length, 0);
  await clock.advance(1);
  const ping = t.last('ping');
  assert.ok(ping, 'a ping after 25 s of silence');
  await clock.advance(3000);
  t.reply(ping);
  await clock.advance(20000);
  assert.equal(client.state, 'connected');
  assert.equal(t.closedWith, null);
  assert.equal(t.commands('ping').length, 1, 'the next ping only 25 s after the reply');
  await clock.advance(5000);
  assert.equal(t.commands('ping').length, 2);
});

test('heartbeat: traffic counts as life, so a busy connection sends no pings', async () => {
  const { server, clock, client } = setup();
  client.connect();
  await settle();
  const t = await server.accept({ ping: 25 });
  for (let i = 0; i < 10; i++) {
    await clock.advance(20000);
    t.push({ push: 'join', channel: 'none', info: { client: 'x', user: '' } });
  }
  assert.equal(t.commands('ping').length, 0);
  assert.equal(client.state, 'connected');
});

test('heartbeat: nothing within the grace after a ping declares the connection dead and reconnects', async () => {
  const { server, clock, client, events } = setup({ heartbeatGrace: 4000 });
  client.connect();
  await settle();
  const t = await server.accept({ ping: 10 });
  await clock.advance(10000);
  assert.ok(t.last('ping'));
  await clock.advance(3999);
  assert.equal(client.state, 'connected');
  await clock.advance(1);
  assert.deepEqual(t.closedWith, { code: SDK_CODES.NO_HEARTBEAT, reason: 'no heartbeat' });
  assert.equal(client.state, 'connecting');
  assert.deepEqual(events.at(-1), ['connecting', { code: SDK_CODES.NO_HEARTBEAT, reason: 'no heartbeat' }]);
  await clock.advance(1000);
  assert.equal(server.transports.length, 2);
});

test('a frame that is not JSON closes the connection and reconnects', async () => {
  const { server, clock, client } = setup();
  client.connect();
  await settle();
  const t = await server.accept();
  t.events.frame('{"id":');
  assert.equal(t.closedWith.code, SDK_CODES.BAD_FRAME);
  await clock.advance(1000);
  assert.equal(server.transports.length, 2);
  assert.equal(client.state, 'connecting');
});

test('disconnect() closes with 1000, stops reconnecting and rejects waiting calls; connect() resumes', async () => {
  const { server, clock, client, events } = setup();
  client.connect();
  await settle();
  const t = await server.accept();
  const call = client.history('chat:x');
  call.catch(() => {});
  client.disconnect();
  assert.equal(client.state, 'disconnected');
  assert.deepEqual(t.closedWith, { code: 1000, reason: 'disconnect called' });
  assert.deepEqual(events.at(-1), ['disconnected', { code: SDK_CODES.DISCONNECT_CALLED, reason: 'disconnect called' }]);
  await assert.rejects(call, (err) => err.code === SDK_CODES.CLIENT_DISCONNECTED && err.temporary === false);
  t.drop(1000, ''); // a late close event changes nothing
  await clock.advance(60000);
  assert.equal(server.transports.length, 1);
  client.connect();
  await settle();
  assert.equal(server.transports.length, 2);
});

test('disconnect() while waiting to reconnect cancels the attempt', async () => {
  const { server, clock, client } = setup();
  client.connect();
  await settle();
  (await server.accept()).drop(1006);
  await settle();
  client.disconnect();
  await clock.advance(60000);
  assert.equal(server.transports.length, 1);
  assert.equal(client.state, 'disconnected');
});

test('ready() resolves on connect and rejects when the client stops while it waits', async () => {
  const { server, clock, client } = setup();
  const ready = client.ready();
  client.connect();
  await settle();
  await server.accept();
  await ready;
  server.current.drop(1006);
  await settle();
  const again = client.ready();
  const outcome = again.then(() => 'resolved', (err) => err);
  await clock.advance(1000);
  server.current.open();
  server.current.disconnect(4502, 'force disconnect', false);
  await settle();
  const err = await outcome;
  assert.equal(err.code, SDK_CODES.CLIENT_DISCONNECTED);
  assert.equal(server.transports.length, 2);
});

test('a handler that throws does not break the state machine; the error is still reported as uncaught', () => {
  // In a child process: the test runner would take the uncaught error for a failure of its own.
  const script = `
    import { setup, settle } from ${JSON.stringify(new URL('../support/fake.js', import.meta.url).href)};
    const { server, client } = setup();
    let second = 0;
    client.on('connected', () => { throw new Error('app bug'); });
    client.on('connected', () => { second++; });
    process.on('uncaughtException', (err) => {
      console.log('uncaught:', err.message, 'state:', client.state, 'second handler:', second);
      process.exit(0);
    });
    client.connect();
    await settle();
    await server.accept();
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10000 });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'uncaught: app bug state: connected second handler: 1');
});
