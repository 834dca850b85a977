/**
 * The window encoders (WebAssembly SIMD and the indexOf scan) must give the same bytes as
 * the encoding written the obvious, slow way, for any window, any byte before it and
 * either mode; and hand back the very window when nothing changes.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { WINDOW, type WindowEncoder } from "../../lib/stages/window-encoding.js";
import { encodeWindowWithSimd } from "../../lib/stages/window-simd.js";
import { encodeWindowWithIndexOf } from "../../lib/stages/window-indexof.js";
import { windowEncoder } from "../../lib/stages/data-encoder.js";
import { seed } from "../helpers/random.js";

const CR = 0x0d;
const LF = 0x0a;

const encoders: [string, WindowEncoder][] = [
  ["SIMD", encodeWindowWithSimd!],
  ["indexOf", encodeWindowWithIndexOf],
];

/**
 * The window's encoding the obvious way: each byte judged with the one before it. A CR
 * in the last byte stays as it is (the next window decides).
 */
function reference(chunk: Buffer, previous: number, dotStuffing: boolean): Buffer {
  const out: number[] = [];
  for (let i = 0; i < chunk.length; i++) {
    const before = i === 0 ? previous : chunk[i - 1]!;
    const byte = chunk[i]!;
    if (before === CR && byte !== LF) out.push(LF);
    if (byte === LF && before !== CR) out.push(CR);
    if (dotStuffing && byte === 0x2e && (before === LF || before === CR)) out.push(0x2e);
    out.push(byte);
  }
  return Buffer.from(out);
}

function check(chunk: Buffer, previous: number, dotStuffing: boolean): void {
  const expected = reference(chunk, previous, dotStuffing);
  for (const [name, encode] of encoders) {
    const output = encode(chunk, previous, dotStuffing);
    const context = `${name} on ${JSON.stringify(chunk.subarray(0, 120).toString("latin1"))} (${chunk.length} bytes) after ${previous}, stuffing ${dotStuffing}`;
    assert.ok(output.equals(expected), context);
    if (expected.equals(chunk)) assert.is(output, chunk, `unchanged window handed back as is: ${context}`);
  }
}

test("the WebAssembly SIMD encoder is the one in use", () => {
  assert.is(windowEncoder, "wasm-simd", "dist/lib/stages/encode-window.wasm is built and loads");
  assert.ok(encodeWindowWithSimd);
});

test("known cases: bare LF, dot after LF, bare CR, dot after a bare CR, CR in the last byte, the first byte", () => {
  const cases: [string, number, boolean, string][] = [
    ["a\r\nb\r\n", LF, true, "a\r\nb\r\n"],
    ["a\nb", LF, true, "a\r\nb"],
    ["\n.a", LF, true, "\r\n..a"],
    [".a\r\n.b", LF, true, "..a\r\n..b"],
    [".a\r\n.b", LF, false, ".a\r\n.b"],
    [".a", 0x78, true, ".a"],
    ["ab\rc", LF, true, "ab\r\nc"],
    ["ab\r.c", LF, true, "ab\r\n..c"],
    ["ab\r.c", LF, false, "ab\r\n.c"],
    ["ab\r", LF, true, "ab\r"],
    ["\nx", CR, true, "\nx"],
    [".x", CR, true, "\n..x"],
    ["x", CR, true, "\nx"],
    ["\n\n", LF, true, "\r\n\r\n"],
  ];
  for (const [text, previous, dotStuffing, expected] of cases) {
    const chunk = Buffer.from(text, "latin1");
    for (const [name, encode] of encoders) {
      assert.is(encode(chunk, previous, dotStuffing).toString("latin1"), expected, `${name} on ${JSON.stringify(text)}`);
    }
    check(chunk, previous, dotStuffing);
  }
});

/** Bytes rich in what matters (CR, LF, dot), in runs long enough to cross 16- and 64-byte steps. */
const piece = fc.oneof(
  fc.constantFrom("\r\n", "\r\n.", "\n", "\r", ".", "..", "\n.", "\r.", "\r.\r\n", "x", "abcdefghijklmnopqrstuvwxyz0123", "é ü 世界 ".repeat(3)).map((s) => Buffer.from(s, "utf8")),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b)),
  fc.integer({ min: 1, max: 200 }).map((n) => Buffer.alloc(n, "lorem ipsum dolor\r\n")),
);
const window = fc.array(piece, { maxLength: 60 }).map((pieces) => Buffer.concat(pieces).subarray(0, WINDOW));
const previous = fc.constantFrom(LF, CR, 0x2e, 0x78, 0x00, 0xff);

test("both encoders give the reference bytes for random windows, previous bytes and modes (fast-check)", () => {
  fc.assert(
    fc.property(window, previous, fc.boolean(), fc.nat(15), (bytes, before, dotStuffing, offset) => {
      if (bytes.length <= offset) return;
      // Any alignment of the window in its ArrayBuffer.
      check(bytes.subarray(offset), before, dotStuffing);
    }),
    { seed, numRuns: 3000 },
  );
});

test("both encoders give the reference bytes for full 64 KiB windows with faults at random places", () => {
  const line = Buffer.from("The quick brown fox jumps over the lazy dog, 0123456789 abcdefghij\r\n");
  const base = Buffer.alloc(WINDOW);
  for (let at = 0; at < WINDOW; at += line.length) line.copy(base, at);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(WINDOW - 1), fc.constantFrom(CR, LF, 0x2e, 0x41)), { maxLength: 6 }), previous, fc.boolean(), (faults, before, dotStuffing) => {
      const chunk = Buffer.from(base);
      for (const [at, byte] of faults) chunk[at] = byte;
      check(chunk, before, dotStuffing);
    }),
    { seed, numRuns: 300 },
  );
});

test("both encoders give the reference bytes for the worst windows: every byte a bare line end or a dot after one", () => {
  for (const unit of ["\r.", "\n", "\r", "\n.", ".\r", "\r\r\n."]) {
    const chunk = Buffer.alloc(WINDOW, unit, "latin1");
    for (const before of [LF, CR, 0x2e]) for (const dotStuffing of [true, false]) check(chunk, before, dotStuffing);
  }
});

test.run();
