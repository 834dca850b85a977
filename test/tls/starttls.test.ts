/**
 * STARTTLS (RFC 3207) against smtp-server and the fault server: the upgrade, the EHLO
 * asked again with only the new capabilities used, certificate verification after the
 * upgrade (ETLS, Node's error in `cause`, nothing more sent), SNI, LMTP, and servers that
 * fail in the middle of it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { startFaultServer, greetAndEhlo, ehloReply, type Step } from "../helpers/fault-server.js";
import { getCerts, type KeyPair } from "../helpers/certs.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { CERT_REFUSALS, connectError, sniSeen } from "./support.js";

const unhandled = trackUnhandled();
const certs = getCerts();
const env = { from: "sender@example.test", to: ["rcpt@example.test"] };

/** Greeting, EHLO offering STARTTLS, the upgrade with `pair`, then `after` over TLS. */
function starttlsScript(pair: KeyPair, after: Step[], plainExtensions = ["PIPELINING", "STARTTLS"]): Step[] {
  return [...greetAndEhlo(plainExtensions), { expect: "STARTTLS" }, { send: "220 2.0.0 Ready to start TLS\r\n" }, { upgradeTls: pair }, ...after];
}

const quit: Step[] = [{ expect: "QUIT" }, { send: "221 bye\r\n" }];

test("upgrades with STARTTLS when smtp-server offers it, says EHLO again and sends over TLS", async () => {
  let secureAtMail: boolean | undefined;
  const server = await startServer({
    starttls: true,
    onMailFrom(_address, session, callback) {
      secureAtMail = session.secure;
      callback();
    },
  });
  const conn = new SMTPConnection({ host: "localhost", port: server.port, tls: { ca: certs.ca } });
  await conn.connect();
  assert.is(conn.secure, true);
  await conn.send(env, "Subject: starttls\r\n\r\nx\r\n");
  await conn.quit();
  assert.equal(
    server.commands.map((line) => line.split(" ")[0]),
    ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"],
  );
  assert.is(secureAtMail, true);
  assert.is(server.messages.length, 1);
  await server.close();
});

test("uses only the capabilities of the EHLO said over TLS (smtp-server offers AUTH only then)", async () => {
  const server = await startServer({ starttls: true, authMethods: ["PLAIN", "LOGIN"] });
  const conn = new SMTPConnection({ host: "localhost", port: server.port, tls: { ca: certs.ca } });
  await conn.connect();
  assert.is(conn.allowsAuth, true);
  assert.equal(conn.extensions.get("AUTH"), ["PLAIN", "LOGIN"]);
  assert.not.ok(conn.extensions.has("STARTTLS"), "smtp-server does not offer STARTTLS twice");
  await conn.quit();
  await server.close();
});

test("forgets every capability learned in plaintext: extensions are exactly the second EHLO's", async () => {
  const fault = await startFaultServer(
    starttlsScript(certs.server, [{ expect: /^EHLO / }, { send: ehloReply(["SIZE 1000", "AUTH PLAIN"]) }, ...quit], ["PIPELINING", "X-PLAINTEXT-ONLY", "AUTH LOGIN", "STARTTLS"]),
  );
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, tls: { ca: certs.ca } });
  await conn.connect();
  assert.equal([...conn.extensions.keys()].sort(), ["AUTH", "SIZE"]);
  assert.equal(conn.extensions.get("AUTH"), ["PLAIN"]);
  assert.not.ok(conn.extensions.has("PIPELINING"), "PIPELINING was only offered in plaintext");
  await conn.quit();
  const seen = await fault.connection();
  await seen.done;
  assert.equal(seen.cleartext.toString(), `EHLO ${conn.name}\r\nSTARTTLS\r\n`);
  fault.assertNoScriptErrors();
  await fault.close();
});

test("does not ask for STARTTLS twice when the EHLO over TLS still offers it", async () => {
  const fault = await startFaultServer(starttlsScript(certs.server, [{ expect: /^EHLO / }, { send: ehloReply(["STARTTLS"]) }, ...quit]));
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, tls: { ca: certs.ca }, requireTLS: true });
  await conn.connect();
  await conn.quit();
  const seen = await fault.connection();
  await seen.done;
  assert.equal(seen.commands, [`EHLO ${conn.name}`, "STARTTLS", `EHLO ${conn.name}`, "QUIT"]);
  fault.assertNoScriptErrors();
  await fault.close();
});

test("LMTP says LHLO again after STARTTLS", async () => {
  const fault = await startFaultServer([
    { send: "220 lmtp.example.test LMTP\r\n" },
    { expect: /^LHLO / },
    { send: ehloReply(["STARTTLS"]) },
    { expect: "STARTTLS" },
    { send: "220 go ahead\r\n" },
    { upgradeTls: certs.server },
    { expect: /^LHLO / },
    { send: ehloReply(["PIPELINING"]) },
    ...quit,
  ]);
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, lmtp: true, tls: { ca: certs.ca } });
  await conn.connect();
  assert.is(conn.secure, true);
  await conn.quit();
  const seen = await fault.connection();
  await seen.done;
  assert.equal(seen.commands, [`LHLO ${conn.name}`, "STARTTLS", `LHLO ${conn.name}`, "QUIT"]);
  await fault.close();
});

