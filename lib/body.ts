/**
 * The two ways a message body reaches the socket, and the replies each waits for.
 *
 * DATA (RFC 5321 §4.1.1.4): after 354 the body is encoded (CRLF, dot-stuffing,
 * terminator); the final reply, or LMTP's one per recipient, comes after the terminator,
 * so any reply before the body ended is an early refusal.
 * BDAT (RFC 3030): the body is normalised to CRLF, framed in length-prefixed chunks and
 * pipelined; every chunk gets a reply, and the final one(s) answer "BDAT 0 LAST". A
 * refused chunk stops the transaction.
 *
 * The channels call the stages' encoding directly and write to the socket themselves:
 * a chunk costs one function call and one socket write on its way, not a Transform's
 * buffering and events, and the socket's own backpressure ('drain') reaches the
 * SendStream unchanged. A channel only moves bytes and collects replies; the transaction
 * decides what they mean.
 */
import type { Socket } from "node:net";
import type { Reply } from "./types.js";
import type { SMTPError } from "./errors.js";
import type { CommandQueue } from "./command-queue.js";
import type { BodySink } from "./send-stream.js";
import { BodyEncoding } from "./stages/data-encoder.js";
import { BDAT_LAST, bdatHeader } from "./stages/bdat-encoder.js";

/** Something that went wrong before the body was complete. */
export type BodyProblem = { kind: "early"; reply: Reply; command: string } | { kind: "dead"; err: SMTPError };

export interface BodyChannel {
  /** Where the message goes: the SendStream writes into it. */
  sink: BodySink;
  /** Resolves once the last byte of the body (terminator or last chunk) went to the socket. */
  flushed: Promise<void>;
  /** True once `flushed` has resolved or is about to: the body's last byte was written. */
  ended(): boolean;
  /** Resolves if a reply refuses the message before it is complete, or the connection dies. */
  problem: Promise<BodyProblem>;
  /** Replies to intermediate BDAT chunks (none for DATA); each must be positive. */
  chunkReplies: Promise<Reply>[];
  /** The final replies; complete once `flushed` resolved. */
  finalReplies: Promise<Reply>[];
  /** messageSize: bytes after 354 with the terminator, or the sum of BDAT payloads. */
  size(): number;
  /** Stops the body at once: nothing more reaches the socket. */
  stop(): void;
}

function expectReply(queue: CommandQueue, command: string): Promise<Reply> {
  const reply = queue.expect(command);
  reply.catch(() => {});
  return reply;
}

/** A sink writing straight to the socket; `encode` turns one chunk into socket writes. */
function socketSink(socket: Socket, encode: (chunk: Buffer, write: (bytes: Buffer) => void) => void, finish: (write: (bytes: Buffer) => void) => void, onEnd: () => void) {
  let stopped = false;
  let ended = false;
  let full = false;
  const write = (bytes: Buffer) => {
    if (!socket.write(bytes)) full = true;
  };
  // One 'drain' listener for the whole body rather than one per chunk: a full socket is
  // the normal state of a large message, so this runs for most chunks.
  let waiting: (() => void) | undefined;
  const onDrain = () => {
    const listener = waiting;
    waiting = undefined;
    listener?.();
  };
  socket.on("drain", onDrain);
  const release = () => void socket.off("drain", onDrain);
  const sink: BodySink = {
    write(chunk) {
      if (stopped) return true;
      full = false;
      encode(chunk, write);
      return !full;
    },
    end() {
      // A dead connection takes no end of data: the message must not count as possibly
      // delivered (outcome.ts) because of a terminator that never left.
      if (stopped || socket.destroyed) return;
      // The socket stays corked until the current turn's promise jobs have run: the next
      // queued send writes its envelope in them (see OperationQueue), so the terminator and
      // that envelope leave in one write and reach the server as one flight.
      socket.cork();
      finish(write);
      ended = true;
      release();
      onEnd();
      process.nextTick(() => socket.uncork());
    },
    once(_event, listener) {
      waiting = listener;
    },
    cork: () => socket.cork(),
    uncork: () => socket.uncork(),
  };
  const stop = () => {
    stopped = true;
    release();
  };
  return { sink, stop, ended: () => ended };
}

/** DATA after its 354: `expected` final replies (1, or one per accepted LMTP recipient). */
export function dataChannel(queue: CommandQueue, socket: Socket, expected: number): BodyChannel {
  const finalReplies = Array.from({ length: expected }, () => expectReply(queue, "DATA"));
  const encoding = new BodyEncoding(true);
  let flushed!: () => void;
  const { sink, stop, ended } = socketSink(
    socket,
    (chunk, write) => encoding.encode(chunk, write),
    (write) => write(encoding.finish()!),
    () => flushed(),
  );
  return {
    sink,
    flushed: new Promise((resolve) => (flushed = resolve)),
    problem: new Promise((resolve) =>
      finalReplies[0]!.then(
        (reply) => resolve({ kind: "early", reply, command: "DATA" }),
        (err: SMTPError) => resolve({ kind: "dead", err }),
      ),
    ),
    chunkReplies: [],
    finalReplies,
    size: () => encoding.bytes,
    stop,
    ended,
  };
}

/** BDAT chunks, pipelined, for the body; "BDAT 0 LAST" gets `expected` replies. */
export function bdatChannel(queue: CommandQueue, socket: Socket, expected: number): BodyChannel {
  let report!: (problem: BodyProblem) => void;
  const problem = new Promise<BodyProblem>((resolve) => (report = resolve));
  const chunkReplies: Promise<Reply>[] = [];
  const finalReplies: Promise<Reply>[] = [];
  const encoding = new BodyEncoding(false);
  let payload = 0;
  // Each chunk's reply is queued before its frame is written, so it can never arrive first.
  const frame = (bytes: Buffer, write: (bytes: Buffer) => void) => {
    const reply = expectReply(queue, "BDAT");
    chunkReplies.push(reply);
    reply.then(
      (r) => {
        if (r.code < 200 || r.code >= 300) report({ kind: "early", reply: r, command: "BDAT" });
      },
      (err: SMTPError) => report({ kind: "dead", err }),
    );
    payload += bytes.length;
    socket.cork();
    write(bdatHeader(bytes.length));
    write(bytes);
    socket.uncork();
  };
  let flushed!: () => void;
  const { sink, stop, ended } = socketSink(
    socket,
    (chunk, write) => encoding.encode(chunk, (bytes) => frame(bytes, write)),
    (write) => {
      const tail = encoding.finish();
      if (tail) frame(tail, write);
      for (let i = 0; i < expected; i++) finalReplies.push(expectReply(queue, "BDAT"));
      finalReplies[0]!.catch((err: SMTPError) => report({ kind: "dead", err }));
      write(BDAT_LAST);
    },
    () => flushed(),
  );
  return {
    sink,
    flushed: new Promise((resolve) => (flushed = resolve)),
    problem,
    chunkReplies,
    finalReplies,
    size: () => payload,
    stop,
    ended,
  };
}
