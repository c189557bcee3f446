// The package itself: no runtime dependencies, the version in one place,
// and the committed bundle (web/clarion-client.js, embedded by clarion
// serve) built from the current sources.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { VERSION } from '../../dist/clarion-client.js';
import { bundle, sizes, PACKAGE_DIR, WEB_BUNDLE } from '../../scripts/bundle.mjs';

const pkg = JSON.parse(readFileSync(`${PACKAGE_DIR}/package.json`, 'utf8'));

test('zero runtime dependencies', () => {
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.peerDependencies, undefined);
  const code = readFileSync(`${PACKAGE_DIR}/dist/clarion-client.js`, 'utf8');
  assert.doesNotMatch(code, /^\s*import\s/m, 'the bundle imports nothing');
});

test('VERSION is the package version', () => {
  assert.equal(VERSION, pkg.version);
});

test('web/clarion-client.js is the bundle of the current sources (run `npm run build` and commit)', async () => {
  const fresh = await bundle();
  const committed = readFileSync(WEB_BUNDLE, 'utf8');
  assert.ok(fresh === committed, 'web/clarion-client.js is stale: run `npm run build` in clients/js and commit it');
});

test('the bundle size in README.md is within 5% of the measured one (`npm run size`)', async () => {
  const readme = readFileSync(`${PACKAGE_DIR}/README.md`, 'utf8');
  const stated = readme.match(/minified \+ gzipped \(([\d,]+) bytes/);
  assert.ok(stated, 'README.md states "minified + gzipped (N bytes"');
  const { gzipped } = await sizes();
  const claimed = Number(stated[1].replace(/,/g, ''));
  assert.ok(Math.abs(claimed - gzipped) / gzipped < 0.05, `README says ${claimed} bytes, measured ${gzipped}`);
});
