/**
 * How each message's outcome is written on standard output: one line per message that
 * people read, or with --json one JSON object per line (the SendInfo, or the error with
 * its `deliveryState`), so a run of thousands of messages can be read line by line. Each
 * method returns the exit code of what it reported.
 *
 * Deliberately left out: the progress line and the transcript (terminal.ts).
 */
import type { Writable } from "node:stream";
import type { SendInfo } from "../types.js";
import type { SMTPError } from "../errors.js";
import { EXIT, exitCodeOf, type ExitCode } from "./exit-codes.js";
import type { Terminal } from "./terminal.js";

/** The outcome of RCPT TO for each recipient of one envelope (--quit-after rcpt). */
export interface RecipientReplies {
  accepted: string[];
  rejected: string[];
  rejectedErrors: SMTPError[];
}

/** An error as --json prints it. */
export interface ErrorJson {
  code: string;
  message: string;
  command?: string;
  responseCode?: number;
  enhancedCode?: string;
  response?: string;
  temporary?: boolean;
  deliveryState?: string;
  recipient?: string;
  rejected?: string[];
  rejectedErrors?: ErrorJson[];
  recipients?: unknown;
}

/** An error as plain data (an Error's message is not an enumerable property). */
export function errorJson(err: Error): ErrorJson {
  const e = err as SMTPError & { deliveryState?: string; recipients?: unknown };
  return {
    code: e.code ?? "EUSAGE",
    message: e.message,
    command: e.command,
    responseCode: e.responseCode,
    enhancedCode: e.enhancedCode,
    response: e.response,
    temporary: e.temporary,
    deliveryState: e.deliveryState,
    recipient: e.recipient,
    rejected: e.rejected,
    rejectedErrors: e.rejectedErrors?.map(errorJson),
    recipients: e.recipients,
  };
}

export class Report {
  readonly #out: Writable;
  readonly #terminal: Terminal;
  readonly #json: boolean;

  constructor(out: Writable, terminal: Terminal, json: boolean) {
    this.#out = out;
    this.#terminal = terminal;
    this.#json = json;
  }

  /** The server accepted the message (perhaps not for every recipient). */
  sent(file: string, info: SendInfo): ExitCode {
    const refused = info.rejected.length > 0 ? `; refused ${info.rejected.join(", ")}` : "";
    this.#write({ file, sent: true, ...info, rejectedErrors: info.rejectedErrors?.map(errorJson) }, `${file}: sent to ${info.accepted.join(", ")}${refused} (${info.response})`);
    return info.rejected.length > 0 ? EXIT.SOME_RECIPIENTS_REFUSED : EXIT.OK;
  }

  /** The send failed; the line says when the message may have been delivered all the same. */
  failed(file: string, err: SMTPError, deliveryState?: string): ExitCode {
    const error = errorJson(err);
    error.deliveryState ??= deliveryState;
    const verdict = error.deliveryState === "unknown" ? "may have been delivered" : "not sent";
    this.#write({ file, sent: false, error }, `${file}: ${verdict}: ${err.code} ${err.message}`);
    return exitCodeOf(err);
  }

  /** The message could not be read or has no envelope: bad usage, nothing was sent. */
  unusable(file: string, err: Error): ExitCode {
    this.#write({ file, sent: false, error: { ...errorJson(err), deliveryState: "not-sent" } }, `${file}: not sent: ${err.message}`);
    return EXIT.USAGE;
  }

  /** The connection or the login failed: no message was tried. */
  noneSent(files: string[], err: SMTPError): ExitCode {
    this.#terminal.line(`smtp-wire: ${err.code} ${err.message}`);
    for (const file of files) this.failed(file, err, "not-sent");
    return exitCodeOf(err);
  }

  /** --quit-after stopped here as asked. */
  stopped(phase: string, file?: string): ExitCode {
    this.#write({ file, stoppedAfter: phase }, `${file ? `${file}: ` : ""}stopped after ${phase}`);
    return EXIT.OK;
  }

  /** --quit-after rcpt: what RCPT TO said for each recipient. */
  recipients(file: string, replies: RecipientReplies): ExitCode {
    const accepted = replies.accepted.length > 0 ? `accepted ${replies.accepted.join(", ")}` : "no recipient accepted";
    const refused = replies.rejectedErrors.map((err) => `; refused ${err.recipient} (${err.response})`).join("");
    this.#write({ file, stoppedAfter: "rcpt", accepted: replies.accepted, rejected: replies.rejected, rejectedErrors: replies.rejectedErrors.map(errorJson) }, `${file}: ${accepted}${refused}`);
    if (replies.rejected.length === 0) return EXIT.OK;
    return replies.accepted.length > 0 ? EXIT.SOME_RECIPIENTS_REFUSED : EXIT.MESSAGE_REFUSED;
  }

  #write(json: object, line: string): void {
    this.#out.write((this.#json ? JSON.stringify(json) : line) + "\n");
  }
}
