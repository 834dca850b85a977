/**
 * The window scan's two implementations (WebAssembly SIMD and the indexOf loop) must find
 * the same inserts and the same first bare CR for any bytes, any start and either mode.
 * The indexOf scan may record inserts past the first bare CR; the encoder drops those from
 * that CR's line on, so only the inserts before that line are compared.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { inserts, scanner, scanWithIndexOf, scanWithSimd, WINDOW } from "../../lib/stages/window-scan.js";
import { seed } from "../helpers/random.js";

type Scan = (chunk: Buffer, from: number, lineStart: boolean, dotStuffing: boolean) => number;

interface Found {
  bareCR: number;
  inserts: [number, number][];
}

function run(scan: Scan, chunk: Buffer, from: number, lineStart: boolean, dotStuffing: boolean): Found {
  inserts.count = 0;
  const bareCR = scan(chunk, from, lineStart, dotStuffing);
  const found: [number, number][] = [];
  for (let i = 0; i < inserts.count; i++) found.push([inserts.at[i]!, inserts.byte[i]!]);
  return { bareCR, inserts: found };
}

/** Both scanners' results, cut to what the encoder keeps: the inserts before the bare CR's line. */
function compare(chunk: Buffer, from: number, lineStart: boolean, dotStuffing: boolean): { simd: Found; indexOf: Found } {
  const simd = run(scanWithSimd!, chunk, from, lineStart, dotStuffing);
  const indexOf = run(scanWithIndexOf, chunk, from, lineStart, dotStuffing);
  const keep = (found: Found): Found => {
    const restart = found.bareCR === -1 ? Infinity : Math.max(from, chunk.lastIndexOf(0x0a, found.bareCR) + 1);
    return { bareCR: found.bareCR, inserts: found.inserts.filter(([at]) => at < restart) };
  };
  return { simd: keep(simd), indexOf: keep(indexOf) };
}

test("the WebAssembly SIMD scanner is the one in use", () => {
  assert.is(scanner, "wasm-simd", "dist/lib/stages/scan-window.wasm is built and loads");
  assert.ok(scanWithSimd);
});

test("known cases: bare LF, dot after LF, bare CR, CR in the last byte, the first byte", () => {
  const cases: [string, number, boolean, boolean, Found][] = [
    ["a\r\nb\r\n", 0, true, true, { bareCR: -1, inserts: [] }],
    ["a\nb", 0, true, true, { bareCR: -1, inserts: [[1, 0x0d]] }],
    ["\n.a", 0, true, true, { bareCR: -1, inserts: [[0, 0x0d], [1, 0x2e]] }],
    [".a\r\n.b", 0, true, true, { bareCR: -1, inserts: [[0, 0x2e], [4, 0x2e]] }],
    [".a\r\n.b", 0, true, false, { bareCR: -1, inserts: [] }],
    [".a", 0, false, true, { bareCR: -1, inserts: [] }],
    ["ab\rc", 0, true, true, { bareCR: 2, inserts: [] }],
    ["ab\r", 0, true, true, { bareCR: -1, inserts: [] }],
    ["\n\n", 1, true, true, { bareCR: -1, inserts: [[1, 0x0d]] }],
  ];
  for (const [text, from, lineStart, dotStuffing, expected] of cases) {
    const chunk = Buffer.from(text, "latin1");
    const { simd, indexOf } = compare(chunk, from, lineStart, dotStuffing);
    assert.equal(simd, expected, `SIMD on ${JSON.stringify(text)}`);
    assert.equal(indexOf, expected, `indexOf on ${JSON.stringify(text)}`);
  }
});

/** Bytes rich in what matters (CR, LF, dot), in runs long enough to cross 16-byte steps. */
const piece = fc.oneof(
  fc.constantFrom("\r\n", "\r\n.", "\n", "\r", ".", "..", "\n.", "\r.\r\n", "x", "abcdefghijklmnopqrstuvwxyz0123").map((s) => Buffer.from(s, "latin1")),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b)),
);
const window = fc.array(piece, { maxLength: 60 }).map((pieces) => Buffer.concat(pieces).subarray(0, WINDOW));

test("both scanners agree on random windows, starts and modes (fast-check)", () => {
  fc.assert(
    fc.property(window, fc.boolean(), fc.boolean(), fc.boolean(), (chunk, skipFirst, lineStart, dotStuffing) => {
      if (chunk.length === 0) return;
      // The encoder starts at 1 only when the first byte is the LF of a CR sent before.
      const from = skipFirst && chunk[0] === 0x0a ? 1 : 0;
      const { simd, indexOf } = compare(chunk, from, lineStart || from === 1, dotStuffing);
      assert.equal(simd, indexOf, JSON.stringify(chunk.toString("latin1")));
    }),
    { seed, numRuns: 3000 },
  );
});

test("both scanners agree on full 64 KiB windows of text with a few faults at random places", () => {
  const line = Buffer.from("The quick brown fox jumps over the lazy dog, 0123456789 abcdefghij\r\n");
  const base = Buffer.alloc(WINDOW);
  for (let at = 0; at < WINDOW; at += line.length) line.copy(base, at);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(WINDOW - 1), fc.constantFrom(0x0d, 0x0a, 0x2e, 0x41)), { maxLength: 6 }), fc.boolean(), (faults, dotStuffing) => {
      const chunk = Buffer.from(base);
      for (const [at, byte] of faults) chunk[at] = byte;
      const { simd, indexOf } = compare(chunk, 0, true, dotStuffing);
      assert.equal(simd, indexOf, `faults ${JSON.stringify(faults)}`);
    }),
    { seed, numRuns: 300 },
  );
});

test.run();
