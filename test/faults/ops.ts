/**
 * Operations under test and the checks every failure must pass, shared by the fault,
 * fuzz and caller tests: a public call wrapped so its settlement can be counted (Promise,
 * Node-style callback, SendStream), the fields every SMTPError must carry, and the check
 * that nothing (socket, server, timer) was left open.
 */
import * as assert from "uvu/assert";
import { SMTPError, type SendStream } from "../../lib/index.js";
import { nodeCallback } from "../helpers/callbacks.js";
import { openResources } from "../helpers/leak-check.js";

/** Hang detector for one cell: far above any timeout a cell uses, so it only trips on a real hang. */
export const HANG_MS = 10_000;

export const ENVELOPE = { from: "sender@example.test", to: ["rcpt@example.test"] };
export const MESSAGE = "Subject: fault test\r\n\r\nbody\r\n";

export interface Settlement {
  ok: boolean;
  value?: unknown;
  error?: unknown;
}

/** One public call whose outcome is checked: its settlement and how often it settled. */
export interface Op {
  label: string;
  settled: Promise<Settlement>;
  count(): number;
  /** A stream source or SendStream that must be destroyed when the op failed. */
  mustBeDestroyed?: { destroyed: boolean };
}

export function promiseOp(label: string, promise: Promise<unknown>): Op {
  let count = 0;
  const settled = promise.then(
    (value) => (count++, { ok: true, value }),
    (error: unknown) => (count++, { ok: false, error }),
  );
  return { label, settled, count: () => count };
}

export function callbackOp<T>(label: string, start: (callback: (err?: Error | null, value?: T) => void) => void): Op {
  const callback = nodeCallback<T>(label);
  start(callback);
  const settled = callback.result.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
  return { label, settled, count: () => callback.count };
}

/** A SendStream settles by `finish` or by `error`, exactly one of them, once. */
export function streamOp(label: string, stream: SendStream): Op {
  let count = 0;
  const settled = new Promise<Settlement>((resolve) => {
    stream.on("finish", () => (count++, resolve({ ok: true, value: stream.info })));
    stream.on("error", (error) => (count++, resolve({ ok: false, error })));
  });
  return { label, settled, count: () => count, mustBeDestroyed: stream };
}

const KNOWN_CODES = new Set(["ECONNECTION", "ETIMEDOUT", "ESOCKET", "EDNS", "ETLS", "EPROTOCOL", "EAUTH", "EENVELOPE", "EMESSAGE", "ESTREAM", "EREQUIRETLS"]);

/** Checks the fields every error must carry. */
export function assertSMTPError(error: unknown, where: string): asserts error is SMTPError {
  assert.instance(error, SMTPError, `${where}: an SMTPError, got ${String(error)}`);
  const e = error as SMTPError;
  assert.ok(KNOWN_CODES.has(e.code), `${where}: known code, got ${e.code}`);
  assert.type(e.command, "string", `${where}: command is set`);
  assert.ok(e.command!.length > 0, `${where}: command is not empty`);
  assert.type(e.temporary, "boolean", `${where}: temporary is a boolean`);
  // A 5xx refuses; anything else the server or the network did may pass on a retry.
  if (e.responseCode !== undefined) assert.is(e.temporary, e.responseCode < 500, `${where}: temporary follows the reply code ${e.responseCode}`);
  else if ((e.code === "ECONNECTION" || e.code === "ETIMEDOUT" || e.code === "EPROTOCOL") && e.command !== "API") {
    assert.is(e.temporary, true, `${where}: ${e.code} is temporary (a retry may work)`);
  }
}

/** Waits for pending I/O callbacks, then fails if a socket, server or timer is still open. */
export async function assertNothingOpen(where: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (openResources().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(openResources(), [], `${where}: nothing left open`);
}
