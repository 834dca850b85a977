/**
 * One socket wired to its reply stages: socket -> lines -> replies -> the connection,
 * plus the socket's lifecycle events. The connection makes one per socket (a STARTTLS
 * upgrade makes a second) and never touches the stages itself.
 *
 * The pipeline runs the stages' logic (LineScanner, ReplyAssembler: the cores of
 * LineSplitter and ReplyDecoder) straight from the socket's 'data' event: every reply is
 * handed on synchronously, in the same turn as the bytes that completed it, with no
 * stream buffering in between. That is what lets the connection catch a reply smuggled
 * behind STARTTLS's 220 in the same packet, and it saves two Transform hops per reply.
 *
 * Deliberately left out: what a reply means, which command it answers, and errors as the
 * user sees them; the connection decides all of that from the events.
 */
import type { Socket } from "node:net";
import type { Reply } from "./types.js";
import { LineScanner } from "./stages/line-splitter.js";
import { ReplyAssembler } from "./stages/reply-decoder.js";

/** What the pipeline reports to its connection. */
export interface PipelineEvents {
  reply(reply: Reply): void;
  /** A stage refused the server's bytes (EPROTOCOL: overlong, malformed). */
  stageError(err: unknown): void;
  socketError(err: unknown): void;
  /**
   * The server closed the connection (FIN), or the socket closed. `lastReply` is a reply
   * the server sent without its final CRLF just before closing, if any.
   */
  closed(lastReply?: Reply): void;
  /** No activity for the socket timeout. */
  timeout(): void;
}

export class ReplyPipeline {
  readonly socket: Socket;
  readonly #lines = new LineScanner();
  readonly #replies = new ReplyAssembler();
  readonly #events: PipelineEvents;
  /** Set once a stage failed or the pipeline was detached or destroyed: nothing more is read. */
  #stopped = false;
  readonly #onReply = (reply: Reply) => {
    if (!this.#stopped) this.#events.reply(reply);
  };
  readonly #onLine = (line: Buffer) => {
    if (this.#stopped) return;
    const error = this.#replies.take(line, this.#onReply);
    if (error) this.#fail(error);
  };
  readonly #onData = (chunk: Buffer) => {
    if (this.#stopped) return;
    const error = this.#lines.scan(chunk, this.#onLine);
    if (error) this.#fail(error);
  };
  readonly #onSocketError = (err: unknown) => this.#events.socketError(err);
  readonly #onClosed = () => this.#events.closed(this.#unterminatedReply());
  readonly #onTimeout = () => this.#events.timeout();

  constructor(socket: Socket, events: PipelineEvents) {
    this.socket = socket;
    this.#events = events;
    // A server that closes mid-reply has closed the connection (ECONNECTION, from 'end'),
    // not sent a malformed reply: the line held without its line ending is handed on as
    // the LineSplitter stage hands it on at its end, and only a whole reply is taken from
    // it (see #unterminatedReply); the reply assembler is never told the input ended.
    socket.on("data", this.#onData);
    socket.on("end", this.#onClosed);
    socket.on("close", this.#onClosed);
    socket.on("error", this.#onSocketError);
    socket.on("timeout", this.#onTimeout);
  }

  /**
   * True when the server sent bytes that have not yet become replies handed on: a partial
   * line, or lines of an unfinished reply, or bytes the socket has not delivered yet.
   */
  get hasUnreadInput(): boolean {
    return this.socket.readableLength > 0 || this.#lines.pendingBytes > 0 || this.#replies.pendingLines > 0;
  }

  /** Stops reading the socket and reporting its events: STARTTLS hands it to TLS. */
  detach(): void {
    const socket = this.socket;
    this.#stopped = true;
    socket.off("data", this.#onData);
    socket.pause();
    socket.off("end", this.#onClosed);
    socket.off("close", this.#onClosed);
    socket.off("error", this.#onSocketError);
    socket.off("timeout", this.#onTimeout);
    // The TLS socket reports errors from here on; keep the raw one from crashing.
    socket.on("error", () => {});
    socket.setTimeout(0);
  }

  /** Destroys the socket; nothing is reported afterwards. */
  destroy(): void {
    this.#stopped = true;
    this.socket.on("error", () => {});
    this.socket.destroy();
  }

  /**
   * The reply completed by the line held without a line ending when the input ended
   * ("421 4.3.2 Shutting down", then FIN), so the connection can report what the server
   * said as it closed (as Nodemailer does). It is not handed on as an answer: the closed
   * connection is the failure, the reply its explanation. Anything that does not make a
   * whole valid reply is dropped, as before.
   */
  #unterminatedReply(): Reply | undefined {
    if (this.#stopped) return undefined;
    let last: Reply | undefined;
    this.#lines.end((line) => this.#replies.take(line, (reply) => (last = reply)));
    return last;
  }

  #fail(error: Error): void {
    this.#stopped = true;
    this.#events.stageError(error);
  }
}
