// clarion-client 0.1.0: the Clarion client SDK, built from clients/js/src by
// `npm run build` in clients/js. Do not edit: change the sources and rebuild.

// src/backoff.ts
var Backoff = class {
  constructor(min, max, random) {
    this.min = min;
    this.max = max;
    this.random = random;
    this.attempt = 0;
  }
  /** The delay before the next attempt, in ms; each call counts one attempt. */
  next() {
    const ceiling = Math.min(this.max, this.min * 2 ** Math.min(this.attempt + 1, 30));
    this.attempt += 1;
    return this.min + this.random() * (ceiling - this.min);
  }
  /** After a success: the next delay starts from the bottom again. */
  reset() {
    this.attempt = 0;
  }
  get attempts() {
    return this.attempt;
  }
};

// src/codes.ts
function table(rows) {
  return Object.freeze(rows.map(([code, text, temporary]) => Object.freeze({ code, text, temporary })));
}
var ERROR_CODES = table([
  [400, "bad request", false],
  [401, "unauthorized", false],
  [403, "permission denied", false],
  [404, "unknown channel", false],
  [405, "method not found", false],
  [409, "already subscribed", false],
  [410, "not subscribed", false],
  [413, "limit exceeded", false],
  [419, "token expired", true],
  [429, "too many requests", true],
  [500, "internal error", true],
  [501, "not available", false],
  [503, "unavailable", true]
]);
var DISCONNECT_CODES = table([
  [4e3, "shutdown", true],
  [4001, "slow consumer", true],
  [4002, "internal error", true],
  [4003, "expired", true],
  [4004, "stale", true],
  [4005, "force reconnect", true],
  [4006, "insufficient state", true],
  [4008, "too many requests", true],
  [4500, "bad request", false],
  [4501, "unauthorized", false],
  [4502, "force disconnect", false],
  [4503, "message too big", false],
  [4504, "unsupported protocol", false],
  [4505, "connection limit", false]
]);
var UNSUBSCRIBE_CODES = table([
  [2e3, "unsubscribed by server", false],
  [2500, "insufficient state", true],
  [2501, "subscription expired", true]
]);
var RECONNECT_CLOSE_CODES = Object.freeze([1001, 1006, 1011, 1012, 1013]);
var SDK_CODES = Object.freeze({
  /** A call got no reply in time (`timeout` option). Temporary. */
  TIMEOUT: 1,
  /** The queue of calls waiting for a connection is full (`maxQueuedCalls`). Temporary. */
  QUEUE_FULL: 2,
  /** The client is disconnected (`disconnect()` or a permanent disconnect code). */
  CLIENT_DISCONNECTED: 3,
  /** The subscription is unsubscribed. */
  UNSUBSCRIBED: 4,
  /** `getToken` failed (rejected with something other than an `UnauthorizedError`). Temporary. */
  TOKEN_ERROR: 5,
  /** The application called `disconnect()`. */
  DISCONNECT_CALLED: 3e3,
  /** The application called `connect()`. */
  CONNECT_CALLED: 3001,
  /** Nothing arrived for the server's ping interval plus `heartbeatGrace`. */
  NO_HEARTBEAT: 3002,
  /** The server sent something that is not protocol JSON. */
  BAD_FRAME: 3003,
  /** No `connect` reply within `timeout`. */
  CONNECT_TIMEOUT: 3004,
  /** The application called `subscribe()`. */
  SUBSCRIBE_CALLED: 3100,
  /** The application called `unsubscribe()`. */
  UNSUBSCRIBE_CALLED: 3101,
  /** Publications had a gap (never expected from the server): resubscribing with recovery. */
  GAP: 3102
});
var byCode = new Map(
  [...ERROR_CODES, ...DISCONNECT_CODES, ...UNSUBSCRIBE_CODES].map((info) => [info.code, info])
);
function codeInfo(code) {
  return byCode.get(code);
}
function mayReconnect(code) {
  if (code >= 4e3 && code <= 4499) return true;
  if (code >= 4500 && code <= 4999) return false;
  if (code >= 3e3 && code <= 3999) return code !== SDK_CODES.DISCONNECT_CALLED;
  return RECONNECT_CLOSE_CODES.includes(code);
}

// src/clock.ts
var systemClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle)
};
var Timer = class {
  constructor(clock) {
    this.clock = clock;
    this.handle = null;
  }
  set(ms, callback) {
    this.clear();
    this.handle = this.clock.setTimeout(() => {
      this.handle = null;
      callback();
    }, ms);
  }
  clear() {
    if (this.handle !== null) this.clock.clearTimeout(this.handle);
    this.handle = null;
  }
  get active() {
    return this.handle !== null;
  }
};

// src/errors.ts
var ClarionError = class _ClarionError extends Error {
  constructor(code, message, temporary) {
    super(message);
    this.name = "ClarionError";
    this.code = code;
    this.temporary = temporary;
  }
  /** An error for a code of the tables, with their text unless `message` is given. */
  static fromCode(code, message) {
    const info = codeInfo(code);
    return new _ClarionError(code, message || info?.text || `code ${code}`, info?.temporary ?? false);
  }
  /** Whether the SDK gave up waiting for a reply. */
  isTimeout() {
    return this.code === SDK_CODES.TIMEOUT;
  }
};
var UnauthorizedError = class extends Error {
  constructor(message = "unauthorized") {
    super(message);
    this.name = "UnauthorizedError";
  }
};
function timeoutError() {
  return new ClarionError(SDK_CODES.TIMEOUT, "timeout", true);
}
function tokenError(cause) {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new ClarionError(SDK_CODES.TOKEN_ERROR, `getToken failed: ${detail}`, true);
}

