/**
 * The DATA encoding of a window in TypeScript, with native `indexOf` and no loop over
 * bytes: the fallback where the WebAssembly module (window-simd.ts) cannot be loaded, and
 * the same bytes out (the tests hold both to it).
 *
 * First one `indexOf(LF)` per line records what must be inserted: a CR before each bare
 * LF, a dot before each dot that starts a line. A bare CR cannot be found that way, so the
 * CR of every CRLF seen is erased in a scratch copy and one more `indexOf(CR)` over the
 * copy finds any CR left. Only after a bare CR (rare in text) is the rest of the window
 * scanned with a CR and an LF cursor. A window that needs changes is rebuilt once from its
 * unchanged spans and the inserted bytes, in one exact-size allocation.
 *
 * The insert list and the scratch copy are shared by every encoder in the process: a
 * window is encoded synchronously from its scan to its output.
 */
import { WINDOW, type Allocate, type WindowEncoder } from "./window-encoding.js";

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
/** At most 2 inserts per input byte (a CR or LF, then a dot), plus 2. */
const INSERT_CAPACITY = 2 * WINDOW + 2;

/** Offsets where a byte is to be inserted (ascending), the bytes, and how many there are. */
const inserts = { at: new Int32Array(INSERT_CAPACITY), byte: new Uint8Array(INSERT_CAPACITY), count: 0 };
const scratch = Buffer.allocUnsafeSlow(WINDOW);

function insert(position: number, byte: number): void {
  inserts.at[inserts.count] = position;
  inserts.byte[inserts.count++] = byte;
}

export const encodeWindowWithIndexOf: WindowEncoder = (chunk, previous, dotStuffing, allocate: Allocate = Buffer.allocUnsafe) => {
  inserts.count = 0;
  let from = 0;
  let lineStart = previous === LF;
  if (previous === CR) {
    // The CR already went out; this window's first byte decides whether it was bare.
    lineStart = true;
    if (chunk[0] === LF) from = 1;
    else insert(0, LF);
  }
  const firstScanInsert = inserts.count;
  const bareCR = scanLineFeeds(chunk, from, lineStart, dotStuffing);
  if (bareCR !== -1) {
    // Redo from the start of the line holding the first bare CR; inserts before it stand.
    const restart = Math.max(from, chunk.lastIndexOf(LF, bareCR) + 1);
    while (inserts.count > firstScanInsert && inserts.at[inserts.count - 1]! >= restart) inserts.count--;
    scanAll(chunk, restart, restart > from || lineStart, dotStuffing ? DOT : -1);
  }
  return inserts.count === 0 ? chunk : rebuild(chunk, allocate);
};

/**
 * One `indexOf` per line from `from` (`lineStart`: that byte starts a line). Returns the
 * offset of the first bare CR, or -1 (a CR in the last byte is not bare yet). Inserts past
 * the first bare CR may be recorded too; the caller drops those from that CR's line on.
 */
function scanLineFeeds(chunk: Buffer, from: number, lineStart: boolean, dotStuffing: boolean): number {
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

/**
 * The careful path, from a line start `pos` (after the first bare CR): a CR and an LF
 * cursor, every case. `stuffedByte` is DOT, or -1 (matches nothing) for BDAT.
 */
function scanAll(chunk: Buffer, pos: number, lineStart: boolean, stuffedByte: number): void {
  const length = chunk.length;
  if (lineStart && chunk[pos] === stuffedByte) insert(pos, DOT);
  let nextCR = chunk.indexOf(CR, pos);
  let nextLF = chunk.indexOf(LF, pos);
  while (nextCR !== -1 || nextLF !== -1) {
    let lineEnd: number;
    if (nextCR !== -1 && (nextLF === -1 || nextCR < nextLF)) {
      if (nextCR === length - 1) return; // its LF may come with the next window
      if (chunk[nextCR + 1] === LF) {
        lineEnd = nextCR + 2;
      } else {
        lineEnd = nextCR + 1;
        insert(lineEnd, LF); // bare CR
      }
    } else {
      lineEnd = nextLF + 1;
      insert(nextLF, CR); // bare LF
    }
    if (chunk[lineEnd] === stuffedByte) insert(lineEnd, DOT);
    if (nextCR !== -1 && nextCR < lineEnd) nextCR = chunk.indexOf(CR, lineEnd);
    if (nextLF !== -1 && nextLF < lineEnd) nextLF = chunk.indexOf(LF, lineEnd);
  }
}

/**
 * `chunk` with the recorded bytes inserted, in one exact-size allocation. Spans are
 * copied through plain Uint8Array views, which cost less than Buffer slices (measured
 * against copyWithin-in-place and Buffer.concat of slices, both slower).
 */
function rebuild(chunk: Buffer, allocate: Allocate): Buffer {
  const { count, at, byte } = inserts;
  const output = allocate(chunk.length + count);
  const { buffer, byteOffset } = chunk;
  let start = 0;
  let written = 0;
  for (let i = 0; i < count; i++) {
    const position = at[i]!;
    if (position > start) {
      output.set(new Uint8Array(buffer, byteOffset + start, position - start), written);
      written += position - start;
      start = position;
    }
    output[written++] = byte[i]!;
  }
  if (start < chunk.length) output.set(new Uint8Array(buffer, byteOffset + start, chunk.length - start), written);
  return output;
}
