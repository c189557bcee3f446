#!/usr/bin/env node
// Scenario server for Clarion's interop tests, on Node `ws` 8.
//
// Implements the server half of the scenario spec in ../README.md:
//
//     node peer_server.js --port P [--host H] [--tls-cert FILE --tls-key FILE] [--deflate MODE]
//
// Prints exactly one line `LISTENING <port>` to stdout once it accepts
// connections, then serves until SIGTERM or SIGINT and exits with status 0.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');
const { DEFLATE_MODES, perMessageDeflate } = require('./scenario');

// Largest message accepted (the spec asks for at least 32 MiB).
const MAX_MESSAGE = 64 * 1024 * 1024;
// ws 8.23 refuses (1008) a message of more than 16384 frames; accept what a
// conformant peer may send: up to a 64 MiB message in 64-byte frames.
const MAX_FRAGMENTS = 1 << 20;
const SUBPROTOCOLS = ['chat.v2', 'chat.v1'];

function usage(message) {
  process.stderr.write(
    `peer_server.js: ${message}\n` +
      'usage: node peer_server.js --port P [--host H] [--tls-cert FILE --tls-key FILE] [--deflate MODE]\n'
  );
  process.exit(2);
}

function parseArgs(argv) {
  const args = { port: null, host: '127.0.0.1', tlsCert: null, tlsKey: null, deflate: 'off' };
  const flags = { '--port': 'port', '--host': 'host', '--tls-cert': 'tlsCert', '--tls-key': 'tlsKey', '--deflate': 'deflate' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = flags[argv[i]];
    if (!key || i + 1 >= argv.length) usage(`bad argument ${argv[i]}`);
    args[key] = argv[i + 1];
  }
  if (args.port === null || !/^\d+$/.test(args.port)) usage('--port P is required');
  args.port = Number(args.port);
  if ((args.tlsCert === null) !== (args.tlsKey === null)) usage('--tls-cert and --tls-key go together');
  if (!DEFLATE_MODES.includes(args.deflate)) usage(`bad --deflate ${args.deflate}: want ${DEFLATE_MODES.join(', ')}`);
  return args;
}

// Close codes an endpoint may send; ws refuses the others.
function sendable(code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

// chat.v2, else chat.v1, else no subprotocol (false).
function handleProtocols(offered) {
  return SUBPROTOCOLS.find((p) => offered.has(p)) || false;
}

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function closeWith(ws, codeText) {
  const code = /^\d+$/.test(codeText) ? Number(codeText) : 0;
  if (sendable(code)) ws.close(code, 'bye');
  else ws.close(1008, 'bad close code');
}

function pingThenEcho(ws) {
  const payload = 'are-you-there';
  const onPong = (data) => {
    if (data.toString() !== payload) return;
    ws.off('pong', onPong);
    ws.send(`pong:${payload}`);
  };
  ws.on('pong', onPong);
  echo(ws);
  ws.ping(payload);
}

function fragmentedThenEcho(ws) {
  // The first send of a message picks its opcode; `fin: false` keeps it open.
  ws.send('frag-', { fin: false });
  ws.send('ment-', { fin: false });
  ws.send('ed', { fin: true });
  ws.send(Buffer.from([0, 1, 2]), { binary: true, fin: false });
  ws.send(Buffer.from([3, 4]), { binary: true, fin: true });
  echo(ws);
}

function onConnection(ws, request) {
  const path = new URL(request.url, 'http://localhost').pathname;
  ws.on('error', () => {}); // a peer's protocol error closes the socket; nothing to add
  if (path.startsWith('/close/')) closeWith(ws, path.slice('/close/'.length));
  else if (path === '/ping') pingThenEcho(ws);
  else if (path === '/fragmented') fragmentedThenEcho(ws);
  else echo(ws); // /echo, /subprotocol and any other path
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const server = args.tlsCert
    ? https.createServer({ cert: fs.readFileSync(args.tlsCert), key: fs.readFileSync(args.tlsKey) })
    : http.createServer();
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: perMessageDeflate(args.deflate),
    maxPayload: MAX_MESSAGE,
    maxFragments: MAX_FRAGMENTS,
    handleProtocols,
  });
  wss.on('connection', onConnection);
  server.listen(args.port, args.host, () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });
  const stop = () => {
    for (const ws of wss.clients) ws.close(1001, 'going away');
    wss.close();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
