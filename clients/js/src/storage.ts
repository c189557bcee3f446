// Subscription positions kept across page reloads (option `positionStorage`).

import type { StreamPosition } from './types.js';

/** The part of the Web Storage API the SDK uses (sessionStorage fits). */
export interface PositionStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Reads and writes positions under one key per (server URL, channel). */
export class Positions {
  constructor(
    private readonly storage: PositionStorage | null,
    private readonly prefix: string,
  ) {}

  load(channel: string): StreamPosition | null {
    const raw = this.guard(() => this.storage?.getItem(this.key(channel)) ?? null);
    if (!raw) return null;
    try {
      const value = JSON.parse(raw) as Partial<StreamPosition>;
      if (typeof value.offset === 'number' && typeof value.epoch === 'string') {
        return { offset: value.offset, epoch: value.epoch };
      }
    } catch {
      // a corrupt entry is no position
    }
    return null;
  }

  save(channel: string, position: StreamPosition): void {
    this.guard(() => this.storage?.setItem(this.key(channel), JSON.stringify(position)));
  }

  forget(channel: string): void {
    this.guard(() => this.storage?.removeItem(this.key(channel)));
  }

  private key(channel: string): string {
    return `${this.prefix}${channel}`;
  }

  // Storage can throw (quota, privacy modes): positions are then kept in memory only.
  private guard<T>(op: () => T): T | null {
    try {
      return op();
    } catch {
      return null;
    }
  }
}

/** The storage an option names: sessionStorage for `'session'`, nothing for `'none'`. */
export function resolveStorage(option: 'session' | 'none' | PositionStorage | undefined): PositionStorage | null {
  if (option === undefined || option === 'none') return null;
  if (option !== 'session') return option;
  try {
    return (globalThis as { sessionStorage?: PositionStorage }).sessionStorage ?? null;
  } catch {
    return null;
  }
}
