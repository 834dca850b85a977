import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { connect } from "node:net";
import DataStream from "nodemailer/lib/smtp-connection/data-stream.js";
import { SMTPStream } from "smtp-server/lib/smtp-stream.js";
import { BodyEncoding, DataEncoder } from "../../lib/stages/data-encoder.js";
import type { WindowEncoder } from "../../lib/stages/window-encoding.js";
import { encodeWindowWithIndexOf } from "../../lib/stages/window-indexof.js";
import { LineSplitter } from "../../lib/stages/line-splitter.js";
import { ReplyDecoder } from "../../lib/stages/reply-decoder.js";
import type { Reply } from "../../lib/types.js";
import { startServer } from "../helpers/server.js";
import { randomChunkLimit, randomFor, randomMessage, seed, seedNote, splitRandomly } from "../helpers/random.js";

interface Encoded {
  output: Buffer;
  /** The chunks as the encoder pushed them. */
  pushed: Buffer[];
  bytes: number;
}

/**
 * The DataEncoder stage with the window encoder in use (WebAssembly SIMD); given
 * `windowEncoder`, the same encoding driven directly with that one (the fallback).
 */
async function encode(chunks: Iterable<Buffer | string>, windowEncoder?: WindowEncoder): Promise<Encoded> {
  if (windowEncoder) {
    const encoding = new BodyEncoding(true, windowEncoder);
    const pushed: Buffer[] = [];
    for (const chunk of chunks) encoding.encode(typeof chunk === "string" ? Buffer.from(chunk) : chunk, (output) => pushed.push(output));
    pushed.push(encoding.finish()!);
    return { output: Buffer.concat(pushed), pushed, bytes: encoding.bytes };
  }
  const encoder = new DataEncoder();
  const pushed: Buffer[] = [];
  encoder.on("data", (chunk: Buffer) => pushed.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    encoder.on("end", resolve);
    encoder.on("error", reject);
  });
  for (const chunk of chunks) encoder.write(chunk);
  encoder.end();
  await ended;
  return { output: Buffer.concat(pushed), pushed, bytes: encoder.bytes };
}

/** Both window encoders: the property tests hold each to the reference. */
const windowEncoders: [string, WindowEncoder | undefined][] = [
  ["SIMD", undefined],
  ["indexOf", encodeWindowWithIndexOf],
];

const latin1 = (text: string): Buffer => Buffer.from(text, "latin1");
const show = (bytes: Buffer): string => JSON.stringify(bytes.toString("latin1"));

/** Every CRLF, bare CR and bare LF becomes CRLF. */
function normalise(input: Buffer): string {
  return input.toString("latin1").replace(/\r\n|\r|\n/g, "\r\n");
}

/** The encoding written the obvious, slow way: normalise, stuff, terminate. */
function reference(input: Buffer): Buffer {
  const stuffed = normalise(input).replace(/(^|\r\n)\./g, "$1..");
  const terminator = stuffed === "" || stuffed.endsWith("\r\n") ? ".\r\n" : "\r\n.\r\n";
  return latin1(stuffed + terminator);
}

/** What a server's DATA reader gives back: the normalised input, its last line ended. */
function received(input: Buffer): Buffer {
  const text = normalise(input);
  return latin1(text === "" || text.endsWith("\r\n") ? text : text + "\r\n");
}

/** The output's shape: no bare CR or LF, and the only end-of-data sequence is the terminator. */
function checkWireForm(output: Buffer, context: string): void {
  const text = output.toString("latin1");
  assert.not.ok(/\r(?!\n)|(?<!\r)\n/.test(text), `bare CR or LF in ${show(output)}${context}`);
  if (text === ".\r\n") return;
  assert.not.ok(text.startsWith(".\r\n"), `terminator at the start of ${show(output)}${context}`);
  assert.is(text.indexOf("\r\n.\r\n"), text.length - 5, `early end-of-data in ${show(output)}${context}`);
}

/** smtp-server's own DATA reader (the parser its connections use), driven directly. */
function smtpServerRead(chunks: Buffer[]): Promise<Buffer> {
  const parser = new SMTPStream();
  parser.oncommand = (_command: Buffer, next?: () => void) => next?.();
  const data = parser.startDataMode();
  const parts: Buffer[] = [];
  data.on("data", (chunk: Buffer) => parts.push(chunk));
  const ended = new Promise<Buffer>((resolve) => data.on("end", () => resolve(Buffer.concat(parts))));
  for (const chunk of chunks) parser.write(chunk);
  return ended;
}

