/**
 * The SMTP session behind one SMTPConnection: the socket and its reply pipeline (socket ->
 * LineSplitter -> ReplyDecoder -> CommandQueue), the guards on both directions of the wire,
 * the handshake, the operation queue that runs sends in call order, timers, and teardown.
 * The protocol steps themselves live in handshake.ts, starttls.ts, auth/, transaction.ts
 * and xclient.ts.
 *
 * Deliberately left out: the public API (connection.ts: Nodemailer's names, callbacks and
 * Promises, signals), which calls in here; what it shows of the session (greeting,
 * extensions, secure, authenticated...) the session keeps up to date on the connection.
 */
import type { Socket } from "node:net";
import type { AuthCredentials, ConnectOptions, Envelope, ExtensionsView, SendInfo, SMTPConnectionOptions } from "./types.js";
import type { SMTPConnection } from "./connection.js";
import { badInput, connectionFailure, fromReply, fromSocketError, greetingTimeoutError, replyText, SMTPError, REPLY } from "./errors.js";
import { CommandQueue } from "./command-queue.js";
import { Wire } from "./wire.js";
import { freezeExtensions, readGreeting, sayHello, type Extensions } from "./handshake.js";
import { openSocket, watchForTlsMismatch } from "./socket.js";
import { openOptions, readChunkSize, readTimeout } from "./options.js";
import { applyTlsPolicy, type StartTlsSession } from "./starttls.js";
import { authenticate, cleartextRefusal } from "./auth/index.js";
import { checkClientName } from "./envelope.js";
import { SendStream, sendBytes, sendFromSource } from "./send-stream.js";
import { checkMessage, type MessageInput } from "./message.js";
import { envelopeOf, runTransaction, type StagedEnvelope, type TransactionSession, type TransactionState } from "./transaction.js";
import { OperationQueue, type Operation } from "./operation-queue.js";
import { createTranscript, type Transcript } from "./logger.js";
import { abandonOnAbort } from "./cancellation.js";
import { publishCommand, traceSend } from "./diagnostics.js";
import { proxyCommandLines, sendProxyCommand, type XClientAttributes, type XForwardAttributes } from "./xclient.js";
import type { MailTransaction } from "./mail-transaction.js";

/** QUIT is a courtesy: never wait longer than this for its 221. */
const QUIT_WAIT_MS = 5000;

