/**
 * SMTPConnection: the public class (SPEC §2–§6). It owns the socket, the reply pipeline
 * (socket -> LineSplitter -> ReplyDecoder -> CommandQueue), the operation queue that
 * runs sends in call order, timers, and teardown. The protocol steps themselves live in
 * handshake.ts, auth/ and transaction.ts.
 *
 * Deliberately left out: connection pooling and retries (a transport's job), message
 * composition (the caller gives RFC 5322 bytes).
 */
import { EventEmitter } from "node:events";
import os from "node:os";
import net, { type Socket } from "node:net";
import type { Readable } from "node:stream";
import type { AuthCredentials, Callback, Envelope, Reply, SendInfo, SMTPConnectionOptions } from "./types.js";
import { badInput, fromReply, fromSocketError, replyText, SMTPError, REPLY } from "./errors.js";
import { CommandQueue } from "./command-queue.js";
import { LineSplitter } from "./stages/line-splitter.js";
import { ReplyDecoder } from "./stages/reply-decoder.js";
import { decideStartTls, freezeExtensions, readGreeting, sayHello, startTlsNotOffered, type Extensions } from "./handshake.js";
import { isLoopbackHost, openSocket, upgradeSocket, type OpenOptions } from "./socket.js";
import { authenticate } from "./auth/index.js";
import { checkClientName } from "./envelope.js";
import { SendStream } from "./send-stream.js";
import { runTransaction, type TransactionSession } from "./transaction.js";
import { createTranscript, type Transcript } from "./logger.js";
import { settle } from "./callback.js";

const DEFAULTS = {
  connectionTimeout: 2 * 60 * 1000,
  greetingTimeout: 30 * 1000,
  socketTimeout: 10 * 60 * 1000,
  dnsTimeout: 30 * 1000,
};
/** QUIT is a courtesy: never wait longer than this for its 221. */
const QUIT_WAIT_MS = 5000;

/** os.hostname() when it is a usable FQDN, else the loopback literal (Nodemailer's rule). */
function defaultClientName(): string {
  let name = "";
  try {
    name = os.hostname();
  } catch {
    /* some sandboxes refuse */
  }
  return name.includes(".") && /^[a-z0-9.-]+$/i.test(name) && !net.isIP(name) ? name.toLowerCase() : "[127.0.0.1]";
}

let nextId = 1;

/** Listeners attached to one socket and its stages, so a STARTTLS upgrade can detach them. */
interface Wiring {
  socket: Socket;
  splitter: LineSplitter;
  decoder: ReplyDecoder;
  detach(): void;
}

export class SMTPConnection extends EventEmitter {
  /** Identifier used in logs. */
  readonly id: string;
  readonly options: SMTPConnectionOptions;
  /** True when the connection is encrypted (implicit TLS, `secured`, or after STARTTLS). */
  secure: boolean;
  /** True once login() succeeded. */
  authenticated = false;
  /** The last reply the server sent, as text. */
  lastServerResponse: string | false = false;
  /** True when the server advertised AUTH. */
  allowsAuth = false;
  /** Host and port this connection talks to. */
  readonly host: string;
  readonly port: number;
  /** Name sent with EHLO/LHLO. */
  readonly name: string;

  #extensions: Extensions = new Map();
  #extensionsView = freezeExtensions(new Map());
  #wiring: Wiring | undefined;
  #queue: CommandQueue;
  #transcript: Transcript;
  #state: "new" | "connecting" | "ready" | "closed" = "new";
  #fatal: SMTPError | undefined;
  #needsReset = false;
  #upgradeReady = false;
  #upgrading = false;
  #quitting = false;
  #errorEmitted = false;
  #activeOps = 0;
  #opTail: Promise<unknown> = Promise.resolve();
  #timers = new Set<NodeJS.Timeout>();
  #died!: (err: SMTPError) => void;
  #whenDead: Promise<never>;

