/**
 * A Nodemailer transport backed by SMTPPool, so a Nodemailer user switches with one line:
 *
 *   nodemailer.createTransport(smtpWire({ host, auth, pool: { maxConnections: 5 } }))
 *
 * Nodemailer composes the message; this transport streams it from
 * `mail.message.createReadStream()` into the pool's createSendStream(), opened only once
 * the send has a connection, so a large attachment goes out in constant memory and a send
 * waiting in line holds nothing. `info` has Nodemailer's shape (envelope, messageId,
 * accepted, rejected, rejectedErrors, response, ...) plus everything smtp-wire's SendInfo
 * carries; errors are smtp-wire's SMTPErrors (with deliveryState).
 *
 * Nothing here imports Nodemailer: it calls us through the transport interface
 * (`send(mail, callback)`, `verify`, `close`, `isIdle`, events 'idle' and 'error'), and the
 * types below describe only the part of its mail object we read.
 *
 * Deliberately left out: Nodemailer's `service`/`url` shortcuts and proxies (give host and
 * port), and OAuth2 token refreshing (give an accessToken, or a pass).
 */
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import { SMTPPool } from "../pool/pool.js";
import type { PoolOptions } from "../pool/options.js";
import { deliveryStateOf } from "../pool/requeue.js";
import type { AuthCredentials, DSNOptions, Envelope, SendInfo } from "../types.js";

/** What the transport reads of Nodemailer's mail object (its MailMessage). */
export interface NodemailerMail {
  data: { dsn?: DSNOptions; signal?: AbortSignal; requireTLSExtensionEnabled?: boolean; [key: string]: unknown };
  message: {
    getEnvelope(): { from: string | false; to: string[] };
    messageId(): string;
    createReadStream(): Readable;
  };
}

/** Nodemailer's `auth` option, as its SMTP transport takes it. */
export interface NodemailerAuth {
  user?: string;
  pass?: string;
  /** Force a method: PLAIN, LOGIN, CRAM-MD5, XOAUTH2. */
  method?: string;
  /** "login" (default) or "oauth2" (with accessToken). */
  type?: string;
  accessToken?: string;
}

/** Pool settings, under `pool` or at the top level as Nodemailer's pooled transport takes them. */
export type PoolSettings = Pick<PoolOptions, "maxConnections" | "maxMessages" | "rateLimit" | "rateDelta" | "idleTimeout" | "maxRequeues" | "maxQueued">;

/** What smtpWire() takes: connection options, Nodemailer's `auth`, and the pool's settings. */
export interface SmtpWireTransportOptions extends Omit<PoolOptions, "auth"> {
  auth?: NodemailerAuth;
  /** The pool's settings (`true` or absent: the defaults; top-level settings apply too). */
  pool?: boolean | PoolSettings;
}

/** What sendMail() resolves with: Nodemailer's info, plus smtp-wire's SendInfo fields. */
export interface SmtpWireSentMessageInfo extends SendInfo {
  envelope: { from: string; to: string[] };
  messageId: string;
}

const VERSION = (createRequire(import.meta.url)("smtp-wire/package.json") as { version: string }).version;

function authOf(auth: NodemailerAuth | undefined): AuthCredentials | undefined {
  if (!auth || (!auth.user && !auth.pass && !auth.accessToken)) return undefined;
  if (String(auth.type ?? "").toUpperCase() === "OAUTH2" || auth.accessToken) {
    return { user: auth.user, method: "XOAUTH2", oauth2: { user: auth.user, accessToken: auth.accessToken } };
  }
  return { user: auth.user ?? "", pass: auth.pass ?? "", method: auth.method };
}

/** Nodemailer's AbortError (name, code), telling also what became of the message. */
function abortError(signal: AbortSignal, err: unknown): Error {
  return Object.assign(new Error("Message sending aborted", { cause: signal.reason }), { name: "AbortError", code: "EABORT", deliveryState: deliveryStateOf(err) });
}

export class SmtpWireTransport extends EventEmitter {
  /** Shown in Nodemailer's logs. */
  readonly name = "smtp-wire";
  readonly version = VERSION;
  /** sendMail({ signal }) is honoured while the message waits and while it is sent. */
  readonly supportsAbortSignal = true;
  /** Set by Nodemailer when it wraps the transport. */
  mailer?: unknown;
  readonly pool: SMTPPool;

  constructor(options: SmtpWireTransportOptions = {}) {
    super();
    const { pool, auth, ...rest } = options;
    this.pool = new SMTPPool({ ...rest, ...(typeof pool === "object" ? pool : {}), auth: authOf(auth) });
    this.pool.on("idle", () => this.emit("idle"));
  }

  /** Nodemailer's transport entry point: sends one composed mail; `callback` is called once. */
  send(mail: NodemailerMail, callback: (err: Error | null, info?: SmtpWireSentMessageInfo) => void): void {
    const signal = mail.data.signal;
    let finished = false;
    let source: Readable | undefined;
    const finish = (err: Error | null, info?: SmtpWireSentMessageInfo): void => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener("abort", onAbort);
      callback(err, info);
    };
    let envelope: Envelope & { from: string; to: string[] };
    let messageId: string;
    try {
      const { from, to } = mail.message.getEnvelope();
      envelope = { from: from || "", to: [...to] };
      if (mail.data.dsn) envelope.dsn = mail.data.dsn;
      if (mail.data.requireTLSExtensionEnabled) envelope.requireTLS = true;
      messageId = mail.message.messageId();
    } catch (err) {
      return finish(err as Error);
    }
    const stream = this.pool.createSendStream(envelope);
    const onAbort = (): void => {
      stream.destroy(abortError(signal!, undefined));
    };
    // Opened once the send has a connection: a mail waiting in line holds nothing.
    stream.once("dispatch", () => {
      source = mail.message.createReadStream();
      source.pipe(stream);
    });
    stream.once("finish", () => finish(null, { ...stream.info!, envelope: { from: envelope.from, to: envelope.to }, messageId }));
    stream.once("error", (err) => {
      source?.unpipe(stream);
      source?.destroy();
      finish(signal?.aborted ? abortError(signal, err) : err);
    });
    if (signal) {
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }
  }

  /** Connects, logs in and says QUIT on one connection apart from the pool. */
  verify(): Promise<true>;
  verify(callback: (err: Error | null, success?: true) => void): void;
  verify(callback?: (err: Error | null, success?: true) => void): Promise<true> | void {
    return callback ? this.pool.verify(callback) : this.pool.verify();
  }

  /** True when a mail sent now would be queued at once. */
  isIdle(): boolean {
    return this.pool.isIdle();
  }

  /** Messages not finished yet (queued or being sent). */
  pendingCount(): number {
    return this.pool.pendingCount();
  }

  /** Closes the pool (see SMTPPool.close); resolves once every connection is closed. */
  close(options?: { force?: boolean }): Promise<void> {
    return this.pool.close(options);
  }
}

/** Makes the transport object for `nodemailer.createTransport()`. */
export function smtpWire(options: SmtpWireTransportOptions = {}): SmtpWireTransport {
  return new SmtpWireTransport(options);
}