// src/calls.ts
var Calls = class {
  constructor(clock, maxQueued) {
    this.clock = clock;
    this.maxQueued = maxQueued;
    this.entries = [];
  }
  /** A new call; it waits until `takeWaiting` hands it to a connection. */
  add(method, params, timeout) {
    if (this.waitingCount() >= this.maxQueued) {
      return Promise.reject(new ClarionError(SDK_CODES.QUEUE_FULL, "too many calls waiting for a connection", true));
    }
    return new Promise((resolve, reject) => {
      const entry = {
        method,
        params,
        id: null,
        timer: new Timer(this.clock),
        settle: (reply) => {
          if (!this.remove(entry)) return;
          if (reply.error) reject(new ClarionError(reply.error.code, reply.error.message, reply.error.temporary));
          else resolve(reply.result ?? {});
        },
        reject: (error) => {
          if (this.remove(entry)) reject(error);
        }
      };
      entry.timer.set(timeout, () => entry.reject(timeoutError()));
      this.entries.push(entry);
    });
  }
  /** The calls not sent on the current connection, in call order. */
  takeWaiting() {
    return this.entries.filter((entry) => entry.id === null);
  }
  /** The connection is gone: every call in flight waits again. */
  connectionLost() {
    for (const entry of this.entries) entry.id = null;
  }
  rejectAll(error) {
    for (const entry of [...this.entries]) entry.reject(error);
  }
  get size() {
    return this.entries.length;
  }
  waitingCount() {
    return this.entries.reduce((n, entry) => n + (entry.id === null ? 1 : 0), 0);
  }
  remove(entry) {
    const index = this.entries.indexOf(entry);
    if (index < 0) return false;
    this.entries.splice(index, 1);
    entry.timer.clear();
    return true;
  }
};

// src/emitter.ts
var Emitter = class {
  constructor() {
    this.handlers = /* @__PURE__ */ new Map();
  }
  /** Calls `handler` on every `event` until `off`. */
  on(event, handler) {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, set = /* @__PURE__ */ new Set());
    set.add(handler);
    return this;
  }
  /** Removes one handler, every handler of `event`, or (no argument) every handler. */
  off(event, handler) {
    if (event === void 0) this.handlers.clear();
    else if (handler === void 0) this.handlers.delete(event);
    else this.handlers.get(event)?.delete(handler);
    return this;
  }
  /** @internal */
  emit(event, ctx) {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        handler(ctx);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
};

// src/wait.ts
function waitFor(emitter, good, bad, clock, timeout, badError) {
  return new Promise((resolve, reject) => {
    const timer = new Timer(clock);
    const done = () => {
      timer.clear();
      emitter.off(good, onGood);
      emitter.off(bad, onBad);
    };
    const onGood = () => {
      done();
      resolve();
    };
    const onBad = () => {
      done();
      reject(badError());
    };
    emitter.on(good, onGood);
    emitter.on(bad, onBad);
    if (timeout !== void 0) {
      timer.set(timeout, () => {
        done();
        reject(new ClarionError(SDK_CODES.TIMEOUT, "timeout", true));
      });
    }
  });
}

