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
 * no change is pushed as it is, not copied. Deciding that is the window scan's job
 * (window-scan.ts: 16 bytes at a time in WebAssembly SIMD, or one native `indexOf(LF)`
 * per line), never a JavaScript loop over bytes. Only after a bare CR (rare in text) is
 * the rest of the chunk scanned here with a CR and an LF cursor. A chunk that needs
 * changes is rebuilt once from its unchanged spans and the inserted bytes, in one
 * exact-size allocation (never a concat per line).
 *
 * With `dotStuffing: false` it only normalises line endings, for a body sent in BDAT
 * chunks (bdat-encoder frames it). Deliberately left out: 8-bit checks, line length limits.
 */
import { Transform, type TransformOptions } from "readable-stream";
import { WINDOW, insert, inserts, scanLineFeeds } from "./window-scan.js";

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const TERMINATOR = Buffer.from(".\r\n");
const INSERT_LF = Buffer.from("\n");
const TERMINATOR_AFTER_CR = Buffer.from("\n.\r\n");
const TERMINATOR_MID_LINE = Buffer.from("\r\n.\r\n");

export interface DataEncoderOptions extends TransformOptions {
  /**
   * Default true: DATA framing (dot-stuffing and the terminator). false only normalises
   * line endings, for a body sent in BDAT chunks, whose lengths frame it instead.
   */
  dotStuffing?: boolean;
}

/**
 * The encoding itself, without stream machinery: the DataEncoder stage wraps one, and
 * the connection's body channel calls one directly so each chunk costs one function call
 * on its way to the socket, not a Transform's buffering and events.
 */
export class BodyEncoding {
  readonly #dotStuffing: boolean;
  /** The next byte starts a line: at the start of the data, and after each CRLF. */
  #atLineStart = true;
  /** The last byte emitted is a CR whose LF may be the first byte of the next chunk. */
  #pendingCR = false;
  #bytes = 0;

  constructor(dotStuffing = true) {
    this.#dotStuffing = dotStuffing;
  }

  /** Bytes emitted so far, after CRLF normalisation and dot-stuffing, terminator included once finished. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Encodes `data`, handing each output Buffer to `emit` (the input itself when nothing changes). */
  encode(data: Buffer, emit: (output: Buffer) => void): void {
    if (data.length <= WINDOW) this.#encodeWindow(data, emit);
    else for (let offset = 0; offset < data.length; offset += WINDOW) this.#encodeWindow(data.subarray(offset, offset + WINDOW), emit);
  }

  /**
   * The bytes that end the body: the terminator for DATA; for BDAT only the LF a CR at the
   * very end still needs (undefined when none).
   */
  finish(): Buffer | undefined {
    const pendingCR = this.#pendingCR;
    this.#pendingCR = false;
    let tail: Buffer | undefined;
    if (!this.#dotStuffing) tail = pendingCR ? INSERT_LF : undefined;
    else tail = pendingCR ? TERMINATOR_AFTER_CR : this.#atLineStart ? TERMINATOR : TERMINATOR_MID_LINE;
    this.#atLineStart = true;
    if (tail) this.#bytes += tail.length;
    return tail;
  }

  #encodeWindow(chunk: Buffer, emit: (output: Buffer) => void): void {
    const length = chunk.length;
    if (length === 0) return;
    inserts.count = 0;
    let from = 0;
    let lineStart = this.#atLineStart;
    if (this.#pendingCR) {
      // The CR already went out; this chunk's first byte decides whether it was bare.
      lineStart = true;
      if (chunk[0] === LF) from = 1;
      else insert(0, LF);
    }
    const firstScanInsert = inserts.count;
    const bareCR = scanLineFeeds(chunk, from, lineStart, this.#dotStuffing);
    if (bareCR !== -1) {
      // Redo from the start of the line holding the first bare CR; inserts before it stand.
      const restart = Math.max(from, chunk.lastIndexOf(LF, bareCR) + 1);
      while (inserts.count > firstScanInsert && inserts.at[inserts.count - 1]! >= restart) inserts.count--;
      scanAll(chunk, restart, restart > from || lineStart, this.#dotStuffing ? DOT : -1);
    }

    // A CR in the last byte never gets its LF within the chunk, so the last byte says it all.
    const last = chunk[length - 1];
    this.#pendingCR = last === CR;
    this.#atLineStart = last === LF;
    const output = inserts.count === 0 ? chunk : rebuild(chunk);
    this.#bytes += output.length;
    emit(output);
  }
}

/**
 * Encodes a DATA body: CRLF line endings, dot-stuffing, terminator on end.
 *
 * Writable side: Buffers or strings (any chunking gives byte-identical output). Readable
 * side: the encoded bytes. Never fails on content; every byte sequence has an encoding.
 */
export class DataEncoder extends Transform {
  readonly #encoding: BodyEncoding;
  readonly #push = (output: Buffer) => void this.push(output);

  constructor(options: DataEncoderOptions = {}) {
    const { dotStuffing = true, ...streamOptions } = options;
    super(streamOptions);
    this.#encoding = new BodyEncoding(dotStuffing);
  }

  /** Bytes pushed so far, after CRLF normalisation and dot-stuffing, terminator included once ended. */
  get bytes(): number {
    return this.#encoding.bytes;
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding | "buffer", callback: (error?: Error | null) => void): void {
    const data = typeof chunk === "string" ? Buffer.from(chunk, encoding === "buffer" ? "utf8" : encoding) : chunk;
    this.#encoding.encode(data, this.#push);
    callback();
  }

  override _flush(callback: (error?: Error | null) => void): void {
    const tail = this.#encoding.finish();
    if (tail) this.push(tail);
    callback();
  }
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
      if (nextCR === length - 1) return; // its LF may come with the next chunk
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
function rebuild(chunk: Buffer): Buffer {
  const { count, at, byte } = inserts;
  const output = Buffer.allocUnsafe(chunk.length + count);
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
