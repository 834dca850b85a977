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

/** `start()`, with a synchronous throw (the guard's) as a rejection, as `.then(start)` would give. */
function startNow<T>(start: () => Promise<T>): Promise<T> {
  try {
    return start();
  } catch (err) {
    return Promise.reject(err);
  }
}

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
   * With `atOnce`, an operation queued when nothing else is queued or running starts
   * within the call, one promise job sooner: for a whole message sent and awaited (each
   * such send comes here), where nothing of the caller's can change before it starts.
   * Others start on a later job, so the caller can first attach to what run() returns
   * (a SendStream's handlers) and act on it.
   */
  run<T>(operation: Operation<T>, { overlap = false, guard, atOnce = false }: { overlap?: boolean; guard?: () => void; atOnce?: boolean } = {}): Promise<T> {
    const idle = this.#active === 0;
    this.#active++;
    let handOver!: () => void;
    const wireFree = new Promise<void>((resolve) => (handOver = resolve));
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const before = overlap ? this.#wireFree : this.#allDone;
    // Set before the operation starts, so an operation queued from within its first
    // synchronous steps (an event handler calling send()) waits behind it.
    this.#wireFree = wireFree;
    // An operation that waited for everything before it (or found nothing to wait for)
    // finishes last; one that overlapped may finish before the one it overlapped.
    this.#allDone = overlap && !idle ? Promise.all([this.#allDone, finished]).then(() => undefined) : finished;
    const start = () => {
      guard?.();
      return operation(handOver);
    };
    const running = idle && atOnce ? startNow(start) : before.then(start);
    const finish = () => {
      this.#finish(handOver);
      done();
    };
    running.then(finish, finish);
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
