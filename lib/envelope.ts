/**
 * Envelope checks and the MAIL FROM / RCPT TO lines they become.
 *
 * Everything the caller gives is checked before a byte is written: an address or DSN
 * value with CR, LF or NUL could otherwise smuggle a whole extra command into the session
 * (CRLF injection). Parameters are added only when the server advertised the extension
 * they belong to (RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3030 BINARYMIME, RFC 6531 SMTPUTF8,
 * RFC 3461 DSN, RFC 8689 REQUIRETLS). Nothing here writes to a socket.
 */
import type { DSNOptions, Envelope } from "./types.js";
import { badInput, SMTPError } from "./errors.js";

/** What the envelope needs to know about the session. */
export interface SessionFacts {
  extensions: ReadonlyMap<string, string[]>;
  secure: boolean;
  /** The body goes as BDAT chunks (BINARYMIME needs it). */
  canChunk?: boolean;
}

/** A checked envelope, ready to be written. */
export interface PreparedEnvelope {
  from: string;
  to: string[];
  mailLine: string;
  rcptLines: string[];
  /** Parameters every RCPT TO carries (DSN NOTIFY, ORCPT), with their leading space. */
  rcptSuffix: string;
  /** The server offers DSN: a recipient added later may carry its own NOTIFY and ORCPT. */
  dsn: boolean;
  /** MAIL FROM declared SMTPUTF8, so a non-ASCII recipient may follow. */
  smtpUtf8: boolean;
  /** BODY=BINARYMIME: the body goes as is, without line-end normalisation. */
  binary: boolean;
}

const FORBIDDEN = /[\r\n\0<>]/;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;
const NOTIFY_VALUES = new Set(["SUCCESS", "FAILURE", "DELAY"]);

function checkAddress(given: unknown, role: string): string {
  // Nodemailer's address objects ({ name, address }) are taken for their address.
  const address = given !== null && typeof given === "object" && typeof (given as { address?: unknown }).address === "string" ? (given as { address: string }).address : given;
  if (typeof address !== "string") throw badInput(`Invalid ${role} address: expected a string, got ${address === null ? "null" : typeof address}`, "EENVELOPE");
  if (FORBIDDEN.test(address)) throw badInput(`Invalid ${role} address ${JSON.stringify(address)}: CR, LF, NUL, "<" and ">" are not allowed`, "EENVELOPE");
  return address.trim();
}

/** RFC 3461 §4: xtext, "+" followed by two hex digits for anything outside "!".."~", "+" and "=". */
export function xtext(value: string): string {
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    out += byte < 33 || byte > 126 || byte === 0x2b || byte === 0x3d ? "+" + byte.toString(16).toUpperCase().padStart(2, "0") : String.fromCharCode(byte);
  }
  return out;
}

function checkDsnValue(value: unknown, name: string): string {
  if (typeof value !== "string" || FORBIDDEN.test(value) || value.length === 0) {
    throw badInput(`Invalid DSN ${name} ${JSON.stringify(value)}: a non-empty string without CR, LF, NUL, "<" or ">" is expected`, "EENVELOPE");
  }
  return value;
}

function notifyList(notify: DSNOptions["notify"]): string | undefined {
  if (notify === undefined) return undefined;
  // Checked before the spaces around each value are trimmed: trim() also takes CR and LF
  // off the ends, and a value that needed that is bad input to refuse, not to repair (SPEC §6).
  const values = (Array.isArray(notify) ? notify : String(notify).split(","))
    .map((v) => checkDsnValue(v, "notify").trim().toUpperCase());
  if (values.length === 0) throw badInput("Invalid DSN notify: empty", "EENVELOPE");
  if (values.includes("NEVER")) {
    if (values.length > 1) throw badInput('Invalid DSN notify: "NEVER" cannot be combined with other values', "EENVELOPE");
    return "NEVER";
  }
  for (const v of values) if (!NOTIFY_VALUES.has(v)) throw badInput(`Invalid DSN notify value ${JSON.stringify(v)}: use NEVER, or SUCCESS, FAILURE, DELAY`, "EENVELOPE");
  return values.join(",");
}

/**
 * A size is a non-negative safe integer; a string of digits ("1024") is one too, as
 * Nodemailer takes it (configuration often arrives as text).
 */
