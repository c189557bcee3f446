// The SDK's code tables against docs/protocol.md, which clarion-wire's
// test checks against the Rust types: docs, server and SDK cannot drift.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  DISCONNECT_CODES,
  ERROR_CODES,
  RECONNECT_CLOSE_CODES,
  UNSUBSCRIBE_CODES,
  mayReconnect,
  codeInfo,
} from '../../dist/clarion-client.js';

const PROTOCOL_MD = fileURLToPath(new URL('../../../../docs/protocol.md', import.meta.url));
const doc = readFileSync(PROTOCOL_MD, 'utf8');

/** The rows `| code | text | temporary | meaning |` of the table under `heading`. */
function table(heading) {
  const start = doc.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `docs/protocol.md has no "${heading}"`);
  const rest = doc.slice(start + heading.length + 2);
  const end = rest.search(/\n#{2,3} /);
  const section = end >= 0 ? rest.slice(0, end) : rest;
  const rows = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length !== 4 || !/^\d+$/.test(cells[0])) continue;
    assert.match(cells[2], /^(yes|no)$/, `temporary column of ${cells[0]}`);
    rows.push({ code: Number(cells[0]), text: cells[1], temporary: cells[2] === 'yes' });
  }
  assert.ok(rows.length > 0, `no rows under "${heading}"`);
  return rows;
}

const plain = (rows) => rows.map(({ code, text, temporary }) => ({ code, text, temporary }));

test('error codes are those of docs/protocol.md', () => {
  assert.deepEqual(plain(ERROR_CODES), table('### Error codes (in error replies)'));
});

test('disconnect codes are those of docs/protocol.md', () => {
  assert.deepEqual(plain(DISCONNECT_CODES), table('### Disconnect codes (in `disconnect` pushes and WebSocket close frames)'));
});

test('unsubscribe codes are those of docs/protocol.md', () => {
  assert.deepEqual(plain(UNSUBSCRIBE_CODES), table('### Unsubscribe codes (in `unsubscribe` pushes)'));
});

test('the close codes that mean reconnect are those the docs list', () => {
  const sentence = doc.match(/A close with\s+([\s\S]*?)\s+also\s+means reconnect/);
  assert.ok(sentence, 'docs/protocol.md no longer says which close codes mean reconnect');
  const codes = [...sentence[1].matchAll(/\b(1\d{3})\b/g)].map((m) => Number(m[1]));
  assert.deepEqual([...RECONNECT_CLOSE_CODES].sort(), [...new Set(codes)].sort());
});

test('the ranges decide reconnect: 4000-4499 yes, 4500-4999 no, as each table row says', () => {
  for (const { code, temporary } of DISCONNECT_CODES) assert.equal(mayReconnect(code), temporary, `code ${code}`);
  assert.equal(mayReconnect(4008), true, 'an unknown code in 4000-4499 (e.g. 4008 too many requests)');
  assert.equal(mayReconnect(4599), false);
  for (const code of [1001, 1006, 1011, 1012, 1013]) assert.equal(mayReconnect(code), true, `close ${code}`);
  for (const code of [1000, 1002, 1003, 1008, 1009]) assert.equal(mayReconnect(code), false, `close ${code}`);
  assert.equal(mayReconnect(3000), false, 'disconnect called');
  assert.equal(mayReconnect(3002), true, 'no heartbeat');
});

test('codeInfo finds every code of the three tables', () => {
  assert.deepEqual(codeInfo(429), { code: 429, text: 'too many requests', temporary: true });
  assert.equal(codeInfo(4501).temporary, false);
  assert.equal(codeInfo(2501).temporary, true);
  assert.equal(codeInfo(12345), undefined);
});
