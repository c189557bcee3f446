#!/usr/bin/env node
// Scenario client for Clarion's interop tests, on Node `ws` 8.
//
// Runs the client checks of the scenario spec in ../README.md against a
// scenario server:
//
//     node peer_client.js BASE_URL [--ca FILE] [--only NAME,...] [--skip NAME,...] [--deflate MODE]
//
// Prints `PASS name` or `FAIL name: reason` per check, then `N passed, M failed`;
// exits 0 only when every selected check passed (2 on bad arguments).
'use strict';

const fs = require('fs');
const WebSocket = require('ws');
const { DEFLATE_MODES, perMessageDeflate } = require('./scenario');

const MAX_MESSAGE = 64 * 1024 * 1024;
const MAX_FRAGMENTS = 1 << 20; // ws 8.23 defaults to 16384 frames a message
const TIMEOUT_MS = 10000;
const BIG_TIMEOUT_MS = 60000;
const UNICODE = 'héllo wörld ✓ 😀';

class CheckFailed extends Error {}

function expect(ok, what) {
  if (!ok) throw new CheckFailed(what);
}

// A message as the checks see it: { binary, data: Buffer }.
const text = (s) => ({ binary: false, data: Buffer.from(s, 'utf8') });
const binary = (bytes) => ({ binary: true, data: Buffer.from(bytes) });

function describe(m) {
  const shown = m.binary ? m.data.subarray(0, 20).toString('hex') : JSON.stringify(m.data.toString('utf8').slice(0, 40));
  return `${m.binary ? 'binary' : 'text'} ${shown}${m.data.length > 40 ? '...' : ''} (${m.data.length} bytes)`;
}

function expectMessage(got, want) {
  const same = got.binary === want.binary && got.data.equals(want.data);
  expect(same, `expected ${describe(want)}, got ${describe(got)}`);
}

function bigBinary() {
  const buf = Buffer.alloc(16 * 1024 * 1024);
  for (let i = 0; i < buf.length; i++) buf[i] = i % 251;
  return buf;
}

function bigText() {
  const n = 1024 * 1024;
  const alphabet = 'abcdefghijklmnopqrstuvwxyz'; // char i = alphabet[i % 26]
  return alphabet.repeat(Math.ceil(n / alphabet.length)).slice(0, n);
}

const COMPRESSION_MESSAGE = 64 * 1024;

// JSON lines {"seq":N,"msg":"permessage-deflate round trip"}, cut at 64 KiB.
function compressibleText() {
  let s = '';
  for (let seq = 0; s.length < COMPRESSION_MESSAGE; seq++) {
    s += `{"seq":${seq},"msg":"permessage-deflate round trip"}\n`;
  }
  return s.slice(0, COMPRESSION_MESSAGE);
}

// A 2 KiB LCG block (x = 1664525 x + 1013904223 mod 2^32, top byte) repeated to 64 KiB.
function farRepeatsBinary() {
  const block = Buffer.alloc(2048);
  let x = 1;
  for (let j = 0; j < block.length; j++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    block[j] = x >>> 24;
  }
  return Buffer.concat(Array(COMPRESSION_MESSAGE / block.length).fill(block));
}

// The permessage-deflate entry's parameters in a Sec-WebSocket-Extensions
// value, as a Map of name to value (null without one); null if none.
function deflateParams(header) {
  for (const extension of (header || '').split(',')) {
    const [name, ...params] = extension.split(';').map((part) => part.trim());
    if (name !== 'permessage-deflate') continue;
    const parsed = new Map();
    for (const param of params.filter(Boolean)) {
      const eq = param.indexOf('=');
      if (eq < 0) parsed.set(param, null);
      else parsed.set(param.slice(0, eq).trim(), param.slice(eq + 1).trim().replace(/^"|"$/g, ''));
    }
    return parsed;
  }
  return null;
}

// Whether the server's Sec-WebSocket-Extensions answer suits MODE.
function checkAnswer(mode, header) {
  const params = deflateParams(header);
  const shown = `Sec-WebSocket-Extensions: ${JSON.stringify(header || '')}`;
  if (mode === 'off') {
    expect(params === null, `permessage-deflate negotiated without an offer (${shown})`);
    return;
  }
  expect(params !== null, `permessage-deflate not negotiated (${shown})`);
  if (mode === 'no-context') {
    expect(params.has('server_no_context_takeover'), `server_no_context_takeover asked for but not granted (${shown})`);
  } else if (mode === 'window10') {
    const bits = params.get('server_max_window_bits') || '';
    const granted = /^\d+$/.test(bits) && Number(bits) >= 8 && Number(bits) <= 10;
    expect(granted, `server_max_window_bits=10 asked for but not granted (${shown})`);
  }
}

