// The subscription state machine:
//
//   unsubscribed --subscribe()--> subscribing --subscribe reply--> subscribed
//        ^                          ^   |                              |
//        |                          |   +-- connection lost, unsubscribe push
//        |                          |       with resubscribe, gap -----+
//        +-- unsubscribe(), permanent error, unsubscribe push without resubscribe
//
// The subscription remembers the position (offset, epoch) of the last
// publication it delivered and resubscribes from it, so the server
// replays what was missed; publications at or below that position are
// dropped, so each is delivered once, in order. A subscribe request
// carries a generation number and a reply to an older one is ignored.

import { Backoff } from './backoff.js';
import type { Client } from './client.js';
import { Timer, type Clock } from './clock.js';
import { SDK_CODES } from './codes.js';
import { Emitter } from './emitter.js';
import { waitFor } from './wait.js';
import { ClarionError, UnauthorizedError, tokenError } from './errors.js';
import type { ClientInfo, Push, Reply, WireError, WirePublication } from './protocol.js';
import type {
  CallOptions,
  HistoryOptions,
  HistoryResult,
  PresenceResult,
  PresenceStatsResult,
  PublishOptions,
  PublishResult,
  StreamPosition,
  SubscriptionEvents,
  SubscriptionOptions,
  SubscriptionState,
} from './types.js';

const REFRESH_AHEAD_MS = 10000;

/** A subscription to one channel; made by `client.newSubscription(channel)`. */
export class Subscription extends Emitter<SubscriptionEvents> {
  readonly channel: string;
  private readonly client: Client;
  private readonly options: SubscriptionOptions;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly retryTimer: Timer;
  private readonly refreshTimer: Timer;
  private _state: SubscriptionState = 'unsubscribed';
  private position: StreamPosition | null = null;
  private generation = 0;
  /** Whether the server may hold this subscription on the current connection. */
  private serverHasIt = false;
  private token: string | null;
  private tokenFlight: Promise<string> | null = null;
  /** Whether a subscribe with `recover` is waiting for its reply. */
  private recovering = false;
  /** Connections in a row cut off as slow consumers while a recovery was on its way. */
  private overflows = 0;

  /** @internal Use `client.newSubscription`. */
  constructor(client: Client, channel: string, options: SubscriptionOptions, clock: Clock, random: () => number) {
    super();
    this.client = client;
    this.channel = channel;
    this.options = options;
    this.clock = clock;
    const min = options.minResubscribeDelay ?? 500;
    this.backoff = new Backoff(min, Math.max(min, options.maxResubscribeDelay ?? 20000), random);
    this.retryTimer = new Timer(clock);
    this.refreshTimer = new Timer(clock);
    this.token = options.token ?? null;
    if (this.recoverable) this.position = client.positions.load(channel);
  }

  get state(): SubscriptionState {
    return this._state;
  }

  /** The position of the last publication delivered (channels with history), or null. */
  get lastPosition(): StreamPosition | null {
    return this.position ? { ...this.position } : null;
  }

  /** Subscribes (now, or as soon as the client is connected); no-op unless unsubscribed. */
  subscribe(): void {
    if (this._state !== 'unsubscribed') return;
    this.backoff.reset();
    this.setState('subscribing', SDK_CODES.SUBSCRIBE_CALLED, 'subscribe called');
    this.trySubscribe();
  }

  /** Unsubscribes; no-op if unsubscribed. The position is kept: `subscribe()` again recovers from it. */
  unsubscribe(): void {
    if (this._state === 'unsubscribed') return;
    if (this.serverHasIt && this.client.connected) this.client.send('unsubscribe', { channel: this.channel });
    this.halt();
    this.setState('unsubscribed', SDK_CODES.UNSUBSCRIBE_CALLED, 'unsubscribe called');
  }

  /** Resolves once subscribed; rejects if it becomes unsubscribed first, or after `timeout` ms. */
  ready(timeout?: number): Promise<void> {
    if (this._state === 'subscribed') return Promise.resolve();
    if (this._state === 'unsubscribed') return Promise.reject(this.unsubscribedError());
    return waitFor(this, 'subscribed', 'unsubscribed', this.clock, timeout, () => this.unsubscribedError());
  }

  /** Publishes to this channel (`client.publish`); does not need the subscription to be active. */
  publish(data: unknown, options?: PublishOptions): Promise<PublishResult> {
    return this.client.publish(this.channel, data, options);
  }

  /** Who is in the channel, once subscribed. */
  async presence(options: CallOptions = {}): Promise<PresenceResult> {
    await this.ready(options.timeout ?? this.client.defaultTimeout);
    return this.client.presence(this.channel, options);
  }

  /** How many clients and users are in the channel, once subscribed. */
  async presenceStats(options: CallOptions = {}): Promise<PresenceStatsResult> {
    await this.ready(options.timeout ?? this.client.defaultTimeout);
    return this.client.presenceStats(this.channel, options);
  }

  /** A page of the channel's history, once subscribed. */
  async history(options: HistoryOptions = {}): Promise<HistoryResult> {
    await this.ready(options.timeout ?? this.client.defaultTimeout);
    return this.client.history(this.channel, options);
  }

