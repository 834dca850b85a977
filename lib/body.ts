/**
 * The two ways a message body reaches the socket, and the replies each waits for.
 *
 * DATA (RFC 5321 §4.1.1.4): after 354 the body is encoded (CRLF, dot-stuffing,
 * terminator); the final reply, or LMTP's one per recipient, comes after the terminator,
 * so any reply before the body ended is an early refusal.
 * BDAT (RFC 3030): the body is normalised to CRLF (or left as is for BINARYMIME), cut into
 * chunks of a fixed size whatever the caller's writes (ChunkCutter) and pipelined; every
 * chunk gets a reply, counted rather than kept, and the final one(s) answer "BDAT n LAST".
 * A bounded number of chunks is in flight: when the bound is reached the source waits, as
 * it does for a full socket. Until the envelope is accepted only the first chunk may go
 * (it travels with MAIL and RCPT). A refused chunk stops the transaction.
 *
 * The channels call the stages' encoding directly and write to the socket themselves:
 * a chunk costs one function call and one socket write on its way, not a Transform's
 * buffering and events, and the socket's own backpressure ('drain') reaches the
 * SendStream unchanged. A channel only moves bytes and collects replies; the transaction
 * decides what they mean.
 */
import { Socket } from "node:net";
import type { Reply } from "./types.js";
import type { SMTPError } from "./errors.js";
import type { CommandQueue } from "./command-queue.js";
import type { BodySink } from "./send-stream.js";
import { BodyEncoding } from "./stages/data-encoder.js";
import { ChunkCutter, bdatLine } from "./stages/bdat-encoder.js";
import { giveBack, isRecycled, takeRecycled } from "./stages/window-memory.js";

/** Something that went wrong before the body was complete. */
export type BodyProblem = { kind: "early"; reply: Reply; command: string } | { kind: "dead"; err: SMTPError };

export interface BodyChannel {
  /** Where the message goes: the SendStream writes into it. */
  sink: BodySink;
  /**
   * Resolves once the last byte of the body (terminator or last chunk) went to the socket.
   * Made when asked for, as is `problem`: a whole message (send() with a Buffer) has
   * ended before the transaction would wait on either, and costs neither.
   */
  flushed(): Promise<void>;
  /** True once `flushed` has resolved or is about to: the body's last byte was written. */
  ended(): boolean;
  /** Resolves if a reply refuses the message before it is complete, or the connection dies. */
  problem(): Promise<BodyProblem>;
  /** The reply of the first refused BDAT chunk (never for DATA); complete once the final replies are in. */
  refusedChunk(): Reply | undefined;
  /** The final replies; complete once `flushed` resolved. */
  finalReplies: Promise<Reply>[];
  /** messageSize: bytes after 354 with the terminator, or the sum of BDAT payloads. */
  size(): number;
  /** Stops the body at once: nothing more reaches the socket. */
  stop(): void;
}

export interface BdatChannel extends BodyChannel {
  /** The envelope was accepted: more than the first chunk may go now. */
  accept(): void;
  /**
   * LMTP: "BDAT n LAST" gets one reply per accepted recipient (`count`), or one when none
   * was. Called as the last RCPT reply is dispatched, before any BDAT reply can be: the
   * last chunk may have left with the envelope, before the count was known.
   */
  expectFinals(count: number): void;
}

export interface BdatOptions {
  /** Payload bytes per chunk (the last may be shorter). */
  chunkSize: number;
  /** BINARYMIME: send the bytes as they are, without line-end normalisation. */
  binary: boolean;
  /** Each BDAT command line as it is written (the transcript, diagnostics). */
  noteCommand(line: string): void;
}

/**
 * Chunks written whose reply has not come yet, at most: with 256 KiB chunks, 2 MiB the
 * server has not confirmed. Enough to keep a fast link busy; a bound so that neither
 * memory nor the reply queue grows with the message.
 */
export const MAX_CHUNKS_IN_FLIGHT = 8;

type Write = (bytes: Buffer) => void;

