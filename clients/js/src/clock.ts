// Time and randomness come in through this seam, so that the state
// machines run on fake timers in the unit tests.

/** A timer handle, as returned by `setTimeout`. */
export type TimerHandle = unknown;

/** Where the SDK reads the time and sets timers (default: the global functions). */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** One timer slot: setting it again cancels what was set before. */
export class Timer {
  private handle: TimerHandle | null = null;

  constructor(private readonly clock: Clock) {}

  set(ms: number, callback: () => void): void {
    this.clear();
    this.handle = this.clock.setTimeout(() => {
      this.handle = null;
      callback();
    }, ms);
  }

  clear(): void {
    if (this.handle !== null) this.clock.clearTimeout(this.handle);
    this.handle = null;
  }

  get active(): boolean {
    return this.handle !== null;
  }
}
