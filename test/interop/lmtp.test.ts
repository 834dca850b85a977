/**
 * LMTP (RFC 2033) against Dovecot: LHLO, recipients refused at RCPT, and the one reply per
 * accepted recipient after the data, where a recipient can still fail (here "full", over
 * its quota: 552 5.2.2) and must move to `rejected` while the others are delivered.
 */
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertDelivered, deliveredNow, finish, interopEnv, makeMessage, open, receivedWith, rejection, within } from "./support.js";

const env = interopEnv("lmtp");
const FROM = "sender@client.example";

if (env) {
  test("speaks LHLO and reports a recipient refused at RCPT in rejected (550 5.1.1)", async () => {
    const conn = await open(env, { port: env.lmtpPort, lmtp: true });
    try {
      const m = makeMessage({ subject: "LMTP, one unknown", body: ".dot\r\nbody\r\n" });
      const info = await within(conn.send({ from: FROM, to: [env.address("alice"), env.address("nobody")] }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.address("alice")]);
      assert.equal(info.rejected, [env.address("nobody")]);
      const [err] = info.rejectedErrors ?? [];
      assert.ok(err, "rejectedErrors has the RCPT failure");
      assert.is(err!.responseCode, 550);
      assert.is(err!.enhancedCode, "5.1.1");
      assert.match(err!.response ?? "", /User doesn't exist/);
      assert.match(info.response, /^250 2\.0\.0 <alice@/);
      assert.not.ok(info.ehlo.some((line) => line.split(" ")[0] === "SIZE"), "Dovecot's LHLO offers no SIZE");
      const delivered = await assertDelivered(env, "alice", m);
      assert.is(receivedWith(delivered.trace), "LMTP");
      assert.match(delivered.trace, /^Received: from client\.example /m, "LHLO name in Received");
    } finally {
      await finish(conn);
    }
  });

  test("moves a recipient refused after the data (over quota) to rejected; the other is delivered", async () => {
    const conn = await open(env, { port: env.lmtpPort, lmtp: true });
    try {
      const m = makeMessage({ subject: "LMTP, one full" });
      const info = await within(conn.send({ from: FROM, to: [env.address("alice"), env.address("full")] }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.address("alice")]);
      assert.equal(info.rejected, [env.address("full")]);
      const [err] = info.rejectedErrors ?? [];
      assert.ok(err, "rejectedErrors has the final-reply failure");
      assert.is(err!.responseCode, 552);
      assert.is(err!.enhancedCode, "5.2.2");
      assert.match(err!.response ?? "", /Quota exceeded/);
      assert.is(err!.recipient, env.address("full"));
      // One outcome per recipient, each settled by its own final reply.
      assert.equal(
        info.recipients.map((r) => [r.address, r.status, r.responseCode, r.enhancedCode]),
        [
          [env.address("alice"), "accepted", 250, "2.0.0"],
          [env.address("full"), "rejected", 552, "5.2.2"],
        ],
      );
      await assertDelivered(env, "alice", m);
      // Dovecot answers after storing, so a refused recipient has nothing by now.
      assert.equal(deliveredNow(env, "full", m.id), []);
    } finally {
      await finish(conn);
    }
  });

  test("fails with EMESSAGE when every recipient fails after the data; the session goes on", async () => {
    const conn = await open(env, { port: env.lmtpPort, lmtp: true });
    try {
      const m = makeMessage({ subject: "LMTP, only full" });
      const err = await rejection(within(conn.send({ from: FROM, to: env.address("full") }, m.raw), 30_000, "send"));
      assert.is(err.code, "EMESSAGE");
      assert.is(err.responseCode, 552);
      assert.is(err.enhancedCode, "5.2.2");
      assert.is(err.deliveryState, "rejected");
      assert.equal(err.recipients?.map((r) => r.status), ["rejected"]);
      const next = makeMessage({ subject: "LMTP, after a failure" });
      await within(conn.send({ from: FROM, to: env.address("bob") }, next.raw), 30_000, "next send");
      await assertDelivered(env, "bob", next);
    } finally {
      await finish(conn);
    }
  });

  test("with chunking: true sends BDAT, and BDAT 0 LAST gets one reply per recipient", async () => {
    const conn = await open(env, { port: env.lmtpPort, lmtp: true, chunking: true });
    try {
      assert.ok(conn.extensions.has("CHUNKING"), "Dovecot's LHLO offers CHUNKING");
      const m = makeMessage({ subject: "LMTP over BDAT", body: ".not stuffed in BDAT\r\nbare LF\nend\r\n" });
      const info = await within(conn.send({ from: FROM, to: [env.address("alice"), env.address("full")] }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.address("alice")]);
      assert.equal(info.rejected, [env.address("full")]);
      assert.is(info.rejectedErrors?.[0]?.command, "BDAT");
      assert.is(info.rejectedErrors?.[0]?.responseCode, 552);
      await assertDelivered(env, "alice", m);
    } finally {
      await finish(conn);
    }
  });

  test("finishes a send stream only after every recipient's reply, and fills info", async () => {
    const conn = await open(env, { port: env.lmtpPort, lmtp: true });
    try {
      const m = makeMessage({ subject: "LMTP stream", body: "streamed\n.\nwith bare LF\n" });
      const out = conn.createSendStream({ from: "", to: [env.address("bob"), env.address("full"), env.address("carol")] });
      const announced: string[] = [];
      out.on("recipient", (outcome: { address: string; status: string }) => announced.push(`${outcome.address} ${outcome.status}`));
      await within(pipeline(Readable.from([m.raw]), out), 30_000, "pipeline");
      assert.equal(out.info?.accepted, [env.address("bob"), env.address("carol")]);
      assert.equal(out.info?.rejected, [env.address("full")]);
      assert.equal(announced, [`${env.address("bob")} accepted`, `${env.address("full")} rejected`, `${env.address("carol")} accepted`], "one recipient event per final reply, in order");
      // Delivered already when finish fired: LMTP replies after storing.
      assert.is(deliveredNow(env, "bob", m.id).length, 1);
      assert.is(deliveredNow(env, "carol", m.id).length, 1);
      const delivered = await assertDelivered(env, "bob", m);
      assert.match(delivered.trace, /^Return-Path: <>$/m, "null sender");
    } finally {
      await finish(conn);
    }
  });
}

test.run();