/** How a channel turns the message into socket writes. */
interface BodyWriter {
  /** Takes one chunk of the message, writing what may go now. */
  encode(chunk: Buffer, write: Write): void;
  /** Writes the end of the body; false when it must wait for a reply first (called again then). */
  finish(write: Write): boolean;
  /** True while it holds bytes it may not write yet: the source must wait. */
  busy(): boolean;
  /** Writes what became allowed (a reply freed a slot). */
  pump(write: Write): void;
}

const isPositive = (reply: Reply): boolean => reply.code >= 200 && reply.code < 300;

function expectReply(queue: CommandQueue, command: string): Promise<Reply> {
  const reply = queue.expect(command);
  reply.catch(() => {});
  return reply;
}

/**
 * A sink writing straight to the socket through `writer`. `resume` is for the writer's
 * replies: a freed slot lets the body end or the source write again.
 */
function socketSink(socket: Socket, writer: BodyWriter) {
  let stopped = false;
  let ending = false;
  let ended = false;
  let full = false;
  const write = (bytes: Buffer) => {
    // An encoded window's memory is used again once the socket has written it (window-memory.ts).
    if (!(isRecycled(bytes) ? socket.write(bytes, () => giveBack(bytes)) : socket.write(bytes))) full = true;
  };
  let flushedPromise: Promise<void> | undefined;
  let onEnd: (() => void) | undefined;
  // One 'drain' listener for the whole body rather than one per chunk: a full socket is
  // the normal state of a large message, so this runs for most chunks. It is added when
  // the source first has to wait: a whole message written at once never does.
  let waiting: (() => void) | undefined;
  let listening = false;
  const release = () => {
    if (!waiting || full || writer.busy()) return;
    const listener = waiting;
    waiting = undefined;
    listener();
  };
  const onDrain = () => {
    full = false;
    release();
  };
  const detach = () => {
    if (listening) socket.off("drain", onDrain);
    listening = false;
  };
  const tryEnd = () => {
    // The socket stays corked until the current turn's promise jobs have run: the next
    // queued send writes its envelope in them (see OperationQueue), so the terminator and
    // that envelope leave in one write and reach the server as one flight.
    socket.cork();
    if (!writer.finish(write)) {
      socket.uncork();
      return;
    }
    ended = true;
    detach();
    onEnd?.();
    process.nextTick(() => socket.uncork());
  };
  const sink: BodySink = {
    write(chunk) {
      if (stopped) return true;
      full = false;
      writer.encode(chunk, write);
      return !full && !writer.busy();
    },
    end() {
      // A dead connection takes no end of data: the message must not count as possibly
      // delivered (outcome.ts) because of a terminator that never left.
      if (stopped || ending || socket.destroyed) return;
      ending = true;
      tryEnd();
    },
    once(_event, listener) {
      waiting = listener;
      if (listening || stopped || ended) return;
      listening = true;
      socket.on("drain", onDrain);
    },
    cork: () => socket.cork(),
    uncork: () => socket.uncork(),
  };
  const resume = () => {
    if (stopped || ended) return;
    writer.pump(write);
    if (ending) tryEnd();
    else release();
  };
  const stop = () => {
    stopped = true;
    detach();
  };
  const flushed = () => (flushedPromise ??= ended ? Promise.resolve() : new Promise<void>((resolve) => (onEnd = resolve)));
  return { sink, stop, resume, ended: () => ended, flushed };
}

/** DATA after its 354: `expected` final replies (1, or one per accepted LMTP recipient). */
export function dataChannel(queue: CommandQueue, socket: Socket, expected: number): BodyChannel {
  const finalReplies: Promise<Reply>[] = [];
  for (let i = 0; i < expected; i++) finalReplies.push(expectReply(queue, "DATA"));
  // Only a socket's write callback says it is done with a Buffer; a stream given as the
  // connection may keep what it is written (a PassThrough does), so it gets new ones.
  const encoding = new BodyEncoding(true, undefined, socket instanceof Socket ? takeRecycled : undefined);
  let problem: Promise<BodyProblem> | undefined;
  const { sink, stop, ended, flushed } = socketSink(
    socket,
    {
      encode: (chunk, write) => encoding.encode(chunk, write),
      finish: (write) => {
        write(encoding.finish()!);
        return true;
      },
      busy: () => false,
      pump: () => {},
    },
  );
  return {
    sink,
    flushed,
    problem: () =>
      (problem ??= finalReplies[0]!.then(
        (reply): BodyProblem => ({ kind: "early", reply, command: "DATA" }),
        (err: SMTPError): BodyProblem => ({ kind: "dead", err }),
      )),
    refusedChunk: () => undefined,
    finalReplies,
    size: () => encoding.bytes,
    stop,
    ended,
  };
}

