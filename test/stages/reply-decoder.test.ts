import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { ReplyDecoder, type ReplyDecoderOptions } from "../../lib/stages/reply-decoder.js";
import { LineSplitter } from "../../lib/stages/line-splitter.js";
import { SMTPError } from "../../lib/errors.js";
import type { Reply } from "../../lib/types.js";
import { randomChunkLimit, randomFor, seed, seedNote, splitRandomly, type Random } from "../helpers/random.js";

interface Outcome {
  replies: Reply[];
  error: SMTPError | undefined;
  /** Lines whose write had completed (or failed) when the stream stopped. */
  written: number;
}

/** Writes one line at a time, each after the previous one's callback, stopping at the first error. */
async function decode(lines: Iterable<Buffer | string>, options: ReplyDecoderOptions = {}): Promise<Outcome> {
  const decoder = new ReplyDecoder(options);
  const replies: Reply[] = [];
  let error: SMTPError | undefined;
  decoder.on("data", (reply: Reply) => replies.push(reply));
  const done = new Promise<void>((resolve) => {
    decoder.on("end", resolve);
    decoder.on("close", resolve);
  });
  decoder.on("error", (err: SMTPError) => (error ??= err));
  let written = 0;
  for (const line of lines) {
    if (error !== undefined || decoder.destroyed) break;
    await new Promise<void>((resolve) => decoder.write(typeof line === "string" ? Buffer.from(line) : line, () => resolve()));
    written++;
  }
  if (error === undefined && !decoder.destroyed) decoder.end();
  await done;
  return { replies, error, written };
}

/** Bytes through LineSplitter into ReplyDecoder, as the connection wires them. */
async function decodeBytes(chunks: Buffer[]): Promise<{ replies: Reply[]; error: SMTPError | undefined }> {
  const splitter = new LineSplitter();
  const decoder = new ReplyDecoder();
  const replies: Reply[] = [];
  let error: SMTPError | undefined;
  splitter.on("error", (err: SMTPError) => {
    error ??= err;
    decoder.destroy();
  });
  decoder.on("error", (err: SMTPError) => (error ??= err));
  decoder.on("data", (reply: Reply) => replies.push(reply));
  const done = new Promise<void>((resolve) => {
    decoder.on("end", resolve);
    decoder.on("close", resolve);
  });
  splitter.pipe(decoder);
  for (const chunk of chunks) splitter.write(chunk);
  splitter.end();
  await done;
  return { replies, error };
}

async function expectProtocolError(lines: string[], options: ReplyDecoderOptions = {}): Promise<Outcome> {
  const outcome = await decode(lines, options);
  assert.ok(outcome.error instanceof SMTPError, `no error for ${JSON.stringify(lines)}`);
  assert.is(outcome.error.code, "EPROTOCOL");
  return outcome;
}

test("decodes a one-line reply", async () => {
  const { replies, error } = await decode(["250 OK"]);
  assert.is(error, undefined);
  assert.equal(replies, [{ code: 250, lines: ["OK"], text: "OK" }]);
  assert.not.ok("enhancedCode" in replies[0]!);
});

test("decodes a multi-line reply into one Reply", async () => {
  const { replies } = await decode(["250-smtp.example.com", "250-PIPELINING", "250 SIZE 1000"]);
  assert.equal(replies, [{ code: 250, lines: ["smtp.example.com", "PIPELINING", "SIZE 1000"], text: "smtp.example.com\nPIPELINING\nSIZE 1000" }]);
});

test("decodes consecutive replies in order", async () => {
  const { replies } = await decode(["250 a", "354 go", "550-x", "550 y"]);
  assert.equal(
    replies.map((reply) => [reply.code, reply.text]),
    [
      [250, "a"],
      [354, "go"],
      [550, "x\ny"],
    ],
  );
});

test("takes the enhanced status code from the first line", async () => {
  const { replies } = await decode(["550-5.1.1 User unknown", "550 5.1.1 really"]);
  assert.is(replies[0]!.enhancedCode, "5.1.1");
  assert.equal(replies[0]!.lines, ["5.1.1 User unknown", "5.1.1 really"]);
});

test("accepts an enhanced status code alone on the line", async () => {
  const { replies } = await decode(["250 2.0.0"]);
  assert.is(replies[0]!.enhancedCode, "2.0.0");
});

test("finds no enhanced status code of class 3 or run into other text", async () => {
  const { replies } = await decode(["354 3.0.0 go ahead", "250 2.0.0x", "250 OK 2.0.0", "250 2.0"]);
  assert.equal(
    replies.map((reply) => reply.enhancedCode),
    [undefined, undefined, undefined, undefined],
  );
});

test("accepts a bare code line and a code with a space and no text", async () => {
  const { replies, error } = await decode(["250", "250 ", "250-", "250"]);
  assert.is(error, undefined);
  assert.equal(replies, [
    { code: 250, lines: [""], text: "" },
    { code: 250, lines: [""], text: "" },
    { code: 250, lines: ["", ""], text: "\n" },
  ]);
});

test("decodes UTF-8 text", async () => {
  const { replies } = await decode([Buffer.from("250 Grüße, 世界")]);
  assert.is(replies[0]!.text, "Grüße, 世界");
});

