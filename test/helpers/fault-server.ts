/**
 * A scripted `net` server for hostile-server tests: on 127.0.0.1, port 0, each connection
 * plays a transcript of steps (send bytes, expect a command, send one byte at a time,
 * close, reset, stall, stop reading, read a DATA body, upgrade to TLS...) and records
 * everything the client sent, so a test can assert both on what the client did with the
 * server's bytes and on what it put on the wire ("no terminator was sent", "no AUTH in
 * cleartext").
 *
 * It deliberately knows no SMTP beyond lines and the DATA terminator: every reply is in
 * the script, so a test can send anything, valid or not. Implicit TLS (port 465 style)
 * is a script that starts with `{ upgradeTls: certs.server }`.
 */
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { TLSSocket, createSecureContext, type SecureContextOptions } from "node:tls";
import { setTimeout as delay } from "node:timers/promises";

/** Bytes to send: a string is sent as UTF-8, a Buffer as is. */
export type Bytes = string | Buffer | Uint8Array;

/** What an `expect` step accepts: a RegExp tested on the line, a string equal to it, or a predicate. */
export type LineMatcher = RegExp | string | ((line: string) => boolean);

/**
 * One step of a script. Steps run in order; a step that waits for the client (expect,
 * expectData, expectBytes) waits as long as needed, and the script stops quietly if the
 * connection closes first (see FaultConnection.scriptDone / stoppedAt).
 */
export type Step =
  /** Write these bytes. Does not wait for them to be flushed. */
  | { send: Bytes }
  /** Write these bytes one at a time, `byteDelayMs` (default 5) apart. */
  | { sendSlowly: Bytes; byteDelayMs?: number }
  /**
   * Wait for the next command line (ended by LF; a CR before it is removed), record it in
   * `commands` and check it. A mismatch is recorded in `errors` and the connection is
   * destroyed, so the client fails fast instead of the test hanging.
   */
  | { expect: LineMatcher }
  /**
   * Read a DATA body up to and including the terminator "\r\n.\r\n" (the body counts as
   * starting after a line break, so an empty body is ".\r\n") and push the bytes exactly as
   * received, dot-stuffing and terminator included, onto `data`. With `closeAfter`, once
   * that many body bytes arrived without a terminator, the bytes so far are pushed and the
   * connection is destroyed (cut mid-body).
   */
  | { expectData: true; closeAfter?: number }
  /** Read exactly this many bytes (a BDAT chunk) and push them onto `data`. */
  | { expectBytes: number }
  /**
   * Become a TLS server on this connection with these options (at least `key` and
   * `cert`, e.g. `getCerts().server`) and go on with the script over TLS once the
   * handshake is done. Put it right after sending STARTTLS's 220. Cleartext the client
   * sent after the STARTTLS line is kept in `discardedBeforeTls`, never read as commands.
   * If the handshake does not complete (e.g. the client refused the certificate), the
   * error, or an Error saying the connection closed during the handshake, is recorded in
   * `tlsError` and the script stops there.
   */
  | { upgradeTls: SecureContextOptions }
  /** Half-close: send FIN (a TLS close_notify first, over TLS). Reading goes on. */
  | { close: true }
  /**
   * Abort with a TCP RST (resetAndDestroy() on the TCP socket, also under TLS). Ends the
   * script. A Node TLS client that gets the RST right after a record may report a plain
   * end rather than ECONNRESET; over TCP, unread replies just before it may be lost.
   */
  | { reset: true }
  /** Never answer again but keep the connection open, still recording. Ends the script. */
  | { stall: true }
  /**
   * Stop reading the socket (socket.pause()), so the client's writes back up in the
   * kernel and in its own buffers. The script goes on with the next step; an `expect` now
   * would wait forever, so follow it with `call`, `delayMs`, `resumeReading` or `stall`.
   */
  | { readNothing: true }
  /** Undo readNothing. */
  | { resumeReading: true }
  /** Wait this many milliseconds. */
  | { delayMs: number }
  /** Run a function (e.g. wait for a signal from the test); the script waits for its Promise. */
  | { call: (connection: FaultConnection) => void | Promise<void> };

/** A script for every connection, or a function giving the script of connection `index` (0-based). */
export type Script = Step[] | ((index: number) => Step[]);

/**
 * What the fault server saw on one connection. Everything is kept in memory, so keep
 * messages small here; huge ones belong to startServer({ keepData: false }).
 */
