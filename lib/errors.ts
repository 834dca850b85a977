/**
 * SMTPError and the only places that build one.
 *
 * Every failure a user can see is an SMTPError whose `code` comes from a closed union, so
 * callers can match on `err.code`. The factories below are the one way to make an error:
 * from a server reply, from a socket/TLS/DNS fault (the original error kept as `cause`),
 * or from bad input. Nothing here knows about connections or commands in flight.
 */
import type { DeliveryState, RecipientOutcome, Reply } from "./types.js";

/** The closed set of error codes (SPEC §6). */
export type SMTPErrorCode =
  | "ECONNECTION"
  | "ETIMEDOUT"
  | "ESOCKET"
  | "EDNS"
  | "ETLS"
  | "EPROTOCOL"
  | "EAUTH"
  | "EENVELOPE"
  | "EMESSAGE"
  | "ESTREAM"
  | "EREQUIRETLS";

/** Extra fields a factory may attach. */
export interface SMTPErrorFields {
  response?: string;
  responseCode?: number;
  enhancedCode?: string;
  command?: string;
  temporary?: boolean;
  cause?: unknown;
  recipient?: string;
  rejected?: string[];
  rejectedErrors?: SMTPError[];
  deliveryState?: DeliveryState;
  recipients?: RecipientOutcome[];
}

/** The one error class of smtp-wire. */
export class SMTPError extends Error {
  /** Machine-readable code; match on this. */
  readonly code: SMTPErrorCode;
  /** The server's reply text (all lines joined with "\n"), when a reply caused it. */
  response?: string;
  /** The server's three-digit reply code, when a reply caused it. */
  responseCode?: number;
  /** RFC 3463 enhanced status code such as "5.1.1", when the server sent one. */
  enhancedCode?: string;
  /** The SMTP command that failed ("MAIL FROM", "RCPT TO", "DATA"…), or "CONN"/"API". */
  command?: string;
  /** True for 4xx replies and network faults (a retry may succeed); false for 5xx and bad input. */
  temporary: boolean;
  /** The recipient a RCPT failure refers to. */
  recipient?: string;
  /** Every refused recipient, for envelope failures. */
  rejected?: string[];
  /** One error per refused recipient, for envelope failures. */
  rejectedErrors?: SMTPError[];
  /**
   * Send errors only: whether the server may have the message (SPEC §6). "not-sent": it
   * cannot have it, a retry never duplicates; "rejected": refused at its final reply
   * (`temporary` says whether a retry may succeed); "unknown": the end of data was written
   * and no final reply came, so it may have been delivered.
   */
  deliveryState?: DeliveryState;
  /** Send errors only: one outcome per envelope recipient, once the envelope was written. */
  recipients?: RecipientOutcome[];

  /**
   * Whether the server's reply refuses for good, as Nodemailer names it: a 5xx other than
   * 503 (bad sequence, which a new session may not meet). Undefined when no reply caused it.
   */
  get permanent(): boolean | undefined {
    const code = this.responseCode;
    return code === undefined ? undefined : code >= 500 && code < 600 && code !== 503;
  }

  /**
   * The Node error's code kept on `cause` (e.g. "ECONNREFUSED"), under the name Nodemailer
   * gives it; undefined when the failure did not come from Node.
   */
  get originalCode(): string | undefined {
    // An error that wraps another SMTPError (the pool's, for each send waiting on a
    // connection that could not be opened) keeps the Node code that one carries.
    if (this.cause instanceof SMTPError) return this.cause.originalCode;
    const code = (this.cause as { code?: unknown } | undefined)?.code;
    return typeof code === "string" ? code : undefined;
  }

  constructor(code: SMTPErrorCode, message: string, fields: SMTPErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = "SMTPError";
    this.code = code;
    this.temporary = fields.temporary ?? false;
    for (const key of ["response", "responseCode", "enhancedCode", "command", "recipient", "rejected", "rejectedErrors", "deliveryState", "recipients"] as const) {
      if (fields[key] !== undefined) (this as Record<string, unknown>)[key] = fields[key];
    }
  }
}

