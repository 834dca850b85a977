/**
 * DataEncoder: the message body after DATA's 354, as it must go on the wire.
 *
 * - Every bare LF and every bare CR becomes CRLF (RFC 5321 §2.3.8), so no message can
 *   carry an end-of-data look-alike such as "\r.\r\n" or "\n.\r\n" to a server that reads
 *   line endings loosely ("SMTP smuggling").
 * - A "." at the start of a line is doubled (RFC 5321 §4.5.2).
 * - At the end, the terminator: ".\r\n" when the output ends with a line ending (or is
 *   empty: the data starts at a line start, right after the 354), else "\r\n.\r\n".
 * - `bytes` counts every byte pushed, terminator included (SPEC §8 `messageSize`).
 *
 * Speed: typical input is CRLF text with no dot at a line start, so a chunk that needs
 * no change is pushed as it is, not copied. Deciding that takes one `indexOf(LF)` per line
 * (each LF must follow a CR and must not precede a dot); bare CRs are then found with a
 * single `indexOf(CR)` over a scratch copy of the chunk in which the CR of every CRLF
 * already seen has been overwritten. A chunk that does need changes is rebuilt once, from
 * its unchanged spans and the inserted bytes, in one exact-size allocation per chunk
 * (never a concat per line).
 *
 * Deliberately left out: BDAT (bdat-encoder), 8-bit checks, line length limits.
 */
import { Transform, type TransformOptions } from "readable-stream";

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const TERMINATOR = Buffer.from(".\r\n");
const TERMINATOR_AFTER_CR = Buffer.from("\n.\r\n");
const TERMINATOR_MID_LINE = Buffer.from("\r\n.\r\n");

/** Larger writes are encoded in windows of this size, so the scratch copy stays small. */
const WINDOW = 64 * 1024;

/**
 * Encodes a DATA body: CRLF line endings, dot-stuffing, terminator on end.
 *
 * Writable side: Buffers or strings (any chunking gives byte-identical output). Readable
 * side: the encoded bytes. Never fails on content; every byte sequence has an encoding.
 */
export class DataEncoder extends Transform {
  /** The next byte starts a line: at the start of the data, and after each CRLF. */
  #atLineStart = true;
  /** The last byte pushed is a CR whose LF may be the first byte of the next chunk. */
  #pendingCR = false;
  #bytes = 0;
  #scratch: Buffer | undefined;
  /** Where the current chunk needs a byte inserted (ascending), and which byte; reused. */
  #insertAt: number[] = [];
  #insertByte: number[] = [];

  constructor(options: TransformOptions = {}) {
    super(options);
  }

