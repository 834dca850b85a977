/**
 * The FIFO of commands waiting for a reply.
 *
 * SMTP replies carry no tag, so the only way to know which command a reply answers is
 * order (RFC 5321 §4.1, RFC 2920 §3.1): one entry per expected reply, matched first in,
 * first out. Writing a command and queueing its entry are one step, so they can never
 * drift apart. The queue knows nothing of what a reply means; callers judge the code.
 */
import type { Reply } from "./types.js";
import { connectionFailure, protocolError, type SMTPError } from "./errors.js";

interface Entry {
  command: string;
  resolve(reply: Reply): void;
  reject(err: SMTPError): void;
}

/** A command to write: its name (for errors), the line, and what the transcript shows instead (secrets). */
export interface Command {
  command: string;
  line: string;
  logAs?: string;
}

/** Writes one command line; `logAs` replaces the line in the transcript (secrets). */
export type LineWriter = (line: string, logAs?: string) => void;

export class CommandQueue {
  #entries: Entry[] = [];
  #failure: SMTPError | undefined;
  #write: LineWriter;

  constructor(write: LineWriter) {
    this.#write = write;
  }

  /** Commands still waiting for their reply. */
  get size(): number {
    return this.#entries.length;
  }

  /** The command the next reply will answer, if any. */
  get head(): string | undefined {
    return this.#entries[0]?.command;
  }

  /** Waits for a reply nothing was written for: the greeting, or a second LMTP reply. */
  expect(command: string): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      if (this.#failure) return reject(connectionFailure(this.#failure, command));
      this.#entries.push({ command, resolve, reject });
    });
  }

  /**
   * Like expect(), with handlers instead of a Promise, for replies that are counted rather
   * than kept (BDAT chunks): a long body then costs no promise per chunk. On a dead
   * connection `onFailure` is called at once.
   */
  expectWith(command: string, onReply: (reply: Reply) => void, onFailure: (err: SMTPError) => void): void {
    if (this.#failure) onFailure(connectionFailure(this.#failure, command));
    else this.#entries.push({ command, resolve: onReply, reject: onFailure });
  }

  /**
   * Writes `line` and waits for its reply. The promise always gets a handler here, so a
   * pipelined group failed by a dead connection never leaves an unhandled rejection
   * behind; callers still see the rejection when they await it.
   */
  send(command: string, line: string, logAs?: string): Promise<Reply> {
    const reply = new Promise<Reply>((resolve, reject) => void this.#writeAndQueue({ command, line, logAs }, resolve, reject));
    reply.catch(() => {});
    return reply;
  }

  /**
   * Writes a pipelined group (RFC 2920) and waits for all its replies, in order: one
   * promise for the group instead of one per command, as the group is judged only once
   * its last reply is in. If the connection dies first, it rejects with that error. A
   * line refused by the writer stops the group there: the lines before it still get
   * their replies read (and dropped), so later replies stay matched. `onEach` sees each
   * reply as it is dispatched, before any later reply is (LMTP's count of replies to a
   * BDAT LAST written behind the group depends on the RCPT replies).
   */
  sendGroup(commands: readonly Command[], onEach?: (reply: Reply, index: number) => void): Promise<Reply[]> {
    return new Promise<Reply[]>((resolve, reject) => {
      const replies: Reply[] = new Array(commands.length);
      let waiting = commands.length;
      commands.every((command, i) =>
        this.#writeAndQueue(
          command,
          (reply) => {
            replies[i] = reply;
            onEach?.(reply, i);
            if (--waiting === 0) resolve(replies);
          },
          reject,
        ),
      );
    });
  }

  /**
   * Writes one command line and queues the entry for its reply: the one place where the
   * two happen, so they can never drift apart. A line refused by the writer (CR or LF in
   * it) queues no entry, so the replies to later commands stay matched to them; the
   * refusal, or the failure of a dead connection, goes to `reject`, never as a throw.
   * Returns false when nothing was queued.
   */
  #writeAndQueue({ command, line, logAs }: Command, resolve: (reply: Reply) => void, reject: (err: SMTPError) => void): boolean {
    let refusal: SMTPError | undefined;
    if (!this.#failure) {
      try {
        this.#write(line, logAs);
      } catch (err) {
        refusal = err as SMTPError;
      }
    }
    // The writer may have failed the queue (a connection found dead) without throwing.
    if (!refusal && this.#failure) refusal = connectionFailure(this.#failure, command);
    if (refusal) {
      reject(refusal);
      return false;
    }
    this.#entries.push({ command, resolve, reject });
    return true;
  }

  /** Hands a reply to the oldest waiting command. A reply nobody asked for is EPROTOCOL. */
  dispatch(reply: Reply): void {
    const entry = this.#entries.shift();
    if (!entry) throw protocolError(`Unexpected reply from server with no command pending: ${reply.code} ${reply.lines[0] ?? ""}`);
    entry.resolve(reply);
  }

  /**
   * Fails every waiting command, and every later one at once: each with its own error
   * naming its command, `err` (the shared failure) as cause, so no two operations ever
   * hold the same instance (SPEC §8).
   */
  failAll(err: SMTPError): void {
    this.#failure ??= err;
    const entries = this.#entries;
    this.#entries = [];
    for (const entry of entries) entry.reject(connectionFailure(err, entry.command));
  }
}
