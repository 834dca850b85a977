/**
 * A Nodemailer transport backed by SMTPPool, so a Nodemailer user switches with one line:
 *
 *   nodemailer.createTransport(smtpWire({ host, auth, pool: { maxConnections: 5 } }))
 *
 * Nodemailer composes the message; the pool opens `mail.message.createReadStream()` only
 * once the send has a connection (and again for a second attempt, when the first
 * connection died before the message could be delivered), so a large attachment goes out
 * in constant memory and a send waiting in line holds nothing. `info` has Nodemailer's shape (envelope, messageId,
 * accepted, rejected, rejectedErrors, response, ...) plus everything smtp-wire's SendInfo
 * carries; errors are smtp-wire's SMTPErrors (with deliveryState).
 *
 * Nothing here imports Nodemailer: it calls us through the transport interface
 * (`send(mail, callback)`, `verify`, `close`, `isIdle`, events 'idle', 'clear' and 'error'), and the
 * types below describe only the part of its mail object we read.
 *
 * A mail with its own `auth` goes on a connection of its own (own-login.ts), as Nodemailer's
 * SMTP transport sends every mail.
 *
 * Deliberately left out: proxies, and OAuth2 token refreshing (give an accessToken, or a pass).
 */
import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import { SMTPPool } from "../pool/pool.js";
import { connectionOptionsOf, readPoolLimits, type PoolOptions } from "../pool/options.js";
import { settle } from "../callback.js";
import { mergeMailAuth, sendWithOwnLogin } from "./own-login.js";
import { VERSION } from "../version.js";
import { resolveShortcuts, type Shortcuts } from "./shortcuts.js";
import type { AuthCredentials, DSNOptions, Envelope, SendInfo } from "../types.js";

/** Nodemailer's `dsn` option: its own names (id, return, recipient) or SMTPConnection's (envid, ret, orcpt). */
export interface NodemailerDsn {
  id?: string;
  envid?: string;
  return?: string;
  ret?: string;
  notify?: string | string[];
  recipient?: string;
  orcpt?: string;
}

/** What the transport reads of Nodemailer's mail object (its MailMessage). */
export interface NodemailerMail {
  /** The sendMail() options; only `dsn`, `signal`, `auth` and `requireTLSExtensionEnabled` are read. */
  data: object;
  message: {
    /** From and to, plus what the mail's `envelope` option set besides them (size, use8BitMime, dsn...). */
    getEnvelope(): NodemailerEnvelope;
    messageId(): string;
    createReadStream(): Readable;
  };
}

/**
 * The envelope Nodemailer computed for a mail: from and to, and any other key the mail's
 * `envelope` option carried, which its SMTP transports hand to the connection as they are.
 */
export interface NodemailerEnvelope extends Omit<Envelope, "from" | "to" | "dsn"> {
  from: string | false;
  to: string[];
  dsn?: NodemailerDsn;
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
export interface SmtpWireTransportOptions extends Omit<PoolOptions, "auth">, Shortcuts {
  auth?: NodemailerAuth;
  /** The AUTH method when `auth.method` names none, as in Nodemailer (PLAIN, LOGIN, CRAM-MD5). */
  authMethod?: string;
  /** The pool's settings (`true` or absent: the defaults; top-level settings apply too). */
  pool?: boolean | PoolSettings;
}

/** What sendMail() resolves with: Nodemailer's info, plus smtp-wire's SendInfo fields. */
export interface SmtpWireSentMessageInfo extends SendInfo {
  envelope: { from: string; to: string[] };
  messageId: string;
}

/** smtp-wire's credentials from Nodemailer's `auth`; `authMethod` is the transport-wide method, used when `auth.method` names none. */
function authOf(auth: NodemailerAuth | undefined, authMethod: string | undefined): AuthCredentials | undefined {
  if (!auth || (!auth.user && !auth.pass && !auth.accessToken)) return undefined;
  if (String(auth.type ?? "").toUpperCase() === "OAUTH2" || auth.accessToken) {
    return { user: auth.user, method: "XOAUTH2", oauth2: { user: auth.user, accessToken: auth.accessToken } };
  }
  return { user: auth.user ?? "", pass: auth.pass ?? "", method: auth.method?.trim() || authMethod };
}

/** The DSN parameters in smtp-wire's names; RET takes Nodemailer's spellings too. */
function dsnOf(dsn: NodemailerDsn): DSNOptions {
  const ret = String(dsn.ret ?? dsn.return ?? "").toUpperCase();
  return {
    ret: ret === "HEADERS" ? "HDRS" : ret === "BODY" ? "FULL" : ret || undefined,
    envid: dsn.envid ?? dsn.id,
    notify: dsn.notify,
    orcpt: dsn.orcpt ?? dsn.recipient,
  };
}

/**
 * Nodemailer's AbortError (name, code), saying also what became of the message, as the
 * send's own error says: an abort stops a message before its end of data (not-sent).
 */
function nodemailerAbortError(signal: AbortSignal, err: Error): Error {
  const { deliveryState = "not-sent" } = err as { deliveryState?: string };
  return Object.assign(new Error("Message sending aborted", { cause: signal.reason }), { name: "AbortError", code: "EABORT", deliveryState });
}

export class SmtpWireTransport extends EventEmitter {
  /** Shown in Nodemailer's logs. */
  readonly name = "smtp-wire";
  readonly version = VERSION;
  /** sendMail({ signal }) is honoured while the message waits and while it is sent. */
  readonly supportsAbortSignal = true;
  /** Nodemailer's Mail object, set when it wraps the transport (typed loosely: no Nodemailer types here). */
  mailer?: any;
  readonly pool: SMTPPool;
  /** The transport's auth as given (Nodemailer's form), for mails that set their own over it. */
  readonly #auth: NodemailerAuth | undefined;
  readonly #authMethod: string | undefined;
  /** Mails with their own auth, on connections of their own, not settled yet. */
  #ownLogins = 0;
  #closed = false;

