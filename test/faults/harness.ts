/**
 * The phase × fault table of the hostile-server tests (issue 4), and the one function that
 * runs a cell of it and checks every promise the library makes about failure:
 *
 * - every operation (connect, login, send, createSendStream, reset, quit) started at that
 *   point, in flight or queued, settles exactly once, with an SMTPError that carries
 *   `code`, `command` and `temporary`;
 * - `error` is emitted at most once, and never unhandled (each cell runs once with an
 *   `error` listener and once without; the file's trackUnhandled() catches a crash);
 * - `end` always comes;
 * - no socket, server or timer is left open afterwards;
 * - a partial body is never completed with a terminator.
 *
 * A phase is the script a well-behaved server plays up to the fault and the operations
 * that meet it; a fault is the steps played from there. Expectations (which error code)
 * are the table's defaults unless a phase says otherwise. Timeouts are short only where
 * the fault needs one to fire (stall, readNothing), so a slow CI machine cannot turn
 * another fault into a spurious ETIMEDOUT.
 */
import * as assert from "uvu/assert";
import { PassThrough } from "node:stream";
import { SMTPConnection, SMTPError, type SendStream, type SMTPConnectionOptions, type SMTPErrorCode } from "../../lib/index.js";
import { acceptEnvelope, ehloReply, greetAndEhlo, startFaultServer, type FaultConnection, type Step } from "../helpers/fault-server.js";
import { nodeCallback, settlesWithin } from "../helpers/callbacks.js";
import { openResources, type UnhandledTracker } from "../helpers/leak-check.js";
import { getCerts } from "../helpers/certs.js";

/** Hang detector for one cell: far above any timeout a cell uses, so it only trips on a real hang. */
export const HANG_MS = 10_000;
/** Timeouts for faults that need one to fire. */
export const SHORT_TIMEOUTS = { greetingTimeout: 200, socketTimeout: 200, connectionTimeout: 200 };
/** Timeouts for every other fault: never reached, unless something hangs. */
const LONG_TIMEOUTS = { greetingTimeout: 5000, socketTimeout: 5000, connectionTimeout: 5000 };

export const ENVELOPE = { from: "sender@example.test", to: ["rcpt@example.test"] };
export const MESSAGE = "Subject: fault test\r\n\r\nbody\r\n";

// ---- faults ------------------------------------------------------------------------------

export type FaultName =
  | "close (FIN)"
  | "reset (RST)"
  | "421 then close"
  | "silent stall"
  | "server never reads"
  | "line without a code"
  | "code outside 2xx-5xx"
  | "code changing mid multi-line"
  | "10 MiB line"
  | "endless continuation lines"
  | "NUL byte"
  | "reply nobody asked for";

export const FAULT_NAMES: FaultName[] = [
  "close (FIN)",
  "reset (RST)",
  "421 then close",
  "silent stall",
  "server never reads",
  "line without a code",
  "code outside 2xx-5xx",
  "code changing mid multi-line",
  "10 MiB line",
  "endless continuation lines",
  "NUL byte",
  "reply nobody asked for",
];

const TEN_MIB_LINE = Buffer.concat([Buffer.from("250 "), Buffer.alloc(10 * 1024 * 1024, 0x61), Buffer.from("\r\n")]);

/** Writes "250-..." lines until the client hangs up (or 64 MiB, which would be a failure). */
const endlessContinuation: Step = {
  call: async (connection: FaultConnection) => {
    const batch = Buffer.from("250-and there is more\r\n".repeat(2000));
    for (let written = 0; written < 64 * 1024 * 1024 && !connection.closed; written += batch.length) {
      const socket = connection.socket;
      if (socket.destroyed || !socket.writable) return;
      if (!socket.write(batch)) await new Promise<void>((resolve) => (socket.once("drain", resolve), socket.once("close", resolve)));
    }
  },
};

