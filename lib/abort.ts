/**
 * AbortSignal support for connect, login, send and createSendStream (issue 10, item 7):
 * the error an abort gives, one listener per signal however many operations share it, and
 * reading the optional `{ signal }` argument next to Nodemailer's callbacks.
 *
 * What an abort does at each point of an operation is decided where that operation runs
 * (cancellation.ts, transaction.ts, send-stream.ts); this file knows no SMTP.
 */
import type { Callback, OperationOptions } from "./types.js";
import { SMTPError, type SMTPErrorFields } from "./errors.js";

/**
 * The error of an aborted operation: ECONNECTION, as for an operation that close() cuts
 * short, because an abort is the caller ending one operation early, not a fault of the
 * server, the network or the message. Temporary, as nothing was refused. `cause` is the
 * signal's reason, so `err.cause === signal.reason` tells an abort from every other
 * failure. A send's abort also says whether the server may have the message (`extra`).
 */
export function abortError(signal: AbortSignal, what: string, command: string, extra: SMTPErrorFields = {}): SMTPError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : String(reason);
  return new SMTPError("ECONNECTION", `${what} was aborted: ${why}`, { command, temporary: true, cause: reason, ...extra });
}

/**
 * The listeners of every signal in use: one 'abort' listener per signal, however many
 * operations (on however many connections) watch it. A relay that passes one shutdown
 * signal to a thousand queued sends would otherwise put a thousand listeners on it (and
 * get Node's MaxListenersExceededWarning past ten).
 */
const watchers = new WeakMap<AbortSignal, { listeners: Set<() => void>; fire: () => void }>();

/**
 * Calls `onAbort` once if `signal` aborts, until the returned function is called; that
 * function removes the signal's listener when no other operation still watches it. Call it
 * when the operation settles, so a long-lived signal keeps nothing of finished ones.
 */
export function watchSignal(signal: AbortSignal, onAbort: () => void): () => void {
  let entry = watchers.get(signal);
  if (!entry) {
    const listeners = new Set<() => void>();
    const fire = () => {
      watchers.delete(signal);
      for (const listener of [...listeners]) listener();
      listeners.clear();
    };
    entry = { listeners, fire };
    watchers.set(signal, entry);
    signal.addEventListener("abort", fire, { once: true });
  }
  const { listeners, fire } = entry;
  // A function of its own, so the same onAbort watched twice is two entries.
  const listener = () => onAbort();
  listeners.add(listener);
  return () => {
    if (!listeners.delete(listener) || listeners.size > 0) return;
    watchers.delete(signal);
    signal.removeEventListener("abort", fire);
  };
}

/** Anything else given as `signal` (often the AbortController itself) is refused, not ignored. */
function isSignal(value: unknown): value is AbortSignal {
  const signal = value as AbortSignal | null | undefined;
  return typeof signal?.aborted === "boolean" && typeof signal.addEventListener === "function" && typeof signal.removeEventListener === "function";
}

/**
 * Reads the optional trailing arguments of a public call: `{ signal }` and Nodemailer's
 * callback, in either order (options first is Node's own convention). A `signal` that is
 * not an AbortSignal is a `refusal`, for the call to reject with.
 */
export function readCallArgs<T>(args: readonly unknown[]): { signal: AbortSignal | undefined; callback: Callback<T> | undefined; refusal?: SMTPError } {
  const callback = args.find((arg): arg is Callback<T> => typeof arg === "function");
  const options = args.find((arg): arg is OperationOptions => arg !== null && typeof arg === "object");
  const signal = options?.signal;
  if (signal === undefined || isSignal(signal)) return { signal, callback };
  return { signal: undefined, callback, refusal: new SMTPError("ECONNECTION", "options.signal must be an AbortSignal (controller.signal, not the controller)", { command: "API", temporary: false }) };
}
