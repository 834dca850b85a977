/**
 * Nodemailer's sendMail through smtp-wire/nodemailer with an attachment from a stream,
 * 16 MiB and 256 MiB, each in a fresh process: the message is streamed from Nodemailer's
 * composer into the pool's stream, so peak RSS does not grow with the attachment.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { runInChild, leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { startServer } from "../helpers/server.js";

const unhandled = trackUnhandled();
const MiB = 1024 * 1024;

interface Result {
  peakRss: number;
  produced: number;
  accepted: string[];
  messageSize: number;
}

async function sendAttachment(megabytes: number): Promise<Result & { received: number }> {
  let received = 0;
  const server = await startServer({ size: 0, keepData: false, onChunk: (chunk) => (received += chunk.length) });
  try {
    const result = await runInChild<Result>(new URL("../scenarios/nodemailer-large-attachment.js", import.meta.url), [String(server.port), String(megabytes)], { timeoutMs: 180_000 });
    return { ...result, received };
  } finally {
    await server.close();
  }
}

test("sendMail with a 256 MiB attachment from a stream keeps RSS flat", async () => {
  const small = await sendAttachment(16);
  const large = await sendAttachment(256);
  console.log(`peak RSS: 16 MiB attachment ${(small.peakRss / MiB).toFixed(1)} MiB, 256 MiB attachment ${(large.peakRss / MiB).toFixed(1)} MiB`);
  assert.is(large.produced, 256 * MiB);
  assert.equal(large.accepted, ["rcpt@example.test"]);
  // Base64 makes the attachment a third larger on the wire.
  assert.ok(large.received > 256 * MiB * 1.33, `the server got ${(large.received / MiB).toFixed(0)} MiB`);
  assert.ok(large.messageSize >= large.received);
  const growth = large.peakRss - small.peakRss;
  assert.ok(growth < 32 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB from a 16 MiB to a 256 MiB attachment`);
});

leakCheckTest(test, unhandled);
test.run();
