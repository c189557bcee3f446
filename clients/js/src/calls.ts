// The application's calls (publish, presence, presence_stats, history):
// kept in call order until they settle, sent when a connection is up, and
// sent again after a reconnect when the reply did not come. A publish is
// resent with the same idempotency key, so the server applies it once;
// the others are reads. Each call settles within its timeout, whatever
// happens to the connection meanwhile.

import { SDK_CODES } from './codes.js';
import { Timer, type Clock } from './clock.js';
import { ClarionError, timeoutError } from './errors.js';
import type { Reply } from './protocol.js';

type Result = Record<string, unknown>;

export interface Call {
  readonly method: string;
  readonly params: Record<string, unknown>;
  /** The command id on the current connection, or null while waiting. */
  id: number | null;
  settle(reply: Reply): void;
}

interface Entry extends Call {
  readonly timer: Timer;
  reject(error: ClarionError): void;
}

export class Calls {
  private entries: Entry[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly maxQueued: number,
  ) {}

  /** A new call; it waits until `takeWaiting` hands it to a connection. */
  add(method: string, params: Record<string, unknown>, timeout: number): Promise<Result> {
    if (this.waitingCount() >= this.maxQueued) {
      return Promise.reject(new ClarionError(SDK_CODES.QUEUE_FULL, 'too many calls waiting for a connection', true));
    }
    return new Promise<Result>((resolve, reject) => {
      const entry: Entry = {
        method,
        params,
        id: null,
        timer: new Timer(this.clock),
        settle: (reply) => {
          if (!this.remove(entry)) return; // timed out or rejected already
          if (reply.error) reject(new ClarionError(reply.error.code, reply.error.message, reply.error.temporary));
          else resolve(reply.result ?? {});
        },
        reject: (error) => {
          if (this.remove(entry)) reject(error);
        },
      };
      entry.timer.set(timeout, () => entry.reject(timeoutError()));
      this.entries.push(entry);
    });
  }

  /** The calls not sent on the current connection, in call order. */
  takeWaiting(): Call[] {
    return this.entries.filter((entry) => entry.id === null);
  }

  /** The connection is gone: every call in flight waits again. */
  connectionLost(): void {
    for (const entry of this.entries) entry.id = null;
  }

  rejectAll(error: ClarionError): void {
    for (const entry of [...this.entries]) entry.reject(error);
  }

  get size(): number {
    return this.entries.length;
  }

  private waitingCount(): number {
    return this.entries.reduce((n, entry) => n + (entry.id === null ? 1 : 0), 0);
  }

  private remove(entry: Entry): boolean {
    const index = this.entries.indexOf(entry);
    if (index < 0) return false;
    this.entries.splice(index, 1);
    entry.timer.clear();
    return true;
  }
}