const cases: [string, string][] = [
  ["", ".\r\n"],
  ["a", "a\r\n.\r\n"],
  ["a\r\n", "a\r\n.\r\n"],
  ["a\r\nb", "a\r\nb\r\n.\r\n"],
  ["\r\n", "\r\n.\r\n"],
  ["\u00e9\u00ff\u0080\r\n", "\u00e9\u00ff\u0080\r\n.\r\n"],
];

test("passes CRLF text through and adds the terminator", async () => {
  for (const [input, expected] of cases) assert.is((await encode([latin1(input)])).output.toString("latin1"), expected, JSON.stringify(input));
});

test("turns every bare LF and bare CR into CRLF", async () => {
  const table: [string, string][] = [
    ["a\n", "a\r\n.\r\n"],
    ["a\r", "a\r\n.\r\n"],
    ["\n", "\r\n.\r\n"],
    ["\r", "\r\n.\r\n"],
    ["a\nb\rc", "a\r\nb\r\nc\r\n.\r\n"],
    ["\r\r\n", "\r\n\r\n.\r\n"],
    ["\n\r", "\r\n\r\n.\r\n"],
    ["\n\n", "\r\n\r\n.\r\n"],
    ["\r\r", "\r\n\r\n.\r\n"],
  ];
  for (const [input, expected] of table) assert.is((await encode([latin1(input)])).output.toString("latin1"), expected, JSON.stringify(input));
});

test("doubles a dot at the start of every line, the first line included", async () => {
  const table: [string, string][] = [
    [".", "..\r\n.\r\n"],
    [".a\r\n", "..a\r\n.\r\n"],
    ["a\r\n.b\r\n", "a\r\n..b\r\n.\r\n"],
    ["a\r\n..\r\n", "a\r\n...\r\n.\r\n"],
    ["a.\r\nb .\r\n", "a.\r\nb .\r\n.\r\n"],
  ];
  for (const [input, expected] of table) assert.is((await encode([latin1(input)])).output.toString("latin1"), expected, JSON.stringify(input));
});

test("lets no end-of-data look-alike through (SMTP smuggling)", async () => {
  const table: [string, string][] = [
    ["a\r\n.\r\nMAIL FROM:<x@y>\r\n", "a\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n"],
    ["a\n.\r\nQUIT", "a\r\n..\r\nQUIT\r\n.\r\n"],
    ["a\r.\r\nQUIT", "a\r\n..\r\nQUIT\r\n.\r\n"],
    ["a\r\n.\nQUIT", "a\r\n..\r\nQUIT\r\n.\r\n"],
    ["a\r\n.\rQUIT", "a\r\n..\r\nQUIT\r\n.\r\n"],
    ["a\n.\nQUIT", "a\r\n..\r\nQUIT\r\n.\r\n"],
    ["a\r.\rQUIT", "a\r\n..\r\nQUIT\r\n.\r\n"],
  ];
  for (const [input, expected] of table) {
    const { output } = await encode([latin1(input)]);
    assert.is(output.toString("latin1"), expected, JSON.stringify(input));
    checkWireForm(output, "");
  }
});

test("treats a CRLF split between chunks as one line ending", async () => {
  const { output, pushed } = await encode([latin1("a\r"), latin1("\nb\r"), latin1("\n")]);
  assert.is(output.toString("latin1"), "a\r\nb\r\n.\r\n");
  assert.is(pushed.length, 4, "three unchanged chunks and the terminator");
});

test("completes a bare CR at the end of a chunk when the next chunk does not start with LF", async () => {
  assert.is((await encode([latin1("a\r"), latin1("b")])).output.toString("latin1"), "a\r\nb\r\n.\r\n");
  assert.is((await encode([latin1("a\r"), latin1(".b")])).output.toString("latin1"), "a\r\n..b\r\n.\r\n");
  assert.is((await encode([latin1("a\r"), latin1("\r")])).output.toString("latin1"), "a\r\n\r\n.\r\n");
});

