/**
 * The phases of the hostile-server table (issue 4): the script a well-behaved server
 * plays up to the point of the fault, and the operations that meet it there (the first
 * one in flight, the others queued behind it).
 */
import * as assert from "uvu/assert";
import { PassThrough } from "node:stream";
import type { DeliveryState, SMTPConnection, SMTPError, SMTPConnectionOptions } from "../../lib/index.js";
import { acceptEnvelope, ehloReply, greetAndEhlo, type Step } from "../helpers/fault-server.js";
import { getCerts } from "../helpers/certs.js";
import { ENVELOPE, HANG_MS, MESSAGE, callbackOp, promiseOp, streamOp, type Op } from "./ops.js";
import { needsTimeout, type Expectation, type FaultName } from "./faults.js";

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
  /**
   * The deliveryState of the first operation when it is a send that fails (default
   * "not-sent": nothing but the envelope or part of the body left). Sends queued behind it
   * never reach their end of data, so theirs is always "not-sent".
   */
  deliveryState?: DeliveryState;
  /** The body was cut: no terminator may follow `bodyStart`. */
  partialBody?: boolean;
  /** Faults that make no sense here (e.g. a reply nobody asked for before TLS). */
  skip?: FaultName[];
  /**
   * The timer that notices a silent server here: the greeting's, the TLS handshake's
   * (connectionTimeout), or by default the socket's idle timeout (socketTimeout).
   */
  timer?: "greeting" | "connection";
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
    timer: "greeting",
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
    timer: "connection",
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
    timer: "connection",
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
    // The whole message is on the wire and no verdict came: the server may have it. A 421
    // is a verdict: the server says it is closing instead of taking the message.
    deliveryState: "unknown",
    expect: (fault) => (fault === "421 then close" ? { deliveryState: "rejected" } : undefined),
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