  constructor(options: SMTPConnectionOptions = {}) {
    super();
    this.options = { ...options };
    this.id = options.id ?? `${process.pid.toString(36)}-${(nextId++).toString(36)}`;
    const port = Number(options.port) || (options.secure ? 465 : 587);
    this.port = port;
    this.host = options.host || "localhost";
    this.secure = options.secure ?? port === 465;
    if (options.connection && options.secured) this.secure = true;
    this.name = options.name || defaultClientName();
    this.#transcript = createTranscript(this.id, options.logger, options.debug);
    this.#queue = new CommandQueue((line, logAs) => this.#writeLine(line, logAs));
    this.#whenDead = new Promise<never>((_, reject) => (this.#died = reject));
    this.#whenDead.catch(() => {});
  }

  /** EHLO keywords (upper case) to their parameters; read-only. */
  get extensions(): ReadonlyMap<string, string[]> & Readonly<Record<string, string[]>> {
    return this.#extensionsView;
  }

  /** Connects, reads the greeting, says EHLO and applies the STARTTLS policy. */
  connect(): Promise<void>;
  connect(callback: Callback<void>): void;
  connect(callback?: Callback<void>): Promise<void> | void {
    return settle(this.#connect(), callback);
  }

  /** Authenticates; resolves once the server said 235. */
  login(auth: AuthCredentials): Promise<void>;
  login(auth: AuthCredentials, callback: Callback<void>): void;
  login(auth: AuthCredentials, callback?: Callback<void>): Promise<void> | void {
    return settle(this.#enqueue(() => this.#login(auth)), callback);
  }

  /** Sends one message (string, Buffer or Readable) and resolves with its SendInfo. */
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable): Promise<SendInfo>;
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable, callback: Callback<SendInfo>): void;
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable, callback?: Callback<SendInfo>): Promise<SendInfo> | void {
    return settle(this.#send(envelope, message), callback);
  }

  /**
   * Starts the envelope now and returns the Writable to pipe the message into. It
   * finishes once the server accepted the message (`stream.info`), or is destroyed with
   * the SMTPError that stopped it.
   */
  createSendStream(envelope: Envelope): SendStream {
    const stream = new SendStream();
    const ehlo = () => [...this.#extensions.keys()];
    this.#enqueue(() => runTransaction(this.#session(), envelope, stream, ehlo())).catch((err: SMTPError) => stream.fail(err));
    return stream;
  }

  /** RSET: aborts the current transaction state; resolves true. */
  reset(): Promise<boolean>;
  reset(callback: Callback<boolean>): void;
  reset(callback?: Callback<boolean>): Promise<boolean> | void {
    return settle(
      this.#enqueue(async () => {
        const reply = await this.#queue.send("RSET", "RSET");
        if (reply.code !== REPLY.OK) throw fromReply("EPROTOCOL", "Could not reset session state", reply, "RSET");
        this.#needsReset = false;
        return true;
      }),
      callback,
    );
  }

  /** Sends QUIT after the operations already queued, then closes; never waits long for 221. */
  quit(): Promise<void>;
  quit(callback: Callback<void>): void;
  quit(callback?: Callback<void>): Promise<void> | void {
    const done =
      this.#state === "closed" || this.#state === "new"
        ? Promise.resolve(this.#teardown())
        : this.#enqueue(async () => {
            this.#quitting = true;
            const reply = this.#queue.send("QUIT", "QUIT");
            await Promise.race([reply, this.#delay(Math.min(QUIT_WAIT_MS, this.#timeout("socketTimeout")))]).catch(() => undefined);
            this.#teardown();
          }).catch(() => this.#teardown());
    return settle(done, callback);
  }

  /** Closes the socket now, without QUIT. Pending operations fail with ECONNECTION. */
  close(): void {
    this.#teardown();
  }

  // ---- connection set-up -------------------------------------------------------------

  #openOptions(): OpenOptions {
    const o = this.options;
    return {
      host: this.host,
      port: this.port,
      secure: this.secure && !o.connection,
      servername: o.servername,
      localAddress: o.localAddress,
      tls: o.tls,
      socket: o.socket,
      connection: o.connection,
      dnsTimeout: this.#timeout("dnsTimeout"),
      allowInternalNetworkInterfaces: Boolean(o.allowInternalNetworkInterfaces),
    };
  }

  #timeout(name: keyof typeof DEFAULTS): number {
    const value = Number(this.options[name]);
    return value > 0 ? value : DEFAULTS[name];
  }

  async #connect(): Promise<void> {
    if (this.#state !== "new") throw new SMTPError("ECONNECTION", this.#state === "closed" ? "Connection is closed" : "connect() was already called", { command: "API" });
    this.#state = "connecting";
    // Operations called while connecting wait for the handshake.
    const handshake = this.#handshake();
    this.#opTail = handshake.catch(() => {});
    this.#activeOps++;
    try {
      await handshake;
    } finally {
      this.#activeOps--;
    }
  }

  async #handshake(): Promise<void> {
    try {
      checkClientName(this.name);
      const { socket, readyEvent } = openSocket(this.#openOptions());
      this.#wire(socket);
      if (readyEvent) await this.#within(this.#timeout("connectionTimeout"), "Connection timeout", new Promise((resolve) => socket.once(readyEvent, resolve)));
      socket.setTimeout(this.#timeout("socketTimeout"));
      this.#transcript.info(`Connection established to ${socket.remoteAddress}:${socket.remotePort}`);
      await this.#within(this.#timeout("greetingTimeout"), "Greeting never received", readGreeting(this.#queue));
      await this.#hello();
      await this.#applyTlsPolicy();
      this.#state = "ready";
    } catch (err) {
      const error = err instanceof SMTPError ? err : fromSocketError(err);
      this.#teardown(error);
      throw this.#fatal ?? error;
    }
    this.emit("connect");
  }

  async #hello(): Promise<void> {
    const { extensions } = await sayHello(this.#queue, this.name, Boolean(this.options.lmtp));
    this.#extensions = extensions;
    this.#extensionsView = freezeExtensions(extensions);
    this.allowsAuth = extensions.has("AUTH");
  }

  async #applyTlsPolicy(): Promise<void> {
    const decision = decideStartTls({ ...this.options, secure: this.secure }, this.#extensions);
    if (decision === "fail") throw startTlsNotOffered();
    if (decision === "skip") return;
    const reply = await this.#queue.send("STARTTLS", "STARTTLS");
    if (reply.code !== REPLY.SERVICE_READY) {
      if (this.options.opportunisticTLS && !this.options.requireTLS) return this.#hello();
      throw fromReply("ETLS", "STARTTLS failed", reply, "STARTTLS");
    }
    await this.#upgrade();
    // RFC 3207 §4.2: forget everything learned in plaintext.
    await this.#hello();
  }

  /** True when the server sent anything after STARTTLS's 220 that we have not read. */
  #hasUnreadInput(wiring: Wiring): boolean {
    return (
      wiring.socket.readableLength > 0 ||
      wiring.splitter.pendingBytes > 0 ||
      wiring.splitter.readableLength > 0 ||
      wiring.decoder.writableLength > 0 ||
      wiring.decoder.pendingLines > 0 ||
      wiring.decoder.readableLength > 0
    );
  }

  async #upgrade(): Promise<void> {
    const plain = this.#wiring!;
    // NO STARTTLS (USENIX Security 2021): bytes sent before the TLS handshake could be
    // read as replies of the encrypted session. An honest server sends none, so any is
    // an attack: fail rather than just discard.
    if (this.#hasUnreadInput(plain)) throw this.#injection();
    plain.detach();
    this.#upgrading = true;
    const secured = upgradeSocket(plain.socket, this.#openOptions());
    this.#wire(secured);
    await this.#within(this.#timeout("connectionTimeout"), "TLS handshake timeout", new Promise((resolve) => secured.once("secureConnect", resolve)));
    this.#upgrading = false;
    this.#upgradeReady = false;
    this.secure = true;
    secured.setTimeout(this.#timeout("socketTimeout"));
  }

  #injection(): SMTPError {
    return new SMTPError("ETLS", "Server sent data after STARTTLS ready (possible STARTTLS response injection)", { command: "STARTTLS", temporary: false });
  }

  /** Connects the socket to a fresh reply pipeline and to the lifecycle handlers. */
  #wire(socket: Socket): void {
    const splitter = new LineSplitter();
    const decoder = new ReplyDecoder();
    const onReply = (reply: Reply) => this.#onReply(reply);
    const onStageError = (err: unknown) => this.#teardown(fromSocketError(err, this.#queue.head ?? "CONN", "EPROTOCOL"));
    const onSocketError = (err: unknown) => this.#teardown(fromSocketError(err, this.#queue.head ?? "CONN", this.#upgrading ? "ETLS" : "ESOCKET"));
    const onClose = () => this.#onServerClosed();
    const onTimeout = () => this.#teardown(new SMTPError("ETIMEDOUT", "Timeout: no activity on the connection", { command: this.#queue.head ?? "CONN", temporary: true }));
    socket.pipe(splitter).pipe(decoder);
    decoder.on("data", onReply);
    decoder.on("end", onClose);
    splitter.on("error", onStageError);
    decoder.on("error", onStageError);
    socket.on("error", onSocketError);
    socket.on("close", onClose);
    socket.on("timeout", onTimeout);
    this.#wiring = {
      socket,
      splitter,
      decoder,
      detach: () => {
        socket.unpipe(splitter);
        socket.pause();
        decoder.off("data", onReply);
        decoder.off("end", onClose);
        socket.off("error", onSocketError);
        socket.off("close", onClose);
        socket.off("timeout", onTimeout);
        // The TLS socket reports errors from here on; keep the raw one from crashing.
        socket.on("error", () => {});
        socket.setTimeout(0);
      },
    };
  }

  #onReply(reply: Reply): void {
    if (this.#state === "closed") return;
    this.lastServerResponse = replyText(reply);
    for (const line of this.lastServerResponse.split("\n")) this.#transcript.server(line);
    if (this.#upgradeReady) return this.#teardown(this.#injection());
    const command = this.#queue.head;
    if (reply.code === REPLY.SERVICE_NOT_AVAILABLE && !this.#quitting) {
      return this.#teardown(fromReply("ECONNECTION", "Server is closing the connection", reply, command ?? "CONN"));
    }
    try {
      this.#queue.dispatch(reply);
    } catch (err) {
      return this.#teardown(err as SMTPError);
    }
    // Set synchronously, before the rest of this chunk is decoded, so a reply smuggled
    // behind the 220 in the same packet is caught.
    if (command === "STARTTLS" && reply.code === REPLY.SERVICE_READY) this.#upgradeReady = true;
  }

  #onServerClosed(): void {
    if (this.#state === "closed") return;
    if (this.#quitting) return this.#teardown();
    const command = this.#queue.head ?? "CONN";
    this.#teardown(new SMTPError(this.#upgrading ? "ETLS" : "ECONNECTION", "Connection closed unexpectedly", { command, temporary: true }));
  }

  #writeLine(line: string, logAs?: string): void {
    // Last line of defence against CRLF injection: every caller checked its input, and a
    // command line with CR or LF in it would be two commands on the wire.
    if (/[\r\n]/.test(line)) throw badInput("A command line must not contain CR or LF", "EPROTOCOL");
    if (this.#state === "closed" || !this.#wiring) return;
    this.#transcript.client(logAs ?? line);
    this.#wiring.socket.write(line + "\r\n");
  }

  // ---- operations ------------------------------------------------------------------

  /**
   * Runs `operation` after every operation queued before it, so sends started without
   * waiting go out in call order on the one connection.
   */
  #enqueue<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#state === "closed") return Promise.reject(new SMTPError("ECONNECTION", "Connection is closed", { command: "API", temporary: false }));
    if (this.#state === "new") return Promise.reject(new SMTPError("ECONNECTION", "Not connected: call connect() first", { command: "API", temporary: false }));
    this.#activeOps++;
    const run = this.#opTail.then(() => {
      if (this.#state === "closed") throw this.#fatal ?? new SMTPError("ECONNECTION", "Connection is closed", { command: "API" });
      return operation();
    });
    this.#opTail = run.catch(() => {});
    const release = () => void this.#activeOps--;
    run.then(release, release);
    return run;
  }

  #session(): TransactionSession {
    const connection = this;
    return {
      queue: this.#queue,
      socket: this.#wiring!.socket,
      extensions: this.#extensions,
      secure: this.secure,
      lmtp: Boolean(this.options.lmtp),
      canPipeline: this.options.pipelining !== false && this.#extensions.has("PIPELINING"),
      get needsReset() {
        return connection.#needsReset;
      },
      set needsReset(value: boolean) {
        connection.#needsReset = value;
      },
      abort: (err) => this.#teardown(err),
    };
  }

  async #login(auth: AuthCredentials): Promise<void> {
    if (!auth || typeof auth !== "object") throw badInput("login() needs an object with user and pass (or oauth2)", "EAUTH", "AUTH");
    if (this.authenticated) throw new SMTPError("EAUTH", "Already authenticated on this connection", { command: "AUTH", temporary: false });
    const remote = this.#wiring?.socket.remoteAddress;
    if (!this.secure && !this.options.allowInsecureAuth && !(isLoopbackHost(this.host) && isLoopbackHost(remote))) {
      throw new SMTPError(
        "EAUTH",
        `Refusing to send credentials over an unencrypted connection to ${this.host} (${remote ?? "unknown address"}): use TLS (secure, or STARTTLS) or set allowInsecureAuth: true`,
        { command: "AUTH", temporary: false },
      );
    }
    const advertised = this.#extensions.get("AUTH") ?? [];
    await authenticate(
      {
        send: (command, line, logAs) => this.#queue.send(command, line, logAs),
        advertised,
        extensions: [...this.#extensions.keys()],
        maxAllowedSize: Number(this.#extensions.get("SIZE")?.[0]) || false,
        customAuth: this.options.customAuth ?? {},
      },
      auth,
    );
    this.authenticated = true;
  }

  async #send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable): Promise<SendInfo> {
    const isStream = message !== null && typeof message === "object" && typeof (message as Readable).pipe === "function";
    if (!isStream && typeof message !== "string" && !(message instanceof Uint8Array)) {
      throw badInput("The message must be a string, a Buffer or a Readable stream", "EMESSAGE");
    }
    const stream = this.createSendStream(envelope);
    const result = new Promise<SendInfo>((resolve, reject) => {
      stream.once("error", reject);
      stream.once("finish", () => resolve(stream.info!));
    });
    if (!isStream) {
      stream.end(message);
      return result;
    }
    const source = message as Readable;
    const onSourceError = (err: unknown) =>
      stream.destroy(new SMTPError("ESTREAM", `Message source failed: ${(err as Error)?.message ?? err}`, { command: "DATA", temporary: false, cause: err }));
    const onSourceClose = () => {
      if (!source.readableEnded) onSourceError(new Error("source closed before it ended"));
    };
    source.on("error", onSourceError);
    source.on("close", onSourceClose);
    source.pipe(stream);
    try {
      return await result;
    } catch (err) {
      // A failed send must not leave the caller's source paused forever.
      source.unpipe(stream);
      source.destroy();
      throw err;
    } finally {
      source.off("close", onSourceClose);
    }
  }

  // ---- timers and teardown ---------------------------------------------------------

  /** Races `work` against a timer that fails the whole connection with ETIMEDOUT. */
  async #within<T>(ms: number, message: string, work: Promise<T>): Promise<T> {
    const timer = setTimeout(() => this.#teardown(new SMTPError("ETIMEDOUT", message, { command: this.#queue.head ?? "CONN", temporary: true })), ms);
    this.#timers.add(timer);
    try {
      return await Promise.race([work, this.#whenDead]);
    } finally {
      clearTimeout(timer);
      this.#timers.delete(timer);
    }
  }

  #delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }

  /**
   * The one way a connection ends: mark closed, clear timers, fail every pending and
   * queued operation with `err` (ECONNECTION when closed on purpose), destroy the socket,
   * emit `error` at most once and `end` once.
   */
  #teardown(err?: SMTPError): void {
    if (this.#state === "closed") return;
    const hadReceivers = this.#queue.size > 0 || this.#activeOps > 0;
    this.#state = "closed";
    this.#fatal = err ?? new SMTPError("ECONNECTION", "Connection closed", { command: "API", temporary: false });
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#queue.failAll(this.#fatal);
    this.#died(this.#fatal);
    const wiring = this.#wiring;
    if (wiring) {
      wiring.socket.on("error", () => {});
      wiring.socket.destroy();
      wiring.splitter.destroy();
      wiring.decoder.destroy();
    }
    if (err) this.#transcript.error(`${err.code}: ${err.message}`);
    process.nextTick(() => {
      if (err && !this.#errorEmitted && (this.listenerCount("error") > 0 || !hadReceivers)) {
        this.#errorEmitted = true;
        this.emit("error", err);
      }
      this.emit("end");
    });
  }
}
