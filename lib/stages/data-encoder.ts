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
 * no change is pushed as it is, not copied. Deciding that takes one native `indexOf(LF)`
 * per line (an LF must follow a CR and must not precede a dot) and no JavaScript loop
 * over bytes. A bare CR cannot be found that way, so the CR of every CRLF seen is erased
 * in a scratch copy of the chunk, and one more `indexOf(CR)` over the copy finds any CR
 * left: a bare one. Only then (rare in text) is the rest of the chunk scanned with a CR
 * and an LF cursor. A chunk that needs changes is rebuilt once from its unchanged spans
 * and the inserted bytes, in one exact-size allocation (never a concat per line).
 *
 * With `dotStuffing: false` it only normalises line endings, for a body sent in BDAT
 * chunks (bdat-encoder frames it). Deliberately left out: 8-bit checks, line length limits.
 */
import { Transform, type TransformOptions } from "readable-stream";

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const TERMINATOR = Buffer.from(".\r\n");
const INSERT_LF = Buffer.from("\n");
const TERMINATOR_AFTER_CR = Buffer.from("\n.\r\n");
const TERMINATOR_MID_LINE = Buffer.from("\r\n.\r\n");

/** Larger writes are encoded in windows of this size, so the scratch space below stays small. */
const WINDOW = 64 * 1024;

/**
 * Scratch space shared by every encoder: a chunk is encoded synchronously from its scan
 * to its push, so no two encodings ever use it at once, and a process with many
 * connections does not hold a copy per connection.
 */
const scratch = Buffer.allocUnsafeSlow(WINDOW);
/** Offsets where a byte is to be inserted (ascending) and the byte; at most 2 per input byte, plus 2. */
const insertAt = new Int32Array(2 * WINDOW + 2);
const insertByte = new Uint8Array(2 * WINDOW + 2);
let insertCount = 0;
/** The byte that gets stuffed at a line start: DOT, or -1 (matches nothing) for BDAT. */
let stuffedByte = DOT;

function insert(position: number, byte: number): void {
  insertAt[insertCount] = position;
  insertByte[insertCount++] = byte;
}

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
    insertCount = 0;
    stuffedByte = this.#dotStuffing ? DOT : -1;
    let from = 0;
    let lineStart = this.#atLineStart;
    if (this.#pendingCR) {
      // The CR already went out; this chunk's first byte decides whether it was bare.
      lineStart = true;
      if (chunk[0] === LF) from = 1;
      else insert(0, LF);
    }
    const firstScanInsert = insertCount;
    const bareCR = scanLineFeeds(chunk, from, lineStart);
    if (bareCR !== -1) {
      // Redo from the start of the line holding the first bare CR; inserts before it stand.
      const restart = Math.max(from, chunk.lastIndexOf(LF, bareCR) + 1);
      while (insertCount > firstScanInsert && insertAt[insertCount - 1]! >= restart) insertCount--;
      scanAll(chunk, restart, restart > from || lineStart);
    }

    // A CR in the last byte never gets its LF within the chunk, so the last byte says it all.
    const last = chunk[length - 1];
    this.#pendingCR = last === CR;
    this.#atLineStart = last === LF;
    const output = insertCount === 0 ? chunk : rebuild(chunk);
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
 * The usual path, one `indexOf` per line: a CR goes before each bare LF, a dot before
 * each dot that starts a line. Returns the offset of the first bare CR, which this pass
 * cannot place, or -1 when there is none (a CR in the last byte is not bare yet: its LF
 * may come with the next chunk).
 */
function scanLineFeeds(chunk: Buffer, from: number, lineStart: boolean): number {
  if (lineStart && chunk[from] === stuffedByte) insert(from, DOT);
  let copy: Buffer | undefined;
  if (chunk.indexOf(CR, from) !== -1) {
    copy = chunk.length === WINDOW ? scratch : scratch.subarray(0, chunk.length);
    copy.set(chunk);
  }
  for (let lf = chunk.indexOf(LF, from); lf !== -1; lf = chunk.indexOf(LF, lf + 1)) {
    if (chunk[lf - 1] === CR) copy![lf - 1] = 0; // a CR exists, so there is a copy
    else insert(lf, CR);
    if (chunk[lf + 1] === stuffedByte) insert(lf + 1, DOT);
  }
  if (copy === undefined) return -1;
  const bareCR = copy.indexOf(CR, from);
  return bareCR === chunk.length - 1 ? -1 : bareCR;
}

/** The careful path, from a line start `pos`: a CR and an LF cursor, every case. */
function scanAll(chunk: Buffer, pos: number, lineStart: boolean): void {
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
  const output = Buffer.allocUnsafe(chunk.length + insertCount);
  const { buffer, byteOffset } = chunk;
  let start = 0;
  let written = 0;
  for (let i = 0; i < insertCount; i++) {
    const position = insertAt[i]!;
    if (position > start) {
      output.set(new Uint8Array(buffer, byteOffset + start, position - start), written);
      written += position - start;
      start = position;
    }
    output[written++] = insertByte[i]!;
  }
  if (start < chunk.length) output.set(new Uint8Array(buffer, byteOffset + start, chunk.length - start), written);
  return output;
}
