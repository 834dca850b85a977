/**
 * Lending connections (SMTPPool.acquire()): the callers waiting for a connection of their
 * own, first come first served, and the lease each is given. A lent connection counts
 * against maxConnections and the pool sends nothing over it until release().
 *
 * Deliberately left out: opening connections for the waiters (the pool counts them in its
 * demand) and what becomes of a connection given back (the pool's callback decides).
 */
import type { SMTPConnection } from "../connection.js";
import { Fifo } from "./fifo.js";
import type { PoolConnection } from "./pool-connection.js";

/** A connection lent to a caller by acquire(). */
export interface PoolLease {
  /** The connection, connected and logged in; use it as any SMTPConnection. */
  readonly connection: SMTPConnection;
  /**
   * Gives the connection back: the pool uses it again, or with `{ close: true }` (say, after
   * XCLIENT changed who the session speaks for) it says QUIT. Calling it again does nothing.
   */
  release(options?: { close?: boolean }): void;
}

interface LeaseWaiter {
  resolve(lease: PoolLease): void;
  reject(err: Error): void;
}

export class LeaseQueue {
  #waiters = new Fifo<LeaseWaiter>();
  readonly #onRelease: (pc: PoolConnection, close: boolean) => void;

  /** `onRelease` is called once per lease, when the caller gives its connection back. */
  constructor(onRelease: (pc: PoolConnection, close: boolean) => void) {
    this.#onRelease = onRelease;
  }

  /** Callers waiting for a connection. */
  get length(): number {
    return this.#waiters.length;
  }

  /** A lease, once serve() finds a free connection for it. */
  wait(): Promise<PoolLease> {
    return new Promise<PoolLease>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Lends free connections (usable, nothing in flight, not used up) to the waiters, in order. */
  serve(connections: Iterable<PoolConnection>, maxMessages: number): void {
    while (this.#waiters.length > 0) {
      let free: PoolConnection | undefined;
      for (const pc of connections) if (pc.usable && pc.inFlight === 0 && pc.given < maxMessages) free = pc;
      if (!free) return;
      this.#lend(free, this.#waiters.shift()!);
    }
  }

  /** Rejects every waiter, each with its own error. */
  failAll(errorFor: () => Error): void {
    for (const waiter of this.#waiters.drain()) waiter.reject(errorFor());
  }

  #lend(pc: PoolConnection, waiter: LeaseWaiter): void {
    pc.leased = true;
    pc.busy();
    let released = false;
    waiter.resolve({
      connection: pc.connection,
      release: ({ close = false } = {}) => {
        if (released) return;
        released = true;
        pc.leased = false;
        this.#onRelease(pc, close);
      },
    });
  }
}
