/**
 * The command line, read with node:util parseArgs into what the connection and the
 * envelope need. Every check that can fail without a server happens here, so bad usage
 * exits before a socket is opened.
 *
 * Deliberately left out: reading the password (password.ts) and the message files
 * (message-source.ts), which need I/O; this module only reads the --ca file.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { DSNOptions, SMTPConnectionOptions } from "../types.js";

/** A command line that cannot run; the command prints it with a pointer to --help. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Where `--quit-after` stops: after the greeting, EHLO, STARTTLS, AUTH, MAIL or the last RCPT. */
export const PHASES = ["connect", "ehlo", "tls", "auth", "mail", "rcpt"] as const;
export type Phase = (typeof PHASES)[number];

/** AUTH methods the command can drive with a user name and a password (or, for XOAUTH2, a token). */
export const AUTH_METHODS = ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"];

/** The environment variable read for the password when --password is not given. */
export const PASSWORD_VARIABLE = "SMTP_WIRE_PASSWORD";

const OPTIONS = {
  server: { type: "string", short: "s" },
  port: { type: "string", short: "p" },
  // --tls requires STARTTLS, --no-tls never uses it; neither: STARTTLS when offered.
  tls: { type: "boolean" },
  "tls-optional": { type: "boolean" },
  "tls-on-connect": { type: "boolean" },
  "tls-verify": { type: "boolean" },
  ca: { type: "string" },
  auth: { type: "string" },
  user: { type: "string", short: "u" },
  password: { type: "string" },
  from: { type: "string", short: "f" },
  to: { type: "string", short: "t", multiple: true },
  lmtp: { type: "boolean" },
  bdat: { type: "boolean" },
  "8bitmime": { type: "boolean" },
  smtputf8: { type: "boolean" },
  "dsn-notify": { type: "string" },
  ehlo: { type: "string" },
  timeout: { type: "string" },
  "quit-after": { type: "string" },
  connections: { type: "string" },
  json: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const;

/** What the command line asks for. */
export interface CommandLine {
  command: "send" | "probe" | "help" | "version";
  connection: SMTPConnectionOptions;
  /** Present when authentication was asked for (--auth or --user). */
  auth?: { user: string; method?: string; password?: string };
  envelope: { from?: string; to: string[]; use8BitMime?: boolean; smtpUtf8?: boolean; dsn?: DSNOptions };
  /** Message files; "-" is standard input. */
  files: string[];
  quitAfter?: Phase;
  connections: number;
  json: boolean;
  verbose: boolean;
}

/**
 * `--auth` takes an optional method, which parseArgs cannot express: a bare `--auth`
 * (followed by another option, a file or nothing) becomes `--auth=`, "the best offered".
 */
function withOptionalAuthValue(argv: readonly string[]): string[] {
  return argv.map((arg, i) => (arg === "--auth" && !AUTH_METHODS.includes(String(argv[i + 1]).toUpperCase()) ? "--auth=" : arg));
}

/** Reads `argv` (without node and the script); throws UsageError for anything that cannot run. */
export function readCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({ args: withOptionalAuthValue(argv), options: OPTIONS, allowPositionals: true, allowNegative: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [word, ...rest] = positionals;
  const command = values.help || word === "help" ? "help" : values.version ? "version" : word;
  if (command === undefined) return emptyCommandLine("help");
  if (command === "help" || command === "version") return emptyCommandLine(command);
  if (command !== "send" && command !== "probe") throw new UsageError(`Unknown command "${command}": expected send or probe`);

  let server = values.server;
  let files = rest;
  if (command === "probe") {
    if (rest.length > 1 || (server !== undefined && rest.length > 0)) throw new UsageError("probe takes one server: smtp-wire probe host[:port]");
    server ??= rest[0];
    files = [];
    if (server === undefined) throw new UsageError("probe needs a server: smtp-wire probe host[:port]");
  } else {
    if (files.length === 0) files = ["-"];
    if (files.filter((f) => f === "-").length > 1) throw new UsageError('Standard input ("-") can be read only once');
  }

  return {
    command,
    connection: connectionOptions(values, server),
    auth: authRequest(values, env),
    envelope: envelopeOptions(values),
    files,
    quitAfter: phase(values["quit-after"]),
    connections: positiveInteger("--connections", values.connections ?? "1"),
    json: Boolean(values.json),
    verbose: Boolean(values.verbose),
  };
}

function emptyCommandLine(command: "help" | "version"): CommandLine {
  return { command, connection: {}, envelope: { to: [] }, files: [], connections: 1, json: false, verbose: false };
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowNegative: true }>>["values"];

/** `host`, `host:port`, `[v6]` or `[v6]:port`; a bare IPv6 address (two colons or more) has no port. */
export function splitServer(server: string): { host: string; port?: string } {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(server);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] };
  const colons = server.split(":").length - 1;
  if (colons === 1) {
    const [host, port] = server.split(":");
    return { host: host!, port };
  }
  return { host: server };
}

