/**
 * Issue 11, items 1, 9 and 13: the envelope as Nodemailer's users write it, sent by
 * Nodemailer and by smtp-wire to the same smtp-server, compared by what each reports and
 * what the server received.
 *
 * 1. `requireTLSExtensionEnabled` (Nodemailer's name for RFC 8689 REQUIRETLS, passed down
 *    by its transports) is honoured like `requireTLS`: REQUIRETLS on MAIL FROM over TLS,
 *    EREQUIRETLS before anything is written otherwise.
 * 9. `size` as a string of digits is accepted; anything else that is not a non-negative
 *    integer is still refused (Nodemailer drops it silently: a deliberate difference).
 * 13. No envelope value can add a parameter to MAIL or RCPT: ORCPT's address type is
 *    xtext-encoded like the rest.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { startServer, type TestServer } from "../helpers/server.js";
import { getCerts } from "../helpers/certs.js";
import { errorFacts, sideBySide } from "../helpers/nodemailer.js";
import { prepareEnvelope } from "../../lib/envelope.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";
import { seed } from "../helpers/random.js";

const unhandled = trackUnhandled();
const MESSAGE = "Subject: compat\r\n\r\nHello\r\n";

/** Both clients send `envelope` to `server`; returns what each reported and what the server got from each. */
async function sendBoth(server: TestServer, envelope: Record<string, unknown>, tls = false) {
  const before = server.messages.length;
  const commandsBefore = server.commands.length;
  const options = { host: "localhost", port: server.port, ...(tls ? { tls: { ca: getCerts().ca } } : { ignoreTLS: true }) };
  let split = 0;
  const result = await sideBySide(options, async (driver) => {
    await driver.connect();
    try {
      // Each its own copy: Nodemailer rewrites the envelope it is given (dsn, to).
      return await driver.send(structuredClone(envelope), MESSAGE);
    } finally {
      if (driver.client === "nodemailer") split = server.commands.length;
    }
  });
  // Let the server record the second session's last command before it is read.
  await new Promise((resolve) => setImmediate(resolve));
  const sent = server.messages.slice(before);
  return {
    ...result,
    nodemailerCommands: server.commands.slice(commandsBefore, split).filter((c) => /^(MAIL|RCPT)/.test(c)),
    ourCommands: server.commands.slice(split).filter((c) => /^(MAIL|RCPT)/.test(c)),
    messages: sent,
  };
}

test("requireTLSExtensionEnabled over STARTTLS: both send MAIL FROM with REQUIRETLS, and the server sees it", async () => {
  const server = await startServer({ starttls: true, hideREQUIRETLS: false });
  try {
    const run = await sendBoth(server, { from: "a@example.test", to: ["b@example.test"], requireTLSExtensionEnabled: true }, true);
    assert.is(run.nodemailer.error, undefined);
    assert.is(run.ours.error, undefined);
    assert.equal(run.ourCommands, run.nodemailerCommands);
    assert.match(run.ourCommands[0]!, / REQUIRETLS$/);
    assert.is(run.messages.length, 2);
    for (const message of run.messages) assert.is(message.mailParams.REQUIRETLS, true);
  } finally {
    await server.close();
  }
});

test("requireTLSExtensionEnabled in cleartext: both fail with EREQUIRETLS on MAIL FROM and nothing reaches the server", async () => {
  const server = await startServer({ hideREQUIRETLS: false });
  try {
    const run = await sendBoth(server, { from: "a@example.test", to: ["b@example.test"], requireTLSExtensionEnabled: true });
    assert.equal(errorFacts(run.ours.error), errorFacts(run.nodemailer.error));
    assert.is(run.ours.error?.code, "EREQUIRETLS");
    assert.is(run.ours.error?.command, "MAIL FROM");
    assert.equal(run.ourCommands, []);
    assert.equal(run.nodemailerCommands, []);
    assert.is(run.messages.length, 0);
  } finally {
    await server.close();
  }
});

test("requireTLSExtensionEnabled over TLS to a server without REQUIRETLS: both fail with EREQUIRETLS", async () => {
  const server = await startServer({ starttls: true, hideREQUIRETLS: true });
  try {
    const run = await sendBoth(server, { from: "a@example.test", to: ["b@example.test"], requireTLSExtensionEnabled: true }, true);
    assert.is(run.ours.error?.code, "EREQUIRETLS");
    assert.is(run.nodemailer.error?.code, "EREQUIRETLS");
    assert.is(run.messages.length, 0);
  } finally {
    await server.close();
  }
});

test("an ORCPT address type with a space and a KEY=VALUE adds no parameter: both send the same xtext-encoded ORCPT", async () => {
  const server = await startServer({ hideDSN: false });
  try {
    const run = await sendBoth(server, { from: "a@example.test", to: ["b@example.test"], dsn: { orcpt: "rfc822 NOTIFY=NEVER;x@example.test", envid: "id 1 RET=FULL" } });
    assert.equal(run.ourCommands, run.nodemailerCommands);
    assert.equal(run.ourCommands, ["MAIL FROM:<a@example.test> ENVID=id+201+20RET+3DFULL", "RCPT TO:<b@example.test> ORCPT=rfc822+20NOTIFY+3DNEVER;x@example.test"]);
    // The encoded address type is no atom, so the server refuses the recipient, alike for both.
    assert.equal(errorFacts(run.ours.error), errorFacts(run.nodemailer.error));
    assert.is(run.ours.error?.code, "EENVELOPE");
    assert.is(run.ours.error?.responseCode, 501);
    assert.is(run.messages.length, 0);
  } finally {
    await server.close();
  }
});