test("accepts string lines", async () => {
  const decoder = new ReplyDecoder();
  const replies: Reply[] = [];
  decoder.on("data", (reply: Reply) => replies.push(reply));
  const ended = new Promise((resolve) => decoder.on("end", resolve));
  decoder.end("220 ready");
  await ended;
  assert.is(replies[0]!.code, 220);
});

test("fails with EPROTOCOL on a line that does not start with three digits", async () => {
  for (const line of ["25", "2x0 x", "abc", " 250 OK", "OK"]) await expectProtocolError([line]);
});

test("skips blank lines between and inside replies, as Nodemailer does", async () => {
  const { replies, error } = await decode(["", "220 hi", "  ", "250-a", "\t", "250 b", "\r", ""]);
  assert.is(error, undefined);
  assert.equal(
    replies.map((reply) => [reply.code, reply.lines]),
    [
      [220, ["hi"]],
      [250, ["a", "b"]],
    ],
  );
});

test("counts blank lines against the line and byte limits of the reply in progress", async () => {
  await expectProtocolError(["", "", "", "250 ok"], { maxLines: 3 });
  const { error } = await decode(["", "", "250 ok", "", "", "250 ok"], { maxLines: 3 });
  assert.is(error, undefined, "the count starts again after each reply");
  await expectProtocolError([" ".repeat(30), "250 ok"], { maxReplyBytes: 36 });
});

test("keeps bytes that are not UTF-8 as latin1, line by line", async () => {
  const { replies } = await decode([Buffer.from("250-Gr\xfc\xdfe", "latin1"), Buffer.from("250 Grüße")]);
  assert.equal(replies[0]!.lines, ["Grüße", "Grüße"]);
  assert.is(Buffer.from(replies[0]!.lines[0]!, "latin1").toString("latin1"), "Gr\xfc\xdfe");
});

test("fails with EPROTOCOL on a code outside 200 to 599", async () => {
  for (const line of ["199 x", "100 x", "000 x", "600 x", "999 x"]) await expectProtocolError([line]);
});

test("fails with EPROTOCOL on a separator other than space or hyphen", async () => {
  for (const line of ["250x", "250\tOK", "250_OK", "2500"]) await expectProtocolError([line]);
});

test("fails with EPROTOCOL when the code changes inside a multi-line reply", async () => {
  const { replies } = await expectProtocolError(["250 ok", "250-a", "251 b"]);
  assert.is(replies.length, 1);
});

test("fails with EPROTOCOL on a NUL byte in a line", async () => {
  await expectProtocolError(["250 a\u0000b"]);
});

test("accepts exactly maxLines lines and fails with EPROTOCOL on one more", async () => {
  const lines = (n: number): string[] => [...Array.from({ length: n - 1 }, () => "250-x"), "250 end"];
  const accepted = await decode(lines(5), { maxLines: 5 });
  assert.is(accepted.error, undefined);
  assert.is(accepted.replies[0]!.lines.length, 5);
  await expectProtocolError(lines(6), { maxLines: 5 });
});

test("accepts exactly maxReplyBytes and fails with EPROTOCOL on one byte more", async () => {
  // Each line counts its length plus 2 for the CRLF: "250-xxxx" is 8 + 2 = 10 bytes.
  const accepted = await decode(["250-xxxx", "250 xxxx"], { maxReplyBytes: 20 });
  assert.is(accepted.error, undefined);
  const refused = await expectProtocolError(["250-xxxx", "250 xxxxx"], { maxReplyBytes: 20 });
  assert.is(refused.written, 2);
});

test("refuses 100 000 continuation lines at the line that crosses the default 4 096", async () => {
  function* lines(): Generator<Buffer> {
    const line = Buffer.from("250-x");
    for (let i = 0; i < 100_000; i++) yield line;
  }
  const { error, written } = await decode(lines());
  assert.is(error?.code, "EPROTOCOL");
  assert.is(written, 4097);
});

test("refuses a reply over the default 1 MiB at the line that crosses it", async () => {
  const line = Buffer.from("250-" + "x".repeat(1018)); // 1024 bytes with its CRLF
  function* lines(): Generator<Buffer> {
    for (let i = 0; i < 4000; i++) yield line;
  }
  const { error, written } = await decode(lines());
  assert.is(error?.code, "EPROTOCOL");
  assert.is(written, 1025);
});

test("reports the lines held of an incomplete multi-line reply in pendingLines", async () => {
  const decoder = new ReplyDecoder();
  decoder.resume();
  const write = (line: string): Promise<void> => new Promise((resolve) => decoder.write(Buffer.from(line), () => resolve()));
  await write("220 ready");
  assert.is(decoder.pendingLines, 0);
  await write("250-injected");
  await write("250-more");
  assert.is(decoder.pendingLines, 2);
  await write("250 end");
  assert.is(decoder.pendingLines, 0);
  decoder.destroy();
});

test("fails with EPROTOCOL when the input ends inside a multi-line reply", async () => {
  const { replies } = await expectProtocolError(["250 ok", "250-a", "250-b"]);
  assert.is(replies.length, 1);
});

