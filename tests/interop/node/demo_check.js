#!/usr/bin/env node
// Headless Chromium on the demo page of `clarion serve`, in two pages:
//
//     node demo_check.js http://127.0.0.1:PORT
//
// Opens BASE/demo?name=alice and BASE/demo?name=bob in one browser (Debian's
// /usr/bin/chromium through playwright-core, a fresh temporary profile) and
// checks, in order:
//   connected  both pages say "connected"
//   presence   alice's online list shows bob (join push + his hello)
//   chat       a message alice sends appears in bob's page
//   score      bob's "score!" puts bob on top of alice's leaderboard
//   leave      closing bob's page takes him off alice's online list
// Prints `PASS name` / `FAIL name: reason`, then `N passed, M failed`;
// exits 0 only if every check passed.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const LAUNCH_TIMEOUT_MS = 60000;
const STEP_TIMEOUT_MS = 15000;

async function check(results, name, step) {
  if (results.some((r) => !r.ok)) {
    results.push({ name, ok: false, reason: 'skipped after an earlier failure' });
    return;
  }
  try {
    await step();
    results.push({ name, ok: true });
  } catch (e) {
    results.push({ name, ok: false, reason: String(e && e.message ? e.message : e).split('\n')[0] });
  }
}

// Waits until the element's text contains `needle`.
async function waitForText(page, selector, needle) {
  await page.waitForFunction(
    ([sel, text]) => {
      const el = document.querySelector(sel);
      return el && el.textContent.includes(text);
    },
    [selector, needle],
    { timeout: STEP_TIMEOUT_MS },
  );
}

async function main() {
  const base = process.argv[2];
  if (!base || !/^https?:\/\//.test(base)) {
    console.error('usage: node demo_check.js http://HOST:PORT');
    return 2;
  }
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'clarion-demo-chromium-'));
  const results = [];
  let context = null;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: LAUNCH_TIMEOUT_MS,
    });
    const alice = context.pages()[0] || (await context.newPage());
    const bob = await context.newPage();
    for (const [who, page] of [['alice', alice], ['bob', bob]]) {
      page.on('console', (m) => process.stderr.write(`${who} console: ${m.text()}\n`));
      page.on('pageerror', (e) => process.stderr.write(`${who} page error: ${e}\n`));
    }
    await check(results, 'connected', async () => {
      await alice.goto(`${base}/demo?name=alice`, { timeout: STEP_TIMEOUT_MS });
      await waitForText(alice, '#status', 'connected (client');
      await bob.goto(`${base}/demo?name=bob`, { timeout: STEP_TIMEOUT_MS });
      await waitForText(bob, '#status', 'connected (client');
    });
    await check(results, 'presence', async () => {
      await waitForText(alice, '#online', 'bob');
      await waitForText(bob, '#online', 'alice');
      await waitForText(alice, '#messages', 'bob joined');
    });
    await check(results, 'chat', async () => {
      await alice.fill('#chat-input', 'hello from alice');
      await alice.click('#send');
      await waitForText(bob, '#messages', 'alice:hello from alice');
    });
    await check(results, 'score', async () => {
      await bob.click('#score');
      await waitForText(alice, '#leaderboard', 'bob');
      const row = await alice.textContent('#leaderboard tr');
      if (!/^1bob\d+$/.test(row.trim())) throw new Error(`alice's first row is ${JSON.stringify(row)}`);
    });
    await check(results, 'leave', async () => {
      await bob.close();
      await waitForText(alice, '#messages', 'bob left');
      await alice.waitForFunction(() => !document.querySelector('#online').textContent.includes('bob'), null, {
        timeout: STEP_TIMEOUT_MS,
      });
    });
  } catch (e) {
    results.push({ name: 'browser', ok: false, reason: String(e && e.message ? e.message : e).split('\n')[0] });
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  let passed = 0;
  let failed = 0;
  for (const r of results) {
    if (r.ok) passed++;
    else failed++;
    console.log(r.ok ? `PASS ${r.name}` : `FAIL ${r.name}: ${r.reason}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then(
  (status) => process.exit(status),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
