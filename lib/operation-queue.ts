/**
 * The order of operations on one connection: sends, logins, resets and QUIT run one after
 * another in call order, whoever started them and however long each takes.
 *
 * One exception makes queued sends fast: a transaction whose terminator (or last BDAT
 * chunk) is on the wire may hand the wire over before its final reply arrives, so the next
 * send's envelope goes out behind it in the same flight (RFC 2920 §3.1 lets message content
 * be followed by further commands). Replies still come back in order, so nothing else
 * changes; only another send may overlap this way. Anything else (login, RSET, QUIT) waits
 * until every operation before it has finished.
 */

export type Operation<T> = (handOver: () => void) => Promise<T>;

export class OperationQueue {
  /** Settles once the newest operation has handed the wire over or finished. */
  #wireFree: Promise<void> = Promise.resolve();
  /** Settles once every operation queued so far has finished. */
  #allDone: Promise<void> = Promise.resolve();
  #active = 0;

  /** Operations queued or running (the handshake included). */
  get active(): number {
    return this.#active;
  }

  /**
   * Queues `operation`. With `overlap`, it may start as soon as the one before hands the
   * wire over; without, only once everything before it finished. `guard` runs just before
   * the operation starts and may throw to refuse it (the connection died meanwhile).
   */
  run<T>(operation: Operation<T>, { overlap = false, guard }: { overlap?: boolean; guard?: () => void } = {}): Promise<T> {
    const idle = this.#active === 0;
    this.#active++;
    let handOver!: () => void;
    const wireFree = new Promise<void>((resolve) => (handOver = resolve));
    const started = overlap ? this.#wireFree : this.#allDone;
    const running = started.then(() => {
      guard?.();
      return operation(handOver);
    });
    const finished = running.then(
      () => this.#finish(handOver),
      () => this.#finish(handOver),
    );
    this.#wireFree = wireFree;
    // An operation that waited for everything before it (or found nothing to wait for)
    // finishes last; one that overlapped may finish before the one it overlapped.
    this.#allDone = overlap && !idle ? Promise.all([this.#allDone, finished]).then(() => undefined) : finished;
    return running;
  }

  /**
   * Starts `work` (the handshake) now, as the thing every later operation waits for. It is
   * counted before it starts, so a failure it throws synchronously finds a receiver.
   */
  first<T>(work: () => Promise<T>): Promise<T> {
    this.#active++;
    const running = work();
    const done = running.then(
      () => void this.#active--,
      () => void this.#active--,
    );
    this.#wireFree = done;
    this.#allDone = done;
    return running;
  }

  #finish(handOver: () => void): void {
    this.#active--;
    handOver();
  }
}
