/**
 * Generated benchmark input, the same on every run (a seeded generator, no fixtures in
 * git): message files for the large-message and relay cases, in-memory inputs for the
 * encoder, and the 4 KiB message of the many-small case.
 *
 * A message file is one of three kinds, each ending with a line ending:
 * - "base64": CRLF headers, a text part with a few lines that start with a dot, then
 *   base64 lines up to the requested size, as a large attachment would be;
 * - "text": CRLF text in UTF-8 (multi-byte words among ASCII ones), about 1.5 % of its
 *   lines starting with a dot, as prose and quoted-printable are;
 * - "text-lf": the same text with bare LF line ends, as a Unix tool saves an .eml.
 * Beside it goes the same message already encoded (CRLF, dot-stuffed), which is what the
 * raw-socket client sends and the fast sink receives.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";

/** xorshift32: fast, seeded, good enough for filler bytes. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

const WORDS = (
  "the quick brown fox jumps over lazy dog mail server relay message header body line " +
  "transfer agent delivery queue envelope sender recipient stream buffer socket reply " +
  "pipelining extension status code accepted rejected deferred bounce notification"
).split(" ");

/** Words of the "text" files: the ones above and multi-byte UTF-8 ones, about one in five. */
const UTF8_WORDS = [...WORDS, "Grüße", "naïve", "café", "Straße", "déjà", "vu", "Ærø", "привет", "мир", "日本語", "メール", "ελληνικά", "€"];

/**
 * Text lines of 20 to 78 characters ending with `eol`, exactly `bytes` long (the last line
 * is padded to fit); every `dotEvery`-th line starts with "." (0: none).
 */
export function textBlock(bytes: number, eol: string, dotEvery: number, seed: number, words = WORDS): Buffer {
  const random = seededRandom(seed);
  const lines: string[] = [];
  let size = 0;
  let count = 0;
  while (bytes - size > 100) {
    const target = 20 + (random() % 59);
    count++;
    let line = dotEvery > 0 && count % dotEvery === 0 ? "." : "";
    while (line.length < target) line += (line.length > 1 ? " " : "") + words[random() % words.length];
    line += eol;
    lines.push(line);
    size += Buffer.byteLength(line);
  }
  lines.push("x".repeat(bytes - size - eol.length) + eol);
  return Buffer.from(lines.join(""), "utf8");
}

/** Base64-alphabet lines of 76 characters + CRLF, `lineCount` of them. */
export function base64Block(lineCount: number, seed: number): Buffer {
  const alphabet = Buffer.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
  const random = seededRandom(seed);
  const block = Buffer.allocUnsafe(lineCount * 78);
  for (let line = 0; line < lineCount; line++) {
    const start = line * 78;
    for (let i = 0; i < 76; i++) block[start + i] = alphabet[random() & 63]!;
    block[start + 76] = 0x0d;
    block[start + 77] = 0x0a;
  }
  return block;
}

/** Uniformly random bytes: 8-bit data with bare CR, bare LF and NUL all over it. */
export function binaryBlock(bytes: number, seed: number): Buffer {
  const random = seededRandom(seed);
  const block = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i += 4) block.writeUInt32LE(random(), i);
  return block;
}

/** What RFC 5321 4.5.2 asks of a client: a dot at the start of a line gets another. Input must be CRLF text. */
export function dotStuff(crlfText: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  if (crlfText[0] === 0x2e) parts.push(Buffer.from("."));
  let at = 0;
  while ((at = crlfText.indexOf("\n.", at)) >= 0) {
    parts.push(crlfText.subarray(start, at + 1), Buffer.from("."));
    start = at + 1;
    at += 2;
  }
  parts.push(crlfText.subarray(start));
  return Buffer.concat(parts);
}

/** CRLF line ends for text whose lines end with bare LF. */
function toCRLF(lfText: Buffer): Buffer {
  return Buffer.from(lfText.toString("latin1").replaceAll("\n", "\r\n"), "latin1");
}

export type MessageKind = "base64" | "text" | "text-lf";
export const MESSAGE_KINDS: readonly MessageKind[] = ["base64", "text", "text-lf"];

export interface MessageFile {
  kind: MessageKind;
  /** The message as a client is given it. */
  path: string;
  bytes: number;
  sha256: string;
  /** The same message encoded (CRLF, dot-stuffed): what the raw client sends and the sink receives. */
  stuffedPath: string;
  stuffedBytes: number;
  stuffedSha256: string;
}

