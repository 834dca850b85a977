/**
 * Postfix's message_size_limit (EHLO SIZE). With the envelope's `size` the client refuses
 * the message before MAIL FROM, from the limit Postfix advertised, before any byte of it
 * is read; without it Postfix reads the whole
 * message and refuses it after the terminator (552 5.3.4). Either way the caller gets an
 * error, nothing is delivered, nothing hangs, and the connection is usable afterwards:
 * Postfix 3.7 keeps answering 552 to MAIL after a refused SIZE until RSET, so this also
 * checks that the client resets after a failed transaction.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertDelivered, deliveredNow, finish, interopEnv, makeMessage, open, rejection, within } from "./support.js";

const env = interopEnv("size-limit");
const FROM = "sender@client.example";

/** A message of `size` bytes made as it is read, counting how much of it was pulled. */
function source(head: Buffer, size: number): { stream: Readable; pulled: () => number } {
  let sent = 0;
  const line = Buffer.from(`${"z".repeat(1022)}\r\n`);
  const chunk = Buffer.concat(Array.from({ length: 64 }, () => line)); // 64 KiB
  const stream = new Readable({
    read() {
      if (sent === 0) {
        sent = head.length;
        this.push(head);
        return;
      }
      if (sent >= size) {
        this.push(null);
        return;
      }
      const part = chunk.subarray(0, Math.min(chunk.length, size - sent));
      sent += part.length;
      this.push(part);
    },
  });
  return { stream, pulled: () => sent };
}

if (env) {
  test("refuses a declared SIZE over the limit Postfix advertises before MAIL FROM, without reading the message", async () => {
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "too big, declared" });
      const size = env.sizeLimit + 1;
      const { stream, pulled } = source(m.raw, size);
      const out = conn.createSendStream({ from: FROM, to: env.address("alice"), size });
      const err = await rejection(within(pipeline(stream, out), 30_000, "pipeline"));
      // The client reads the limit from Postfix's EHLO SIZE and refuses before MAIL FROM,
      // as Nodemailer does: no round trip, and the source is not read at all.
      assert.is(err.code, "EMESSAGE", `${err.code}: ${err.message}`);
      assert.match(err.message, new RegExp(`limit of ${env.sizeLimit} bytes`));
      assert.is(err.command, "MAIL FROM");
      assert.ok(pulled() < 4 * 1024 * 1024, `stopped reading the source (read ${pulled()} of ${size} bytes)`);
      assert.equal(deliveredNow(env, "alice", m.id), []);

      // Same connection: Postfix answers 552 to every MAIL until RSET, so this works only
      // when the client reset the failed transaction.
      const next = makeMessage({ subject: "after a refused SIZE" });
      const info = await within(conn.send({ from: FROM, to: env.address("alice"), size: next.raw.length }, next.raw), 30_000, "next send");
      assert.equal(info.accepted, [env.address("alice")]);
      await assertDelivered(env, "alice", next);
    } finally {
      await finish(conn);
    }
  });

  test("refuses a declared SIZE over the limit with send() too (Buffer message)", async () => {
    const conn = await open(env, { port: env.smallPort, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "too big, send()", body: Buffer.alloc(2 * env.smallSizeLimit, "a\r\n") });
      const err = await rejection(within(conn.send({ from: FROM, to: env.address("bob"), size: m.raw.length }, m.raw), 30_000, "send"));
      assert.is(err.code, "EMESSAGE", `${err.code}: ${err.message}`);
      assert.match(err.message, new RegExp(`limit of ${env.smallSizeLimit} bytes`));
      const next = makeMessage({ subject: "after a refused SIZE, send()" });
      await within(conn.send({ from: FROM, to: env.address("bob") }, next.raw), 30_000, "next send");
      await assertDelivered(env, "bob", next);
    } finally {
      await finish(conn);
    }
  });

  test("fails cleanly with 552 when an undeclared message overruns the limit mid-stream", async () => {
    const conn = await open(env, { port: env.smallPort, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "too big, undeclared" });
      const size = 3 * env.smallSizeLimit;
      const { stream } = source(m.raw, size);
      const out = conn.createSendStream({ from: FROM, to: env.address("carol") });
      const err = await rejection(within(pipeline(stream, out), 60_000, "pipeline"));
      assert.is(err.code, "EMESSAGE", err.message);
      assert.is(err.responseCode, 552);
      assert.is(err.enhancedCode, "5.3.4");
      // Postfix says "552 5.3.4 Error: message file too big" (cleanup) or "... Message size exceeds fixed limit" (smtpd).
      assert.match(err.response ?? "", /too big|exceeds fixed limit/);
      assert.is(out.info, undefined, "no SendInfo for a refused message");

      // Postfix keeps the session after the 552, so the connection should stay usable; a
      // client that chose to close it instead must then fail the next call at once.
      const next = makeMessage({ subject: "after an overrun" });
      const outcome = await within(
        conn.send({ from: FROM, to: env.address("carol") }, next.raw).then((info) => ({ info }), (error: unknown) => ({ error })),
        30_000,
        "next send",
      );
      if ("info" in outcome) {
        assert.equal(outcome.info.accepted, [env.address("carol")]);
        await assertDelivered(env, "carol", next);
      } else {
        console.log(`note: the connection was closed after the overrun: ${String(outcome.error)}`);
        assert.is((outcome.error as { code?: string }).code, "ECONNECTION");
      }
      assert.equal(deliveredNow(env, "carol", m.id), [], "the refused message was not delivered");
    } finally {
      await finish(conn);
    }
  });
}

test.run();
