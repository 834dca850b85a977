/**
 * LineSplitter: the first stage of the reply side. Bytes from the socket in, one Buffer
 * per line out (object mode), each without its line ending.
 *
 * Lines end with CRLF (RFC 5321 §2.3.8); a bare LF also ends a line, to be lenient with
 * broken servers. A bare CR is not a line end and stays in the line. A line longer than
 * `maxLineLength` is EPROTOCOL as soon as the pending bytes cross the limit, so a hostile
 * server cannot make us buffer an unbounded line; the pieces of a partial line are kept
 * as a list and joined once, so a long line costs linear time.
 *
 * Deliberately left out: decoding text, grouping lines into replies (ReplyDecoder).
 */
import { Transform, type TransformOptions } from "readable-stream";
import { protocolError } from "../errors.js";

const CR = 0x0d;
const LF = 0x0a;

/** Options of {@link LineSplitter}. */
export interface LineSplitterOptions extends TransformOptions {
  /** Longest line accepted, in bytes, not counting its CRLF. Default 65 536 (SPEC §8). */
  maxLineLength?: number;
}

/**
 * The splitting itself, without stream machinery: the LineSplitter stage wraps one, and
 * the connection's reply pipeline calls one directly on every chunk the socket reads.
 */
export class LineScanner {
  readonly #maxLineLength: number;
  /** Pieces of the incomplete line at the end of the input so far. */
  #pieces: Buffer[] = [];
  #pendingLength = 0;

  constructor(maxLineLength = 65_536) {
    this.#maxLineLength = maxLineLength;
  }

  /** Bytes held of an incomplete line. */
  get pendingBytes(): number {
    return this.#pendingLength;
  }

  /**
   * Hands each complete line in `bytes` to `emit` (without CRLF/LF) and keeps the rest.
   * Returns the EPROTOCOL error when a line crosses the limit, as the bytes arrive.
   */
  scan(bytes: Buffer, emit: (line: Buffer) => void): Error | undefined {
    let start = 0;
    let lf: number;
    while ((lf = bytes.indexOf(LF, start)) !== -1) {
      let line = this.#takeLine(bytes.subarray(start, lf));
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      if (line.length > this.#maxLineLength) return this.#tooLong(line.length);
      emit(line);
      start = lf + 1;
    }
    if (start < bytes.length) {
      const rest = bytes.subarray(start);
      this.#pieces.push(rest);
      this.#pendingLength += rest.length;
      // A trailing CR may be the first half of the CRLF, so it does not count yet.
      const excess = this.#pendingLength - (rest[rest.length - 1] === CR ? 1 : 0);
      if (excess > this.#maxLineLength) return this.#tooLong(excess);
    }
    return undefined;
  }

  /**
   * The input ended: hands the incomplete line held at its end, if any, to `emit` (without
   * a trailing CR, as if its line ending had come) and clears it. A server that sends its
   * last reply ("421 4.3.2 Shutting down") without CRLF and closes has still said it, as
   * Nodemailer reads it; the limit was checked as the bytes arrived.
   */
  end(emit: (line: Buffer) => void): void {
    if (this.#pendingLength === 0) return;
    const line = this.#takeLine(Buffer.alloc(0));
    emit(line[line.length - 1] === CR ? line.subarray(0, line.length - 1) : line);
  }

  /** The held pieces plus `tail` as one line; the pieces are joined once, here. */
  #takeLine(tail: Buffer): Buffer {
    if (this.#pieces.length === 0) return tail;
    this.#pieces.push(tail);
    const line = Buffer.concat(this.#pieces, this.#pendingLength + tail.length);
    this.#pieces = [];
    this.#pendingLength = 0;
    return line;
  }

  #tooLong(length: number): Error {
    this.#pieces = [];
    this.#pendingLength = 0;
    return protocolError(`Reply line longer than ${this.#maxLineLength} bytes (at least ${length} received)`);
  }
}

/**
 * Splits a byte stream into lines.
 *
 * Writable side: bytes (Buffer or string). Readable side (object mode): one Buffer per
 * line, without CRLF/LF; a last line without a line ending is handed on when the input
 * ends. Fails with SMTPError `EPROTOCOL` when a line exceeds `maxLineLength`.
 */
export class LineSplitter extends Transform {
  readonly #scanner: LineScanner;
  readonly #push = (line: Buffer) => void this.push(line);

  constructor(options: LineSplitterOptions = {}) {
    const { maxLineLength = 65_536, ...streamOptions } = options;
    super({ ...streamOptions, readableObjectMode: true });
    this.#scanner = new LineScanner(maxLineLength);
  }

  /**
   * Bytes held of an incomplete line. Non-zero after STARTTLS's 220 means the server
   * sent more in plaintext, which must never be read as a post-TLS reply.
   */
  get pendingBytes(): number {
    return this.#scanner.pendingBytes;
  }

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    callback(this.#scanner.scan(typeof chunk === "string" ? Buffer.from(chunk) : chunk, this.#push));
  }

  override _flush(callback: (error?: Error | null) => void): void {
    this.#scanner.end(this.#push);
    callback();
  }
}
