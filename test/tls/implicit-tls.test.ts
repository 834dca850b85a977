/**
 * Implicit TLS (`secure: true`, port 465 style) against smtp-server and the fault server,
 * with certificates made at test time: the CA-signed certificate verifies, every other
 * one fails with ETLS and Node's error (OpenSSL's reason) kept in `cause`. Also the
 * `servername`, `tls`, `socket`, `connection` and `secured` options.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import net from "node:net";
import tls from "node:tls";
import { SMTPConnection, SMTPError } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { startFaultServer, ehloReply, type Step } from "../helpers/fault-server.js";
import { getCerts, type KeyPair } from "../helpers/certs.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { nodeCallback } from "../helpers/callbacks.js";
import { CERT_REFUSALS, connectError, sniSeen } from "./support.js";

const unhandled = trackUnhandled();
const certs = getCerts();
const env = { from: "sender@example.test", to: ["rcpt@example.test"] };

/** smtp-server speaking TLS from the first byte with this key pair. */
function implicitServer(pair: KeyPair = certs.server) {
  return startServer({ secure: true, key: pair.key, cert: pair.cert });
}

// The smtp-server of the running test, closed at its end by closeLast().
let last: { close(): Promise<void> } | undefined;
async function implicitServerPort(pair?: KeyPair) {
  const server = await implicitServer(pair);
  last = server;
  return server;
}
async function closeLast() {
  await last?.close();
  last = undefined;
}

/** A scripted implicit-TLS server that greets, answers EHLO and QUIT. */
function implicitScript(pair: KeyPair = certs.server): Step[] {
  return [{ upgradeTls: pair }, { send: "220 fault.example.test ESMTP\r\n" }, { expect: /^EHLO / }, { send: ehloReply(["PIPELINING"]) }, { expect: "QUIT" }, { send: "221 bye\r\n" }];
}

test("sends a message over implicit TLS to a server whose certificate the test CA signed", async () => {
  const server = await implicitServer();
  const conn = new SMTPConnection({ host: "localhost", port: server.port, secure: true, tls: { ca: certs.ca } });
  assert.is(conn.secure, true);
  await conn.connect();
  assert.is(conn.secure, true);
  const info = await conn.send(env, "Subject: tls\r\n\r\nover TLS\r\n");
  assert.equal(info.accepted, ["rcpt@example.test"]);
  await conn.quit();
  assert.is(server.messages[0]!.data.toString(), "Subject: tls\r\n\r\nover TLS\r\n");
  await server.close();
});

test("every byte goes encrypted: the fault server sees no cleartext at all", async () => {
  const fault = await startFaultServer(implicitScript());
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, secure: true, tls: { ca: certs.ca } });
  await conn.connect();
  await conn.quit();
  const seen = await fault.connection();
  await seen.done;
  assert.is(seen.secure, true);
  assert.is(seen.cleartext.length, 0);
  assert.equal(seen.commands, [`EHLO ${conn.name}`, "QUIT"]);
  fault.assertNoScriptErrors();
  await fault.close();
});

test("sends the host name as SNI and checks the certificate against it", async () => {
  assert.is(await sniSeen(implicitScript(), { host: "localhost", secure: true }), "localhost");
});

test("never sends an IP literal as SNI, and checks the certificate's IP address instead", async () => {
  assert.not.ok(await sniSeen(implicitScript(), { host: "127.0.0.1", secure: true }), "no SNI for an IP host");
});

test("servername is sent as SNI and is the name the certificate must carry", async () => {
  assert.is(await sniSeen(implicitScript(), { host: "127.0.0.1", secure: true, servername: "mx.example.test" }), "mx.example.test");

  const server = await implicitServerPort();
  const err = await connectError({ host: "127.0.0.1", port: server.port, secure: true, servername: "wrong.example.test", tls: { ca: certs.ca } });
  assert.is(err.code, "ETLS");
  assert.is((err.cause as { code?: string }).code, "ERR_TLS_CERT_ALTNAME_INVALID");
  await closeLast();
});

test("tls.servername is used when servername is not given, as in Nodemailer", async () => {
  assert.is(await sniSeen(implicitScript(), { host: "127.0.0.1", secure: true, tls: { ca: certs.ca, servername: "mx.example.test" } }), "mx.example.test");
});

for (const [what, pair, reason] of CERT_REFUSALS) {
  test(`fails with ETLS on ${what}, with ${reason} kept in cause, and sends nothing`, async () => {
    const fault = await startFaultServer(implicitScript(certs[pair] as KeyPair));
    const err = await connectError({ host: "localhost", port: fault.port, secure: true, tls: { ca: certs.ca } });
    assert.is(err.code, "ETLS");
    assert.is(err.temporary, false, "a certificate failure is not cured by retrying");
    assert.is((err.cause as { code?: string }).code, reason);
    assert.match(err.message, /^TLS failed: /);
    assert.ok(err.message.includes(reason), `the message names ${reason}: ${err.message}`);
    const seen = await fault.connection();
    await seen.whenClosed;
    assert.is(seen.secure, false, "the handshake never completed");
    assert.equal(seen.commands, [], "not one SMTP command was sent");
    await fault.close();
  });
}

