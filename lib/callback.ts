/**
 * The one adapter between Promises and Node-style callbacks at the public edge.
 *
 * With a callback, it is called exactly once, on a later tick, so an exception thrown by
 * the callback surfaces as the caller's own error and never re-enters our code or turns
 * into an unhandled rejection. Without one, the Promise is returned.
 */
import type { Callback } from "./types.js";

export function settle<T>(promise: Promise<T>, callback?: Callback<T>): Promise<T> | void {
  if (typeof callback !== "function") return promise;
  promise.then(
    (value) => process.nextTick(callback, null, value),
    (err: Error) => process.nextTick(callback, err),
  );
}
