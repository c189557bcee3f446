// The connection state machine:
//
//   disconnected --connect()--> connecting --connect reply--> connected
//        ^                        ^    |                          |
//        |                        |    +-- temporary close -------+ (backoff, reconnect)
//        +-- disconnect(), permanent code (4500-4999), refused token --+
//
// Every transport event carries the generation of the attempt it belongs
// to; anything from an older generation (a late close, a token that
// arrives after the connection died, a reply to a dead connection) is
// dropped, which is what keeps reconnects and token refreshes race-free.

import { Backoff } from './backoff.js';
import { Calls } from './calls.js';
import { Timer, systemClock, type Clock } from './clock.js';
import { mayReconnect, SDK_CODES } from './codes.js';
import { Emitter } from './emitter.js';
import { waitFor } from './wait.js';
import { ClarionError, UnauthorizedError, tokenError } from './errors.js';
import { isReply, packFrames, parseFrame, utf8Length, type ClientInfo, type Push, type Reply } from './protocol.js';
import { Positions, resolveStorage } from './storage.js';
import { Subscription } from './subscription.js';
import type { Transport, TransportFactory } from './transport.js';
import type {
  CallOptions,
  ClientEvents,
  ClientOptions,
  ClientState,
  HistoryOptions,
  HistoryResult,
  PresenceResult,
  PresenceStatsResult,
  PublicationContext,
  PublishOptions,
  PublishResult,
  SubscriptionOptions,
} from './types.js';
import { webSocketTransport } from './websocket.js';
import { VERSION } from './version.js';

type ReplyHandler = (reply: Reply) => void;

interface DisconnectPush {
  code: number;
  reason: string;
  reconnect: boolean;
}

const DEFAULTS = {
  name: 'clarion-js',
  minReconnectDelay: 500,
  maxReconnectDelay: 20000,
  timeout: 10000,
  heartbeatGrace: 10000,
  maxQueuedCalls: 100,
};

/** At most this long before a token expires, it is refreshed (and at half its lifetime for short ones). */
const REFRESH_AHEAD_MS = 10000;

/** A connection to `clarion serve`, with its subscriptions. */
export class Client extends Emitter<ClientEvents> {
  /** The server's WebSocket URL (`ws://host:port/connection/websocket`). */
  readonly url: string;
  private readonly options: ClientOptions & typeof DEFAULTS;
  private readonly clock: Clock;
  private readonly openTransport: TransportFactory;
  private readonly backoff: Backoff;
  private readonly calls: Calls;
  private readonly subs = new Map<string, Subscription>();
  private readonly reconnectTimer: Timer;
  private readonly connectTimer: Timer;
  private readonly heartbeatTimer: Timer;
  private readonly refreshTimer: Timer;
  /** @internal */
  readonly positions: Positions;
  private _state: ClientState = 'disconnected';
  private _clientId: string | null = null;
  private transport: Transport | null = null;
  private generation = 0;
  private nextId = 1;
  private pending = new Map<number, ReplyHandler>();
  private outbox: string[] = [];
  private flushQueued = false;
  private disconnectPush: DisconnectPush | null = null;
  private token: string | null;
  private tokenExpiresAt: number | null = null;
  private tokenFlight: Promise<string> | null = null;
  private pingInterval = 0;
  private lastHeard = 0;
  private pingSentAt: number | null = null;

