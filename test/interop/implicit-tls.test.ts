/**
 * Implicit TLS (like port 465, RFC 8314) against Postfix: `secure: true` verifies the
 * server against the CA that up.sh made, by IP or by `servername`, then AUTH and a send
 * ("with ESMTPSA" in Received). An untrusted certificate fails with ETLS.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertDelivered, finish, interopEnv, makeMessage, open, receivedWith, rejection, within } from "./support.js";

const env = interopEnv("implicit-tls");

if (env) {
  test("connects with secure: true, logs in and sends (Received says ESMTPSA)", async () => {
    const conn = await open(env, { port: env.smtpsPort, secure: true, tls: { ca: env.ca } });
    try {
      assert.is(conn.secure, true);
      await within(conn.login({ user: env.address("bob"), pass: env.passwords.get("bob")! }), 10_000, "login");
      const m = makeMessage({ subject: "implicit TLS", body: ".dot\r\n8-bit: ✓\r\n" });
      const info = await within(conn.send({ from: env.address("bob"), to: env.address("alice") }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.address("alice")]);
      const delivered = await assertDelivered(env, "alice", m);
      assert.is(receivedWith(delivered.trace), "ESMTPSA");
    } finally {
      await finish(conn);
    }
  });

  test("verifies the certificate by name with servername", async () => {
    const conn = await open(env, { port: env.smtpsPort, secure: true, servername: `mx.${env.domain}`, tls: { ca: env.ca } });
    try {
      assert.is(conn.secure, true);
    } finally {
      await finish(conn);
    }
  });

  test("fails with ETLS, never in plaintext, when the certificate is not trusted", async () => {
    const err = await rejection(open(env, { port: env.smtpsPort, secure: true }));
    assert.is(err.code, "ETLS");
    assert.is((err.cause as { code?: string } | undefined)?.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });

  test("fails with ETLS when servername does not match the certificate", async () => {
    const err = await rejection(open(env, { port: env.smtpsPort, secure: true, servername: "wrong.example.test", tls: { ca: env.ca } }));
    assert.is(err.code, "ETLS");
    assert.is((err.cause as { code?: string } | undefined)?.code, "ERR_TLS_CERT_ALTNAME_INVALID");
  });
}

test.run();
