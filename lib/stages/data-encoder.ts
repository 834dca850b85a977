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
 * Speed: the input is encoded in windows of at most 64 KiB (window-encoding.ts), each by
 * WebAssembly SIMD that scans 16 bytes at a time and builds the output in the same pass
 * (window-simd.ts), or, where that cannot load, by one native `indexOf` per line and one
 * exact-size rebuild (window-indexof.ts); never a JavaScript loop over bytes. A window that
 * needs no change (typical CRLF text with no dot at a line start) is pushed as it is, not
 * copied.
 *
 * With `dotStuffing: false` it only normalises line endings, for a body sent in BDAT
 * chunks (bdat-encoder frames it). Deliberately left out: 8-bit checks, line length limits.
 */
import { Transform, type TransformOptions } from "readable-stream";
import { WINDOW, type Allocate, type WindowEncoder } from "./window-encoding.js";
import { encodeWindowWithSimd } from "./window-simd.js";
import { encodeWindowWithIndexOf } from "./window-indexof.js";
import { takeFromSlab } from "./window-memory.js";

const CR = 0x0d;
const LF = 0x0a;

/** The window encoder in use: WebAssembly SIMD where it loads, else the indexOf scan. */
const encodeWindow: WindowEncoder = encodeWindowWithSimd ?? encodeWindowWithIndexOf;

/** Which window encoder the encoders use: for the benchmarks' and tests' records. */
export const windowEncoder: "wasm-simd" | "indexOf" = encodeWindowWithSimd ? "wasm-simd" : "indexOf";

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
  readonly #windowEncoder: WindowEncoder;
  readonly #allocate: Allocate | undefined;
  /** The next byte starts a line: at the start of the data, and after each CRLF. */
  #atLineStart = true;
  /** The last byte emitted is a CR whose LF may be the first byte of the next chunk. */
  #pendingCR = false;
  #bytes = 0;

  /**
   * `windowEncoder` is for the tests, which hold both implementations to the same output.
   * `allocate` gives the Buffers changed windows are written into (default: new ones).
   */
  constructor(dotStuffing = true, windowEncoder: WindowEncoder = encodeWindow, allocate?: Allocate) {
    this.#dotStuffing = dotStuffing;
    this.#windowEncoder = windowEncoder;
    this.#allocate = allocate;
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
    const previous = this.#pendingCR ? CR : this.#atLineStart ? LF : 0;
    const output = this.#windowEncoder(chunk, previous, this.#dotStuffing, this.#allocate);
    // A CR in the last byte never gets its LF within the window, so the last byte says it all.
    const last = chunk[length - 1];
    this.#pendingCR = last === CR;
    this.#atLineStart = last === LF;
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
    // Its reader may keep what it reads: windows go into slabs, never used twice (window-memory.ts).
    this.#encoding = new BodyEncoding(dotStuffing, undefined, takeFromSlab);
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