  constructor(url: string, options: ClientOptions = {}) {
    super();
    this.url = url;
    this.options = { ...DEFAULTS, ...stripUndefined(options) };
    this.clock = options.clock ?? systemClock;
    this.openTransport = options.transport ?? webSocketTransport(options.websocket);
    const { minReconnectDelay, maxReconnectDelay } = this.options;
    if (!(minReconnectDelay > 0 && maxReconnectDelay >= minReconnectDelay)) {
      throw new RangeError('need 0 < minReconnectDelay <= maxReconnectDelay');
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

  get state(): ClientState {
    return this._state;
  }

  /** The id the server gave the current connection (null when not connected). */
  get clientId(): string | null {
    return this._clientId;
  }

  // ---- the public API ----------------------------------------------------

  /** Starts connecting (and reconnecting, until `disconnect()`); no-op unless disconnected. */
  connect(): void {
    if (this._state !== 'disconnected') return;
    this.backoff.reset();
    this.setState('connecting', SDK_CODES.CONNECT_CALLED, 'connect called');
    void this.startAttempt();
  }

  /** Closes the connection and stops reconnecting; waiting calls reject. Subscriptions resume on `connect()`. */
  disconnect(): void {
    if (this._state === 'disconnected') return;
    this.transport?.close(1000, 'disconnect called');
    this.endConnection();
    this.stop(SDK_CODES.DISCONNECT_CALLED, 'disconnect called');
  }

  /** Resolves once connected; rejects if the client becomes disconnected first, or after `timeout` ms. */
  ready(timeout?: number): Promise<void> {
    if (this._state === 'connected') return Promise.resolve();
    return waitFor(this, 'connected', 'disconnected', this.clock, timeout, () => {
      return new ClarionError(SDK_CODES.CLIENT_DISCONNECTED, 'client disconnected', false);
    });
  }

  /** A subscription to `channel` (not subscribed yet: call `subscribe()`). One per channel. */
  newSubscription(channel: string, options: SubscriptionOptions = {}): Subscription {
    if (this.subs.has(channel)) throw new Error(`there is already a subscription to ${channel}`);
    const sub = new Subscription(this, channel, options, this.clock, this.options.random ?? Math.random);
    this.subs.set(channel, sub);
    return sub;
  }

  /** The subscription to `channel`, if there is one. */
  getSubscription(channel: string): Subscription | null {
    return this.subs.get(channel) ?? null;
  }

  /** Unsubscribes `sub` and forgets it, so `newSubscription` may be called for its channel again. */
  removeSubscription(sub: Subscription): void {
    sub.unsubscribe();
    if (this.subs.get(sub.channel) === sub) this.subs.delete(sub.channel);
  }

  /** Every subscription, by channel. */
  subscriptions(): Record<string, Subscription> {
    return Object.fromEntries(this.subs);
  }

  /**
   * Publishes `data` to `channel`. Carries an idempotency key: if the
   * connection drops before the reply, the publish is sent again after
   * reconnecting with the same key, and the server applies it once.
   */
  async publish(channel: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    const key = options.idempotencyKey ?? randomKey(this.options.random ?? Math.random);
    if (utf8Length(key) > 64 || key === '') throw new RangeError('idempotencyKey must be 1 to 64 bytes');
    const params = { channel, data, idempotency_key: key };
    const result = await this.call('publish', params, options.timeout);
    return position(result);
  }

  /** Who is in `channel` (needs a subscription to it and presence on in its namespace). */
  async presence(channel: string, options: CallOptions = {}): Promise<PresenceResult> {
    const result = await this.call('presence', { channel }, options.timeout);
    return { clients: (result.clients as PresenceResult['clients']) ?? [] };
  }

  /** How many clients and distinct users are in `channel`. */
  async presenceStats(channel: string, options: CallOptions = {}): Promise<PresenceStatsResult> {
    const result = await this.call('presence_stats', { channel }, options.timeout);
    return { numClients: Number(result.num_clients ?? 0), numUsers: Number(result.num_users ?? 0) };
  }

  /** A page of `channel`'s history. */
  async history(channel: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    const params: Record<string, unknown> = { channel };
    if (options.limit !== undefined) params.limit = options.limit;
    if (options.since !== undefined) params.since = options.since;
    if (options.reverse !== undefined) params.reverse = options.reverse;
    const result = await this.call('history', params, options.timeout);
    const epoch = result.epoch as string | undefined;
    const publications = ((result.publications as PublicationContext[]) ?? []).map((pub) => ({
      channel,
      data: pub.data,
      offset: pub.offset,
      epoch: pub.epoch ?? epoch,
      info: pub.info,
    }));
    return { publications, ...position(result) };
  }

  // ---- for subscriptions -------------------------------------------------

  /** @internal */
  get connected(): boolean {
    return this._state === 'connected';
  }

  /** @internal Sends a command on the current connection (only when connected). */
  send(method: string, params: Record<string, unknown> | undefined, onReply: ReplyHandler = () => {}): void {
    const id = this.nextId++;
    this.pending.set(id, onReply);
    const command = params === undefined ? { id, method } : { id, method, params };
    this.outbox.push(JSON.stringify(command));
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** @internal A call that waits for a connection, and survives reconnects, until its timeout. */
  call(method: string, params: Record<string, unknown>, timeout?: number): Promise<Record<string, unknown>> {
    const promise = this.calls.add(method, params, timeout ?? this.options.timeout);
    if (this.connected) this.sendCalls();
    return promise;
  }

  /** @internal */
  get defaultTimeout(): number {
    return this.options.timeout;
  }

  // ---- connecting ----------------------------------------------------------

  private async startAttempt(): Promise<void> {
    const generation = ++this.generation;
    this.connectTimer.set(this.options.timeout, () => {
      this.failAttempt(generation, SDK_CODES.CONNECT_TIMEOUT, 'connect timeout');
    });
    let token: string | null;
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
        close: (code, reason) => generation === this.generation && this.onClose(code, reason),
      });
    } catch (err) {
      this.emitError('transport', new ClarionError(SDK_CODES.CLIENT_DISCONNECTED, String(err), false));
      this.connectTimer.clear();
      this.stop(SDK_CODES.CLIENT_DISCONNECTED, 'no transport');
    }
  }

