/**
 * One socket wired to its reply stages: socket -> LineSplitter -> ReplyDecoder -> the
 * connection, plus the socket's lifecycle events. The connection makes one per socket (a
 * STARTTLS upgrade makes a second) and never touches the stages itself.
 *
 * Deliberately left out: what a reply means, which command it answers, and errors as the
 * user sees them; the connection decides all of that from the events.
 */
import type { Socket } from "node:net";
import type { Reply } from "./types.js";
import { LineSplitter } from "./stages/line-splitter.js";
import { ReplyDecoder } from "./stages/reply-decoder.js";

/** What the pipeline reports to its connection. */
export interface PipelineEvents {
  reply(reply: Reply): void;
  /** A stage refused the server's bytes (EPROTOCOL: overlong, malformed). */
  stageError(err: unknown): void;
  socketError(err: unknown): void;
  /** The server closed the connection (FIN), or the socket closed. */
  closed(): void;
  /** No activity for the socket timeout. */
  timeout(): void;
}

export class ReplyPipeline {
  readonly socket: Socket;
  readonly #splitter = new LineSplitter();
  readonly #decoder = new ReplyDecoder();
  readonly #events: PipelineEvents;
  readonly #onReply = (reply: Reply) => this.#events.reply(reply);
  readonly #onStageError = (err: unknown) => this.#events.stageError(err);
  readonly #onSocketError = (err: unknown) => this.#events.socketError(err);
  readonly #onClosed = () => this.#events.closed();
  readonly #onTimeout = () => this.#events.timeout();

  constructor(socket: Socket, events: PipelineEvents) {
    this.socket = socket;
    this.#events = events;
    // The stages are not ended with the socket: a server that closes mid-reply has closed
    // the connection (ECONNECTION), not sent a malformed reply (EPROTOCOL).
    socket.pipe(this.#splitter, { end: false }).pipe(this.#decoder);
    this.#decoder.on("data", this.#onReply);
    this.#splitter.on("error", this.#onStageError);
    this.#decoder.on("error", this.#onStageError);
    socket.on("end", this.#onClosed);
    socket.on("close", this.#onClosed);
    socket.on("error", this.#onSocketError);
    socket.on("timeout", this.#onTimeout);
  }

  /**
   * True when the server sent bytes that have not yet become replies handed on: a partial
   * line, lines of an unfinished reply, or anything still buffered between the stages.
   */
  get hasUnreadInput(): boolean {
    const splitter = this.#splitter;
    const decoder = this.#decoder;
    return (
      this.socket.readableLength > 0 ||
      splitter.pendingBytes > 0 ||
      splitter.readableLength > 0 ||
      decoder.writableLength > 0 ||
      decoder.pendingLines > 0 ||
      decoder.readableLength > 0
    );
  }

  /** Stops reading the socket and reporting its events: STARTTLS hands it to TLS. */
  detach(): void {
    const socket = this.socket;
    socket.unpipe(this.#splitter);
    socket.pause();
    this.#decoder.off("data", this.#onReply);
    socket.off("end", this.#onClosed);
    socket.off("close", this.#onClosed);
    socket.off("error", this.#onSocketError);
    socket.off("timeout", this.#onTimeout);
    // The TLS socket reports errors from here on; keep the raw one from crashing.
    socket.on("error", () => {});
    socket.setTimeout(0);
  }

  /** Destroys the socket and the stages; nothing is reported afterwards. */
  destroy(): void {
    this.socket.on("error", () => {});
    this.socket.destroy();
    this.#splitter.destroy();
    this.#decoder.destroy();
  }
}
