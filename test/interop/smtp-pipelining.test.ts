/**
 * Plain SMTP against Postfix (the port-25-like port): many sends started at once on one
 * connection run in order and pipelined (RFC 2920), each delivered byte for byte; refused
 * recipients and envelopes fail alone, without disturbing the queue. Against a port that
 * does not advertise PIPELINING the client must wait for replies; Postfix there logs and
 * refuses input it can see was sent ahead (after EHLO, message bytes before the 354).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError, type SendInfo } from "../../lib/index.js";
import { assertDelivered, CLIENT_NAME, deliveredNow, disconnectLine, finish, interopEnv, makeMessage, open, postfixLogLines, receivedWith, sleep, uniqueLoopback, within } from "./support.js";

const env = interopEnv("smtp-pipelining");
if (env) {
  const FROM = "sender@client.example";

  test("delivers 20 sends started without waiting, in order, each byte for byte", async () => {
    // ignoreTLS: plaintext on purpose; the Received header then says ESMTP.
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      const users = ["alice", "bob", "carol"];
      const messages = Array.from({ length: 20 }, (_, i) =>
        makeMessage({
          subject: `pipelined ${i + 1} of 20`,
          to: env.address(users[i % 3]!),
          body: `Message ${i + 1}.\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\nlast line\r\n`,
        }),
      );
      const sends = messages.map((m, i) => conn.send({ from: FROM, to: env.address(users[i % 3]!) }, m.raw));
      const infos = await within(Promise.all(sends), 60_000, "20 queued sends");
      infos.forEach((info, i) => {
        assert.equal(info.accepted, [env.address(users[i % 3]!)], `send ${i + 1} accepted`);
        assert.equal(info.rejected, [], `send ${i + 1} rejected nobody`);
        assert.is(info.rejectedErrors, undefined, `send ${i + 1} has no rejectedErrors`);
        assert.match(info.response, /^250 2\.0\.0 Ok: queued as \S+/, `send ${i + 1} response`);
        assert.ok(info.ehlo.includes("PIPELINING"), "Postfix advertised PIPELINING");
      });
      const queueIds = new Set(infos.map((info) => info.response));
      assert.is(queueIds.size, 20, "20 distinct queue ids: every reply went to its own send");
      for (const [i, m] of messages.entries()) {
        const delivered = await assertDelivered(env, users[i % 3]!, m);
        assert.is(receivedWith(delivered.trace), "ESMTP");
      }
    } finally {
      await finish(conn);
    }
  });

  test("fails only the send whose every recipient is refused; the queued ones around it are delivered", async () => {
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      const messages = Array.from({ length: 5 }, (_, i) => makeMessage({ subject: `queue ${i + 1}` }));
      const to = (i: number): string => (i === 2 ? env.address("nobody") : env.address("alice"));
      const results = await within(
        Promise.allSettled(messages.map((m, i) => conn.send({ from: FROM, to: to(i) }, m.raw))),
        30_000,
        "5 queued sends",
      );
      const failed = results[2]!;
      assert.is(failed.status, "rejected");
      const err = (failed as PromiseRejectedResult).reason as SMTPError;
      assert.instance(err, SMTPError);
      assert.is(err.code, "EENVELOPE");
      assert.is(err.responseCode, 550);
      assert.is(err.enhancedCode, "5.1.1");
      assert.match(err.response ?? "", /User unknown/);
      assert.is(err.temporary, false);
      for (const [i, r] of results.entries()) {
        if (i === 2) continue;
        assert.is(r.status, "fulfilled", `send ${i + 1} went through (${r.status === "rejected" ? String(r.reason) : ""})`);
        await assertDelivered(env, "alice", messages[i]!);
      }
      assert.equal(deliveredNow(env, "alice", messages[2]!.id), []);
    } finally {
      await finish(conn);
    }
  });

  test("reports refused recipients in rejected and rejectedErrors and delivers to the others", async () => {
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "some refused" });
      const to = [env.address("alice"), env.address("nobody"), "someone@elsewhere.example", env.address("bob")];
      const info = await within(conn.send({ from: FROM, to }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.address("alice"), env.address("bob")]);
      assert.equal(info.rejected, [env.address("nobody"), "someone@elsewhere.example"]);
      const errors = info.rejectedErrors ?? [];
      assert.is(errors.length, 2);
      assert.is(errors[0]!.responseCode, 550);
      assert.is(errors[0]!.enhancedCode, "5.1.1");
      assert.is(errors[0]!.recipient, env.address("nobody"));
      // Relaying without AUTH: "554 5.7.1 <someone@elsewhere.example>: Relay access denied".
      assert.is(errors[1]!.responseCode, 554);
      assert.is(errors[1]!.enhancedCode, "5.7.1");
      assert.match(errors[1]!.response ?? "", /Relay access denied/);
      await assertDelivered(env, "alice", m);
      await assertDelivered(env, "bob", m);
    } finally {
      await finish(conn);
    }
  });

  test("works with Nodemailer-style callbacks, each called exactly once", async () => {
    const conn = new SMTPConnection({ host: env.host, port: env.smtpPort, ignoreTLS: true, name: CLIENT_NAME });
    const m = makeMessage({ subject: "callbacks" });
    const calls: string[] = [];
    const info = await within(
      new Promise<SendInfo>((resolve, reject) => {
        conn.connect((err) => {
          calls.push("connect");
          if (err) return reject(err);
          conn.send({ from: FROM, to: env.address("carol") }, m.raw, (sendErr, result) => {
            calls.push("send");
            if (sendErr) return reject(sendErr);
            conn.quit(() => {
              calls.push("quit");
              resolve(result!);
            });
          });
        });
      }),
      30_000,
      "callback chain",
    );
    await sleep(100); // a second call of any callback would show up here
    assert.equal(calls, ["connect", "send", "quit"]);
    assert.equal(info.accepted, [env.address("carol")]);
    await assertDelivered(env, "carol", m);
  });

  test("waits for replies when the server does not advertise PIPELINING", async () => {
    const localAddress = uniqueLoopback();
    const conn = await open(env, { port: env.nopipePort, ignoreTLS: true, localAddress });
    let closed = false;
    try {
      const messages = Array.from({ length: 5 }, (_, i) => makeMessage({ subject: `not pipelined ${i + 1}` }));
      const to = [env.address("alice"), env.address("nobody"), env.address("bob")];
      const infos = await within(Promise.all(messages.map((m) => conn.send({ from: FROM, to }, m.raw))), 30_000, "5 queued sends");
      for (const info of infos) {
        assert.not.ok(info.ehlo.includes("PIPELINING"));
        assert.equal(info.accepted, [env.address("alice"), env.address("bob")]);
        assert.equal(info.rejected, [env.address("nobody")]);
      }
      for (const m of messages) await assertDelivered(env, "bob", m);
      await finish(conn);
      closed = true;
      const line = await disconnectLine(env, localAddress);
      assert.match(line, /\bmail=5 rcpt=10\/15 data=5 /, `Postfix's command counts: ${line}`);
      const improper = postfixLogLines(env, localAddress).filter((l) => l.includes("improper command pipelining"));
      assert.equal(improper, [], "Postfix saw nothing sent ahead of its reply");
    } finally {
      if (!closed) await finish(conn);
    }
  });
}

test.run();
