/**
 * BdatEncoder: frames a message body as RFC 3030 BDAT chunks.
 *
 * Each chunk written becomes "BDAT <size>\r\n" followed by exactly those bytes, passed
 * through untouched; the end is "BDAT 0 LAST\r\n". Because every chunk carries its
 * length, nothing in the body can end the message early, so there is no dot-stuffing
 * and no terminator. Each frame is announced through `onChunk` before its bytes are
 * pushed, so the connection can queue the reply it will get before the server can send it.
 *
 * Deliberately left out: line-ending normalisation (the DataEncoder in front of it does
 * that), and waiting for replies (BDAT chunks are pipelined).
 */
import { Transform, type TransformOptions } from "readable-stream";

/** Called once per frame, before it is pushed: `last` for the closing "BDAT 0 LAST". */
export type ChunkListener = (size: number, last: boolean) => void;

export interface BdatEncoderOptions extends TransformOptions {
  onChunk?: ChunkListener;
}

/** The closing frame. */
export const BDAT_LAST = Buffer.from("BDAT 0 LAST\r\n");

/** The command line that announces a chunk of `size` bytes. */
export function bdatHeader(size: number): Buffer {
  return Buffer.from(`BDAT ${size}\r\n`, "latin1");
}

export class BdatEncoder extends Transform {
  #bytes = 0;
  #onChunk: ChunkListener;

  constructor(options: BdatEncoderOptions = {}) {
    const { onChunk = () => {}, ...streamOptions } = options;
    super(streamOptions);
    this.#onChunk = onChunk;
  }

  /** Payload bytes framed so far (SPEC §8: messageSize for BDAT). */
  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding | "buffer", callback: (error?: Error | null) => void): void {
    const data = typeof chunk === "string" ? Buffer.from(chunk, encoding === "buffer" ? "utf8" : encoding) : chunk;
    if (data.length > 0) {
      this.#onChunk(data.length, false);
      this.#bytes += data.length;
      this.push(bdatHeader(data.length));
      this.push(data);
    }
    callback();
  }

  override _flush(callback: (error?: Error | null) => void): void {
    this.#onChunk(0, true);
    this.push(BDAT_LAST);
    callback();
  }
}
