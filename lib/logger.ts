/**
 * Logging and the SMTP transcript.
 *
 * `logger: true` writes to the console, an object is used as a Bunyan/pino logger, and
 * `debug: true` adds every line sent and received. Callers pass secrets already masked
 * (AUTH lines are logged as "/* secret *\/"); this module never sees the real values.
 * Message bodies are never logged, only their size.
 */
import type { Logger } from "./types.js";

export interface Transcript {
  info(message: string): void;
  error(message: string): void;
  /** A line the client sent (already masked). */
  client(line: string): void;
  /** A reply the server sent (one entry per line; a multi-line reply joined by LF). */
  server(reply: string): void;
}

/** `logger: true`: one readable line per entry on the console, as Nodemailer prints. */
function consoleLine(level: string, write: (line: string) => void) {
  return (meta: unknown, message?: unknown) => {
    const { sid, tnx } = (meta ?? {}) as { sid?: string; tnx?: string };
    write(`[${new Date().toISOString()}] ${level} [${sid}] [${tnx}] ${String(message)}`);
  };
}

const consoleLogger: Logger = {
  debug: consoleLine("DEBUG", (line) => console.log(line)),
  info: consoleLine("INFO", (line) => console.log(line)),
  error: consoleLine("ERROR", (line) => console.error(line)),
};

const silent: Transcript = { info() {}, error() {}, client() {}, server() {} };

function sinkOf(logger: boolean | Logger | undefined): Logger | undefined {
  return logger === true ? consoleLogger : logger && typeof logger === "object" ? logger : undefined;
}

/**
 * The connection's `logger` property, as Nodemailer's `conn.logger`: all six levels, each
 * entry tagged with the connection id. A level the given logger lacks goes to the nearest
 * one it has (trace to debug, warn to info, fatal to error); without a logger it is silent.
 */
export function createLevelLogger(id: string, logger: boolean | Logger | undefined): Required<Logger> {
  const sink = sinkOf(logger);
  const meta = { component: "smtp-wire", sid: id };
  const level =
    (name: keyof Logger, fallback: "debug" | "info" | "error") =>
    (entry?: unknown, ...args: unknown[]): void => {
      if (!sink) return;
      const write = (sink[name] ?? sink[fallback]).bind(sink);
      if (entry !== null && typeof entry === "object" && !(entry instanceof Error)) write({ ...meta, ...entry }, ...args);
      else write(meta, entry, ...args);
    };
  return {
    trace: level("trace", "debug"),
    debug: level("debug", "debug"),
    info: level("info", "info"),
    warn: level("warn", "info"),
    error: level("error", "error"),
    fatal: level("fatal", "error"),
  };
}

export function createTranscript(id: string, logger: boolean | Logger | undefined, debug: boolean | undefined): Transcript {
  const sink = sinkOf(logger);
  if (!sink) return silent;
  const meta = { component: "smtp-wire", sid: id };
  return {
    info: (message) => sink.info({ ...meta, tnx: "network" }, message),
    error: (message) => sink.error({ ...meta, tnx: "network" }, message),
    client: debug ? (line) => sink.debug({ ...meta, tnx: "client" }, `C: ${line}`) : () => {},
    server: debug ? (reply) => reply.split("\n").forEach((line) => sink.debug({ ...meta, tnx: "server" }, `S: ${line}`)) : () => {},
  };
}
