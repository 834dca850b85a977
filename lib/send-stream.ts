/**
 * SendStream: the Writable a message is piped into (SPEC §4).
 *
 * Before the server's 354 the stream holds the one write in progress, so Writable's own
 * buffer fills to highWaterMark and write() returns false: memory stays bounded however
 * fast the source is. After 354 each chunk goes to the body channel (body.ts), which
 * encodes it and writes it to the socket, and a write completes only when the socket can
 * take more: backpressure runs from the socket back to the source. 'finish' waits for the
 * server's final reply.
 *
 * The transaction drives it through attach/complete/fail; the stream itself
 * never writes a command and never decides what a reply means.
 */
import { Writable, type Readable } from "node:stream";
import type { SendInfo } from "./types.js";
import { SMTPError, type SMTPErrorFields } from "./errors.js";
import { deliveryState, type SendPhase } from "./outcome.js";

/** Where the body goes after 354: the body channel, or any Writable stage. */
export interface BodySink {
  /** Takes one chunk; false means wait for 'drain' before the next. */
  write(chunk: Buffer): boolean;
  end(): void;
  once(event: "drain", listener: () => void): unknown;
  /** Optional: group the writes of several chunks into one (socket cork/uncork). */
  cork?(): void;
  uncork?(): void;
}

type Done = (err?: Error | null) => void;

/** Default bytes buffered before 354 and between source and encoder. */
export const SEND_STREAM_HIGH_WATER_MARK = 64 * 1024;

function isChunk(chunk: unknown): chunk is string | Uint8Array {
  return typeof chunk === "string" || chunk instanceof Uint8Array;
}

/** Node destroys a Writable written after end(): a bug in the caller's code, named as such. */
function writeAfterEnd(err: Error | null): boolean {
  return (err as { code?: unknown } | null)?.code === "ERR_STREAM_WRITE_AFTER_END";
}

/** Writes smaller than this are gathered per turn of the event loop (see #gatherTurn). */
const GATHER_BELOW = 16 * 1024;

export class SendStream extends Writable {
  /** The SendInfo, once the server accepted the message. */
  info?: SendInfo;
  #sink: BodySink | undefined;
  #held: { chunk: Buffer; done: Done } | undefined;
  #finalDone: Done | undefined;
  #aborted!: (err: SMTPError) => void;
  #settled = false;
  #begun = false;
  #bodyEnded = false;
  #abortReason: SMTPError | undefined;
  /** Small writes are being gathered until the end of this turn of the event loop. */
  #gathering = false;
  /** Resolves with the reason when the stream is destroyed before the message completed. */
  readonly aborted: Promise<SMTPError>;

