/**
 * The STARTTLS policy table, one test per row: what the server does (offers STARTTLS,
 * does not, offers it but the upgrade fails: the handshake fails or STARTTLS is refused)
 * by the client's policy (default, requireTLS, ignoreTLS, opportunisticTLS), asserting
 * the outcome and the exact bytes that went over the wire in cleartext.
 *
 *                     default     requireTLS   ignoreTLS   opportunisticTLS
 *   offered           TLS         TLS          plaintext   TLS
 *   not offered       plaintext   ETLS         plaintext   plaintext
 *   handshake fails   ETLS        ETLS         plaintext   plaintext, new connection
 *   STARTTLS refused  ETLS        ETLS         plaintext   plaintext, EHLO again
 *
 * Contradictions resolve as in Nodemailer: requireTLS wins over ignoreTLS and
 * opportunisticTLS.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError, type SMTPConnectionOptions } from "../../lib/index.js";
import { startFaultServer, greetAndEhlo, ehloReply, type Step } from "../helpers/fault-server.js";
import { getCerts } from "../helpers/certs.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { connectOutcome } from "./support.js";

const unhandled = trackUnhandled();
const certs = getCerts();
const NAME = "client.example.test";
const EHLO = `EHLO ${NAME}\r\n`;

type Policy = "default" | "requireTLS" | "ignoreTLS" | "opportunisticTLS";
const POLICY: Record<Policy, SMTPConnectionOptions> = {
  default: {},
  requireTLS: { requireTLS: true },
  ignoreTLS: { ignoreTLS: true },
  opportunisticTLS: { opportunisticTLS: true },
};

const quit: Step[] = [{ expect: "QUIT" }, { send: "221 2.0.0 Bye\r\n" }];
/** Offers STARTTLS; after it, the client must say EHLO over TLS and QUIT. */
const upgradeAndQuit: Step[] = [
  ...greetAndEhlo(["PIPELINING", "STARTTLS"]),
  { expect: "STARTTLS" },
  { send: "220 2.0.0 Ready to start TLS\r\n" },
  { upgradeTls: certs.server },
  { expect: /^EHLO / },
  { send: ehloReply(["PIPELINING", "SIZE 1000"]) },
  ...quit,
];

interface Expectation {
  /** "TLS", "plaintext", or the error code connect() fails with. */
  outcome: "TLS" | "plaintext" | "ETLS";
  /** The exact cleartext of each connection, in order. */
  cleartext: string[];
  /** Extensions the session ends up with, when connected. */
  extensions?: string[];
}

/** Runs one row: connect with `policy` to a server playing `script`, quit if connected, check everything. */
async function row(policy: SMTPConnectionOptions, script: Step[] | ((index: number) => Step[]), expected: Expectation): Promise<SMTPError | undefined> {
  const fault = await startFaultServer(script);
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, name: NAME, tls: { ca: certs.ca }, ...policy });
  const err = await connectOutcome(conn);
  if (expected.outcome === "ETLS") {
    assert.instance(err, SMTPError, "connect() must fail");
    assert.is(err!.code, "ETLS");
  } else {
    assert.is(err, undefined, `connect() must succeed: ${err?.message}`);
    assert.is(conn.secure, expected.outcome === "TLS");
    if (expected.extensions) assert.equal([...conn.extensions.keys()].sort(), expected.extensions);
    await conn.quit();
  }
  conn.close();
  await Promise.all(fault.connections.map((c) => c.whenClosed));
  assert.equal(
    fault.connections.map((c) => c.cleartext.toString()),
    expected.cleartext,
    "cleartext on the wire",
  );
  if (expected.outcome === "TLS") assert.ok(fault.connections.at(-1)!.secure);
  fault.assertNoScriptErrors();
  await fault.close();
  return err;
}

// ---- the server offers STARTTLS ----------------------------------------------------

for (const policy of ["default", "requireTLS", "opportunisticTLS"] as const) {
  test(`offered × ${policy}: upgrades; only EHLO and STARTTLS go in cleartext`, async () => {
    await row(POLICY[policy], upgradeAndQuit, { outcome: "TLS", cleartext: [EHLO + "STARTTLS\r\n"], extensions: ["PIPELINING", "SIZE"] });
  });
}

test("offered × ignoreTLS: never asks for STARTTLS, the session stays in plaintext", async () => {
  await row(POLICY.ignoreTLS, [...greetAndEhlo(["PIPELINING", "STARTTLS"]), ...quit], { outcome: "plaintext", cleartext: [EHLO + "QUIT\r\n"] });
});

// ---- the server does not offer STARTTLS ----------------------------------------------

for (const policy of ["default", "ignoreTLS", "opportunisticTLS"] as const) {
  test(`not offered × ${policy}: goes on in plaintext without asking`, async () => {
    await row(POLICY[policy], [...greetAndEhlo(["PIPELINING"]), ...quit], { outcome: "plaintext", cleartext: [EHLO + "QUIT\r\n"], extensions: ["PIPELINING"] });
  });
}

test("not offered × requireTLS: fails with ETLS before anything but EHLO is sent", async () => {
  const err = await row(POLICY.requireTLS, [...greetAndEhlo(["PIPELINING"]), { stall: true }], { outcome: "ETLS", cleartext: [EHLO] });
  assert.match(err!.message, /requireTLS/);
  assert.is(err!.temporary, false);
});

