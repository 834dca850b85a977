/**
 * XCLIENT and XFORWARD (Postfix's XCLIENT_README and XFORWARD_README): a relay or content
 * filter tells the server behind it who the original client was.
 *
 * XCLIENT changes who the server thinks it is talking to (access rules, Received header):
 * the server answers with a new 220 greeting, and the client says EHLO again. XFORWARD
 * changes only what the server logs for the next transaction and is answered with 250.
 * Both carry `NAME=value` attributes, the values xtext-encoded, and both are written only
 * when the server advertised the command and each attribute in its EHLO reply.
 *
 * Everything is checked before a byte is written: a value with CR, LF or another control
 * character is refused rather than encoded, since it can only be an attempt to put a line
 * into the server's logs or headers (smtp-server and Postfix refuse such values too).
 * Deliberately left out: deciding when to send (the connection and the caller do that).
 */
import { isIP } from "node:net";
import type { CommandQueue } from "./command-queue.js";
import { badInput, fromReply, SMTPError, REPLY } from "./errors.js";
import { xtext } from "./envelope.js";

/** XCLIENT attributes: who the original client was, for the whole session. */
export interface XClientAttributes {
  /** The client's host name (as its address resolved), or "[UNAVAILABLE]" / "[TEMPUNAVAIL]". */
  name?: string;
  /** The client's IP address; an IPv6 address gets its "IPV6:" prefix here. */
  addr?: string;
  /** The client's TCP port (0–65535). */
  port?: number | string;
  /** "SMTP" or "ESMTP": how the client greeted. */
  proto?: string;
  /** The name the client gave with HELO/EHLO. Also the name said with EHLO after XCLIENT. */
  helo?: string;
  /** The SASL login name the client authenticated with, if it did. */
  login?: string;
  /** The server address the client connected to. */
  destAddr?: string;
  /** The server port the client connected to. */
  destPort?: number | string;
}

/** XFORWARD attributes: what the server logs for the next transaction. */
export interface XForwardAttributes {
  /** The client's host name, or "[UNAVAILABLE]". */
  name?: string;
  /** The client's IP address; an IPv6 address gets its "IPV6:" prefix here. */
  addr?: string;
  /** The client's TCP port (0–65535). */
  port?: number | string;
  /** "SMTP" or "ESMTP". */
  proto?: string;
  /** The name the client gave with HELO/EHLO. */
  helo?: string;
  /** The queue or session identifier the message had where it came from. */
  ident?: string;
  /** "LOCAL" or "REMOTE": where the message came from. */
  source?: string;
}

export type ProxyCommand = "XCLIENT" | "XFORWARD";

/** Attribute names on the wire, by option name, in the order they are sent. */
const WIRE_NAMES: Record<ProxyCommand, Record<string, string>> = {
  // NAME and ADDR last: once ADDR is sent the client is usually no longer authorized to
  // send another XCLIENT, so a command split over two lines must end with it.
  XCLIENT: { proto: "PROTO", helo: "HELO", login: "LOGIN", destAddr: "DESTADDR", destPort: "DESTPORT", port: "PORT", name: "NAME", addr: "ADDR" },
  XFORWARD: { proto: "PROTO", helo: "HELO", ident: "IDENT", source: "SOURCE", port: "PORT", name: "NAME", addr: "ADDR" },
};

const UNAVAILABLE = /^\[(UNAVAILABLE|TEMPUNAVAIL)\]$/i;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
/** RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF. */
const MAX_LINE = 510;
/** Postfix: NAME and HELO values may be up to 255 characters. */
const MAX_VALUE = 255;