// One WebSocket with its events queued in arrival order, so a check can
// await "the next message", "the next pong" or "the close".
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.events = [];
    this.waiter = null;
    ws.on('message', (data, isBinary) => this.push({ type: 'message', binary: isBinary, data }));
    ws.on('pong', (data) => this.push({ type: 'pong', data }));
    ws.on('close', (code, reason) => this.push({ type: 'close', code, reason: reason.toString('utf8') }));
    ws.on('error', (error) => this.push({ type: 'error', error }));
  }

  push(event) {
    this.events.push(event);
    if (this.waiter) {
      const wake = this.waiter;
      this.waiter = null;
      wake();
    }
  }

  async next() {
    while (this.events.length === 0) await new Promise((resolve) => (this.waiter = resolve));
    return this.events.shift();
  }

  async recv() {
    for (;;) {
      const e = await this.next();
      if (e.type === 'message') return e;
      if (e.type === 'close') throw new CheckFailed(`connection closed (${e.code} ${JSON.stringify(e.reason)}) while waiting for a message`);
      if (e.type === 'error') throw e.error;
    }
  }

  async waitPong() {
    for (;;) {
      const e = await this.next();
      if (e.type === 'pong') return e;
      if (e.type === 'close') throw new CheckFailed(`connection closed (${e.code}) while waiting for a pong`);
      if (e.type === 'error') throw e.error;
    }
  }

  async waitClose() {
    for (;;) {
      const e = await this.next();
      if (e.type === 'close') return e;
      if (e.type === 'message') throw new CheckFailed(`expected a close, got ${describe(e)}`);
    }
  }

  send(message, opts = {}) {
    const payload = message.binary ? message.data : message.data.toString('utf8');
    this.ws.send(payload, { binary: message.binary, ...opts });
  }

  async roundTrip(message) {
    this.send(message);
    expectMessage(await this.recv(), message);
  }
}

class Client {
  constructor(base, ca, deflate) {
    this.base = base.replace(/\/+$/, '');
    this.ca = ca;
    this.deflate = deflate;
    this.open = [];
  }