  private onOpen(token: string | null): void {
    const params: Record<string, unknown> = { name: this.options.name, version: this.options.version ?? VERSION };
    if (token) params.token = token;
    this.send('connect', params, (reply) => this.onConnectReply(reply));
  }

  private onConnectReply(reply: Reply): void {
    if (reply.error) {
      // The server closes the connection next, with the code that says what to do.
      this.emitError('connect', new ClarionError(reply.error.code, reply.error.message, reply.error.temporary));
      return;
    }
    const result = reply.result ?? {};
    this.connectTimer.clear();
    this.backoff.reset();
    this._clientId = String(result.client ?? '');
    this.startHeartbeat(Number(result.ping ?? 0));
    this.scheduleRefresh(result.ttl);
    this._state = 'connected';
    for (const sub of this.subs.values()) sub.connected();
    this.sendCalls();
    this.emit('connected', { client: this._clientId, transport: this.transport?.name ?? 'unknown' });
  }

  private sendCalls(): void {
    for (const call of this.calls.takeWaiting()) {
      this.send(call.method, call.params, (reply) => call.settle(reply));
      call.id = this.nextId - 1;
    }
  }

  private flush(): void {
    this.flushQueued = false;
    const commands = this.outbox;
    this.outbox = [];
    if (!this.transport) return;
    for (const frame of packFrames(commands)) this.transport.send(frame);
  }

  // ---- receiving ----------------------------------------------------------

  private onFrame(data: string): void {
    this.lastHeard = this.clock.now();
    this.pingSentAt = null;
    let messages: Array<Reply | Push>;
    try {
      messages = parseFrame(data);
    } catch {
      this.failAttempt(this.generation, SDK_CODES.BAD_FRAME, 'bad frame from server');
      return;
    }
    const generation = this.generation;
    for (const message of messages) {
      if (generation !== this.generation) return; // a handler closed the connection
      if (isReply(message)) this.onReply(message);
      else if (typeof message.push === 'string') this.onPush(message);
    }
  }

  private onReply(reply: Reply): void {
    const handler = this.pending.get(reply.id);
    if (!handler) return;
    this.pending.delete(reply.id);
    handler(reply);
  }