test("verifies certificates by default: without tls.ca the test CA is not trusted", async () => {
  const server = await implicitServerPort();
  const err = await connectError({ host: "localhost", port: server.port, secure: true });
  assert.is(err.code, "ETLS");
  assert.match((err.cause as { code?: string }).code ?? "", /UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)/);
  await closeLast();
});

test("tls.rejectUnauthorized: false is the caller's explicit way to accept any certificate", async () => {
  const server = await implicitServerPort(certs.selfSigned);
  const conn = new SMTPConnection({ host: "localhost", port: server.port, secure: true, tls: { rejectUnauthorized: false } });
  await conn.connect();
  assert.is(conn.secure, true);
  await conn.quit();
  await closeLast();
});

test("tls options reach tls.connect: a minVersion above the server's maximum fails with ETLS", async () => {
  const server = await startServer({ secure: true, key: certs.server.key, cert: certs.server.cert, maxVersion: "TLSv1.2" });
  const ok = new SMTPConnection({ host: "localhost", port: server.port, secure: true, tls: { ca: certs.ca, maxVersion: "TLSv1.2" } });
  await ok.connect();
  await ok.quit();
  const err = await connectError({ host: "localhost", port: server.port, secure: true, tls: { ca: certs.ca, minVersion: "TLSv1.3" } });
  assert.is(err.code, "ETLS");
  assert.ok((err.cause as { code?: string }).code, "Node's error code is kept");
  await server.close();
});

test("the connect callback gets the ETLS error exactly once", async () => {
  const fault = await startFaultServer(implicitScript(certs.selfSigned));
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, secure: true, tls: { ca: certs.ca } });
  const cb = nodeCallback<void>("connect");
  conn.connect(cb);
  const err = (await cb.result.catch((e: SMTPError) => e)) as SMTPError;
  assert.is(err.code, "ETLS");
  await new Promise((resolve) => setTimeout(resolve, 20));
  cb.assertCalledOnce();
  await fault.close();
});

test("port 465 implies implicit TLS: a `connection` labelled port 465 is wrapped in TLS before the greeting", async () => {
  const fault = await startFaultServer(implicitScript());
  const socket = net.connect(fault.port, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  const conn = new SMTPConnection({ host: "localhost", port: 465, connection: socket, tls: { ca: certs.ca } });
  assert.is(conn.secure, true);
  await conn.connect();
  await conn.quit();
  const seen = await fault.connection();
  await seen.done;
  assert.is(seen.secure, true);
  assert.is(seen.cleartext.length, 0, "nothing went in cleartext over the given socket");
  fault.assertNoScriptErrors();
  await fault.close();
});

test("connection with secure: true is never trusted as encrypted as it is: a bad certificate still fails", async () => {
  const fault = await startFaultServer(implicitScript(certs.selfSigned));
  const socket = net.connect(fault.port, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  const err = await connectError({ host: "localhost", port: fault.port, secure: true, connection: socket, tls: { ca: certs.ca } });
  assert.is(err.code, "ETLS");
  assert.is((err.cause as { code?: string }).code, "DEPTH_ZERO_SELF_SIGNED_CERT");
  assert.ok(socket.destroyed);
  await fault.close();
});

test("connection with secured: true is a TLS socket the caller set up, used as is", async () => {
  const server = await implicitServerPort();
  const socket = tls.connect({ host: "localhost", port: server.port, ca: certs.ca, servername: "localhost" });
  await new Promise((resolve) => socket.once("secureConnect", resolve));
  const conn = new SMTPConnection({ host: "localhost", port: server.port, connection: socket, secured: true });
  assert.is(conn.secure, true);
  await conn.connect();
  await conn.send(env, "Subject: secured\r\n\r\nx\r\n");
  await conn.quit();
  assert.is(server.messages.length, 1);
  await closeLast();
});

test("socket: an unconnected socket of the caller is connected and wrapped in TLS", async () => {
  const server = await implicitServerPort();
  const socket = new net.Socket();
  const conn = new SMTPConnection({ host: "localhost", port: server.port, secure: true, socket, tls: { ca: certs.ca } });
  await conn.connect();
  assert.is(conn.secure, true);
  assert.is(socket.remotePort, server.port, "the caller's socket carries the connection");
  await conn.send(env, "Subject: socket\r\n\r\nx\r\n");
  await conn.quit();
  assert.is(server.messages.length, 1);
  await closeLast();
});

test("requireTLS with implicit TLS does not ask for STARTTLS: the session is already encrypted", async () => {
  const fault = await startFaultServer([
    { upgradeTls: certs.server },
    { send: "220 fault.example.test ESMTP\r\n" },
    { expect: /^EHLO / },
    { send: ehloReply(["STARTTLS", "PIPELINING"]) },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  const conn = new SMTPConnection({ host: "localhost", port: fault.port, secure: true, requireTLS: true, tls: { ca: certs.ca } });
  await conn.connect();
  await conn.quit();
  const seen = await fault.connection();
  await seen.done;
  assert.equal(seen.commands, [`EHLO ${conn.name}`, "QUIT"]);
  fault.assertNoScriptErrors();
  await fault.close();
});

leakCheckTest(test, unhandled);

test.run();
