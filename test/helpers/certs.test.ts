/**
 * Self-test of the test certificates: each key pair, served by node:tls, passes or fails
 * verification by a client that trusts the test CA, for exactly the reason its name says.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { connect, createServer, type Server } from "node:tls";
import type { AddressInfo } from "node:net";
import { getCerts, type KeyPair } from "./certs.js";
import { assertNoLeaks, trackUnhandled } from "./leak-check.js";
import { settlesWithin } from "./callbacks.js";

trackUnhandled();

async function serve(pair: KeyPair): Promise<{ port: number; server: Server }> {
  const server = createServer({ key: pair.key, cert: pair.cert }, (socket) => {
    socket.on("error", () => {
      /* the client hanging up after refusing us is the point of some tests */
    });
    socket.end("hello\r\n");
  });
  server.on("tlsClientError", () => {
    /* likewise */
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

/** Connects with verification on; resolves with the error code, or "ok" when verified. */
async function verify(pair: KeyPair, options: { servername?: string; trustCa?: boolean } = {}): Promise<string> {
  const { port, server } = await serve(pair);
  try {
    return await settlesWithin(
      new Promise<string>((resolve) => {
        const socket = connect({ host: "127.0.0.1", port, servername: options.servername, ca: options.trustCa === false ? undefined : getCerts().ca }, () => {
          socket.destroy();
          resolve(socket.authorized ? "ok" : `unauthorized: ${String(socket.authorizationError)}`);
        });
        socket.once("error", (err: Error & { code?: string }) => resolve(err.code ?? err.message));
      }),
      5000,
      "the TLS connection",
    );
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test("getCerts makes them once per process, with EC P-256 keys", () => {
  const certs = getCerts();
  assert.is(getCerts(), certs);
  for (const pair of [certs.server, certs.selfSigned, certs.wrongHost, certs.expired, certs.unknownCa]) {
    assert.is(createPrivateKey(pair.key).asymmetricKeyDetails?.namedCurve, "prime256v1");
  }
});

test("the server certificate is issued by the CA for localhost, mx.example.test and 127.0.0.1", () => {
  const certs = getCerts();
  const ca = new X509Certificate(certs.ca);
  const server = new X509Certificate(certs.server.cert);
  assert.ok(ca.ca, "the CA certificate is a CA");
  assert.not.ok(server.ca);
  assert.ok(server.checkIssued(ca));
  assert.ok(server.verify(ca.publicKey));
  assert.is(server.checkHost("localhost"), "localhost");
  assert.is(server.checkHost("mx.example.test"), "mx.example.test");
  assert.is(server.checkIP("127.0.0.1"), "127.0.0.1");
  assert.is(server.checkHost("wrong.example.test"), undefined);
  assert.not.ok(new X509Certificate(certs.selfSigned.cert).checkIssued(ca));
});

test("a client trusting the CA verifies the server certificate by name and by IP address", async () => {
  const { server } = getCerts();
  assert.is(await verify(server, { servername: "localhost" }), "ok");
  assert.is(await verify(server, { servername: "mx.example.test" }), "ok");
  assert.is(await verify(server), "ok");
});

test("without the CA the server certificate is not trusted", async () => {
  assert.is(await verify(getCerts().server, { servername: "localhost", trustCa: false }), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
});

test("the self-signed certificate is rejected with DEPTH_ZERO_SELF_SIGNED_CERT", async () => {
  assert.is(await verify(getCerts().selfSigned, { servername: "localhost" }), "DEPTH_ZERO_SELF_SIGNED_CERT");
});

test("the wrong-host certificate is rejected with ERR_TLS_CERT_ALTNAME_INVALID", async () => {
  assert.is(await verify(getCerts().wrongHost, { servername: "localhost" }), "ERR_TLS_CERT_ALTNAME_INVALID");
  assert.is(await verify(getCerts().wrongHost, { servername: "wrong.example.test" }), "ok");
});

test("the expired certificate is rejected with CERT_HAS_EXPIRED", async () => {
  assert.is(await verify(getCerts().expired, { servername: "localhost" }), "CERT_HAS_EXPIRED");
});

test("a certificate from an unknown CA is rejected with UNABLE_TO_VERIFY_LEAF_SIGNATURE", async () => {
  assert.is(await verify(getCerts().unknownCa, { servername: "localhost" }), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
});

test("leaves no socket, timer or rejection behind", () => assertNoLeaks());

test.run();
