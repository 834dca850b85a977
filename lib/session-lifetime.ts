/**
 * What a session's waits need to know of its end: the timers it armed (a deadline that
 * closes the connection, a pause), the operations that wait for something other than a
 * reply, and a promise that rejects when the connection dies. Ending the lifetime clears
 * every timer, tells every watcher and rejects that promise, so no wait outlives the
 * connection: a timer left armed would keep the process alive, a watcher left out would
 * wait for ever (SPEC §3: none is left waiting).
 *
 * Deliberately left out: what ending the connection means (session.ts's teardown: the
 * command queue, the socket, the events), which calls `end` at the right point.
 */
import { SMTPError } from "./errors.js";

export class SessionLifetime {
  readonly #timers = new Set<NodeJS.Timeout>();
  /**
   * Operations that may be waiting for their caller (a staged transaction between steps)
   * or for a callback of the caller's (a customAuth handler, an OAuth2 token provider)
   * rather than for a reply, which failing the command queue would not reach.
   */
  readonly #watchers = new Set<() => void>();
  #died!: (err: SMTPError) => void;
  readonly #dead: Promise<never>;

  constructor() {
    this.#dead = new Promise<never>((_, reject) => (this.#died = reject));
    this.#dead.catch(() => {});
  }

  /**
   * Races `work` against a deadline of `ms`: when it passes, `expire` is called with the
   * error `timedOut` gives (it closes the connection). Rejects as soon as the connection
   * dies, whatever `work` does.
   */
  async within<T>(ms: number, timedOut: () => SMTPError, expire: (err: SMTPError) => void, work: Promise<T>): Promise<T> {
    const timer = setTimeout(() => expire(timedOut()), ms);
    this.#timers.add(timer);
    try {
      return await Promise.race([work, this.#dead]);
    } finally {
      clearTimeout(timer);
      this.#timers.delete(timer);
    }
  }

  /** Resolves after `ms`, or never once the connection ended (its timer is cleared). */
  delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }

  /** Calls `onEnd` if the connection ends before the returned function is called. */
  watch(onEnd: () => void): () => void {
    this.#watchers.add(onEnd);
    return () => void this.#watchers.delete(onEnd);
  }

  /** `work`, unless the connection ends first and `failure` then gives an error: it rejects with that at once. */
  failOnEnd<T>(work: Promise<T>, failure: () => SMTPError | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const unwatch = this.watch(() => {
        const err = failure();
        if (err) reject(err);
      });
      work.then(resolve, reject).finally(unwatch);
    });
  }

  /**
   * The connection ended: clears every timer and tells every watcher. Waits in `within`
   * still run until `died`: teardown fails the command queue in between, so a wait whose
   * work is a queued command's reply settles with that command's own error first.
   */
  end(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const onEnd of this.#watchers) onEnd();
    this.#watchers.clear();
  }

  /** Rejects every wait in `within` with `err`. */
  died(err: SMTPError): void {
    this.#died(err);
  }
}
