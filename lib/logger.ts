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

export function createTranscript(id: string, logger: boolean | Logger | undefined, debug: boolean | undefined): Transcript {
  const sink: Logger | undefined = logger === true ? consoleLogger : logger && typeof logger === "object" ? logger : undefined;
  if (!sink) return silent;
  const meta = { component: "smtp-wire", sid: id };
  return {
    info: (message) => sink.info({ ...meta, tnx: "network" }, message),
    error: (message) => sink.error({ ...meta, tnx: "network" }, message),
    client: debug ? (line) => sink.debug({ ...meta, tnx: "client" }, `C: ${line}`) : () => {},
    server: debug ? (reply) => reply.split("\n").forEach((line) => sink.debug({ ...meta, tnx: "server" }, `S: ${line}`)) : () => {},
  };
}
