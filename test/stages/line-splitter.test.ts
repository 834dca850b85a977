import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { LineSplitter, type LineSplitterOptions } from "../../lib/stages/line-splitter.js";
import { SMTPError } from "../../lib/errors.js";
import { randomChunkLimit, randomFor, seed, seedNote, splitRandomly } from "../helpers/random.js";

interface Outcome {
  lines: string[];
  error: SMTPError | undefined;
  /** Bytes whose write had completed (or failed) when the stream stopped. */
  written: number;
}

/** Writes `chunks` one at a time, each after the previous one's callback, stopping at the first error. */
async function feed(chunks: Iterable<Buffer | string>, options: LineSplitterOptions = {}): Promise<Outcome> {
  const splitter = new LineSplitter(options);
  const lines: string[] = [];
  let error: SMTPError | undefined;
  splitter.on("data", (line: Buffer) => lines.push(line.toString("latin1")));
  const done = new Promise<void>((resolve) => {
    splitter.on("end", resolve);
    splitter.on("close", resolve);
  });
  splitter.on("error", (err: SMTPError) => (error ??= err));
  let written = 0;
  for (const chunk of chunks) {
    if (error !== undefined || splitter.destroyed) break;
    await new Promise<void>((resolve) => splitter.write(chunk, () => resolve()));
    written += chunk.length;
  }
  if (error === undefined && !splitter.destroyed) splitter.end();
  await done;
  return { lines, error, written };
}

function* repeat(chunk: Buffer, times: number): Generator<Buffer> {
  for (let i = 0; i < times; i++) yield chunk;
}

test("splits CRLF-terminated lines and drops the line endings", async () => {
  const { lines, error } = await feed(["250-first\r\n250-second\r\n250 last\r\n"]);
  assert.is(error, undefined);
  assert.equal(lines, ["250-first", "250-second", "250 last"]);
});

test("accepts a bare LF as a line end", async () => {
  const { lines } = await feed(["220 a\n250 b\r\n250 c\n"]);
  assert.equal(lines, ["220 a", "250 b", "250 c"]);
});

test("keeps a bare CR inside a line", async () => {
  const { lines } = await feed(["250 a\rb\r\n"]);
  assert.equal(lines, ["250 a\rb"]);
});

test("emits an empty line for a lone line ending", async () => {
  const { lines } = await feed(["\r\n\n"]);
  assert.equal(lines, ["", ""]);
});

test("joins a line split across chunks, also when the CRLF itself is split", async () => {
  const { lines } = await feed(["25", "0 O", "K\r", "\n2", "21 bye\r", "\n"]);
  assert.equal(lines, ["250 OK", "221 bye"]);
});

test("accepts string chunks", async () => {
  const { lines } = await feed(["250 ", "ok\r\n"]);
  assert.equal(lines, ["250 ok"]);
});

test("accepts a line of exactly maxLineLength bytes", async () => {
  const { lines, error } = await feed(["x".repeat(10) + "\r\n"], { maxLineLength: 10 });
  assert.is(error, undefined);
  assert.equal(lines, ["x".repeat(10)]);
});

test("does not count a pending CR that may start the CRLF against the limit", async () => {
  const { lines, error } = await feed(["x".repeat(10) + "\r", "\n"], { maxLineLength: 10 });
  assert.is(error, undefined);
  assert.equal(lines, ["x".repeat(10)]);
});

test("fails with EPROTOCOL when a complete line is longer than maxLineLength", async () => {
  const { lines, error } = await feed(["250 ok\r\n" + "x".repeat(11) + "\r\n"], { maxLineLength: 10 });
  assert.ok(error instanceof SMTPError);
  assert.is(error.code, "EPROTOCOL");
  assert.equal(lines, ["250 ok"]);
});

test("fails with EPROTOCOL as soon as a partial line passes maxLineLength", async () => {
  const { error, written } = await feed(["x".repeat(6), "x".repeat(5)], { maxLineLength: 10 });
  assert.is(error?.code, "EPROTOCOL");
  assert.is(written, 11);
});

test("refuses a 32 MiB line within the first 128 KiB, with the default 64 KiB limit", async () => {
  const chunk = Buffer.alloc(64 * 1024, "a");
  const { error, written } = await feed(repeat(chunk, 512));
  assert.is(error?.code, "EPROTOCOL");
  assert.ok(written <= 2 * chunk.length, `${written} bytes were written before the error`);
});