test("sends the host name as SNI after STARTTLS, never an IP literal, and servername when given", async () => {
  const cases: [Partial<{ host: string; servername: string }>, string | false][] = [
    [{ host: "localhost" }, "localhost"],
    [{ host: "127.0.0.1" }, false],
    [{ host: "127.0.0.1", servername: "mx.example.test" }, "mx.example.test"],
  ];
  for (const [options, expected] of cases) {
    assert.is(await sniSeen(starttlsScript(certs.server, [{ expect: /^EHLO / }, { send: ehloReply() }, ...quit]), options), expected, JSON.stringify(options));
  }
});

for (const [what, pair, reason] of CERT_REFUSALS) {
  test(`fails with ETLS on ${what} after STARTTLS, ${reason} in cause, and sends nothing more`, async () => {
    const fault = await startFaultServer(starttlsScript(certs[pair] as KeyPair, [{ expect: /^EHLO / }, { send: ehloReply(["AUTH PLAIN"]) }]));
    const conn = new SMTPConnection({ host: "localhost", port: fault.port, tls: { ca: certs.ca } });
    const err = await connectError(conn);
    assert.is(err.code, "ETLS");
    assert.is(err.command, "STARTTLS");
    assert.is(err.temporary, false);
    assert.is((err.cause as { code?: string }).code, reason);
    assert.is(conn.secure, false);
    const seen = await fault.connection();
    await seen.whenClosed;
    assert.equal(seen.commands, [`EHLO ${conn.name}`, "STARTTLS"]);
    assert.equal(seen.cleartext.toString(), `EHLO ${conn.name}\r\nSTARTTLS\r\n`, "nothing after STARTTLS went in cleartext");
    assert.is(seen.secure, false, "no encrypted session was ever used");
    await fault.close();
  });
}

test("smtp-server with a certificate for another host: ETLS after STARTTLS, no AUTH, no MAIL", async () => {
  const server = await startServer({ starttls: certs.wrongHost, users: { me: "secret" } });
  const conn = new SMTPConnection({ host: "localhost", port: server.port, tls: { ca: certs.ca } });
  const err = await connectError(conn);
  assert.is(err.code, "ETLS");
  assert.is((err.cause as { code?: string }).code, "ERR_TLS_CERT_ALTNAME_INVALID");
  assert.equal(server.commands.map((line) => line.split(" ")[0]), ["EHLO", "STARTTLS"]);
  await server.close();
});

test("a refused STARTTLS fails with ETLS carrying the server's reply", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["STARTTLS"]), { expect: "STARTTLS" }, { send: "454 4.7.0 TLS not available due to local problem\r\n" }, { stall: true }]);
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, tls: { ca: certs.ca } });
  const err = await connectError(conn);
  assert.is(err.code, "ETLS");
  assert.is(err.command, "STARTTLS");
  assert.is(err.responseCode, 454);
  assert.is(err.enhancedCode, "4.7.0");
  assert.is(err.temporary, true);
  assert.match(err.response ?? "", /TLS not available/);
  await fault.close();
});

test("a 421 in answer to STARTTLS is ECONNECTION with responseCode 421", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["STARTTLS"]), { expect: "STARTTLS" }, { send: "421 4.3.2 Shutting down\r\n" }, { stall: true }]);
  const err = await connectError(new SMTPConnection({ host: "localhost", port: fault.port }));
  assert.is(err.code, "ECONNECTION");
  assert.is(err.responseCode, 421);
  await fault.close();
});

test("a server that closes during the TLS handshake fails with ETLS, not a hang", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["STARTTLS"]), { expect: "STARTTLS" }, { send: "220 go ahead\r\n" }, { delayMs: 20 }, { close: true }]);
  const err = await connectError(new SMTPConnection({ host: "localhost", port: fault.port, tls: { ca: certs.ca } }));
  assert.is(err.code, "ETLS");
  assert.is(err.command, "STARTTLS");
  await fault.close();
});

test("a server that answers the TLS hello with SMTP text fails with ETLS", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["STARTTLS"]), { expect: "STARTTLS" }, { send: "220 go ahead\r\n" }, { delayMs: 50 }, { send: "500 what?\r\n" }, { stall: true }]);
  const err = await connectError(new SMTPConnection({ host: "localhost", port: fault.port, tls: { ca: certs.ca } }));
  assert.is(err.code, "ETLS");
  assert.not.match(err.message, /deps\/openssl/);
  await fault.close();
});

test("a server that never starts the TLS handshake fails at connectionTimeout with ETIMEDOUT", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["STARTTLS"]), { expect: "STARTTLS" }, { send: "220 go ahead\r\n" }, { stall: true }]);
  const err = await connectError(new SMTPConnection({ host: "localhost", port: fault.port, tls: { ca: certs.ca }, connectionTimeout: 300 }));
  assert.is(err.code, "ETIMEDOUT");
  assert.match(err.message, /TLS handshake timeout/);
  await fault.close();
});

test("close() during the TLS handshake fails connect() with ECONNECTION and leaves nothing open", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["STARTTLS"]), { expect: "STARTTLS" }, { send: "220 go ahead\r\n" }, { stall: true }]);
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, tls: { ca: certs.ca } });
  const pending = conn.connect().then(
    () => undefined,
    (e: SMTPError) => e,
  );
  const seen = await fault.connection();
  while (!seen.received.includes("STARTTLS")) await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, 20));
  conn.close();
  const err = await settlesWithin(pending, 5000, "connect()");
  assert.is(err?.code, "ECONNECTION");
  await fault.close();
});

leakCheckTest(test, unhandled);

test.run();
