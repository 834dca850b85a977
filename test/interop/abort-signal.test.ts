/**
 * AbortSignal against Postfix (issue 10, item 7): an abort mid-body closes the connection
 * without the terminator and Postfix delivers nothing; an abort while a BDAT envelope is
 * out and before any chunk ends the transaction with RSET, and the next message on the
 * same connection is delivered; an abort after the end of data left is ignored.
 *
 * The aborts are timed by the send's own phase (SendStream.phase), in the same turn as
 * the write that moved it there, so no reply can have been read yet: nothing here depends
 * on how fast Postfix answers.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPError, type SendStream } from "../../lib/index.js";
import { assertDelivered, deliveredNow, disconnectLine, finish, interopEnv, makeMessage, open, postfixLogLines, sleep, uniqueLoopback, within } from "./support.js";

const env = interopEnv("abort-signal");
const FROM = "sender@client.example";

/** Resolves in the turn the send reaches `phase`. */
async function reached(stream: SendStream, phase: SendStream["phase"]): Promise<void> {
  for (let i = 0; stream.phase !== phase; i++) {
    if (i > 10_000) throw new Error(`the send never reached ${phase} (at ${stream.phase})`);
    await (i < 1000 ? Promise.resolve() : sleep(1));
  }
}

/** Waits for one of Postfix's log lines about client `address` to match. */
async function logged(address: string, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const line = postfixLogLines(env!, address).find((l) => pattern.test(l));
    if (line) return line;
    await sleep(50);
  }
  throw new Error(`no Postfix log line matching ${pattern} for ${address}: ${postfixLogLines(env!, address).join("\n")}`);
}

if (env) {
  test("aborted mid-body: the abort error, Postfix logs a lost connection after DATA, and nothing is delivered", async () => {
    const localAddress = uniqueLoopback();
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true, localAddress });
    try {
      const m = makeMessage({ subject: "aborted mid-body" });
      const controller = new AbortController();
      const out = conn.createSendStream({ from: FROM, to: env.address("alice") }, { signal: controller.signal });
      const failed = new Promise<unknown>((resolve) => out.once("error", resolve));
      out.write(m.raw);
      out.write(Buffer.from("a line of the body\r\n".repeat(1000)));
      await within(reached(out, "body"), 10_000, "the body flowing");
      const reason = new Error("the caller gave up");
      controller.abort(reason);
      const err = (await within(failed, 10_000, "the stream's error")) as SMTPError;
      assert.instance(err, SMTPError);
      assert.is(err.code, "ECONNECTION");
      assert.is(err.cause, reason);
      assert.is(err.deliveryState, "not-sent");
      await logged(localAddress, /lost connection after DATA/);
      await sleep(500); // a delivery, if one were wrongly made, takes tens of milliseconds
      assert.equal(deliveredNow(env, "alice", m.id), []);
    } finally {
      await finish(conn);
    }
  });

  test("chunking: aborted while the envelope is out and before any chunk, RSET ends it and the next message on the connection is delivered", async () => {
    const localAddress = uniqueLoopback();
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true, chunking: true, localAddress });
    try {
      const abandoned = makeMessage({ subject: "abandoned in its envelope" });
      const controller = new AbortController();
      const out = conn.createSendStream({ from: FROM, to: env.address("bob") }, { signal: controller.signal });
      const failed = new Promise<unknown>((resolve) => out.once("error", resolve));
      // Less than a chunk and not ended: nothing of the body can leave with the envelope.
      out.write(abandoned.raw);
      await within(reached(out, "body"), 10_000, "the envelope written");
      const reason = new Error("deadline");
      controller.abort(reason);
      const err = (await within(failed, 10_000, "the stream's error")) as SMTPError;
      assert.is(err.cause, reason);
      assert.is(err.deliveryState, "not-sent");

      const next = makeMessage({ subject: "after the abandoned one" });
      await within(conn.send({ from: FROM, to: env.address("bob") }, next.raw), 20_000, "the next send");
      await assertDelivered(env, "bob", next);
      await finish(conn);
      const line = await disconnectLine(env, localAddress);
      assert.match(line, /\brset=1\b/, `one RSET: ${line}`);
      assert.match(line, /\bmail=2\b/, `two transactions: ${line}`);
      assert.equal(deliveredNow(env, "bob", abandoned.id), [], "the abandoned message was not delivered");
    } finally {
      conn.close();
    }
  });

  test("aborted after the end of data left: ignored, the send resolves with Postfix's 250 and the message is delivered", async () => {
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "too late to abort" });
      const controller = new AbortController();
      const out = conn.createSendStream({ from: FROM, to: env.address("carol") }, { signal: controller.signal });
      const finished = new Promise<void>((resolve, reject) => out.once("finish", resolve).once("error", reject));
      out.end(m.raw);
      await within(reached(out, "final"), 10_000, "the terminator written");
      controller.abort(new Error("too late"));
      await within(finished, 20_000, "the send");
      assert.match(out.info!.response, /^250 /);
      await assertDelivered(env, "carol", m);
    } finally {
      await finish(conn);
    }
  });
}

test.run();