  constructor(options: { highWaterMark?: number } = {}) {
    super({ highWaterMark: options.highWaterMark ?? SEND_STREAM_HIGH_WATER_MARK, decodeStrings: true });
    this.aborted = new Promise<SMTPError>((resolve) => (this.#aborted = resolve));
    // Plain source.pipe(stream) does not forward the source's failure: without this, a
    // source that errors or closes early would leave the send waiting for socketTimeout.
    this.on("pipe", (source: Readable) => this.#watchSource(source));
  }

  /**
   * A piped source that fails, or closes before its end, fails the send with ESTREAM.
   * "Before its end" is judged by having seen its 'end' event, not by `readableEnded`: an
   * old-style stream (legacy Stream with pipe(), as `through` and event-stream make) has
   * no such property, and closes right after ending.
   */
  #watchSource(source: Readable): void {
    let ended = false;
    const onEnd = () => (ended = true);
    const onError = (err: unknown) =>
      this.destroy(this.#streamError(`Message source failed: ${(err as Error)?.message ?? err}`, { command: "DATA", temporary: true, cause: err }));
    const onClose = () => {
      if (!ended) onError(new Error("source closed before it ended"));
    };
    source.on("end", onEnd);
    source.on("error", onError);
    source.on("close", onClose);
    this.once("close", () => {
      source.off("end", onEnd);
      source.off("error", onError);
      source.off("close", onClose);
    });
  }

  /**
   * A chunk that is not bytes or text (an object from a misbehaving source) fails the
   * send with ESTREAM instead of throwing inside the source's 'data' handler.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    if (!isChunk(chunk)) {
      const err = this.#streamError(`Message chunks must be Buffer, Uint8Array or string, got ${chunk === null ? "null" : typeof chunk}`, { command: "DATA", temporary: false });
      this.destroy(err);
      const callback = typeof encoding === "function" ? encoding : cb;
      if (callback) process.nextTick(callback, err);
      return false;
    }
    if (this.#sink && !this.#gathering && !this.destroyed && chunk.length < GATHER_BELOW) this.#gatherTurn();
    return super.write(chunk, encoding as BufferEncoding, cb);
  }

  /**
   * Once the body flows, small writes made in one turn of the event loop go out together
   * (one system call, through _writev): a composed mail arrives as many small chunks (a
   * header line, a boundary, a short part), and a system call for each cost more than all
   * the rest of the send. Large chunks (a file's) are not held back.
   */
  #gatherTurn(): void {
    this.#gathering = true;
    this.cork();
    setImmediate(() => {
      this.#gathering = false;
      this.uncork();
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: Done): void {
    if (this.#sink) this.#forward(chunk, done);
    else this.#held = { chunk, done };
  }

  /**
   * Chunks that queued up while the socket was busy (or before 354) go out together:
   * one corked burst, one system call, instead of one per chunk.
   */
  override _writev(chunks: { chunk: Buffer }[], done: Done): void {
    if (!this.#sink) {
      this.#held = { chunk: Buffer.concat(chunks.map((c) => c.chunk)), done };
      return;
    }
    const sink = this.#sink;
    sink.cork?.();
    let ready = true;
    for (const { chunk } of chunks) ready = sink.write(chunk) && ready;
    sink.uncork?.();
    if (ready) done();
    else sink.once("drain", done);
  }

  override _final(done: Done): void {
    this.#finalDone = done;
    if (this.#sink) this.#endBody();
  }

  override _destroy(err: Error | null, done: Done): void {
    if (!this.#settled) {
      this.#settled = true;
      const reason =
        err instanceof SMTPError
          ? err
          : writeAfterEnd(err)
            ? this.#streamError("write() after end(): the message the caller ended is not the whole message, so it is abandoned", { command: "API", temporary: false, cause: err })
            : this.#streamError(err ? `Message source failed: ${err.message}` : "Message stream was destroyed before end()", { command: "DATA", temporary: true, cause: err ?? undefined });
      this.#abortReason = reason;
      this.#aborted(reason);
      done(err ? reason : null);
      return;
    }
    done(err);
  }

  /**
   * An ESTREAM failure of this stream. Whether the server may have the message is decided
   * now, while it is known whether the end of data has left (outcome.ts decides; the
   * transaction keeps this verdict). A source that failed locally (disk, object store) is
   * temporary: the message itself was not refused.
   */
  #streamError(message: string, fields: SMTPErrorFields): SMTPError {
    return new SMTPError("ESTREAM", message, { ...fields, deliveryState: deliveryState({ phase: this.#bodyEnded ? "final" : "body" }) });
  }

  /** Why the stream was destroyed before the message completed, if it was. */
  get abortReason(): SMTPError | undefined {
    return this.#abortReason;
  }

  /**
   * How far the send got, in outcome.ts's terms: waiting its turn in the queue, its
   * envelope on the wire, its body flowing, or its end of data sent ("final": nothing can
   * take the message back then).
   */
  get phase(): SendPhase {
    return this.#bodyEnded ? "final" : this.#sink ? "body" : this.#begun ? "envelope" : "queued";
  }

  /** Called by the transaction when its turn came, just before the envelope is written. */
  begin(): void {
    this.#begun = true;
  }

  /**
   * The caller's AbortSignal fired: abandons the message as destroy() does, unless its end
   * of data has left already. Then the server may have it, and the send settles with the
   * server's reply rather than an error that would hide a delivery.
   */
  abort(err: SMTPError): void {
    if (this.#bodyEnded || this.#settled) return;
    this.destroy(err);
  }

  /** Called by the transaction at 354 (or once BDAT may start): the body may flow now; emits 'ready'. */
  attach(sink: BodySink): void {
    // Destroyed while the envelope was out: not a byte of it may reach the server.
    if (this.#abortReason) return;
    this.#sink = sink;
    const held = this.#held;
    this.#held = undefined;
    if (held) this.#forward(held.chunk, held.done);
    if (this.#finalDone) this.#endBody();
    // A pool holds a message back until its connection's server takes the body, so that a
    // send that never reached this point can go out on another connection (lib/pool/).
    this.emit("ready");
  }

  /** Called by the transaction after the final reply accepted the message. */
  complete(info: SendInfo): void {
    if (this.#settled) return;
    this.#settled = true;
    this.info = info;
    this.emit("response", info);
    const done = this.#finalDone;
    this.#finalDone = undefined;
    done?.();
  }

  /** Called by the transaction when the send failed: destroys the stream with the error. */
  fail(err: SMTPError): void {
    if (this.#settled) return;
    this.#settled = true;
    this.destroy(err);
  }

  #forward(chunk: Buffer, done: Done): void {
    if (this.#sink!.write(chunk)) done();
    else this.#sink!.once("drain", done);
  }

  #endBody(): void {
    // attach() and _final() can both get here for one stream (a held write completing
    // synchronously lets Writable call _final at once): the body ends exactly once.
    if (this.#bodyEnded) return;
    this.#bodyEnded = true;
    this.#sink!.end();
  }
}

/**
 * send() with a Readable (or an old-style stream with pipe()): pipes `source` into
 * `stream` and settles as `sending` (the transaction writing `stream`) does, or at once
 * when the stream is abandoned (its source failed, even while the send waits its turn).
 * It never waits for the stream's own events: a stream destroyed without an error (an
 * old-style pipe() does that when its source closes early) emits no 'error'. A failed send
 * destroys the source, so it is never left paused.
 */
export async function sendFromSource(source: Readable, stream: SendStream, sending: Promise<SendInfo>): Promise<SendInfo> {
  const result = settledWith(stream, sending);
  source.pipe(stream);
  try {
    return await result;
  } catch (err) {
    // Only what the source has: an old-style stream has no unpipe() (its pipe() lets go
    // when the SendStream closes) and may have no destroy(). A TypeError from a missing
    // method must never replace the send's real error.
    if (typeof source.unpipe === "function") source.unpipe(stream);
    if (typeof source.destroy === "function") source.destroy();
    throw err;
  }
}

/**
 * send() with the whole message and an AbortSignal: through a SendStream, so an abort is
 * handled by the one mechanism streams have (see SendStream.abort). Settles as
 * sendFromSource does.
 */
export function sendBytes(bytes: Buffer, stream: SendStream, sending: Promise<SendInfo>): Promise<SendInfo> {
  const result = settledWith(stream, sending);
  // Destroyed already (an aborted signal): nothing to write.
  if (!stream.destroyed) stream.end(bytes);
  return result;
}

/** As `sending` settles, or rejects at once when the stream is abandoned. */
function settledWith(stream: SendStream, sending: Promise<SendInfo>): Promise<SendInfo> {
  sending.catch(() => {});
  // The failure reaches the caller through the Promise; an 'error' event nobody listens
  // to would crash the process instead.
  stream.on("error", () => {});
  return Promise.race([sending, stream.aborted.then((err) => Promise.reject(err))]);
}