function faultSteps(fault: FaultName, validReply: string): Step[] {
  switch (fault) {
    case "close (FIN)":
      return [{ close: true }];
    case "reset (RST)":
      return [{ reset: true }];
    case "421 then close":
      return [{ send: "421 4.3.2 Service shutting down\r\n" }, { close: true }];
    case "silent stall":
      return [{ stall: true }];
    case "server never reads":
      return [{ readNothing: true }, { stall: true }];
    case "line without a code":
      return [{ send: "hello, I am not SMTP\r\n" }, { stall: true }];
    case "code outside 2xx-5xx":
      return [{ send: "600 what\r\n" }, { stall: true }];
    case "code changing mid multi-line":
      return [{ send: "250-first line\r\n550 second line\r\n" }, { stall: true }];
    case "10 MiB line":
      return [{ send: TEN_MIB_LINE }, { stall: true }];
    case "endless continuation lines":
      return [endlessContinuation, { stall: true }];
    case "NUL byte":
      return [{ send: "250 o\0k\r\n" }, { stall: true }];
    case "reply nobody asked for":
      return [{ send: `${validReply}250 2.0.0 nobody asked for this\r\n` }, { stall: true }];
  }
}

const needsTimeout = (fault: FaultName): boolean => fault === "silent stall" || fault === "server never reads";

/** What a cell must end with. */
export interface Expectation {
  /** Code of the first operation's error; "resolves" when it must succeed (quit). */
  code: SMTPErrorCode | "resolves";
  /** Code of the queued operations' errors (default: `code`, or ECONNECTION when the first resolves). */
  queuedCode?: SMTPErrorCode;
  /** The first operation may also succeed (its reply came before the fault). */
  firstMayResolve?: boolean;
  responseCode?: number;
}

export function defaultExpectation(fault: FaultName): Expectation {
  switch (fault) {
    case "close (FIN)":
    case "reset (RST)":
      return { code: "ECONNECTION" };
    case "421 then close":
      return { code: "ECONNECTION", responseCode: 421 };
    case "silent stall":
    case "server never reads":
      return { code: "ETIMEDOUT" };
    case "reply nobody asked for":
      return { code: "EPROTOCOL", firstMayResolve: true };
    default:
      return { code: "EPROTOCOL" };
  }
}

// ---- operations --------------------------------------------------------------------------

export interface Settlement {
  ok: boolean;
  value?: unknown;
  error?: unknown;
}

/** One public call whose outcome is checked: its settlement and how often it settled. */
export interface Op {
  label: string;
  settled: Promise<Settlement>;
  count(): number;
  /** A stream source or SendStream that must be destroyed when the op failed. */
  mustBeDestroyed?: { destroyed: boolean };
}

export function promiseOp(label: string, promise: Promise<unknown>): Op {
  let count = 0;
  const settled = promise.then(
    (value) => (count++, { ok: true, value }),
    (error: unknown) => (count++, { ok: false, error }),
  );
  return { label, settled, count: () => count };
}

export function callbackOp<T>(label: string, start: (callback: (err?: Error | null, value?: T) => void) => void): Op {
  const callback = nodeCallback<T>(label);
  start(callback);
  const settled = callback.result.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
  return { label, settled, count: () => callback.count };
}

/** A SendStream settles by `finish` or by `error`, exactly one of them, once. */
export function streamOp(label: string, stream: SendStream): Op {
  let count = 0;
  const settled = new Promise<Settlement>((resolve) => {
    stream.on("finish", () => (count++, resolve({ ok: true, value: stream.info })));
    stream.on("error", (error) => (count++, resolve({ ok: false, error })));
  });
  return { label, settled, count: () => count, mustBeDestroyed: stream };
}

// ---- phases ------------------------------------------------------------------------------

export interface CellContext {
  /** Offset in `received` where the DATA body starts (set by the body phases' script). */
  bodyStart?: number;
}

export interface Phase {
  name: string;
  /** Script up to the fault; may use the context. */
  prefix(ctx: CellContext): Step[];
  /** What a well-behaved server would send at this point ("" when nothing is due). */
  validReply: string;
  /** The `command` of the first operation's error. */
  command: RegExp;
  options?: SMTPConnectionOptions;
  /** Brings the connection to the phase and starts the operations; the first meets the fault. */
  start(conn: SMTPConnection): Promise<Op[]>;
  /** Per-fault expectations that differ from the table's defaults. */
  expect?(fault: FaultName): Partial<Expectation> | undefined;
  /** The body was cut: no terminator may follow `bodyStart`. */
  partialBody?: boolean;
  /** Faults that make no sense here (e.g. a reply nobody asked for before TLS). */
  skip?: FaultName[];
}

