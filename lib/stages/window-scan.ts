/**
 * The fast path of the DATA encoding: in one window of at most 64 KiB, find what must be
 * inserted (a CR before each bare LF, a dot before each dot that starts a line) and where
 * the first bare CR is, which the encoder's careful scan then takes over.
 *
 * Two implementations with one contract:
 * - scan-window.wat, built to WebAssembly with 128-bit SIMD: it compares 16 bytes at a
 *   time, so text that needs no change costs a copy of the window into its memory and a
 *   few vector instructions per 16 bytes, with no call per line.
 * - scanWithIndexOf, in TypeScript: one native `indexOf(LF)` per line, used where the
 *   WebAssembly module cannot be loaded (a runtime without SIMD, or the .wasm missing).
 * Both append to the one insert list below; the tests hold them to the same results.
 *
 * The insert list and the scratch space are shared by every encoder in the process: a
 * window is encoded synchronously from its scan to its output, so no two encodings ever
 * use them at once.
 */
import { readFileSync } from "node:fs";

export const WINDOW = 64 * 1024;
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
/** At most 2 inserts per input byte (a CR or LF, then a dot), plus 2. */
const INSERT_CAPACITY = 2 * WINDOW + 2;

interface ScanModule {
  memory: WebAssembly.Memory;
  insertAt: WebAssembly.Global;
  insertByte: WebAssembly.Global;
  count: WebAssembly.Global;
  scan(length: number, from: number, lineStart: number, stuff: number): number;
}

function loadScanModule(): ScanModule | undefined {
  try {
    const bytes = readFileSync(new URL("./scan-window.wasm", import.meta.url));
    return new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as ScanModule;
  } catch {
    return undefined;
  }
}

const wasm = loadScanModule();

/** Which scanner `scanLineFeeds` is: for the benchmarks' and tests' records. */
export const scanner: "wasm-simd" | "indexOf" = wasm ? "wasm-simd" : "indexOf";

/** Offsets where a byte is to be inserted (ascending), the bytes, and how many there are. */
export const inserts = {
  at: wasm ? new Int32Array(wasm.memory.buffer, wasm.insertAt.value as number, INSERT_CAPACITY) : new Int32Array(INSERT_CAPACITY),
  byte: wasm ? new Uint8Array(wasm.memory.buffer, wasm.insertByte.value as number, INSERT_CAPACITY) : new Uint8Array(INSERT_CAPACITY),
  count: 0,
};

/** Where the window is copied: the WebAssembly module's input, or a scratch copy for the indexOf scan. */
const scratch = wasm ? Buffer.from(wasm.memory.buffer, 0, WINDOW) : Buffer.allocUnsafeSlow(WINDOW);

export function insert(position: number, byte: number): void {
  inserts.at[inserts.count] = position;
  inserts.byte[inserts.count++] = byte;
}

/**
 * The WebAssembly scan of `chunk` (at most WINDOW bytes) from `from`. `lineStart`: the
 * byte at `from` starts a line. Returns the offset of the first bare CR, or -1 (a CR in
 * the last byte is not bare yet: its LF may come with the next chunk).
 */
function scanWithWasm(chunk: Buffer, from: number, lineStart: boolean, dotStuffing: boolean): number {
  const module = wasm!;
  scratch.set(chunk);
  module.count.value = inserts.count;
  const bareCR = module.scan(chunk.length, from, lineStart ? 1 : 0, dotStuffing ? 1 : 0);
  inserts.count = module.count.value as number;
  return bareCR;
}

/**
 * The same scan in TypeScript, one `indexOf` per line: a CR goes before each bare LF, a
 * dot before each dot that starts a line. A bare CR cannot be found that way, so the CR
 * of every CRLF seen is erased in a scratch copy, and one more `indexOf(CR)` over the copy
 * finds any CR left. Inserts past the first bare CR may be recorded too; the caller drops
 * those from that CR's line on.
 */
export function scanWithIndexOf(chunk: Buffer, from: number, lineStart: boolean, dotStuffing: boolean): number {
  const stuffed = dotStuffing ? DOT : -1;
  if (lineStart && chunk[from] === stuffed) insert(from, DOT);
  let copy: Buffer | undefined;
  if (chunk.indexOf(CR, from) !== -1) {
    copy = chunk.length === WINDOW ? scratch : scratch.subarray(0, chunk.length);
    copy.set(chunk);
  }
  for (let lf = chunk.indexOf(LF, from); lf !== -1; lf = chunk.indexOf(LF, lf + 1)) {
    if (chunk[lf - 1] === CR) copy![lf - 1] = 0; // a CR exists, so there is a copy
    else insert(lf, CR);
    if (chunk[lf + 1] === stuffed) insert(lf + 1, DOT);
  }
  if (copy === undefined) return -1;
  const bareCR = copy.indexOf(CR, from);
  return bareCR === chunk.length - 1 ? -1 : bareCR;
}

/** Also for the tests, which compare the two scanners; undefined when it could not be loaded. */
export const scanWithSimd = wasm ? scanWithWasm : undefined;

export const scanLineFeeds = scanWithSimd ?? scanWithIndexOf;
