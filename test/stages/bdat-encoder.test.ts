/**
 * BdatEncoder and its ChunkCutter: with `chunkSize`, the frames depend only on the bytes,
 * never on how they were written (issue 10: 64 MiB in 256-byte writes must not become
 * 262,145 commands).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { BdatEncoder, ChunkCutter } from "../../lib/stages/bdat-encoder.js";
import { randomChunkLimit, randomFor, randomMessage, seedNote, splitRandomly } from "../helpers/random.js";

interface Framed {
  wire: Buffer;
  announced: [number, boolean][];
  bytes: number;
}

async function frame(chunks: Iterable<Buffer | string>, chunkSize?: number): Promise<Framed> {
  const announced: [number, boolean][] = [];
  const encoder = new BdatEncoder({ chunkSize, onChunk: (size, last) => announced.push([size, last]) });
  const out: Buffer[] = [];
  encoder.on("data", (chunk: Buffer) => out.push(chunk));
  const ended = new Promise((resolve) => encoder.once("end", resolve));
  for (const chunk of chunks) encoder.write(chunk);
  encoder.end();
  await ended;
  return { wire: Buffer.concat(out), announced, bytes: encoder.bytes };
}

/** The frames of `body` cut at `size` written out the obvious way. */
function reference(body: Buffer, size: number): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  for (; body.length - offset >= size; offset += size) parts.push(Buffer.from(`BDAT ${size}\r\n`), body.subarray(offset, offset + size));
  parts.push(Buffer.from(`BDAT ${body.length - offset} LAST\r\n`), body.subarray(offset));
  return Buffer.concat(parts);
}

test("without chunkSize each write is one frame, and the end is BDAT 0 LAST", async () => {
  const framed = await frame([Buffer.from("abc"), Buffer.alloc(0), "xy"]);
  assert.is(framed.wire.toString(), "BDAT 3\r\nabcBDAT 2\r\nxyBDAT 0 LAST\r\n");
  assert.equal(framed.announced, [[3, false], [2, false], [0, true]]);
  assert.is(framed.bytes, 5);
});

test("with chunkSize, writes are joined and cut into chunks of exactly that size; the rest goes with LAST", async () => {
  const framed = await frame(["ab", "cdefg", "h", "ij"], 4);
  assert.is(framed.wire.toString(), "BDAT 4\r\nabcdBDAT 4\r\nefghBDAT 2 LAST\r\nij");
  assert.equal(framed.announced, [[4, false], [4, false], [2, true]]);
  assert.is(framed.bytes, 10);
  assert.is((await frame(["abcd"], 4)).wire.toString(), "BDAT 4\r\nabcdBDAT 0 LAST\r\n");
  assert.is((await frame([], 4)).wire.toString(), "BDAT 0 LAST\r\n");
});

test("refuses a chunkSize that is not a positive integer", () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new BdatEncoder({ chunkSize: bad }), /chunkSize/);
});

test("any slicing of random bodies gives the same frames (seeded)", async () => {
  const random = randomFor("bdat-encoder slicing");
  for (let round = 0; round < 60; round++) {
    const body = randomMessage(random, round < 50 ? 4000 : 300_000);
    const size = random.pick([1, 3, 64, 1000, 16 * 1024, 100_000]);
    const chunks = splitRandomly(random, body, randomChunkLimit(random));
    const framed = await frame(chunks, size);
    assert.ok(framed.wire.equals(reference(body, size)), `round ${round}: ${body.length} bytes in ${chunks.length} writes, chunks of ${size}${seedNote()}`);
    assert.is(framed.announced.length, Math.floor(body.length / size) + 1);
    assert.is(framed.bytes, body.length);
  }
});

test("ChunkCutter gives back every byte in order, in pieces that add up to its size (fast-check)", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 40_000 }), { maxLength: 12 }), fc.integer({ min: 1, max: 70_000 }), (lengths, size) => {
      const cutter = new ChunkCutter(size);
      const given: Buffer[] = [];
      const taken: Buffer[] = [];
      let n = 0;
      for (const length of lengths) {
        const piece = Buffer.alloc(length);
        for (let i = 0; i < length; i += 997) piece[i] = n++ & 0xff;
        given.push(piece);
        cutter.add(piece);
        while (cutter.length >= size) {
          const parts = cutter.take();
          assert.is(parts.reduce((sum, part) => sum + part.length, 0), size);
          taken.push(...parts);
        }
      }
      const rest = cutter.take();
      assert.is(cutter.length, 0);
      assert.ok(Buffer.concat([...taken, ...rest]).equals(Buffer.concat(given)));
    }),
  );
});

test.run();
