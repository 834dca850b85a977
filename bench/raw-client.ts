/**
 * The "raw socket" client: the least work a client can do. It writes hand-made commands
 * (the envelope as one pipelined group) and pipes bytes that are already dot-stuffed and
 * CRLF straight into the socket. No client that has to encode can beat it.
 *
 * Replies are only counted and checked for the expected first digit.
 */
import { connect, type Socket } from "node:net";
import { once } from "node:events";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";

export class RawClient {
  #socket: Socket;
  #buffered = "";
  #replies: string[] = [];
  #waiting: ((reply: string) => void) | undefined;
  #failed: Error | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", (err) => this.#fail(err));
    socket.on("close", () => this.#fail(new Error("connection closed")));
  }

  /** Connects, reads the greeting and says EHLO. */
  static async open(port: number, host = "127.0.0.1"): Promise<RawClient> {
    const socket = connect({ port, host });
    await once(socket, "connect");
    const client = new RawClient(socket);
    await client.expect("2");
    client.write("EHLO bench.local\r\n");
    await client.expect("2");
    return client;
  }

  get socket(): Socket {
    return this.#socket;
  }

  write(text: string | Buffer): boolean {
    return this.#socket.write(text);
  }

  /** Waits for the next complete reply; fails unless its code starts with `digit`. */
  async expect(digit: string): Promise<string> {
    const reply = await this.#next();
    if (!reply.startsWith(digit)) throw new Error(`unexpected reply: ${reply.trim()}`);
    return reply;
  }

  /** MAIL, RCPT and DATA as one pipelined group; resolves on the 354. */
  async envelope(from: string, to: string): Promise<void> {
    this.write(`MAIL FROM:<${from}>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
    await this.expect("2");
    await this.expect("2");
    await this.expect("3");
  }

  /** Sends already-stuffed bytes and the terminator; resolves on the final reply. */
  async body(source: Readable | Buffer): Promise<void> {
    if (Buffer.isBuffer(source)) this.write(source);
    else await pipeline(source, this.#socket, { end: false });
    this.write(".\r\n");
    await this.expect("2");
  }

  async quit(): Promise<void> {
    this.write("QUIT\r\n");
    await this.expect("2").catch(() => undefined);
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffered += chunk.toString("latin1");
    let start = 0;
    let lf: number;
    while ((lf = this.#buffered.indexOf("\n", start)) >= 0) {
      // A reply ends with a line whose fourth character is a space (or that has only a code).
      if (this.#buffered.charAt(start + 3) !== "-") {
        this.#replies.push(this.#buffered.slice(0, lf + 1));
        this.#buffered = this.#buffered.slice(lf + 1);
        start = 0;
      } else {
        start = lf + 1;
      }
    }
    this.#deliver();
  }

  #deliver(): void {
    if (this.#waiting && this.#replies.length > 0) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting(this.#replies.shift()!);
    }
  }

  #fail(err: Error): void {
    this.#failed ??= err;
    if (this.#waiting) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting(`!${err.message}`);
    }
  }

  #next(): Promise<string> {
    if (this.#replies.length > 0) return Promise.resolve(this.#replies.shift()!);
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#waiting = (reply) => (reply.startsWith("!") ? reject(new Error(reply.slice(1))) : resolve(reply));
    });
  }
}
