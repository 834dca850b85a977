/**
 * The pool's connections: opening them while there is more work than room, up to a limit,
 * and opening fewer after a server turned one away (421, "too many connections") or while
 * opens keep failing. Also which connection takes the next send (the least busy), the
 * connection verify() opens apart, and closing them all.
 *
 * Deliberately left out: the sends themselves. The pool owns its lines and tells the set
 * how much work waits; the set calls back when there may be work to hand out (`pump`),
 * when what waits should fail because no connection can be opened (`giveUp`), and once
 * every connection has closed after close() (`closed`).
 */
import type { SMTPError } from "../errors.js";
import type { SMTPConnectionOptions } from "../types.js";
import { connectionOptionsOf, type PoolLimits, type PoolOptions } from "./options.js";
import { PoolConnection } from "./pool-connection.js";
import { isTooManyConnections, notSent, requeueDelay } from "./requeue.js";

/** How long concurrency stays lowered after a server turned a connection away. */
const CONCURRENCY_COOLDOWN_MS = 30_000;

/** What the set tells its pool. */
export interface ConnectionSetEvents {
  /** A connection opened or ended, or a wait is over: there may be work to hand out or connections to open. */
  pump(): void;
  /**
   * No connection works and none can be opened (a refusal no retry fixes, or maxRequeues
   * failures in a row): fail every send and lease still waiting, each with its own `errorFor()`.
   */
  giveUp(errorFor: () => SMTPError): void;
  /** close() was called and the last connection has closed. */
  closed(): void;
  /** The last open connection ended while the set is not closed (Nodemailer's 'clear'). */
  cleared(): void;
}

export class ConnectionSet implements Iterable<PoolConnection> {
  /** Read at each open: the pool's options (auth, forceAuth) and limits. */
  readonly #options: PoolOptions;
  readonly #limits: PoolLimits;
  readonly #connectionOptions: SMTPConnectionOptions;
  readonly #events: ConnectionSetEvents;
  #connections = new Set<PoolConnection>();
  /** Connections allowed now: maxConnections, lowered for a while after a server refused one. */
  #limit: number;
  #openTimer: NodeJS.Timeout | undefined;
  #cooldownTimer: NodeJS.Timeout | undefined;
  /** Opens that failed in a row; each doubles the wait before the next. */
  #openFailures = 0;
  /** No open before this time (performance.now()), the wait after a failed open. */
  #openBlockedUntil = 0;
  #closed = false;
  #ended = false;

  constructor(options: PoolOptions, limits: PoolLimits, events: ConnectionSetEvents) {
    this.#options = options;
    this.#limits = limits;
    this.#connectionOptions = connectionOptionsOf(options);
    this.#events = events;
    this.#limit = limits.maxConnections;
  }

  [Symbol.iterator](): Iterator<PoolConnection> {
    return this.#connections[Symbol.iterator]();
  }