  connect(path, protocols = []) {
    const options = {
      perMessageDeflate: perMessageDeflate(this.deflate),
      maxPayload: MAX_MESSAGE,
      maxFragments: MAX_FRAGMENTS,
      handshakeTimeout: TIMEOUT_MS,
    };
    if (this.ca) options.ca = this.ca;
    const ws = new WebSocket(this.base + path, protocols, options);
    this.open.push(ws);
    const conn = new Conn(ws);
    ws.once('upgrade', (response) => {
      conn.extensionsAnswer = response.headers['sec-websocket-extensions'] || null;
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(conn));
      ws.once('unexpected-response', (req, res) => reject(new CheckFailed(`handshake answered with HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  // Close what a check left open: politely, then by force.
  async finish() {
    const all = this.open.splice(0);
    await Promise.all(
      all.map(
        (ws) =>
          new Promise((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            const timer = setTimeout(() => (ws.terminate(), resolve()), 2000);
            ws.once('close', () => (clearTimeout(timer), resolve()));
            if (ws.readyState === WebSocket.OPEN) ws.close(1000);
            else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
          })
      )
    );
  }

  async checkText() {
    const c = await this.connect('/echo');
    await c.roundTrip(text('hello'));
    await c.roundTrip(text(UNICODE));
  }

  async checkBinary() {
    const c = await this.connect('/echo');
    await c.roundTrip(binary([...Array(256).keys()]));
  }

  async checkEmpty() {
    const c = await this.connect('/echo');
    await c.roundTrip(text(''));
    await c.roundTrip(binary([]));
  }

  async checkBig() {
    const c = await this.connect('/echo');
    await c.roundTrip(binary(bigBinary()));
    await c.roundTrip(text(bigText()));
  }

  async checkFragmentedSend() {
    const c = await this.connect('/echo');
    // The first send of a message picks its opcode; `fin: false` keeps it open.
    c.ws.send('frag-', { fin: false });
    c.ws.send('ment-', { fin: false });
    c.ws.send('ed', { fin: true });
    expectMessage(await c.recv(), text('frag-ment-ed'));
  }

  async checkPing() {
    const c = await this.connect('/echo');
    c.ws.ping('p1');
    const pong = await c.waitPong();
    expect(pong.data.equals(Buffer.from('p1')), `pong payload ${JSON.stringify(pong.data.toString())}, want "p1"`);
  }

  async checkCloseClient() {
    const c = await this.connect('/echo');
    c.ws.close(4000, 'done');
    // ws reports the code of the close frame it received back.
    const closed = await c.waitClose();
    expect(closed.code === 4000, `server's close code ${closed.code}, want 4000`);
  }

  async checkCloseServer() {
    const c = await this.connect('/close/4001');
    const closed = await c.waitClose();
    expect(closed.code === 4001, `close code ${closed.code}, want 4001`);
    expect(closed.reason === 'bye', `close reason ${JSON.stringify(closed.reason)}, want "bye"`);
  }

  async checkServerPing() {
    const c = await this.connect('/ping');
    expectMessage(await c.recv(), text('pong:are-you-there'));
    await c.roundTrip(text('after-ping'));
  }

  async checkFragmentedRecv() {
    const c = await this.connect('/fragmented');
    expectMessage(await c.recv(), text('frag-ment-ed'));
    expectMessage(await c.recv(), binary([0, 1, 2, 3, 4]));
  }

  async checkSubprotocol() {
    const c = await this.connect('/subprotocol', ['chat.v2']);
    expect(c.ws.protocol === 'chat.v2', `subprotocol ${JSON.stringify(c.ws.protocol)}, want "chat.v2"`);
    await c.roundTrip(text('hello'));
  }

  async checkCompression() {
    const c = await this.connect('/echo');
    checkAnswer(this.deflate, c.extensionsAnswer);
    // ws.extensions: the names of the extensions in use.
    const active = c.ws.extensions.split(',').includes('permessage-deflate');
    const want = this.deflate !== 'off';
    expect(active === want, `permessage-deflate in use: ${active}, want ${want}`);
    const big = compressibleText();
    for (const m of [text('hello'), text(big), text(big), binary(farRepeatsBinary())]) await c.roundTrip(m);
  }
}

const CHECKS = [
  ['text', 'checkText', TIMEOUT_MS],
  ['binary', 'checkBinary', TIMEOUT_MS],
  ['empty', 'checkEmpty', TIMEOUT_MS],
  ['big', 'checkBig', BIG_TIMEOUT_MS],
  ['fragmented-send', 'checkFragmentedSend', TIMEOUT_MS],
  ['ping', 'checkPing', TIMEOUT_MS],
  ['close-client', 'checkCloseClient', TIMEOUT_MS],
  ['close-server', 'checkCloseServer', TIMEOUT_MS],
  ['server-ping', 'checkServerPing', TIMEOUT_MS],
  ['fragmented-recv', 'checkFragmentedRecv', TIMEOUT_MS],
  ['subprotocol', 'checkSubprotocol', TIMEOUT_MS],
  ['compression', 'checkCompression', TIMEOUT_MS],
];

function usage(message) {
  process.stderr.write(
    `peer_client.js: ${message}\n` +
      'usage: node peer_client.js BASE_URL [--ca FILE] [--only NAME,...] [--skip NAME,...] [--deflate MODE]\n'
  );
  process.exit(2);
}

const names = (s) => (s || '').split(',').map((n) => n.trim()).filter(Boolean);

function parseArgs(argv) {
  const args = { base: null, ca: null, only: [], skip: [], deflate: 'off' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--ca' || a === '--only' || a === '--skip' || a === '--deflate') {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      const v = argv[++i];
      if (a === '--ca') args.ca = v;
      else if (a === '--deflate') args.deflate = v;
      else args[a.slice(2)] = args[a.slice(2)].concat(names(v));
    } else if (a.startsWith('-') || args.base !== null) {
      usage(`bad argument ${a}`);
    } else {
      args.base = a;
    }
  }
  if (args.base === null || !/^wss?:\/\//.test(args.base)) usage('BASE_URL must start with ws:// or wss://');
  if (!DEFLATE_MODES.includes(args.deflate)) usage(`bad --deflate ${args.deflate}: want ${DEFLATE_MODES.join(', ')}`);
  const known = new Set(CHECKS.map(([name]) => name));
  const unknown = args.only.concat(args.skip).filter((n) => !known.has(n));
  if (unknown.length) usage(`unknown check(s) ${unknown.join(', ')}; known: ${[...known].sort().join(', ')}`);
  return args;
}

async function runCheck(client, method, timeoutMs) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(`timed out after ${timeoutMs / 1000} s`), timeoutMs);
  });
  const run = client[method]().then(
    () => null,
    (e) => (e instanceof CheckFailed ? e.message : `${e.name || 'Error'}: ${e.message}`)
  );
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
    await client.finish();
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ca = args.ca ? fs.readFileSync(args.ca) : null;
  const client = new Client(args.base, ca, args.deflate);
  let passed = 0;
  let failed = 0;
  for (const [name, method, timeoutMs] of CHECKS) {
    if ((args.only.length && !args.only.includes(name)) || args.skip.includes(name)) continue;
    const reason = await runCheck(client, method, timeoutMs);
    if (reason === null) {
      passed++;
      console.log(`PASS ${name}`);
    } else {
      failed++;
      console.log(`FAIL ${name}: ${reason}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