/**
 * The error one operation gets when the connection it was waiting on failed: its own
 * instance (never shared with another operation), naming `command`, where this operation
 * was (the command whose reply it waited for, or "API" for one still queued), with the
 * shared failure as `cause`. The shared failure itself is what `error` and `closed` report.
 */
export function connectionFailure(shared: SMTPError, command: string): SMTPError {
  return new SMTPError(shared.code, shared.message, {
    response: shared.response,
    responseCode: shared.responseCode,
    enhancedCode: shared.enhancedCode,
    command,
    temporary: shared.temporary,
    cause: shared,
  });
}

/** Reply codes the protocol code names instead of spelling numbers. */
export const REPLY = {
  SERVICE_READY: 220,
  CLOSING: 221,
  AUTH_SUCCESS: 235,
  OK: 250,
  AUTH_CONTINUE: 334,
  START_MAIL_INPUT: 354,
  SERVICE_NOT_AVAILABLE: 421,
} as const;

/** Whole reply text, as it is quoted in messages and kept in `response`. */
export function replyText(reply: Reply): string {
  const last = reply.lines.length - 1;
  return reply.lines.map((line, i) => `${reply.code}${i < last ? "-" : " "}${line}`).join("\n");
}

/**
 * An error from a server reply. A 421 at any point is ECONNECTION whatever was asked
 * (the server is closing the channel), so callers pass the code they would use otherwise.
 */
export function fromReply(code: SMTPErrorCode, what: string, reply: Reply, command: string, extra: SMTPErrorFields = {}): SMTPError {
  const response = replyText(reply);
  const finalCode = reply.code === REPLY.SERVICE_NOT_AVAILABLE ? "ECONNECTION" : code;
  return new SMTPError(finalCode, `${what}: ${response}`, {
    response,
    responseCode: reply.code,
    enhancedCode: reply.enhancedCode,
    command,
    // 5xx refuses and 4xx asks for a retry. A 2xx or 3xx that fails a command is a server
    // out of step with the protocol: not a refusal, so a relay retries rather than bounces.
    temporary: reply.code < 500,
    ...extra,
  });
}

/**
 * Node error codes to ours; anything else is the caller's fallback (ESOCKET by default).
 * A TCP connection that cannot be made (refused, unreachable) is ESOCKET, as in Nodemailer,
 * whose users switch on it. A connection lost once made (reset, broken pipe) is
 * ECONNECTION, like one the server closed: FIN or RST, the caller sees one code for "the
 * connection broke" (Nodemailer: ESOCKET for RST, ECONNECTION for FIN; see README).
 */
const NETWORK_CODES: Record<string, SMTPErrorCode> = {
  ETIMEDOUT: "ETIMEDOUT",
  ENOTFOUND: "EDNS",
  EAI_AGAIN: "EDNS",
  ENODATA: "EDNS",
  ESERVFAIL: "EDNS",
  ECONNREFUSED: "ESOCKET",
  EHOSTUNREACH: "ESOCKET",
  ENETUNREACH: "ESOCKET",
  EADDRNOTAVAIL: "ESOCKET",
  ECONNRESET: "ECONNECTION",
  EPIPE: "ECONNECTION",
};

/** An error from a socket, DNS or TLS fault; the original error is kept as `cause`. */
export function fromSocketError(err: unknown, command = "CONN", fallback: SMTPErrorCode = "ESOCKET"): SMTPError {
  if (err instanceof SMTPError) return err;
  const nodeCode = (err as { code?: unknown })?.code;
  let message = err instanceof Error ? err.message : String(err);
  let code: SMTPErrorCode = typeof nodeCode === "string" && nodeCode in NETWORK_CODES ? NETWORK_CODES[nodeCode]! : fallback;
  if (isTlsError(err)) {
    code = "ETLS";
    message = tlsMessage(err, message);
  }
  return new SMTPError(code, message, { command, temporary: code !== "ETLS", cause: err });
}

