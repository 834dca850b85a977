/**
 * Submission against Postfix with SASL through Dovecot: STARTTLS verified against the CA
 * that up.sh made (verification stays on), then AUTH PLAIN, LOGIN and CRAM-MD5; Postfix's
 * Received header ("with ESMTPSA") proves that TLS and AUTH really happened. Also the
 * failures a user meets there: a wrong password, no STARTTLS, an untrusted certificate.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { SMTPConnection } from "../../lib/index.js";
import { assertDelivered, finish, interopEnv, makeMessage, open, receivedWith, rejection, within } from "./support.js";

const env = interopEnv("submission");

/** The mechanisms after AUTH in EHLO, whether `extensions` is a Map or a plain object. */
function authMechanisms(conn: SMTPConnection): string[] {
  const ext = conn.extensions as unknown;
  const value = ext instanceof Map ? ext.get("AUTH") : (ext as Record<string, unknown> | undefined)?.AUTH;
  const list = Array.isArray(value) ? value.join(" ") : typeof value === "string" ? value : "";
  return list.toUpperCase().split(/\s+/).filter(Boolean);
}

if (env) {
  const tls = { ca: env.ca };

  for (const [user, method] of [["alice", "PLAIN"], ["bob", "LOGIN"], ["carol", "CRAM-MD5"]] as const) {
    test(`upgrades with STARTTLS, logs in with AUTH ${method} and sends (Received says ESMTPSA)`, async () => {
      const conn = await open(env, { port: env.submissionPort, tls });
      try {
        assert.is(conn.secure, true, "STARTTLS done during connect()");
        const offered = authMechanisms(conn);
        assert.ok(offered.includes("PLAIN") && offered.includes("LOGIN"), `AUTH offered after STARTTLS: ${offered.join(" ")}`);
        if (!offered.includes(method)) {
          console.log(`skipped: AUTH ${method} is not offered by this server (${offered.join(" ")})`);
          return;
        }
        await within(conn.login({ user: env.address(user), pass: env.passwords.get(user)!, method }), 10_000, "login");
        assert.is(conn.authenticated, true);
        const m = makeMessage({ subject: `submission ${method}`, to: env.address("dave") });
        const info = await within(conn.send({ from: env.address(user), to: env.address("dave") }, m.raw), 30_000, "send");
        assert.equal(info.accepted, [env.address("dave")]);
        const delivered = await assertDelivered(env, "dave", m);
        assert.is(receivedWith(delivered.trace), "ESMTPSA");
      } finally {
        await finish(conn);
      }
    });
  }

  test("chooses a mechanism itself and relays to another domain after AUTH", async () => {
    const conn = await open(env, { port: env.submissionPort, tls });
    try {
      await within(conn.login({ user: env.address("alice"), pass: env.passwords.get("alice")! }), 10_000, "login");
      const m = makeMessage({ subject: "relayed" });
      const info = await within(conn.send({ from: env.address("alice"), to: "someone@elsewhere.example" }, m.raw), 30_000, "send");
      assert.equal(info.accepted, ["someone@elsewhere.example"]);
      await assertDelivered(env, "sink", m); // every other domain lands in the sink mailbox
    } finally {
      await finish(conn);
    }
  });

  test("sends a non-ASCII password as UTF-8 with AUTH PLAIN", async () => {
    const conn = await open(env, { port: env.submissionPort, tls });
    try {
      await within(conn.login({ user: env.address("dave"), pass: env.passwords.get("dave")!, method: "PLAIN" }), 10_000, "login");
      assert.is(conn.authenticated, true);
    } finally {
      await finish(conn);
    }
  });

  test("fails with EAUTH and Postfix's 535 5.7.8 for a wrong password; the session stays usable", async () => {
    const conn = await open(env, { port: env.submissionPort, tls });
    try {
      for (const method of ["PLAIN", "LOGIN"]) {
        const err = await rejection(within(conn.login({ user: env.address("alice"), pass: "wrong-pass", method }), 10_000, "login"));
        assert.is(err.code, "EAUTH", method);
        assert.is(err.responseCode, 535, method);
        assert.is(err.enhancedCode, "5.7.8", method);
        assert.match(err.response ?? "", /authentication failed/, method);
        assert.is(err.temporary, false);
        assert.is(conn.authenticated, false);
      }
      // The server keeps the session after a 535: the right password works next.
      await within(conn.login({ user: env.address("alice"), pass: env.passwords.get("alice")! }), 10_000, "login after failure");
      assert.is(conn.authenticated, true);
    } finally {
      await finish(conn);
    }
  });

  test("fails with ETLS when the server's certificate is not trusted (no ca given)", async () => {
    const err = await rejection(open(env, { port: env.submissionPort }));
    assert.is(err.code, "ETLS");
    const cause = err.cause as { code?: string } | undefined;
    assert.is(cause?.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE", `the OpenSSL error is kept as cause (${String(err.cause)})`);
  });

  test("gets Postfix's 530 when sending without STARTTLS (ignoreTLS) on the submission port", async () => {
    const conn = await open(env, { port: env.submissionPort, ignoreTLS: true });
    try {
      assert.is(conn.secure, false);
      const m = makeMessage({ subject: "never sent" });
      const err = await rejection(within(conn.send({ from: env.address("alice"), to: env.address("bob") }, m.raw), 10_000, "send"));
      assert.is(err.code, "EENVELOPE");
      assert.is(err.responseCode, 530);
      assert.is(err.enhancedCode, "5.7.0");
      assert.match(err.response ?? "", /STARTTLS/);
    } finally {
      await finish(conn);
    }
  });

  test("refuses relaying before AUTH with Postfix's 554 5.7.1 (EENVELOPE)", async () => {
    const conn = await open(env, { port: env.submissionPort, tls });
    try {
      const m = makeMessage({ subject: "not authenticated" });
      const err = await rejection(within(conn.send({ from: env.address("alice"), to: env.address("bob") }, m.raw), 10_000, "send"));
      assert.is(err.code, "EENVELOPE");
      assert.is(err.responseCode, 554);
      assert.is(err.enhancedCode, "5.7.1");
      assert.equal(err.rejected, [env.address("bob")]);
    } finally {
      await finish(conn);
    }
  });

  test("uses the optional STARTTLS of the plain port by default, and logs in over it (ESMTPSA)", async () => {
    const conn = await open(env, { port: env.smtpPort, tls });
    try {
      assert.is(conn.secure, true);
      await within(conn.login({ user: env.address("bob"), pass: env.passwords.get("bob")! }), 10_000, "login");
      const m = makeMessage({ subject: "starttls on the plain port" });
      await within(conn.send({ from: env.address("bob"), to: env.address("carol") }, m.raw), 30_000, "send");
      const delivered = await assertDelivered(env, "carol", m);
      assert.is(receivedWith(delivered.trace), "ESMTPSA");
    } finally {
      await finish(conn);
    }
  });

  test("logs in over plaintext to a loopback host without allowInsecureAuth (ESMTPA)", async () => {
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      await within(conn.login({ user: env.address("carol"), pass: env.passwords.get("carol")! }), 10_000, "login");
      const m = makeMessage({ subject: "plaintext auth on loopback" });
      await within(conn.send({ from: env.address("carol"), to: env.address("alice") }, m.raw), 30_000, "send");
      const delivered = await assertDelivered(env, "alice", m);
      assert.is(receivedWith(delivered.trace), "ESMTPA");
    } finally {
      await finish(conn);
    }
  });
}

test.run();
