/**
 * BdatEncoder: frames a message body as RFC 3030 BDAT chunks.
 *
 * Each chunk becomes "BDAT <size>\r\n" followed by exactly those bytes, passed through
 * untouched; the end is "BDAT <size> LAST\r\n" with what is left (often "BDAT 0 LAST").
 * Because every chunk carries its length, nothing in the body can end the message early,
 * so there is no dot-stuffing and no terminator. Each frame is announced through
 * `onChunk` before its bytes are pushed, so the connection can queue the reply it will
 * get before the server can send it.
 *
 * With `chunkSize`, writes are cut and joined into chunks of exactly that many bytes
 * (ChunkCutter), so the number of commands, and the replies a client waits for, depend on
 * the size of the body and never on how the caller sliced its writes (issue 10: 64 MiB in
 * 256-byte writes used to be 262,145 commands). Without it, each write is one chunk.
 *
 * Deliberately left out: line-ending normalisation (the DataEncoder in front of it does
 * that), and waiting for replies (BDAT chunks are pipelined).
 */
import { Transform, type TransformOptions } from "readable-stream";

/** Called once per frame, before it is pushed: `last` for the closing "BDAT n LAST". */
export type ChunkListener = (size: number, last: boolean) => void;

export interface BdatEncoderOptions extends TransformOptions {
  onChunk?: ChunkListener;
  /** Payload bytes per chunk (the last one may be shorter). Default: one chunk per write. */
  chunkSize?: number;
}

/** Payload bytes of one BDAT chunk unless the `bdatChunkSize` option says otherwise. */
export const DEFAULT_BDAT_CHUNK_SIZE = 256 * 1024;

/** The closing frame when nothing is left to send. */
export const BDAT_LAST = Buffer.from("BDAT 0 LAST\r\n");

/** The command line that announces a chunk of `size` bytes (`last`: the message ends with it). */
export function bdatHeader(size: number, last = false): Buffer {
  return Buffer.from(last ? `BDAT ${size} LAST\r\n` : `BDAT ${size}\r\n`, "latin1");
}

/**
 * A piece shorter than this that joins bytes already held is copied; anything else is
 * kept by reference (a slice), so a large write or a small whole message costs no copy,
 * and many tiny writes cost a few socket writes per chunk instead of one per write.
 */
const COPY_BELOW = 16 * 1024;
/** Size of each buffer short pieces are copied into: a small message never gets a chunk-sized one. */
const STAGING_SIZE = 64 * 1024;

/**
 * Bytes in, chunks of exactly `size` bytes out, whatever the sizes of the pieces given.
 * Holds what is not taken yet: short pieces copied together, slices of the others.
 */
export class ChunkCutter {
  readonly size: number;
  #parts: Buffer[] = [];
  #length = 0;
  /** Where short pieces are copied to; its bytes before #shown are already in #parts. */
  #staging: Buffer | undefined;
  #used = 0;
  #shown = 0;

  constructor(size: number) {
    this.size = size;
  }

  /** Bytes held, not yet taken. */
  get length(): number {
    return this.#length;
  }

  add(piece: Buffer): void {
    if (piece.length === 0) return;
    this.#length += piece.length;
    if (piece.length >= COPY_BELOW || this.#length === piece.length) {
      this.#showStaged();
      this.#parts.push(piece);
      return;
    }
    let offset = 0;
    while (offset < piece.length) {
      if (!this.#staging || this.#used === this.#staging.length) {
        this.#showStaged();
        this.#staging = Buffer.allocUnsafe(Math.min(this.size, STAGING_SIZE));
        this.#used = 0;
        this.#shown = 0;
      }
      const copied = piece.copy(this.#staging, this.#used, offset);
      this.#used += copied;
      offset += copied;
    }
  }

  /** Takes up to `size` bytes from the front, as the pieces that hold them (slices, no copies). */
  take(): Buffer[] {
    this.#showStaged();
    const taken: Buffer[] = [];
    let wanted = Math.min(this.size, this.#length);
    this.#length -= wanted;
    while (wanted > 0) {
      const part = this.#parts[0]!;
      if (part.length <= wanted) {
        taken.push(part);
        this.#parts.shift();
        wanted -= part.length;
      } else {
        taken.push(part.subarray(0, wanted));
        this.#parts[0] = part.subarray(wanted);
        wanted = 0;
      }
    }
    return taken;
  }

  /** Moves the staged bytes not yet listed into #parts, so the order of bytes is kept. */
  #showStaged(): void {
    if (this.#staging && this.#used > this.#shown) {
      this.#parts.push(this.#staging.subarray(this.#shown, this.#used));
      this.#shown = this.#used;
    }
  }
}

export class BdatEncoder extends Transform {
  #bytes = 0;
  #onChunk: ChunkListener;
  #cutter: ChunkCutter | undefined;

  constructor(options: BdatEncoderOptions = {}) {
    const { onChunk = () => {}, chunkSize, ...streamOptions } = options;
    super(streamOptions);
    this.#onChunk = onChunk;
    if (chunkSize !== undefined) {
      if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
      this.#cutter = new ChunkCutter(chunkSize);
    }
  }

  /** Payload bytes framed so far (SPEC §8: messageSize for BDAT). */
  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding | "buffer", callback: (error?: Error | null) => void): void {
    const data = typeof chunk === "string" ? Buffer.from(chunk, encoding === "buffer" ? "utf8" : encoding) : chunk;
    const cutter = this.#cutter;
    if (!cutter) {
      if (data.length > 0) this.#frame([data], data.length, false);
    } else {
      cutter.add(data);
      while (cutter.length >= cutter.size) this.#frame(cutter.take(), cutter.size, false);
    }
    callback();
  }

  override _flush(callback: (error?: Error | null) => void): void {
    const rest = this.#cutter?.length ?? 0;
    this.#frame(rest ? this.#cutter!.take() : [], rest, true);
    callback();
  }

  #frame(parts: Buffer[], size: number, last: boolean): void {
    this.#onChunk(size, last);
    this.#bytes += size;
    this.push(bdatHeader(size, last));
    for (const part of parts) this.push(part);
  }
}
