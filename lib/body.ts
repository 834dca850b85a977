/**
 * The two ways a message body reaches the socket, and the replies each waits for.
 *
 * DATA (RFC 5321 §4.1.1.4): after 354 the body goes through the DataEncoder (CRLF,
 * dot-stuffing, terminator); the final reply, or LMTP's one per recipient, comes after
 * the terminator, so any reply before the body ended is an early refusal.
 * BDAT (RFC 3030): the body is normalised to CRLF, framed in length-prefixed chunks and
 * pipelined; every chunk gets a reply, and the final one(s) answer "BDAT 0 LAST". A
 * refused chunk stops the transaction.
 *
 * A channel only moves bytes and collects replies; the transaction decides what they mean.
 */
import type { Socket } from "node:net";
import type { Reply } from "./types.js";
import type { SMTPError } from "./errors.js";
import type { CommandQueue } from "./command-queue.js";
import type { BodySink } from "./send-stream.js";
import { DataEncoder } from "./stages/data-encoder.js";
import { BdatEncoder } from "./stages/bdat-encoder.js";

/** Something that went wrong before the body was complete. */
export type BodyProblem = { kind: "early"; reply: Reply; command: string } | { kind: "dead"; err: SMTPError };

export interface BodyChannel {
  /** Where the SendStream writes the message. */
  sink: BodySink;
  /** Resolves once the last byte of the body (terminator or last chunk) went to the socket. */
  flushed: Promise<void>;
  /** Resolves if a reply refuses the message before it is complete, or the connection dies. */
  problem: Promise<BodyProblem>;
  /** Replies to intermediate BDAT chunks (none for DATA); each must be positive. */
  chunkReplies: Promise<Reply>[];
  /** The final replies; complete once `flushed` resolved. */
  finalReplies: Promise<Reply>[];
  /** messageSize: bytes after 354 with the terminator, or the sum of BDAT payloads. */
  size(): number;
  /** Stops the body at once (nothing more reaches the socket). */
  stop(): void;
}

/** readable-stream's pipe/unpipe take any Node Writable; its types only know its own. */
const target = (stream: unknown): never => stream as never;

function expectReply(queue: CommandQueue, command: string): Promise<Reply> {
  const reply = queue.expect(command);
  reply.catch(() => {});
  return reply;
}

/** DATA after its 354: `expected` final replies (1, or one per accepted LMTP recipient). */
export function dataChannel(queue: CommandQueue, socket: Socket, expected: number): BodyChannel {
  const finalReplies = Array.from({ length: expected }, () => expectReply(queue, "DATA"));
  const encoder = new DataEncoder();
  encoder.pipe(target(socket), { end: false });
  return {
    sink: encoder,
    flushed: new Promise((resolve) => encoder.once("end", resolve)),
    problem: new Promise((resolve) =>
      finalReplies[0]!.then(
        (reply) => resolve({ kind: "early", reply, command: "DATA" }),
        (err: SMTPError) => resolve({ kind: "dead", err }),
      ),
    ),
    chunkReplies: [],
    finalReplies,
    size: () => encoder.bytes,
    stop() {
      encoder.unpipe(target(socket));
      encoder.destroy();
    },
  };
}

/** BDAT chunks, pipelined, for the body; "BDAT 0 LAST" gets `expected` replies. */
export function bdatChannel(queue: CommandQueue, socket: Socket, expected: number): BodyChannel {
  let report!: (problem: BodyProblem) => void;
  const problem = new Promise<BodyProblem>((resolve) => (report = resolve));
  const chunkReplies: Promise<Reply>[] = [];
  const finalReplies: Promise<Reply>[] = [];
  const watch = (reply: Promise<Reply>, mustBePositive: boolean) =>
    reply.then(
      (r) => {
        if (mustBePositive && (r.code < 200 || r.code >= 300)) report({ kind: "early", reply: r, command: "BDAT" });
      },
      (err: SMTPError) => report({ kind: "dead", err }),
    );
  const framer = new BdatEncoder({
    onChunk(_size, last) {
      if (!last) {
        const reply = expectReply(queue, "BDAT");
        chunkReplies.push(reply);
        watch(reply, true);
        return;
      }
      for (let i = 0; i < expected; i++) finalReplies.push(expectReply(queue, "BDAT"));
      watch(finalReplies[0]!, false);
    },
  });
  const normaliser = new DataEncoder({ dotStuffing: false });
  normaliser.pipe(target(framer));
  framer.pipe(target(socket), { end: false });
  return {
    sink: normaliser,
    flushed: new Promise((resolve) => framer.once("end", resolve)),
    problem,
    chunkReplies,
    finalReplies,
    size: () => framer.bytes,
    stop() {
      normaliser.unpipe(target(framer));
      framer.unpipe(target(socket));
      normaliser.destroy();
      framer.destroy();
    },
  };
}
