/**
 * SMTPConnection: the public class (SPEC §2–§6). It owns the socket, the reply pipeline
 * (socket -> LineSplitter -> ReplyDecoder -> CommandQueue), the operation queue that
 * runs sends in call order, timers, and teardown. The protocol steps themselves live in
 * handshake.ts, starttls.ts, auth/ and transaction.ts.
 *
 * Deliberately left out: connection pooling and retries (a transport's job), message
 * composition (the caller gives RFC 5322 bytes).
 */
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { AuthCredentials, Callback, ConnectOptions, CustomAuthHandler, DoneCallback, Envelope, ExtensionsView, Logger, OperationOptions, Reply, SendInfo, SMTPConnectionEvents, SMTPConnectionOptions, TlsInfo } from "./types.js";
import { badInput, connectionFailure, fromReply, fromSocketError, greetingTimeoutError, protocolError, replyText, SMTPError, REPLY } from "./errors.js";
import { CommandQueue } from "./command-queue.js";
import { ReplyPipeline } from "./reply-pipeline.js";
import { freezeExtensions, readGreeting, sayHello, type Extensions } from "./handshake.js";
import { openSocket, serverName, tlsDetails, watchForTlsMismatch } from "./socket.js";
import { defaultClientName, openOptions, readChunkSize, readTimeout } from "./options.js";
import { applyTlsPolicy, startTlsInjection, type StartTlsSession } from "./starttls.js";
import { authenticate, cleartextRefusal } from "./auth/index.js";
import { checkClientName } from "./envelope.js";
import { SendStream, sendBytes, sendFromSource } from "./send-stream.js";
import { checkMessage, type MessageInput } from "./message.js";
import { envelopeOf, runTransaction, type StagedEnvelope, type TransactionSession, type TransactionState } from "./transaction.js";
import { OperationQueue, type Operation } from "./operation-queue.js";
import { createLevelLogger, createTranscript, type Transcript } from "./logger.js";
import { VERSION } from "./version.js";
import { settle } from "./callback.js";
import { abortError, readCallArgs, watchSignal } from "./abort.js";
import { deliveryState } from "./outcome.js";
import { publishCommand, publishReply, traceSend } from "./diagnostics.js";
import { MailTransaction, type TransactionEnvelope } from "./mail-transaction.js";
import { proxyCommandLines, sendProxyCommand, type XClientAttributes, type XForwardAttributes } from "./xclient.js";

/** QUIT is a courtesy: never wait longer than this for its 221. */
const QUIT_WAIT_MS = 5000;

let nextId = 1;

export class SMTPConnection extends EventEmitter<SMTPConnectionEvents> {
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
  // Nodemailer's public properties, with its meanings (issue 11).
  /** This package's version. */
  readonly version = VERSION;
  /** TLS from the first byte: `secure`, or port 465 without `secure` set. */
  readonly secureConnection: boolean;
  /** The `connection` socket given is TLS already (`secured`). */
  readonly alreadySecured: boolean;
  /** The TLS server name (SNI and certificate check); false for an IP address. */
  readonly servername: string | false;
  readonly allowInternalNetworkInterfaces: boolean;
  /** A Bunyan-style logger (every level), entries tagged with this connection's id; silent without `logger`. */
  readonly logger: Required<Logger>;
  /** The `customAuth` handlers by method name in upper case. */
  readonly customAuth: Map<string, CustomAuthHandler>;

