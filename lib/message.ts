/**
 * What send() accepts as the message, checked before the envelope goes out: the whole
 * message (string, Buffer or Uint8Array) or a Readable that can still be read.
 *
 * Deliberately left out: the message's content (the caller gives RFC 5322 bytes; the
 * encoder stages make them safe for DATA or BDAT) and reading the stream (send-stream.ts).
 */
import type { Readable } from "node:stream";
import { badInput, SMTPError } from "./errors.js";

/** The message as send() gets it. */
export type MessageInput = string | Buffer | Uint8Array | Readable;

/** A checked message: all of it as one Buffer, or the stream to read it from. */
export type CheckedMessage = { bytes: Buffer } | { source: Readable };

/**
 * Checks `message` and says how to send it. Throws EMESSAGE for anything that is not a
 * string, bytes or a stream, and ESTREAM for a stream that can no longer be read.
 */
export function checkMessage(message: MessageInput): CheckedMessage {
  const isStream = message !== null && typeof message === "object" && typeof (message as Readable).pipe === "function";
  if (!isStream && typeof message !== "string" && !(message instanceof Uint8Array)) {
    throw badInput("The message must be a string, a Buffer or a Readable stream", "EMESSAGE");
  }
  // A source already destroyed or read to its end can never give the whole message (and
  // may never emit another event): refuse it before the envelope goes out, rather than
  // wait for nothing or close the connection after DATA.
  const used = isStream && ((message as Readable).destroyed || (message as Readable).readableEnded);
  if (used) throw new SMTPError("ESTREAM", "The message stream was already destroyed or read to its end", { command: "API", temporary: false });
  if (isStream) return { source: message as Readable };
  // Bytes the caller gave are used in place (a view, not a copy).
  const bytes = typeof message === "string" ? Buffer.from(message, "utf8") : Buffer.from((message as Uint8Array).buffer, (message as Uint8Array).byteOffset, (message as Uint8Array).byteLength);
  return { bytes };
}