export class Session {
  readonly #conn: SMTPConnection;
  readonly #options: SMTPConnectionOptions;
  #extensions: Extensions = new Map();
  /** The EHLO lines with their parameters, for SendInfo.ehlo (as Nodemailer reports them). */
  #ehloLines: string[] = [];
  #extensionsView = freezeExtensions(new Map());
  #extensionsBeforeTls: ExtensionsView | undefined;
  #greeting: string | undefined;
  /** connect({ stopAfter }) ended the handshake early: only quit() and close() may follow. */
  #stoppedAfter: ConnectOptions["stopAfter"];
  readonly #wire: Wire;
  readonly #queue: CommandQueue;
  readonly #transcript: Transcript;
  #state: "new" | "connecting" | "ready" | "closed" = "new";
  #fatal: SMTPError | undefined;
  #transactionState: TransactionState = { needsReset: false, finalsPending: 0, envelopesSent: 0, quitAsked: false };
  #socketConnected = false;
  #quitting = false;
  #operations = new OperationQueue();
  #sessionView: TransactionSession | undefined;
  /**
   * Told by teardown that the connection ended: operations that may be waiting for their
   * caller (a staged transaction between steps) or for a callback of the caller's (a
   * customAuth handler, an OAuth2 token provider) rather than for a reply, which failing
   * the command queue would not reach (SPEC §3: none is left waiting). See #watchClose().
   */
  readonly #closeWatchers = new Set<() => void>();
  #timers = new Set<NodeJS.Timeout>();
  /** Errors an `error` listener received: a call without a callback need not report them again (callback.ts). */
  #deliveredErrors = new WeakSet<object>();
  readonly delivered = (err: unknown): boolean =>
    err instanceof Error && (this.#deliveredErrors.has(err) || (err.cause instanceof Error && this.#deliveredErrors.has(err.cause)));
  #died!: (err: SMTPError) => void;
  readonly #whenDead: Promise<never>;
  #closedWith!: (reason: SMTPError | undefined) => void;
  /** The connection's `closed`: resolves with the error that closed it, or undefined for a clean close. */
  readonly closed: Promise<SMTPError | undefined>;

  constructor(conn: SMTPConnection) {
    this.#conn = conn;
    this.#options = conn.options;
    this.#transcript = createTranscript(conn.id, conn.options.logger, conn.options.debug);
    this.#queue = new CommandQueue((line, logAs) => this.#wire.write(line, logAs));
    const session = this;
    this.#wire = new Wire({
      id: conn.id,
      queue: this.#queue,
      transcript: this.#transcript,
      get isClosed() {
        return session.#state === "closed";
      },
      get isQuitting() {
        return session.#quitting;
      },
      lastReply: (text) => (conn.lastServerResponse = text),
      fail: (err) => this.teardown(err),
    });
    this.#whenDead = new Promise<never>((_, reject) => (this.#died = reject));
    this.#whenDead.catch(() => {});
    this.closed = new Promise((resolve) => (this.#closedWith = resolve));
  }

  /** True once the connection is closed, for whatever reason. */
  get isClosed(): boolean {
    return this.#state === "closed";
  }

  /** The socket in use (TLS after an upgrade); undefined before connect(). */
  get socket(): Socket | undefined {
    return this.#wire.pipeline?.socket;
  }

  get socketConnected(): boolean {
    return this.#socketConnected;
  }

  get extensionsView(): ExtensionsView {
    return this.#extensionsView;
  }

  get extensionsBeforeTls(): ExtensionsView | undefined {
    return this.#extensionsBeforeTls;
  }

  get greeting(): string | undefined {
    return this.#greeting;
  }

  /** The command whose reply is awaited; undefined when none is. */
  get head(): string | undefined {
    return this.#queue.head;
  }

  /** Closes at once for an operation that reports `err` itself, so no `error` event repeats it. */
  abort(err: SMTPError): void {
    this.teardown(err, { reported: true });
  }

  /** Sends QUIT after the operations already queued, then closes; never waits long for 221. */
  quit(): Promise<void> {
    // Known at once, so a transaction abandoned before QUIT's turn skips its RSET (transaction.ts).
    this.#transactionState.quitAsked = true;
    if (this.#state === "closed" || this.#state === "new") return Promise.resolve(this.teardown());
    return this.enqueue(async () => {
      this.#quitting = true;
      const reply = this.#queue.send("QUIT", "QUIT");
      await Promise.race([reply, this.#delay(Math.min(QUIT_WAIT_MS, readTimeout(this.#options, "socketTimeout")))]).catch(() => undefined);
      this.teardown();
    }).catch(() => this.teardown());
  }

  /** XCLIENT, then EHLO again as the forwarded client (see SMTPConnection.xclient). */
  xclient(attributes: XClientAttributes): Promise<void> {
    return this.enqueue(async () => {
      const lines = proxyCommandLines("XCLIENT", attributes, this.#extensions.get("XCLIENT"));
      if (attributes.helo !== undefined) checkClientName(attributes.helo);
      // The server refuses XCLIENT inside a transaction; a failed one may still be open.
      if (this.#transactionState.needsReset) await this.rset();
      await sendProxyCommand(this.#queue, "XCLIENT", lines);
      // The session starts over as the forwarded client's: any login was ours, not theirs.
      this.#conn.authenticated = false;
      await this.#hello(attributes.helo ?? this.#conn.name);
    });
  }

  /** XFORWARD for the next transaction (see SMTPConnection.xforward). */
  xforward(attributes: XForwardAttributes): Promise<void> {
    return this.enqueue(async () => {
      const lines = proxyCommandLines("XFORWARD", attributes, this.#extensions.get("XFORWARD"));
      // RSET after XFORWARD would reset its attributes, so the pending one goes first.
      if (this.#transactionState.needsReset) await this.rset();
      await sendProxyCommand(this.#queue, "XFORWARD", lines);
    });
  }

  /** `begin` is the caller's signal's check (see cancellation.ts). */
  async connect(begin: () => void, stopAfter: ConnectOptions["stopAfter"]): Promise<void> {
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
      checkClientName(this.#conn.name);
      await this.#open(stopAfter);
      this.#stoppedAfter = stopAfter;
      if (!stopAfter) await applyTlsPolicy(this.#startTlsSession());
      // A fault read after the last reply of the handshake (a reply nobody asked for) may
      // have closed the connection already; "ready" would bring it back to life.
      if (this.#state === "closed") throw this.#fatal;
      this.#state = "ready";
    } catch (err) {
      const error = err instanceof SMTPError ? err : fromSocketError(err);
      this.teardown(error);
      throw this.#fatal ?? error;
    }
    this.#conn.emit("connect");
  }

  /** Opens the transport (TCP, implicit TLS or the caller's socket), reads the greeting, says EHLO (unless it stops after the greeting). */
  async #open(stopAfter?: ConnectOptions["stopAfter"]): Promise<void> {
    const { socket, readyEvent } = openSocket(openOptions(this.#options, this.#conn));
    this.#wire.attach(socket);
    // A caller's socket that is TLS already (`secured`) is neither: nothing to watch.
    if (readyEvent === "secureConnect" || !this.#conn.secure) watchForTlsMismatch(socket, readyEvent === "secureConnect", this.#conn.port, (err) => this.teardown(err));
    if (readyEvent) await this.#within(readTimeout(this.#options, "connectionTimeout"), "Connection timeout", new Promise((resolve) => socket.once(readyEvent, resolve)));
    // Nagle's algorithm holds a small write (the terminator after the last body chunk, a
    // command after a pipelined group) until the server ACKs the one before, and servers
    // delay that ACK (40 ms on Linux): without this a message costs ~40 ms of idle wire.
    this.#socketConnected = true;
    socket.setNoDelay(true);
    socket.setTimeout(readTimeout(this.#options, "socketTimeout"));
    this.#transcript.info(`Connection established to ${socket.remoteAddress}:${socket.remotePort}`);
    const greetingTimeout = readTimeout(this.#options, "greetingTimeout");
    const greeting = await this.#within(greetingTimeout, () => greetingTimeoutError(this.#conn.port, greetingTimeout, this.#conn.secure), readGreeting(this.#queue));
    this.#greeting = replyText(greeting);
    if (stopAfter !== "greeting") await this.#hello();
  }

  async #hello(name = this.#conn.name): Promise<void> {
    const { extensions, lines } = await sayHello(this.#queue, name, Boolean(this.#options.lmtp));
    this.#extensions = extensions;
    this.#ehloLines = lines;
    this.#extensionsView = freezeExtensions(extensions);
    this.#conn.allowsAuth = extensions.has("AUTH");
  }

  /** What STARTTLS sees of the connection (see starttls.ts). */
  #startTlsSession(): StartTlsSession {
    return {
      options: this.#options,
      queue: this.#queue,
      transcript: this.#transcript,
      secure: this.#conn.secure,
      extensions: this.#extensions,
      pipeline: this.#wire.pipeline!,
      openOptions: () => openOptions(this.#options, this.#conn),
      closedWith: () => this.#fatal,
      within: (timedOut, work) => this.#within(readTimeout(this.#options, "connectionTimeout"), timedOut, work),
      hello: () => this.#hello(),
      reopen: () => this.#open(),
      plaintextStopped: () => this.#wire.plaintextStopped(),
      secured: (socket) => {
        this.#extensionsBeforeTls = this.#extensionsView;
        this.#wire.attach(socket);
        this.#conn.secure = true;
        socket.setTimeout(readTimeout(this.#options, "socketTimeout"));
      },
    };
  }

  // ---- operations ------------------------------------------------------------------

  /**
   * Runs `operation` after the operations queued before it, so sends started without
   * waiting go out in call order on the one connection. A transaction (`overlap`) may start
   * once the one before it handed the wire over (see OperationQueue).
   */
  enqueue<T>(operation: Operation<T>, overlap = false, guarded = true, atOnce = false): Promise<T> {
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

  async rset(): Promise<void> {
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
  transaction(envelope: Envelope | StagedEnvelope, message: SendStream | Buffer): Promise<SendInfo> {
    const open = () => (this.#assertOpen(), this.#session());
    // A whole message starts at once when nothing is queued: the shortest path for a send awaited.
    const run = () => this.enqueue((handOver) => runTransaction(open, envelope, message, [...this.#ehloLines], handOver), true, false, Buffer.isBuffer(message));
    return traceSend(run, () => ({ connectionId: this.#conn.id, host: this.#conn.host, port: this.#conn.port, envelope: envelopeOf(envelope) }));
  }

  /**
   * Queues a transaction opened with beginTransaction(). Between its steps it waits for its
   * caller rather than for a reply, so teardown tells it the connection ended (see
   * MailTransaction.connectionLost); until it ends, it is kept for that.
   */
  stagedTransaction(staged: MailTransaction, stream: SendStream): Promise<SendInfo> {
    const unwatch = this.#watchClose(() => staged.connectionLost(this.#fatal!));
    const running = this.transaction(staged, stream);
    running.then(unwatch, unwatch);
    return running;
  }

  /** Calls `onClose` if the connection ends before the returned function is called. */
  #watchClose(onClose: () => void): () => void {
    this.#closeWatchers.add(onClose);
    return () => void this.#closeWatchers.delete(onClose);
  }

  /** What transactions see of the connection; made again only when the socket, TLS or EHLO changed. */
  #session(): TransactionSession {
    const cached = this.#sessionView;
    if (cached && cached.socket === this.#wire.pipeline!.socket && cached.extensions === this.#extensions && cached.secure === this.#conn.secure) return cached;
    const canPipeline = this.#options.pipelining !== false && this.#extensions.has("PIPELINING");
    return (this.#sessionView = {
      queue: this.#queue,
      socket: this.#wire.pipeline!.socket,
      extensions: this.#extensions,
      secure: this.#conn.secure,
      lmtp: Boolean(this.#options.lmtp),
      canPipeline,
      canChunk: canPipeline && Boolean(this.#options.chunking) && this.#extensions.has("CHUNKING"),
      bdatChunkSize: readChunkSize(this.#options),
      noteCommand: (line) => {
        this.#transcript.client(line);
        publishCommand(this.#conn.id, line);
      },
      state: this.#transactionState,
      abort: (err) => this.abort(err),
      recipient: (outcome, envelope) => this.#conn.emit("recipient", outcome, envelope),
    });
  }

  /** `begin` is the caller's signal's check (see cancellation.ts); it runs when the login's turn comes. */
  async login(auth: AuthCredentials, begin: () => void): Promise<void> {
    begin();
    if (!auth || typeof auth !== "object") throw badInput("login() needs an object with user and pass (or oauth2)", "EAUTH", "AUTH");
    if (this.#conn.authenticated) throw new SMTPError("EAUTH", "Already authenticated on this connection", { command: "AUTH", temporary: false });
    const refusal = cleartextRefusal({ host: this.#conn.host, remoteAddress: this.#wire.pipeline?.socket.remoteAddress, secure: this.#conn.secure, allowInsecureAuth: this.#options.allowInsecureAuth });
    if (refusal) throw refusal;
    const advertised = this.#extensions.get("AUTH") ?? [];
    const authenticating = authenticate(
      {
        send: (command, line, logAs) => this.#queue.send(command, line, logAs),
        advertised,
        extensions: [...this.#extensions.keys()],
        maxAllowedSize: Number(this.#extensions.get("SIZE")?.[0]) || false,
        customAuth: this.#options.customAuth ?? {},
      },
      auth,
    );
    await this.#untilClosed(authenticating, "AUTH");
    this.#conn.authenticated = true;
  }

  /**
   * `work`, unless the connection ends while no command of it is pending (it waits for a
   * callback of the caller's: a customAuth handler, a token provider): then it fails at
   * once with its own error naming `command`, instead of waiting for ever with every
   * operation queued behind it. A pending command's own failure speaks otherwise.
   */
  #untilClosed<T>(work: Promise<T>, command: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const unwatch = this.#watchClose(() => {
        if (this.#queue.size === 0) reject(connectionFailure(this.#fatal!, command));
      });
      work.then(resolve, reject).finally(unwatch);
    });
  }

  /** Queues the transaction of `stream`, which `signal` abandons until its end of data has left. */
  startSendStream(envelope: Envelope, stream: SendStream, signal: AbortSignal | undefined, what: string): Promise<SendInfo> {
    return abandonOnAbort(stream, signal, what, () => this.#queue.head, () => this.transaction(envelope, stream));
  }

  send(envelope: Envelope, message: MessageInput, signal: AbortSignal | undefined): Promise<SendInfo> {
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
    if (!signal && "bytes" in checked) return this.transaction(envelope, checked.bytes);
    const stream = new SendStream();
    const sending = this.startSendStream(envelope, stream, signal, "send()");
    return "bytes" in checked ? sendBytes(checked.bytes, stream, sending) : sendFromSource(checked.source, stream, sending);
  }

  // ---- timers and teardown ---------------------------------------------------------

  /** Races `work` against a timer that fails the whole connection with ETIMEDOUT (or the error `timedOut` makes). */
  async #within<T>(ms: number, timedOut: string | (() => SMTPError), work: Promise<T>): Promise<T> {
    const onTimeout = () =>
      typeof timedOut === "function" ? timedOut() : new SMTPError("ETIMEDOUT", timedOut, { command: this.#queue.head ?? "CONN", temporary: true });
    const timer = setTimeout(() => this.teardown(onTimeout()), ms);
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
  teardown(err?: SMTPError, { reported = false } = {}): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    // Operations still pending when the caller closes were never refused by anyone: a relay
    // may retry them elsewhere, so they are temporary.
    this.#fatal = err ?? new SMTPError("ECONNECTION", "Connection closed before the operation completed", { command: "API", temporary: true });
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    // Before the queue is failed, so a watcher can tell whether a command of its own is
    // pending (that command's failure then speaks for it).
    for (const onClose of this.#closeWatchers) onClose();
    this.#closeWatchers.clear();
    this.#queue.failAll(this.#fatal);
    this.#died(this.#fatal);
    this.#wire.pipeline?.destroy();
    if (err) this.#transcript.error(`${err.code}: ${err.message}`);
    this.#closedWith(err);
    process.nextTick(() => {
      if (err && !reported && this.#conn.listenerCount("error") > 0) {
        // Recorded for the rule on calls without a callback (callback.ts).
        this.#deliveredErrors.add(err);
        this.#conn.emit("error", err);
      }
      this.#conn.emit("end");
    });
  }
}
