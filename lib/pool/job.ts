/**
 * What the pool holds for each send: a Job from the moment it has a place in line (or in the
 * waiting line) until it settles, and a Deferred for a streamed send still waiting for room.
 * Plain records: the pool moves them between its lines, runs and settles them.
 */
import { abortError } from "../abort.js";
import type { SMTPError } from "../errors.js";
import type { MessageInput } from "../message.js";
import type { Envelope, SendInfo } from "../types.js";
import type { PoolSendStream } from "./pool-send-stream.js";

/**
 * A message the pool opens for each attempt, once the attempt has a connection: a function
 * that returns a new string, Buffer or Readable each time it is called. Nothing is read
 * while the send waits in line, and a message whose connection died midway can go out
 * again in full, which a Readable given once cannot.
 */
export type MessageOpener = () => MessageInput;

export interface Job {
  envelope: Envelope;
  message: Buffer | PoolSendStream | MessageOpener;
  /** The caller's signal: the pool honours it while the send waits, the connection once it runs. */
  signal?: AbortSignal;
  /** Stops watching `signal` (called when the send settles). */
  unwatch?: () => void;
  /** Set while an attempt runs on a connection. */
  running: boolean;
  /** Attempts that failed with the message not sent because the connection died. */
  attempts: number;
  settled: boolean;
  /** Set while it waits out a backoff before going back in the queue. */
  backoff?: NodeJS.Timeout;
  /** Set while it runs: stops it (the caller destroyed its stream). */
  cancel?: (reason: SMTPError) => void;
  resolve(info: SendInfo): void;
  reject(err: Error): void;
}

/**
 * A streamed send waiting for room: its stream is made only once it gets a place in line,
 * so a hundred thousand of them cost a few objects each, not a Writable each.
 */
export interface Deferred {
  start(): void;
  fail(err: SMTPError): void;
}

/** The error of a send whose signal aborted before it had a connection: nothing of it was sent. */
export function abortedInLine(signal: AbortSignal, what: string): SMTPError {
  return abortError(signal, what, "API", { deliveryState: "not-sent" });
}
