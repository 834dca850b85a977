/**
 * The commonest set-up mistake: implicit TLS against a port that speaks plaintext first
 * (587, 25), or plaintext against an implicit-TLS port (465). Each fails at once, or at
 * the greeting timeout for a server that waits in silence, with an error whose message
 * names the option to change, never a bare OpenSSL trace or a long wait.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import net from "node:net";
import { startServer } from "../helpers/server.js";
import { startFaultServer, type FaultConnection } from "../helpers/fault-server.js";
import { getCerts } from "../helpers/certs.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { connectError } from "./support.js";

const unhandled = trackUnhandled();
const certs = getCerts();

test("secure: true against a plaintext server fails with ETLS saying to set secure: false", async () => {
  const server = await startServer();
  // A long greeting timeout proves the failure does not wait for it.
  const err = await connectError({ host: "localhost", port: server.port, secure: true, tls: { ca: certs.ca }, greetingTimeout: 60_000, connectionTimeout: 60_000 });
  assert.is(err.code, "ETLS");
  assert.is(err.temporary, false);
  assert.match(err.message, /secure: false/);
  assert.match(err.message, /answered in plaintext/);
  assert.not.match(err.message, /ssl3_get_record|deps\/openssl/, "no OpenSSL trace in the message");
  assert.is((err.cause as { code?: string }).code, "ERR_SSL_WRONG_VERSION_NUMBER", "OpenSSL's reason is kept in cause");
  assert.equal(server.commands, [], "no SMTP command reached the server");
  await server.close();
});

test("the same diagnosis when the plaintext server waits for a command before it says anything", async () => {
  // It answers the client's first bytes (the TLS ClientHello) as a bad command.
  const firstBytes = async (c: FaultConnection) => {
    while (c.received.length === 0 && !c.closed) await new Promise((resolve) => setTimeout(resolve, 5));
  };
  const fault = await startFaultServer([{ call: firstBytes }, { send: "500 5.5.1 Unrecognized command\r\n" }, { close: true }]);
  const err = await connectError({ host: "localhost", port: fault.port, secure: true, tls: { ca: certs.ca }, greetingTimeout: 60_000 });
  assert.is(err.code, "ETLS");
  assert.match(err.message, /secure: false/);
  await fault.close();
});

test("plaintext against an implicit-TLS port 465 fails at the greeting timeout with ETLS saying to set secure: true", async () => {
  const server = await startServer({ secure: true, key: certs.server.key, cert: certs.server.cert });
  // The server listens on a random port: the socket is ours, and the options say 465.
  const socket = net.connect(server.port, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  const err = await connectError({ host: "localhost", port: 465, secure: false, connection: socket, greetingTimeout: 300 });
  assert.is(err.code, "ETLS");
  assert.match(err.message, /port 465 expects TLS/);
  assert.match(err.message, /secure: true/);
  await server.close();
});

test("plaintext against a silent implicit-TLS server on another port: the greeting timeout hints at secure: true", async () => {
  const server = await startServer({ secure: true, key: certs.server.key, cert: certs.server.cert });
  const err = await connectError({ host: "localhost", port: server.port, greetingTimeout: 300 });
  assert.is(err.code, "ETIMEDOUT");
  assert.is(err.temporary, true);
  assert.match(err.message, /Greeting never received within 300 ms/);
  assert.match(err.message, /set secure: true/);
  await server.close();
});

test("a greeting timeout over implicit TLS carries no such hint", async () => {
  const fault = await startFaultServer([{ upgradeTls: certs.server }, { stall: true }]);
  const err = await connectError({ host: "localhost", port: fault.port, secure: true, tls: { ca: certs.ca }, greetingTimeout: 300 });
  assert.is(err.code, "ETIMEDOUT");
  assert.not.match(err.message, /secure: true/);
  await fault.close();
});

test("a server that answers with a TLS record instead of 220 fails at once with ETLS saying to set secure: true", async () => {
  // A TLS alert record (content type 21, TLS 1.0, length 2: fatal, protocol_version).
  const alert = Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]);
  const fault = await startFaultServer([{ send: alert }, { stall: true }]);
  const err = await connectError({ host: "localhost", port: fault.port, greetingTimeout: 60_000 });
  assert.is(err.code, "ETLS");
  assert.match(err.message, /sent TLS bytes instead of a greeting/);
  assert.match(err.message, /secure: true/);
  const seen = await fault.connection();
  assert.is(seen.received.length, 0, "the client wrote nothing");
  await fault.close();
});

test("a TLS handshake record where 220 belongs is recognised too", async () => {
  const hello = Buffer.from([0x16, 0x03, 0x03, 0x00, 0x31, 0x02, 0x00, 0x00, 0x2d]);
  const fault = await startFaultServer([{ send: hello }, { stall: true }]);
  const err = await connectError({ host: "localhost", port: fault.port, greetingTimeout: 60_000 });
  assert.is(err.code, "ETLS");
  assert.match(err.message, /secure: true/);
  await fault.close();
});

leakCheckTest(test, unhandled);

test.run();
