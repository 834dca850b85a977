/**
 * `smtp-wire send [options] [FILE.eml ... | -]`: every message over one connection, in
 * the order given, or over `--connections N` of a pool (SMTPPool). Sends are queued ahead
 * of the one on the wire (up to QUEUE_AHEAD per connection), so with PIPELINING each
 * envelope overlaps the previous message's final reply; only the messages being sent are
 * read, so memory stays bounded whatever the number or size of the messages. Each message gets one line on standard output, and the exit code is the most
 * serious outcome (exit-codes.ts).
 *
 * With --quit-after nothing is sent: the connection goes as far as asked (for mail and
 * rcpt, through each message's envelope with beginTransaction(), abandoned before its
 * body) and says QUIT.
 */
import { access, constants } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { SMTPConnection } from "../connection.js";
import { SMTPPool } from "../pool/pool.js";
import type { SMTPError } from "../errors.js";
import type { AddressObject, AuthCredentials, ConnectOptions, Envelope, SendInfo, SMTPConnectionOptions } from "../types.js";
import type { MailTransaction } from "../mail-transaction.js";
import { UsageError, type CommandLine, type Phase } from "./arguments.js";
import { EXIT, exitCodeOf, worse, type ExitCode } from "./exit-codes.js";
import { prepareMessage, type PreparedMessage } from "./message-source.js";
import { Progress } from "./progress.js";
import { Report, type RecipientReplies } from "./report.js";
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

/** How far connect() goes for each --quit-after phase; the later ones need the whole handshake. */
const HANDSHAKE_STOP: Partial<Record<Phase, ConnectOptions["stopAfter"]>> = { connect: "greeting", ehlo: "hello" };

/**
 * --quit-after: goes as far as `phase`, then says QUIT; sends nothing. For mail and rcpt
 * each message's envelope is opened with beginTransaction() and abandoned before its body
 * (RSET, or nothing when QUIT follows); a failed one leaves the next to lead with RSET.
 */
async function stopAfter(phase: Phase, args: CommandLine, credentials: AuthCredentials | undefined, io: SendIO, report: Report): Promise<ExitCode> {
  const conn = new SMTPConnection({ ...args.connection, ...io.logging });
  try {
    await conn.connect({ stopAfter: HANDSHAKE_STOP[phase] });
    if (phase !== "connect" && phase !== "ehlo" && phase !== "tls" && credentials) await conn.login(credentials);
  } catch (err) {
    conn.close();
    return report.noneSent(args.files, err as SMTPError);
  }
  if (phase !== "mail" && phase !== "rcpt") {
    await conn.quit();
    return report.stopped(phase);
  }
  let outcome: ExitCode = EXIT.OK;
  let open: MailTransaction | undefined;
  for (const file of args.files) {
    let message: PreparedMessage;
    try {
      message = await prepareMessage(file, args.envelope, io.stdin, () => {});
    } catch (err) {
      outcome = worse(outcome, report.unusable(file, err as Error));
      continue;
    }
    message.source.destroy();
    try {
      open?.abort();
      open = undefined;
      const { to, ...envelope } = message.envelope;
      open = await conn.beginTransaction(envelope);
      outcome = worse(outcome, phase === "mail" ? report.stopped(phase, file) : report.recipients(file, await recipientsOf(open, [to].flat())));
    } catch (err) {
      outcome = worse(outcome, report.failed(file, err as SMTPError));
      if (exitCodeOf(err as SMTPError) === EXIT.CONNECTION) break;
    }
  }
  // quit() first: the last transaction then ends with QUIT alone, as RSET would add nothing.
  const quitting = conn.quit();
  open?.abort();
  await quitting;
  return outcome;
}

/** RCPT TO for each recipient, one at a time; the refusals are reported, not thrown. */
async function recipientsOf(tx: MailTransaction, addresses: Array<string | AddressObject>): Promise<RecipientReplies> {
  const result: RecipientReplies = { accepted: [], rejected: [], rejectedErrors: [] };
  for (const address of addresses) {
    const reply = await tx.addRecipient(address);
    if (reply.error) {
      result.rejected.push(reply.address);
      result.rejectedErrors.push(reply.error);
    } else result.accepted.push(reply.address);
  }
  return result;
}