function checkSize(size: unknown): number {
  const value = typeof size === "string" && /^\d+$/.test(size) ? Number(size) : size;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw badInput(`Invalid envelope size ${JSON.stringify(size)}: a non-negative integer is expected`, "EENVELOPE");
  return value;
}

const rcptTo = (address: string, suffix: string): string => `RCPT TO:<${address}>${suffix}`;

/**
 * Checks the envelope against the caller's rules and the session's extensions. With
 * `recipientsLater` (a transaction opened one RCPT at a time), `to` may be empty and each
 * recipient is added with recipientLine().
 */
export function prepareEnvelope(envelope: Envelope, session: SessionFacts, { recipientsLater = false } = {}): PreparedEnvelope {
  if (!envelope || typeof envelope !== "object") throw badInput("Envelope is missing", "EENVELOPE");
  // Nodemailer's typings allow `from: false` for the null sender.
  const from = checkAddress(envelope.from === false ? "" : (envelope.from ?? ""), "sender");
  const rawTo = ([] as unknown[]).concat(envelope.to ?? []);
  const to = rawTo.map((address) => checkAddress(address, "recipient"));
  // An empty recipient is refused, not dropped, as Nodemailer refuses it and as
  // addRecipient() does: a list with a hole in it is a caller's bug to report.
  if (to.includes("")) throw badInput(rawTo.length === 1 ? "No recipients defined" : 'Invalid recipient address "": an empty address cannot receive mail', "EENVELOPE");
  if (to.length === 0 && !recipientsLater) throw badInput("No recipients defined", "EENVELOPE");

  const ext = session.extensions;
  const mailParams: string[] = [];
  const rcptParams: string[] = [];

  if (envelope.size !== undefined && envelope.size !== null) {
    const size = checkSize(envelope.size);
    const limit = Number(ext.get("SIZE")?.[0] ?? 0);
    if (limit > 0 && size > limit) {
      throw new SMTPError("EMESSAGE", `Message size ${size} exceeds the server's limit of ${limit} bytes (SIZE)`, { command: "MAIL FROM", temporary: false });
    }
    // SIZE=0 says nothing a server can use; Nodemailer leaves it out too.
    if (size > 0 && ext.has("SIZE")) mailParams.push(`SIZE=${size}`);
  }

  // RFC 3030 §3: BINARYMIME only with BDAT, and only to a server that offers it; a body
  // sent as is to any other would have its bare CR and LF read as line ends.
  const binary = Boolean(envelope.binaryMime);
  if (binary) {
    if (!session.canChunk) throw badInput("BINARYMIME needs BDAT: set chunking: true, on a server that offers CHUNKING and PIPELINING", "EENVELOPE", "MAIL FROM");
    if (!ext.has("BINARYMIME")) throw badInput("BINARYMIME requested but the server does not offer it", "EENVELOPE", "MAIL FROM");
    mailParams.push("BODY=BINARYMIME");
  } else if (envelope.use8BitMime && ext.has("8BITMIME")) mailParams.push("BODY=8BITMIME");

  const needsUtf8 = NON_ASCII.test(from) || to.some((address) => NON_ASCII.test(address));
  if (envelope.smtpUtf8 || needsUtf8) {
    if (ext.has("SMTPUTF8")) mailParams.push("SMTPUTF8");
    else if (needsUtf8) throw badInput("Internationalized (non-ASCII) address, but the server does not support SMTPUTF8", "EENVELOPE");
  }

  // Nodemailer's transports pass RFC 8689 down as `requireTLSExtensionEnabled`: ignoring it
  // would send in cleartext a message its sender required TLS for.
  if (envelope.requireTLS || envelope.requireTLSExtensionEnabled) {
    if (!session.secure) throw new SMTPError("EREQUIRETLS", "REQUIRETLS requested but the connection is not encrypted", { command: "MAIL FROM", temporary: false });
    if (!ext.has("REQUIRETLS")) throw new SMTPError("EREQUIRETLS", "REQUIRETLS requested but the server does not support it", { command: "MAIL FROM", temporary: false });
    mailParams.push("REQUIRETLS");
  }

  const dsn = envelope.dsn;
  if (dsn) {
    // null means absent, as in Nodemailer (whose own envelope handling leaves nulls there).
    const ret = dsn.ret == null ? undefined : checkDsnValue(dsn.ret, "ret").toUpperCase();
    if (ret !== undefined && ret !== "FULL" && ret !== "HDRS") throw badInput(`Invalid DSN ret ${JSON.stringify(dsn.ret)}: use FULL or HDRS`, "EENVELOPE");
    const envid = dsn.envid == null ? undefined : checkDsnValue(dsn.envid, "envid");
    const recipientParams = dsnRecipientParams(dsn);
    if (ext.has("DSN")) {
      if (ret) mailParams.push(`RET=${ret}`);
      if (envid) mailParams.push(`ENVID=${xtext(envid)}`);
      rcptParams.push(...recipientParams);
    }
  }

  const mailSuffix = mailParams.length ? " " + mailParams.join(" ") : "";
  const rcptSuffix = rcptParams.length ? " " + rcptParams.join(" ") : "";
  return {
    from,
    to,
    mailLine: `MAIL FROM:<${from}>${mailSuffix}`,
    rcptLines: to.map((address) => rcptTo(address, rcptSuffix)),
    rcptSuffix,
    dsn: ext.has("DSN"),
    smtpUtf8: mailParams.includes("SMTPUTF8"),
    binary,
  };
}