function isTlsError(err: unknown): boolean {
  const e = err as { code?: unknown; library?: unknown; reason?: unknown };
  if (e?.library === "SSL routines") return true;
  if (typeof e?.code !== "string") return false;
  return /^ERR_SSL_|^ERR_TLS_|CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|HOSTNAME_MISMATCH|ERR_OSSL_/.test(e.code);
}

/**
 * An OpenSSL error's message is its internal trace ("8020...:error:0A00010B:SSL
 * routines:ssl3_get_record:wrong version number:../deps/..."); its `reason` is what a
 * person needs. Certificate errors from Node already read well and keep their message.
 */
function tlsMessage(err: unknown, message: string): string {
  const e = err as { code?: unknown; library?: unknown; reason?: unknown };
  const text = e.library === "SSL routines" && typeof e.reason === "string" ? e.reason : message.trim();
  return `TLS failed: ${text}${typeof e.code === "string" ? ` (${e.code})` : ""}`;
}

/** OpenSSL's ways of saying the peer answered in plaintext: it read "220 ..." as a TLS record. */
const PLAINTEXT_ANSWER = new Set(["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_SSL_PACKET_LENGTH_TOO_LONG", "ERR_SSL_HTTP_REQUEST", "ERR_SSL_RECORD_LAYER_FAILURE"]);

/**
 * Implicit TLS (`secure: true`) against a server that speaks plaintext first (a
 * submission or MX port): the message says which option to change, instead of quoting
 * OpenSSL's "wrong version number". Undefined when `err` is some other TLS failure.
 */
export function plaintextServerError(err: unknown, port: number): SMTPError | undefined {
  const nodeCode = (err as { code?: unknown })?.code;
  if (typeof nodeCode !== "string" || !PLAINTEXT_ANSWER.has(nodeCode)) return undefined;
  return new SMTPError(
    "ETLS",
    `Implicit TLS (secure: true) failed: the server on port ${port} answered in plaintext (${nodeCode}). It expects STARTTLS: set secure: false (ports 587 and 25), or connect to its implicit-TLS port (465)`,
    { command: "CONN", temporary: false, cause: err },
  );
}

/**
 * A plaintext client talking to an implicit-TLS port: the server answered with a TLS
 * record (an alert) where the "220" greeting should be.
 */
export function tlsServerError(port: number): SMTPError {
  return new SMTPError("ETLS", `The server on port ${port} sent TLS bytes instead of a greeting: it expects TLS from the first byte (implicit TLS). Set secure: true`, {
    command: "CONN",
    temporary: false,
  });
}

/**
 * No greeting in time. A server that expects implicit TLS waits in silence for the
 * client's TLS hello, so for a plaintext client the message says so: on port 465 that is
 * the diagnosis (ETLS), elsewhere a hint next to the timeout.
 */
export function greetingTimeoutError(port: number, timeoutMs: number, secure: boolean): SMTPError {
  if (!secure && port === 465) {
    return new SMTPError("ETLS", `No greeting within ${timeoutMs} ms: port 465 expects TLS from the first byte (implicit TLS). Set secure: true`, { command: "CONN", temporary: false });
  }
  const hint = secure ? "" : ". If the server expects TLS from the first byte (implicit TLS, usually port 465), set secure: true";
  return new SMTPError("ETIMEDOUT", `Greeting never received within ${timeoutMs} ms${hint}`, { command: "CONN", temporary: true });
}

/** Bad input from the caller: refused before anything is written, never temporary. */
export function badInput(message: string, code: SMTPErrorCode = "EENVELOPE", command = "API"): SMTPError {
  return new SMTPError(code, message, { command, temporary: false });
}

/** A protocol violation by the server (malformed or unexpected reply). */
export function protocolError(message: string, command = "CONN"): SMTPError {
  return new SMTPError("EPROTOCOL", message, { command, temporary: true });
}