function connectionOptions(values: Values, server: string | undefined): SMTPConnectionOptions {
  const { host, port: serverPort } = server === undefined ? { host: undefined } : splitServer(server);
  if (host === "") throw new UsageError(`No host in "${server}"`);
  const port = values.port ?? serverPort;
  const starttls = values.tls;
  if (values["tls-on-connect"] && (starttls !== undefined || values["tls-optional"])) {
    throw new UsageError("--tls-on-connect uses TLS from the first byte; --tls, --no-tls and --tls-optional choose what to do about STARTTLS: give one or the other");
  }
  if (values["tls-optional"] && starttls !== undefined) throw new UsageError("--tls-optional cannot be combined with --tls or --no-tls");
  const options: SMTPConnectionOptions = {
    host,
    port: port === undefined ? undefined : portNumber(port),
    secure: Boolean(values["tls-on-connect"]),
    requireTLS: starttls === true,
    ignoreTLS: starttls === false,
    opportunisticTLS: Boolean(values["tls-optional"]),
    tls: { rejectUnauthorized: values["tls-verify"] !== false, ...(values.ca === undefined ? {} : { ca: readCa(values.ca) }) },
    lmtp: Boolean(values.lmtp),
    chunking: Boolean(values.bdat),
  };
  if (values.ehlo !== undefined) options.name = values.ehlo;
  if (values.timeout !== undefined) {
    const ms = Math.round(positiveNumber("--timeout", values.timeout) * 1000);
    Object.assign(options, { connectionTimeout: ms, greetingTimeout: ms, socketTimeout: ms, dnsTimeout: ms });
  }
  return options;
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`Cannot read --ca ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function authRequest(values: Values, env: NodeJS.ProcessEnv): CommandLine["auth"] {
  if (values.auth === undefined && values.user === undefined) return undefined;
  const method = values.auth ? values.auth.toUpperCase() : undefined;
  if (method !== undefined && !AUTH_METHODS.includes(method)) throw new UsageError(`Unknown --auth method "${values.auth}": expected one of ${AUTH_METHODS.join(", ")}`);
  if (values.user === undefined) throw new UsageError("--auth needs --user");
  return { user: values.user, method, password: values.password ?? (env[PASSWORD_VARIABLE] || undefined) };
}

function envelopeOptions(values: Values): CommandLine["envelope"] {
  const to = (values.to ?? []).flatMap((list) => list.split(",")).map((address) => address.trim()).filter(Boolean);
  const envelope: CommandLine["envelope"] = { from: values.from, to };
  if (values["8bitmime"]) envelope.use8BitMime = true;
  if (values.smtputf8) envelope.smtpUtf8 = true;
  const notify = values["dsn-notify"];
  if (notify !== undefined) envelope.dsn = { notify: dsnNotify(notify) };
  return envelope;
}

/** RFC 3461 §4.1: NEVER alone, or any of SUCCESS, FAILURE, DELAY. */
function dsnNotify(value: string): string[] {
  const words = value.split(",").map((word) => word.trim().toUpperCase());
  const valid = words.every((word) => ["SUCCESS", "FAILURE", "DELAY"].includes(word)) || (words.length === 1 && words[0] === "NEVER");
  if (!valid) throw new UsageError(`--dsn-notify "${value}": expected NEVER, or a comma-separated list of SUCCESS, FAILURE and DELAY`);
  return words;
}

function phase(value: string | undefined): Phase | undefined {
  if (value === undefined) return undefined;
  if (!(PHASES as readonly string[]).includes(value)) throw new UsageError(`--quit-after "${value}": expected one of ${PHASES.join(", ")}`);
  return value as Phase;
}

function portNumber(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) throw new UsageError(`Port "${value}": expected a number from 1 to 65535`);
  return port;
}

function positiveNumber(option: string, value: string): number {
  const number = Number(value);
  if (!(number > 0) || !Number.isFinite(number)) throw new UsageError(`${option} "${value}": expected a positive number`);
  return number;
}

function positiveInteger(option: string, value: string): number {
  const number = positiveNumber(option, value);
  if (!Number.isInteger(number)) throw new UsageError(`${option} "${value}": expected a whole number`);
  return number;
}
