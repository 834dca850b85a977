/**
 * Shared set-up of the interop tests: the servers that test/interop/up.sh started (read
 * from INTEROP_* variables), test messages with a unique first header, and the Maildirs
 * the servers deliver into, polled until a message arrives and compared byte for byte.
 *
 * It starts nothing itself: test/interop/run.sh (`npm run test:interop`) brings the
 * servers up and down. Without them every interop file registers no tests and says why,
 * except under CI=true, where it fails, so a broken set-up can never pass as skipped.
 */
import { randomUUID } from "node:crypto";
import { openSync, readSync, closeSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError } from "../../lib/index.js";
import type { SMTPConnectionOptions } from "../../lib/types.js";

/** The servers started by up.sh, as its `export INTEROP_...` lines describe them. */
export interface InteropEnv {
  host: string;
  domain: string;
  /** Postfix like port 25: PIPELINING, SIZE, 8BITMIME, DSN, SMTPUTF8, CHUNKING; STARTTLS optional. */
  smtpPort: number;
  /** Postfix like smtpPort, with a message_size_limit of `smallSizeLimit` bytes. */
  smallPort: number;
  /** Postfix like smtpPort without PIPELINING; logs and refuses input it sees sent ahead. */
  nopipePort: number;
  /** Postfix like smtpPort that trusts XCLIENT and XFORWARD from loopback. */
  xclientPort: number;
  /** Postfix submission: STARTTLS required, then SASL AUTH (through Dovecot). */
  submissionPort: number;
  /** Postfix with TLS from the first byte. */
  smtpsPort: number;
  /** Dovecot LMTP. */
  lmtpPort: number;
  /** message_size_limit of every Postfix port but smallPort, in bytes. */
  sizeLimit: number;
  smallSizeLimit: number;
  /** PEM of the CA that signed the servers' certificate (made by up.sh at start). */
  ca: Buffer;
  /** Password of each test user (local part). */
  passwords: Map<string, string>;
  utf8Address: string;
  postfixLog: string;
  /** Full address of a test user. */
  address(user: string): string;
  /** Maildir of a test user ("utf8" for utf8Address). */
  maildir(user: string): string;
}

/**
 * The interop servers, or undefined when INTEROP_SMTP_PORT is unset. In that case it also
 * decides the file's fate: without CI it prints why the file has no tests; with CI=true it
 * registers one failing test. Call test.run() either way.
 */
export function interopEnv(file: string): InteropEnv | undefined {
  const e = process.env;
  if (!e.INTEROP_SMTP_PORT) {
    const why = "INTEROP_SMTP_PORT is unset: the interop servers are not running (npm run test:interop starts them; needs root)";
    if (e.CI === "true") {
      test(`interop servers are running (${file})`, () => {
        assert.unreachable(`${why}. CI=true, so this is a failure, not a skip.`);
      });
    } else {
      console.log(`skipped: ${file}: ${why}`);
    }
    return undefined;
  }
  const need = (name: string): string => {
    const value = e[name];
    if (!value) throw new Error(`${name} is unset although INTEROP_SMTP_PORT is set: source the output of test/interop/up.sh`);
    return value;
  };
  const domain = need("INTEROP_DOMAIN");
  const passwords = new Map<string, string>();
  for (const pair of need("INTEROP_USERS").split(/\s+/)) {
    const at = pair.indexOf(":");
    passwords.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return {
    host: need("INTEROP_HOST"),
    domain,
    smtpPort: Number(need("INTEROP_SMTP_PORT")),
    smallPort: Number(need("INTEROP_SMALL_PORT")),
    nopipePort: Number(need("INTEROP_NOPIPE_PORT")),
    xclientPort: Number(need("INTEROP_XCLIENT_PORT")),
    submissionPort: Number(need("INTEROP_SUBMISSION_PORT")),
    smtpsPort: Number(need("INTEROP_SMTPS_PORT")),
    lmtpPort: Number(need("INTEROP_LMTP_PORT")),
    sizeLimit: Number(need("INTEROP_MESSAGE_SIZE_LIMIT")),
    smallSizeLimit: Number(need("INTEROP_SMALL_SIZE_LIMIT")),
    ca: readFileSync(need("INTEROP_TLS_CA")),
    passwords,
    utf8Address: need("INTEROP_UTF8_ADDRESS"),
    postfixLog: need("INTEROP_POSTFIX_LOG"),
    address: (user) => `${user}@${domain}`,
    maildir: (user) => need(`INTEROP_MAILDIR_${user.toUpperCase()}`),
  };
}

/** The EHLO/LHLO name the tests use, so trace headers are predictable. */
export const CLIENT_NAME = "client.example";

/**
 * A connection to one of the interop servers, connected (EHLO name client.example, short
 * timeouts so a stuck step fails the test instead of the runner). Close it with `finish()`.
 * A fatal error that arrives between operations is emitted as `error` (SPEC §8); the
 * listener logs it instead of letting it crash the file, and the next call fails anyway.
 */
export async function open(env: InteropEnv, options: SMTPConnectionOptions): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: env.host, name: CLIENT_NAME, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 60_000, ...options });
  conn.on("error", (err: Error) => console.log(`connection error event (port ${options.port}): ${err.message}`));
  await within(conn.connect(), 20_000, `connect to port ${options.port}`).catch((err: unknown) => {
    conn.close();
    throw err;
  });
  return conn;
}