/** A valid reply and its wire form, with any code, line count and text (UTF-8 included). */
function randomReply(random: Random): { reply: Reply; wire: string } {
  const code = random.int(200, 599);
  const count = random.chance(0.7) ? 1 : random.int(2, 12);
  const lines: string[] = [];
  const alphabet = ["a", "Z", " ", "-", ".", "=", "é", "世", "0", "5"];
  for (let i = 0; i < count; i++) lines.push(Array.from({ length: random.int(0, 40) }, () => random.pick(alphabet)).join(""));
  if (random.chance(0.3)) lines[0] = `${Math.floor(code / 100)}.${random.int(0, 7)}.${random.int(0, 99)} ${lines[0]}`;
  const eol = (): string => (random.chance(0.9) ? "\r\n" : "\n");
  const wire = lines.map((text, i) => (i === lines.length - 1 && text === "" && random.chance(0.5) ? `${code}` : `${code}${i === lines.length - 1 ? " " : "-"}${text}`) + eol()).join("");
  const reply: Reply = { code, lines, text: lines.join("\n") };
  const enhanced = /^([245]\.\d{1,3}\.\d{1,3})(?=\s|$)/.exec(lines[0]!);
  if (enhanced) reply.enhancedCode = enhanced[1]!;
  return { reply, wire };
}

test("round-trips random valid replies through LineSplitter and ReplyDecoder, whatever the chunking (seeded)", async () => {
  const random = randomFor("reply round trip");
  for (let run = 0; run < 200; run++) {
    const generated = Array.from({ length: random.int(1, 10) }, () => randomReply(random));
    const bytes = Buffer.from(generated.map((g) => g.wire).join(""));
    const { replies, error } = await decodeBytes(splitRandomly(random, bytes, randomChunkLimit(random)));
    assert.is(error, undefined, `unexpected ${error?.message}${seedNote()}`);
    assert.equal(replies, generated.map((g) => g.reply), `replies differ${seedNote()}`);
  }
});

test("decodes a last reply sent without its line ending, through LineSplitter, as the connection does", async () => {
  const { replies, error } = await decodeBytes([Buffer.from("250 ok\r\n421-4.3.2 going\r\n421 4.3.2 Shutting"), Buffer.from(" down")]);
  assert.is(error, undefined);
  assert.equal(
    replies.map((r) => [r.code, r.lines]),
    [
      [250, ["ok"]],
      [421, ["4.3.2 going", "4.3.2 Shutting down"]],
    ],
  );
});

test("fails with EPROTOCOL when the input ends in a fragment that is not a reply, or inside a multi-line reply", async () => {
  for (const wire of ["250 ok\r\n55", "250 ok\r\n250-a\r\n250-b"]) {
    const { replies, error } = await decodeBytes([Buffer.from(wire)]);
    assert.is(error?.code, "EPROTOCOL", JSON.stringify(wire));
    assert.equal(replies.map((r) => r.code), [250], JSON.stringify(wire));
  }
});

test("round-trips random valid replies whose last line ending is missing or cut, whatever the chunking (seeded)", async () => {
  const random = randomFor("reply round trip without the last line ending");
  for (let run = 0; run < 200; run++) {
    const generated = Array.from({ length: random.int(1, 6) }, () => randomReply(random));
    const wire = generated.map((g) => g.wire).join("");
    // Without its LF, or without its whole CRLF: the server closed right after its last reply.
    const cut = wire.endsWith("\r\n") ? random.int(1, 2) : 1;
    const bytes = Buffer.from(wire.slice(0, wire.length - cut));
    const { replies, error } = await decodeBytes(splitRandomly(random, bytes, randomChunkLimit(random)));
    assert.is(error, undefined, `unexpected ${error?.message} for ${JSON.stringify(bytes.toString())}${seedNote()}`);
    assert.equal(replies, generated.map((g) => g.reply), `replies differ for ${JSON.stringify(bytes.toString())}${seedNote()}`);
  }
});

test("round-trips random valid replies whatever the chunking (fast-check)", async () => {
  const text = fc.string({ unit: fc.constantFrom("a", " ", "-", "é", "1", "."), maxLength: 30 });
  const reply = fc.record({ code: fc.integer({ min: 200, max: 599 }), lines: fc.array(text, { minLength: 1, maxLength: 6 }) });
  await fc.assert(
    fc.asyncProperty(fc.array(reply, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 40 }), async (generated, cut) => {
      const wire = generated.map(({ code, lines }) => lines.map((line, i) => `${code}${i === lines.length - 1 ? " " : "-"}${line}\r\n`).join("")).join("");
      const bytes = Buffer.from(wire);
      const chunks: Buffer[] = [];
      for (let offset = 0; offset < bytes.length; offset += cut) chunks.push(bytes.subarray(offset, offset + cut));
      const { replies, error } = await decodeBytes(chunks);
      return error === undefined && JSON.stringify(replies.map((r) => [r.code, r.lines])) === JSON.stringify(generated.map((g) => [g.code, g.lines]));
    }),
    { seed, numRuns: 300 },
  );
});

test.run();
