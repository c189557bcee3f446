// Waiting for one of two events, with an optional timeout.

import { Timer, type Clock } from './clock.js';
import { SDK_CODES } from './codes.js';
import type { Emitter } from './emitter.js';
import { ClarionError } from './errors.js';

/** Resolves on `good`, rejects on `bad` or after `timeout` ms (none: no limit). */
export function waitFor<E extends object>(
  emitter: Emitter<E>,
  good: keyof E,
  bad: keyof E,
  clock: Clock,
  timeout: number | undefined,
  badError: () => ClarionError,
): Promise<void> {
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
    if (timeout !== undefined) {
      timer.set(timeout, () => {
        done();
        reject(new ClarionError(SDK_CODES.TIMEOUT, 'timeout', true));
      });
    }
  });
}
