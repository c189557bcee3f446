// `clarion serve` for the integration and browser tests: the release
// binary of this repository (target/release/clarion, or $CLARION_BIN),
// started on a 127.0.0.1 port with a config file, stopped by its PID.
// Every wait is bounded.

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const API_KEY = 'sdk-test-api-key';
export const SECRET = 'sdk-test-secret';
const START_TIMEOUT_MS = 20000;

export function clarionBin() {
  const target = process.env.CARGO_TARGET_DIR || path.join(REPO_ROOT, 'target');
  const bin = process.env.CLARION_BIN || path.join(target, 'release', 'clarion');
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`cargo build --release -p clarion-cli\` first (or set CLARION_BIN)`);
  }
  return bin;
}

/** Publishing faster than the default 20 a second (the tests publish in bursts). */
export const FAST_PUBLISH = `
[hub.rate_limits]
publishes_per_second = 1000
publish_burst = 1000
`;

/** Namespaces for the SDK tests (anonymous clients allowed). */
export const CONFIG = `${FAST_PUBLISH}
[hub.namespaces.chat]
allow_publish = true
presence = true
join_leave = true
history_size = 1000
history_ttl = "10m"
allow_history = true
allow_anonymous = true

[hub.namespaces.leaderboard]
allow_publish = true
history_size = 1000
history_ttl = "1h"
allow_history = true
allow_anonymous = true

[hub.namespaces.feed]
allow_publish = true
history_size = 5000
history_ttl = "10m"
allow_history = true
allow_anonymous = true

[hub.namespaces.private]
allow_publish = true
history_size = 1000
history_ttl = "10m"
allow_history = true
require_subscription_token = true
`;

/** A running `clarion serve`. */
export class Server {
  static async start({ config = CONFIG, port = 0, args = [] } = {}) {
    const server = new Server(config, args);
    await server.spawn(port);
    return server;
  }

  constructor(config, args) {
    this.dir = mkdtempSync(path.join(tmpdir(), 'clarion-sdk-'));
    this.configPath = path.join(this.dir, 'clarion.toml');
    writeFileSync(this.configPath, config);
    this.args = args;
    this.child = null;
    this.port = 0;
    this.stderr = '';
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/connection/websocket`;
  }

  async spawn(port) {
    const args = ['serve', '--listen', `127.0.0.1:${port}`, '--api-key', API_KEY, '--hmac-secret', SECRET];
    args.push('--config', this.configPath, ...this.args);
    const env = { ...process.env };
    delete env.RUST_LOG;
    const child = spawn(clarionBin(), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-20000);
    });
    this.port = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`clarion serve did not start:\n${this.stderr}`)), START_TIMEOUT_MS);
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const match = out.match(/listening on https?:\/\/[^\s:]+:(\d+)/);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`clarion serve exited (${code}):\n${this.stderr}`));
      });
    });
  }

  /** Kills the process (SIGKILL by PID) and waits for it to exit. */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(child.pid, 'SIGKILL');
    await exited;
  }

  /** Kills it and starts it again on the same port (in-memory state is lost: a new epoch). */
  async restart() {
    await this.kill();
    await this.spawn(this.port);
  }

  async stop() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Calls the server API; returns the parsed body (throws unless 200). */
  async api(method, body) {
    const response = await fetch(`${this.httpUrl}/api/${method}`, {
      method: 'POST',
      headers: { Authorization: `apikey ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`api ${method}: ${response.status} ${text}`);
    return JSON.parse(text);
  }
}

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** An HS256 JWT signed with `secret` (default: the test servers' secret). */
export function jwt(claims, secret = SECRET) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** A connection token for `user` valid `ttlSeconds` from now. */
export function connectionToken(user, ttlSeconds, extra = {}) {
  return jwt({ sub: user, exp: Math.floor(Date.now() / 1000) + ttlSeconds, ...extra });
}

/** A subscription token for `user` and `channel`. */
export function subscriptionToken(user, channel, ttlSeconds) {
  return jwt({ sub: user, channel, exp: Math.floor(Date.now() / 1000) + ttlSeconds });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `predicate()` is true, polling; throws with `what` after `timeout` ms. */
export async function until(predicate, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
