// The SDK in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core; never `playwright install`) against `clarion serve`:
// the demo in two pages, the server restarted under an open page, and a
// page reloaded mid-stream that recovers from its sessionStorage position.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Server, sleep } from '../support/server.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const STEP = 15000;

let server;
let context;
let profile;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/install-test-deps.sh installs it`);
  server = await Server.start();
  profile = mkdtempSync(path.join(tmpdir(), 'clarion-sdk-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    timeout: 60000,
  });
});

after(async () => {
  if (context) await context.close().catch(() => {});
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (server) await server.stop();
});

async function newPage(who) {
  const page = await context.newPage();
  page.on('pageerror', (err) => process.stderr.write(`${who} page error: ${err}\n`));
  return page;
}

async function waitForText(page, selector, text) {
  await page.waitForFunction(
    ([sel, needle]) => document.querySelector(sel)?.textContent.includes(needle),
    [selector, text],
    { timeout: STEP },
  );
}

test('the demo in two pages: presence, chat and the leaderboard', { timeout: 90000 }, async () => {
  const alice = await newPage('alice');
  const bob = await newPage('bob');
  try {
    await alice.goto(`${server.httpUrl}/demo?name=alice`, { timeout: STEP });
    await waitForText(alice, '#status', 'connected (client');
    await bob.goto(`${server.httpUrl}/demo?name=bob`, { timeout: STEP });
    await waitForText(bob, '#status', 'connected (client');
    await waitForText(alice, '#online', 'bob');
    await waitForText(bob, '#online', 'alice');
    await waitForText(alice, '#messages', 'bob joined');
    await alice.fill('#chat-input', 'hello from alice');
    await alice.click('#send');
    await waitForText(bob, '#messages', 'alice:hello from alice');
    await bob.click('#score');
    await waitForText(alice, '#leaderboard', 'bob');
    assert.match((await alice.textContent('#leaderboard tr')).trim(), /^1bob\d+$/);
    await bob.close();
    await waitForText(alice, '#messages', 'bob left');
  } finally {
    await alice.close();
    if (!bob.isClosed()) await bob.close();
  }
});

test('the server restarted under an open page: it reconnects, and a message typed meanwhile is sent once', { timeout: 90000 }, async () => {
  const page = await newPage('carol');
  try {
    await page.goto(`${server.httpUrl}/demo?name=carol`, { timeout: STEP });
    await waitForText(page, '#status', 'connected (client');
    const before = await page.textContent('#status');
    await page.fill('#chat-input', 'before the restart');
    await page.click('#send');
    await waitForText(page, '#messages', 'carol:before the restart');

    await server.kill();
    await page.waitForFunction(() => document.querySelector('#status').textContent.startsWith('connecting'), null, {
      timeout: STEP,
    });
    await page.fill('#chat-input', 'typed while the server was down');
    await page.click('#send');
    await sleep(300);
    await server.spawn(server.port);

    await waitForText(page, '#status', 'connected (client');
    assert.notEqual(await page.textContent('#status'), before, 'a new connection');
    await waitForText(page, '#messages', 'carol:typed while the server was down');
    await sleep(500);
    const lines = await page.$$eval('#messages li', (items) => items.map((li) => li.textContent));
    assert.equal(lines.filter((l) => l === 'carol:typed while the server was down').length, 1, lines.join('\n'));
    // The server lost its history with the process: the page reloaded from the new stream.
    assert.ok(!lines.includes('carol:before the restart'), 'recovered: false made the page reload');
    const state = await page.evaluate(() => window.clarionDemo.client.state);
    assert.equal(state, 'connected');
  } finally {
    await page.close();
  }
});

// The app of this test, run in the server's own index page (a page the
// test served itself would be "public" to Chromium's local network access
// checks, which then block its WebSocket to 127.0.0.1). It keeps what it
// has seen in sessionStorage, like an app would, and lets the SDK keep
// positions there (`positionStorage: 'session'`).
const RELOAD_APP = `(() => {
  if (location.pathname !== '/') return;
  const load = (key) => JSON.parse(sessionStorage.getItem(key) || '[]');
  const seen = load('seen');
  const subscribed = load('subscribed');
  let sub = null;
  window.report = () => ({ seen, subscribed, state: sub ? sub.state : 'loading' });
  import('/clarion-client.js').then(({ Client }) => {
    const client = new Client('ws://' + location.host + '/connection/websocket', { positionStorage: 'session' });
    sub = client.newSubscription('feed:reload');
    sub.on('publication', (ctx) => {
      seen.push(ctx.data.n);
      sessionStorage.setItem('seen', JSON.stringify(seen));
    });
    sub.on('subscribed', (ctx) => {
      subscribed.push(ctx);
      sessionStorage.setItem('subscribed', JSON.stringify(subscribed));
    });
    sub.subscribe();
    client.connect();
  });
})();`;

test('a page reloaded mid-stream recovers from its sessionStorage position: every publication once, in order', { timeout: 90000 }, async () => {
  const page = await newPage('reload');
  await page.addInitScript(RELOAD_APP);
  try {
    await page.goto(`${server.httpUrl}/`, { timeout: STEP });
    await page.waitForFunction(() => window.report?.().state === 'subscribed', null, { timeout: STEP });
    // While the reloaded page waits for the SDK module (held here), publications
    // go on: the new page can only get them from the recovery.
    let release = null;
    await page.route(`${server.httpUrl}/clarion-client.js`, async (route) => {
      if (release) await release;
      await route.continue();
    });
    const COUNT = 120;
    let reloaded = null;
    let letGo = () => {};
    for (let n = 1; n <= COUNT; n++) {
      await server.api('publish', { channel: 'feed:reload', data: { n } });
      if (n === 50) {
        release = new Promise((resolve) => (letGo = resolve));
        reloaded = page.reload({ timeout: STEP }); // mid-stream; 50 may not have arrived yet
      }
      if (n === 60) letGo();
      await sleep(10);
    }
    await reloaded;
    await page.waitForFunction((count) => window.report?.().seen.at(-1) === count, COUNT, { timeout: STEP });
    const report = await page.evaluate(() => window.report());
    assert.deepEqual(report.seen, Array.from({ length: COUNT }, (_, i) => i + 1));
    assert.equal(report.subscribed.length, 2, 'one subscribe per page load');
    assert.equal(report.subscribed[0].recovered, false, 'first load: nothing to recover from');
    assert.equal(report.subscribed[1].wasRecovering, true, 'after the reload: from the stored position');
    assert.equal(report.subscribed[1].recovered, true);
    // How many depends on how far the old page got before it unloaded (it
    // may see 50 and more); at least those published while the new page
    // waited for its module came from the recovery, and none was missed
    // or doubled (the exact sequence above).
    assert.ok(report.subscribed[1].recoveredCount >= 1, `publications made during the reload came from the recovery (${report.subscribed[1].recoveredCount})`);
  } finally {
    await page.close();
  }
});
