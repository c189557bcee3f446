// Every code the SDK knows, in one place.
//
// The three server tables are copies of the "Codes" section of
// docs/protocol.md; test/unit/codes.test.js parses that file and fails if
// they differ, and clarion-wire's own test checks the same file against the
// Rust types, so server, docs and SDK cannot drift apart.

/** A code with its text and whether it is temporary (retry, reconnect, resubscribe). */
export interface CodeInfo {
  readonly code: number;
  readonly text: string;
  readonly temporary: boolean;
}

function table(rows: ReadonlyArray<readonly [number, string, boolean]>): readonly CodeInfo[] {
  return Object.freeze(rows.map(([code, text, temporary]) => Object.freeze({ code, text, temporary })));
}

/** Error codes of the server's error replies (docs/protocol.md, "Error codes"). */
export const ERROR_CODES: readonly CodeInfo[] = table([
  [400, 'bad request', false],
  [401, 'unauthorized', false],
  [403, 'permission denied', false],
  [404, 'unknown channel', false],
  [405, 'method not found', false],
  [409, 'already subscribed', false],
  [410, 'not subscribed', false],
  [413, 'limit exceeded', false],
  [419, 'token expired', true],
  [429, 'too many requests', true],
  [500, 'internal error', true],
  [501, 'not available', false],
  [503, 'unavailable', true],
]);

/** Disconnect codes, in `disconnect` pushes and close frames (docs/protocol.md). */
export const DISCONNECT_CODES: readonly CodeInfo[] = table([
  [4000, 'shutdown', true],
  [4001, 'slow consumer', true],
  [4002, 'internal error', true],
  [4003, 'expired', true],
  [4004, 'stale', true],
  [4005, 'force reconnect', true],
  [4006, 'insufficient state', true],
  [4008, 'too many requests', true],
  [4500, 'bad request', false],
  [4501, 'unauthorized', false],
  [4502, 'force disconnect', false],
  [4503, 'message too big', false],
  [4504, 'unsupported protocol', false],
  [4505, 'connection limit', false],
]);

/** Unsubscribe codes, in `unsubscribe` pushes (docs/protocol.md). */
export const UNSUBSCRIBE_CODES: readonly CodeInfo[] = table([
  [2000, 'unsubscribed by server', false],
  [2500, 'insufficient state', true],
  [2501, 'subscription expired', true],
]);

/** WebSocket close codes outside 4000-4999 after which a client reconnects (docs/protocol.md). */
export const RECONNECT_CLOSE_CODES: readonly number[] = Object.freeze([1001, 1006, 1011, 1012, 1013]);

/**
 * Codes of the SDK itself, never sent by the server: the `code` of the
 * `connecting`, `disconnected`, `subscribing` and `unsubscribed` events
 * when the reason is local (3000-3199), and the `code` of a
 * {@link ClarionError} when a call failed in the SDK (1-99).
 */
export const SDK_CODES = Object.freeze({
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
  DISCONNECT_CALLED: 3000,
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
  GAP: 3102,
});

const byCode = new Map<number, CodeInfo>(
  [...ERROR_CODES, ...DISCONNECT_CODES, ...UNSUBSCRIBE_CODES].map((info) => [info.code, info]),
);

/** What the tables say about `code`, if it is in them. */
export function codeInfo(code: number): CodeInfo | undefined {
  return byCode.get(code);
}

/** Whether a connection that ended with this disconnect or close code should be reopened. */
export function mayReconnect(code: number): boolean {
  if (code >= 4000 && code <= 4499) return true;
  if (code >= 4500 && code <= 4999) return false;
  if (code >= 3000 && code <= 3999) return code !== SDK_CODES.DISCONNECT_CALLED;
  return RECONNECT_CLOSE_CODES.includes(code);
}
