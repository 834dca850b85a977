/**
 * A message to send, from a file or standard input: its envelope (from the command line,
 * else from its header) and a Readable of its bytes that counts them as they are read,
 * for the progress line. Only the header is held in memory; the body streams.
 *
 * Deliberately left out: what the bytes mean beyond the header; the connection's
 * encoder makes any message safe for DATA or BDAT.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import type { Envelope } from "../types.js";
import { UsageError, type CommandLine } from "./arguments.js";
import { envelopeFromHeader, withoutBcc } from "./headers.js";

/** A header longer than this is not a header: the file is not a message. */
const MAX_HEADER_BYTES = 1024 * 1024;

export interface PreparedMessage {
  /** The file name as given, "-" for standard input. */
  name: string;
  envelope: Envelope;
  /** Bytes in the file, when known (not for standard input). */
  size?: number;
  /** The message bytes; `onBytes` hears of each chunk as it is read. */
  source: Readable;
}

/**
 * Opens `name` and works out its envelope. The header is read only when the command line
 * lacks --from or --to; when the recipients come from the header, Bcc is taken out.
 * Throws UsageError when no sender or no recipient can be found.
 */
export async function prepareMessage(name: string, args: CommandLine["envelope"], stdin: Readable, onBytes: (n: number) => void): Promise<PreparedMessage> {
  const size = name === "-" ? undefined : (await stat(name)).size;
  const stream = name === "-" ? stdin : createReadStream(name);
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const envelope: Envelope = { ...args, from: args.from ?? "", to: args.to };
  const first: Buffer[] = [];
  if (args.from === undefined || args.to.length === 0) {
    const { head, rest } = await readHead(chunks, name).catch(async (err: Error) => {
      throw await closing(chunks, err);
    });
    const fromHeader = envelopeFromHeader(head.toString("utf8"));
    if (args.from === undefined) {
      if (fromHeader.from === undefined) throw await closing(chunks, new UsageError(`${name}: no --from, and no From: address in the message`));
      envelope.from = fromHeader.from;
    }
    let sentHead = head;
    if (args.to.length === 0) {
      if (fromHeader.to.length === 0) throw await closing(chunks, new UsageError(`${name}: no --to, and no To:, Cc: or Bcc: address in the message`));
      envelope.to = fromHeader.to;
      sentHead = Buffer.from(withoutBcc(head.toString("latin1")), "latin1");
    }
    first.push(sentHead, rest);
  }
  return { name, envelope, size, source: Readable.from(counted(first, chunks, onBytes), { objectMode: false }) };
}

/** Closes the file (the iterator's return() does) and hands back `err` to throw. */
async function closing(chunks: AsyncIterator<Buffer>, err: Error): Promise<Error> {
  await chunks.return?.();
  return err;
}

/** Reads up to and including the first empty line (or the whole input, if it has none). */
async function readHead(chunks: AsyncIterator<Buffer>, name: string): Promise<{ head: Buffer; rest: Buffer }> {
  let seen = Buffer.alloc(0);
  for (;;) {
    const end = headerEnd(seen);
    if (end >= 0) return { head: seen.subarray(0, end), rest: seen.subarray(end) };
    if (seen.length > MAX_HEADER_BYTES) throw new UsageError(`${name}: no end of the header within ${MAX_HEADER_BYTES} bytes; is it a message?`);
    const next = await chunks.next();
    if (next.done) return { head: seen, rest: Buffer.alloc(0) };
    seen = Buffer.concat([seen, next.value]);
  }
}

/** The offset just past the empty line that ends the header, or -1. */
function headerEnd(bytes: Buffer): number {
  const crlf = bytes.indexOf("\r\n\r\n");
  const lf = bytes.indexOf("\n\n");
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return crlf + 4;
  return lf >= 0 ? lf + 2 : -1;
}

async function* counted(first: Buffer[], rest: AsyncIterator<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  try {
    for (const chunk of first) {
      onBytes(chunk.length);
      if (chunk.length > 0) yield chunk;
    }
    for (;;) {
      const next = await rest.next();
      if (next.done) return;
      onBytes(next.value.length);
      yield next.value;
    }
  } finally {
    // A send that failed stops reading here: the file is closed, not left to the collector.
    await rest.return?.();
  }
}