  /** The connection with the fewest sends in flight that may take one more (`depth`: sends per connection). */
  leastBusy(depth: number): PoolConnection | undefined {
    let best: PoolConnection | undefined;
    for (const pc of this.#connections) {
      if (!pc.usable || pc.inFlight >= depth || pc.given >= this.#limits.maxMessages) continue;
      if (!best || pc.inFlight < best.inFlight) best = pc;
    }
    return best;
  }

  /**
   * Opens connections while there is more work than room on those open or opening, up to the
   * limit. `demand`: sends (and leases, `depth` each) that want a connection.
   */
  openIfNeeded(demand: number, depth: number): void {
    if (this.#openTimer) return;
    let open = 0;
    let room = 0;
    for (const pc of this.#connections) {
      open++;
      if (pc.state === "opening") room += depth;
      else if (pc.usable && pc.given < this.#limits.maxMessages) room += depth - pc.inFlight;
    }
    if (demand <= room || open >= this.#limit) return;
    const blockedFor = this.#openBlockedUntil - performance.now();
    if (blockedFor > 0) {
      this.#openTimer = setTimeout(() => {
        this.#openTimer = undefined;
        this.#events.pump();
      }, Math.ceil(blockedFor));
      return;
    }
    for (; demand > room && open < this.#limit; open++, room += depth) this.#open();
  }

  /** A server turned a connection away for having too many: no more than work now, for a while. */
  lowerConcurrency(): void {
    this.#limit = Math.max(1, Math.min(this.#limit, this.#working()));
    if (this.#cooldownTimer) clearTimeout(this.#cooldownTimer);
    this.#cooldownTimer = setTimeout(() => {
      this.#cooldownTimer = undefined;
      this.#limit = this.#limits.maxConnections;
      this.#events.pump();
    }, CONCURRENCY_COOLDOWN_MS);
    // Restoring the limit is no reason to keep a process alive.
    this.#cooldownTimer.unref();
  }

  /** Opens one connection apart from the set (SMTPPool.verify()), logs in, says QUIT; resolves true. */
  async verify(): Promise<true> {
    const probe = new PoolConnection(this.#connectionOptions, () => {});
    try {
      await probe.open(this.#options.auth, Boolean(this.#options.forceAuth));
    } catch (err) {
      probe.destroy();
      throw err;
    }
    await probe.connection.quit();
    return true;
  }

  /**
   * Opens no more; with `force` every connection closes now, else each says QUIT once its
   * sends are done (a lent one once it is released). `closed` follows once none is left.
   */
  close(force: boolean): void {
    if (!this.#closed) {
      this.#closed = true;
      for (const timer of [this.#openTimer, this.#cooldownTimer]) if (timer) clearTimeout(timer);
    }
    for (const pc of this.#connections) {
      if (force || pc.state === "opening") pc.destroy();
      else pc.retire();
    }
    this.#endIfDone();
  }

  #open(): void {
    const pc = new PoolConnection(this.#connectionOptions, (ended) => this.#onEnded(ended));
    this.#connections.add(pc);
    pc.open(this.#options.auth, Boolean(this.#options.forceAuth)).then(
      () => {
        this.#openFailures = 0;
        if (this.#closed) return pc.retire();
        pc.idleFor(this.#limits.idleTimeout);
        this.#events.pump();
      },
      (err: unknown) => this.#openFailed(pc, err),
    );
  }

  /**
   * A connection could not be opened. A server with too many connections gets fewer. While
   * no connection works, a refusal no retry can fix (credentials, TLS) fails what waits at
   * once, and other failures do after maxRequeues more in a row. Each failure in a row
   * doubles the wait before the next open.
   */
  #openFailed(pc: PoolConnection, err: unknown): void {
    this.#connections.delete(pc);
    pc.destroy();
    if (this.#closed) return this.#endIfDone();
    const tooMany = isTooManyConnections(err);
    if (tooMany) this.lowerConcurrency();
    this.#openFailures++;
    if (this.#working() === 0 && (((err as SMTPError)?.temporary === false && !tooMany) || this.#openFailures > this.#limits.maxRequeues)) {
      const attempts = this.#openFailures;
      const why = `Could not open a connection${attempts > 1 ? ` (${attempts} attempts)` : ""}: ${(err as Error)?.message ?? err}`;
      this.#events.giveUp(() => notSent(why, err));
      this.#openFailures = 0;
    }
    this.#openBlockedUntil = performance.now() + requeueDelay(this.#openFailures);
    this.#events.pump();
  }

  /** Connections open and ready. */
  #working(): number {
    let working = 0;
    for (const pc of this.#connections) if (pc.state === "ready") working++;
    return working;
  }

  #onEnded(pc: PoolConnection): void {
    const wasOpen = this.#connections.delete(pc);
    if (this.#closed) return this.#endIfDone();
    // A connection that never opened is handled by #openFailed, with its backoff.
    if (wasOpen && pc.wasReady) {
      if (this.#connections.size === 0) this.#events.cleared();
      this.#events.pump();
    }
  }

  #endIfDone(): void {
    if (!this.#closed || this.#ended || this.#connections.size > 0) return;
    this.#ended = true;
    this.#events.closed();
  }
}
