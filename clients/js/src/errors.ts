// The errors the SDK gives to the application: data with a code, never a
// bare string. `temporary` says whether the same call may succeed later.

import { codeInfo, SDK_CODES } from './codes.js';

/** An error from the server (an error reply, a disconnect) or from the SDK (a timeout, a full queue). */
export class ClarionError extends Error {
  /** A code of docs/protocol.md (400-503, 2000-2501, 4000-4999) or of the SDK (`SDK_CODES`). */
  readonly code: number;
  /** Whether retrying later may succeed (the server's `temporary`, `reconnect` or `resubscribe`). */
  readonly temporary: boolean;

  constructor(code: number, message: string, temporary: boolean) {
    super(message);
    this.name = 'ClarionError';
    this.code = code;
    this.temporary = temporary;
  }

  /** An error for a code of the tables, with their text unless `message` is given. */
  static fromCode(code: number, message?: string): ClarionError {
    const info = codeInfo(code);
    return new ClarionError(code, message || info?.text || `code ${code}`, info?.temporary ?? false);
  }

  /** Whether the SDK gave up waiting for a reply. */
  isTimeout(): boolean {
    return this.code === SDK_CODES.TIMEOUT;
  }
}

/**
 * What a `getToken` function throws (or rejects with) when the user may not
 * connect or subscribe at all: the SDK stops (connection: `disconnected`
 * with 4501; subscription: `unsubscribed` with 401) instead of retrying.
 * Any other rejection of `getToken` is treated as temporary and retried
 * with backoff.
 */
export class UnauthorizedError extends Error {
  constructor(message = 'unauthorized') {
    super(message);
    this.name = 'UnauthorizedError';
  }
}

export function timeoutError(): ClarionError {
  return new ClarionError(SDK_CODES.TIMEOUT, 'timeout', true);
}

export function tokenError(cause: unknown): ClarionError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new ClarionError(SDK_CODES.TOKEN_ERROR, `getToken failed: ${detail}`, true);
}
