/**
 * The pool's rate limit: at most `limit` message starts in any window of `delta` ms,
 * shared by every connection. A true sliding window, from the first message on: the
 * start times of the last `limit` messages are kept, and the next may start only once the
 * oldest of them is `delta` old. (A counter reset at fixed checkpoints lets a burst through
 * at each checkpoint, and lets the first window run unlimited: the two faults users report
 * of Nodemailer's limiter.)
 *
 * Deliberately left out: timers. The pool asks how long to wait and arms its own.
 */
export class SlidingRateLimit {
  readonly limit: number;
  readonly delta: number;
  /** The last `limit` start times, a ring; #next is the oldest once the ring is full. */
  #starts: number[] = [];
  #next = 0;

  constructor(limit: number, delta: number) {
    this.limit = limit;
    this.delta = delta;
  }

  /** True when a limit is set. */
  get isLimited(): boolean {
    return this.limit > 0;
  }

  /** Milliseconds until another message may start; 0 means now. */
  wait(now = performance.now()): number {
    if (!this.isLimited || this.#starts.length < this.limit) return 0;
    return Math.max(0, this.#starts[this.#next]! + this.delta - now);
  }

  /** Records a message start (call only when wait() said 0). */
  record(now = performance.now()): void {
    if (!this.isLimited) return;
    if (this.#starts.length < this.limit) this.#starts.push(now);
    else {
      this.#starts[this.#next] = now;
      this.#next = (this.#next + 1) % this.limit;
    }
  }
}
