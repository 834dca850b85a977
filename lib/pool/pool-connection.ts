/**
 * One connection of a pool and what the pool counts about it: whether it is ready, how
 * many sends it carries now (`inFlight`, queued on the connection's own queue, so they
 * overlap), how many it was given in all (for maxMessages), whether it is leased, and its
 * idle timer. It never decides what to send; the pool does.
 */
import { SMTPConnection } from "../connection.js";
import type { AuthCredentials, SMTPConnectionOptions } from "../types.js";

export type PoolConnectionState = "opening" | "ready" | "ended";

export class PoolConnection {
  readonly connection: SMTPConnection;
  state: PoolConnectionState = "opening";
  /** It was ready once (a connection that never opened is the opener's to report). */
  wasReady = false;
  /** Sends given to this connection and not settled yet. */
  inFlight = 0;
  /** Sends given to this connection in all. */
  given = 0;
  /** Lent to a caller through acquire(): the pool sends nothing over it. */
  leased = false;
  /** Takes no more sends: it will say QUIT once the ones it has are done. */
  retiring = false;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(options: SMTPConnectionOptions, onEnd: (self: PoolConnection) => void) {
    this.connection = new SMTPConnection(options);
    // Every failure also reaches the send or the open() it belongs to; one that reached
    // nothing (the server closed an idle connection) only ends this connection. A listener
    // here keeps both from ever becoming an uncaught 'error'.
    this.connection.on("error", () => {});
    this.connection.once("end", () => {
      this.state = "ended";
      this.#stopIdleTimer();
      onEnd(this);
    });
  }

  /** Connects and, when the server offers AUTH (or `force`), logs in. */
  async open(auth: AuthCredentials | undefined, force: boolean): Promise<void> {
    await this.connection.connect();
    if (auth && (this.connection.allowsAuth || force)) await this.connection.login(auth);
    if (this.state === "opening") {
      this.state = "ready";
      this.wasReady = true;
    }
  }

  /** Ready, not lent, not retiring: may be given a send. */
  get usable(): boolean {
    return this.state === "ready" && !this.leased && !this.retiring;
  }

  /** Nothing to do now: QUIT after `ms` unless given work first (0: never). */
  idleFor(ms: number): void {
    this.#stopIdleTimer();
    if (ms <= 0 || this.state !== "ready") return;
    this.#idleTimer = setTimeout(() => this.retire(), ms);
  }

  /** Given work: the idle timer stops. */
  busy(): void {
    this.#stopIdleTimer();
  }

  /** Takes no more work; says QUIT once nothing is in flight (QUIT waits behind queued sends anyway). */
  retire(): void {
    this.retiring = true;
    this.#stopIdleTimer();
    if (this.inFlight === 0 && !this.leased && this.state !== "ended") this.connection.quit().catch(() => undefined);
  }

  /** Closes now, without QUIT: whatever is in flight fails. */
  destroy(): void {
    this.retiring = true;
    this.#stopIdleTimer();
    this.connection.close();
  }

  #stopIdleTimer(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }
}
