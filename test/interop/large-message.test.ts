/**
 * A 64 MiB message streamed from a file into createSendStream() with stream.pipeline, to
 * Postfix: lines that start with ".", bare LF line ends (which the client turns into CRLF;
 * Postfix here refuses a bare LF), 8-bit text. The delivered file must equal the input with
 * every line end as LF, and messageSize must count the bytes on the wire exactly.
 */
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertSameBytes, finish, interopEnv, makeMessage, open, receivedWith, storedForm, waitForDelivery, wireSize, within } from "./support.js";

const env = interopEnv("large-message");
const MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * One block of lines, repeated to fill the message: dot lines of every kind (".", "..",
 * ". ", "...x"), bare LF and CRLF line ends mixed, UTF-8 and raw Latin-1 bytes, an empty
 * line and a long one. No bare CR: that case is in data-encoding.test.ts.
 */
function block(): Buffer {
  const lines: Buffer[] = [];
  for (let i = 0; lines.length < 4096; i++) {
    const eol = i % 3 === 0 ? "\n" : "\r\n";
    lines.push(
      Buffer.from(`.${eol}..${eol}. dot space${eol}...three dots ${i}${eol}`, "latin1"),
      Buffer.from(`8-bit: grüße, naïve, Ωμέγα, 日本語 ✓ ${i}${eol}`, "utf8"),
      Buffer.concat([Buffer.from("latin-1 bytes: "), Buffer.from([0xe9, 0x74, 0xe9, 0x20, 0xa0, 0xff, 0x80]), Buffer.from(eol)]),
      Buffer.from(`${eol}plain text line ${i} ${"0123456789".repeat(i % 90)}${eol}`, "latin1"),
    );
  }
  return Buffer.concat(lines);
}

if (env) {
  test("streams a 64 MiB file through createSendStream and Postfix stores it byte for byte", async () => {
    const dir = mkdtempSync(join(tmpdir(), "smtp-wire-large-"));
    const file = join(dir, "large.eml");
    const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
    try {
      // The head carries the X-Test-Id marker; the body repeats the block, then pads with
      // one line so the file is exactly 64 MiB. Written block by block, so this process
      // holds no copy of the message while sending and its RSS shows the client's memory.
      const head = makeMessage({ subject: "64 MiB, streamed", to: env.address("alice"), body: "" });
      const unit = block();
      const fd = openSync(file, "w");
      let size = writeSync(fd, head.raw);
      while (size + unit.length + 2 <= MESSAGE_BYTES) size += writeSync(fd, unit);
      size += writeSync(fd, `${"x".repeat(MESSAGE_BYTES - size - 1)}\n`);
      closeSync(fd);
      assert.is(size, MESSAGE_BYTES);

      let peakRss = process.memoryUsage().rss;
      const baseRss = peakRss;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
      const started = process.hrtime.bigint();
      const out = conn.createSendStream({ from: "sender@client.example", to: [env.address("alice")], use8BitMime: true });
      try {
        await within(pipeline(createReadStream(file), out), 180_000, "pipeline of 64 MiB");
      } finally {
        clearInterval(sampler);
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const info = out.info;
      const expected = storedForm(readFileSync(file));
      assert.ok(info, "stream.info is set when finish fired");
      assert.equal(info!.accepted, [env.address("alice")]);
      assert.match(info!.response, /^250 /);
      assert.is(info!.messageSize, wireSize(expected), "messageSize = bytes after 354, CRLF and dot-stuffing included, terminator included");
      console.log(
        `64 MiB streamed in ${seconds.toFixed(2)} s (${(64 / seconds).toFixed(0)} MiB/s); ` +
          `RSS grew by at most ${((peakRss - baseRss) / 2 ** 20).toFixed(0)} MiB while sending (from ${(baseRss / 2 ** 20).toFixed(0)} MiB)`,
      );

      // SPEC §4: memory stays bounded whatever the message size. A client that held the
      // message would grow by its 64 MiB; a streaming one grows by a few MiB.
      assert.ok(peakRss - baseRss < 48 * 2 ** 20, `RSS grew by ${((peakRss - baseRss) / 2 ** 20).toFixed(0)} MiB while streaming 64 MiB`);

      const delivered = await waitForDelivery(env, "alice", head.id, 60_000);
      assert.is(receivedWith(delivered.trace), "ESMTP");
      assert.is(statSync(delivered.path).size, delivered.trace.length + expected.length);
      assertSameBytes(delivered.content, expected, "the 64 MiB message as stored");
    } finally {
      await finish(conn);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
