/**
 * `smtp-wire send [options] [FILE.eml ... | -]`: every message over one connection, in
 * the order given, or over `--connections N` of a pool (SMTPPool). Sends are queued ahead
 * of the one on the wire (up to QUEUE_AHEAD per connection), so with PIPELINING each
 * envelope overlaps the previous message's final reply; only the messages being sent are
 * read, so memory stays bounded whatever the number or size of the messages. Each message gets one line on standard output, and the exit code is the most
 * serious outcome (exit-codes.ts).
 *
 * With --quit-after nothing is sent: a StepSession goes as far as asked (for mail and
 * rcpt, through each message's envelope, with RSET in between) and says QUIT.
 */
import { access, constants } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { SMTPConnection } from "../connection.js";
import { SMTPPool } from "../pool/pool.js";
import type { SMTPError } from "../errors.js";
import type { AuthCredentials, Envelope, SendInfo, SMTPConnectionOptions } from "../types.js";
import { UsageError, type CommandLine, type Phase } from "./arguments.js";
import { EXIT, exitCodeOf, worse, type ExitCode } from "./exit-codes.js";
import { prepareMessage, type PreparedMessage } from "./message-source.js";
import { Progress } from "./progress.js";
import { Report } from "./report.js";
import { StepSession } from "./step-session.js";
import type { Terminal } from "./terminal.js";

/** Sends queued per connection: enough to overlap, few enough to keep files closed. */
const QUEUE_AHEAD = 8;

export interface SendIO {
  stdin: Readable;
  stdout: Writable;
  terminal: Terminal;
  /** The connection's logging options (-v). */
  logging: Pick<SMTPConnectionOptions, "logger" | "debug">;
}

export async function send(args: CommandLine, credentials: AuthCredentials | undefined, io: SendIO): Promise<ExitCode> {
  await checkReadable(args.files);
  const report = new Report(io.stdout, io.terminal, args.json);
  if (args.quitAfter) return stopAfter(args.quitAfter, args, credentials, io, report);
  let sender: Sender;
  try {
    sender = await openSender(args, credentials, io);
  } catch (err) {
    return report.noneSent(args.files, err as SMTPError);
  }
  let outcome: ExitCode = EXIT.OK;
  const inFlight = new Set<Promise<void>>();
  for (const file of args.files) {
    while (inFlight.size >= QUEUE_AHEAD * args.connections) await Promise.race(inFlight);
    let progress: Progress | undefined;
    let message: PreparedMessage;
    try {
      message = await prepareMessage(file, args.envelope, io.stdin, (n) => progress?.add(n));
    } catch (err) {
      outcome = worse(outcome, report.unusable(file, err as Error));
      continue;
    }
    if (io.terminal.showsStatus) progress = new Progress(io.terminal, file, message.size);
    // send() is called here, in file order, so a connection's queue keeps that order.
    const sent = sender.send(message.envelope, message.source).then(
      (info) => {
        progress?.finish(info.rejected.length > 0 ? "sent, some recipients refused" : "sent");
        outcome = worse(outcome, report.sent(file, info));
      },
      (err: SMTPError) => {
        progress?.finish("failed");
        outcome = worse(outcome, report.failed(file, err));
      },
    );
    const tracked: Promise<void> = sent.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  await Promise.all(inFlight);
  await sender.close();
  return outcome;
}

/** Where the messages go: one connection, or the pool with --connections above 1. */
interface Sender {
  send(envelope: Envelope, source: Readable): Promise<SendInfo>;
  close(): Promise<void>;
}

/**
 * One connection, connected and logged in (a failure here is every message's); or a pool
 * of `--connections`, whose connections open and log in as the sends need them, so a
 * failure reaches each send with its own error.
 */
async function openSender(args: CommandLine, credentials: AuthCredentials | undefined, io: SendIO): Promise<Sender> {
  const options = { ...args.connection, ...io.logging };
  if (args.connections > 1) {
    const pool = new SMTPPool({ ...options, maxConnections: args.connections, auth: credentials, forceAuth: credentials !== undefined });
    return { send: (envelope, source) => pool.send(envelope, source), close: () => pool.close() };
  }
  const conn = new SMTPConnection(options);
  // Every failure reaches the operation it belongs to; an idle connection's has no one to tell.
  conn.on("error", () => {});
  try {
    await conn.connect();
    if (credentials) await conn.login(credentials);
  } catch (err) {
    conn.close();
    throw err;
  }
  return { send: (envelope, source) => conn.send(envelope, source), close: () => conn.quit() };
}

/** Every file is checked before a connection is opened: a typo costs no session. */
async function checkReadable(files: string[]): Promise<void> {
  for (const file of files) {
    if (file === "-") continue;
    await access(file, constants.R_OK).catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`Cannot read ${file}: ${err.code ?? err.message}`);
    });
  }
}

/** --quit-after: goes step by step as far as `phase`, then says QUIT; sends nothing. */
async function stopAfter(phase: Phase, args: CommandLine, credentials: AuthCredentials | undefined, io: SendIO, report: Report): Promise<ExitCode> {
  const session = new StepSession({ ...args.connection, ...io.logging });
  const steps: Array<[Phase, () => Promise<void>]> = [
    ["connect", () => session.connect()],
    ["ehlo", () => session.hello()],
    ["tls", () => session.startTls()],
    ["auth", async () => (credentials ? session.login(credentials) : undefined)],
  ];
  try {
    for (const [name, step] of steps) {
      await step();
      if (name === phase) {
        await session.quit();
        return report.stopped(phase);
      }
    }
  } catch (err) {
    session.close();
    return report.noneSent(args.files, err as SMTPError);
  }
  let outcome: ExitCode = EXIT.OK;
  for (const [i, file] of args.files.entries()) {
    let message: PreparedMessage;
    try {
      message = await prepareMessage(file, args.envelope, io.stdin, () => {});
    } catch (err) {
      outcome = worse(outcome, report.unusable(file, err as Error));
      continue;
    }
    message.source.destroy();
    try {
      if (i > 0) await session.reset();
      const prepared = await session.mail(message.envelope);
      outcome = worse(outcome, phase === "mail" ? report.stopped(phase, file) : report.recipients(file, await session.rcpt(prepared)));
    } catch (err) {
      outcome = worse(outcome, report.failed(file, err as SMTPError));
      if (exitCodeOf(err as SMTPError) === EXIT.CONNECTION) break;
    }
  }
  await session.quit();
  return outcome;
}