test("splits 200 000 short lines fed in 64 KiB chunks", async () => {
  const data = Buffer.from("250-x\r\n".repeat(200_000));
  const { lines, error } = await feed(splitRandomly(randomFor("many lines"), data, 65536));
  assert.is(error, undefined);
  assert.is(lines.length, 200_000);
});

test("reports the bytes of an incomplete line in pendingBytes", async () => {
  const splitter = new LineSplitter();
  splitter.resume();
  await new Promise<void>((resolve) => splitter.write("220 ready\r\n250 inj", () => resolve()));
  assert.is(splitter.pendingBytes, 7);
  await new Promise<void>((resolve) => splitter.write("ected\r\n", () => resolve()));
  assert.is(splitter.pendingBytes, 0);
  splitter.destroy();
});

test("hands on a last line without a line ending when the input ends", async () => {
  const { lines, error } = await feed(["250 ok\r\n421 4.3.2 shutting", " down"]);
  assert.is(error, undefined);
  assert.equal(lines, ["250 ok", "421 4.3.2 shutting down"]);
});

test("drops the CR of a last line cut between its CR and LF", async () => {
  const { lines, error } = await feed(["250 ok\r\n221 bye\r"]);
  assert.is(error, undefined);
  assert.equal(lines, ["250 ok", "221 bye"]);
});

test("hands on nothing more when the input ends on a line ending", async () => {
  const { lines } = await feed(["250 ok\r\n"]);
  assert.equal(lines, ["250 ok"]);
});

test("still refuses an overlong last line without a line ending, as its bytes arrive", async () => {
  const { lines, error } = await feed(["250 ok\r\n", "x".repeat(11)], { maxLineLength: 10 });
  assert.is(error?.code, "EPROTOCOL");
  assert.equal(lines, ["250 ok"]);
});

/** The lines of `text` as a reader that takes a last line without its line ending sees them. */
function linesOf(text: string): string[] {
  const pieces = text.split("\n");
  const last = pieces.pop()!;
  if (last !== "") pieces.push(last);
  return pieces.map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
}

test("splits the same way whatever the chunk boundaries, with or without a last line ending (seeded)", async () => {
  const random = randomFor("any chunking");
  for (let run = 0; run < 300; run++) {
    const pieces: string[] = [];
    for (let i = random.int(0, 40); i > 0; i--) {
      pieces.push(Array.from({ length: random.int(0, 30) }, () => random.pick(["a", "\r", " ", "\u00e9", "-"])).join(""));
      pieces.push(random.pick(["\r\n", "\n"]));
    }
    // Half the inputs end on a line ending; the others stop anywhere: inside a line, or
    // between its CR and LF.
    const whole = pieces.join("");
    const text = random.chance(0.5) ? whole : whole.slice(0, random.int(0, whole.length));
    const { lines, error } = await feed(splitRandomly(random, Buffer.from(text, "latin1"), randomChunkLimit(random)));
    assert.is(error, undefined, `unexpected error${seedNote()}`);
    assert.equal(lines, linesOf(text), `lines differ for ${JSON.stringify(text)}${seedNote()}`);
  }
});

test("splits the same way whatever the chunk boundaries (fast-check)", async () => {
  const line = fc.string({ unit: fc.constantFrom("a", "b", "\r", " ", "."), maxLength: 40 });
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(line, fc.constantFrom("\r\n", "\n")), { maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }), async (entries, cuts) => {
      const text = entries.map(([body, end]) => body + end).join("");
      const data = Buffer.from(text, "latin1");
      const chunks: Buffer[] = [];
      for (let offset = 0, i = 0; offset < data.length; i++) {
        const size = cuts[i % cuts.length]!;
        chunks.push(data.subarray(offset, offset + size));
        offset += size;
      }
      const { lines, error } = await feed(chunks);
      // A body ending in CR followed by CRLF ends the same line; the splitter strips only one CR.
      const expected = entries.map(([body, end]) => (end === "\r\n" ? body : body.endsWith("\r") ? body.slice(0, -1) : body));
      return error === undefined && JSON.stringify(lines) === JSON.stringify(expected);
    }),
    { seed, numRuns: 300 },
  );
});

test.run();
