/**
 * LMTP's end of data gets one reply per accepted recipient (RFC 2033 §4.2), so a fault
 * between those replies leaves the message delivered to some recipients and not to
 * others. What the caller gets then is pinned here (the README's Failure behaviour section says it):
 * the send fails like any fault after the terminator (deliveryState "unknown"), and its
 * `recipients` say who already has the message: the first recipient "accepted", the
 * second "deferred" with the failure.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, type SMTPError } from "../../lib/index.js";
import { acceptLmtpEnvelope, startFaultServer, type Step } from "../helpers/fault-server.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";
import { HANG_MS, assertNothingOpen, assertSMTPError } from "./harness.js";

const unhandled = trackUnhandled();
const env = { from: "sender@example.test", to: ["first@example.test", "second@example.test"] };

function lmtp(afterFirstReply: Step[]): Step[] {
  return [...acceptLmtpEnvelope(2), { expectData: true }, { send: "250 2.0.0 <first@example.test> Saved\r\n" }, ...afterFirstReply];
}

for (const [fault, steps, code] of [
  ["closes", [{ close: true }], "ECONNECTION"],
  ["stalls", [{ stall: true }], "ETIMEDOUT"],
  ["sends garbage", [{ send: "not a reply\r\n" }, { stall: true }], "EPROTOCOL"],
] as const) {
  test(`LMTP: a server that ${fault} after the first recipient's final reply fails the send with ${code}`, async () => {
    const server = await startFaultServer(lmtp([...steps]));
    const conn = new SMTPConnection({ host: server.host, port: server.port, lmtp: true, socketTimeout: 300 });
    await conn.connect();
    const err = await settlesWithin(conn.send(env, "Subject: x\r\n\r\nbody\r\n").then(() => undefined, (e: SMTPError) => e), HANG_MS, "the send");
    assertSMTPError(err, "LMTP send");
    assert.is(err.code, code);
    assert.is(err.command, "DATA");
    assert.is(err.temporary, true);
    assert.is(err.deliveryState, "unknown");
    assert.equal(
      err.recipients!.map((r) => [r.address, r.status]),
      [
        ["first@example.test", "accepted"],
        ["second@example.test", "deferred"],
      ],
    );
    const c = await server.connection();
    assert.ok(c.data[0]?.toString().endsWith("\r\n.\r\n"), "the whole message went out: the first recipient has it");
    await server.close();
    await assertNothingOpen(`LMTP ${fault}`);
  });
}

test("leaves no socket, timer or rejection behind", async () => {
  unhandled.assertNone();
  await assertNoLeaks();
});

test.run();