  private onPush(push: Push): void {
    if (push.push === 'disconnect') {
      this.disconnectPush = {
        code: Number(push.code),
        reason: String(push.reason ?? ''),
        reconnect: push.reconnect === true,
      };
      return;
    }
    const channel = typeof push.channel === 'string' ? push.channel : null;
    if (channel === null) return;
    const sub = this.subs.get(channel);
    if (sub) {
      sub.onPush(push);
      return;
    }
    // A server-side subscription (the connection token's `channels`).
    if (push.push === 'publication') {
      const { data, offset, epoch, info } = push as unknown as PublicationContext;
      this.emit('publication', { channel, data, offset, epoch, info });
    } else if (push.push === 'join' || push.push === 'leave') {
      this.emit(push.push, { channel, info: push.info as ClientInfo });
    }
  }

  // ---- closing -------------------------------------------------------------

  private onClose(code: number, reason: string): void {
    const push = this.disconnectPush;
    const reconnect = push ? push.reconnect : mayReconnect(code);
    if (push) ({ code, reason } = push);
    this.transport = null;
    this.connectionEnded(code, reason, reconnect);
  }

  /** Ends the current attempt from our side (timeout, dead heartbeat, bad frame), then reconnects. */
  private failAttempt(generation: number, code: number, reason: string): void {
    if (generation !== this.generation || this._state === 'disconnected') return;
    this.transport?.close(code, reason);
    this.transport = null;
    this.connectionEnded(code, reason, true);
  }

  private connectionEnded(code: number, reason: string, reconnect: boolean): void {
    const wasConnected = this._state === 'connected';
    this.endConnection();
    if (code === 4003) {
      // Expired: the next connect needs a fresh token, which only getToken can give.
      this.tokenExpiresAt = 0;
      if (!this.options.getToken) reconnect = false;
    }
    if (!reconnect) {
      this.emitError('disconnect', ClarionError.fromCode(code, reason));
      this.stop(code, reason);
      return;
    }
    if (wasConnected) this.setState('connecting', code, reason);
    this.subsLost(code, reason);
    this.reconnectTimer.set(this.backoff.next(), () => void this.startAttempt());
  }

  /** Forgets everything that belonged to the connection that just ended. */
  private endConnection(): void {
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
    if (this._state === 'connected') this._state = 'connecting';
  }

  /** The server forgot our subscriptions with the connection. */
  private subsLost(code: number, reason: string): void {
    for (const sub of this.subs.values()) sub.disconnected(code, reason);
  }

  /** Goes to `disconnected` for good (until `connect()`). */
  private stop(code: number, reason: string): void {
    this.generation++;
    this.reconnectTimer.clear();
    this.connectTimer.clear();
    this.calls.rejectAll(new ClarionError(SDK_CODES.CLIENT_DISCONNECTED, `client disconnected: ${reason}`, false));
    this.setState('disconnected', code, reason);
    this.subsLost(code, reason);
  }

  private setState(state: ClientState, code: number, reason: string): void {
    this._state = state;
    if (state === 'connecting') this.emit('connecting', { code, reason });
    if (state === 'disconnected') this.emit('disconnected', { code, reason });
  }

  private emitError(type: string, error: ClarionError): void {
    this.emit('error', { type, error });
  }

  // ---- heartbeat -------------------------------------------------------------

  // The server says in `ping` how often it expects to hear from a client.
  // After that long without a frame, send a `ping` command; if nothing at
  // all arrives within `heartbeatGrace` after it, the connection is dead.
  private startHeartbeat(pingSeconds: number): void {
    this.pingInterval = pingSeconds > 0 ? pingSeconds * 1000 : 0;
    this.lastHeard = this.clock.now();
    if (this.pingInterval > 0) this.heartbeatTimer.set(this.pingInterval, () => this.checkHeartbeat());
  }

  private checkHeartbeat(): void {
    const now = this.clock.now();
    const silent = now - this.lastHeard;
    if (this.pingSentAt === null && silent < this.pingInterval) {
      this.heartbeatTimer.set(this.pingInterval - silent, () => this.checkHeartbeat());
    } else if (this.pingSentAt === null) {
      this.pingSentAt = now;
      this.send('ping', undefined);
      this.heartbeatTimer.set(this.options.heartbeatGrace, () => this.checkHeartbeat());
    } else if (now - this.pingSentAt >= this.options.heartbeatGrace) {
      this.failAttempt(this.generation, SDK_CODES.NO_HEARTBEAT, 'no heartbeat');
    } else {
      this.heartbeatTimer.set(this.options.heartbeatGrace - (now - this.pingSentAt), () => this.checkHeartbeat());
    }
  }

