/**
 * The fast SMTP sink: the server every client talks to in the benchmarks. It answers
 * EHLO/MAIL/RCPT/DATA/BDAT at once, batches the replies to one read into one write (as
 * RFC 2920 lets a server do), and in DATA only counts body bytes, looking for the
 * `\r\n.\r\n` terminator with `indexOf`; a BDAT chunk (RFC 3030) is counted by its
 * length, and "BDAT n LAST" ends the message. It never stores a message, so it is far
 * faster than any client and the figures measure the client.
 *
 * For the correctness check it counts, since the last `reset`: messages, body bytes
 * (everything between the 354 and the terminator's `.\r\n`, dot-stuffing kept, or the sum of
 * the BDAT chunks), optional
 * SHA-256 of those bytes, and "flights": reads that arrived after the sink had written
 * a reply since the previous read and that carry part of a transaction (MAIL, RCPT,
 * DATA, BDAT, RSET or body bytes; the greeting, EHLO and QUIT are counted apart). On a link
 * with delay, flights per message is the number of round trips a client waits for per
 * message.
 *
 * It runs as its own process and talks to the runner over IPC:
 *   → { type: "ready", port }            once listening
 *   ← { type: "reset", hash }            zero the counters; hash the bodies when true
 *   ← { type: "stats" }  → { type: "stats", stats }
 * Left out on purpose: TLS, AUTH, SIZE checks, BINARYMIME. It is not an SMTP server for mail.
 */
import { createServer, type Socket } from "node:net";
import { createHash, type Hash } from "node:crypto";
import { answerRunner } from "./sink-control.js";

export type { SinkStats } from "./sink-control.js";

const TERMINATOR = Buffer.from("\r\n.\r\n");
const CRLF = Buffer.from("\r\n");
const EHLO_REPLY = "250-sink.bench\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 0\r\n";
const BDAT = /^BDAT (\d+)( LAST)?$/i;
const MAX_RECORDED = 64;

const state = answerRunner();

/**
 * One client session: command mode until DATA's 354, then data mode until the terminator;
 * or, after a BDAT command, chunk mode for its announced number of bytes.
 */