test("stuffs a dot that starts a chunk at a line start", async () => {
  assert.is((await encode([latin1("a\r\n"), latin1(".b")])).output.toString("latin1"), "a\r\n..b\r\n.\r\n");
  assert.is((await encode([latin1("a\r"), latin1("\n"), latin1(".")])).output.toString("latin1"), "a\r\n..\r\n.\r\n");
  assert.is((await encode([latin1("a\n"), latin1(".")])).output.toString("latin1"), "a\r\n..\r\n.\r\n");
  assert.is((await encode([latin1("a"), latin1(".")])).output.toString("latin1"), "a.\r\n.\r\n");
});

test("passes a chunk that needs no change through without copying it", async () => {
  const chunk = latin1("Subject: hi\r\n\r\nline one\r\nline two.\r\n");
  const { pushed } = await encode([chunk]);
  assert.is(pushed[0]!.buffer, chunk.buffer);
  assert.is(pushed[0]!.byteOffset, chunk.byteOffset);
  assert.is(pushed[0]!.length, chunk.length);
});

test("accepts string chunks, encoded as UTF-8", async () => {
  const { output } = await encode(["Grüße\n", ".世界"]);
  assert.is(output.toString("utf8"), "Grüße\r\n..世界\r\n.\r\n");
});

test("counts every byte pushed in bytes, the terminator included", async () => {
  const encoder = new DataEncoder();
  encoder.resume();
  const ended = new Promise((resolve) => encoder.on("end", resolve));
  encoder.write(latin1("a\n.b"));
  assert.is(encoder.bytes, "a\r\n..b".length);
  encoder.end();
  await ended;
  assert.is(encoder.bytes, "a\r\n..b\r\n.\r\n".length);
});

for (const [name, windowEncoder] of windowEncoders) {
  test(`${name}: encodes one write larger than 64 KiB like the same bytes in small chunks`, async () => {
    const random = randomFor(`large write ${name}`);
    const input = Buffer.concat([randomMessage(random, 50_000), Buffer.alloc(300_000, "\n."), randomMessage(random, 50_000)]);
    const whole = await encode([input], windowEncoder);
    const pieces = await encode(splitRandomly(random, input, 4096), windowEncoder);
    assert.ok(whole.output.equals(pieces.output), `outputs differ${seedNote()}`);
    assert.ok(whole.output.equals(reference(input)), `output is not the reference encoding${seedNote()}`);
  });

  test(`${name}: gives the reference output for random messages, whatever the chunking (seeded)`, async () => {
    const random = randomFor(`any chunking ${name}`);
    for (let run = 0; run < 300; run++) {
      const input = randomMessage(random, random.chance(0.1) ? 300_000 : 2_000);
      const limit = randomChunkLimit(random);
      const { output, bytes } = await encode(splitRandomly(random, input, limit), windowEncoder);
      const context = ` (input ${input.length} bytes, chunks up to ${limit})${seedNote()}`;
      assert.ok(output.equals(reference(input)), `output differs for ${show(input.subarray(0, 200))}${context}`);
      assert.is(bytes, output.length, `bytes${context}`);
      checkWireForm(output, context);
    }
  });

  test(`${name}: gives the reference output for text with dots, bare LF, bare CR and UTF-8, whatever the chunking (seeded)`, async () => {
    const random = randomFor(`text ${name}`);
    const lines = ["Grüße aus Köln, ça va ? 世界\n", ".quoted line\r\n", "plain words here\r\n", "bare cr\r", "..two dots\n", ".\r\n", "x\r\n.\r\n"];
    for (let run = 0; run < 100; run++) {
      const parts: string[] = [];
      for (let i = random.int(0, 3000); i > 0; i--) parts.push(random.pick(lines));
      const input = Buffer.from(parts.join(""), "utf8");
      const limit = randomChunkLimit(random);
      const { output, bytes } = await encode(splitRandomly(random, input, limit), windowEncoder);
      const context = ` (input ${input.length} bytes, chunks up to ${limit})${seedNote()}`;
      assert.ok(output.equals(reference(input)), `output differs${context}`);
      assert.is(bytes, output.length, `bytes${context}`);
      checkWireForm(output, context);
    }
  });
}