// ---- the server offers STARTTLS but the TLS handshake fails (self-signed certificate) ---

const handshakeFails: Step[] = [...greetAndEhlo(["PIPELINING", "STARTTLS"]), { expect: "STARTTLS" }, { send: "220 2.0.0 Ready to start TLS\r\n" }, { upgradeTls: certs.selfSigned }];

for (const policy of ["default", "requireTLS"] as const) {
  test(`handshake fails × ${policy}: fails with ETLS, nothing sent after STARTTLS`, async () => {
    const err = await row(POLICY[policy], handshakeFails, { outcome: "ETLS", cleartext: [EHLO + "STARTTLS\r\n"] });
    assert.is(err!.command, "STARTTLS");
    assert.is((err!.cause as { code?: string }).code, "DEPTH_ZERO_SELF_SIGNED_CERT");
  });
}

test("handshake fails × ignoreTLS: never tries, plaintext", async () => {
  await row(POLICY.ignoreTLS, [...greetAndEhlo(["PIPELINING", "STARTTLS"]), ...quit], { outcome: "plaintext", cleartext: [EHLO + "QUIT\r\n"] });
});

test("handshake fails × opportunisticTLS: goes on in plaintext on a new connection, with that session's EHLO and no second STARTTLS", async () => {
  // The failed handshake leaves the first TCP connection unusable.
  const script = (index: number): Step[] => (index === 0 ? handshakeFails : [...greetAndEhlo(["STARTTLS", "SIZE 2000", "8BITMIME"]), ...quit]);
  await row(POLICY.opportunisticTLS, script, {
    outcome: "plaintext",
    cleartext: [EHLO + "STARTTLS\r\n", EHLO + "QUIT\r\n"],
    extensions: ["8BITMIME", "SIZE", "STARTTLS"],
  });
});

// ---- the server offers STARTTLS but refuses it ------------------------------------------

const refused: Step[] = [...greetAndEhlo(["PIPELINING", "STARTTLS"]), { expect: "STARTTLS" }, { send: "454 4.7.0 TLS not available\r\n" }];

for (const policy of ["default", "requireTLS"] as const) {
  test(`STARTTLS refused × ${policy}: fails with ETLS carrying the 454`, async () => {
    const err = await row(POLICY[policy], [...refused, { stall: true }], { outcome: "ETLS", cleartext: [EHLO + "STARTTLS\r\n"] });
    assert.is(err!.responseCode, 454);
  });
}

test("STARTTLS refused × ignoreTLS: never asks, plaintext", async () => {
  await row(POLICY.ignoreTLS, [...greetAndEhlo(["PIPELINING", "STARTTLS"]), ...quit], { outcome: "plaintext", cleartext: [EHLO + "QUIT\r\n"] });
});

test("STARTTLS refused × opportunisticTLS: says EHLO again and goes on in plaintext with the new capabilities", async () => {
  await row(POLICY.opportunisticTLS, [...refused, { expect: /^EHLO / }, { send: ehloReply(["SIZE 3000"]) }, ...quit], {
    outcome: "plaintext",
    cleartext: [EHLO + "STARTTLS\r\n" + EHLO + "QUIT\r\n"],
    extensions: ["SIZE"],
  });
});

// ---- contradictions: requireTLS wins ----------------------------------------------------

test("requireTLS with ignoreTLS: requireTLS wins and upgrades", async () => {
  await row({ requireTLS: true, ignoreTLS: true }, upgradeAndQuit, { outcome: "TLS", cleartext: [EHLO + "STARTTLS\r\n"] });
});

test("requireTLS with ignoreTLS against a server without STARTTLS: ETLS", async () => {
  await row({ requireTLS: true, ignoreTLS: true }, [...greetAndEhlo([]), { stall: true }], { outcome: "ETLS", cleartext: [EHLO] });
});

test("requireTLS with opportunisticTLS: a failed handshake is ETLS, never a plaintext retry", async () => {
  await row({ requireTLS: true, opportunisticTLS: true }, handshakeFails, { outcome: "ETLS", cleartext: [EHLO + "STARTTLS\r\n"] });
});

test("requireTLS with a server that refuses EHLO (HELO only) fails with ETLS", async () => {
  await row(
    POLICY.requireTLS,
    [{ send: "220 old.example.test SMTP\r\n" }, { expect: /^EHLO / }, { send: "502 5.5.2 Command not implemented\r\n" }, { expect: /^HELO / }, { send: "250 old.example.test\r\n" }, { stall: true }],
    { outcome: "ETLS", cleartext: [EHLO + `HELO ${NAME}\r\n`] },
  );
});

test("opportunisticTLS does not fall back on a `connection` socket it cannot reopen: ETLS", async () => {
  const net = await import("node:net");
  const fault = await startFaultServer(handshakeFails);
  const socket = net.connect(fault.port, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, name: NAME, connection: socket, opportunisticTLS: true, tls: { ca: certs.ca } });
  const err = (await conn.connect().catch((e: SMTPError) => e)) as SMTPError;
  assert.is(err.code, "ETLS");
  assert.is(fault.connections.length, 1);
  await fault.close();
});

leakCheckTest(test, unhandled);

test.run();
