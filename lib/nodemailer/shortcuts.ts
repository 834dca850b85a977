/**
 * Nodemailer's two shortcuts for where to send, read as its transports read them, so the
 * options of an existing `createTransport({ service, url, ... })` call keep working:
 *
 *   url:     "smtp://user:pass@host:587/?pool=true&tls.rejectUnauthorized=false",
 *            or smtps:// (secure from the first byte); query values that look like numbers
 *            or booleans become them, `tls.x` keys go under `tls`.
 *   service: a well-known provider's name, alias or an address at its domain ("Gmail",
 *            "me@outlook.com"), looked up in Nodemailer's own list.
 *
 * As in Nodemailer, what the url says overrides the other options, and what the service
 * says (host, port, secure) overrides both. Unlike Nodemailer, an unknown service or a url
 * that is not smtp:// or smtps:// is a TypeError at once, not a silent send to localhost.
 * Nodemailer is an optional peer dependency: its list is loaded only when `service` is
 * given (a user of this transport has it).
 */
import { createRequire } from "node:module";

export interface Shortcuts {
  /** A connection url: smtp:// or smtps://, with credentials, port and options. */
  url?: string;
  /** A well-known service: "Gmail", "SendGrid", "me@outlook.com"... */
  service?: string;
}

type Options = Record<string, unknown>;

/** `options` with its `url` and `service` resolved into host, port, secure, auth and the rest. */
export function resolveShortcuts<T extends Shortcuts>(options: T): Omit<T, "url" | "service"> {
  const { url, service, ...rest } = options;
  let resolved: Options = rest;
  let name = service;
  if (url !== undefined) {
    const fromUrl = parseConnectionUrl(url);
    name ??= fromUrl.service as string | undefined;
    delete fromUrl.service;
    resolved = { ...resolved, ...fromUrl };
  }
  if (name !== undefined) resolved = { ...resolved, ...wellKnown(name) };
  return resolved as Omit<T, "url" | "service">;
}

/** A query value as Nodemailer reads it: a number, a boolean, or the text. */
function queryValue(value: string): unknown {
  if (value === "true") return true;
  if (value === "false") return false;
  return value.trim() !== "" && !Number.isNaN(Number(value)) ? Number(value) : value;
}

function parseConnectionUrl(text: string): Options {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`Not a connection url: ${JSON.stringify(text)}`);
  }
  const options: Options = {};
  if (url.protocol === "smtps:") options.secure = true;
  else if (url.protocol === "smtp:") options.secure = false;
  else throw new TypeError(`A connection url is smtp:// or smtps://, not ${url.protocol}//`);
  if (url.hostname) options.host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (url.port) options.port = Number(url.port);
  if (url.username || url.password) options.auth = { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };
  for (const [key, value] of url.searchParams) {
    if (key.startsWith("tls.")) options.tls = { ...(options.tls as Options | undefined), [key.slice(4)]: queryValue(value) };
    else options[key] = queryValue(value);
  }
  return options;
}

/** host, port and secure of a well-known service, from Nodemailer's list. */
function wellKnown(name: string): Options {
  let lookup: (key: string) => Options | false;
  try {
    const loaded = createRequire(import.meta.url)("nodemailer/lib/well-known") as typeof lookup | { default: typeof lookup };
    lookup = typeof loaded === "function" ? loaded : loaded.default;
  } catch (err) {
    throw new TypeError(`The service option needs Nodemailer installed (its list of services): ${(err as Error).message}`);
  }
  const found = lookup(String(name));
  if (!found) throw new TypeError(`Unknown service ${JSON.stringify(name)}: give host and port`);
  const { host, port, secure } = found;
  return Object.fromEntries(Object.entries({ host, port, secure }).filter(([, value]) => value !== undefined));
}
