// A scripted server for the unit tests: a fake transport factory that
// records every transport the client opens and every command it sends,
// and a fake clock whose timers run only when the test advances time.

export { Client, ClarionError, UnauthorizedError, SDK_CODES } from '../../dist/clarion-client.js';
import { Client } from '../../dist/clarion-client.js';

/** Lets promise chains and queued microtasks (the client's frame flush) run. */
export async function settle() {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock {
  constructor() {
    this.time = 0;
    this.timers = new Map();
    this.nextHandle = 1;
  }

  now() {
    return this.time;
  }

  setTimeout(callback, ms) {
    const handle = this.nextHandle++;
    this.timers.set(handle, { at: this.time + Math.max(0, ms), callback });
    return handle;
  }

  clearTimeout(handle) {
    this.timers.delete(handle);
  }

  /** Moves time forward by `ms`, running due timers in order (and what they set off). */
  async advance(ms) {
    const end = this.time + ms;
    await settle(); // what is already under way happens now, not at the end
    for (;;) {
      let next = null;
      for (const [handle, timer] of this.timers) {
        if (timer.at <= end && (next === null || timer.at < next[1].at)) next = [handle, timer];
      }
      if (next === null) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].callback();
      await settle();
    }
    this.time = end;
    await settle();
  }

  /** When the earliest timer is due, relative to now (null: none). */
  nextDelay() {
    let at = null;
    for (const timer of this.timers.values()) if (at === null || timer.at < at) at = timer.at;
    return at === null ? null : at - this.time;
  }
}

class FakeTransport {
  constructor(url, events) {
    this.name = 'fake';
    this.url = url;
    this.events = events;
    this.frames = [];
    this.sent = [];
    this.closedWith = null;
  }

  // ---- what the client calls ----
  send(frame) {
    if (this.closedWith) throw new Error('send after close');
    this.frames.push(frame);
    for (const line of frame.split('\n')) this.sent.push(JSON.parse(line));
  }

  close(code, reason) {
    this.closedWith = { code, reason };
  }

  // ---- what the test (the "server") does ----
  open() {
    this.events.open();
  }

  /** Commands sent so far with this method. */
  commands(method) {
    return this.sent.filter((c) => c.method === method);
  }

  last(method) {
    const list = this.commands(method);
    return list[list.length - 1];
  }

  frame(...messages) {
    this.events.frame(messages.map((m) => JSON.stringify(m)).join('\n'));
  }

  reply(command, result = {}) {
    this.frame({ id: command.id, result });
  }

  fail(command, code, message = 'error', temporary = false) {
    this.frame({ id: command.id, error: { code, message, temporary } });
  }

  push(push) {
    this.frame(push);
  }

  /** A disconnect push, then the close (as the server does). */
  disconnect(code, reason, reconnect) {
    this.frame({ push: 'disconnect', code, reason, reconnect });
    this.events.close(code, reason);
  }

  drop(code = 1006, reason = '') {
    this.events.close(code, reason);
  }
}

/** Every transport the client opened, newest last. */
export class FakeServer {
  constructor() {
    this.transports = [];
    this.factory = (url, events) => {
      const transport = new FakeTransport(url, events);
      this.transports.push(transport);
      return transport;
    };
  }

  get current() {
    return this.transports[this.transports.length - 1];
  }

  /** Opens the newest transport and answers its connect (after the client sent it). */
  async accept(result = {}) {
    const t = this.current;
    t.open();
    await settle();
    const connect = t.last('connect');
    if (!connect) throw new Error('the client sent no connect');
    t.reply(connect, { client: `client-${this.transports.length}`, version: '1', ...result });
    await settle();
    return t;
  }
}

/** A client on a fake server and clock, with every event it emitted recorded. */
export function setup(options = {}) {
  const server = new FakeServer();
  const clock = new FakeClock();
  const client = new Client('ws://fake/connection/websocket', {
    transport: server.factory,
    clock,
    random: () => 0.5,
    ...options,
  });
  const events = [];
  for (const name of ['connecting', 'connected', 'disconnected', 'error']) {
    client.on(name, (ctx) => events.push([name, ctx]));
  }
  return { server, clock, client, events };
}

/** Records a subscription's events. */
export function record(sub) {
  const events = [];
  for (const name of ['subscribing', 'subscribed', 'unsubscribed', 'publication', 'join', 'leave', 'error']) {
    sub.on(name, (ctx) => events.push([name, ctx]));
  }
  return events;
}

export function names(events) {
  return events.map(([name]) => name);
}
