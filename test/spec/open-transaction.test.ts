/**
 * SPEC §3: "When the connection dies, times out or is closed, every pending and queued
 * operation fails with that error — none is left waiting", and after close() every call
 * fails with ECONNECTION, never hangs. Checked here for what a relay does: a transaction
 * opened with beginTransaction() waits for its caller's next step (a recipient, the body),
 * not for the server, with sends, a reset and a login queued behind it. Whatever ends the
 * connection meanwhile, each of them settles exactly once, and so do the transaction's
 * own next steps.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError, type MailTransaction } from "smtp-wire";
import { greetAndEhlo, startFaultServer, type FaultServer, type Step } from "../helpers/fault-server.js";
import { nodeCallback, settlesWithin } from "../helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const HANG_MS = 5000;
const ENVELOPE = { from: "a@example.test", to: ["b@example.test"] };

/** The SMTPError `promise` rejects with, or a failure if it resolves or hangs. */
async function failure(promise: Promise<unknown>, what: string): Promise<SMTPError> {
  const err = await settlesWithin(
    promise.then(
      () => assert.unreachable(`${what} succeeded`),
      (e: unknown) => e,
    ),
    HANG_MS,
    what,
  );
  assert.instance(err, SMTPError, `${what}: ${String(err)}`);
  return err as SMTPError;
}

/** How the connection ends while the transaction waits for its caller, and the code every operation then fails with. */
const ENDINGS: { how: string; server: Step[]; options?: object; end(conn: SMTPConnection): void; code: string }[] = [
  { how: "close()", server: [{ stall: true }], end: (conn) => conn.close(), code: "ECONNECTION" },
  { how: "the server closing the connection", server: [{ delayMs: 50 }, { send: "421 4.3.2 Shutting down\r\n" }, { close: true }], end: () => undefined, code: "ECONNECTION" },
  { how: "the socket timeout", server: [{ stall: true }], options: { socketTimeout: 200 }, end: () => undefined, code: "ETIMEDOUT" },
];

for (const { how, server: ending, options, end, code } of ENDINGS) {
  for (const [stage, steps] of [
    ["after MAIL FROM", []],
    ["after a recipient", [{ expect: /^RCPT TO:<b@example.test>/ }, { send: "250 2.1.5 Ok\r\n" }]],
  ] as [string, Step[]][]) {
    test(`${how} while a transaction waits ${stage}: the operations queued behind it and its own next steps all fail`, async () => {
      let fault: FaultServer | undefined;
      let conn: SMTPConnection | undefined;
      try {
        fault = await startFaultServer([...greetAndEhlo(["PIPELINING"]), { expect: /^MAIL FROM/ }, { send: "250 2.1.0 Ok\r\n" }, ...steps, ...ending]);
        conn = new SMTPConnection({ host: fault.host, port: fault.port, ...options });
        await conn.connect();
        const tx: MailTransaction = await conn.beginTransaction({ from: "a@example.test" });
        if (steps.length) assert.is((await tx.addRecipient("b@example.test")).status, "accepted");
        const queuedSend = conn.send(ENVELOPE, "Subject: x\r\n\r\nqueued\r\n");
        const queuedReset = conn.reset();
        const sendCallback = nodeCallback("send(cb) queued behind the transaction");
        conn.send(ENVELOPE, "Subject: y\r\n\r\nqueued\r\n", sendCallback);
        const stream = conn.createSendStream(ENVELOPE);
        const streamError = new Promise<unknown>((resolve, reject) => (stream.on("error", resolve), stream.on("finish", () => reject(new Error("the queued stream finished")))));
        stream.end("Subject: z\r\n\r\nqueued\r\n");
        end(conn);

        const closedWith = await settlesWithin(conn.closed, HANG_MS, "conn.closed");
        for (const [what, settled] of [
          ["the queued send()", () => queuedSend],
          ["the queued reset()", () => queuedReset],
          ["the queued send(cb)", () => sendCallback.result],
          ["the queued createSendStream()", () => streamError.then((err) => Promise.reject(err))],
        ] as const) {
          const err = await failure(settled(), what);
          assert.is(err.code, code, `${what}: ${err.message}`);
          if (what.includes("send")) assert.is(err.deliveryState, "not-sent", what);
        }
        sendCallback.assertCalledOnce();
        // The transaction's own next steps fail too, at once.
        assert.is((await failure(tx.addRecipient("c@example.test"), "addRecipient() afterwards")).code, code);
        const body = tx.createSendStream();
        const bodyError = await settlesWithin(new Promise<unknown>((resolve) => (body.destroyed ? resolve(body.errored) : body.on("error", resolve))), HANG_MS, "the transaction's body stream");
        assert.instance(bodyError, SMTPError);
        assert.is((bodyError as SMTPError).deliveryState, "not-sent");
        assert.is((bodyError as SMTPError).command, steps.length ? "RCPT TO" : "MAIL FROM", "the last command the transaction wrote");
        assert.is((bodyError as SMTPError).code, code);
        if (how !== "close()") assert.is(closedWith?.code, code, "conn.closed says why");
        // Nothing but the transaction's MAIL FROM (and RCPT TO) was written: no message went out.
        assert.equal((await fault.connection()).data, []);
      } finally {
        conn?.close();
        await fault?.close();
      }
      fault.assertNoScriptErrors();
    });
  }
}

leakCheckTest(test, unhandled);
test.run();
