/**
 * SMTPPool: many messages to one destination over a few long-lived connections (issue 12).
 *
 * Sends wait in one queue (at most `maxQueued`; beyond it a send waits for room before it
 * is queued). The pump hands each to the least busy connection; up to two ride one
 * connection at a time on its own queue, so the next envelope goes out behind the previous
 * message's terminator (one round trip a message). Every message start passes the shared
 * sliding rate limit. A connection is replaced after `maxMessages` and says QUIT after
 * `idleTimeout` with nothing to do.
 *
 * When a connection dies, each of its sends reports its own outcome; the ones that cannot
 * have reached the server go out again on another connection (requeue.ts says which). A
 * server that turns connections away (421, "too many connections") gets fewer for a while.
 *
 * The pool never emits 'error': every failure belongs to a send, a verify() or an
 * acquire(), and reaches it. 'idle' means there is room for more sends; 'clear' that the
 * last connection ended with nothing pending; 'end' follows close() once every connection
 * is closed.
 *
 * This file admits sends, pumps them to connections and settles each one. Its parts:
 * connection-set.ts opens connections (and fewer after a refusal), lease.ts lends them,
 * attempt.ts runs one attempt of a send, requeue.ts says what may go out again.
 *
 * Deliberately left out: several destinations, scheduling retries of refused messages
 * (the caller's queue does that), and message composition.
 */
import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import { SMTPError } from "../errors.js";
import { settle } from "../callback.js";
import { readCallArgs, watchSignal } from "../abort.js";
import { checkMessage, type MessageInput } from "../message.js";
import type { Callback, Envelope, OperationOptions, SendInfo } from "../types.js";
import { attemptSend } from "./attempt.js";
import { ConnectionSet } from "./connection-set.js";
import { Fifo } from "./fifo.js";
import { abortedInLine, type Deferred, type Job, type MessageOpener } from "./job.js";
import { LeaseQueue, type PoolLease } from "./lease.js";
import { readPoolLimits, type PoolLimits, type PoolOptions } from "./options.js";
import type { PoolConnection } from "./pool-connection.js";
import { PoolSendStream } from "./pool-send-stream.js";
import { SlidingRateLimit } from "./rate-limit.js";
import { isTooManyConnections, mayRequeue, notSent, requeueDelay, sourceFailed } from "./requeue.js";

/**
 * Sends one connection carries at a time. Two is what overlapping needs: one message
 * waiting for its final reply while the next one's envelope and body go out behind it.
 */
const SENDS_PER_CONNECTION = 2;

