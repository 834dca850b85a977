/**
 * A message that stops half-way must never be delivered (SPEC §4): when the source fails,
 * or the send stream is destroyed, before end(), the client closes the connection without
 * the terminator. Postfix then logs "lost connection after DATA" and discards what it got,
 * so the Maildir must stay without that message.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPError } from "../../lib/index.js";
import { deliveredNow, finish, interopEnv, makeMessage, open, postfixLogLines, rejection, sleep, uniqueLoopback, within } from "./support.js";

const env = interopEnv("aborted-send");

/** 256 KiB of lines after the head, then an error. */
function failingSource(head: Buffer): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent === 0) this.push(head);
      else if (sent < 256 * 1024) this.push(Buffer.from(`${"q".repeat(1022)}\r\n`.repeat(16)));
      else this.destroy(new Error("disk read failed half-way"));
      sent += 16 * 1024;
    },
  });
}

/** Waits for Postfix's "lost connection after DATA" line for this client address. */
async function lostAfterData(address: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const line = postfixLogLines(env!, address).find((l) => l.includes("lost connection after DATA"));
    if (line) return line;
    await sleep(50);
  }
  throw new Error(`Postfix did not log "lost connection after DATA" for ${address}: ${postfixLogLines(env!, address).join("\n")}`);
}

if (env) {
  test("fails with ESTREAM when the source fails mid-message, and Postfix delivers nothing", async () => {
    const localAddress = uniqueLoopback();
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true, localAddress });
    try {
      const m = makeMessage({ subject: "source fails half-way" });
      const out = conn.createSendStream({ from: "sender@client.example", to: env.address("alice") });
      const streamErrors: unknown[] = [];
      out.on("error", (e) => streamErrors.push(e));
      const failed = await within(
        pipeline(failingSource(m.raw), out).then(() => undefined, (e: unknown) => e),
        30_000,
        "pipeline",
      );
      // pipeline() rejects with the first error, the source's own; the send stream's
      // 'error' event carries the client's view of it.
      assert.instance(failed, Error, "pipeline rejects");
      const [err] = streamErrors as SMTPError[];
      assert.instance(err, SMTPError);
      assert.is(err!.code, "ESTREAM", err!.message);
      await lostAfterData(localAddress);
      await sleep(500); // a delivery, if one were wrongly made, takes tens of milliseconds
      assert.equal(deliveredNow(env, "alice", m.id), []);
      // The connection is closed: the next call fails at once instead of hanging.
      const next = await rejection(within(conn.send({ from: "sender@client.example", to: env.address("alice") }, "x"), 10_000, "send after abort"));
      assert.is(next.code, "ECONNECTION");
    } finally {
      await finish(conn);
    }
  });

  test("closes without the terminator when the send stream is destroyed, and Postfix delivers nothing", async () => {
    const localAddress = uniqueLoopback();
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true, localAddress });
    try {
      const m = makeMessage({ subject: "stream destroyed half-way" });
      const out = conn.createSendStream({ from: "sender@client.example", to: env.address("bob") });
      const streamErrors: unknown[] = [];
      out.on("error", (e) => streamErrors.push(e));
      out.write(m.raw);
      out.write(Buffer.from("a line of the body\r\n".repeat(1000)));
      await sleep(200); // let the envelope and part of the body reach Postfix
      out.destroy();
      await lostAfterData(localAddress);
      await sleep(500);
      assert.equal(deliveredNow(env, "bob", m.id), []);
      assert.is(out.info, undefined);
      for (const e of streamErrors) assert.is((e as SMTPError).code, "ESTREAM", String(e));
    } finally {
      await finish(conn);
    }
  });
}

test.run();
