// Full-jitter exponential backoff: attempt n waits a uniformly random time
// between `min` and `min(max, min * 2^(n+1))`, so clients that lost the
// same server do not come back in step.

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly min: number,
    private readonly max: number,
    private readonly random: () => number,
  ) {}

  /** The delay before the next attempt, in ms; each call counts one attempt. */
  next(): number {
    const ceiling = Math.min(this.max, this.min * 2 ** Math.min(this.attempt + 1, 30));
    this.attempt += 1;
    return this.min + this.random() * (ceiling - this.min);
  }

  /** After a success: the next delay starts from the bottom again. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
