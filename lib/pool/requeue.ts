/**
 * What the pool may try again, decided in one place from what the send reported (its
 * `deliveryState`, SPEC §6) and what the pool saw:
 *
 *   not-sent, its connection died, no byte of a streamed body handed over  -> again, on another connection
 *   not-sent, the connection lives (a refusal, bad input, a failed source) -> reported: the same again would fail
 *   rejected                                                                -> reported: the server said no
 *   unknown                                                                 -> reported: it may have been delivered
 *
 * `unknown` is never tried again: a duplicate is worse than a question. Attempts are
 * bounded by maxRequeues and spaced by a backoff, so a flapping link is not hammered and a
 * message is not re-queued forever.
 *
 * Deliberately left out: retrying later in time (a 4xx refusal): that is the caller's
 * queue's job, with its own schedule (README, "Retry rules").
 */
import { SMTPError } from "../errors.js";
import type { DeliveryState } from "../types.js";

/** First delay before a re-queued send is tried again, doubled each time, up to REQUEUE_MAX_MS. */
export const REQUEUE_BASE_MS = 50;
export const REQUEUE_MAX_MS = 2000;

/** The error's deliveryState (SPEC §6); an error that says none is `unknown`: in doubt, never again. */
export function deliveryStateOf(err: unknown): DeliveryState {
  const state = (err as { deliveryState?: unknown })?.deliveryState;
  return state === "not-sent" || state === "rejected" ? state : "unknown";
}

/** What the pool knows about one failed attempt. */
export interface FailedAttempt {
  err: unknown;
  /** The connection it ran on has ended. */
  connectionDied: boolean;
  /** Part of the body reached the connection (a streamed body cannot be read twice). */
  bodyHandedOver: boolean;
  /** Times this send was re-queued already. */
  requeues: number;
  maxRequeues: number;
}

/** True when the send may go out again on another connection. */
export function mayRequeue(attempt: FailedAttempt): boolean {
  const code = (attempt.err as { code?: unknown })?.code;
  return (
    attempt.connectionDied &&
    !attempt.bodyHandedOver &&
    code !== "ESTREAM" &&
    attempt.requeues < attempt.maxRequeues &&
    deliveryStateOf(attempt.err) === "not-sent"
  );
}

/** Milliseconds to wait before re-queue number `requeues` (1-based). */
export function requeueDelay(requeues: number): number {
  return Math.min(REQUEUE_BASE_MS * 2 ** Math.max(0, requeues - 1), REQUEUE_MAX_MS);
}

/**
 * A server that turns connections away because it has too many: 421 at the greeting, or
 * a reply that says so. The pool opens fewer connections for a while instead of failing
 * messages.
 */
export function isTooManyConnections(err: unknown): boolean {
  const e = err as { responseCode?: unknown; response?: unknown; message?: unknown };
  if (e?.responseCode === 421) return true;
  const text = `${typeof e?.response === "string" ? e.response : ""} ${typeof e?.message === "string" ? e.message : ""}`;
  return /too many (connections|concurrent|sessions|simultaneous)/i.test(text);
}

/**
 * A send error made by the pool itself (closed, never connected): the message cannot have
 * reached the server. Each send gets its own error; `cause` is the shared failure, if any.
 */
export function notSent(message: string, cause?: unknown): SMTPError {
  const base = cause instanceof SMTPError ? cause : undefined;
  return new SMTPError(base?.code ?? "ECONNECTION", message, {
    command: base?.command ?? "API",
    response: base?.response,
    responseCode: base?.responseCode,
    enhancedCode: base?.enhancedCode,
    temporary: base?.temporary ?? true,
    deliveryState: "not-sent",
    cause,
  });
}

/** A message source that failed before any of it was sent (a stream's error, an opener that threw). */
export function sourceFailed(cause: unknown): SMTPError {
  return new SMTPError("ESTREAM", `Message source failed: ${(cause as Error)?.message ?? cause}`, { command: "API", temporary: true, deliveryState: "not-sent", cause });
}
