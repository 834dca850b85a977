/**
 * Well-formed replies with a code that makes no sense for the command (a "wrong code"):
 * each fails the operation with the error of that step, carrying the reply, and as
 * `temporary` (a 2xx or 3xx that fails a command is a server out of step, not a refusal,
 * so a relay retries rather than bounces). Out-of-range codes (1xx, 6xx) are EPROTOCOL in
 * the phase × fault table.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, type SMTPError } from "../../lib/index.js";
import { acceptEnvelope, greetAndEhlo, startFaultServer, type Step } from "../helpers/fault-server.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";
import { ENVELOPE, HANG_MS, MESSAGE, assertNothingOpen, assertSMTPError } from "./harness.js";

const unhandled = trackUnhandled();

interface Case {
  what: string;
  steps: Step[];
  /** The operation that meets the wrong code (after connect(), unless `atConnect`). */
  atConnect?: boolean;
  run?: (conn: SMTPConnection) => Promise<unknown>;
  code: string;
  command: string;
  responseCode: number;
  /** For a send: whether the server may have the message (none for other operations). */
  deliveryState?: "not-sent" | "unknown";
}

const CASES: Case[] = [
  { what: "a 250 greeting", steps: [{ send: "250 hello\r\n" }], atConnect: true, code: "ECONNECTION", command: "CONN", responseCode: 250 },
  { what: "a 354 to HELO after EHLO was refused", steps: [{ send: "220 hi\r\n" }, { expect: /^EHLO/ }, { send: "502 no\r\n" }, { expect: /^HELO/ }, { send: "354 what\r\n" }], atConnect: true, code: "EPROTOCOL", command: "HELO", responseCode: 354 },
  { what: "a 220 to STARTTLS's neighbour, AUTH", steps: [...greetAndEhlo(["AUTH PLAIN"]), { expect: /^AUTH/ }, { send: "220 hi again\r\n" }], run: (conn) => conn.login({ user: "u", pass: "p" }), code: "EAUTH", command: "AUTH PLAIN", responseCode: 220 },
  { what: "a 354 to MAIL FROM", steps: [...greetAndEhlo(), { expect: /^MAIL/ }, { send: "354 go\r\n" }], code: "EENVELOPE", command: "MAIL FROM", responseCode: 354, deliveryState: "not-sent" },
  { what: "a 334 to RCPT TO", steps: [...greetAndEhlo(), { expect: /^MAIL/ }, { send: "250 ok\r\n" }, { expect: /^RCPT/ }, { send: "334 what\r\n" }], code: "EENVELOPE", command: "RCPT TO", responseCode: 334, deliveryState: "not-sent" },
  { what: "a 250 to DATA instead of 354", steps: [...greetAndEhlo(), ...acceptEnvelope(1).slice(0, -1), { send: "250 ok\r\n" }], code: "EENVELOPE", command: "DATA", responseCode: 250, deliveryState: "not-sent" },
  { what: "a 354 as the final reply", steps: [...greetAndEhlo(), ...acceptEnvelope(1), { expectData: true }, { send: "354 again\r\n" }], code: "EMESSAGE", command: "DATA", responseCode: 354, deliveryState: "unknown" },
  { what: "a 354 to RSET", steps: [...greetAndEhlo(), { expect: "RSET" }, { send: "354 go\r\n" }], run: (conn) => conn.reset(), code: "EPROTOCOL", command: "RSET", responseCode: 354 },
];

for (const c of CASES) {
  test(`${c.what}: ${c.code} naming ${c.command}, with the reply, temporary`, async () => {
    const server = await startFaultServer([...c.steps, { stall: true }]);
    const conn = new SMTPConnection({ host: server.host, port: server.port, socketTimeout: 2000 });
    try {
      const failing = c.atConnect ? conn.connect() : conn.connect().then(() => (c.run ?? ((cn) => cn.send(ENVELOPE, MESSAGE)))(conn));
      const err = await settlesWithin(failing.then(() => undefined, (e: SMTPError) => e), HANG_MS, c.what);
      assertSMTPError(err, c.what);
      assert.is(err.code, c.code, err.message);
      assert.is(err.command, c.command);
      assert.is(err.responseCode, c.responseCode);
      assert.is(err.temporary, true);
      // A reply that is no verdict after the whole message went out leaves it "unknown".
      assert.is(err.deliveryState, c.deliveryState);
      server.assertNoScriptErrors();
    } finally {
      conn.close();
      await server.close();
    }
    await assertNothingOpen(c.what);
  });
}

test("leaves no socket, timer or rejection behind", async () => {
  unhandled.assertNone();
  await assertNoLeaks();
});

test.run();
