/**
 * What an aborted `{ signal }` does to each kind of operation of a connection (issue 10,
 * item 7). connect() and login(): rejected at once; once begun, the connection is closed,
 * as there is no clean way out of a handshake or a SASL exchange. A send: its SendStream
 * is abandoned, as destroy() would (RSET while in its envelope, the connection closed
 * mid-body, nothing once its end of data has left: the server's reply decides then).
 *
 * Deliberately left out: the error an abort gives and the listener bookkeeping
 * (abort.ts), and what abandoning a stream does on the wire (transaction.ts).
 */
import { abortError, watchSignal } from "./abort.js";
import { SMTPError } from "./errors.js";
import { deliveryState } from "./outcome.js";
import type { SendStream } from "./send-stream.js";
import type { SendInfo } from "./types.js";

/** What an abort needs of the connection: who is talking, and how to end it. */
export interface CancelTarget {
  /** The command whose reply is awaited; undefined when none is. */
  readonly head: string | undefined;
  /** Closes the connection with `err`, which the aborted operation has reported already. */
  abort(err: SMTPError): void;
}

/**
 * Runs an operation that `signal` may cancel; `run` calls `begin` when the operation's
 * turn comes (begin throws if the signal aborted meanwhile, so nothing is written). An
 * abort rejects at once: before the turn the operation then does nothing; during it the
 * connection is closed. The signal's listener goes when the operation settles.
 */
export function cancellable<T>(signal: AbortSignal | undefined, what: string, target: CancelTarget, run: (begin: () => void) => Promise<T>): Promise<T> {
  if (!signal) return run(() => {});
  if (signal.aborted) return Promise.reject(abortError(signal, what, "API"));
  let begun = false;
  return new Promise<T>((resolve, reject) => {
    const stop = watchSignal(signal, () => {
      const err = abortError(signal, what, begun ? (target.head ?? "CONN") : "API");
      reject(err);
      if (begun) target.abort(new SMTPError("ECONNECTION", `Connection closed because ${what} was aborted`, { command: err.command, temporary: true, cause: err }));
    });
    const begin = () => {
      if (signal.aborted) throw abortError(signal, what, "API");
      begun = true;
    };
    run(begin).then(
      (value) => (stop(), resolve(value)),
      (err: unknown) => (stop(), reject(err)),
    );
  });
}

/**
 * Starts the send of `stream` (`start` queues its transaction), which `signal` abandons
 * until its end of data has left; `head` names the command an abort interrupts.
 */
export function abandonOnAbort(stream: SendStream, signal: AbortSignal | undefined, what: string, head: () => string | undefined, start: () => Promise<SendInfo>): Promise<SendInfo> {
  if (!signal) return start();
  if (signal.aborted) {
    const err = abortError(signal, what, "API", { deliveryState: deliveryState({ phase: "queued" }) });
    stream.destroy(err);
    return Promise.reject(err);
  }
  const stop = watchSignal(signal, () => {
    const { phase } = stream;
    const command = phase === "queued" ? "API" : (head() ?? (phase === "body" ? "DATA" : "MAIL FROM"));
    // Ignored once the end of data left (phase "final"): the server's reply decides then.
    stream.abort(abortError(signal, what, command, { deliveryState: deliveryState({ phase }) }));
  });
  // Gone when the send settles, or when the stream closes without one (destroyed while queued).
  stream.once("close", stop);
  const sending = start();
  sending.then(stop, stop);
  return sending;
}