test("a well-formed ORCPT goes through both clients alike, its address xtext-encoded", async () => {
  const server = await startServer({ hideDSN: false });
  try {
    const run = await sendBoth(server, { from: "a@example.test", to: ["b@example.test"], dsn: { orcpt: "rfc822;x y=z@example.test", notify: "SUCCESS" } });
    assert.is(run.ours.error, undefined);
    assert.is(run.nodemailer.error, undefined);
    assert.equal(run.ourCommands, run.nodemailerCommands);
    assert.is(run.ourCommands[1], "RCPT TO:<b@example.test> NOTIFY=SUCCESS ORCPT=rfc822;x+20y+3Dz@example.test");
    assert.equal(run.messages[0]!.rcptParams, run.messages[1]!.rcptParams);
    assert.equal(Object.keys(run.messages[1]!.rcptParams[0]!).sort(), ["NOTIFY", "ORCPT"]);
  } finally {
    await server.close();
  }
});

test("an envelope Nodemailer has rewritten (DSN fields left null) is sent by us unchanged in meaning", async () => {
  const server = await startServer({ hideDSN: false });
  try {
    const envelope = { from: "a@example.test", to: ["b@example.test"], dsn: { notify: "FAILURE", orcpt: "b@example.test" } };
    const run = await sideBySide({ host: "localhost", port: server.port, ignoreTLS: true }, async (driver) => {
      await driver.connect();
      return driver.send(envelope, MESSAGE);
    });
    assert.is((envelope.dsn as Record<string, unknown>).ret, null, "Nodemailer left ret: null in the envelope");
    assert.is(run.nodemailer.error, undefined);
    assert.is(run.ours.error, undefined);
    assert.equal(server.messages[1]!.rcptParams, server.messages[0]!.rcptParams);
  } finally {
    await server.close();
  }
});

test("no DSN value, address or size can add a MAIL or RCPT parameter (fast-check)", () => {
  const extensions = new Map([["DSN", []], ["SIZE", ["0"]], ["8BITMIME", []], ["SMTPUTF8", []]]);
  const value = fc.string({ unit: fc.constantFrom("a", " ", "=", ";", "+", "\t", "x", "é", "NOTIFY", "ORCPT", "SIZE") });
  fc.assert(
    fc.property(value, value, value, (envid, orcpt, address) => {
      let prepared;
      try {
        prepared = prepareEnvelope({ from: `s${address}@example.test`, to: [`r@example.test`], dsn: { envid: envid || "e", orcpt: orcpt || "o" } }, { extensions, secure: false });
      } catch (err) {
        // Refused input is fine: nothing is written.
        assert.is((err as { code?: string }).code, "EENVELOPE");
        return;
      }
      const params = (line: string) => line.slice(line.indexOf(">") + 1).trim().split(" ");
      assert.equal(params(prepared.mailLine).map((p) => p.split("=")[0]), ["SMTPUTF8", "ENVID"].filter((k) => k !== "SMTPUTF8" || /[^\x00-\x7f]/.test(address)));
      assert.equal(params(prepared.rcptLines[0]!).map((p) => p.split("=")[0]), ["ORCPT"]);
    }),
    { seed, numRuns: 300 },
  );
});

test("size as a string of digits: both announce SIZE=1024 and the server accepts it", async () => {
  const server = await startServer({ size: 4096 });
  try {
    const run = await sendBoth(server, { from: "a@example.test", to: ["b@example.test"], size: "1024" });
    assert.is(run.ours.error, undefined);
    assert.is(run.nodemailer.error, undefined);
    assert.equal(run.ourCommands, run.nodemailerCommands);
    assert.is(run.ourCommands[0], "MAIL FROM:<a@example.test> SIZE=1024");
  } finally {
    await server.close();
  }
});

test("size as a digit string over the server's limit: both refuse with EMESSAGE before MAIL", async () => {
  const server = await startServer({ size: 100 });
  try {
    const run = await sendBoth(server, { from: "a@example.test", to: ["b@example.test"], size: "1024" });
    assert.is(run.ours.error?.code, "EMESSAGE");
    assert.is(run.nodemailer.error?.code, "EMESSAGE");
    assert.equal(run.ourCommands, []);
    assert.equal(run.nodemailerCommands, []);
  } finally {
    await server.close();
  }
});

test("a size that is not a non-negative integer is refused with EENVELOPE before anything is written (Nodemailer sends it on)", async () => {
  const server = await startServer({ size: 4096 });
  try {
    for (const size of ["12abc", "-1", "1.5", " 12", "0x10", -3]) {
      const run = await sendBoth(server, { from: "a@example.test", to: ["b@example.test"], size });
      assert.is(run.ours.error?.code, "EENVELOPE", String(size));
      assert.is(run.ours.error?.command, "API");
      assert.equal(run.ourCommands, [], "nothing written");
      // The deliberate difference (README): Nodemailer writes MAIL FROM with what Number()
      // makes of it (nothing, or SIZE=1.5, which the server refuses).
      assert.is(run.nodemailerCommands.length > 0, true);
    }
  } finally {
    await server.close();
  }
});

test("leaves no socket, timer, rejection or double callback behind", () => assertNoLeaks());
void unhandled;
test.run();
