/**
 * ESMTP extensions that change the envelope, against Postfix: SMTPUTF8 (RFC 6531) for a
 * UTF-8 address, DSN (RFC 3461) parameters, whose effect shows in the delivery report
 * Postfix sends back, 8BITMIME (RFC 6152), and CHUNKING/BDAT (RFC 3030), which Postfix's
 * per-session command counts in its log prove.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertDelivered, disconnectLine, finish, interopEnv, makeMessage, open, receivedWith, rejection, uniqueLoopback, waitForFile, within } from "./support.js";

const env = interopEnv("extensions");

if (env) {
  test("sends to a UTF-8 address with SMTPUTF8 (Received says UTF8SMTP)", async () => {
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "SMTPUTF8 ✓ Grüße", to: env.utf8Address, body: "Γειά σου κόσμε ✓\r\n" });
      const info = await within(conn.send({ from: "sender@client.example", to: env.utf8Address }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.utf8Address]);
      assert.ok(info.ehlo.includes("SMTPUTF8"));
      const delivered = await assertDelivered(env, "utf8", m);
      assert.is(receivedWith(delivered.trace), "UTF8SMTP");
    } finally {
      await finish(conn);
    }
  });

  test("sends from a UTF-8 sender with SMTPUTF8 forced on", async () => {
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "UTF-8 sender" });
      const info = await within(conn.send({ from: "jörg@client.example", to: env.address("alice"), smtpUtf8: true }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.address("alice")]);
      const delivered = await assertDelivered(env, "alice", m);
      assert.match(delivered.trace, /^Return-Path: <jörg@client\.example>$/m);
      assert.is(receivedWith(delivered.trace), "UTF8SMTP");
    } finally {
      await finish(conn);
    }
  });

  test("passes DSN RET, ENVID, NOTIFY and ORCPT; Postfix's success report carries them back", async () => {
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "DSN", to: env.address("bob") });
      const envid = `envid-${m.id}`;
      const orcpt = `original+${m.id.slice(0, 8)}@${env.domain}`;
      const info = await within(
        conn.send(
          { from: env.address("alice"), to: env.address("bob"), dsn: { ret: "HDRS", envid, notify: ["SUCCESS", "FAILURE"], orcpt } },
          m.raw,
        ),
        30_000,
        "send",
      );
      assert.equal(info.accepted, [env.address("bob")]);
      await assertDelivered(env, "bob", m);
      // NOTIFY=SUCCESS: Postfix mails a "Successful Mail Delivery Report" to the sender.
      const report = (await waitForFile(env, "alice", (data) => data.includes(`Original-Envelope-Id: ${envid}`))).toString("utf8");
      assert.match(report, /Action: delivered/);
      assert.ok(report.includes(`Original-Recipient: rfc822;${orcpt}`), `ORCPT in the report:\n${report}`);
      assert.ok(report.includes("text/rfc822-headers"), `RET=HDRS: headers only in the report:\n${report}`);
      assert.ok(report.includes(`X-Test-Id: ${m.id}`), "the report quotes the message's headers");
    } finally {
      await finish(conn);
    }
  });

  test("refuses a DSN value with CR or LF before anything is written", async () => {
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "bad envid" });
      const err = await rejection(within(conn.send({ from: "sender@client.example", to: env.address("alice"), dsn: { envid: "x\r\nRSET" } }, m.raw), 10_000, "send"));
      assert.is(err.temporary, false);
      // The connection is still in a clean state.
      const next = makeMessage({ subject: "after bad envid" });
      await within(conn.send({ from: "sender@client.example", to: env.address("alice") }, next.raw), 30_000, "next send");
      await assertDelivered(env, "alice", next);
    } finally {
      await finish(conn);
    }
  });

  test("sends 8-bit text with BODY=8BITMIME byte for byte", async () => {
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      const body = Buffer.concat([
        Buffer.from("Content-Type: text/plain; charset=utf-8\r\n"),
        Buffer.from("Grüße aus Köln, ½ €, 日本語, Ωμέγα ✓\r\n", "utf8"),
        Buffer.from([0x4c, 0x61, 0x74, 0x69, 0x6e, 0x2d, 0x31, 0x3a, 0x20, 0xe9, 0xe8, 0xa0, 0xff, 0x0d, 0x0a]),
      ]);
      const m = makeMessage({ subject: "8BITMIME", headers: "MIME-Version: 1.0\r\nContent-Transfer-Encoding: 8bit\r\n", body });
      const info = await within(conn.send({ from: "sender@client.example", to: env.address("carol"), use8BitMime: true }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.address("carol")]);
      assert.ok(info.ehlo.includes("8BITMIME"));
      await assertDelivered(env, "carol", m);
    } finally {
      await finish(conn);
    }
  });

  test("uses BDAT with chunking: true (Postfix counts bdat, not data)", async () => {
    const localAddress = uniqueLoopback();
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true, chunking: true, localAddress });
    let quitDone = false;
    try {
      const m = makeMessage({ subject: "BDAT", body: ".a dot line, not stuffed in BDAT\r\n.\r\nbare LF\nend\r\n" });
      const info = await within(conn.send({ from: "sender@client.example", to: env.address("bob") }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.address("bob")]);
      assert.ok(info.ehlo.includes("CHUNKING"));
      await assertDelivered(env, "bob", m);
      await finish(conn);
      quitDone = true;
      const line = await disconnectLine(env, localAddress);
      assert.match(line, /\bbdat=\d+/, `Postfix saw BDAT: ${line}`);
      assert.not.match(line, /\bdata=/, `and no DATA: ${line}`);
    } finally {
      if (!quitDone) await finish(conn);
    }
  });
}

test.run();