  constructor(options: SmtpWireTransportOptions = {}) {
    super();
    const { pool, auth, authMethod, ...rest } = resolveShortcuts(options) as Omit<SmtpWireTransportOptions, "url" | "service">;
    const settings: PoolOptions = { ...rest, ...(typeof pool === "object" ? pool : {}), auth: authOf(auth, authMethod) };
    // isIdle() and 'idle' mean what they mean in Nodemailer's pooled transport: fewer mails
    // wait for a connection than there are connections. A producer that sends while
    // isIdle() then composes only that many mails ahead, not a thousand.
    settings.maxQueued ??= readPoolLimits(settings).maxConnections;
    this.pool = new SMTPPool(settings);
    this.#auth = auth;
    this.#authMethod = authMethod;
    this.pool.on("idle", () => this.emit("idle"));
    this.pool.on("clear", () => this.emit("clear"));
  }

  /** Nodemailer's transport entry point: sends one composed mail; `callback` is called once. */
  send(mail: NodemailerMail, callback: (err: Error | null, info?: SmtpWireSentMessageInfo) => void): void {
    const data = mail.data as { dsn?: NodemailerDsn; signal?: AbortSignal; requireTLSExtensionEnabled?: boolean; auth?: NodemailerAuth };
    const signal = data.signal;
    let envelope: Envelope & { from: string; to: string[] };
    let messageId: string;
    try {
      // The whole envelope, as Nodemailer's transports pass it: a mail's `envelope` option
      // may carry size, use8BitMime, smtpUtf8 or dsn besides from and to.
      const { from, to, dsn, ...rest } = mail.message.getEnvelope();
      envelope = { ...rest, from: from || "", to: [...to] };
      // The mail's own `dsn` option wins over one in its envelope, as in Nodemailer.
      const requested = data.dsn ?? dsn;
      if (requested) envelope.dsn = dsnOf(requested);
      if (data.requireTLSExtensionEnabled) envelope.requireTLS = true;
      messageId = mail.message.messageId();
    } catch (err) {
      return callback(err as Error);
    }
    // Opened by the pool once the mail has a connection, and again if that one died first.
    const open = () => mail.message.createReadStream();
    const done = (err: Error | null, info?: SendInfo) => {
      if (err) callback(signal?.aborted ? nodemailerAbortError(signal, err) : err);
      else callback(null, { ...info!, envelope: { from: envelope.from, to: envelope.to }, messageId });
    };
    // A mail that logs in as someone else (Nodemailer's SMTP transport honours it) cannot
    // ride a pooled connection, logged in as the transport's user: it gets one of its own.
    if (data.auth && typeof data.auth === "object" && !this.#closed) return this.#sendWithOwnLogin(data.auth, envelope, open, signal, done);
    this.pool.send(envelope, open, signal ? { signal } : {}, done);
  }

  #sendWithOwnLogin(mailAuth: NodemailerAuth, envelope: Envelope, open: () => Readable, signal: AbortSignal | undefined, done: (err: Error | null, info?: SendInfo) => void): void {
    const auth = authOf(mergeMailAuth(this.#auth, mailAuth), this.#authMethod);
    this.#ownLogins++;
    const sending = sendWithOwnLogin(connectionOptionsOf(this.pool.options), { auth, force: Boolean(this.pool.options.forceAuth) }, envelope, open, signal);
    settle(sending, (err, info) => {
      this.#ownLogins--;
      done(err, info);
    });
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
    return this.pool.pendingCount() + this.#ownLogins;
  }

  /** Closes the pool (see SMTPPool.close); resolves once every connection is closed. */
  close(options?: { force?: boolean }): Promise<void> {
    this.#closed = true;
    return this.pool.close(options);
  }
}

/** Makes the transport object for `nodemailer.createTransport()`. */
export function smtpWire(options: SmtpWireTransportOptions = {}): SmtpWireTransport {
  return new SmtpWireTransport(options);
}