  #extensions: Extensions = new Map();
  /** The EHLO lines with their parameters, for SendInfo.ehlo (as Nodemailer reports them). */
  #ehloLines: string[] = [];
  #extensionsView = freezeExtensions(new Map());
  #extensionsBeforeTls: ExtensionsView | undefined;
  #greeting: string | undefined;
  /** connect({ stopAfter }) ended the handshake early: only quit() and close() may follow. */
  #stoppedAfter: ConnectOptions["stopAfter"];
  #pipeline: ReplyPipeline | undefined;
  #queue: CommandQueue;
  #transcript: Transcript;
  #state: "new" | "connecting" | "ready" | "closed" = "new";
  #fatal: SMTPError | undefined;
  #transactionState: TransactionState = { needsReset: false, finalsPending: 0, envelopesSent: 0, quitAsked: false };
  #upgradeReady = false;
  #socketConnected = false;
  #quitting = false;
  #operations = new OperationQueue();
  #sessionView: TransactionSession | undefined;
  #timers = new Set<NodeJS.Timeout>();
  /** Errors an `error` listener received: a call without a callback need not report them again (callback.ts). */
  #deliveredErrors = new WeakSet<object>();
  readonly #delivered = (err: unknown): boolean =>
    err instanceof Error && (this.#deliveredErrors.has(err) || (err.cause instanceof Error && this.#deliveredErrors.has(err.cause)));
  #died!: (err: SMTPError) => void;
  #whenDead: Promise<never>;
  #closedWith!: (reason: SMTPError | undefined) => void;
  /**
   * Resolves once the connection has closed: with the error that closed it, or undefined
   * for a clean close (`quit()`, `close()`). An error no operation received (an idle
   * connection closed by the server or timed out) is kept here, whether or not anyone
   * listens for `error`.
   */
  readonly closed: Promise<SMTPError | undefined>;

  constructor(options: SMTPConnectionOptions = {}) {
    super();
    this.options = { ...options };
    this.id = options.id ?? `${process.pid.toString(36)}-${(nextId++).toString(36)}`;
    const port = Number(options.port) || (options.secure ? 465 : 587);
    this.port = port;
    this.host = options.host || "localhost";
    this.secure = options.secure ?? port === 465;
    this.secureConnection = this.secure;
    this.alreadySecured = Boolean(options.secured);
    if (options.connection && options.secured) this.secure = true;
    this.servername = serverName({ host: this.host, servername: options.servername }) ?? false;
    this.allowInternalNetworkInterfaces = Boolean(options.allowInternalNetworkInterfaces);
    this.customAuth = new Map(Object.entries(options.customAuth ?? {}).map(([method, handler]) => [method.trim().toUpperCase(), handler]));
    this.name = options.name || defaultClientName();
    this.#transcript = createTranscript(this.id, options.logger, options.debug);
    this.logger = createLevelLogger(this.id, options.logger);
    this.#queue = new CommandQueue((line, logAs) => this.#writeLine(line, logAs));
    this.#whenDead = new Promise<never>((_, reject) => (this.#died = reject));
    this.#whenDead.catch(() => {});
    this.closed = new Promise((resolve) => (this.#closedWith = resolve));
  }

  /** "init" until the socket is connected, then "connected" (Nodemailer's `stage`). */
  get stage(): "init" | "connected" {
    return this.#socketConnected ? "connected" : "init";
  }

  /** True once the connection is closed, for whatever reason (Nodemailer's `destroyed`). */
  get destroyed(): boolean {
    return this.#state === "closed";
  }

  /** Cipher, protocol, certificate check and the server's certificate; undefined unless the connection is encrypted. */
  get tlsInfo(): TlsInfo | undefined {
    return tlsDetails(this.#pipeline?.socket);
  }

  /** EHLO keywords (upper case) to their parameters; read-only. */
  get extensions(): ExtensionsView {
    return this.#extensionsView;
  }

  /**
   * The keywords the server advertised in plaintext, before STARTTLS; undefined when no
   * STARTTLS upgrade took place. For diagnostics only: RFC 3207 §4.2 says to forget them
   * (a man in the middle could have edited them), and `extensions` does.
   */
  get extensionsBeforeTls(): ExtensionsView | undefined {
    return this.#extensionsBeforeTls;
  }

  /** The server's 220 greeting as text (a multi-line one joined by LF); undefined until read. */
  get greeting(): string | undefined {
    return this.#greeting;
  }

  /**
   * Connects, reads the greeting, says EHLO and applies the STARTTLS policy. An aborted
   * `signal` closes the connection; `stopAfter` ends the handshake early (see ConnectOptions).
   */
  connect(options?: ConnectOptions): Promise<void>;
  connect(callback: DoneCallback): void;
  connect(options: ConnectOptions, callback: DoneCallback): void;
  connect(options?: ConnectOptions | DoneCallback, callback?: DoneCallback): Promise<void> | void {
    const stopAfter = typeof options === "object" && options !== null ? options.stopAfter : undefined;
    return this.#settleCall([options, callback], (signal) => this.#cancellable(signal, "connect()", (begin) => this.#connect(begin, stopAfter)));
  }

  /**
   * Authenticates; resolves once the server said 235. An aborted `signal` rejects at once;
   * if AUTH had started, the connection is closed (a SASL exchange has no clean way back).
   */
  login(auth: AuthCredentials, options?: OperationOptions): Promise<void>;
  login(auth: AuthCredentials, callback: DoneCallback): void;
  login(auth: AuthCredentials, options: OperationOptions, callback: DoneCallback): void;
  login(auth: AuthCredentials, options?: OperationOptions | DoneCallback, callback?: DoneCallback): Promise<void> | void {
    return this.#settleCall([options, callback], (signal) => this.#cancellable(signal, "login()", (begin) => this.#enqueue(() => this.#login(auth, begin))));
  }

  /**
   * Sends one message (string, Buffer or Readable) and resolves with its SendInfo. See
   * OperationOptions for what an aborted `signal` does at each point.
   */
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable, options?: OperationOptions): Promise<SendInfo>;
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable, callback: Callback<SendInfo>): void;
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable, options: OperationOptions, callback: Callback<SendInfo>): void;
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable, options?: OperationOptions | Callback<SendInfo>, callback?: Callback<SendInfo>): Promise<SendInfo> | void {
    return this.#settleCall([options, callback], (signal) => this.#send(envelope, message, signal));
  }