  /** Bytes pushed so far, after CRLF normalisation and dot-stuffing, terminator included once ended. */
  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding | "buffer", callback: (error?: Error | null) => void): void {
    const data = typeof chunk === "string" ? Buffer.from(chunk, encoding === "buffer" ? "utf8" : encoding) : chunk;
    if (data.length <= WINDOW) this.#encode(data);
    else for (let offset = 0; offset < data.length; offset += WINDOW) this.#encode(data.subarray(offset, offset + WINDOW));
    callback();
  }

  override _flush(callback: (error?: Error | null) => void): void {
    const terminator = this.#pendingCR ? TERMINATOR_AFTER_CR : this.#atLineStart ? TERMINATOR : TERMINATOR_MID_LINE;
    this.#pendingCR = false;
    this.#atLineStart = true;
    this.#bytes += terminator.length;
    this.push(terminator);
    callback();
  }

  #encode(chunk: Buffer): void {
    const length = chunk.length;
    if (length === 0) return;
    const at = this.#insertAt;
    const bytes = this.#insertByte;
    const insert = (position: number, byte: number): void => {
      at.push(position);
      bytes.push(byte);
    };

    let from = 0;
    let lineStart = this.#atLineStart;
    if (this.#pendingCR) {
      // The CR already went out; this chunk's first byte decides whether it was bare.
      lineStart = true;
      if (chunk[0] === LF) from = 1;
      else insert(0, LF);
    }

    const pos = this.#cleanUntil(chunk, from, lineStart);
    if (pos < length) {
      if (pos > from) lineStart = true;
      if (lineStart && chunk[pos] === DOT) insert(pos, DOT);
      let nextCR = chunk.indexOf(CR, pos);
      let nextLF = chunk.indexOf(LF, pos);
      while (nextCR !== -1 || nextLF !== -1) {
        let lineEnd: number;
        if (nextCR !== -1 && (nextLF === -1 || nextCR < nextLF)) {
          if (nextCR === length - 1) break; // pending: its LF may come next
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
        if (chunk[lineEnd] === DOT) insert(lineEnd, DOT);
        if (nextCR !== -1 && nextCR < lineEnd) nextCR = chunk.indexOf(CR, lineEnd);
        if (nextLF !== -1 && nextLF < lineEnd) nextLF = chunk.indexOf(LF, lineEnd);
      }
    }

    // A CR at the very end is never given an LF here, so the last byte says it all.
    const last = chunk[length - 1];
    this.#pendingCR = last === CR;
    this.#atLineStart = last === LF;
    if (at.length === 0) {
      this.#bytes += length;
      this.push(chunk);
      return;
    }
    const output = rebuild(chunk, at, bytes);
    at.length = 0;
    bytes.length = 0;
    this.#bytes += output.length;
    this.push(output);
  }

  /**
   * The fast path: how far from `from` the chunk needs no change. Returns `chunk.length`
   * when nothing changes, else a line start (or `from`) where the rebuild must begin.
   * One native `indexOf` per line: each LF must follow a CR and must not precede a dot.
   * The CR of every such CRLF is erased in a scratch copy, so one more `indexOf(CR)`
   * finds a bare CR anywhere before that point.
   */
  #cleanUntil(chunk: Buffer, from: number, lineStart: boolean): number {
    const length = chunk.length;
    if (lineStart && chunk[from] === DOT) return from;
    const scratch = chunk.indexOf(CR, from) === -1 ? undefined : this.#copyToScratch(chunk);
    let stop = length;
    let lineBegin = from;
    let lf = chunk.indexOf(LF, from);
    while (lf !== -1) {
      if (chunk[lf - 1] !== CR) {
        stop = lineBegin; // bare LF in this line
        break;
      }
      scratch![lf - 1] = 0;
      if (chunk[lf + 1] === DOT) {
        stop = lf + 1;
        break;
      }
      lineBegin = lf + 1;
      lf = chunk.indexOf(LF, lineBegin);
    }
    if (scratch !== undefined) {
      const bareCR = scratch.indexOf(CR, from);
      // A CR in the last byte is not bare yet: its LF may come in the next chunk.
      if (bareCR !== -1 && bareCR < stop && bareCR !== length - 1) {
        return Math.max(from, chunk.lastIndexOf(LF, bareCR) + 1);
      }
    }
    return stop;
  }

  #copyToScratch(chunk: Buffer): Buffer {
    if (this.#scratch === undefined || this.#scratch.length < chunk.length) this.#scratch = Buffer.allocUnsafe(Math.max(WINDOW, chunk.length));
    const scratch = this.#scratch.length === chunk.length ? this.#scratch : this.#scratch.subarray(0, chunk.length);
    scratch.set(chunk);
    return scratch;
  }
}

/**
 * `chunk` with `bytes[i]` inserted before offset `at[i]`, in one exact-size allocation.
 * Spans are copied through plain Uint8Array views, which cost less than Buffer slices.
 */
function rebuild(chunk: Buffer, at: readonly number[], bytes: readonly number[]): Buffer {
  const output = Buffer.allocUnsafe(chunk.length + at.length);
  const { buffer, byteOffset } = chunk;
  let start = 0;
  let written = 0;
  for (let i = 0; i < at.length; i++) {
    const position = at[i]!;
    if (position > start) {
      output.set(new Uint8Array(buffer, byteOffset + start, position - start), written);
      written += position - start;
      start = position;
    }
    output[written++] = bytes[i]!;
  }
  if (start < chunk.length) output.set(new Uint8Array(buffer, byteOffset + start, chunk.length - start), written);
  return output;
}
