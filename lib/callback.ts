/**
 * The one adapter between Promises and Node-style callbacks at the public edge, and the
 * rule for calls made without a callback.
 *
 * With a callback, it is called exactly once, on a later tick, so an exception thrown by
 * the callback surfaces as the caller's own error and never re-enters our code or turns
 * into an unhandled rejection. Without one, a Promise is returned.
 *
 * The rule for a call without a callback whose Promise the caller ignores (Nodemailer's
 * `conn.connect(); conn.on("error", ...)`, issue 11): its rejection is marked handled
 * when the same failure was delivered to an `error` listener, since the caller has then
 * received it; the Promise still rejects for anyone who awaits it. A failure that is not
 * emitted as `error` (a refused message, bad input: the connection lives on) belongs to
 * the Promise alone, so ignoring that Promise is an unhandled rejection like any other.
 * One failure is thus never lost, and never reported twice.
 */
import type { Callback } from "./types.js";
import { readCallArgs } from "./abort.js";

/** Whether `err` (or the failure it wraps as `cause`) was delivered to an `error` listener. */
export type DeliveredCheck = (err: unknown) => boolean;

const ignore = (): void => {};

export function settle<T>(promise: Promise<T>, callback?: Callback<T>, delivered?: DeliveredCheck): Promise<T> | void {
  if (typeof callback !== "function") return delivered ? markedWhenDelivered(promise, delivered) : promise;
  promise.then(
    (value) => process.nextTick(callback, null, value),
    (err: Error) => process.nextTick(callback, err),
  );
}

function markedWhenDelivered<T>(promise: Promise<T>, delivered: DeliveredCheck): Promise<T> {
  const result: Promise<T> = promise.catch((err: unknown) => {
    // The connection emits `error` on a tick it queued when it failed, before this
    // rejection could run; Node reports unhandled rejections only once the tick queue is
    // empty. So the check on the next tick sees the emission and still comes in time.
    process.nextTick(() => {
      if (delivered(err)) result.catch(ignore);
    });
    throw err;
  });
  return result;
}

/**
 * A public call's edge: reads its trailing `(options?, callback?)` (abort.ts), runs
 * `operation` with the signal, and calls the callback or returns the Promise.
 */
export function settleCall<T>(args: readonly unknown[], operation: (signal: AbortSignal | undefined) => Promise<T>, delivered: DeliveredCheck): Promise<T> | void {
  const { signal, callback, refusal } = readCallArgs<T>(args);
  return settle(refusal ? Promise.reject(refusal) : operation(signal), callback, delivered);
}
