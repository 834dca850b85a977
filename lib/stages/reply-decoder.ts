/**
 * ReplyDecoder: the second stage of the reply side. Lines (Buffers, as LineSplitter
 * makes them) in, whole server replies out, as `Reply` objects.
 *
 * A reply is one or more lines with the same three-digit code; every line but the last
 * has "-" after the code, the last has " " or nothing (RFC 5321 §4.2, §4.2.1). Anything
 * else is EPROTOCOL: a line that does not start with a code 200–599, another separator,
 * a code that changes inside a reply, a NUL byte, more than `maxLines` lines or more than
 * `maxReplyBytes` bytes in one reply. The limits are checked line by line, before the
 * line is kept, so a hostile server cannot grow a reply without bound (SPEC §8).
 *
 * A blank line (empty, or only spaces, tabs and CRs) carries no reply and is skipped, as
 * Nodemailer skips it: some servers send one before the greeting or after EHLO. It still
 * counts towards the limits of the reply in progress (or the next one), so a server that
 * sends nothing but blank lines is cut off like one that sends an endless reply.
 *
 * Text is UTF-8 (RFC 6531 servers may send it); a line that is not valid UTF-8 is decoded
 * as latin1 instead, so every byte the server sent is kept (Nodemailer does the same for
 * the whole reply; here each line is judged alone, so a valid line is never garbled by
 * its neighbour).
 *
 * Deliberately left out: matching replies to commands, and what a code means.
 */
import { isUtf8 } from "node:buffer";
import { Transform, type TransformOptions } from "readable-stream";
import { protocolError } from "../errors.js";
import type { Reply } from "../types.js";

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const DIGIT_2 = 0x32;
const DIGIT_5 = 0x35;
const SPACE = 0x20;
const HYPHEN = 0x2d;
const NUL = 0x00;
const TAB = 0x09;
const CR = 0x0d;
const BLANK = /^[ \t\r]*$/;
/** Bytes a line ending adds on the wire; counted so the limit is about the reply as sent. */
const CRLF_LENGTH = 2;
/** RFC 3463 status code at the start of the text: class "." subject "." detail. */
const ENHANCED_CODE = /^([245]\.\d{1,3}\.\d{1,3})(?=\s|$)/;

/** Options of {@link ReplyDecoder}. */
export interface ReplyDecoderOptions extends TransformOptions {
  /** Most lines accepted in one reply. Default 4 096 (SPEC §8). */
  maxLines?: number;
  /** Most bytes accepted in one reply, counting 2 bytes of CRLF per line. Default 1 MiB (SPEC §8). */
  maxReplyBytes?: number;
}

/**
 * The grouping itself, without stream machinery: the ReplyDecoder stage wraps one, and
 * the connection's reply pipeline calls one directly for every line.
 */
export class ReplyAssembler {
  readonly #maxLines: number;
  readonly #maxReplyBytes: number;
  /** Code of the multi-line reply in progress; 0 between replies. */
  #code = 0;
  #lines: string[] = [];
  /** Lines counted against the limits since the last reply: its own and the blank ones. */
  #lineCount = 0;
  #bytes = 0;

  constructor(maxLines = 4096, maxReplyBytes = 1024 * 1024) {
    this.#maxLines = maxLines;
    this.#maxReplyBytes = maxReplyBytes;
  }

  /** Lines held of an incomplete multi-line reply. */
  get pendingLines(): number {
    return this.#lines.length;
  }

  /**
   * Adds one line; hands the reply to `emit` when the line is its last. Returns the
   * EPROTOCOL error, if any (and forgets the reply in progress).
   */
  take(line: Buffer, emit: (reply: Reply) => void): Error | undefined {
    const error = this.#take(line, emit);
    if (error) this.#reset();
    return error;
  }

