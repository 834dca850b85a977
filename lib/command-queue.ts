/**
 * The FIFO of commands waiting for a reply.
 *
 * SMTP replies carry no tag, so the only way to know which command a reply answers is
 * order (RFC 5321 §4.1, RFC 2920 §3.1): one entry per expected reply, matched first in,
 * first out. Writing a command and queueing its entry are one step, so they can never
 * drift apart. The queue knows nothing of what a reply means; callers judge the code.
 */
import type { Reply } from "./types.js";
import { protocolError, type SMTPError } from "./errors.js";

interface Entry {
  command: string;
  resolve(reply: Reply): void;
  reject(err: SMTPError): void;
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
      if (this.#failure) return reject(this.#failure);
      this.#entries.push({ command, resolve, reject });
    });
  }

  /**
   * Writes `line` and waits for its reply. The promise always gets a handler here, so a
   * pipelined group failed by a dead connection never leaves an unhandled rejection
   * behind; callers still see the rejection when they await it.
   */
  send(command: string, line: string, logAs?: string): Promise<Reply> {
    if (!this.#failure) {
      // A line refused by the writer (CR or LF in it) queues no entry, so the replies to
      // later commands stay matched to them; the caller gets a rejection, never a throw.
      try {
        this.#write(line, logAs);
      } catch (err) {
        const refused = Promise.reject(err as SMTPError);
        refused.catch(() => {});
        return refused;
      }
    }
    const reply = this.expect(command);
    reply.catch(() => {});
    return reply;
  }

  /**
   * Writes a pipelined group (RFC 2920) and waits for all its replies, in order: one
   * promise for the group instead of one per command, as the group is judged only once
   * its last reply is in. If the connection dies first, it rejects with that error. A
   * line refused by the writer stops the group there: the lines before it still get
   * their replies read (and dropped), so later replies stay matched.
   */
  sendGroup(commands: readonly { command: string; line: string; logAs?: string }[]): Promise<Reply[]> {
    return new Promise<Reply[]>((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      const replies: Reply[] = new Array(commands.length);
      let waiting = commands.length;
      for (let i = 0; i < commands.length; i++) {
        const { command, line, logAs } = commands[i]!;
        try {
          this.#write(line, logAs);
        } catch (err) {
          return reject(err as SMTPError);
        }
        // The writer may have failed the queue (a connection found dead) without throwing.
        if (this.#failure) return reject(this.#failure);
        this.#entries.push({
          command,
          resolve: (reply) => {
            replies[i] = reply;
            if (--waiting === 0) resolve(replies);
          },
          reject,
        });
      }
    });
  }

  /** Hands a reply to the oldest waiting command. A reply nobody asked for is EPROTOCOL. */
  dispatch(reply: Reply): void {
    const entry = this.#entries.shift();
    if (!entry) throw protocolError(`Unexpected reply from server with no command pending: ${reply.code} ${reply.lines[0] ?? ""}`);
    entry.resolve(reply);
  }

  /** Fails every waiting command with `err`, and every later one at once. */
  failAll(err: SMTPError): void {
    this.#failure ??= err;
    const entries = this.#entries;
    this.#entries = [];
    for (const entry of entries) entry.reject(err);
  }
}