/** QUIT (which closes after the server's 221); close() at once if that takes over 5 s. */
export async function finish(conn: SMTPConnection): Promise<void> {
  try {
    await within(conn.quit(), 5_000, "quit");
  } catch {
    conn.close();
  }
}

/** Rejects when `promise` has not settled after `ms`: a hang becomes a failure that says what hung. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms (hang)`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The SMTPError that `promise` rejects with; fails the test when it resolves or rejects with anything else. */
export async function rejection(promise: Promise<unknown>): Promise<SMTPError> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, SMTPError, `an SMTPError, got ${String(err)}`);
    return err as SMTPError;
  }
  assert.unreachable("expected a rejection, got success");
  throw new Error("unreachable");
}

/** A test message and the bytes a Maildir should hold for it after the trace headers. */
export interface TestMessage {
  id: string;
  /** What the client is given (CRLF line ends unless the test chose otherwise). */
  raw: Buffer;
  /** What the server stores after its own trace headers: line ends as LF. */
  stored: Buffer;
}

/**
 * A message whose first header is `X-Test-Id: <uuid>`. The servers prepend trace headers
 * (Return-Path, Delivered-To, Received…); cutting the stored file at this unique marker
 * leaves exactly what was sent, even when the body itself holds Received lines.
 */
export function makeMessage(options: { subject?: string; to?: string; body?: string | Buffer; headers?: string } = {}): TestMessage {
  const id = randomUUID();
  const head = Buffer.from(
    `X-Test-Id: ${id}\r\nFrom: <sender@client.example>\r\nTo: <${options.to ?? "someone@example.test"}>\r\n` +
      `Subject: ${options.subject ?? "interop"}\r\nMessage-ID: <${id}@client.example>\r\n${options.headers ?? ""}\r\n`,
    "utf8",
  );
  const body = options.body === undefined ? Buffer.from("Hello from smtp-wire.\r\n") : Buffer.from(options.body);
  const raw = Buffer.concat([head, body]);
  return { id, raw, stored: storedForm(raw) };
}

/**
 * How Postfix and Dovecot store a message the client sent correctly: every line end (CRLF,
 * or a bare LF or bare CR that the client must turn into CRLF) becomes LF, and a final
 * line end is added when the message had none (the client ends the data with CRLF . CRLF).
 */
export function storedForm(raw: Buffer): Buffer {
  const text = raw.toString("latin1").replace(/\r\n|\r|\n/g, "\n");
  return Buffer.from(text.endsWith("\n") || text.length === 0 ? text : `${text}\n`, "latin1");
}

/**
 * Bytes the client sends after DATA's 354 for a message whose stored form is `stored`
 * (SendInfo.messageSize): every LF as CRLF, one more "." on each line that starts with
 * ".", and the ".\r\n" terminator.
 */
export function wireSize(stored: Buffer): number {
  let lineEnds = 0;
  let dotLines = stored[0] === 0x2e ? 1 : 0;
  for (let i = stored.indexOf(0x0a); i !== -1; i = stored.indexOf(0x0a, i + 1)) {
    lineEnds++;
    if (stored[i + 1] === 0x2e) dotLines++;
  }
  return stored.length + lineEnds + dotLines + 3;
}

/** A delivered Maildir file, cut at its X-Test-Id marker. */
export interface Delivered {
  path: string;
  /** The trace headers the server prepended (Return-Path, Received…), as text. */
  trace: string;
  /** The rest of the file: what the client sent, as stored. */
  content: Buffer;
}

// Names of Maildir files whose head was already read, with the X-Test-Id they carry (or
// null): a delivered file never changes, so each one is opened once however long we poll.
const seen = new Map<string, string | null>();
// The lines a server may put before the message: the marker must follow only these, so a
// bounce or DSN report that quotes the original headers is never taken for the message.
const TRACE_LINE = /^(Return-Path|X-Original-To|Delivered-To|Received):|^[ \t]/;
const HEAD_BYTES = 16 * 1024;

function markerOf(path: string): string | null {
  const fd = openSync(path, "r");
  const head = Buffer.alloc(HEAD_BYTES);
  let length: number;
  try {
    length = readSync(fd, head, 0, HEAD_BYTES, 0);
  } finally {
    closeSync(fd);
  }
  const lines = head.subarray(0, length).toString("latin1").split("\n");
  for (const line of lines) {
    const match = /^X-Test-Id: (\S+)$/.exec(line);
    if (match) return match[1]!;
    if (!TRACE_LINE.test(line)) return null;
  }
  return null;
}

