// A small typed event emitter. A handler that throws does not break the
// SDK's state machines: the error is rethrown on a fresh stack, where the
// platform reports it as uncaught.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Handler = (ctx: any) => void;

export class Emitter<Events extends object> {
  private readonly handlers = new Map<keyof Events, Set<Handler>>();

  /** Calls `handler` on every `event` until `off`. */
  on<K extends keyof Events>(event: K, handler: (ctx: Events[K]) => void): this {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return this;
  }

  /** Removes one handler, every handler of `event`, or (no argument) every handler. */
  off<K extends keyof Events>(event?: K, handler?: (ctx: Events[K]) => void): this {
    if (event === undefined) this.handlers.clear();
    else if (handler === undefined) this.handlers.delete(event);
    else this.handlers.get(event)?.delete(handler);
    return this;
  }

  /** @internal */
  emit<K extends keyof Events>(event: K, ctx: Events[K]): void {
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
}
