/**
 * Both directions of a session's wire: each decoded reply goes to the command waiting for
 * it, each command line goes to the socket, and neither passes unchecked. A reply after
 * STARTTLS's 220 is forged (RFC 3207 response injection); a 421 anywhere ends the
 * session; a reply nobody asked for would put every later reply off by one; a command
 * line with CR or LF would be two commands. Each of these ends the session (`fail`).
 *
 * Deliberately left out: the bytes-to-replies stages (reply-pipeline.ts), what a reply
 * means (the protocol modules that await it), and teardown (session.ts).
 */
import type { Socket } from "node:net";
import type { Reply } from "./types.js";
import type { CommandQueue } from "./command-queue.js";
import type { Transcript } from "./logger.js";
import { badInput, fromReply, fromSocketError, protocolError, replyText, SMTPError, REPLY } from "./errors.js";
import { ReplyPipeline } from "./reply-pipeline.js";
import { startTlsInjection } from "./starttls.js";
import { publishCommand, publishReply } from "./diagnostics.js";

/** What the wire needs of its session. */
export interface WireOwner {
  readonly id: string;
  readonly queue: CommandQueue;
  readonly transcript: Transcript;
  /** Closed already: nothing more is read or written. */
  readonly isClosed: boolean;
  /** QUIT was sent: its 221 and the server's close are expected. */
  readonly isQuitting: boolean;
  /** Records the server's last reply as text (the connection's `lastServerResponse`). */
  lastReply(text: string): void;
  /** Ends the session: with `err`, or cleanly when undefined. */
  fail(err?: SMTPError): void;
}

export class Wire {
  readonly #owner: WireOwner;
  #pipeline: ReplyPipeline | undefined;
  /** STARTTLS's 220 came: until the plaintext pipeline stops, any further reply is forged. */
  #upgradeReady = false;

  constructor(owner: WireOwner) {
    this.#owner = owner;
  }

  /** The reply pipeline in use (a new one after STARTTLS); undefined before the first socket. */
  get pipeline(): ReplyPipeline | undefined {
    return this.#pipeline;
  }

  /** Connects `socket` to a fresh reply pipeline whose events end up here. */
  attach(socket: Socket): void {
    const owner = this.#owner;
    this.#pipeline = new ReplyPipeline(socket, {
      reply: (reply) => this.#onReply(reply),
      // A malformed reply is charged to the command it answers (the stages know no commands).
      stageError: (err) => {
        const command = owner.queue.head ?? "CONN";
        const error = fromSocketError(err, command, "EPROTOCOL");
        if (error.command === "CONN") error.command = command;
        owner.fail(error);
      },
      socketError: (err) => owner.fail(fromSocketError(err, owner.queue.head ?? "CONN", "ESOCKET")),
      closed: (lastReply) => this.#onServerClosed(lastReply),
      timeout: () => owner.fail(new SMTPError("ETIMEDOUT", "Timeout: no activity on the connection", { command: owner.queue.head ?? "CONN", temporary: true })),
    });
  }

  /** The plaintext pipeline reads no more after STARTTLS's 220 (see starttls.ts). */
  plaintextStopped(): void {
    this.#upgradeReady = false;
  }

  /** Writes one command line (the command queue's writer); `logAs` is what the transcript shows. */
  write(line: string, logAs?: string): void {
    const owner = this.#owner;
    // Last line of defence against CRLF injection: every caller checked its input, and a
    // command line with CR or LF in it would be two commands on the wire.
    if (/[\r\n]/.test(line)) throw badInput("A command line must not contain CR or LF", "EPROTOCOL");
    if (owner.isClosed || !this.#pipeline) return;
    // A reply that arrived before the command it would answer was written answers nothing.
    // With no other command pending, anything still unread in the reply pipeline was sent
    // unasked; taking it as this command's reply would put every later reply off by one.
    // (The queue writes a command before it queues its entry, so "no other" is size 0.)
    if (owner.queue.size === 0 && this.#pipeline.hasUnreadInput) {
      return owner.fail(protocolError(`Unexpected reply from server with no command pending (before ${line.split(" ")[0]})`, line.split(" ")[0]));
    }
    owner.transcript.client(logAs ?? line);
    publishCommand(owner.id, logAs ?? line);
    this.#pipeline.socket.write(line + "\r\n");
  }

  #onReply(reply: Reply): void {
    const owner = this.#owner;
    if (owner.isClosed) return;
    // A reply after STARTTLS's 220 is forged: it must not even become lastServerResponse.
    if (this.#upgradeReady) return owner.fail(startTlsInjection());
    this.#record(reply);
    const command = owner.queue.head;
    publishReply(owner.id, reply, command);
    if (reply.code === REPLY.SERVICE_NOT_AVAILABLE && !owner.isQuitting) {
      return owner.fail(fromReply("ECONNECTION", "Server is closing the connection", reply, command ?? "CONN"));
    }
    try {
      owner.queue.dispatch(reply);
    } catch (err) {
      return owner.fail(err as SMTPError);
    }
    // Set synchronously, before the rest of this chunk is decoded, so a reply smuggled
    // behind the 220 in the same packet is caught.
    if (command === "STARTTLS" && reply.code === REPLY.SERVICE_READY) this.#upgradeReady = true;
  }

  #onServerClosed(lastReply?: Reply): void {
    const owner = this.#owner;
    if (owner.isClosed) return;
    if (lastReply) this.#record(lastReply);
    if (owner.isQuitting) return owner.fail();
    const command = owner.queue.head ?? "CONN";
    // A refusal said just before closing (421, 554…) explains the close: the error carries
    // it as a reply would, as Nodemailer's does.
    if (lastReply && lastReply.code >= 400) return owner.fail(fromReply("ECONNECTION", "Connection closed unexpectedly", lastReply, command));
    owner.fail(new SMTPError("ECONNECTION", "Connection closed unexpectedly", { command, temporary: true }));
  }

  #record(reply: Reply): void {
    const text = replyText(reply);
    this.#owner.lastReply(text);
    this.#owner.transcript.server(text);
  }
}
