/**
 * SMTPConnection: the public class (SPEC §2–§6): Nodemailer's options, methods, properties
 * and events, each method with a callback or a Promise, and `{ signal }` (cancellation.ts).
 * The session behind it (session.ts) owns the socket, the replies, the operation queue,
 * timers and teardown, and keeps this object's properties up to date.
 *
 * Deliberately left out: connection pooling and retries (a transport's job), message
 * composition (the caller gives RFC 5322 bytes).
 */
import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import type { AuthCredentials, Callback, ConnectOptions, CustomAuthHandler, DoneCallback, Envelope, ExtensionsView, Logger, OperationOptions, SendInfo, SMTPConnectionEvents, SMTPConnectionOptions, TlsInfo } from "./types.js";
import type { SMTPError } from "./errors.js";
import { serverName, tlsDetails } from "./socket.js";
import { defaultClientName } from "./options.js";
import { SendStream } from "./send-stream.js";
import { createLevelLogger } from "./logger.js";
import { VERSION } from "./version.js";
import { settle, settleCall } from "./callback.js";
import { readCallArgs } from "./abort.js";
import { cancellable } from "./cancellation.js";
import { MailTransaction, type TransactionEnvelope } from "./mail-transaction.js";
import { Session } from "./session.js";
import type { XClientAttributes, XForwardAttributes } from "./xclient.js";

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

  /** Everything behind the public API: socket, replies, operations, teardown (session.ts). */
  readonly #session: Session;
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
    this.logger = createLevelLogger(this.id, options.logger);
    this.#session = new Session(this);
    this.closed = this.#session.closed;
  }

  /** "init" until the socket is connected, then "connected" (Nodemailer's `stage`). */
  get stage(): "init" | "connected" {
    return this.#session.socketConnected ? "connected" : "init";
  }

  /** True once the connection is closed, for whatever reason (Nodemailer's `destroyed`). */
  get destroyed(): boolean {
    return this.#session.isClosed;
  }

  /** Cipher, protocol, certificate check and the server's certificate; undefined unless the connection is encrypted. */
  get tlsInfo(): TlsInfo | undefined {
    return tlsDetails(this.#session.socket);
  }

  /** EHLO keywords (upper case) to their parameters; read-only. */
  get extensions(): ExtensionsView {
    return this.#session.extensionsView;
  }

  /**
   * The keywords the server advertised in plaintext, before STARTTLS; undefined when no
   * STARTTLS upgrade took place. For diagnostics only: RFC 3207 §4.2 says to forget them
   * (a man in the middle could have edited them), and `extensions` does.
   */
  get extensionsBeforeTls(): ExtensionsView | undefined {
    return this.#session.extensionsBeforeTls;
  }

  /** The server's 220 greeting as text (a multi-line one joined by LF); undefined until read. */
  get greeting(): string | undefined {
    return this.#session.greeting;
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
    const session = this.#session;
    return settleCall([options, callback], (signal) => cancellable(signal, "connect()", session, (begin) => session.connect(begin, stopAfter)), session.delivered);
  }

  /**
   * Authenticates; resolves once the server said 235. An aborted `signal` rejects at once;
   * if AUTH had started, the connection is closed (a SASL exchange has no clean way back).
   */
  login(auth: AuthCredentials, options?: OperationOptions): Promise<void>;
  login(auth: AuthCredentials, callback: DoneCallback): void;
  login(auth: AuthCredentials, options: OperationOptions, callback: DoneCallback): void;
  login(auth: AuthCredentials, options?: OperationOptions | DoneCallback, callback?: DoneCallback): Promise<void> | void {
    const session = this.#session;
    return settleCall([options, callback], (signal) => cancellable(signal, "login()", session, (begin) => session.enqueue(() => session.login(auth, begin))), session.delivered);
  }

  /**
   * Sends one message (string, Buffer or Readable) and resolves with its SendInfo. See
   * OperationOptions for what an aborted `signal` does at each point.
   */
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable, options?: OperationOptions): Promise<SendInfo>;
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable, callback: Callback<SendInfo>): void;
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable, options: OperationOptions, callback: Callback<SendInfo>): void;
  send(envelope: Envelope, message: string | Buffer | Uint8Array | Readable, options?: OperationOptions | Callback<SendInfo>, callback?: Callback<SendInfo>): Promise<SendInfo> | void {
    return settleCall([options, callback], (signal) => this.#session.send(envelope, message, signal), this.#session.delivered);
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
    else this.#session.startSendStream(envelope, stream, signal, "createSendStream()").catch((err: SMTPError) => stream.fail(err));
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
    return new MailTransaction(envelope, (staged, stream) => this.#session.stagedTransaction(staged, stream)).opened;
  }

  /** RSET: aborts the current transaction state; resolves true. */
  reset(): Promise<boolean>;
  reset(callback: Callback<boolean>): void;
  reset(callback?: Callback<boolean>): Promise<boolean> | void {
    const session = this.#session;
    return settle(
      session.enqueue(async () => {
        await session.rset();
        return true;
      }),
      callback,
      session.delivered,
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
    return settle(this.#session.xclient(attributes), callback);
  }

  /**
   * XFORWARD (Postfix): tells the server what to log as the original client (address,
   * name, HELO, protocol, source, ident) for the next transaction; call it before
   * send()/beginTransaction(). Resolves once the server said 250. Fails as xclient() does.
   */
  xforward(attributes: XForwardAttributes): Promise<void>;
  xforward(attributes: XForwardAttributes, callback: Callback<void>): void;
  xforward(attributes: XForwardAttributes, callback?: Callback<void>): Promise<void> | void {
    return settle(this.#session.xforward(attributes), callback);
  }

  /** Sends QUIT after the operations already queued, then closes; never waits long for 221. */
  quit(): Promise<void>;
  quit(callback: DoneCallback): void;
  quit(callback?: DoneCallback): Promise<void> | void {
    return settle(this.#session.quit(), callback, this.#session.delivered);
  }

  /** Closes the socket now, without QUIT. Pending operations fail with ECONNECTION. */
  close(): void {
    this.#session.teardown();
  }
}
