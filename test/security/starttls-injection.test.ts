/**
 * STARTTLS response injection ("NO STARTTLS", Poddebniak et al., USENIX Security 2021):
 * a man in the middle appends forged replies to the server's "220 ready". A client that
 * keeps its plaintext buffer reads them as answers to the commands it sends over TLS
 * (a fake EHLO without AUTH, a fake 235, a fake 250 for the message).
 *
 * An honest server sends nothing between its 220 and the TLS handshake, so smtp-wire does
 * more than discard such bytes: it fails with ETLS ("server sent data after STARTTLS
 * ready"), never starts the handshake, and never uses the forged reply for anything, not
 * even lastServerResponse.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError } from "../../lib/index.js";
import { startFaultServer, greetAndEhlo, ehloReply, type Step, type FaultConnection } from "../helpers/fault-server.js";
import { getCerts } from "../helpers/certs.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { nodeCallback } from "../helpers/callbacks.js";
import { connectOutcome } from "../tls/support.js";

const unhandled = trackUnhandled();
const certs = getCerts();
const NAME = "client.example.test";

/** Offers STARTTLS, answers it with `injected` in one write, then would go on over TLS. */
function injecting(injected: string | Buffer): Step[] {
  return [
    ...greetAndEhlo(["PIPELINING", "STARTTLS"]),
    { expect: "STARTTLS" },
    { send: injected },
    { upgradeTls: certs.server },
    { expect: /^EHLO / },
    { send: ehloReply(["AUTH PLAIN"]) },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ];
}

async function attack(script: Step[], options: Partial<ConstructorParameters<typeof SMTPConnection>[0]> = {}) {
  const fault = await startFaultServer(script);
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, name: NAME, tls: { ca: certs.ca }, ...options });
  const err = await connectOutcome(conn);
  const seen = await fault.connection();
  // A refused session is closed by the client; let the server see everything first.
  if (err) await seen.whenClosed;
  return { fault, conn, err, seen };
}

function assertRefused(err: SMTPError | undefined): void {
  assert.instance(err, SMTPError);
  assert.is(err!.code, "ETLS");
  assert.is(err!.command, "STARTTLS");
  assert.is(err!.temporary, false);
  assert.match(err!.message, /sent data after STARTTLS ready/i);
}

/** Everything the client sent: EHLO and STARTTLS in cleartext, and not one byte after (no TLS hello). */
function assertStoppedAtStartTls(seen: FaultConnection): void {
  assert.is(seen.received.toString("latin1"), `EHLO ${NAME}\r\nSTARTTLS\r\n`);
  assert.is(seen.secure, false);
}

test("220 ready and a forged 250 in one write: ETLS, no handshake, the forged reply never used", async () => {
  const { fault, conn, err, seen } = await attack(injecting("220 ready\r\n250 fake\r\n"));
  assertRefused(err);
  assertStoppedAtStartTls(seen);
  assert.not.match(String(conn.lastServerResponse), /fake/, "the forged reply is not even lastServerResponse");
  assert.is(conn.lastServerResponse, "220 ready");
  assert.is(conn.secure, false);
  await fault.close();
});

test("a forged EHLO reply without AUTH behind the 220 is refused the same way", async () => {
  const { fault, conn, err, seen } = await attack(injecting("220 2.0.0 Ready\r\n" + ehloReply(["PIPELINING"], "evil.example.test")));
  assertRefused(err);
  assertStoppedAtStartTls(seen);
  assert.not.ok(conn.extensions.has("AUTH"));
  assert.not.match(String(conn.lastServerResponse), /evil/);
  await fault.close();
});

test("a forged fragment without a line end behind the 220 is caught too", async () => {
  const { fault, err, seen } = await attack(injecting("220 ready\r\n250 fa"));
  assertRefused(err);
  assertStoppedAtStartTls(seen);
  await fault.close();
});

test("a single forged byte behind the 220 is enough to refuse", async () => {
  const { fault, err, seen } = await attack(injecting("220 ready\r\n2"));
  assertRefused(err);
  assertStoppedAtStartTls(seen);
  await fault.close();
});

test("a forged 235 and 250s for commands not yet sent are refused (the classic pipelined injection)", async () => {
  const { fault, err, seen } = await attack(injecting("220 ready\r\n" + ehloReply(["AUTH PLAIN"]) + "235 2.7.0 Authenticated\r\n250 2.1.0 Ok\r\n"));
  assertRefused(err);
  assertStoppedAtStartTls(seen);
  await fault.close();
});

test("with opportunisticTLS the injection is still fatal: an attack is not an upgrade failure", async () => {
  const { fault, err, seen } = await attack(injecting("220 ready\r\n250 fake\r\n"), { opportunisticTLS: true });
  assertRefused(err);
  assertStoppedAtStartTls(seen);
  assert.is(fault.connections.length, 1, "no plaintext retry");
  await fault.close();
});

test("bytes injected in a later packet, after the client started TLS, break the handshake: ETLS, never read as replies", async () => {
  const { fault, conn, err, seen } = await attack([
    ...greetAndEhlo(["STARTTLS"]),
    { expect: "STARTTLS" },
    { send: "220 ready\r\n" },
    { delayMs: 50 },
    { send: "250 fake\r\n" },
    { stall: true },
  ]);
  assert.instance(err, SMTPError);
  assert.is(err!.code, "ETLS");
  assert.is(err!.command, "STARTTLS");
  assert.not.match(String(conn.lastServerResponse), /fake/);
  assert.is(seen.commands.filter((line) => /^EHLO/.test(line)).length, 1, "no second EHLO was sent");
  await fault.close();
});

test("the connect callback gets the injection error exactly once", async () => {
  const fault = await startFaultServer(injecting("220 ready\r\n250 fake\r\n"));
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, name: NAME, tls: { ca: certs.ca } });
  const cb = nodeCallback<void>("connect");
  conn.connect(cb);
  const err = (await cb.result.catch((e: SMTPError) => e)) as SMTPError;
  assertRefused(err);
  await new Promise((resolve) => setTimeout(resolve, 20));
  cb.assertCalledOnce();
  await fault.close();
});

test("an honest server's 220 alone upgrades normally (the check has no false positive)", async () => {
  const { fault, conn, err } = await attack(injecting("220 ready\r\n"));
  assert.is(err, undefined);
  assert.is(conn.secure, true);
  assert.equal(conn.extensions.get("AUTH"), ["PLAIN"]);
  await conn.quit();
  fault.assertNoScriptErrors();
  await fault.close();
});

test("an honest 220 sent one byte at a time upgrades normally", async () => {
  const fault = await startFaultServer([
    ...greetAndEhlo(["STARTTLS"]),
    { expect: "STARTTLS" },
    { sendSlowly: "220 ready\r\n", byteDelayMs: 2 },
    { upgradeTls: certs.server },
    { expect: /^EHLO / },
    { send: ehloReply([]) },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, name: NAME, tls: { ca: certs.ca } });
  await conn.connect();
  assert.is(conn.secure, true);
  await conn.quit();
  fault.assertNoScriptErrors();
  await fault.close();
});

leakCheckTest(test, unhandled);

test.run();