export interface FaultConnection {
  /** 0-based, in order of arrival. */
  readonly index: number;
  /** Every byte the client sent: as is before a TLS upgrade, decrypted after it. */
  readonly received: Buffer;
  /** The part of `received` that travelled unencrypted (all of it if TLS never started). */
  readonly cleartext: Buffer;
  /** Command lines (no line ending), in order: those read by `expect` steps and, once the
   * script has finished or stalled, any further lines the client sent. Never DATA bodies. */
  readonly commands: string[];
  /** One Buffer per `expectData` / `expectBytes` step, as received. */
  readonly data: Buffer[];
  /** Cleartext received after the STARTTLS line and before the upgrade, thrown away. */
  readonly discardedBeforeTls: Buffer;
  /** True once the connection runs over TLS (the handshake completed). */
  readonly secure: boolean;
  /** Script mismatches on this connection (also in FaultServer.errors). */
  readonly errors: string[];
  /** Set when an `upgradeTls` handshake did not complete: its error, or one saying the connection closed. */
  readonly tlsError: Error | undefined;
  /** The last socket error (e.g. ECONNRESET from the client). */
  readonly socketError: Error | undefined;
  /**
   * True when every step has run (a `stall` or `reset` step counts as the end). Input
   * already received is still read after the client closed; sends to a closed socket are
   * skipped, waits and slow sends stop the script.
   */
  readonly scriptDone: boolean;
  /** The index of the step where the script stopped without finishing (connection closed, mismatch, TLS failure). */
  readonly stoppedAt: number | undefined;
  /** True once the socket has closed. */
  readonly closed: boolean;
  /** Resolves when the script has finished or stopped (never rejects). */
  readonly done: Promise<void>;
  /** Resolves when the socket has closed (never rejects). */
  readonly whenClosed: Promise<void>;
  /** The socket in use now (a TLSSocket after an upgrade), for anything not covered here. */
  readonly socket: Socket;
}

export interface FaultServer {
  /** The port on 127.0.0.1. */
  port: number;
  host: string;
  /** Every connection so far, in order of arrival. */
  connections: FaultConnection[];
  /** Script mismatches on all connections, e.g. `connection 0, step 3: expected /^MAIL FROM/, got "QUIT"`. */
  errors: string[];
  /** Resolves with connection `index` (default 0) once it has arrived. */
  connection(index?: number): Promise<FaultConnection>;
  /** Throws an Error listing `errors`, if any. */
  assertNoScriptErrors(): void;
  /** Destroys every connection, stops the scripts and closes the server. */
  close(): Promise<void>;
}

/**
 * Starts a fault server on 127.0.0.1, port 0, that plays `script` on every connection
 * (or `script(index)` on connection `index`).
 */
export async function startFaultServer(script: Script): Promise<FaultServer> {
  const connections: Connection[] = [];
  const errors: string[] = [];
  const arrivals: Array<(connection: FaultConnection) => void> = [];
  const server: Server = createServer((socket) => {
    const index = connections.length;
    const connection = new Connection(index, socket, errors);
    connections.push(connection);
    for (const notify of arrivals.splice(0)) notify(connection);
    connection.run(typeof script === "function" ? script(index) : script);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    host: "127.0.0.1",
    connections,
    errors,
    connection(index = 0) {
      return new Promise<FaultConnection>((resolve) => {
        const check = (): void => {
          const found = connections[index];
          if (found) resolve(found);
          else arrivals.push(check);
        };
        check();
      });
    },
    assertNoScriptErrors() {
      if (errors.length > 0) throw new Error(`fault server script errors:\n  ${errors.join("\n  ")}`);
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections) connection.destroy();
      await Promise.all(connections.map((connection) => connection.whenClosed));
      await closed;
    },
  };
}

/** The steps of a normal greeting and EHLO answer advertising `extensions` (e.g. ["PIPELINING", "SIZE 1000"]). */
export function greetAndEhlo(extensions: string[] = [], domain = "fault.example.test"): Step[] {
  return [{ send: `220 ${domain} ESMTP fault server\r\n` }, { expect: /^EHLO /i }, { send: ehloReply(extensions, domain) }];
}

/** The bytes of a 250 EHLO reply advertising `extensions`. */
export function ehloReply(extensions: string[] = [], domain = "fault.example.test"): string {
  const lines = [domain, ...extensions];
  return lines.map((line, i) => `250${i === lines.length - 1 ? " " : "-"}${line}\r\n`).join("");
}

/**
 * The steps of an accepted envelope up to DATA's 354: MAIL FROM, `recipients` RCPT TO
 * lines (default 1), DATA. Follow with `{ expectData: true }` and a final reply.
 */