/** connect() is the operation: a callback send and a stream wait behind it. */
function handshakeOps(conn: SMTPConnection): Op[] {
  const ops = [promiseOp("connect()", conn.connect())];
  ops.push(callbackOp("send(cb) queued while connecting", (cb) => conn.send(ENVELOPE, MESSAGE, cb)));
  const stream = conn.createSendStream(ENVELOPE);
  stream.end(MESSAGE);
  ops.push(streamOp("createSendStream() queued while connecting", stream));
  return ops;
}

/** A send meets the fault; a callback send and a stream are queued behind it. */
function sendOps(conn: SMTPConnection, first: Op): Op[] {
  const ops = [first, callbackOp("send(cb) queued", (cb) => conn.send(ENVELOPE, MESSAGE, cb))];
  const stream = conn.createSendStream(ENVELOPE);
  stream.end(MESSAGE);
  ops.push(streamOp("createSendStream() queued", stream), promiseOp("reset() queued", conn.reset()));
  return ops;
}

const tlsOptions = (): SMTPConnectionOptions => ({ tls: { ca: getCerts().ca } });

/** Waits until the client sent `bytes` body bytes after the 354, then lets the fault play. */
function bodyScript(ctx: CellContext, bytes: number): Step[] {
  return [
    ...greetAndEhlo(),
    ...acceptEnvelope(1),
    { call: (c) => void (ctx.bodyStart = c.received.length) },
    {
      call: async (c) => {
        const deadline = Date.now() + HANG_MS / 2;
        while (c.received.length - ctx.bodyStart! < bytes) {
          if (c.closed || Date.now() > deadline) throw new Error(`only ${c.received.length - ctx.bodyStart!} of ${bytes} body bytes arrived`);
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      },
    },
  ];
}

/** A body phase: the message comes from a source that sends `chunks` lines and never ends. */
function bodyPhase(name: string, chunks: number): Phase {
  const line = "x".repeat(998) + "\r\n";
  return {
    name,
    prefix: (ctx) => bodyScript(ctx, chunks * line.length),
    validReply: "",
    // With no body to wait for, the fault may arrive with the 354, before the final reply
    // is awaited: then no command is pending and the connection is charged.
    command: chunks === 0 ? /^(DATA|CONN)$/ : /^DATA$/,
    partialBody: true,
    async start(conn) {
      await conn.connect();
      const source = new PassThrough();
      for (let i = 0; i < chunks; i++) source.write(line);
      const first = promiseOp("send(readable) cut mid-body", conn.send(ENVELOPE, source));
      first.mustBeDestroyed = source;
      return sendOps(conn, first);
    },
    // An early reply is the server's answer to a message it never got whole: the send
    // fails with it and the sends behind lose the connection (ECONNECTION), not their message.
    expect: (fault) => (fault === "reply nobody asked for" ? { firstMayResolve: false, queuedCode: "ECONNECTION" } : undefined),
  };
}

export const PHASES: Record<string, Phase> = {
  beforeGreeting: {
    name: "before the greeting",
    prefix: () => [],
    validReply: "220 fault.example.test ESMTP\r\n",
    command: /^CONN$/,
    start: async (conn) => handshakeOps(conn),
    expect: (fault) => (fault === "reply nobody asked for" ? { firstMayResolve: false } : undefined),
  },
  afterGreeting: {
    name: "after the greeting",
    prefix: () => [{ send: "220 fault.example.test ESMTP\r\n" }],
    validReply: "",
    // The client may or may not have written EHLO when the fault arrives.
    command: /^(CONN|EHLO)$/,
    start: async (conn) => handshakeOps(conn),
    skip: ["reply nobody asked for"],
  },
  ehlo: {
    name: "during EHLO",
    prefix: () => [{ send: "220 fault.example.test ESMTP\r\n" }, { expect: /^EHLO / }],
    validReply: ehloReply(["PIPELINING"]),
    command: /^EHLO$/,
    // connect() may have finished before the extra reply is read; the queued sends fail.
    start: async (conn) => handshakeOps(conn),
  },
  ehloHalfReply: {
    name: "in the middle of the EHLO reply",
    prefix: () => [{ send: "220 fault.example.test ESMTP\r\n" }, { expect: /^EHLO / }, { send: "250-fault.example.test\r\n250-PIPELINING\r\n" }],
    validReply: "",
    command: /^EHLO$/,
    start: async (conn) => handshakeOps(conn),
    // A 421 line inside a 250 reply is a code change: EPROTOCOL, not the 421 it claims to be.
    expect: (fault) => (fault === "421 then close" ? { code: "EPROTOCOL", responseCode: undefined } : undefined),
    skip: ["reply nobody asked for", "code changing mid multi-line"],
  },
  starttls: {
    name: "during STARTTLS",
    prefix: () => [...greetAndEhlo(["STARTTLS"]), { expect: "STARTTLS" }],
    validReply: "",
    command: /^STARTTLS$/,
    options: tlsOptions(),
    start: async (conn) => handshakeOps(conn),
    skip: ["reply nobody asked for"],
  },
  tlsHandshake: {
    name: "during the TLS handshake after STARTTLS",
    prefix: () => [...greetAndEhlo(["STARTTLS"]), { expect: "STARTTLS" }, { send: "220 2.0.0 Ready to start TLS\r\n" }],
    validReply: "",
    command: /^STARTTLS$/,
    options: tlsOptions(),
    start: async (conn) => handshakeOps(conn),
    // Whatever the server does now is not TLS: the upgrade fails with ETLS (a timeout stays ETIMEDOUT).
    expect: (fault) => (needsTimeout(fault) ? undefined : { code: "ETLS", responseCode: undefined }),
    skip: ["reply nobody asked for"],
  },
  implicitTls: {
    name: "during the implicit TLS handshake",
    prefix: () => [],
    validReply: "",
    command: /^CONN$/,
    options: { ...tlsOptions(), secure: true },
    start: async (conn) => handshakeOps(conn),
    // A connection lost before TLS is up is ECONNECTION; anything the server says is not TLS: ETLS.
    expect: (fault) => (needsTimeout(fault) || fault === "close (FIN)" || fault === "reset (RST)" ? undefined : { code: "ETLS", responseCode: undefined }),
    skip: ["reply nobody asked for"],
  },
  auth: {
    name: "during AUTH",
    prefix: () => [...greetAndEhlo(["AUTH PLAIN"]), { expect: /^AUTH PLAIN / }],
    validReply: "235 2.7.0 Authentication successful\r\n",
    command: /^AUTH PLAIN$/,
    async start(conn) {
      await conn.connect();
      return [
        callbackOp("login(cb)", (cb) => conn.login({ user: "user", pass: "secret" }, cb)),
        promiseOp("send() queued", conn.send(ENVELOPE, MESSAGE)),
        promiseOp("reset() queued", conn.reset()),
      ];
    },
  },
  mail: {
    name: "during MAIL",
    prefix: () => [...greetAndEhlo(), { expect: /^MAIL FROM:/ }],
    validReply: "250 2.1.0 Ok\r\n",
    command: /^MAIL FROM$/,
    start: async (conn) => (await conn.connect(), sendOps(conn, promiseOp("send()", conn.send(ENVELOPE, MESSAGE)))),
  },
  rcpt: {
    name: "during RCPT",
    prefix: () => [...greetAndEhlo(), { expect: /^MAIL FROM:/ }, { send: "250 2.1.0 Ok\r\n" }, { expect: /^RCPT TO:/ }],
    validReply: "250 2.1.5 Ok\r\n",
    command: /^RCPT TO$/,
    start: async (conn) => (await conn.connect(), sendOps(conn, promiseOp("send()", conn.send(ENVELOPE, MESSAGE)))),
  },
  data: {
    name: "during DATA (before 354)",
    prefix: () => [...greetAndEhlo(), ...acceptEnvelope(1).slice(0, -1)],
    validReply: "354 End data with <CR><LF>.<CR><LF>\r\n",
    command: /^DATA$/,
    start: async (conn) => (await conn.connect(), sendOps(conn, promiseOp("send()", conn.send(ENVELOPE, MESSAGE)))),
    partialBody: true,
    expect: (fault) => (fault === "reply nobody asked for" ? { firstMayResolve: false } : undefined),
  },
  pipelined: {
    name: "during a pipelined MAIL, RCPT, DATA group",
    prefix: () => [...greetAndEhlo(["PIPELINING"]), { expect: /^MAIL FROM:/ }, { expect: /^RCPT TO:/ }, { expect: "DATA" }, { send: "250 2.1.0 Ok\r\n" }],
    validReply: "250 2.1.5 Ok\r\n354 go ahead\r\n",
    command: /^RCPT TO$/,
    start: async (conn) => (await conn.connect(), sendOps(conn, promiseOp("send()", conn.send(ENVELOPE, MESSAGE)))),
    partialBody: true,
    expect: (fault) => (fault === "reply nobody asked for" ? { firstMayResolve: false } : undefined),
  },
  body0: bodyPhase("mid-body, after 0 chunks", 0),
  body1: bodyPhase("mid-body, after 1 chunk", 1),
  bodyMany: bodyPhase("mid-body, after many chunks", 200),
  afterTerminator: {
    name: "after the terminator, before the final reply",
    prefix: () => [...greetAndEhlo(), ...acceptEnvelope(1), { expectData: true }],
    validReply: "250 2.0.0 Queued\r\n",
    command: /^DATA$/,
    start: async (conn) => (await conn.connect(), sendOps(conn, promiseOp("send()", conn.send(ENVELOPE, MESSAGE)))),
  },
  reset: {
    name: "during RSET",
    prefix: () => [...greetAndEhlo(), { expect: "RSET" }],
    validReply: "250 2.0.0 Ok\r\n",
    command: /^RSET$/,
    async start(conn) {
      await conn.connect();
      return [
        promiseOp("reset()", conn.reset()),
        callbackOp("send(cb) queued", (cb) => conn.send(ENVELOPE, MESSAGE, cb)),
        callbackOp("reset(cb) queued", (cb) => conn.reset(cb)),
      ];
    },
  },
  implicitReset: {
    name: "during the RSET before a send that follows a failed one",
    prefix: () => [...greetAndEhlo(), { expect: /^MAIL FROM:/ }, { send: "550 5.7.1 Not you\r\n" }, { expect: "RSET" }],
    validReply: "",
    command: /^RSET$/,
    async start(conn) {
      await conn.connect();
      const refused = await conn.send(ENVELOPE, MESSAGE).then(
        () => undefined,
        (err: SMTPError) => err,
      );
      assert.is(refused?.code, "EENVELOPE", "the first send is refused at MAIL");
      return sendOps(conn, promiseOp("send() after a refused one", conn.send(ENVELOPE, MESSAGE)));
    },
    skip: ["reply nobody asked for"],
  },
  quit: {
    name: "during QUIT",
    prefix: () => [...greetAndEhlo(), { expect: "QUIT" }],
    validReply: "221 2.0.0 Bye\r\n",
    command: /^QUIT$/,
    async start(conn) {
      await conn.connect();
      return [promiseOp("quit()", conn.quit()), callbackOp("send(cb) after quit()", (cb) => conn.send(ENVELOPE, MESSAGE, cb))];
    },
    // quit() always resolves: the connection is going away anyway.
    expect: () => ({ code: "resolves", queuedCode: undefined }),
  },
};

// ---- running one cell --------------------------------------------------------------------

const KNOWN_CODES = new Set(["ECONNECTION", "ETIMEDOUT", "ESOCKET", "EDNS", "ETLS", "EPROTOCOL", "EAUTH", "EENVELOPE", "EMESSAGE", "ESTREAM", "EREQUIRETLS"]);

/** Checks the fields every error must carry. */
export function assertSMTPError(error: unknown, where: string): asserts error is SMTPError {
  assert.instance(error, SMTPError, `${where}: an SMTPError, got ${String(error)}`);
  const e = error as SMTPError;
  assert.ok(KNOWN_CODES.has(e.code), `${where}: known code, got ${e.code}`);
  assert.type(e.command, "string", `${where}: command is set`);
  assert.ok(e.command!.length > 0, `${where}: command is not empty`);
  assert.type(e.temporary, "boolean", `${where}: temporary is a boolean`);
  // A 5xx refuses; anything else the server or the network did may pass on a retry.
  if (e.responseCode !== undefined) assert.is(e.temporary, e.responseCode < 500, `${where}: temporary follows the reply code ${e.responseCode}`);
  else if ((e.code === "ECONNECTION" || e.code === "ETIMEDOUT" || e.code === "EPROTOCOL") && e.command !== "API") {
    assert.is(e.temporary, true, `${where}: ${e.code} is temporary (a retry may work)`);
  }
}

/** Waits for pending I/O callbacks, then fails if a socket, server or timer is still open. */
export async function assertNothingOpen(where: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (openResources().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(openResources(), [], `${where}: nothing left open`);
}

/**
 * Runs one cell: `phase` meets `fault`, with (`withErrorListener`) or without an `error`
 * listener. Returns the fault connection for extra checks.
 */
export async function runCell(phase: Phase, fault: FaultName, withErrorListener: boolean, unhandled: UnhandledTracker): Promise<FaultConnection> {
  const where = `${phase.name} × ${fault}${withErrorListener ? "" : " (no error listener)"}`;
  const ctx: CellContext = {};
  const expectation: Expectation = { ...defaultExpectation(fault), ...phase.expect?.(fault) };
  const server = await startFaultServer([...phase.prefix(ctx), ...faultSteps(fault, phase.validReply)]);
  const conn = new SMTPConnection({
    host: server.host,
    port: server.port,
    name: "client.example.test",
    ...(needsTimeout(fault) ? SHORT_TIMEOUTS : LONG_TIMEOUTS),
    ...phase.options,
  });
  const errorEvents: unknown[] = [];
  if (withErrorListener) conn.on("error", (err) => errorEvents.push(err));
  let ends = 0;
  const ended = new Promise<void>((resolve) => conn.on("end", () => (ends++, resolve())));
  const unhandledBefore = unhandled.events.length;
  try {
    const ops = await settlesWithin(phase.start(conn), HANG_MS, `${where}: reaching the phase`);
    const results = await settlesWithin(Promise.all(ops.map((op) => op.settled)), HANG_MS, `${where}: every operation settling`);
    await settlesWithin(ended, HANG_MS, `${where}: the end event`);
    // Give a double callback or a second event the chance to show up.
    await new Promise((resolve) => setTimeout(resolve, 5));

    results.forEach((result, i) => {
      const op = ops[i]!;
      const label = `${where}: ${op.label}`;
      assert.is(op.count(), 1, `${label} settled exactly once`);
      const isFirst = i === 0;
      if (isFirst && expectation.code === "resolves") {
        assert.ok(result.ok, `${label} resolves, got ${String(result.error)}`);
        return;
      }
      if (result.ok) {
        assert.ok(isFirst && expectation.firstMayResolve, `${label} must fail, but it succeeded`);
        return;
      }
      assertSMTPError(result.error, label);
      const err = result.error as SMTPError;
      const wanted = isFirst ? expectation.code : (expectation.queuedCode ?? (expectation.code === "resolves" ? undefined : expectation.code));
      if (wanted) assert.is(err.code, wanted, `${label}: code (message: ${err.message})`);
      // A reply nobody asked for answers no command: it may be charged to the connection.
      const command = fault === "reply nobody asked for" ? new RegExp(`${phase.command.source}|^CONN$`) : phase.command;
      if (isFirst) {
        assert.ok(command.test(err.command!), `${label}: command ${err.command} should match ${command} (${err.code}: ${err.message})`);
        if (expectation.responseCode !== undefined) assert.is(err.responseCode, expectation.responseCode, `${label}: responseCode`);
      }
      if (op.mustBeDestroyed) assert.ok(op.mustBeDestroyed.destroyed, `${label}: its stream is destroyed, not left paused`);
    });

    assert.is(ends, 1, `${where}: end is emitted once`);
    assert.ok(errorEvents.length <= 1, `${where}: error is emitted at most once, got ${errorEvents.length}`);
    for (const err of errorEvents) assertSMTPError(err, `${where}: error event`);
    assert.is(unhandled.events.length, unhandledBefore, `${where}: nothing unhandled`);

    const connection = server.connections[0];
    if (connection && phase.partialBody && ctx.bodyStart !== undefined) {
      const body = connection.received.subarray(ctx.bodyStart);
      assert.not.ok(body.includes("\r\n.\r\n") || body.subarray(0, 3).toString() === ".\r\n", `${where}: a cut body is never terminated`);
    }
    server.assertNoScriptErrors();
    return connection!;
  } finally {
    conn.close();
    await server.close();
    await assertNothingOpen(where);
  }
}

/** Every fault a phase meets. */
export function faultsFor(phase: Phase): FaultName[] {
  return FAULT_NAMES.filter((fault) => !phase.skip?.includes(fault));
}