function listMaildir(maildir: string): string[] {
  const paths: string[] = [];
  for (const sub of ["new", "cur"]) {
    for (const name of readdirSync(join(maildir, sub))) {
      if (!name.startsWith("dovecot") && name !== "maildirsize") paths.push(join(maildir, sub, name));
    }
  }
  return paths;
}

/** Paths of the files in `user`'s Maildir that carry X-Test-Id `id` right after the trace headers. */
export function deliveredNow(env: InteropEnv, user: string, id: string): string[] {
  const found: string[] = [];
  for (const path of listMaildir(env.maildir(user))) {
    if (!seen.has(path)) seen.set(path, markerOf(path));
    if (seen.get(path) === id) found.push(path);
  }
  return found;
}

/**
 * Waits until the message `id` is in `user`'s Maildir (delivery runs after the server's
 * 250, so it is polled), then returns it cut at the marker. Fails after `timeoutMs` with
 * the end of the Postfix log, which says where the message went instead.
 */
export async function waitForDelivery(env: InteropEnv, user: string, id: string, timeoutMs = 20_000): Promise<Delivered> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [path] = deliveredNow(env, user, id);
    if (path) {
      const data = readFileSync(path);
      const marker = Buffer.from(`X-Test-Id: ${id}\n`);
      const at = data.indexOf(marker);
      assert.ok(at === 0 || data[at - 1] === 0x0a, `marker at a line start in ${path}`);
      return { path, trace: data.subarray(0, at).toString("utf8"), content: data.subarray(at) };
    }
    if (Date.now() > deadline) {
      throw new Error(`message ${id} not delivered to ${user} within ${timeoutMs} ms; end of the Postfix log:\n${logTail(env)}`);
    }
    await sleep(25);
  }
}

/** Waits until some file in `user`'s Maildir satisfies `match`; returns its bytes. */
export async function waitForFile(env: InteropEnv, user: string, match: (data: Buffer) => boolean, timeoutMs = 20_000): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  const checked = new Set<string>();
  for (;;) {
    for (const path of listMaildir(env.maildir(user))) {
      if (checked.has(path)) continue;
      checked.add(path);
      const data = readFileSync(path);
      if (match(data)) return data;
    }
    if (Date.now() > deadline) throw new Error(`no matching file in ${user}'s Maildir within ${timeoutMs} ms; end of the Postfix log:\n${logTail(env)}`);
    await sleep(50);
  }
}

/** Delivery completes, then byte-compares the stored message with `message.stored`. */
export async function assertDelivered(env: InteropEnv, user: string, message: TestMessage): Promise<Delivered> {
  const delivered = await waitForDelivery(env, user, message.id);
  assertSameBytes(delivered.content, message.stored, `message ${message.id} as stored for ${user}`);
  return delivered;
}

/**
 * Byte comparison that reports where two buffers part (with a little context) instead of
 * printing megabytes of diff.
 */
export function assertSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (actual.equals(expected)) return;
  let i = 0;
  const n = Math.min(actual.length, expected.length);
  while (i < n && actual[i] === expected[i]) i++;
  const show = (b: Buffer): string => JSON.stringify(b.subarray(Math.max(0, i - 40), i + 40).toString("latin1"));
  assert.unreachable(
    `${what}: ${actual.length} bytes, expected ${expected.length}; first difference at byte ${i}\n` +
      `  got:      ${show(actual)}\n  expected: ${show(expected)}`,
  );
}

/** The `with` word of Postfix's Received header: ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTPSA… */
export function receivedWith(trace: string): string | undefined {
  return /\bwith (\S+)/.exec(trace)?.[1];
}

/**
 * A loopback address of its own (127.0.0.0/8 is all loopback on Linux) to connect from
 * with `localAddress`, so that Postfix's log lines of that one session can be picked out.
 */
export function uniqueLoopback(): string {
  const byte = (): number => 1 + Math.floor(Math.random() * 250);
  return `127.${byte()}.${byte()}.${byte()}`;
}

/** Postfix's log lines about client `address` so far. */
export function postfixLogLines(env: InteropEnv, address: string): string[] {
  return readFileSync(env.postfixLog, "utf8").split("\n").filter((line) => line.includes(`unknown[${address}]`));
}

/**
 * Postfix's "disconnect from unknown[ADDR] ehlo=1 mail=1 ... commands=N" line, which counts
 * the commands of the session: it shows whether BDAT or DATA, RSET and so on were used.
 */
export async function disconnectLine(env: InteropEnv, address: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const line = postfixLogLines(env, address).find((l) => l.includes("disconnect from"));
    if (line) return line;
    await sleep(50);
  }
  throw new Error(`no "disconnect from unknown[${address}]" line in ${env.postfixLog}`);
}

function logTail(env: InteropEnv): string {
  try {
    return readFileSync(env.postfixLog, "utf8").split("\n").slice(-15).join("\n");
  } catch (err) {
    return `(cannot read ${env.postfixLog}: ${(err as Error).message})`;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