/** One attribute value, checked and in its wire form (before xtext). */
function wireValue(command: ProxyCommand, key: string, given: unknown): string {
  const refuse = (why: string) => badInput(`Invalid ${command} ${key} ${JSON.stringify(given)}: ${why}`, "EPROTOCOL", command);
  if (typeof given === "number" && (key === "PORT" || key === "DESTPORT")) given = String(given);
  if (typeof given !== "string" || given.length === 0) throw refuse("a non-empty string is expected");
  if (CONTROL.test(given)) throw refuse("control characters (CR, LF, NUL…) are not allowed");
  if (given.length > MAX_VALUE) throw refuse(`longer than ${MAX_VALUE} characters`);
  if (UNAVAILABLE.test(given)) return given.toUpperCase();
  switch (key) {
    case "ADDR":
    case "DESTADDR": {
      const address = given.replace(/^IPV6:/i, "");
      const family = isIP(address);
      if (family === 0) throw refuse("an IPv4 or IPv6 address is expected");
      return family === 6 ? `IPV6:${address}` : address;
    }
    case "PORT":
    case "DESTPORT":
      if (!/^\d{1,5}$/.test(given) || Number(given) > 65535) throw refuse("a port number (0-65535) is expected");
      return given;
    case "PROTO":
      if (!/^E?SMTP$/i.test(given)) throw refuse('"SMTP" or "ESMTP" is expected');
      return given.toUpperCase();
    case "SOURCE":
      if (!/^(LOCAL|REMOTE)$/i.test(given)) throw refuse('"LOCAL" or "REMOTE" is expected');
      return given.toUpperCase();
    default:
      return given;
  }
}

/**
 * The command lines for `attributes`, checked against what the server advertised
 * (`offered`: the parameters of its XCLIENT or XFORWARD keyword, or undefined when it
 * offered no such command). Long attribute lists are split over several lines, as the
 * Postfix documents ask, with NAME and ADDR last. Throws before anything is written.
 */
export function proxyCommandLines(command: ProxyCommand, attributes: XClientAttributes | XForwardAttributes, offered: readonly string[] | undefined): string[] {
  if (!offered) throw new SMTPError("EPROTOCOL", `The server does not offer ${command} (it is not in its EHLO reply)`, { command, temporary: false });
  if (!attributes || typeof attributes !== "object") throw badInput(`${command} needs an object of attributes`, "EPROTOCOL", command);
  const names = WIRE_NAMES[command];
  for (const key of Object.keys(attributes)) {
    if (!(key in names)) throw badInput(`Unknown ${command} attribute ${JSON.stringify(key)}: use ${Object.keys(names).join(", ")}`, "EPROTOCOL", command);
  }
  const advertised = new Set(offered.map((name) => name.toUpperCase()));
  const pairs: string[] = [];
  for (const [option, wire] of Object.entries(names)) {
    const given = (attributes as Record<string, unknown>)[option];
    if (given === undefined) continue;
    if (!advertised.has(wire)) {
      throw new SMTPError("EPROTOCOL", `The server does not accept the ${command} attribute ${wire} (it offers ${[...advertised].join(" ") || "none"})`, { command, temporary: false });
    }
    pairs.push(`${wire}=${xtext(wireValue(command, wire, given))}`);
  }
  if (pairs.length === 0) throw badInput(`${command} needs at least one attribute`, "EPROTOCOL", command);
  const lines: string[] = [];
  for (const pair of pairs) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last]!.length + 1 + pair.length <= MAX_LINE) lines[last] += ` ${pair}`;
    else lines.push(`${command} ${pair}`);
  }
  return lines;
}

/**
 * Writes the lines one at a time, each after the reply to the one before: XCLIENT is
 * answered with a new greeting (220), XFORWARD with 250. Any other reply fails with
 * EPROTOCOL (ECONNECTION for 421), quoting the server.
 */
export async function sendProxyCommand(queue: CommandQueue, command: ProxyCommand, lines: readonly string[]): Promise<void> {
  const expected = command === "XCLIENT" ? REPLY.SERVICE_READY : REPLY.OK;
  for (const line of lines) {
    const reply = await queue.send(command, line);
    if (reply.code !== expected) throw fromReply("EPROTOCOL", `${command} refused`, reply, command);
  }
}