  /**
   * Starts the envelope now and returns the Writable to pipe the message into. It
   * finishes once the server accepted the message (`stream.info`), or is destroyed with
   * the SMTPError that stopped it (an aborted `signal` destroys it as destroy() would,
   * until its end of data has left).
   */
  createSendStream(envelope: Envelope, options?: OperationOptions): SendStream {
    const stream = new SendStream();
    const { signal, refusal } = readCallArgs([options]);
    if (refusal) stream.destroy(refusal);
    else this.#startSendStream(envelope, stream, signal, "createSendStream()").catch((err: SMTPError) => stream.fail(err));
    return stream;
  }

  /**
   * Opens a transaction one step at a time: resolves once the server accepted MAIL FROM
   * (rejects with its EENVELOPE error otherwise). Then `tx.addRecipient(address)` sends
   * one RCPT TO and resolves with that recipient's outcome, `tx.createSendStream()` gives
   * the body stream, and `tx.abort()` abandons the transaction. It runs in the queue of
   * operations like a send, and holds the connection until its body completes or it is
   * aborted. This is what a relay uses to answer each RCPT with the upstream's reply.
   */
  beginTransaction(envelope: TransactionEnvelope): Promise<MailTransaction> {
    return new MailTransaction(envelope, (staged, stream) => this.#transaction(staged, stream)).opened;
  }

  /** RSET: aborts the current transaction state; resolves true. */
  reset(): Promise<boolean>;
  reset(callback: Callback<boolean>): void;
  reset(callback?: Callback<boolean>): Promise<boolean> | void {
    return settle(
      this.#enqueue(async () => {
        await this.#rset();
        return true;
      }),
      callback,
      this.#delivered,
    );
  }

  /**
   * XCLIENT (Postfix): tells a server that trusts this client who the original client was
   * (its address, name, HELO, login…), for the rest of the session. Resolves once the
   * server greeted again and EHLO was said again (with `helo` when given, so the server's
   * Received header shows the original client's name). Fails with EPROTOCOL, before
   * anything is written, when the server does not advertise XCLIENT or an attribute, or a
   * value is invalid; with the server's reply when it refuses.
   */
  xclient(attributes: XClientAttributes): Promise<void>;
  xclient(attributes: XClientAttributes, callback: Callback<void>): void;
  xclient(attributes: XClientAttributes, callback?: Callback<void>): Promise<void> | void {
    return settle(
      this.#enqueue(async () => {
        const lines = proxyCommandLines("XCLIENT", attributes, this.#extensions.get("XCLIENT"));
        if (attributes.helo !== undefined) checkClientName(attributes.helo);
        // The server refuses XCLIENT inside a transaction; a failed one may still be open.
        if (this.#transactionState.needsReset) await this.#rset();
        await sendProxyCommand(this.#queue, "XCLIENT", lines);
        // The session starts over as the forwarded client's: any login was ours, not theirs.
        this.authenticated = false;
        await this.#hello(attributes.helo ?? this.name);
      }),
      callback,
    );
  }

  /**
   * XFORWARD (Postfix): tells the server what to log as the original client (address,
   * name, HELO, protocol, source, ident) for the next transaction; call it before
   * send()/beginTransaction(). Resolves once the server said 250. Fails as xclient() does.
   */
  xforward(attributes: XForwardAttributes): Promise<void>;
  xforward(attributes: XForwardAttributes, callback: Callback<void>): void;
  xforward(attributes: XForwardAttributes, callback?: Callback<void>): Promise<void> | void {
    return settle(
      this.#enqueue(async () => {
        const lines = proxyCommandLines("XFORWARD", attributes, this.#extensions.get("XFORWARD"));
        // RSET after XFORWARD would reset its attributes, so the pending one goes first.
        if (this.#transactionState.needsReset) await this.#rset();
        await sendProxyCommand(this.#queue, "XFORWARD", lines);
      }),
      callback,
    );
  }

  /** Sends QUIT after the operations already queued, then closes; never waits long for 221. */
  quit(): Promise<void>;
  quit(callback: DoneCallback): void;
  quit(callback?: DoneCallback): Promise<void> | void {
    // Known at once, so a transaction abandoned before QUIT's turn skips its RSET (transaction.ts).
    this.#transactionState.quitAsked = true;
    const done =
      this.#state === "closed" || this.#state === "new"
        ? Promise.resolve(this.#teardown())
        : this.#enqueue(async () => {
            this.#quitting = true;
            const reply = this.#queue.send("QUIT", "QUIT");
            await Promise.race([reply, this.#delay(Math.min(QUIT_WAIT_MS, readTimeout(this.options, "socketTimeout")))]).catch(() => undefined);
            this.#teardown();
          }).catch(() => this.#teardown());
    return settle(done, callback, this.#delivered);
  }

  /** Closes the socket now, without QUIT. Pending operations fail with ECONNECTION. */
  close(): void {
    this.#teardown();
  }

  // ---- connection set-up -------------------------------------------------------------

  /** `begin` is the caller's signal's check (see #cancellable). */
  async #connect(begin: () => void, stopAfter: ConnectOptions["stopAfter"]): Promise<void> {
    begin();
    if (stopAfter !== undefined && stopAfter !== "greeting" && stopAfter !== "hello") throw badInput('connect(): stopAfter must be "greeting" or "hello"', "ECONNECTION", "API");
    if (this.#state !== "new") throw new SMTPError("ECONNECTION", this.#state === "closed" ? "Connection is closed" : "connect() was already called", { command: "API", cause: this.#fatal });
    this.#state = "connecting";
    // Counted (by the operation queue) before the handshake starts: a failure it throws
    // synchronously (a bad EHLO name) must find connect() as its receiver, not become an
    // unhandled 'error' event.
    // Operations called while connecting wait for the handshake.
    await this.#operations.first(() => this.#handshake(stopAfter));
  }

  async #handshake(stopAfter: ConnectOptions["stopAfter"]): Promise<void> {
    try {
      checkClientName(this.name);
      await this.#open(stopAfter);
      this.#stoppedAfter = stopAfter;
      if (!stopAfter) await applyTlsPolicy(this.#startTlsSession());
      // A fault read after the last reply of the handshake (a reply nobody asked for) may
      // have closed the connection already; "ready" would bring it back to life.
      if (this.#state === "closed") throw this.#fatal;
      this.#state = "ready";
    } catch (err) {
      const error = err instanceof SMTPError ? err : fromSocketError(err);
      this.#teardown(error);
      throw this.#fatal ?? error;
    }
    this.emit("connect");
  }

  /** Opens the transport (TCP, implicit TLS or the caller's socket), reads the greeting, says EHLO (unless it stops after the greeting). */
  async #open(stopAfter?: ConnectOptions["stopAfter"]): Promise<void> {
    const { socket, readyEvent } = openSocket(openOptions(this.options, this));
    this.#wire(socket);
    // A caller's socket that is TLS already (`secured`) is neither: nothing to watch.
    if (readyEvent === "secureConnect" || !this.secure) watchForTlsMismatch(socket, readyEvent === "secureConnect", this.port, (err) => this.#teardown(err));
    if (readyEvent) await this.#within(readTimeout(this.options, "connectionTimeout"), "Connection timeout", new Promise((resolve) => socket.once(readyEvent, resolve)));
    // Nagle's algorithm holds a small write (the terminator after the last body chunk, a
    // command after a pipelined group) until the server ACKs the one before, and servers
    // delay that ACK (40 ms on Linux): without this a message costs ~40 ms of idle wire.
    this.#socketConnected = true;
    socket.setNoDelay(true);
    socket.setTimeout(readTimeout(this.options, "socketTimeout"));
    this.#transcript.info(`Connection established to ${socket.remoteAddress}:${socket.remotePort}`);
    const greetingTimeout = readTimeout(this.options, "greetingTimeout");
    const greeting = await this.#within(greetingTimeout, () => greetingTimeoutError(this.port, greetingTimeout, this.secure), readGreeting(this.#queue));
    this.#greeting = replyText(greeting);
    if (stopAfter !== "greeting") await this.#hello();
  }

  async #hello(name = this.name): Promise<void> {
    const { extensions, lines } = await sayHello(this.#queue, name, Boolean(this.options.lmtp));
    this.#extensions = extensions;
    this.#ehloLines = lines;
    this.#extensionsView = freezeExtensions(extensions);
    this.allowsAuth = extensions.has("AUTH");
  }

  /** What STARTTLS sees of the connection (see starttls.ts). */
  #startTlsSession(): StartTlsSession {
    return {
      options: this.options,
      queue: this.#queue,
      transcript: this.#transcript,
      secure: this.secure,
      extensions: this.#extensions,
      pipeline: this.#pipeline!,
      openOptions: () => openOptions(this.options, this),
      closedWith: () => this.#fatal,
      within: (timedOut, work) => this.#within(readTimeout(this.options, "connectionTimeout"), timedOut, work),
      hello: () => this.#hello(),
      reopen: () => this.#open(),
      plaintextStopped: () => {
        this.#upgradeReady = false;
      },
      secured: (socket) => {
        this.#extensionsBeforeTls = this.#extensionsView;
        this.#wire(socket);
        this.secure = true;
        socket.setTimeout(readTimeout(this.options, "socketTimeout"));
      },
    };
  }

  /** Connects the socket to a fresh reply pipeline whose events this connection handles. */
  #wire(socket: Socket): void {
    this.#pipeline = new ReplyPipeline(socket, {
      reply: (reply) => this.#onReply(reply),
      // A malformed reply is charged to the command it answers (the stages know no commands).
      stageError: (err) => {
        const command = this.#queue.head ?? "CONN";
        const error = fromSocketError(err, command, "EPROTOCOL");
        if (error.command === "CONN") error.command = command;
        this.#teardown(error);
      },
      socketError: (err) => this.#teardown(fromSocketError(err, this.#queue.head ?? "CONN", "ESOCKET")),
      closed: (lastReply) => this.#onServerClosed(lastReply),
      timeout: () => this.#teardown(new SMTPError("ETIMEDOUT", "Timeout: no activity on the connection", { command: this.#queue.head ?? "CONN", temporary: true })),
    });
  }

  #onReply(reply: Reply): void {
    if (this.#state === "closed") return;
    // A reply after STARTTLS's 220 is forged: it must not even become lastServerResponse.
    if (this.#upgradeReady) return this.#teardown(startTlsInjection());
    this.lastServerResponse = replyText(reply);
    this.#transcript.server(this.lastServerResponse);
    const command = this.#queue.head;
    publishReply(this.id, reply, command);
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

  #onServerClosed(lastReply?: Reply): void {
    if (this.#state === "closed") return;
    if (lastReply) {
      this.lastServerResponse = replyText(lastReply);
      this.#transcript.server(this.lastServerResponse);
    }
    if (this.#quitting) return this.#teardown();
    const command = this.#queue.head ?? "CONN";
    // A refusal said just before closing (421, 554…) explains the close: the error carries
    // it as a reply would, as Nodemailer's does.
    if (lastReply && lastReply.code >= 400) return this.#teardown(fromReply("ECONNECTION", "Connection closed unexpectedly", lastReply, command));
    this.#teardown(new SMTPError("ECONNECTION", "Connection closed unexpectedly", { command, temporary: true }));
  }

  #writeLine(line: string, logAs?: string): void {
    // Last line of defence against CRLF injection: every caller checked its input, and a
    // command line with CR or LF in it would be two commands on the wire.
    if (/[\r\n]/.test(line)) throw badInput("A command line must not contain CR or LF", "EPROTOCOL");
    if (this.#state === "closed" || !this.#pipeline) return;
    // A reply that arrived before the command it would answer was written answers nothing.
    // With no other command pending, anything still unread in the reply pipeline was sent
    // unasked; taking it as this command's reply would put every later reply off by one.
    // (The queue writes a command before it queues its entry, so "no other" is size 0.)
    if (this.#queue.size === 0 && this.#pipeline.hasUnreadInput) {
      return this.#teardown(protocolError(`Unexpected reply from server with no command pending (before ${line.split(" ")[0]})`, line.split(" ")[0]));
    }
    this.#transcript.client(logAs ?? line);
    publishCommand(this.id, logAs ?? line);
    this.#pipeline.socket.write(line + "\r\n");
  }

  // ---- operations ------------------------------------------------------------------

  /**
   * Runs `operation` after the operations queued before it, so sends started without
   * waiting go out in call order on the one connection. A transaction (`overlap`) may start
   * once the one before it handed the wire over (see OperationQueue).
   */
  #enqueue<T>(operation: Operation<T>, overlap = false, guarded = true, atOnce = false): Promise<T> {
    // A call that races the connection's death (a relay that has not seen `end` yet) must
    // not read as a refusal of its message: nothing was tried, so it is temporary.
    if (this.#state === "closed") return Promise.reject(new SMTPError("ECONNECTION", "Connection is closed", { command: "API", temporary: true, cause: this.#fatal }));
    if (this.#state === "new") return Promise.reject(new SMTPError("ECONNECTION", "Not connected: call connect() first", { command: "API", temporary: false }));
    if (this.#stoppedAfter && !this.#transactionState.quitAsked) {
      return Promise.reject(new SMTPError("ECONNECTION", `The handshake stopped after the ${this.#stoppedAfter} (connect({ stopAfter })): only quit() or close() may follow`, { command: "API", temporary: false }));
    }
    const guard = () => this.#assertOpen();
    return this.#operations.run(operation, { overlap, guard: guarded ? guard : undefined, atOnce });
  }

  async #rset(): Promise<void> {
    const reply = await this.#queue.send("RSET", "RSET");
    if (reply.code !== REPLY.OK) throw fromReply("EPROTOCOL", "Could not reset session state", reply, "RSET");
    this.#transactionState.needsReset = false;
  }

  /** An operation whose turn came after the connection died gets its own error ("API": it wrote nothing). */
  #assertOpen(): void {
    if (this.#state === "closed") throw connectionFailure(this.#fatal!, "API");
  }

  /**
   * Queues one transaction; it may overlap the final reply of the one before. It checks
   * the connection itself (see runTransaction), so that a send queued behind a failure
   * reports its own outcome too.
   */
  #transaction(envelope: Envelope | StagedEnvelope, message: SendStream | Buffer): Promise<SendInfo> {
    const open = () => (this.#assertOpen(), this.#session());
    // A whole message starts at once when nothing is queued: the shortest path for a send awaited.
    const run = () => this.#enqueue((handOver) => runTransaction(open, envelope, message, [...this.#ehloLines], handOver), true, false, Buffer.isBuffer(message));
    return traceSend(run, () => ({ connectionId: this.id, host: this.host, port: this.port, envelope: envelopeOf(envelope) }));
  }

  /** What transactions see of the connection; made again only when the socket, TLS or EHLO changed. */
  #session(): TransactionSession {
    const cached = this.#sessionView;
    if (cached && cached.socket === this.#pipeline!.socket && cached.extensions === this.#extensions && cached.secure === this.secure) return cached;
    const canPipeline = this.options.pipelining !== false && this.#extensions.has("PIPELINING");
    return (this.#sessionView = {
      queue: this.#queue,
      socket: this.#pipeline!.socket,
      extensions: this.#extensions,
      secure: this.secure,
      lmtp: Boolean(this.options.lmtp),
      canPipeline,
      canChunk: canPipeline && Boolean(this.options.chunking) && this.#extensions.has("CHUNKING"),
      bdatChunkSize: readChunkSize(this.options),
      noteCommand: (line) => {
        this.#transcript.client(line);
        publishCommand(this.id, line);
      },
      state: this.#transactionState,
      abort: (err) => this.#teardown(err, { reported: true }),
      recipient: (outcome, envelope) => this.emit("recipient", outcome, envelope),
    });
  }

  /** `begin` is the caller's signal's check (see #cancellable); it runs when the login's turn comes. */
  async #login(auth: AuthCredentials, begin: () => void): Promise<void> {
    begin();
    if (!auth || typeof auth !== "object") throw badInput("login() needs an object with user and pass (or oauth2)", "EAUTH", "AUTH");
    if (this.authenticated) throw new SMTPError("EAUTH", "Already authenticated on this connection", { command: "AUTH", temporary: false });
    const refusal = cleartextRefusal({ host: this.host, remoteAddress: this.#pipeline?.socket.remoteAddress, secure: this.secure, allowInsecureAuth: this.options.allowInsecureAuth });
    if (refusal) throw refusal;
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

  /** Queues the transaction of `stream`, which `signal` abandons until its end of data has left. */
  #startSendStream(envelope: Envelope, stream: SendStream, signal: AbortSignal | undefined, what: string): Promise<SendInfo> {
    if (signal?.aborted) {
      const err = abortError(signal, what, "API", { deliveryState: deliveryState({ phase: "queued" }) });
      stream.destroy(err);
      return Promise.reject(err);
    }
    if (signal) {
      const stop = watchSignal(signal, () => {
        const { phase } = stream;
        const command = phase === "queued" ? "API" : (this.#queue.head ?? (phase === "body" ? "DATA" : "MAIL FROM"));
        // Ignored once the end of data left (phase "final"): the server's reply decides then.
        stream.abort(abortError(signal, what, command, { deliveryState: deliveryState({ phase }) }));
      });
      // Gone when the send settles, or when the stream closes without one (destroyed while queued).
      stream.once("close", stop);
      const sending = this.#transaction(envelope, stream);
      sending.then(stop, stop);
      return sending;
    }
    return this.#transaction(envelope, stream);
  }

  #send(envelope: Envelope, message: MessageInput, signal: AbortSignal | undefined): Promise<SendInfo> {
    let checked: ReturnType<typeof checkMessage>;
    try {
      checked = checkMessage(message);
    } catch (err) {
      // Bad input is a rejection like any other failure, never a throw from send().
      return Promise.reject(err as Error);
    }
    // The whole message is here: no stream needed, and body and terminator go out in one
    // write. Returned as is (not awaited here), so its result reaches the caller one
    // promise hop sooner. With a signal it goes through a SendStream, whose abort
    // handling covers every phase of the send.
    if (!signal && "bytes" in checked) return this.#transaction(envelope, checked.bytes);
    const stream = new SendStream();
    const sending = this.#startSendStream(envelope, stream, signal, "send()");
    return "bytes" in checked ? sendBytes(checked.bytes, stream, sending) : sendFromSource(checked.source, stream, sending);
  }

  // ---- the public edge -------------------------------------------------------------

  /** Reads a call's trailing `(options?, callback?)`, runs `operation` with the signal, and settles the callback or returns the Promise. */
  #settleCall<T>(args: unknown[], operation: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> | void {
    const { signal, callback, refusal } = readCallArgs<T>(args);
    return settle(refusal ? Promise.reject(refusal) : operation(signal), callback, this.#delivered);
  }

  /**
   * Runs an operation that `signal` may cancel; `run` calls `begin` when the operation's
   * turn comes (begin throws if the signal aborted meanwhile, so nothing is written). An
   * abort rejects at once: before the turn the operation then does nothing; during it the
   * connection is closed, as there is no clean way out of a handshake or SASL exchange.
   * The signal's listener goes when the operation settles.
   */
  #cancellable<T>(signal: AbortSignal | undefined, what: string, run: (begin: () => void) => Promise<T>): Promise<T> {
    if (!signal) return run(() => {});
    if (signal.aborted) return Promise.reject(abortError(signal, what, "API"));
    let begun = false;
    return new Promise<T>((resolve, reject) => {
      const stop = watchSignal(signal, () => {
        const err = abortError(signal, what, begun ? (this.#queue.head ?? "CONN") : "API");
        reject(err);
        if (begun) this.#teardown(new SMTPError("ECONNECTION", `Connection closed because ${what} was aborted`, { command: err.command, temporary: true, cause: err }), { reported: true });
      });
      const begin = () => {
        if (signal.aborted) throw abortError(signal, what, "API");
        begun = true;
      };
      run(begin).then(
        (value) => (stop(), resolve(value)),
        (err: unknown) => (stop(), reject(err)),
      );
    });
  }

  // ---- timers and teardown ---------------------------------------------------------

  /** Races `work` against a timer that fails the whole connection with ETIMEDOUT (or the error `timedOut` makes). */
  async #within<T>(ms: number, timedOut: string | (() => SMTPError), work: Promise<T>): Promise<T> {
    const onTimeout = () =>
      typeof timedOut === "function" ? timedOut() : new SMTPError("ETIMEDOUT", timedOut, { command: this.#queue.head ?? "CONN", temporary: true });
    const timer = setTimeout(() => this.#teardown(onTimeout()), ms);
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
   * queued operation (each with its own error, `err` as cause; ECONNECTION when closed on
   * purpose), destroy the socket, resolve `closed`, emit `error` at most once and `end`
   * once. `error` is emitted only to a listener (SPEC §8): an error no operation received
   * must never crash a Promise user; `closed` and the next call's `cause` keep it.
   * `reported` means the operation that chose to close has already reported the failure,
   * so no `error` event repeats it.
   */
  #teardown(err?: SMTPError, { reported = false } = {}): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    // Operations still pending when the caller closes were never refused by anyone: a relay
    // may retry them elsewhere, so they are temporary.
    this.#fatal = err ?? new SMTPError("ECONNECTION", "Connection closed before the operation completed", { command: "API", temporary: true });
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#queue.failAll(this.#fatal);
    this.#died(this.#fatal);
    this.#pipeline?.destroy();
    if (err) this.#transcript.error(`${err.code}: ${err.message}`);
    this.#closedWith(err);
    process.nextTick(() => {
      if (err && !reported && this.listenerCount("error") > 0) {
        // Recorded for the rule on calls without a callback (callback.ts).
        this.#deliveredErrors.add(err);
        this.emit("error", err);
      }
      this.emit("end");
    });
  }
}
