/**
 * Opening an SMTP session: greeting, EHLO (HELO fallback; LHLO for LMTP), the EHLO
 * keywords, and the STARTTLS policy (RFC 5321 §4.1.1.1, RFC 2033, RFC 3207).
 *
 * The mechanics of the TLS upgrade live in starttls.ts and socket.ts; this module decides
 * whether to upgrade and what the replies mean. After an upgrade every capability learned
 * in plaintext is forgotten and EHLO is asked again (RFC 3207 §4.2): a man in the middle
 * could have edited the plaintext list.
 */
import type { ExtensionsView, Reply } from "./types.js";
import { fromReply, SMTPError, REPLY } from "./errors.js";
import type { CommandQueue } from "./command-queue.js";

/** EHLO keywords (upper case) to their parameters. */
export type Extensions = Map<string, string[]>;

/**
 * A read-only view of the extensions: a Map, whose keywords can also be read as
 * properties (`ext.SIZE`), since both styles are common in user code.
 */
export function freezeExtensions(map: Extensions): ExtensionsView {
  const view = new Map(map) as Map<string, string[]> & Record<string, string[]>;
  for (const [keyword, params] of map) Object.defineProperty(view, keyword, { value: params, enumerable: true });
  for (const method of ["set", "delete", "clear"] as const) {
    Object.defineProperty(view, method, {
      value: () => {
        throw new TypeError("extensions is read-only");
      },
    });
  }
  return view;
}

/** Parses the lines after the first of an EHLO/LHLO reply. */
export function parseEhlo(reply: Reply): Extensions {
  const extensions: Extensions = new Map();
  for (const line of reply.lines.slice(1)) {
    const [keyword, ...params] = line.trim().split(/\s+/);
    if (!keyword) continue;
    const name = keyword.toUpperCase();
    // Old servers announce AUTH=LOGIN as well as AUTH LOGIN; both mean AUTH.
    if (name.startsWith("AUTH=")) {
      const existing = extensions.get("AUTH") ?? [];
      extensions.set("AUTH", [...new Set([...existing, ...name.slice(5).split(/\s+/), ...params.map((p) => p.toUpperCase())])]);
      continue;
    }
    extensions.set(name, name === "AUTH" ? [...new Set([...(extensions.get("AUTH") ?? []), ...params.map((p) => p.toUpperCase())])] : params);
  }
  return extensions;
}

/**
 * The EHLO lines after the first, keyword and parameters as the server wrote them
 * ("SIZE 102400", "AUTH LOGIN PLAIN"): what Nodemailer reports as `SendInfo.ehlo`.
 */
export function ehloLines(reply: Reply): string[] {
  return reply.lines.slice(1).map((line) => line.trim()).filter((line) => line.length > 0);
}

/** Waits for the 220 greeting; anything else is a refusal (554) or a broken server. */
export async function readGreeting(queue: CommandQueue): Promise<Reply> {
  const greeting = await queue.expect("CONN");
  if (greeting.code !== REPLY.SERVICE_READY) throw fromReply("ECONNECTION", "Invalid greeting from server", greeting, "CONN");
  return greeting;
}

/** EHLO, falling back to HELO when EHLO is refused; LHLO for LMTP (no fallback). */
export async function sayHello(queue: CommandQueue, name: string, lmtp: boolean): Promise<{ extensions: Extensions; lines: string[]; esmtp: boolean }> {
  if (lmtp) {
    const reply = await queue.send("LHLO", `LHLO ${name}`);
    if (reply.code !== REPLY.OK) throw fromReply("EPROTOCOL", "LHLO failed", reply, "LHLO");
    return { extensions: parseEhlo(reply), lines: ehloLines(reply), esmtp: true };
  }
  const ehlo = await queue.send("EHLO", `EHLO ${name}`);
  if (ehlo.code === REPLY.OK) return { extensions: parseEhlo(ehlo), lines: ehloLines(ehlo), esmtp: true };
  if (ehlo.code === REPLY.SERVICE_NOT_AVAILABLE) throw fromReply("ECONNECTION", "EHLO failed", ehlo, "EHLO");
  const helo = await queue.send("HELO", `HELO ${name}`);
  if (helo.code !== REPLY.OK) throw fromReply("EPROTOCOL", "HELO failed", helo, "HELO");
  return { extensions: new Map(), lines: [], esmtp: false };
}

/** What to do about STARTTLS, by Nodemailer's policy table. */
export type TlsDecision = "upgrade" | "skip" | "fail";

export function decideStartTls(options: { secure: boolean; ignoreTLS?: boolean; requireTLS?: boolean }, extensions: Extensions): TlsDecision {
  if (options.secure) return "skip";
  // requireTLS wins over ignoreTLS (as in Nodemailer): a contradictory configuration must
  // never fall back to plaintext quietly.
  if (options.ignoreTLS && !options.requireTLS) return "skip";
  if (extensions.has("STARTTLS")) return "upgrade";
  return options.requireTLS ? "fail" : "skip";
}

export function startTlsNotOffered(): SMTPError {
  return new SMTPError("ETLS", "STARTTLS is required (requireTLS) but the server does not offer it", { command: "STARTTLS", temporary: false });
}