for (const [name, windowEncoder] of windowEncoders) {
  test(`${name}: gives the reference output for any bytes and any chunking (fast-check)`, async () => {
    const byte = fc.oneof(fc.constantFrom(0x0d, 0x0a, 0x2e), fc.integer({ min: 0, max: 255 }));
    await fc.assert(
      fc.asyncProperty(fc.array(byte, { maxLength: 300 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), async (bytes, cuts) => {
        const input = Buffer.from(bytes);
        const chunks: Buffer[] = [];
        for (let offset = 0, i = 0; offset < input.length; i++) {
          chunks.push(input.subarray(offset, offset + cuts[i % cuts.length]!));
          offset += cuts[i % cuts.length]!;
        }
        const { output, bytes: counted } = await encode(chunks, windowEncoder);
        checkWireForm(output, ` for ${show(input)}`);
        return output.equals(reference(input)) && counted === output.length;
      }),
      { seed, numRuns: 1000 },
    );
  });
}

test("matches Nodemailer's DataStream byte for byte on non-empty messages", async () => {
  // Nodemailer ends an empty message with "\r\n.\r\n" (an empty line); we send ".\r\n".
  const random = randomFor("nodemailer");
  for (let run = 0; run < 100; run++) {
    const input = randomMessage(random, 5_000);
    if (input.length === 0) continue;
    const ours = await encode(splitRandomly(random, input, randomChunkLimit(random)));
    const theirs = await new Promise<Buffer>((resolve) => {
      const stream = new DataStream();
      const parts: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => parts.push(chunk));
      stream.on("end", () => resolve(Buffer.concat(parts)));
      stream.end(input);
    });
    assert.ok(ours.output.equals(theirs), `differs from Nodemailer for ${show(input.subarray(0, 200))}${seedNote()}`);
  }
});

test("decodes back to the normalised input through smtp-server's DATA reader", async () => {
  const random = randomFor("smtp-stream");
  for (let run = 0; run < 150; run++) {
    const input = randomMessage(random, random.chance(0.1) ? 200_000 : 3_000);
    const { output } = await encode(splitRandomly(random, input, randomChunkLimit(random)));
    const decoded = await smtpServerRead(splitRandomly(random, output, randomChunkLimit(random)));
    assert.ok(decoded.equals(received(input)), `smtp-server read ${show(decoded.subarray(0, 200))} for ${show(input.subarray(0, 200))}${seedNote()}`);
  }
});

test("delivers random messages through a real smtp-server as their normalised bytes", async () => {
  const random = randomFor("real server");
  const server = await startServer();
  const socket = connect(server.port, "127.0.0.1");
  const replies = socket.pipe(new LineSplitter()).pipe(new ReplyDecoder());
  const iterator = replies[Symbol.asyncIterator]() as AsyncIterator<Reply>;
  const expectReply = async (code: number, what: string): Promise<void> => {
    const { value, done } = await iterator.next();
    assert.not.ok(done, `connection ended waiting for ${what}`);
    assert.is(value.code, code, `${what}: ${value.code} ${value.text}`);
  };
  try {
    await expectReply(220, "greeting");
    socket.write("EHLO client.example\r\n");
    await expectReply(250, "EHLO");
    const inputs: Buffer[] = [];
    for (let run = 0; run < 25; run++) {
      const input = randomMessage(random, random.chance(0.2) ? 100_000 : 4_000);
      inputs.push(input);
      socket.write("MAIL FROM:<sender@example.com>\r\n");
      await expectReply(250, "MAIL FROM");
      socket.write("RCPT TO:<rcpt@example.org>\r\n");
      await expectReply(250, "RCPT TO");
      socket.write("DATA\r\n");
      await expectReply(354, "DATA");
      const encoder = new DataEncoder();
      encoder.on("data", (chunk: Buffer) => {
        if (!socket.write(chunk)) {
          encoder.pause();
          socket.once("drain", () => encoder.resume());
        }
      });
      const ended = new Promise((resolve) => encoder.on("end", resolve));
      for (const chunk of splitRandomly(random, input, randomChunkLimit(random))) encoder.write(chunk);
      encoder.end();
      await ended;
      await expectReply(250, "end of data");
    }
    socket.write("QUIT\r\n");
    await expectReply(221, "QUIT");
    assert.is(server.messages.length, inputs.length);
    inputs.forEach((input, i) => {
      assert.ok(server.messages[i]!.data.equals(received(input)), `message ${i} arrived as ${show(server.messages[i]!.data.subarray(0, 200))}${seedNote()}`);
    });
  } finally {
    await iterator.return?.();
    socket.destroy();
    await server.close();
  }
});

test.run();