export function acceptEnvelope(recipients = 1): Step[] {
  const steps: Step[] = [{ expect: /^MAIL FROM:/i }, { send: "250 2.1.0 Ok\r\n" }];
  for (let i = 0; i < recipients; i++) steps.push({ expect: /^RCPT TO:/i }, { send: "250 2.1.5 Ok\r\n" });
  steps.push({ expect: /^DATA$/i }, { send: "354 End data with <CR><LF>.<CR><LF>\r\n" });
  return steps;
}

/**
 * The same envelope as a pipelining server sees it: MAIL FROM, one RCPT TO, DATA read
 * first, then all three replies in one write (250, 250, 354).
 */
export function acceptPipelinedEnvelope(): Step[] {
  return [{ expect: /^MAIL FROM/ }, { expect: /^RCPT TO/ }, { expect: "DATA" }, { send: "250 ok\r\n250 ok\r\n354 go\r\n" }];
}

/**
 * An LMTP server's side up to DATA's 354, pipelined: greeting, LHLO with PIPELINING, then
 * MAIL FROM, `recipients` RCPT TO and DATA read first and accepted in one write. Follow
 * with `{ expectData: true }` and one final reply per recipient.
 */
export function acceptLmtpEnvelope(recipients = 2): Step[] {
  return [
    { send: "220 lmtp.example.test LMTP\r\n" },
    { expect: /^LHLO / },
    { send: "250-lmtp.example.test\r\n250 PIPELINING\r\n" },
    { expect: /^MAIL FROM/ },
    ...Array.from({ length: recipients }, (): Step => ({ expect: /^RCPT TO/ })),
    { expect: "DATA" },
    { send: `250 ok\r\n${"250 ok\r\n".repeat(recipients)}354 go\r\n` },
  ];
}

const TERMINATOR = Buffer.from("\r\n.\r\n");
const EMPTY = Buffer.alloc(0);

class ConnectionClosed extends Error {}

class Connection implements FaultConnection {
  readonly commands: string[] = [];
  readonly data: Buffer[] = [];
  readonly errors: string[] = [];
  secure = false;
  tlsError: Error | undefined;
  socketError: Error | undefined;
  scriptDone = false;
  stoppedAt: number | undefined;
  closed = false;
  readonly done: Promise<void>;
  readonly whenClosed: Promise<void>;
  socket: Socket;

  #raw: Socket;
  #serverErrors: string[];
  #received: Buffer[] = [];
  #cleartextLength = 0;
  #discarded: Buffer = EMPTY;
  #pending: Buffer = EMPTY;
  /** While the script is not consuming input (finished or stalled), lines go straight to `commands`. */
  #idle = false;
  /** Between the start of an `upgradeTls` step and the end of its handshake. */
  #upgrading = false;
  #wake: (() => void) | undefined;
  #abort = new AbortController();
  #resolveDone!: () => void;
  #onData = (chunk: Buffer): void => this.#receive(chunk);