  /** The error for input that ends inside a multi-line reply, if it did; clears what was held. */
  end(): Error | undefined {
    if (this.#lines.length === 0) return undefined;
    const held = this.#lines.length;
    this.#reset();
    return protocolError(`Input ended inside a multi-line reply (${held} lines received)`);
  }

  #take(line: Buffer, emit: (reply: Reply) => void): Error | undefined {
    if (isBlank(line)) return this.#count(line);
    if (!startsWithCode(line)) return protocolError(`Malformed reply line: ${quote(line)}`);
    const separator = line.length > 3 ? line[3] : SPACE;
    if (separator !== SPACE && separator !== HYPHEN) return protocolError(`Malformed reply line: ${quote(line)}`);
    if (line.indexOf(NUL) !== -1) return protocolError(`Reply line contains a NUL byte: ${quote(line)}`);
    const code = (line[0]! - DIGIT_0) * 100 + (line[1]! - DIGIT_0) * 10 + (line[2]! - DIGIT_0);
    if (this.#code !== 0 && code !== this.#code) {
      return protocolError(`Reply code changed from ${this.#code} to ${code} inside a multi-line reply`);
    }
    const overLimit = this.#count(line);
    if (overLimit) return overLimit;

    this.#code = code;
    this.#lines.push(line.length > 4 ? decodeText(line.subarray(4)) : "");
    if (separator === HYPHEN) return undefined;

    const lines = this.#lines;
    const reply: Reply = { code, lines, text: lines.join("\n") };
    const enhanced = ENHANCED_CODE.exec(lines[0]!);
    if (enhanced) reply.enhancedCode = enhanced[1]!;
    this.#reset();
    emit(reply);
    return undefined;
  }

  /** Counts one line against the line and byte limits; the error when it crosses one. */
  #count(line: Buffer): Error | undefined {
    if (++this.#lineCount > this.#maxLines) return protocolError(`Reply has more than ${this.#maxLines} lines`);
    this.#bytes += line.length + CRLF_LENGTH;
    if (this.#bytes > this.#maxReplyBytes) return protocolError(`Reply is larger than ${this.#maxReplyBytes} bytes`);
    return undefined;
  }

  #reset(): void {
    this.#code = 0;
    this.#lines = [];
    this.#lineCount = 0;
    this.#bytes = 0;
  }
}

/**
 * Groups reply lines into replies.
 *
 * Writable side (object mode): one Buffer per line, without its line ending. Readable side
 * (object mode): one {@link Reply} per complete reply. Fails with SMTPError `EPROTOCOL` on a
 * malformed line, a limit crossed, or input that ends inside a multi-line reply.
 */
export class ReplyDecoder extends Transform {
  readonly #assembler: ReplyAssembler;
  readonly #push = (reply: Reply) => void this.push(reply);

  constructor(options: ReplyDecoderOptions = {}) {
    const { maxLines = 4096, maxReplyBytes = 1024 * 1024, ...streamOptions } = options;
    super({ ...streamOptions, writableObjectMode: true, readableObjectMode: true });
    this.#assembler = new ReplyAssembler(maxLines, maxReplyBytes);
  }

  /**
   * Lines held of an incomplete multi-line reply. Non-zero after STARTTLS's 220 means
   * the server sent more in plaintext, which must never be read as a post-TLS reply.
   */
  get pendingLines(): number {
    return this.#assembler.pendingLines;
  }

  override _transform(line: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    callback(this.#assembler.take(typeof line === "string" ? Buffer.from(line) : line, this.#push));
  }

  override _flush(callback: (error?: Error | null) => void): void {
    callback(this.#assembler.end());
  }
}

/** A reply code: three digits, the first 2–5 (RFC 5321 §4.2.1; SMTP has no 1yz replies). */
function startsWithCode(line: Buffer): boolean {
  return (
    line.length >= 3 &&
    line[0]! >= DIGIT_2 &&
    line[0]! <= DIGIT_5 &&
    line[1]! >= DIGIT_0 &&
    line[1]! <= DIGIT_9 &&
    line[2]! >= DIGIT_0 &&
    line[2]! <= DIGIT_9
  );
}

/** Empty, or only spaces, tabs and CRs: a line that carries no reply. */
function isBlank(line: Buffer): boolean {
  if (line.length === 0) return true;
  const first = line[0]!;
  // A reply line starts with a digit: only a line that starts blank needs a closer look.
  return (first === SPACE || first === TAB || first === CR) && BLANK.test(line.toString("latin1"));
}

/** UTF-8 when the bytes are valid UTF-8, else latin1: every byte the server sent is kept. */
function decodeText(bytes: Buffer): string {
  return isUtf8(bytes) ? bytes.toString("utf8") : bytes.toString("latin1");
}

/** A short, printable quote of a bad line for the error message. */
function quote(line: Buffer): string {
  const shown = line.subarray(0, 80).toString("latin1");
  return JSON.stringify(shown) + (line.length > 80 ? "…" : "");
}