// src/protocol.ts
var MAX_COMMANDS_PER_FRAME = 64;
var MAX_FRAME_BYTES = 64 * 1024;
function parseFrame(frame) {
  const messages = [];
  for (const line of frame.split("\n")) {
    if (line.trim() === "") continue;
    const value = JSON.parse(line);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new SyntaxError("a message is not a JSON object");
    }
    messages.push(value);
  }
  return messages;
}
function packFrames(commands) {
  const frames = [];
  let current = [];
  let bytes = 0;
  for (const command of commands) {
    const size = utf8Length(command) + 1;
    if (current.length > 0 && (current.length === MAX_COMMANDS_PER_FRAME || bytes + size > MAX_FRAME_BYTES)) {
      frames.push(current.join("\n"));
      current = [];
      bytes = 0;
    }
    current.push(command);
    bytes += size;
  }
  if (current.length > 0) frames.push(current.join("\n"));
  return frames;
}
function isReply(message) {
  return typeof message.id === "number";
}
function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 128) bytes += 1;
    else if (unit < 2048) bytes += 2;
    else if (unit >= 55296 && unit < 56320 && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

// src/storage.ts
var Positions = class {
  constructor(storage, prefix) {
    this.storage = storage;
    this.prefix = prefix;
  }
  load(channel) {
    const raw = this.guard(() => this.storage?.getItem(this.key(channel)) ?? null);
    if (!raw) return null;
    try {
      const value = JSON.parse(raw);
      if (typeof value.offset === "number" && typeof value.epoch === "string") {
        return { offset: value.offset, epoch: value.epoch };
      }
    } catch {
    }
    return null;
  }
  save(channel, position2) {
    this.guard(() => this.storage?.setItem(this.key(channel), JSON.stringify(position2)));
  }
  forget(channel) {
    this.guard(() => this.storage?.removeItem(this.key(channel)));
  }
  key(channel) {
    return `${this.prefix}${channel}`;
  }
  // Storage can throw (quota, privacy modes): positions are then kept in memory only.
  guard(op) {
    try {
      return op();
    } catch {
      return null;
    }
  }
};
function resolveStorage(option) {
  if (option === void 0 || option === "none") return null;
  if (option !== "session") return option;
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

// src/subscription.ts
var REFRESH_AHEAD_MS = 1e4;
var Subscription = class extends Emitter {
  /** @internal Use `client.newSubscription`. */
  constructor(client, channel, options, clock, random) {
    super();
    this._state = "unsubscribed";
    this.position = null;
    this.generation = 0;
    /** Whether the server may hold this subscription on the current connection. */
    this.serverHasIt = false;
    this.tokenFlight = null;
    /** Whether a subscribe with `recover` is waiting for its reply. */
    this.recovering = false;
    /** Connections in a row cut off as slow consumers while a recovery was on its way. */
    this.overflows = 0;
    this.client = client;
    this.channel = channel;
    this.options = options;
    this.clock = clock;
    const min = options.minResubscribeDelay ?? 500;
    this.backoff = new Backoff(min, Math.max(min, options.maxResubscribeDelay ?? 2e4), random);
    this.retryTimer = new Timer(clock);
    this.refreshTimer = new Timer(clock);
    this.token = options.token ?? null;
    if (this.recoverable) this.position = client.positions.load(channel);
  }
  get state() {
    return this._state;
  }
  /** The position of the last publication delivered (channels with history), or null. */
  get lastPosition() {
    return this.position ? { ...this.position } : null;
  }
  /** Subscribes (now, or as soon as the client is connected); no-op unless unsubscribed. */
  subscribe() {
    if (this._state !== "unsubscribed") return;
    this.backoff.reset();
    this.setState("subscribing", SDK_CODES.SUBSCRIBE_CALLED, "subscribe called");
    this.trySubscribe();
  }
  /** Unsubscribes; no-op if unsubscribed. The position is kept: `subscribe()` again recovers from it. */
  unsubscribe() {
    if (this._state === "unsubscribed") return;
    if (this.serverHasIt && this.client.connected) this.client.send("unsubscribe", { channel: this.channel });
    this.halt();
    this.setState("unsubscribed", SDK_CODES.UNSUBSCRIBE_CALLED, "unsubscribe called");
  }
  /** Resolves once subscribed; rejects if it becomes unsubscribed first, or after `timeout` ms. */
  ready(timeout) {
    if (this._state === "subscribed") return Promise.resolve();
    if (this._state === "unsubscribed") return Promise.reject(this.unsubscribedError());
    return waitFor(this, "subscribed", "unsubscribed", this.clock, timeout, () => this.unsubscribedError());
  }
  /** Publishes to this channel (`client.publish`); does not need the subscription to be active. */
  publish(data, options) {
    return this.client.publish(this.channel, data, options);
  }
  /** Who is in the channel, once subscribed. */
  async presence(options = {}) {
    await this.ready(options.timeout ?? this.client.defaultTimeout);
    return this.client.presence(this.channel, options);
  }
  /** How many clients and users are in the channel, once subscribed. */
  async presenceStats(options = {}) {
    await this.ready(options.timeout ?? this.client.defaultTimeout);
    return this.client.presenceStats(this.channel, options);
  }
  /** A page of the channel's history, once subscribed. */
  async history(options = {}) {
    await this.ready(options.timeout ?? this.client.defaultTimeout);
    return this.client.history(this.channel, options);
  }
  // ---- from the client ---------------------------------------------------
  /** @internal The client is connected: subscribe if we should be. */
  connected() {
    if (this._state === "subscribing") this.trySubscribe();
  }
  /** @internal The connection ended: the server forgot this subscription. */
  disconnected(code, reason) {
    this.giveUpRecoveryIfTooBig(code);
    this.serverHasIt = false;
    this.generation++;
    this.retryTimer.clear();
    this.refreshTimer.clear();
    if (this._state === "subscribed") this.setState("subscribing", code, reason);
  }
  /** @internal A push for this channel. */
  onPush(push) {
    switch (push.push) {
      case "publication":
        if (this._state === "subscribed") this.onPublication(push);
        break;
      case "join":
      case "leave":
        if (this._state === "subscribed") this.emit(push.push, { channel: this.channel, info: push.info });
        break;
      case "unsubscribe":
        this.onServerUnsubscribe(Number(push.code), String(push.reason ?? ""), push.resubscribe === true);
        break;
      default:
        break;
    }
  }
  // ---- subscribing ---------------------------------------------------------
  get recoverable() {
    return this.options.recoverable !== false;
  }
  // Sends at once when the token is at hand (so that resubscribes go out
  // before the calls queued during a reconnect), else after getToken.
  trySubscribe() {
    if (this._state !== "subscribing" || !this.client.connected) return;
    const generation = ++this.generation;
    const token = this.tokenAtHand();
    if (token !== void 0) return this.sendSubscribe(generation, token);
    this.fetchToken().then(
      (fresh) => {
        if (generation === this.generation && this.client.connected) this.sendSubscribe(generation, fresh);
      },
      (err) => {
        if (generation === this.generation) this.tokenFailed(err);
      }
    );
  }
  sendSubscribe(generation, token) {
    const params = { channel: this.channel };
    if (token) params.token = token;
    const from = this.recoverable ? this.position : null;
    if (from) Object.assign(params, { recover: true, offset: from.offset, epoch: from.epoch });
    this.serverHasIt = true;
    this.recovering = from !== null;
    this.client.send("subscribe", params, (reply) => this.onSubscribeReply(generation, reply, from !== null));
  }
  // A recovery larger than the server's per-connection queue makes the
  // server cut the connection (4001) before the reply is out, every time.
  // After two such cuts in a row, subscribe without recovery: the
  // application gets `recovered: false` and reloads, instead of a loop.
  giveUpRecoveryIfTooBig(code) {
    if (!this.recovering) return;
    this.recovering = false;
    this.overflows = code === 4001 ? this.overflows + 1 : 0;
    if (this.overflows < 2) return;
    this.overflows = 0;
    this.position = null;
    this.client.positions.forget(this.channel);
  }
  // Runs synchronously while the client reads the frame, so the recovered
  // publications come before any live one that follows in the same frame.
  onSubscribeReply(generation, reply, wasRecovering) {
    if (generation !== this.generation) return;
    this.recovering = false;
    if (reply.error) return this.onSubscribeError(reply.error);
    this.overflows = 0;
    const result = reply.result ?? {};
    this.backoff.reset();
    this.scheduleRefresh(result.ttl);
    const recovered = wasRecovering && result.recovered === true;
    const epoch = typeof result.epoch === "string" ? result.epoch : void 0;
    const offset = typeof result.offset === "number" ? result.offset : void 0;
    const missed = recovered ? this.unseen(result.publications ?? [], epoch) : [];
    if (!recovered) this.setPosition(offset, epoch);
    this._state = "subscribed";
    const recoveredCount = missed.length;
    this.emit("subscribed", { channel: this.channel, recovered, wasRecovering, recoveredCount, offset, epoch });
    for (const pub of missed) {
      if (generation !== this.generation) return;
      this.deliver(pub, epoch);
    }
    if (recovered && generation === this.generation) this.advanceTo(offset, epoch);
  }
  unseen(publications, epoch) {
    const from = this.position;
    if (!from || epoch !== from.epoch) return publications;
    return publications.filter((pub) => typeof pub.offset !== "number" || pub.offset > from.offset);
  }
  onSubscribeError(error) {
    this.serverHasIt = false;
    const err = new ClarionError(error.code, error.message, error.temporary);
    this.emit("error", { channel: this.channel, type: "subscribe", error: err });
    if (error.code === 419 && this.options.getToken) {
      this.token = null;
    } else if (!error.temporary) {
      this.halt();
      this.setState("unsubscribed", error.code, error.message);
      return;
    }
    this.retryLater();
  }
  retryLater() {
    this.retryTimer.set(this.backoff.next(), () => this.trySubscribe());
  }
  onServerUnsubscribe(code, reason, resubscribe) {
    if (this._state === "unsubscribed") return;
    this.serverHasIt = false;
    if (!resubscribe) {
      this.halt();
      this.setState("unsubscribed", code, reason);
      return;
    }
    if (code === 2501) this.token = null;
    this.restart(code, reason);
  }
  /** Back to subscribing on the same connection, recovering from the current position. */
  restart(code, reason) {
    if (this.serverHasIt && this.client.connected) this.client.send("unsubscribe", { channel: this.channel });
    this.serverHasIt = false;
    this.generation++;
    this.retryTimer.clear();
    this.refreshTimer.clear();
    this.setState("subscribing", code, reason);
    this.trySubscribe();
  }
  // ---- publications ----------------------------------------------------------
  onPublication(pub) {
    const at = this.position;
    if (typeof pub.offset === "number" && at) {
      if (pub.epoch !== void 0 && pub.epoch !== at.epoch) return this.restart(SDK_CODES.GAP, "new epoch");
      if (pub.offset <= at.offset) return;
      if (pub.offset > at.offset + 1) return this.restart(SDK_CODES.GAP, "gap in offsets");
    }
    this.deliver(pub, pub.epoch ?? at?.epoch);
  }
  deliver(pub, epoch) {
    const { data, offset, info } = pub;
    this.emit("publication", { channel: this.channel, data, offset, epoch, info });
    this.advanceTo(offset, epoch);
  }
  advanceTo(offset, epoch) {
    if (offset === void 0 || epoch === void 0) return;
    if (this.position && this.position.epoch === epoch && this.position.offset >= offset) return;
    this.setPosition(offset, epoch);
  }
  setPosition(offset, epoch) {
    if (offset === void 0 || epoch === void 0) {
      this.position = null;
      this.client.positions.forget(this.channel);
      return;
    }
    this.position = { offset, epoch };
    if (this.recoverable) this.client.positions.save(this.channel, this.position);
  }
  // ---- tokens ------------------------------------------------------------------
  /** The token to subscribe with (null: none needed), or undefined when getToken must give one. */
  tokenAtHand() {
    if (this.tokenFlight) return void 0;
    if (this.token !== null) return this.token;
    return this.options.getToken ? void 0 : null;
  }
  fetchToken() {
    const getToken = this.options.getToken;
    if (!getToken) return Promise.reject(new UnauthorizedError("no getToken"));
    if (this.tokenFlight) return this.tokenFlight;
    const flight = Promise.resolve().then(() => getToken({ channel: this.channel })).then((token) => {
      if (typeof token !== "string" || token === "") throw new UnauthorizedError("getToken gave no token");
      this.token = token;
      return token;
    }).finally(() => {
      if (this.tokenFlight === flight) this.tokenFlight = null;
    });
    this.tokenFlight = flight;
    return flight;
  }
  tokenFailed(err) {
    if (err instanceof UnauthorizedError) {
      const error = new ClarionError(401, `unauthorized: ${err.message}`, false);
      this.emit("error", { channel: this.channel, type: "token", error });
      this.halt();
      this.setState("unsubscribed", 401, "unauthorized");
      return;
    }
    this.emit("error", { channel: this.channel, type: "token", error: tokenError(err) });
    this.retryLater();
  }
  scheduleRefresh(ttl) {
    this.refreshTimer.clear();
    if (typeof ttl !== "number" || ttl <= 0 || !this.options.getToken) return;
    const lifetime = ttl * 1e3;
    const ahead = Math.min(REFRESH_AHEAD_MS, lifetime / 2);
    this.refreshTimer.set(lifetime - ahead, () => void this.refresh());
  }
  async refresh() {
    const generation = this.generation;
    let token;
    try {
      token = await this.fetchToken();
    } catch (err) {
      if (generation !== this.generation) return;
      const error = err instanceof UnauthorizedError ? new ClarionError(401, err.message, false) : tokenError(err);
      this.emit("error", { channel: this.channel, type: "refresh", error });
      return;
    }
    if (generation !== this.generation || this._state !== "subscribed") return;
    this.client.send("sub_refresh", { channel: this.channel, token }, (reply) => {
      if (generation !== this.generation) return;
      if (!reply.error) return this.scheduleRefresh(reply.result?.ttl);
      if (reply.error.code === 405) return;
      const { code, message, temporary } = reply.error;
      this.emit("error", { channel: this.channel, type: "refresh", error: new ClarionError(code, message, temporary) });
    });
  }
  // ---- state -----------------------------------------------------------------
  /** Stops everything in progress (timers, a pending subscribe). */
  halt() {
    this.serverHasIt = false;
    this.generation++;
    this.retryTimer.clear();
    this.refreshTimer.clear();
  }
  setState(state, code, reason) {
    this._state = state;
    if (state === "subscribing") this.emit("subscribing", { channel: this.channel, code, reason });
    if (state === "unsubscribed") this.emit("unsubscribed", { channel: this.channel, code, reason });
  }
  unsubscribedError() {
    return new ClarionError(SDK_CODES.UNSUBSCRIBED, `not subscribed to ${this.channel}`, false);
  }
};

// src/websocket.ts
var SUBPROTOCOL = "clarion.json.v1";
var OPEN = 1;
function webSocketTransport(WebSocketImpl) {
  return (url, events) => {
    const Impl = WebSocketImpl ?? globalThis.WebSocket;
    if (!Impl) {
      throw new TypeError("no WebSocket here: pass the `websocket` option (Node 20: `ws`)");
    }
    return new WebSocketTransport(new Impl(url, SUBPROTOCOL), events);
  };
}
var WebSocketTransport = class {
  constructor(ws, events) {
    this.ws = ws;
    this.name = "websocket";
    ws.onopen = () => events.open();
    ws.onmessage = (event) => events.frame(String(event.data));
    ws.onerror = () => {
    };
    ws.onclose = (event) => {
      this.detach();
      events.close(event.code || 1006, event.reason || "");
    };
  }
  send(frame) {
    if (this.ws.readyState === OPEN) this.ws.send(frame);
  }
  close(code, reason) {
    this.detach();
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.close();
    }
  }
  detach() {
    this.ws.onopen = null;
    this.ws.onmessage = null;
    this.ws.onclose = null;
    this.ws.onerror = () => {
    };
  }
};

// src/version.ts
var VERSION = "0.1.0";

// src/client.ts
var DEFAULTS = {
  name: "clarion-js",
  minReconnectDelay: 500,
  maxReconnectDelay: 2e4,
  timeout: 1e4,
  heartbeatGrace: 1e4,
  maxQueuedCalls: 100
};
var REFRESH_AHEAD_MS2 = 1e4;
var Client = class extends Emitter {
  constructor(url, options = {}) {
    super();
    this.subs = /* @__PURE__ */ new Map();
    this._state = "disconnected";
    this._clientId = null;
    this.transport = null;
    this.generation = 0;
    this.nextId = 1;
    this.pending = /* @__PURE__ */ new Map();
    this.outbox = [];
    this.flushQueued = false;
    this.disconnectPush = null;
    this.tokenExpiresAt = null;
    this.tokenFlight = null;
    this.pingInterval = 0;
    this.lastHeard = 0;
    this.pingSentAt = null;
    this.url = url;
    this.options = { ...DEFAULTS, ...stripUndefined(options) };
    this.clock = options.clock ?? systemClock;
    this.openTransport = options.transport ?? webSocketTransport(options.websocket);
    const { minReconnectDelay, maxReconnectDelay } = this.options;
    if (!(minReconnectDelay > 0 && maxReconnectDelay >= minReconnectDelay)) {
      throw new RangeError("need 0 < minReconnectDelay <= maxReconnectDelay");
    }
    this.backoff = new Backoff(minReconnectDelay, maxReconnectDelay, options.random ?? Math.random);
    this.calls = new Calls(this.clock, this.options.maxQueuedCalls);
    this.reconnectTimer = new Timer(this.clock);
    this.connectTimer = new Timer(this.clock);
    this.heartbeatTimer = new Timer(this.clock);
    this.refreshTimer = new Timer(this.clock);
    this.positions = new Positions(resolveStorage(options.positionStorage), `clarion-client:${url}:`);
    this.token = options.token ?? null;
  }
  get state() {
    return this._state;
  }
  /** The id the server gave the current connection (null when not connected). */
  get clientId() {
    return this._clientId;
  }
  // ---- the public API ----------------------------------------------------
  /** Starts connecting (and reconnecting, until `disconnect()`); no-op unless disconnected. */
  connect() {
    if (this._state !== "disconnected") return;
    this.backoff.reset();
    this.setState("connecting", SDK_CODES.CONNECT_CALLED, "connect called");
    void this.startAttempt();
  }
  /** Closes the connection and stops reconnecting; waiting calls reject. Subscriptions resume on `connect()`. */
  disconnect() {
    if (this._state === "disconnected") return;
    this.transport?.close(1e3, "disconnect called");
    this.endConnection();
    this.stop(SDK_CODES.DISCONNECT_CALLED, "disconnect called");
  }
  /** Resolves once connected; rejects if the client becomes disconnected first, or after `timeout` ms. */
  ready(timeout) {
    if (this._state === "connected") return Promise.resolve();
    return waitFor(this, "connected", "disconnected", this.clock, timeout, () => {
      return new ClarionError(SDK_CODES.CLIENT_DISCONNECTED, "client disconnected", false);
    });
  }
  /** A subscription to `channel` (not subscribed yet: call `subscribe()`). One per channel. */
  newSubscription(channel, options = {}) {
    if (this.subs.has(channel)) throw new Error(`there is already a subscription to ${channel}`);
    const sub = new Subscription(this, channel, options, this.clock, this.options.random ?? Math.random);
    this.subs.set(channel, sub);
    return sub;
  }
  /** The subscription to `channel`, if there is one. */
  getSubscription(channel) {
    return this.subs.get(channel) ?? null;
  }
  /** Unsubscribes `sub` and forgets it, so `newSubscription` may be called for its channel again. */
  removeSubscription(sub) {
    sub.unsubscribe();
    if (this.subs.get(sub.channel) === sub) this.subs.delete(sub.channel);
  }
  /** Every subscription, by channel. */
  subscriptions() {
    return Object.fromEntries(this.subs);
  }
  /**
   * Publishes `data` to `channel`. Carries an idempotency key: if the
   * connection drops before the reply, the publish is sent again after
   * reconnecting with the same key, and the server applies it once.
   */
  async publish(channel, data, options = {}) {
    const key = options.idempotencyKey ?? randomKey(this.options.random ?? Math.random);
    if (utf8Length(key) > 64 || key === "") throw new RangeError("idempotencyKey must be 1 to 64 bytes");
    const params = { channel, data, idempotency_key: key };
    const result = await this.call("publish", params, options.timeout);
    return position(result);
  }
  /** Who is in `channel` (needs a subscription to it and presence on in its namespace). */
  async presence(channel, options = {}) {
    const result = await this.call("presence", { channel }, options.timeout);
    return { clients: result.clients ?? [] };
  }
  /** How many clients and distinct users are in `channel`. */
  async presenceStats(channel, options = {}) {
    const result = await this.call("presence_stats", { channel }, options.timeout);
    return { numClients: Number(result.num_clients ?? 0), numUsers: Number(result.num_users ?? 0) };
  }
  /** A page of `channel`'s history. */
  async history(channel, options = {}) {
    const params = { channel };
    if (options.limit !== void 0) params.limit = options.limit;
    if (options.since !== void 0) params.since = options.since;
    if (options.reverse !== void 0) params.reverse = options.reverse;
    const result = await this.call("history", params, options.timeout);
    const epoch = result.epoch;
    const publications = (result.publications ?? []).map((pub) => ({
      channel,
      data: pub.data,
      offset: pub.offset,
      epoch: pub.epoch ?? epoch,
      info: pub.info
    }));
    return { publications, ...position(result) };
  }
  // ---- for subscriptions -------------------------------------------------
  /** @internal */
  get connected() {
    return this._state === "connected";
  }
  /** @internal Sends a command on the current connection (only when connected). */
  send(method, params, onReply = () => {
  }) {
    const id = this.nextId++;
    this.pending.set(id, onReply);
    const command = params === void 0 ? { id, method } : { id, method, params };
    this.outbox.push(JSON.stringify(command));
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }
  /** @internal A call that waits for a connection, and survives reconnects, until its timeout. */
  call(method, params, timeout) {
    const promise = this.calls.add(method, params, timeout ?? this.options.timeout);
    if (this.connected) this.sendCalls();
    return promise;
  }
  /** @internal */
  get defaultTimeout() {
    return this.options.timeout;
  }
  // ---- connecting ----------------------------------------------------------
  async startAttempt() {
    const generation = ++this.generation;
    this.connectTimer.set(this.options.timeout, () => {
      this.failAttempt(generation, SDK_CODES.CONNECT_TIMEOUT, "connect timeout");
    });
    let token;
    try {
      token = await this.connectionToken();
    } catch (err) {
      if (generation === this.generation) this.tokenFailed(err);
      return;
    }
    if (generation !== this.generation) return;
    try {
      this.transport = this.openTransport(this.url, {
        open: () => generation === this.generation && this.onOpen(token),
        frame: (data) => generation === this.generation && this.onFrame(data),
        close: (code, reason) => generation === this.generation && this.onClose(code, reason)
      });
    } catch (err) {
      this.emitError("transport", new ClarionError(SDK_CODES.CLIENT_DISCONNECTED, String(err), false));
      this.connectTimer.clear();
      this.stop(SDK_CODES.CLIENT_DISCONNECTED, "no transport");
    }
  }
  onOpen(token) {
    const params = { name: this.options.name, version: this.options.version ?? VERSION };
    if (token) params.token = token;
    this.send("connect", params, (reply) => this.onConnectReply(reply));
  }
  onConnectReply(reply) {
    if (reply.error) {
      this.emitError("connect", new ClarionError(reply.error.code, reply.error.message, reply.error.temporary));
      return;
    }
    const result = reply.result ?? {};
    this.connectTimer.clear();
    this.backoff.reset();
    this._clientId = String(result.client ?? "");
    this.startHeartbeat(Number(result.ping ?? 0));
    this.scheduleRefresh(result.ttl);
    this._state = "connected";
    for (const sub of this.subs.values()) sub.connected();
    this.sendCalls();
    this.emit("connected", { client: this._clientId, transport: this.transport?.name ?? "unknown" });
  }
  sendCalls() {
    for (const call of this.calls.takeWaiting()) {
      this.send(call.method, call.params, (reply) => call.settle(reply));
      call.id = this.nextId - 1;
    }
  }
  flush() {
    this.flushQueued = false;
    const commands = this.outbox;
    this.outbox = [];
    if (!this.transport) return;
    for (const frame of packFrames(commands)) this.transport.send(frame);
  }
  // ---- receiving ----------------------------------------------------------
  onFrame(data) {
    this.lastHeard = this.clock.now();
    this.pingSentAt = null;
    let messages;
    try {
      messages = parseFrame(data);
    } catch {
      this.failAttempt(this.generation, SDK_CODES.BAD_FRAME, "bad frame from server");
      return;
    }
    const generation = this.generation;
    for (const message of messages) {
      if (generation !== this.generation) return;
      if (isReply(message)) this.onReply(message);
      else if (typeof message.push === "string") this.onPush(message);
    }
  }
  onReply(reply) {
    const handler = this.pending.get(reply.id);
    if (!handler) return;
    this.pending.delete(reply.id);
    handler(reply);
  }
  onPush(push) {
    if (push.push === "disconnect") {
      this.disconnectPush = {
        code: Number(push.code),
        reason: String(push.reason ?? ""),
        reconnect: push.reconnect === true
      };
      return;
    }
    const channel = typeof push.channel === "string" ? push.channel : null;
    if (channel === null) return;
    const sub = this.subs.get(channel);
    if (sub) {
      sub.onPush(push);
      return;
    }
    if (push.push === "publication") {
      const { data, offset, epoch, info } = push;
      this.emit("publication", { channel, data, offset, epoch, info });
    } else if (push.push === "join" || push.push === "leave") {
      this.emit(push.push, { channel, info: push.info });
    }
  }
  // ---- closing -------------------------------------------------------------
  onClose(code, reason) {
    const push = this.disconnectPush;
    const reconnect = push ? push.reconnect : mayReconnect(code);
    if (push) ({ code, reason } = push);
    this.transport = null;
    this.connectionEnded(code, reason, reconnect);
  }
  /** Ends the current attempt from our side (timeout, dead heartbeat, bad frame), then reconnects. */
  failAttempt(generation, code, reason) {
    if (generation !== this.generation || this._state === "disconnected") return;
    this.transport?.close(code, reason);
    this.transport = null;
    this.connectionEnded(code, reason, true);
  }
  connectionEnded(code, reason, reconnect) {
    const wasConnected = this._state === "connected";
    this.endConnection();
    if (code === 4003) {
      this.tokenExpiresAt = 0;
      if (!this.options.getToken) reconnect = false;
    }
    if (!reconnect) {
      this.emitError("disconnect", ClarionError.fromCode(code, reason));
      this.stop(code, reason);
      return;
    }
    if (wasConnected) this.setState("connecting", code, reason);
    this.subsLost(code, reason);
    this.reconnectTimer.set(this.backoff.next(), () => void this.startAttempt());
  }
  /** Forgets everything that belonged to the connection that just ended. */
  endConnection() {
    this.generation++;
    this.transport = null;
    this.disconnectPush = null;
    this._clientId = null;
    this.pending.clear();
    this.outbox = [];
    this.connectTimer.clear();
    this.heartbeatTimer.clear();
    this.refreshTimer.clear();
    this.pingSentAt = null;
    this.calls.connectionLost();
    if (this._state === "connected") this._state = "connecting";
  }
  /** The server forgot our subscriptions with the connection. */
  subsLost(code, reason) {
    for (const sub of this.subs.values()) sub.disconnected(code, reason);
  }
  /** Goes to `disconnected` for good (until `connect()`). */
  stop(code, reason) {
    this.generation++;
    this.reconnectTimer.clear();
    this.connectTimer.clear();
    this.calls.rejectAll(new ClarionError(SDK_CODES.CLIENT_DISCONNECTED, `client disconnected: ${reason}`, false));
    this.setState("disconnected", code, reason);
    this.subsLost(code, reason);
  }
  setState(state, code, reason) {
    this._state = state;
    if (state === "connecting") this.emit("connecting", { code, reason });
    if (state === "disconnected") this.emit("disconnected", { code, reason });
  }
  emitError(type, error) {
    this.emit("error", { type, error });
  }
  // ---- heartbeat -------------------------------------------------------------
  // The server says in `ping` how often it expects to hear from a client.
  // After that long without a frame, send a `ping` command; if nothing at
  // all arrives within `heartbeatGrace` after it, the connection is dead.
  startHeartbeat(pingSeconds) {
    this.pingInterval = pingSeconds > 0 ? pingSeconds * 1e3 : 0;
    this.lastHeard = this.clock.now();
    if (this.pingInterval > 0) this.heartbeatTimer.set(this.pingInterval, () => this.checkHeartbeat());
  }
  checkHeartbeat() {
    const now = this.clock.now();
    const silent = now - this.lastHeard;
    if (this.pingSentAt === null && silent < this.pingInterval) {
      this.heartbeatTimer.set(this.pingInterval - silent, () => this.checkHeartbeat());
    } else if (this.pingSentAt === null) {
      this.pingSentAt = now;
      this.send("ping", void 0);
      this.heartbeatTimer.set(this.options.heartbeatGrace, () => this.checkHeartbeat());
    } else if (now - this.pingSentAt >= this.options.heartbeatGrace) {
      this.failAttempt(this.generation, SDK_CODES.NO_HEARTBEAT, "no heartbeat");
    } else {
      this.heartbeatTimer.set(this.options.heartbeatGrace - (now - this.pingSentAt), () => this.checkHeartbeat());
    }
  }
  // ---- tokens ----------------------------------------------------------------
  async connectionToken() {
    if (this.tokenFlight) return this.tokenFlight;
    const expired = this.tokenExpiresAt !== null && this.clock.now() >= this.tokenExpiresAt;
    if (this.token !== null && !expired) return this.token;
    if (this.options.getToken) return this.fetchToken();
    return this.token;
  }
  // One getToken call at a time: a refresh and a reconnect that both need
  // a token share the same call.
  fetchToken() {
    const getToken = this.options.getToken;
    if (!getToken) return Promise.reject(new UnauthorizedError("no getToken"));
    if (this.tokenFlight) return this.tokenFlight;
    const flight = Promise.resolve().then(() => getToken()).then((token) => {
      if (typeof token !== "string" || token === "") throw new UnauthorizedError("getToken gave no token");
      this.token = token;
      this.tokenExpiresAt = null;
      return token;
    }).finally(() => {
      if (this.tokenFlight === flight) this.tokenFlight = null;
    });
    this.tokenFlight = flight;
    return flight;
  }
  tokenFailed(err) {
    this.connectTimer.clear();
    if (err instanceof UnauthorizedError) {
      this.emitError("token", new ClarionError(4501, `unauthorized: ${err.message}`, false));
      this.stop(4501, "unauthorized");
      return;
    }
    this.emitError("token", tokenError(err));
    this.reconnectTimer.set(this.backoff.next(), () => void this.startAttempt());
  }
  scheduleRefresh(ttl) {
    if (typeof ttl !== "number" || ttl <= 0) {
      this.tokenExpiresAt = null;
      return;
    }
    const lifetime = ttl * 1e3;
    this.tokenExpiresAt = this.clock.now() + lifetime;
    if (!this.options.getToken) return;
    const ahead = Math.min(REFRESH_AHEAD_MS2, lifetime / 2);
    this.refreshTimer.set(lifetime - ahead, () => void this.refresh());
  }
  async refresh() {
    const generation = this.generation;
    let token;
    try {
      token = await this.fetchToken();
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof UnauthorizedError) {
        this.transport?.close(1e3, "unauthorized");
        this.endConnection();
        this.emitError("refresh", new ClarionError(4501, `unauthorized: ${err.message}`, false));
        this.stop(4501, "unauthorized");
        return;
      }
      this.emitError("refresh", tokenError(err));
      this.retryRefresh();
      return;
    }
    if (generation !== this.generation || !this.connected) return;
    this.send("refresh", { token }, (reply) => {
      if (!reply.error) return this.scheduleRefresh(reply.result?.ttl);
      const { code, message, temporary } = reply.error;
      this.emitError("refresh", new ClarionError(code, message, temporary));
      if (temporary) this.retryRefresh();
    });
  }
  // Try again soon, but never past the expiry (the server then disconnects with 4003).
  retryRefresh() {
    const left = (this.tokenExpiresAt ?? this.clock.now()) - this.clock.now();
    if (left > 0) this.refreshTimer.set(Math.min(this.backoff.next(), left / 2), () => void this.refresh());
  }
};
function position(result) {
  const out = {};
  if (typeof result.offset === "number") out.offset = result.offset;
  if (typeof result.epoch === "string") out.epoch = result.epoch;
  return out;
}
function stripUndefined(options) {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== void 0));
}
function randomKey(random) {
  const bytes = new Uint8Array(16);
  const crypto = globalThis.crypto;
  if (crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
export {
  ClarionError,
  Client,
  DISCONNECT_CODES,
  ERROR_CODES,
  RECONNECT_CLOSE_CODES,
  SDK_CODES,
  SUBPROTOCOL,
  Subscription,
  UNSUBSCRIBE_CODES,
  UnauthorizedError,
  VERSION,
  codeInfo,
  mayReconnect,
  webSocketTransport
};