  // ---- tokens ----------------------------------------------------------------

  private async connectionToken(): Promise<string | null> {
    if (this.tokenFlight) return this.tokenFlight;
    const expired = this.tokenExpiresAt !== null && this.clock.now() >= this.tokenExpiresAt;
    if (this.token !== null && !expired) return this.token;
    if (this.options.getToken) return this.fetchToken();
    return this.token;
  }

  // One getToken call at a time: a refresh and a reconnect that both need
  // a token share the same call.
  private fetchToken(): Promise<string> {
    const getToken = this.options.getToken;
    if (!getToken) return Promise.reject(new UnauthorizedError('no getToken'));
    if (this.tokenFlight) return this.tokenFlight;
    const flight = Promise.resolve()
      .then(() => getToken())
      .then((token) => {
        if (typeof token !== 'string' || token === '') throw new UnauthorizedError('getToken gave no token');
        this.token = token;
        this.tokenExpiresAt = null;
        return token;
      })
      .finally(() => {
        if (this.tokenFlight === flight) this.tokenFlight = null;
      });
    this.tokenFlight = flight;
    return flight;
  }

  private tokenFailed(err: unknown): void {
    this.connectTimer.clear();
    if (err instanceof UnauthorizedError) {
      this.emitError('token', new ClarionError(4501, `unauthorized: ${err.message}`, false));
      this.stop(4501, 'unauthorized');
      return;
    }
    this.emitError('token', tokenError(err));
    this.reconnectTimer.set(this.backoff.next(), () => void this.startAttempt());
  }

  private scheduleRefresh(ttl: unknown): void {
    if (typeof ttl !== 'number' || ttl <= 0) {
      this.tokenExpiresAt = null;
      return;
    }
    const lifetime = ttl * 1000;
    this.tokenExpiresAt = this.clock.now() + lifetime;
    if (!this.options.getToken) return;
    const ahead = Math.min(REFRESH_AHEAD_MS, lifetime / 2);
    this.refreshTimer.set(lifetime - ahead, () => void this.refresh());
  }

  private async refresh(): Promise<void> {
    const generation = this.generation;
    let token: string;
    try {
      token = await this.fetchToken();
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof UnauthorizedError) {
        this.transport?.close(1000, 'unauthorized');
        this.endConnection();
        this.emitError('refresh', new ClarionError(4501, `unauthorized: ${err.message}`, false));
        this.stop(4501, 'unauthorized');
        return;
      }
      this.emitError('refresh', tokenError(err));
      this.retryRefresh();
      return;
    }
    if (generation !== this.generation || !this.connected) return; // the next connect uses it
    this.send('refresh', { token }, (reply) => {
      if (!reply.error) return this.scheduleRefresh(reply.result?.ttl);
      const { code, message, temporary } = reply.error;
      this.emitError('refresh', new ClarionError(code, message, temporary));
      if (temporary) this.retryRefresh();
    });
  }

  // Try again soon, but never past the expiry (the server then disconnects with 4003).
  private retryRefresh(): void {
    const left = (this.tokenExpiresAt ?? this.clock.now()) - this.clock.now();
    if (left > 0) this.refreshTimer.set(Math.min(this.backoff.next(), left / 2), () => void this.refresh());
  }
}

function position(result: Record<string, unknown>): { offset?: number; epoch?: string } {
  const out: { offset?: number; epoch?: string } = {};
  if (typeof result.offset === 'number') out.offset = result.offset;
  if (typeof result.epoch === 'string') out.epoch = result.epoch;
  return out;
}

function stripUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** 16 random bytes, hex: from `crypto.getRandomValues` where there is one. */
function randomKey(random: () => number): string {
  const bytes = new Uint8Array(16);
  const crypto = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
