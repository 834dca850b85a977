/**
 * The command's exit codes, one per class of outcome, so a script can tell "fix the
 * command line" from "the server is down" from "the server said no" without reading
 * messages. When several messages end differently, the most serious class wins (the
 * order of SEVERITY): a connection failure hides nothing a refused recipient would say.
 */
import type { SMTPError } from "../errors.js";

export const EXIT = {
  /** Every message was accepted for every recipient (probe: the server was reached, TLS verified). */
  OK: 0,
  /** Something that fits no class below (a failing message source, a bug). */
  OTHER: 1,
  /** Bad usage: an unknown option, a missing value, an unreadable file; nothing was sent. */
  USAGE: 2,
  /** The connection or TLS failed: refused, timed out, closed, a broken reply, a certificate. */
  CONNECTION: 3,
  /** Authentication failed (refused, or not possible on this connection). */
  AUTH: 4,
  /** A message was accepted, but some of its recipients were refused. */
  SOME_RECIPIENTS_REFUSED: 5,
  /** A message was refused: its sender, all its recipients, DATA or its final reply. */
  MESSAGE_REFUSED: 6,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Least to most serious: the exit code of a run is its most serious outcome. */
const SEVERITY: readonly ExitCode[] = [EXIT.OK, EXIT.SOME_RECIPIENTS_REFUSED, EXIT.MESSAGE_REFUSED, EXIT.OTHER, EXIT.AUTH, EXIT.CONNECTION, EXIT.USAGE];

/** The more serious of two outcomes. */
export function worse(a: ExitCode, b: ExitCode): ExitCode {
  return SEVERITY.indexOf(a) >= SEVERITY.indexOf(b) ? a : b;
}

/** The class of a failure, by its SMTPError code. */
export function exitCodeOf(err: SMTPError | Error): ExitCode {
  switch ((err as SMTPError).code) {
    case "ECONNECTION":
    case "ETIMEDOUT":
    case "ESOCKET":
    case "EDNS":
    case "ETLS":
    case "EPROTOCOL":
    case "EREQUIRETLS":
      return EXIT.CONNECTION;
    case "EAUTH":
      return EXIT.AUTH;
    case "EENVELOPE":
      // Refused by us before anything was written: an address the command line gave.
      return (err as SMTPError).command === "API" ? EXIT.USAGE : EXIT.MESSAGE_REFUSED;
    case "EMESSAGE":
      return EXIT.MESSAGE_REFUSED;
    default:
      return EXIT.OTHER;
  }
}