  // ---- from the client ---------------------------------------------------

  /** @internal The client is connected: subscribe if we should be. */
  connected(): void {
    if (this._state === 'subscribing') this.trySubscribe();
  }

  /** @internal The connection ended: the server forgot this subscription. */
  disconnected(code: number, reason: string): void {
    this.giveUpRecoveryIfTooBig(code);
    this.serverHasIt = false;
    this.generation++;
    this.retryTimer.clear();
    this.refreshTimer.clear();
    if (this._state === 'subscribed') this.setState('subscribing', code, reason);
  }

  /** @internal A push for this channel. */
  onPush(push: Push): void {
    switch (push.push) {
      case 'publication':
        if (this._state === 'subscribed') this.onPublication(push as unknown as WirePublication);
        break;
      case 'join':
      case 'leave':
        if (this._state === 'subscribed') this.emit(push.push, { channel: this.channel, info: push.info as ClientInfo });
        break;
      case 'unsubscribe':
        this.onServerUnsubscribe(Number(push.code), String(push.reason ?? ''), push.resubscribe === true);
        break;
      default:
        break; // a push this SDK does not know
    }
  }

  // ---- subscribing ---------------------------------------------------------

  private get recoverable(): boolean {
    return this.options.recoverable !== false;
  }

  // Sends at once when the token is at hand (so that resubscribes go out
  // before the calls queued during a reconnect), else after getToken.
  private trySubscribe(): void {
    if (this._state !== 'subscribing' || !this.client.connected) return;
    const generation = ++this.generation;
    const token = this.tokenAtHand();
    if (token !== undefined) return this.sendSubscribe(generation, token);
    this.fetchToken().then(
      (fresh) => {
        if (generation === this.generation && this.client.connected) this.sendSubscribe(generation, fresh);
      },
      (err) => {
        if (generation === this.generation) this.tokenFailed(err);
      },
    );
  }

  private sendSubscribe(generation: number, token: string | null): void {
    const params: Record<string, unknown> = { channel: this.channel };
    if (token) params.token = token;
    const from = this.recoverable ? this.position : null;
    if (from) Object.assign(params, { recover: true, offset: from.offset, epoch: from.epoch });
    this.serverHasIt = true;
    this.recovering = from !== null;
    this.client.send('subscribe', params, (reply) => this.onSubscribeReply(generation, reply, from !== null));
  }