/** A message's first bytes, and the block repeated (then cut at a line end) to fill it. */
function messageParts(kind: MessageKind): { head: Buffer; block: Buffer; tail: Buffer; eol: string } {
  const from = "From: Bench Sender <sender@bench.example>\r\nTo: Bench Recipient <rcpt@bench.example>\r\n";
  if (kind === "base64") {
    const head = Buffer.concat([
      Buffer.from(
        from + "Subject: benchmark message\r\nMIME-Version: 1.0\r\n" +
          'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n',
      ),
      textBlock(16 * 1024, "\r\n", 25, 7),
      Buffer.from('\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n'),
    ]);
    // ~5 MiB of base64 lines, repeated.
    return { head, block: base64Block(64 * 1024, 11), tail: Buffer.from("--b--\r\n"), eol: "\r\n" };
  }
  const eol = kind === "text" ? "\r\n" : "\n";
  const head = from + "Subject: benchmark text\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
  // ~4 MiB of text, repeated; one line in 67 starts with a dot (1.5 %).
  return { head: Buffer.from(head.replaceAll("\r\n", eol)), block: textBlock(4 << 20, eol, 67, 13, UTF8_WORDS), tail: Buffer.alloc(0), eol };
}

/** Writes a message of one kind, exactly `bytes` bytes (and its encoded twin), into `dir`. */
export function writeMessageFile(dir: string, bytes: number, kind: MessageKind = "base64"): MessageFile {
  const { head, block, tail, eol } = messageParts(kind);
  const encode = (plain: Buffer): Buffer => dotStuff(kind === "text-lf" ? toCRLF(plain) : plain);
  const path = join(dir, `message-${kind}-${bytes}.eml`);
  const stuffedPath = join(dir, `message-${kind}-${bytes}.stuffed.eml`);
  const hash = createHash("sha256");
  const stuffedHash = createHash("sha256");
  const fd = openSync(path, "w");
  const stuffedFd = openSync(stuffedPath, "w");
  let stuffedBytes = 0;
  const put = (plain: Buffer, stuffed = encode(plain)): void => {
    writeSync(fd, plain);
    hash.update(plain);
    writeSync(stuffedFd, stuffed);
    stuffedHash.update(stuffed);
    stuffedBytes += stuffed.length;
  };
  put(head);
  // Whole blocks (each starts a line), then whole lines of one, then one padded line.
  let remaining = bytes - head.length - tail.length;
  if (remaining < 0) throw new Error(`message size ${bytes} too small`);
  const stuffedBlock = encode(block);
  while (remaining >= block.length) {
    put(block, stuffedBlock);
    remaining -= block.length;
  }
  let cut = block.lastIndexOf(0x0a, remaining - 1) + 1;
  if (remaining - cut > 0 && remaining - cut < eol.length) cut = block.lastIndexOf(0x0a, cut - 2) + 1;
  if (cut > 0) put(block.subarray(0, cut));
  remaining -= cut;
  if (remaining > 0) put(Buffer.from("x".repeat(remaining - eol.length) + eol));
  put(tail);
  closeSync(fd);
  closeSync(stuffedFd);
  return { kind, path, bytes, sha256: hash.digest("hex"), stuffedPath, stuffedBytes, stuffedSha256: stuffedHash.digest("hex") };
}

/** The many-small message: exactly `bytes` of CRLF text with headers, ending with CRLF, no dots. */
export function smallMessage(bytes = 4096): Buffer {
  const head = Buffer.from(
    "From: sender@bench.example\r\nTo: rcpt@bench.example\r\nSubject: small\r\nMIME-Version: 1.0\r\n" +
      "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
  );
  const body = textBlock(bytes - head.length, "\r\n", 0, 3);
  return Buffer.concat([head, body]);
}

export type EncoderInputKind = "crlf" | "lf" | "dots" | "binary";

/** In-memory input for the encoder case: `bytes` long, built from a repeated 1 MiB block. */
export function encoderInput(kind: EncoderInputKind, bytes: number): Buffer {
  const blockSize = 1 << 20;
  let block: Buffer;
  switch (kind) {
    case "crlf":
      block = textBlock(blockSize, "\r\n", 0, 21);
      break;
    case "lf":
      block = textBlock(blockSize, "\n", 0, 21);
      break;
    case "dots":
      // A quarter of the lines start with a dot (quoted diffs, ellipses, hand-made lists).
      block = textBlock(blockSize, "\r\n", 4, 21);
      break;
    case "binary":
      block = binaryBlock(blockSize, 21);
      break;
  }
  const input = Buffer.allocUnsafe(bytes);
  for (let at = 0; at < bytes; at += blockSize) block.copy(input, at, 0, Math.min(blockSize, bytes - at));
  return input;
}