class Session {
  #socket: Socket;
  #inData = false;
  /** Bytes of the current BDAT chunk still to read. */
  #chunkLeft = 0;
  #chunkIsLast = false;
  /** A BDAT message is under way: its first chunk came, its LAST not yet. */
  #inChunkedMessage = false;
  /** Unfinished command line bytes (command mode). */
  #line = "";
  /** The last bytes of the previous read in data mode (at most 4), not yet counted. */
  #pending: Buffer = CRLF;
  /** How many bytes at the start of #pending are not body: the CRLF that ended "DATA". */
  #virtual = 2;
  #bodyBytes = 0;
  #hash: Hash | undefined;
  #out = "";
  #repliedSinceRead = false;
  /** The current read carried part of a transaction. */
  #inTransaction = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", () => socket.destroy());
    this.#reply("220 sink.bench ESMTP ready\r\n");
    this.#flush();
  }

  #reply(text: string): void {
    this.#out += text;
  }

  #flush(): void {
    if (this.#out.length === 0) return;
    this.#socket.write(this.#out, "latin1");
    this.#out = "";
    this.#repliedSinceRead = true;
  }

  #onData(chunk: Buffer): void {
    const newFlight = this.#repliedSinceRead;
    this.#repliedSinceRead = false;
    this.#inTransaction = this.#inData || this.#chunkLeft > 0;
    let offset = 0;
    while (offset >= 0 && offset < chunk.length) {
      offset = this.#inData ? this.#takeData(chunk, offset) : this.#chunkLeft > 0 ? this.#takeChunk(chunk, offset) : this.#takeCommands(chunk, offset);
    }
    if (newFlight) {
      if (this.#inTransaction) state.stats.flights++;
      else state.stats.setupFlights++;
    }
    if (offset >= 0) this.#flush();
  }

  /** Reads command lines from `chunk` at `offset`; returns where DATA's body starts, or the end. */
  #takeCommands(chunk: Buffer, offset: number): number {
    while (offset < chunk.length) {
      const lf = chunk.indexOf(0x0a, offset);
      if (lf < 0) {
        this.#line += chunk.toString("latin1", offset);
        if (this.#line.length > 4096) {
          this.#socket.destroy();
          return -1;
        }
        return chunk.length;
      }
      const line = (this.#line + chunk.toString("latin1", offset, lf)).replace(/\r$/, "");
      this.#line = "";
      offset = lf + 1;
      state.stats.commands++;
      const verb = line.slice(0, 4).toUpperCase();
      switch (verb) {
        case "EHLO":
        case "LHLO":
          this.#reply(EHLO_REPLY);
          break;
        case "HELO":
          this.#reply("250 sink.bench\r\n");
          break;
        case "MAIL":
          this.#inTransaction = true;
          this.#reply("250 2.1.0 Ok\r\n");
          break;
        case "RCPT":
          this.#inTransaction = true;
          this.#reply("250 2.1.5 Ok\r\n");
          break;
        case "RSET":
          this.#inTransaction = true;
          this.#reply("250 2.0.0 Ok\r\n");
          break;
        case "NOOP":
          this.#reply("250 2.0.0 Ok\r\n");
          break;
        case "DATA":
          this.#inTransaction = true;
          this.#reply("354 End data with <CR><LF>.<CR><LF>\r\n");
          this.#inData = true;
          // The CRLF ending "DATA" counts as the line end before an immediate ".\r\n".
          this.#pending = CRLF;
          this.#virtual = 2;
          this.#startMessage();
          return offset;
        case "BDAT": {
          this.#inTransaction = true;
          const match = BDAT.exec(line);
          if (!match) {
            this.#reply("501 5.5.4 Syntax: BDAT size [LAST]\r\n");
            break;
          }
          if (!this.#inChunkedMessage) this.#startMessage();
          this.#inChunkedMessage = true;
          this.#chunkLeft = Number(match[1]);
          this.#chunkIsLast = Boolean(match[2]);
          if (this.#chunkLeft === 0) return this.#endChunk(offset);
          return offset;
        }
        case "QUIT":
          this.#reply("221 2.0.0 Bye\r\n");
          this.#flush();
          this.#socket.end();
          return -1;
        default:
          this.#reply("502 5.5.2 Command not recognized\r\n");
      }
    }
    return offset;
  }

  /** Counts body bytes from `chunk` at `offset`; returns the offset after the terminator, or the end. */
  #takeData(chunk: Buffer, offset: number): number {
    // The last 4 bytes of each read stay uncounted in #pending so that a terminator split
    // across reads is found and the body is counted (and hashed) exactly, in order.
    const pending = this.#pending;
    const seam = Buffer.concat([pending, chunk.subarray(offset, offset + 4)]);
    const atSeam = seam.indexOf(TERMINATOR);
    if (atSeam >= 0 && atSeam < pending.length) {
      // The body ends with the CRLF before the final ".\r\n".
      this.#count(seam.subarray(this.#virtual, Math.max(this.#virtual, atSeam + 2)));
      return this.#finishMessage(offset + atSeam + TERMINATOR.length - pending.length);
    }
    const at = chunk.indexOf(TERMINATOR, offset);
    if (at >= 0) {
      this.#count(pending.subarray(this.#virtual));
      this.#count(chunk.subarray(offset, at + 2));
      return this.#finishMessage(at + TERMINATOR.length);
    }
    if (chunk.length - offset >= 4) {
      this.#count(pending.subarray(this.#virtual));
      this.#count(chunk.subarray(offset, chunk.length - 4));
      this.#pending = Buffer.from(chunk.subarray(chunk.length - 4));
      this.#virtual = 0;
    } else {
      const merged = Buffer.concat([pending, chunk.subarray(offset)]);
      const drop = Math.max(0, merged.length - 4);
      if (drop > this.#virtual) this.#count(merged.subarray(this.#virtual, drop));
      this.#virtual = Math.max(0, this.#virtual - drop);
      this.#pending = merged.subarray(drop);
    }
    return chunk.length;
  }

  /** Counts the bytes of the current BDAT chunk in `chunk` at `offset`; returns where they end. */
  #takeChunk(chunk: Buffer, offset: number): number {
    const end = Math.min(chunk.length, offset + this.#chunkLeft);
    this.#count(chunk.subarray(offset, end));
    this.#chunkLeft -= end - offset;
    return this.#chunkLeft > 0 ? end : this.#endChunk(end);
  }

  /** The chunk is all in: answer it, or, for "BDAT n LAST", record the message. */
  #endChunk(end: number): number {
    if (!this.#chunkIsLast) {
      this.#reply("250 2.0.0 Ok: chunk\r\n");
      return end;
    }
    this.#inChunkedMessage = false;
    return this.#finishMessage(end);
  }

  #startMessage(): void {
    this.#bodyBytes = 0;
    this.#hash = state.hashing ? createHash("sha256") : undefined;
  }

  #count(part: Buffer): void {
    this.#bodyBytes += part.length;
    this.#hash?.update(part);
  }

  /** Records the message that ended at `end` in the current read; returns `end`. */
  #finishMessage(end: number): number {
    this.#inData = false;
    state.stats.messages++;
    state.stats.bytes += this.#bodyBytes;
    if (state.stats.sizes.length < MAX_RECORDED) state.stats.sizes.push(this.#bodyBytes);
    if (this.#hash && state.stats.hashes.length < MAX_RECORDED) state.stats.hashes.push(this.#hash.digest("hex"));
    this.#hash = undefined;
    this.#reply("250 2.0.0 Ok: queued\r\n");
    return end;
  }
}

const server = createServer((socket) => {
  state.stats.connections++;
  new Session(socket);
});


server.listen(Number(process.env.SINK_PORT ?? 0), "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  if (process.send) process.send({ type: "ready", port });
  else process.stdout.write(`sink listening on 127.0.0.1:${port}\n`);
});