  constructor(readonly index: number, socket: Socket, serverErrors: string[]) {
    this.#raw = socket;
    this.socket = socket;
    this.#serverErrors = serverErrors;
    this.done = new Promise<void>((resolve) => (this.#resolveDone = resolve));
    this.whenClosed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));
    socket.on("data", this.#onData);
    socket.on("error", (err) => (this.socketError = err));
    socket.once("close", this.#markClosed);
  }

  #resolveClosed!: () => void;
  // The script goes on with what is already buffered: a client that sends QUIT and
  // closes at once still satisfies `expect: "QUIT"`. Sends after that are skipped.
  #markClosed = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.#abort.abort();
    this.#wake?.();
    this.#resolveClosed();
  };

  get received(): Buffer {
    if (this.#received.length > 1) this.#received = [Buffer.concat(this.#received)];
    return this.#received[0] ?? EMPTY;
  }

  get cleartext(): Buffer {
    return this.received.subarray(0, this.#cleartextLength);
  }

  get discardedBeforeTls(): Buffer {
    return this.#discarded;
  }

  destroy(): void {
    this.#abort.abort();
    this.socket.destroy();
    this.#raw.destroy();
  }

  async run(steps: Step[]): Promise<void> {
    let at = 0;
    try {
      for (; at < steps.length; at++) {
        const finished = await this.#step(steps[at]!, at);
        if (finished) break;
      }
      this.scriptDone = true;
    } catch (err) {
      if (!(err instanceof ConnectionClosed) && !this.closed) {
        this.#fail(at, `threw ${err instanceof Error ? err.message : String(err)}`);
      }
      if (!this.scriptDone) this.stoppedAt = at;
    } finally {
      this.#idle = true;
      this.#drainLines();
      this.#resolveDone();
    }
  }

  /** Runs one step; true when the script ends here. */
  async #step(step: Step, at: number): Promise<boolean> {
    if ("send" in step) {
      this.#write(toBuffer(step.send));
    } else if ("sendSlowly" in step) {
      const bytes = toBuffer(step.sendSlowly);
      for (let i = 0; i < bytes.length; i++) {
        if (i > 0) await this.#sleep(step.byteDelayMs ?? 5);
        this.#write(bytes.subarray(i, i + 1));
      }
    } else if ("expect" in step) {
      const line = await this.#readLine();
      this.commands.push(line);
      if (!matches(step.expect, line)) {
        this.#fail(at, `expected ${describeMatcher(step.expect)}, got ${JSON.stringify(line)}`);
        this.destroy();
        throw new ConnectionClosed();
      }
    } else if ("expectData" in step) {
      await this.#readData(step.closeAfter);
    } else if ("expectBytes" in step) {
      this.data.push(await this.#readBytes(step.expectBytes));
    } else if ("upgradeTls" in step) {
      await this.#upgrade(step.upgradeTls);
    } else if ("close" in step) {
      if (!this.socket.destroyed) this.socket.end();
    } else if ("reset" in step) {
      this.#abort.abort();
      // Node 20's resetAndDestroy() while a FIN (a `close` step) is still being written fails
      // with EINVAL and never closes the handle, so the server could never close. Once a FIN
      // is on its way an RST adds nothing the test can see: just destroy.
      if (this.#raw.writableEnded && !this.#raw.writableFinished) this.#raw.destroy();
      else if (!this.#raw.destroyed) this.#raw.resetAndDestroy();
      return true;
    } else if ("stall" in step) {
      return true;
    } else if ("readNothing" in step) {
      this.socket.pause();
    } else if ("resumeReading" in step) {
      this.socket.resume();
    } else if ("delayMs" in step) {
      await this.#sleep(step.delayMs);
    } else if ("call" in step) {
      await step.call(this);
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
    return false;
  }

  #receive(chunk: Buffer): void {
    this.#received.push(chunk);
    if (!this.secure && !this.#upgrading) this.#cleartextLength += chunk.length;
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    if (this.#idle) this.#drainLines();
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #write(bytes: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(bytes);
  }

  /** Resolves on the next input (or close); rejects with ConnectionClosed once closed. */
  #waitForInput(): Promise<void> {
    if (this.closed) return Promise.reject(new ConnectionClosed());
    return new Promise<void>((resolve, reject) => {
      this.#wake = () => (this.closed && this.#pending.length === 0 ? reject(new ConnectionClosed()) : resolve());
    });
  }

  #sleep(ms: number): Promise<void> {
    return delay(ms, undefined, { signal: this.#abort.signal }).catch(() => {
      throw new ConnectionClosed();
    });
  }

  async #readLine(): Promise<string> {
    for (;;) {
      const end = this.#pending.indexOf(0x0a);
      if (end >= 0) {
        const line = this.#pending.subarray(0, end > 0 && this.#pending[end - 1] === 0x0d ? end - 1 : end);
        this.#pending = this.#pending.subarray(end + 1);
        return line.toString("utf8");
      }
      if (this.closed) throw new ConnectionClosed();
      await this.#waitForInput();
    }
  }

  async #readData(closeAfter: number | undefined): Promise<void> {
    const chunks: Buffer[] = [];
    let total = 0;
    // The body starts at the beginning of a line, as if after "\r\n"; keep the last four
    // bytes seen so a terminator split across chunks is still found, in linear time.
    let tail = Buffer.from("\r\n");
    for (;;) {
      if (this.#pending.length === 0) {
        if (this.closed) {
          this.data.push(Buffer.concat(chunks));
          throw new ConnectionClosed();
        }
        // The connection may close while we wait: what arrived of the body stays on record.
        await this.#waitForInput().catch((err: unknown) => {
          this.data.push(Buffer.concat(chunks));
          throw err;
        });
        continue;
      }
      let chunk = this.#pending;
      this.#pending = EMPTY;
      const window = Buffer.concat([tail, chunk]);
      const found = window.indexOf(TERMINATOR);
      let end = found >= 0 ? found + TERMINATOR.length - tail.length : chunk.length;
      // Cut once `closeAfter` bytes arrived, unless the terminator came within them.
      const cut = closeAfter !== undefined && (found < 0 ? total + end >= closeAfter : total + end > closeAfter);
      if (cut) end = Math.max(0, closeAfter - total);
      if (end < chunk.length) this.#pending = chunk.subarray(end);
      chunk = chunk.subarray(0, end);
      chunks.push(chunk);
      total += chunk.length;
      if (cut) {
        this.#pending = EMPTY;
        this.data.push(Buffer.concat(chunks));
        this.destroy();
        throw new ConnectionClosed();
      }
      if (found >= 0) {
        this.data.push(Buffer.concat(chunks));
        return;
      }
      tail = window.subarray(Math.max(0, window.length - 4));
    }
  }

  async #readBytes(count: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    while (total < count) {
      if (this.#pending.length === 0) {
        await this.#waitForInput();
        continue;
      }
      const take = Math.min(count - total, this.#pending.length);
      chunks.push(this.#pending.subarray(0, take));
      this.#pending = this.#pending.subarray(take);
      total += take;
    }
    return Buffer.concat(chunks);
  }

  async #upgrade(options: SecureContextOptions): Promise<void> {
    if (this.socket !== this.#raw) throw new Error("upgradeTls on a connection that is already TLS");
    const raw = this.#raw;
    this.#upgrading = true;
    raw.off("data", this.#onData);
    raw.pause();
    // Whatever is pending arrived in cleartext after the command that asked for TLS:
    // it is thrown away, except the start of a TLS handshake record (0x16 0x03) that
    // raced ahead of the upgrade, which goes back to the socket for TLS to read.
    const pending = this.#pending;
    this.#pending = EMPTY;
    let hello = -1;
    for (let i = pending.indexOf(0x16); i >= 0; i = pending.indexOf(0x16, i + 1)) {
      if (i + 1 >= pending.length || pending[i + 1] === 0x03) {
        hello = i;
        break;
      }
    }
    this.#discarded = hello >= 0 ? pending.subarray(0, hello) : pending;
    if (hello >= 0) {
      // Those bytes are recorded again, decrypted, once TLS has read them.
      const handshake = pending.length - hello;
      const received = this.received;
      this.#received = [received.subarray(0, received.length - handshake)];
      this.#cleartextLength -= handshake;
      raw.unshift(pending.subarray(hello));
    }
    const secure = new TLSSocket(raw, { isServer: true, secureContext: createSecureContext(options) });
    this.socket = secure;
    secure.on("data", this.#onData);
    secure.once("close", this.#markClosed);
    secure.on("error", (err) => {
      if (!this.secure) this.tlsError = err;
      else this.socketError = err;
    });
    await new Promise<void>((resolve, reject) => {
      const onSecure = (): void => {
        cleanup();
        resolve();
      };
      const onFailure = (err?: unknown): void => {
        cleanup();
        // A client that rejects the certificate after the handshake (as Node does) just
        // closes: the server sees no TLS error, only the end of the connection.
        this.tlsError ??= err instanceof Error ? err : new Error("the connection closed during the TLS handshake");
        secure.destroy();
        raw.destroy();
        reject(new ConnectionClosed());
      };
      const cleanup = (): void => {
        secure.off("secure", onSecure);
        secure.off("error", onFailure);
        secure.off("close", onFailure);
      };
      secure.once("secure", onSecure);
      secure.once("error", onFailure);
      secure.once("close", onFailure);
    });
    this.secure = true;
    this.#upgrading = false;
  }

  /** Moves complete lines from the pending input to `commands` (when the script is not reading). */
  #drainLines(): void {
    for (;;) {
      const end = this.#pending.indexOf(0x0a);
      if (end < 0) return;
      const line = this.#pending.subarray(0, end > 0 && this.#pending[end - 1] === 0x0d ? end - 1 : end);
      this.#pending = this.#pending.subarray(end + 1);
      this.commands.push(line.toString("utf8"));
    }
  }

  #fail(at: number, message: string): void {
    const text = `connection ${this.index}, step ${at}: ${message}`;
    this.errors.push(text);
    this.#serverErrors.push(text);
  }
}

function toBuffer(bytes: Bytes): Buffer {
  return typeof bytes === "string" ? Buffer.from(bytes, "utf8") : Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
}

function matches(matcher: LineMatcher, line: string): boolean {
  if (typeof matcher === "string") return line === matcher;
  if (typeof matcher === "function") return matcher(line);
  matcher.lastIndex = 0;
  return matcher.test(line);
}

function describeMatcher(matcher: LineMatcher): string {
  if (typeof matcher === "string") return JSON.stringify(matcher);
  if (typeof matcher === "function") return `a line accepted by ${matcher.name || "a predicate"}`;
  return String(matcher);
}
