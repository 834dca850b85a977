/**
 * Public types of smtp-wire: options, envelope, SendInfo, replies, auth.
 *
 * Names follow Nodemailer's SMTPConnection so existing code type-checks unchanged; the
 * additions (allowInsecureAuth, pipelining, chunking, requireTLS on the envelope) are
 * marked as such.
 */
import type { Socket } from "node:net";
import type { SMTPError } from "./errors.js";
import type { ConnectionOptions as TlsConnectionOptions } from "node:tls";

/** One decoded server reply. */
export interface Reply {
  /** Three-digit reply code. */
  code: number;
  /** Text of each line, without the code and separator. */
  lines: string[];
  /** RFC 3463 enhanced status code of the first line ("5.1.1"), when present. */
  enhancedCode?: string;
  /** The lines joined with "\n", without codes. */
  text: string;
}

/** A logger compatible with Bunyan and pino: one method per level. */
export interface Logger {
  trace?(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn?(...args: unknown[]): void;
  error(...args: unknown[]): void;
  fatal?(...args: unknown[]): void;
}

/** Constructor options. Defaults are Nodemailer's. */
export interface SMTPConnectionOptions {
  /** Server host name or IP address. Default "localhost". */
  host?: string;
  /** Server port. Default 587, or 465 when `secure`. Port 465 implies `secure`. */
  port?: number;
  /** Use TLS from the first byte (implicit TLS). Default false (true for port 465). */
  secure?: boolean;
  /** TLS server name (SNI and certificate check). Defaults to `host`; never set for an IP. */
  servername?: string;
  /** Name sent with EHLO/HELO/LHLO. Default os.hostname() when it is an FQDN, else "[127.0.0.1]". */
  name?: string;
  /** Local interface to bind to. */
  localAddress?: string;
  /** Milliseconds to wait for the TCP (and TLS) connection. Default 120 000. */
  connectionTimeout?: number;
  /** Milliseconds to wait for the greeting once connected. Default 30 000. */
  greetingTimeout?: number;
  /** Milliseconds of inactivity after which the connection fails. Default 600 000. */
  socketTimeout?: number;
  /** Milliseconds to wait for DNS resolution. Default 30 000. */
  dnsTimeout?: number;
  /** true logs to the console, false (default) logs nothing, or a Bunyan/pino logger. */
  logger?: boolean | Logger;
  /** Log the SMTP transcript (credentials are masked). Default false. */
  debug?: boolean;
  /** Speak LMTP (LHLO, one final reply per recipient). Default false. */
  lmtp?: boolean;
  /** Never use STARTTLS, even when advertised (no effect with requireTLS). */
  ignoreTLS?: boolean;
  /** Fail with ETLS unless the connection is upgraded with STARTTLS; wins over ignoreTLS and opportunisticTLS. */
  requireTLS?: boolean;
  /**
   * Try STARTTLS; if the upgrade fails go on in plaintext: after a refused STARTTLS on the
   * same connection (EHLO is said again), after a failed TLS handshake on a new connection
   * that does not ask for STARTTLS (not possible with `socket` or `connection`: ETLS).
   */
  opportunisticTLS?: boolean;
  /** Options passed to tls.connect (ca, cert, key, minVersion, rejectUnauthorized…). */
  tls?: TlsConnectionOptions;
  /** An unconnected socket to connect with. */
  socket?: Socket;
  /** An already-connected socket to use as is. */
  connection?: Socket;
  /** The `connection` socket is already TLS. */
  secured?: boolean;
  /** Allow connecting to internal (non-public) interfaces' addresses; as Nodemailer. */
  allowInternalNetworkInterfaces?: boolean;
  /** Custom authentication handlers by method name (upper case), as Nodemailer's. */
  customAuth?: Record<string, CustomAuthHandler>;
  /** smtp-wire: allow credentials over an unencrypted connection to a non-loopback host. Default false. */
  allowInsecureAuth?: boolean;
  /** smtp-wire: use RFC 2920 pipelining when advertised. Default true. */
  pipelining?: boolean;
  /** smtp-wire: use BDAT (RFC 3030) when CHUNKING is advertised. Default false. */
  chunking?: boolean;
  /**
   * smtp-wire: payload bytes per BDAT chunk (the last one may be shorter), whatever the
   * sizes of the writes. Default 262 144 (256 KiB); anything not a positive number gets it.
   */
  bdatChunkSize?: number;
  /** Socket/transaction id used in logs; generated when absent. */
  id?: string;
}

/** Delivery Status Notification parameters (RFC 3461). */
export interface DSNOptions {
  /** "FULL" or "HDRS". null is absent, as in Nodemailer. */
  ret?: "FULL" | "HDRS" | string | null;
  /** Envelope identifier (xtext-encoded on the wire). */
  envid?: string | null;
  /** "NEVER", or any of "SUCCESS", "FAILURE", "DELAY". */
  notify?: string | string[] | null;
  /** Original recipient ("addr-type;address", or an address sent as rfc822;address), xtext-encoded. */
  orcpt?: string | null;
}

/** An address as Nodemailer's address parser gives it; only `address` is used. */
export interface AddressObject {
  name?: string;
  address: string;
}

/** The envelope of one message. */
export interface Envelope {
  /** Reverse path; "" (or false, as in Nodemailer) for the null sender. An address object ({ name, address }) gives its address. */
  from: string | AddressObject | false;
  /** One or more recipients (strings, or address objects as Nodemailer's). */
  to: string | AddressObject | (string | AddressObject)[];
  /**
   * Message size in bytes, announced with SIZE= and checked against the server's limit. A
   * string of digits ("1024") is accepted, as Nodemailer accepts it.
   */
  size?: number | string;
  /** Announce BODY=8BITMIME. */
  use8BitMime?: boolean;
  /**
   * smtp-wire: RFC 3030 BODY=BINARYMIME, the body is sent as is (no line-end
   * normalisation). Only over BDAT (`chunking: true`) to a server offering BINARYMIME;
   * otherwise the send fails with EENVELOPE before anything is written.
   */
  binaryMime?: boolean;
  /** Force SMTPUTF8; otherwise it is used for non-ASCII addresses when advertised. */
  smtpUtf8?: boolean;
  /** smtp-wire: RFC 8689 REQUIRETLS; fails with EREQUIRETLS when not possible. */
  requireTLS?: boolean;
  /** Nodemailer's name for `requireTLS` (its transports pass it down); the same meaning. */
  requireTLSExtensionEnabled?: boolean;
  /** DSN parameters. */
  dsn?: DSNOptions;
}

/**
 * Whether the server may have a message whose send failed (SPEC §6): "not-sent" (it
 * cannot: refused before or at the envelope, or failed before the end of data left),
 * "rejected" (refused at its final reply), "unknown" (the end of data was written and no
 * final reply came: it may have been delivered). Only "not-sent" is safe to retry blindly.
 */
export type DeliveryState = "not-sent" | "rejected" | "unknown";

/**
 * What became of one recipient, decided by the reply that settled it: its RCPT reply when
 * that refused it, else the final reply (LMTP: its own), else the failure of the whole
 * send. "deferred" is a temporary refusal (4xx, or a failure a retry may cure).
 */
export interface RecipientOutcome {
  address: string;
  status: "accepted" | "rejected" | "deferred";
  /** The deciding reply's code; absent when no reply decided (the connection failed). */
  responseCode?: number;
  /** Its RFC 3463 enhanced status code, when the server sent one. */
  enhancedCode?: string;
  /** Its text (all lines), or the failure's message when no reply decided. */
  response?: string;
}

/** What a completed send reports. */
export interface SendInfo {
  /** Recipients the server accepted. */
  accepted: string[];
  /** Recipients the server refused (always an array). */
  rejected: string[];
  /** One SMTPError per refused recipient; present only when one was refused. */
  rejectedErrors?: SMTPError[];
  /** The server's final reply, e.g. "250 2.0.0 Ok: queued as 1234". */
  response: string;
  /** Milliseconds from MAIL FROM until the server accepted DATA. */
  envelopeTime: number;
  /** Milliseconds from the start of the body until the final reply. */
  messageTime: number;
  /** Bytes sent after 354 up to and including the terminator (after dot-stuffing). */
  messageSize: number;
  /** The server's EHLO lines after the first, with their parameters ("SIZE 102400", "AUTH LOGIN PLAIN"), as Nodemailer reports them. */
  ehlo: string[];
  /** smtp-wire: one outcome per envelope recipient, in envelope order. */
  recipients: RecipientOutcome[];
}

/** OAuth2 credentials for XOAUTH2. */
export interface OAuth2Credentials {
  user?: string;
  accessToken?: string;
  /** Returns a fresh access token; called once when the server refuses the current one. */
  provisionCallback?: (user: string, renew: boolean, cb: (err: Error | null, accessToken?: string) => void) => void;
  /**
   * A token provider: returns the token (or a Promise of it), or calls `callback` with it
   * as Nodemailer's XOAuth2 object does (`getToken(renew, cb)`). Asked before
   * `accessToken` is used, since it knows whether that token has expired.
   */
  getToken?: ((renew: boolean) => Promise<string> | string) | ((renew: boolean, callback: (err: Error | null, accessToken?: string) => void) => void);
  /** Nodemailer's XOAuth2 object keeps the user here: used when `user` is not given. */
  options?: { user?: string };
}

/** Credentials given to login(). */
export interface AuthCredentials {
  user?: string;
  pass?: string;
  /** Force a method: PLAIN, LOGIN, CRAM-MD5, XOAUTH2 or a customAuth name. */
  method?: string;
  /** XOAUTH2 credentials or a token provider. */
  oauth2?: OAuth2Credentials;
  /** Nodemailer's shape: credentials nested under `credentials`. */
  credentials?: { user: string; pass: string; options?: unknown };
  options?: unknown;
}

/** What a customAuth handler's sendCommand resolves with (Nodemailer's shape). */
export interface CustomAuthResponse {
  /** The command line as given. */
  command: string;
  /** The whole reply, e.g. "235 2.7.0 Accepted" (lines joined with "\n"). */
  response: string;
  /** The reply code, e.g. 235. */
  status: number;
  /** The RFC 3463 enhanced status code, e.g. "2.7.0", when the server sent one. */
  code?: string;
  /** The reply text after the reply code and the enhanced code. */
  text: string;
}

/** What a customAuth handler receives (Nodemailer's shape). */
export interface CustomAuthContext {
  auth: { credentials: { user: string; pass: string; options?: unknown }; method: string; user?: string; pass?: string; [key: string]: unknown };
  method: string;
  extensions: string[];
  authMethods: string[];
  maxAllowedSize: number | false;
  /** Sends one command line and resolves with the reply (also accepts a callback). */
  sendCommand(command: string, done?: (err: Error | null, reply?: CustomAuthResponse) => void): Promise<CustomAuthResponse>;
  resolve(): void;
  reject(err: Error | string): void;
}

/** A customAuth handler; may return a Promise or call resolve/reject. */
export type CustomAuthHandler = (ctx: CustomAuthContext) => void | Promise<void>;

/**
 * smtp-wire: the optional last argument of connect(), login(), send() and
 * createSendStream() (before the callback, if there is one).
 */
export interface OperationOptions {
  /**
   * Cancels the operation. Queued or in its envelope, it rejects at once and nothing of
   * it is delivered; mid-body the connection is closed without the end of data; once the
   * end of data has left, the abort is ignored and the send settles with the server's reply.
   * An aborted connect() or login() closes the connection. See the README, "AbortSignal".
   */
  signal?: AbortSignal;
}

/**
 * smtp-wire: the options of connect(): `{ signal }`, and `stopAfter` to end the handshake
 * early for diagnostics (a probe that says QUIT right after the greeting or the EHLO).
 */
export interface ConnectOptions extends OperationOptions {
  /**
   * Stops the handshake early: after the greeting (no EHLO is said), or after EHLO/LHLO
   * (the STARTTLS policy, `requireTLS` included, is not applied). connect() then resolves
   * with the connection open as far as it went, and only quit() and close() may follow:
   * every other call fails with ECONNECTION, as the session is not one to send mail in.
   * Default: the whole handshake.
   */
  stopAfter?: "greeting" | "hello";
}

/** The TLS details of an encrypted connection (`conn.tlsInfo`), as a relay logs them. */
export interface TlsInfo {
  /** The negotiated cipher, e.g. { name: "TLS_AES_256_GCM_SHA384", version: "TLSv1.3" }. */
  cipher: import("node:tls").CipherNameAndProtocol;
  /** The negotiated protocol, e.g. "TLSv1.3". */
  protocol: string | null;
  /** Whether the server's certificate was verified against the trusted CAs. */
  authorized: boolean;
  /** Why it was not, when it was not (only possible with `tls.rejectUnauthorized: false`). */
  authorizationError: Error | undefined;
  /** The server's certificate. */
  peerCertificate: import("node:tls").PeerCertificate;
}

/**
 * Node-style callback, typed as in Nodemailer's typings: `err` is the SMTPError or null,
 * and `result` is there on success. Declared as a method, so its parameters are checked
 * both ways and callbacks annotated Nodemailer's way (`(err?: SMTPError) => void`) fit too.
 */
export type Callback<T> = { callback(err: SMTPError | null, result: T): void }["callback"];

/**
 * The callback of a call with no result (connect, login, quit), as Nodemailer's typings
 * declare it: `(err?: SMTPError) => void`; smtp-wire passes null on success.
 */
export type DoneCallback = { callback(err?: SMTPError | null): void }["callback"];

/**
 * The events of a connection and the arguments their listeners get. `on("error", (err:
 * SMTPError) => ...)` is typed through this map.
 */
export interface SMTPConnectionEvents {
  /** The handshake is done (greeting, EHLO, STARTTLS as configured). */
  connect: [];
  /** The fatal connection error, once, and only when someone listens (SPEC §8): operations get their own errors. */
  error: [err: SMTPError];
  /** The connection closed; once, whatever the reason. */
  end: [];
  /** LMTP: a recipient's final reply arrived; `envelope` is the object the send was given. */
  recipient: [outcome: RecipientOutcome, envelope: Envelope];
}

/**
 * `conn.extensions`: EHLO keywords (upper case) to their parameters, read as a Map or as
 * properties (`ext.SIZE`); a keyword the server did not offer is `undefined`.
 */
export type ExtensionsView = ReadonlyMap<string, string[]> & { readonly [keyword: string]: string[] | undefined };