/**
 * Checks one recipient added after MAIL FROM went out and returns its address and RCPT TO
 * line. A non-ASCII address needs SMTPUTF8 on the MAIL FROM already written, so without
 * it the recipient is refused here, before anything is written.
 */
export function recipientLine(prepared: PreparedEnvelope, given: unknown, dsn?: RecipientDSN): { address: string; line: string } {
  const address = checkAddress(given, "recipient");
  if (address.length === 0) throw badInput("Empty recipient address", "EENVELOPE");
  if (NON_ASCII.test(address) && !prepared.smtpUtf8) {
    throw badInput(`Internationalized (non-ASCII) recipient ${JSON.stringify(address)}, but MAIL FROM did not declare SMTPUTF8 (set smtpUtf8 when opening the transaction)`, "EENVELOPE");
  }
  if (!dsn) return { address, line: rcptTo(address, prepared.rcptSuffix) };
  // Its own NOTIFY and ORCPT replace the transaction's (checked even where DSN is not offered).
  const params = dsnRecipientParams(dsn);
  return { address, line: rcptTo(address, prepared.dsn && params.length ? " " + params.join(" ") : "") };
}

/**
 * A recipient's own DSN parameters (RFC 3461 §4.1, §4.2), for one added to a transaction
 * opened with beginTransaction(): a relay passes on each recipient's as its client gave them.
 */
export type RecipientDSN = Pick<DSNOptions, "notify" | "orcpt">;

/** NOTIFY and ORCPT as RCPT TO parameters, checked and encoded. */
function dsnRecipientParams(dsn: RecipientDSN): string[] {
  const params: string[] = [];
  const notify = notifyList(dsn.notify ?? undefined);
  const orcpt = dsn.orcpt == null ? undefined : checkDsnValue(dsn.orcpt, "orcpt");
  if (notify) params.push(`NOTIFY=${notify}`);
  // The address type is xtext-encoded too (as in Nodemailer): a space in it would end
  // the parameter, and what follows would become a parameter of its own.
  if (orcpt) params.push(`ORCPT=${xtext(orcpt.includes(";") ? orcpt : "rfc822;" + orcpt)}`);
  return params;
}

/** RFC 3461 §4: the value an xtext stands for (a relay reads its client's ENVID and ORCPT with it). */
export function fromXtext(value: string): string {
  return Buffer.from(value.replace(/\+([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), "latin1").toString("utf8");
}

/** The EHLO name must be one token of printable characters (RFC 5321 §4.1.1.1). */
export function checkClientName(name: string): void {
  if (typeof name !== "string" || name.length === 0 || /[\s\0]/.test(name)) {
    throw badInput(`Invalid client name ${JSON.stringify(name)} for EHLO: no whitespace, CR, LF or NUL allowed`, "ECONNECTION");
  }
}