/**
 * BDAT chunks, pipelined, for the body. Made before the envelope's replies are in: only
 * the first chunk may go until accept() (RFC 3030 with RFC 2920: MAIL, RCPT and BDAT in
 * one flight; a server that refused the envelope reads and discards the chunk).
 */
export function bdatChannel(queue: CommandQueue, socket: Socket, options: BdatOptions): BdatChannel {
  let report!: (problem: BodyProblem) => void;
  const problem = new Promise<BodyProblem>((resolve) => (report = resolve));
  const finalReplies: Promise<Reply>[] = [];
  const cutter = new ChunkCutter(options.chunkSize);
  const encoding = options.binary ? undefined : new BodyEncoding(false);
  const add = (bytes: Buffer) => cutter.add(bytes);
  let payload = 0;
  let limit = 1;
  let inFlight = 0;
  let finals = 1;
  let lastSent = false;
  let tailAdded = false;
  let refused: Reply | undefined;

  // One pair of handlers for every chunk: a reply is counted, only a refusal is kept.
  const onChunkReply = (reply: Reply) => {
    inFlight--;
    if (!isPositive(reply)) {
      refused ??= reply;
      report({ kind: "early", reply, command: "BDAT" });
    } else resume();
  };
  const onFailure = (err: SMTPError) => report({ kind: "dead", err });

  // Each chunk's reply is queued before its frame is written, so it can never arrive first.
  const frame = (last: boolean, write: Write) => {
    const size = Math.min(cutter.length, options.chunkSize);
    const parts = cutter.take();
    if (last) {
      lastSent = true;
      for (let i = 0; i < finals; i++) finalReplies.push(expectReply(queue, "BDAT"));
      finalReplies[0]!.catch(onFailure);
    } else {
      inFlight++;
      queue.expectWith("BDAT", onChunkReply, onFailure);
    }
    payload += size;
    const line = bdatLine(size, last);
    options.noteCommand(line);
    write(Buffer.from(`${line}\r\n`, "latin1"));
    for (const part of parts) write(part);
  };
  // Whole chunks go as soon as they are complete and a slot is free, so the number of
  // commands depends only on the size of the body.
  const pump = (write: Write) => {
    while (!refused && inFlight < limit && cutter.length >= options.chunkSize) frame(false, write);
  };
  const { sink, stop, resume, ended, flushed } = socketSink(
    socket,
    {
      encode(chunk, write) {
        if (encoding) encoding.encode(chunk, add);
        else add(chunk);
        pump(write);
      },
      finish(write) {
        if (!tailAdded) {
          tailAdded = true;
          const tail = encoding?.finish();
          if (tail) add(tail);
        }
        pump(write);
        // "BDAT 0 LAST" carries no bytes, so it needs no free slot.
        if (refused || cutter.length >= options.chunkSize || (cutter.length > 0 && inFlight >= limit)) return false;
        frame(true, write);
        return true;
      },
      busy: () => cutter.length >= options.chunkSize,
      pump,
    },
  );
  return {
    sink,
    flushed,
    problem: () => problem,
    refusedChunk: () => refused,
    finalReplies,
    size: () => payload,
    stop,
    ended,
    accept() {
      limit = MAX_CHUNKS_IN_FLIGHT;
      resume();
    },
    expectFinals(count) {
      // Nothing is queued behind the last chunk before this transaction hands the wire over.
      if (lastSent) for (let i = finals; i < count; i++) finalReplies.push(expectReply(queue, "BDAT"));
      finals = count;
    },
  };
}
