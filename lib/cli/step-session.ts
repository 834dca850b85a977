/**
 * A bare SMTP session that goes one step at a time and can stop after any of them:
 * `probe`, and `send --quit-after connect|ehlo|tls|auth|mail|rcpt`, which must stop
 * where SMTPConnection would go on. It is built from the connection's own parts (socket.ts,
 * the reply pipeline, the command queue, handshake.ts, starttls.ts, auth/, envelope.ts),
 * so every step behaves and fails as it does in a send; it keeps what the connection does
 * not expose: the greeting, the EHLO keywords before STARTTLS, and the certificate.
 *
 * Deliberately left out: DATA and everything after (a send is the connection's job),
 * pipelining, and retries. The first failure ends the session.
 */
import type { TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import type { AuthCredentials, Envelope, Reply, SMTPConnectionOptions } from "../types.js";
import { fromReply, fromSocketError, protocolError, replyText, SMTPError, REPLY } from "../errors.js";
import { CommandQueue } from "../command-queue.js";
import { ReplyPipeline } from "../reply-pipeline.js";
import { readGreeting, sayHello, type Extensions } from "../handshake.js";
import { applyTlsPolicy, startTlsInjection, type StartTlsSession } from "../starttls.js";
import { authenticate, cleartextRefusal } from "../auth/index.js";
import { prepareEnvelope, checkClientName, type PreparedEnvelope } from "../envelope.js";
import { openSocket } from "../socket.js";
import { defaultClientName, openOptions, readTimeout } from "../options.js";
import { createTranscript, type Transcript } from "../logger.js";

/** What the TLS handshake showed: the certificate is described, whether or not it verified. */
export interface TlsFacts {
  protocol: string | null;
  cipher: string;
  /** True when the chain and the host name verified against the trusted CAs. */
  verified: boolean;
  /** Why it did not verify (e.g. "DEPTH_ZERO_SELF_SIGNED_CERT"). */
  verifyError?: string;
  subject: string;
  issuer: string;
  subjectAltName?: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
}

/** The outcome of RCPT TO for each recipient of one envelope. */
export interface RecipientReplies {
  accepted: string[];
  rejected: string[];
  rejectedErrors: SMTPError[];
}

export class StepSession {
  readonly #options: SMTPConnectionOptions;
  readonly #transcript: Transcript;
  readonly #queue: CommandQueue;
  readonly host: string;
  readonly port: number;
  #pipeline: ReplyPipeline | undefined;
  #secure: boolean;
  #extensions: Extensions = new Map();
  #fatal: SMTPError | undefined;
  #quitting = false;
  #upgradeReady = false;
  #died!: (err: SMTPError) => void;
  readonly #whenDead: Promise<never>;
  /** The greeting, once read. */
  greeting: Reply | undefined;
  /** The keywords of each EHLO (or LHLO) in order: before STARTTLS, then after it. */
  readonly hellos: Extensions[] = [];
  /** The TLS handshake (implicit TLS or STARTTLS), once done. */
  tls: TlsFacts | undefined;

  /**
   * `options` are the connection's. With `inspectTls` a certificate that does not verify
   * is still accepted, so it can be described; `tls.verified` then says how it fared.
   */
  constructor(options: SMTPConnectionOptions, { inspectTls = false } = {}) {
    this.#options = inspectTls ? { ...options, tls: { ...options.tls, rejectUnauthorized: false } } : options;
    this.#transcript = createTranscript("session", options.logger, options.debug);
    this.#queue = new CommandQueue((line, logAs) => this.#write(line, logAs));
    this.port = Number(options.port) || (options.secure ? 465 : 587);
    this.host = options.host || "localhost";
    this.#secure = options.secure ?? this.port === 465;
    this.#whenDead = new Promise<never>((_, reject) => (this.#died = reject));
    this.#whenDead.catch(() => {});
  }

  get extensions(): Extensions {
    return this.#extensions;
  }

  /** Connects (with implicit TLS when `secure`) and reads the greeting. */
  async connect(): Promise<void> {
    const name = this.#options.name || defaultClientName();
    checkClientName(name);
    const { socket, readyEvent } = openSocket(openOptions(this.#options, this.#endpoint()));
    this.#wire(socket);
    await this.#within(readTimeout(this.#options, "connectionTimeout"), () => this.#timeout("Connection timeout"), new Promise((resolve) => socket.once(readyEvent, resolve)));
    if (this.#secure) this.tls = tlsFacts(socket as TLSSocket);
    this.#transcript.info(`Connection established to ${socket.remoteAddress}:${socket.remotePort}`);
    this.greeting = await this.#within(readTimeout(this.#options, "greetingTimeout"), () => this.#timeout("Greeting never received"), readGreeting(this.#queue));
  }

  /** EHLO (LHLO for LMTP), falling back to HELO. */
  async hello(): Promise<void> {
    const { extensions } = await this.#alive(sayHello(this.#queue, this.#options.name || defaultClientName(), Boolean(this.#options.lmtp)));
    this.#extensions = extensions;
    this.hellos.push(extensions);
  }

  /** STARTTLS as the connection's options say (the same policy as SMTPConnection.connect()). */
  async startTls(): Promise<void> {
    await this.#alive(applyTlsPolicy(this.#startTlsSession()));
  }

  /** AUTH, as SMTPConnection.login() does it (cleartext policy included). */
  async login(auth: AuthCredentials): Promise<void> {
    const refusal = cleartextRefusal({ host: this.host, remoteAddress: this.#pipeline?.socket.remoteAddress, secure: this.#secure, allowInsecureAuth: this.#options.allowInsecureAuth });
    if (refusal) throw refusal;
    await this.#alive(
      authenticate(
        {
          send: (command, line, logAs) => this.#queue.send(command, line, logAs),
          advertised: this.#extensions.get("AUTH") ?? [],
          extensions: [...this.#extensions.keys()],
          maxAllowedSize: Number(this.#extensions.get("SIZE")?.[0]) || false,
          customAuth: this.#options.customAuth ?? {},
        },
        auth,
      ),
    );
  }

  /** MAIL FROM with the envelope's parameters; rejects with EENVELOPE when refused. */
  async mail(envelope: Envelope): Promise<PreparedEnvelope> {
    const prepared = prepareEnvelope(envelope, { extensions: this.#extensions, secure: this.#secure });
    const reply = await this.#alive(this.#queue.send("MAIL FROM", prepared.mailLine));
    if (reply.code !== REPLY.OK) throw fromReply("EENVELOPE", `MAIL FROM:<${prepared.from}> rejected`, reply, "MAIL FROM");
    return prepared;
  }

  /** RCPT TO for each recipient, one at a time; the refusals are reported, not thrown. */
  async rcpt(prepared: PreparedEnvelope): Promise<RecipientReplies> {
    const result: RecipientReplies = { accepted: [], rejected: [], rejectedErrors: [] };
    for (const [i, line] of prepared.rcptLines.entries()) {
      const address = prepared.to[i]!;
      const reply = await this.#alive(this.#queue.send("RCPT TO", line));
      if (reply.code === REPLY.OK || reply.code === 251) result.accepted.push(address);
      else {
        if (reply.code === REPLY.SERVICE_NOT_AVAILABLE) throw fromReply("ECONNECTION", `RCPT TO:<${address}> rejected`, reply, "RCPT TO");
        result.rejected.push(address);
        result.rejectedErrors.push(fromReply("EENVELOPE", `RCPT TO:<${address}> rejected`, reply, "RCPT TO", { recipient: address }));
      }
    }
    return result;
  }

  /** RSET, between envelopes that were never sent. */
  async reset(): Promise<void> {
    const reply = await this.#alive(this.#queue.send("RSET", "RSET"));
    if (reply.code !== REPLY.OK) throw fromReply("EPROTOCOL", "Could not reset session state", reply, "RSET");
  }

  /** QUIT, then close; never fails, and waits at most 5 s for the reply. */
  async quit(): Promise<void> {
    if (this.#fatal) return;
    this.#quitting = true;
    await this.#within(Math.min(5000, readTimeout(this.#options, "socketTimeout")), () => this.#timeout("QUIT"), this.#queue.send("QUIT", "QUIT")).catch(() => undefined);
    this.close();
  }

  /** Closes at once. */
  close(): void {
    this.#fail(new SMTPError("ECONNECTION", "Connection closed", { command: "API", temporary: true }));
  }

  #endpoint() {
    return { host: this.host, port: this.port, secure: this.#secure };
  }

  #startTlsSession(): StartTlsSession {
    return {
      options: this.#options,
      queue: this.#queue,
      transcript: this.#transcript,
      secure: this.#secure,
      extensions: this.#extensions,
      pipeline: this.#pipeline!,
      openOptions: () => openOptions(this.#options, this.#endpoint()),
      closedWith: () => this.#fatal,
      within: (timedOut, work) => this.#within(readTimeout(this.#options, "connectionTimeout"), timedOut, work),
      hello: () => this.hello(),
      reopen: async () => {
        await this.connect();
        await this.hello();
      },
      plaintextStopped: () => {
        this.#upgradeReady = false;
      },
      secured: (socket) => {
        this.#wire(socket);
        this.#secure = true;
        this.tls = tlsFacts(socket);
      },
    };
  }

  #wire(socket: Socket): void {
    this.#pipeline = new ReplyPipeline(socket, {
      reply: (reply) => this.#onReply(reply),
      stageError: (err) => this.#fail(fromSocketError(err, this.#queue.head ?? "CONN", "EPROTOCOL")),
      socketError: (err) => this.#fail(fromSocketError(err, this.#queue.head ?? "CONN")),
      closed: () => this.#fail(this.#quitting ? undefined : new SMTPError("ECONNECTION", "Connection closed unexpectedly", { command: this.#queue.head ?? "CONN", temporary: true })),
      timeout: () => this.#fail(this.#timeout("Timeout: no activity on the connection")),
    });
    socket.setTimeout(readTimeout(this.#options, "socketTimeout"));
  }

  #onReply(reply: Reply): void {
    if (this.#fatal) return;
    // As in the connection: a reply behind STARTTLS's 220 is forged.
    if (this.#upgradeReady) return void this.#fail(startTlsInjection());
    this.#transcript.server(replyText(reply));
    const command = this.#queue.head;
    if (reply.code === REPLY.SERVICE_NOT_AVAILABLE && !this.#quitting) return void this.#fail(fromReply("ECONNECTION", "Server is closing the connection", reply, command ?? "CONN"));
    try {
      this.#queue.dispatch(reply);
    } catch (err) {
      return void this.#fail(err as SMTPError);
    }
    if (command === "STARTTLS" && reply.code === REPLY.SERVICE_READY) this.#upgradeReady = true;
  }

  #write(line: string, logAs?: string): void {
    if (this.#fatal || !this.#pipeline) return;
    if (this.#queue.size === 0 && this.#pipeline.hasUnreadInput) {
      this.#fail(protocolError(`Unexpected reply from server with no command pending (before ${line.split(" ")[0]})`, line.split(" ")[0]));
      return;
    }
    this.#transcript.client(logAs ?? line);
    this.#pipeline.socket.write(line + "\r\n");
  }

  #timeout(message: string): SMTPError {
    return new SMTPError("ETIMEDOUT", message, { command: this.#queue.head ?? "CONN", temporary: true });
  }

  /** Waits for `work`, or for the session to die (a fault fails it, not just the pending reply). */
  #alive<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.#whenDead]);
  }

  /** Races `work` against a timer that fails the whole session with the error `timedOut` makes. */
  async #within<T>(ms: number, timedOut: () => SMTPError, work: Promise<T>): Promise<T> {
    const timer = setTimeout(() => this.#fail(timedOut()), ms);
    try {
      return await this.#alive(work);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the session: pending replies fail with `err`, the socket is destroyed. */
  #fail(err: SMTPError | undefined): void {
    if (this.#fatal) return;
    this.#fatal = err ?? new SMTPError("ECONNECTION", "Connection closed", { command: "QUIT", temporary: true });
    if (err) this.#transcript.error(`${err.code}: ${err.message}`);
    this.#queue.failAll(this.#fatal);
    this.#died(this.#fatal);
    this.#pipeline?.destroy();
  }
}

/** EHLO keywords with their parameters, one per line: "SIZE 10240000", "AUTH PLAIN LOGIN". */
export function describeExtensions(extensions: Extensions): string[] {
  return [...extensions].map(([keyword, params]) => [keyword, ...params].join(" "));
}

function tlsFacts(socket: TLSSocket): TlsFacts {
  const cert = socket.getPeerCertificate();
  const name = (entries: object | undefined) =>
    Object.entries(entries ?? {})
      .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("+") : value}`)
      .join(", ");
  return {
    protocol: socket.getProtocol(),
    cipher: socket.getCipher().name,
    verified: socket.authorized,
    verifyError: socket.authorized ? undefined : String(socket.authorizationError),
    subject: name(cert.subject),
    issuer: name(cert.issuer),
    subjectAltName: cert.subjectaltname,
    validFrom: new Date(cert.valid_from).toISOString(),
    validTo: new Date(cert.valid_to).toISOString(),
    fingerprint256: cert.fingerprint256,
  };
}