export class SMTPPool extends EventEmitter {
  readonly options: PoolOptions;
  readonly limits: PoolLimits;
  #rate: SlidingRateLimit;
  #connections: ConnectionSet;
  /** Sends with a place in line, at most maxQueued. */
  #queue = new Fifo<Job>();
  /** Sends waiting for room in the queue. */
  #waiting = new Fifo<Job | Deferred>();
  /** Sends waiting out a backoff before going back in the queue. */
  #backingOff = new Set<Job>();
  /** Callers of acquire(); a connection given back says QUIT when asked to (or the pool is closed), else goes back to work. */
  #leases = new LeaseQueue((pc, close) => {
    if (close || this.#closed) pc.retire();
    else this.#afterWork(pc);
  });
  #pending = 0;
  #closed = false;
  #wasIdle = true;
  #rateTimer: NodeJS.Timeout | undefined;
  #whenEnded: Promise<void>;
  #resolveEnded!: () => void;

  constructor(options: PoolOptions = {}) {
    super();
    this.options = { ...options };
    this.limits = readPoolLimits(options);
    this.#rate = new SlidingRateLimit(this.limits.rateLimit, this.limits.rateDelta);
    this.#whenEnded = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.#connections = new ConnectionSet(this.options, this.limits, {
      pump: () => this.#pump(),
      giveUp: (errorFor) => this.#failAllWaiting(errorFor),
      closed: () => {
        this.#resolveEnded();
        process.nextTick(() => this.emit("end"));
      },
      // As Nodemailer's pool: every connection has ended (idle timeout, server close) and
      // nothing waits, so a process may let the pool be.
      cleared: () => {
        if (this.#pending === 0) this.emit("clear");
      },
    });
    // As Nodemailer's pool: a new pool has room, and says so once listeners are attached.
    setImmediate(() => {
      if (this.isIdle()) this.emit("idle");
    });
  }

  /**
   * Sends one message over a pooled connection; resolves with its SendInfo. The message is
   * a string, a Buffer, a Readable (piped only once the send has a connection) or a
   * MessageOpener (called for each attempt). `signal` cancels it: waiting in line, it
   * rejects at once; on a connection, as a connection's send() (SPEC §4). An aborted send
   * is never tried again.
   */
  send(envelope: Envelope, message: MessageInput | MessageOpener, options?: OperationOptions): Promise<SendInfo>;
  send(envelope: Envelope, message: MessageInput | MessageOpener, callback: Callback<SendInfo>): void;
  send(envelope: Envelope, message: MessageInput | MessageOpener, options: OperationOptions, callback: Callback<SendInfo>): void;
  send(envelope: Envelope, message: MessageInput | MessageOpener, options?: OperationOptions | Callback<SendInfo>, callback?: Callback<SendInfo>): Promise<SendInfo> | void {
    const { signal, callback: done, refusal } = readCallArgs<SendInfo>([options, callback]);
    return settle(refusal ? Promise.reject(refusal) : this.#send(envelope, message, signal), done);
  }

  /**
   * A Writable for one message, as a connection's createSendStream(): it finishes once the
   * server accepted the message (`stream.info`) or is destroyed with the SMTPError. It
   * takes bytes only once it has a connection (before that, write() returns false past its
   * highWaterMark), and emits 'dispatch' each time it is given one. An aborted `signal`
   * destroys it with the error send() would reject with.
   */
  createSendStream(envelope: Envelope, options: OperationOptions = {}): PoolSendStream {
    const { signal, refusal } = readCallArgs([options]);
    const refused = refusal ?? (this.#closed ? notSent("The pool is closed") : signal?.aborted ? abortedInLine(signal, "createSendStream()") : undefined);
    if (refused) {
      const stream = new PoolSendStream();
      stream.fail(refused);
      return stream;
    }
    return this.#streamJob(envelope, true, signal);
  }

  /**
   * Lends one connection for a while (a relay's upstream session, say), counted against
   * maxConnections; the pool sends nothing over it until release(). Resolves once a
   * connection is free or opened; rejects with the reason when none could be opened.
   */
  acquire(): Promise<PoolLease> {
    if (this.#closed) return Promise.reject(notSent("The pool is closed"));
    const lease = this.#leases.wait();
    this.#pump();
    return lease;
  }

  /** Opens one connection apart from the pool, logs in, says QUIT; resolves true. */
  verify(): Promise<true>;
  verify(callback: Callback<true>): void;
  verify(callback?: Callback<true>): Promise<true> | void {
    return settle(this.#connections.verify(), callback);
  }

  /**
   * Closes the pool. Waiting sends and leases fail `not-sent` at once; sends already on a
   * connection finish, then each connection says QUIT (a lent one once it is released).
   * With `force`, connections close now and their sends fail too. Resolves once every
   * connection is closed ('end').
   */
  close(options: { force?: boolean } = {}): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      if (this.#rateTimer) clearTimeout(this.#rateTimer);
      const closed = (what: string) => notSent(`The pool was closed before ${what}`);
      for (const job of [...this.#waiting.drain(), ...this.#queue.drain(), ...this.#backingOff]) {
        if ("start" in job) job.fail(closed("the message was sent"));
        else {
          if (job.backoff) clearTimeout(job.backoff);
          this.#settle(job, closed("the message was sent"));
        }
      }
      this.#backingOff.clear();
      this.#leases.failAll(() => closed("a connection was free"));
    }
    this.#connections.close(Boolean(options.force));
    return this.#whenEnded;
  }

  /** True when a send made now would be queued at once (room for more); false once closed. */
  isIdle(): boolean {
    return !this.#closed && this.#hasRoom();
  }

  /** Sends not settled yet: waiting for room, queued, backing off, or on a connection. */
  pendingCount(): number {
    return this.#pending;
  }

  // ---- admitting sends ---------------------------------------------------------------

  #send(envelope: Envelope, message: MessageInput | MessageOpener, signal: AbortSignal | undefined): Promise<SendInfo> {
    if (this.#closed) return Promise.reject(notSent("The pool is closed"));
    if (signal?.aborted) return Promise.reject(abortedInLine(signal, "send()"));
    if (typeof message === "function") return new Promise((resolve, reject) => this.#admit(envelope, message, resolve, reject, true, signal));
    let checked: ReturnType<typeof checkMessage>;
    try {
      checked = checkMessage(message);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if ("source" in checked) return this.#sendSource(envelope, checked.source, signal);
    return new Promise((resolve, reject) => this.#admit(envelope, checked.bytes, resolve, reject, true, signal));
  }

  /**
   * A streamed message: the source is piped only once the stream has a connection, so a
   * send waiting in line reads nothing, holds nothing, and can still go to any connection.
   * Beyond maxQueued not even the stream is made until there is room.
   */
  #sendSource(envelope: Envelope, source: Readable, signal: AbortSignal | undefined): Promise<SendInfo> {
    return new Promise<SendInfo>((resolve, reject) => {
      // Until it is piped, a failing source would have no 'error' listener at all.
      let stream: PoolSendStream | undefined;
      let unwatch: (() => void) | undefined;
      const leaveWaiting = (err: SMTPError) => {
        if (this.#waiting.remove(deferred)) deferred.fail(err);
      };
      const early = (err: Error) => {
        if (stream) return stream.destroy(err);
        leaveWaiting(sourceFailed(err));
      };
      const start = (pump: boolean) => {
        unwatch?.();
        stream = this.#streamJob(envelope, pump, signal);
        stream.once("dispatch", () => {
          source.off("error", early);
          source.pipe(stream!);
        });
        stream.once("finish", () => resolve(stream!.info!));
        stream.once("error", (err) => {
          source.off("error", early);
          source.unpipe?.(stream);
          source.destroy?.();
          reject(err);
        });
      };
      const deferred: Deferred = {
        // Called by the pump as it lets sends in: it queues the stream itself.
        start: () => {
          this.#pending--;
          start(false);
        },
        fail: (err) => {
          unwatch?.();
          this.#pending--;
          source.off("error", early);
          source.destroy?.();
          reject(err);
        },
      };
      source.once("error", early);
      if (this.#hasRoom()) return start(true);
      this.#pending++;
      this.#waiting.push(deferred);
      if (signal) unwatch = watchSignal(signal, () => leaveWaiting(abortedInLine(signal, "send()")));
    });
  }

  /** A stream send with its place in line (or in the waiting line when there is no room). */
  #streamJob(envelope: Envelope, pump = true, signal?: AbortSignal): PoolSendStream {
    const stream = new PoolSendStream();
    const job = this.#admit(envelope, stream, (info) => stream.complete(info), (err) => stream.fail(err as SMTPError), pump, signal);
    void stream.aborted.then((reason) => this.#abandon(job, reason));
    return stream;
  }

  #hasRoom(): boolean {
    return this.#waiting.length === 0 && this.#queue.length < this.limits.maxQueued;
  }

  /** Queues a send, or (no room, and not let in by the pump) puts it in the waiting line. */
  #admit(envelope: Envelope, message: Job["message"], resolve: (info: SendInfo) => void, reject: (err: Error) => void, pump = true, signal?: AbortSignal): Job {
    const job: Job = { envelope, message, signal, running: false, attempts: 0, settled: false, resolve, reject };
    this.#pending++;
    if (signal) {
      const what = message instanceof PoolSendStream ? "createSendStream()" : "send()";
      // On a connection, the connection honours the signal, phase by phase.
      job.unwatch = watchSignal(signal, () => job.running || this.#abandon(job, abortedInLine(signal, what)));
    }
    if (this.#hasRoom() || !pump) this.#queue.push(job);
    else this.#waiting.push(job);
    if (pump) this.#pump();
    return job;
  }

  /** The caller destroyed a send's stream: it leaves the line, or stops where it is. */
  #abandon(job: Job, reason: SMTPError): void {
    if (job.settled) return;
    if (job.cancel) return job.cancel(reason);
    if (job.backoff) {
      clearTimeout(job.backoff);
      this.#backingOff.delete(job);
    }
    if (!this.#queue.remove(job)) this.#waiting.remove(job);
    this.#settle(job, reason);
    this.#pump();
  }

  #settle(job: Job, err: Error | undefined, info?: SendInfo): void {
    if (job.settled) return;
    job.settled = true;
    job.cancel = undefined;
    job.unwatch?.();
    this.#pending--;
    if (err) job.reject(err);
    else job.resolve(info!);
  }

  /** No connection could be opened: every send and lease still waiting fails, each with its own error. */
  #failAllWaiting(errorFor: () => SMTPError): void {
    for (const job of [...this.#queue.drain(), ...this.#waiting.drain()]) {
      if ("start" in job) job.fail(errorFor());
      else this.#settle(job, errorFor());
    }
    this.#leases.failAll(errorFor);
  }

  // ---- the pump --------------------------------------------------------------------

  /** Hands queued work to connections, opens connections when there is more, lets waiting sends in. */
  #pump(): void {
    if (this.#closed) return;
    this.#leases.serve(this.#connections, this.limits.maxMessages);
    while (this.#queue.length > 0) {
      const pc = this.#connections.leastBusy(this.#depth);
      if (!pc) break;
      const wait = this.#rate.wait();
      if (wait > 0) {
        this.#armRateTimer(wait);
        break;
      }
      this.#rate.record();
      this.#run(pc, this.#queue.shift()!);
    }
    // A lease takes a whole connection.
    this.#connections.openIfNeeded(this.#queue.length + this.#leases.length * this.#depth, this.#depth);
    while (this.#waiting.length > 0 && this.#queue.length < this.limits.maxQueued) {
      const next = this.#waiting.shift()!;
      if ("start" in next) next.start();
      else this.#queue.push(next);
    }
    const idle = this.isIdle();
    const becameIdle = idle && !this.#wasIdle;
    // Recorded before emitting: a listener that sends (a producer filling the line) runs the
    // pump again inside emit(), and what that inner pump records must stand, or the next
    // time the line has room no 'idle' comes and the producer waits for ever.
    this.#wasIdle = idle;
    if (becameIdle) this.emit("idle");
  }

  /**
   * With a rate limit, one send per connection: a send queued behind another would start
   * (write MAIL FROM) later than the limiter counted it, and the server would see a burst.
   */
  get #depth(): number {
    return this.#rate.isLimited ? 1 : SENDS_PER_CONNECTION;
  }

  #armRateTimer(ms: number): void {
    if (this.#rateTimer) return;
    this.#rateTimer = setTimeout(() => {
      this.#rateTimer = undefined;
      this.#pump();
    }, Math.ceil(ms));
  }

  // ---- running a send --------------------------------------------------------------

  #run(pc: PoolConnection, job: Job): void {
    pc.inFlight++;
    pc.given++;
    pc.busy();
    job.running = true;
    attemptSend(pc, job).then(
      (info) => {
        pc.inFlight--;
        this.#settle(job, undefined, info);
        this.#afterWork(pc);
      },
      (err: Error) => {
        pc.inFlight--;
        job.running = false;
        // The connection's 'end' follows the failure that ended it within the same turn.
        setImmediate(() => this.#attemptFailed(pc, job, err));
      },
    );
  }

  #attemptFailed(pc: PoolConnection, job: Job, err: Error): void {
    job.cancel = undefined;
    const connectionDied = pc.state === "ended";
    if (connectionDied && isTooManyConnections(err)) this.#connections.lowerConcurrency();
    // An opener gives the whole message again; a stream's body can be read only once.
    const bodyHandedOver = job.message instanceof PoolSendStream && job.message.handedOver;
    const again = !this.#closed && !job.settled && !job.signal?.aborted && mayRequeue({ err, connectionDied, bodyHandedOver, requeues: job.attempts, maxRequeues: this.limits.maxRequeues });
    if (again) this.#requeue(job);
    else this.#settle(job, err);
    this.#afterWork(pc);
  }

  #requeue(job: Job): void {
    job.attempts++;
    this.#backingOff.add(job);
    job.backoff = setTimeout(() => {
      job.backoff = undefined;
      this.#backingOff.delete(job);
      this.#queue.unshift(job);
      this.#pump();
    }, requeueDelay(job.attempts));
  }

  /** A connection finished a piece of work: retire it, let it idle, or give it more. */
  #afterWork(pc: PoolConnection): void {
    if (pc.state === "ready" && !pc.leased) {
      if (this.#closed || pc.retiring || pc.given >= this.limits.maxMessages) pc.retire();
      else if (pc.inFlight === 0) pc.idleFor(this.limits.idleTimeout);
    }
    this.#pump();
  }
}
