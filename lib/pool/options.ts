/**
 * The pool's options: a connection's options (SPEC §2) for its one destination, the
 * credentials every connection logs in with, and the limits of the pool itself. Names and
 * defaults are those of Nodemailer's pool where it has the option.
 *
 * Deliberately left out: several destinations (one pool per destination) and proxies.
 */
import type { AuthCredentials, SMTPConnectionOptions } from "../types.js";

/** What `new SMTPPool(options)` takes. */
export interface PoolOptions extends SMTPConnectionOptions {
  /** Credentials each connection logs in with, when the server offers AUTH. */
  auth?: AuthCredentials;
  /** Log in even when the server does not advertise AUTH (as Nodemailer's forceAuth). Default false. */
  forceAuth?: boolean;
  /** Connections open at the same time, leases included. Default 5. */
  maxConnections?: number;
  /** Messages sent over one connection before it is replaced by a fresh one. Default 100. */
  maxMessages?: number;
  /** At most this many messages start in any `rateDelta` window, from the first one on. Default 0 (no limit). */
  rateLimit?: number;
  /** The rate limit's window, milliseconds. Default 1000. */
  rateDelta?: number;
  /**
   * A connection with nothing to do for this long says QUIT and closes, before the
   * server's own limit (RFC 5321 §4.5.3.2.7 asks servers for at least 5 minutes) drops it.
   * Milliseconds; 0 keeps idle connections open. Default 240 000.
   */
  idleTimeout?: number;
  /**
   * How often a send whose connection died before it could be delivered is tried again on
   * another (and how many failed opens in a row are borne). Default 5; a negative number:
   * without limit, as in Nodemailer.
   */
  maxRequeues?: number;
  /** Sends waiting for a connection, at most; a send beyond it waits for room before it is queued. Default 1000. */
  maxQueued?: number;
}

/** The pool's own settings, with their defaults. */
export interface PoolLimits {
  maxConnections: number;
  maxMessages: number;
  rateLimit: number;
  rateDelta: number;
  idleTimeout: number;
  maxRequeues: number;
  maxQueued: number;
}

const POOL_KEYS = ["auth", "forceAuth", "maxConnections", "maxMessages", "rateLimit", "rateDelta", "idleTimeout", "maxRequeues", "maxQueued"] as const;

/** A number above 0 (Infinity allowed: no limit), else the default. */
function positive(value: unknown, fallback: number): number {
  const n = Number(value);
  return n > 0 ? n : fallback;
}

function atLeastZero(value: unknown, fallback: number): number {
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) && n >= 0 ? n : fallback;
}

/** The pool's limits from `options`, defaults filled in. */
export function readPoolLimits(options: PoolOptions): PoolLimits {
  return {
    maxConnections: Math.floor(positive(options.maxConnections, 5)),
    maxMessages: positive(options.maxMessages, 100),
    rateLimit: Math.floor(atLeastZero(options.rateLimit, 0)),
    rateDelta: positive(options.rateDelta, 1000),
    idleTimeout: atLeastZero(options.idleTimeout, 240_000),
    // Nodemailer's pool reads a negative maxRequeues as "without limit"; the waits between
    // attempts still grow (to 2 s), so the server is not hammered.
    maxRequeues: Number(options.maxRequeues) < 0 ? Infinity : Math.floor(atLeastZero(options.maxRequeues, 5)),
    maxQueued: Math.floor(positive(options.maxQueued, 1000)),
  };
}

/** The options each connection is made with: the pool's own keys removed. */
export function connectionOptionsOf(options: PoolOptions): SMTPConnectionOptions {
  const copy: Record<string, unknown> = { ...options };
  for (const key of POOL_KEYS) delete copy[key];
  return copy as SMTPConnectionOptions;
}