  // A recovery larger than the server's per-connection queue makes the
  // server cut the connection (4001) before the reply is out, every time.
  // After two such cuts in a row, subscribe without recovery: the
  // application gets `recovered: false` and reloads, instead of a loop.
  private giveUpRecoveryIfTooBig(code: number): void {
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
  private onSubscribeReply(generation: number, reply: Reply, wasRecovering: boolean): void {
    if (generation !== this.generation) return;
    this.recovering = false;
    if (reply.error) return this.onSubscribeError(reply.error);
    this.overflows = 0;
    const result = reply.result ?? {};
    this.backoff.reset();
    this.scheduleRefresh(result.ttl);
    const recovered = wasRecovering && result.recovered === true;
    const epoch = typeof result.epoch === 'string' ? result.epoch : undefined;
    const offset = typeof result.offset === 'number' ? result.offset : undefined;
    const missed = recovered ? this.unseen((result.publications as WirePublication[]) ?? [], epoch) : [];
    if (!recovered) this.setPosition(offset, epoch);
    this._state = 'subscribed';
    const recoveredCount = missed.length;
    this.emit('subscribed', { channel: this.channel, recovered, wasRecovering, recoveredCount, offset, epoch });
    for (const pub of missed) {
      if (generation !== this.generation) return; // a handler unsubscribed
      this.deliver(pub, epoch);
    }
    if (recovered && generation === this.generation) this.advanceTo(offset, epoch);
  }

  private unseen(publications: WirePublication[], epoch: string | undefined): WirePublication[] {
    const from = this.position;
    if (!from || epoch !== from.epoch) return publications;
    return publications.filter((pub) => typeof pub.offset !== 'number' || pub.offset > from.offset);
  }

  private onSubscribeError(error: WireError): void {
    this.serverHasIt = false;
    const err = new ClarionError(error.code, error.message, error.temporary);
    this.emit('error', { channel: this.channel, type: 'subscribe', error: err });
    if (error.code === 419 && this.options.getToken) {
      this.token = null; // expired: fetch a fresh one
    } else if (!error.temporary) {
      this.halt();
      this.setState('unsubscribed', error.code, error.message);
      return;
    }
    this.retryLater();
  }

  private retryLater(): void {
    this.retryTimer.set(this.backoff.next(), () => this.trySubscribe());
  }

  private onServerUnsubscribe(code: number, reason: string, resubscribe: boolean): void {
    if (this._state === 'unsubscribed') return;
    this.serverHasIt = false;
    if (!resubscribe) {
      this.halt();
      this.setState('unsubscribed', code, reason);
      return;
    }
    if (code === 2501) this.token = null; // subscription expired: a fresh token
    this.restart(code, reason);
  }

  /** Back to subscribing on the same connection, recovering from the current position. */
  private restart(code: number, reason: string): void {
    if (this.serverHasIt && this.client.connected) this.client.send('unsubscribe', { channel: this.channel });
    this.serverHasIt = false;
    this.generation++;
    this.retryTimer.clear();
    this.refreshTimer.clear();
    this.setState('subscribing', code, reason);
    this.trySubscribe();
  }

  // ---- publications ----------------------------------------------------------

  private onPublication(pub: WirePublication): void {
    const at = this.position;
    if (typeof pub.offset === 'number' && at) {
      if (pub.epoch !== undefined && pub.epoch !== at.epoch) return this.restart(SDK_CODES.GAP, 'new epoch');
      if (pub.offset <= at.offset) return; // seen already
      if (pub.offset > at.offset + 1) return this.restart(SDK_CODES.GAP, 'gap in offsets');
    }
    this.deliver(pub, pub.epoch ?? at?.epoch);
  }

  private deliver(pub: WirePublication, epoch: string | undefined): void {
    const { data, offset, info } = pub;
    this.emit('publication', { channel: this.channel, data, offset, epoch, info });
    this.advanceTo(offset, epoch);
  }

  private advanceTo(offset: number | undefined, epoch: string | undefined): void {
    if (offset === undefined || epoch === undefined) return;
    if (this.position && this.position.epoch === epoch && this.position.offset >= offset) return;
    this.setPosition(offset, epoch);
  }

  private setPosition(offset: number | undefined, epoch: string | undefined): void {
    if (offset === undefined || epoch === undefined) {
      this.position = null;
      this.client.positions.forget(this.channel);
      return;
    }
    this.position = { offset, epoch };
    if (this.recoverable) this.client.positions.save(this.channel, this.position);
  }

  // ---- tokens ------------------------------------------------------------------

  /** The token to subscribe with (null: none needed), or undefined when getToken must give one. */
  private tokenAtHand(): string | null | undefined {
    if (this.tokenFlight) return undefined;
    if (this.token !== null) return this.token;
    return this.options.getToken ? undefined : null;
  }

  private fetchToken(): Promise<string> {
    const getToken = this.options.getToken;
    if (!getToken) return Promise.reject(new UnauthorizedError('no getToken'));
    if (this.tokenFlight) return this.tokenFlight;
    const flight = Promise.resolve()
      .then(() => getToken({ channel: this.channel }))
      .then((token) => {
        if (typeof token !== 'string' || token === '') throw new UnauthorizedError('getToken gave no token');
        this.token = token;
        return token;
      })
      .finally(() => {
        if (this.tokenFlight === flight) this.tokenFlight = null;
      });
    this.tokenFlight = flight;
    return flight;
  }

  private tokenFailed(err: unknown): void {
    if (err instanceof UnauthorizedError) {
      const error = new ClarionError(401, `unauthorized: ${err.message}`, false);
      this.emit('error', { channel: this.channel, type: 'token', error });
      this.halt();
      this.setState('unsubscribed', 401, 'unauthorized');
      return;
    }
    this.emit('error', { channel: this.channel, type: 'token', error: tokenError(err) });
    this.retryLater();
  }

  private scheduleRefresh(ttl: unknown): void {
    this.refreshTimer.clear();
    if (typeof ttl !== 'number' || ttl <= 0 || !this.options.getToken) return;
    const lifetime = ttl * 1000;
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
      const error = err instanceof UnauthorizedError ? new ClarionError(401, err.message, false) : tokenError(err);
      this.emit('error', { channel: this.channel, type: 'refresh', error });
      return; // the server ends the subscription with 2501 at expiry; resubscribing tries again
    }
    if (generation !== this.generation || this._state !== 'subscribed') return;
    this.client.send('sub_refresh', { channel: this.channel, token }, (reply) => {
      if (generation !== this.generation) return;
      if (!reply.error) return this.scheduleRefresh(reply.result?.ttl);
      // 405: a server without sub_refresh; it sends 2501 at expiry and we resubscribe.
      if (reply.error.code === 405) return;
      const { code, message, temporary } = reply.error;
      this.emit('error', { channel: this.channel, type: 'refresh', error: new ClarionError(code, message, temporary) });
    });
  }

  // ---- state -----------------------------------------------------------------

  /** Stops everything in progress (timers, a pending subscribe). */
  private halt(): void {
    this.serverHasIt = false;
    this.generation++;
    this.retryTimer.clear();
    this.refreshTimer.clear();
  }

  private setState(state: SubscriptionState, code: number, reason: string): void {
    this._state = state;
    if (state === 'subscribing') this.emit('subscribing', { channel: this.channel, code, reason });
    if (state === 'unsubscribed') this.emit('unsubscribed', { channel: this.channel, code, reason });
  }

  private unsubscribedError(): ClarionError {
    return new ClarionError(SDK_CODES.UNSUBSCRIBED, `not subscribed to ${this.channel}`, false);
  }
}
