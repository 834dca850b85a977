/**
 * SPEC §6: a 421 at any point is ECONNECTION with responseCode 421, and every send error
 * carries a deliveryState: "rejected" when the message was refused at its final reply
 * (`temporary` says whether a retry may succeed), "unknown" only when no final reply came.
 * A 421 where the final reply belongs is a reply: the server, shutting down, answers the
 * end of data with it instead of taking the message (RFC 5321 §3.8), so a retry layer may
 * send it again without risking a duplicate. Checked from outside, over DATA, BDAT and
 * LMTP, with the 421 as a whole line and as a last line cut short by the close.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError, type SMTPConnectionOptions } from "smtp-wire";
import { acceptEnvelope, acceptLmtpEnvelope, greetAndEhlo, startFaultServer, type Step } from "../helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const MESSAGE = "Subject: x\r\n\r\nbody\r\n";

/** Plays `script`, sends one message to `to` with `options`, and returns the send's error. */
async function sendFailure(script: Step[], to: string[], options: SMTPConnectionOptions = {}): Promise<SMTPError> {
  const server = await startFaultServer(script);
  const conn = new SMTPConnection({ host: server.host, port: server.port, ...options });
  try {
    await conn.connect();
    const err = await conn.send({ from: "a@example.test", to }, MESSAGE).then(
      () => assert.unreachable("the message was accepted"),
      (e: unknown) => e,
    );
    assert.instance(err, SMTPError);
    return err as SMTPError;
  } finally {
    conn.close();
    await server.close();
    server.assertNoScriptErrors();
  }
}

/** What every refusal by 421 at the final reply must say. */
function assertClosingRefusal(err: SMTPError, what: string): void {
  assert.is(err.code, "ECONNECTION", what);
  assert.is(err.responseCode, 421, what);
  assert.is(err.enhancedCode, "4.3.2", what);
  assert.is(err.temporary, true, `${what}: a 421 asks for a retry`);
  assert.is(err.deliveryState, "rejected", `${what}: the server answered the end of data, so it does not have the message`);
}

for (const [shape, closing] of [
  ["a 421 line, then the close", [{ send: "421 4.3.2 Shutting down\r\n" }, { close: true }]],
  ["a 421 without its line end, then the close", [{ send: "421 4.3.2 Shutting down" }, { close: true }]],
] as [string, Step[]][]) {
  test(`DATA: ${shape} in place of the final reply is a rejection (temporary), not an unknown outcome`, async () => {
    const err = await sendFailure([...greetAndEhlo(), ...acceptEnvelope(1), { expectData: true }, ...closing], ["b@example.test"]);
    assertClosingRefusal(err, shape);
    assert.equal(
      err.recipients?.map((r) => [r.address, r.status, r.responseCode]),
      [["b@example.test", "deferred", 421]],
    );
  });
}

test("BDAT: a 421 answering the last chunk is a rejection (temporary)", async () => {
  const err = await sendFailure(
    [
      ...greetAndEhlo(["PIPELINING", "CHUNKING"]),
      { expect: /^MAIL FROM/ },
      { expect: /^RCPT TO/ },
      { expect: `BDAT ${Buffer.byteLength(MESSAGE)} LAST` },
      { expectBytes: Buffer.byteLength(MESSAGE) },
      { send: "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n421 4.3.2 Shutting down\r\n" },
      { close: true },
    ],
    ["b@example.test"],
    { chunking: true },
  );
  assertClosingRefusal(err, "BDAT LAST");
});

test("LMTP: a 421 as the first final reply is a rejection for every recipient", async () => {
  const err = await sendFailure([...acceptLmtpEnvelope(2), { expectData: true }, { send: "421 4.3.2 Shutting down\r\n" }, { close: true }], ["b@example.test", "c@example.test"], { lmtp: true });
  assertClosingRefusal(err, "LMTP");
  assert.equal(
    err.recipients?.map((r) => r.status),
    ["deferred", "deferred"],
  );
});

test("LMTP: a 421 after a recipient's 250 stays unknown: that recipient has the message, a retry would duplicate it", async () => {
  const err = await sendFailure(
    [...acceptLmtpEnvelope(2), { expectData: true }, { send: "250 2.0.0 Saved\r\n421 4.3.2 Shutting down\r\n" }, { close: true }],
    ["b@example.test", "c@example.test"],
    { lmtp: true },
  );
  assert.is(err.responseCode, 421);
  assert.is(err.deliveryState, "unknown");
  assert.equal(
    err.recipients?.map((r) => r.status),
    ["accepted", "deferred"],
  );
});

test("a connection closed after the end of data without any reply stays unknown (the server may have it)", async () => {
  const err = await sendFailure([...greetAndEhlo(), ...acceptEnvelope(1), { expectData: true }, { close: true }], ["b@example.test"]);
  assert.is(err.code, "ECONNECTION");
  assert.is(err.responseCode, undefined);
  assert.is(err.deliveryState, "unknown");
});

leakCheckTest(test, unhandled);
test.run();
