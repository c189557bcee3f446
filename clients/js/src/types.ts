// The public shapes: options, event contexts, results.

import type { Clock } from './clock.js';
import type { ClarionError } from './errors.js';
import type { ClientInfo } from './protocol.js';
import type { PositionStorage } from './storage.js';
import type { TransportFactory } from './transport.js';
import type { WebSocketConstructor } from './websocket.js';

export type { ClientInfo };

/** `disconnected` → `connecting` → `connected`; back to `connecting` while reconnecting. */
export type ClientState = 'disconnected' | 'connecting' | 'connected';

/** `unsubscribed` → `subscribing` → `subscribed`; back to `subscribing` while resubscribing. */
export type SubscriptionState = 'unsubscribed' | 'subscribing' | 'subscribed';

export interface ClientOptions {
  /** The connection token (a JWT). Default: none (anonymous, if the server allows it). */
  token?: string;
  /**
   * Returns a fresh connection token: called when there is no token, before
   * the current one expires (then sent with `refresh`, without reconnecting)
   * and after the server said it expired. Throw `UnauthorizedError` to stop.
   */
  getToken?: () => Promise<string>;
  /** The client name sent in `connect`. Default `'clarion-js'`. */
  name?: string;
  /** The client version sent in `connect`. Default: the SDK's version. */
  version?: string;
  /** The WebSocket constructor. Default: the global `WebSocket` (browsers; Node 22+). In Node 20, `WebSocket` from `ws`. */
  websocket?: WebSocketConstructor;
  /** Another transport (takes precedence over `websocket`). */
  transport?: TransportFactory;
  /** The shortest wait before reconnecting, in ms. Default 500. */
  minReconnectDelay?: number;
  /** The longest wait before reconnecting, in ms. Default 20000. */
  maxReconnectDelay?: number;
  /** How long a call (publish, presence, history, ...) or a connect may take, in ms, queue time included. Default 10000. */
  timeout?: number;
  /** How long after the server's ping interval of silence the connection is declared dead, in ms. Default 10000. */
  heartbeatGrace?: number;
  /** How many calls may wait for a connection; more reject with `QUEUE_FULL`. Default 100. */
  maxQueuedCalls?: number;
  /**
   * Where subscription positions (offset, epoch) are kept so that a page
   * reload recovers what it missed: `'session'` (the browser's
   * sessionStorage, per tab), `'none'` (the default: positions live as
   * long as the `Client`), or your own `{ getItem, setItem, removeItem }`.
   */
  positionStorage?: 'session' | 'none' | PositionStorage;
  /** For tests: where time and timers come from. */
  clock?: Clock;
  /** For tests: the random source of the backoff jitter, in [0, 1). */
  random?: () => number;
}

export interface SubscriptionOptions {
  /** A subscription token, for namespaces that require one. */
  token?: string;
  /** Returns a fresh subscription token (before it expires, and after 2501 or 419). */
  getToken?: (ctx: { channel: string }) => Promise<string>;
  /** Resubscribe from the last position so the server replays what was missed. Default true. */
  recoverable?: boolean;
  /** The shortest wait before resubscribing after a temporary error, in ms. Default 500. */
  minResubscribeDelay?: number;
  /** The longest wait before resubscribing after a temporary error, in ms. Default 20000. */
  maxResubscribeDelay?: number;
}

export interface StateContext {
  /** A code of docs/protocol.md, a WebSocket close code, or an SDK code (`SDK_CODES`). */
  code: number;
  reason: string;
}

export interface ConnectedContext {
  /** The client id the server gave this connection. */
  client: string;
  /** The transport's name (`websocket`). */
  transport: string;
}

export interface ErrorContext {
  error: ClarionError;
  /** What failed: `connect`, `token`, `refresh`, `subscribe`, `transport`. */
  type: string;
}

export interface ClientEvents {
  connecting: StateContext;
  connected: ConnectedContext;
  disconnected: StateContext;
  error: ErrorContext;
  /** Publications of server-side subscriptions (the token's `channels`), which have no Subscription object. */
  publication: PublicationContext;
  join: JoinLeaveContext;
  leave: JoinLeaveContext;
}

export interface PublicationContext {
  channel: string;
  data: unknown;
  /** Present in channels with history. */
  offset?: number;
  epoch?: string;
  /** The publisher, when a client published. */
  info?: ClientInfo;
}

export interface SubscribedContext {
  channel: string;
  /** True when every publication missed since the last position follows; false means reload your state. */
  recovered: boolean;
  /** Whether this subscribe asked for recovery (there was a position to recover from). */
  wasRecovering: boolean;
  /** How many recovered publications follow this event. */
  recoveredCount: number;
  /** The stream position (channels with history). */
  offset?: number;
  epoch?: string;
}

export interface SubscriptionStateContext extends StateContext {
  channel: string;
}

export interface JoinLeaveContext {
  channel: string;
  info: ClientInfo;
}

export interface SubscriptionErrorContext extends ErrorContext {
  channel: string;
}

export interface SubscriptionEvents {
  subscribing: SubscriptionStateContext;
  subscribed: SubscribedContext;
  unsubscribed: SubscriptionStateContext;
  publication: PublicationContext;
  join: JoinLeaveContext;
  leave: JoinLeaveContext;
  error: SubscriptionErrorContext;
}

export interface StreamPosition {
  offset: number;
  epoch: string;
}

export interface PublishOptions {
  /** At most 64 bytes; default: a fresh random key. Reuse a key to retry a publish safely. */
  idempotencyKey?: string;
  /** Overrides the client's `timeout` for this call, in ms. */
  timeout?: number;
}

export interface PublishResult {
  offset?: number;
  epoch?: string;
}

export interface HistoryOptions {
  /** How many publications (0 or absent: only the current position). */
  limit?: number;
  /** Exclusive start position. */
  since?: StreamPosition;
  /** Newest first. */
  reverse?: boolean;
  timeout?: number;
}

export interface HistoryResult {
  publications: PublicationContext[];
  offset?: number;
  epoch?: string;
}

export interface PresenceResult {
  clients: ClientInfo[];
}

export interface PresenceStatsResult {
  numClients: number;
  numUsers: number;
}

export interface CallOptions {
  timeout?: number;
}
