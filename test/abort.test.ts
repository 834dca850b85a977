/**
 * AbortSignal on connect, login, send and createSendStream (issue 10, item 7), at every
 * phase, against real servers: what the server received (nothing half-sent, never a
 * terminator after an abort), whether the connection goes on, that each call settles
 * once, and that nothing stays open and no listener stays on the signal.
 *
 * The scripted servers hold their reply at the phase under test (a gate) until the test
 * has aborted, so each abort lands exactly where the title says.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { getEventListeners } from "node:events";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SMTPConnection, SMTPError, type SendInfo, type SMTPConnectionOptions, type SendStream } from "../lib/index.js";
import { acceptEnvelope, greetAndEhlo, startFaultServer, type FaultConnection, type FaultServer, type Step } from "./helpers/fault-server.js";
import { startServer } from "./helpers/server.js";
import { nodeCallback, settlesWithin } from "./helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";
import { assertNothingOpen, assertSMTPError } from "./faults/ops.js";

const unhandled = trackUnhandled();
const HANG_MS = 5000;
const env = (n: number) => ({ from: "sender@example.test", to: [`rcpt${n}@example.test`] });
const MESSAGE = "Subject: abort test\r\n\r\nbody\r\n";
const USERS = { user: "secret" };

/** A script step that waits until the test opens it; `reached` resolves when the script gets there. */
function gate(): { step: Step; reached: Promise<void>; open(): void } {
  let open!: () => void;
  let arrive!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  return { step: { call: () => (arrive(), opened) }, reached, open };
}

/** Settles to the value or the error, so a test can look at either. */
const outcome = <T>(promise: Promise<T>, what: string): Promise<T | SMTPError> => settlesWithin(promise.then((v) => v, (err: SMTPError) => err), HANG_MS, what);

/** The error of an aborted operation: ECONNECTION, temporary, the signal's reason as cause; for a send, not sent. */
function assertAborted(err: unknown, reason: unknown, command: RegExp, where: string): asserts err is SMTPError {
  assertSMTPError(err, where);
  assert.is(err.code, "ECONNECTION", `${where}: code`);
  assert.match(err.message, /was aborted: /, `${where}: message`);
  assert.is(err.cause, reason, `${where}: the signal's reason is the cause`);
  assert.is(err.temporary, true, `${where}: temporary`);
  const isSend = /^(send|createSendStream)\(\)/.test(err.message);
  assert.is(err.deliveryState, isSend ? "not-sent" : undefined, `${where}: deliveryState (send errors only)`);
  assert.match(err.command!, command, `${where}: command`);
}

/**
 * Starts `send` with a fresh signal and aborts it once the script reaches `held`; gives
 * back the reason and the send's outcome (not awaited: a held script may have to be
 * opened first).
 */
async function abortWhenHeld<T>(held: { reached: Promise<void> }, what: string, send: (signal: AbortSignal) => Promise<T>) {
  const controller = new AbortController();
  const result = outcome(send(controller.signal), what);
  await settlesWithin(held.reached, HANG_MS, `${what}: the script reaching the abort point`);
  const reason = new Error(`${what} aborted by the test`);
  controller.abort(reason);
  return { reason, result };
}

/** `err`, its cause, the cause's cause... */
function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let at = err; at !== undefined && chain.length < 10; at = (at as Error).cause) chain.push(at);
  return chain;
}

/** Ways to send one message with a signal: the Promise, the callback, and the stream forms. */
const SEND_APIS = {
  "send(string)": (conn: SMTPConnection, n: number, signal: AbortSignal) => conn.send(env(n), MESSAGE, { signal }),
  "send(Readable, cb)": (conn: SMTPConnection, n: number, signal: AbortSignal) => {
    const cb = nodeCallback<SendInfo>(`send(Readable, cb) #${n}`);
    conn.send(env(n), Readable.from([Buffer.from(MESSAGE)]), { signal }, cb);
    return cb.result.finally(() => cb.assertCalledOnce());
  },
  "pipeline(createSendStream())": async (conn: SMTPConnection, n: number, signal: AbortSignal) => {
    const stream = conn.createSendStream(env(n), { signal });
    await pipeline(Readable.from([Buffer.from(MESSAGE)]), stream);
    return stream.info!;
  },
} satisfies Record<string, (conn: SMTPConnection, n: number, signal: AbortSignal) => Promise<SendInfo>>;

async function connected(port: number, options: SMTPConnectionOptions = {}): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: "127.0.0.1", port, name: "client.example.test", ...options });
  await conn.connect();
  return conn;
}

/** Counts `end` and `error` events; `ended` resolves on the first `end`. */
function watchEvents(conn: SMTPConnection) {
  const seen = { ends: 0, errors: [] as unknown[] };
  const ended = new Promise<void>((resolve) => conn.on("end", () => (seen.ends++, resolve())));
  conn.on("error", (err) => seen.errors.push(err));
  return { seen, ended };
}

test("an already-aborted signal rejects connect, login, send and createSendStream before anything is written", async () => {
  const server = await startServer({ users: USERS });
  let connections = 0;
  server.server.server.on("connection", () => connections++);
  const conn = new SMTPConnection({ host: "127.0.0.1", port: server.port });
  const reason = new Error("gave up");
  const signal = AbortSignal.abort(reason);

  assertAborted(await outcome(conn.connect({ signal }), "connect"), reason, /^API$/, "connect({ signal })");
  const connectCb = nodeCallback<void>("connect({ signal }, cb)");
  conn.connect({ signal }, connectCb);
  assertAborted(await outcome(connectCb.result, "connect cb"), reason, /^API$/, "connect({ signal }, cb)");
  connectCb.assertCalledOnce();
  assert.is(connections, 0, "no connection was opened");
  await conn.connect();

  assertAborted(await outcome(conn.login({ user: "user", pass: "secret" }, { signal }), "login"), reason, /^API$/, "login");
  for (const [api, send] of Object.entries(SEND_APIS)) assertAborted(await outcome(send(conn, 1, signal), api), reason, /^API$/, api);
  // Nodemailer's callback last, the options after it: the signal is not ignored.
  const cbFirst = nodeCallback<SendInfo>("send(env, msg, cb, { signal })");
  (conn.send as (...args: unknown[]) => void)(env(1), MESSAGE, cbFirst, { signal });
  assertAborted(await outcome(cbFirst.result, "callback first"), reason, /^API$/, "send(env, msg, cb, { signal })");
  const byText = await outcome(conn.send(env(1), MESSAGE, { signal: AbortSignal.abort("shutting down") }), "a text reason");
  assertAborted(byText, "shutting down", /^API$/, "a text reason");
  assert.match(byText.message, /^send\(\) was aborted: shutting down$/);
  const source = new PassThrough();
  assertAborted(await outcome(conn.send(env(1), source, { signal }), "send(source)"), reason, /^API$/, "send(source)");
  assert.ok(source.destroyed, "the source is destroyed, as after any failed send");

  // The connection was never disturbed: a send without a signal goes through.
  await conn.send(env(2), MESSAGE);
  assert.is(server.messages.length, 1);
  assert.equal(server.messages[0]!.to, ["rcpt2@example.test"]);
  assert.not.ok(server.commands.some((line) => /^AUTH|rcpt1@/.test(line)), `nothing was written for an aborted call: ${server.commands.join(" | ")}`);
  assert.is(getEventListeners(signal, "abort").length, 0, "no listener on the signal");
  await conn.quit();
  await server.close();
});

test("a signal that is not an AbortSignal is refused, not ignored", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const controller = new AbortController();
  const bad = { signal: controller as unknown as AbortSignal };
  const err = await outcome(conn.send(env(1), MESSAGE, bad), "send");
  assertSMTPError(err, "send with a controller as signal");
  assert.match(err.message, /must be an AbortSignal/);
  const stream = conn.createSendStream(env(1), bad);
  const streamErr = await outcome(new Promise((_, reject) => stream.once("error", reject)), "stream");
  assert.match((streamErr as Error).message, /must be an AbortSignal/);
  await conn.send(env(2), MESSAGE);
  assert.equal(server.messages.map((m) => m.to[0]), ["rcpt2@example.test"]);
  await conn.quit();
  await server.close();
});

test("operations aborted while queued reject at once, write nothing, and the operations behind them still run", async () => {
  const server = await startServer({ users: USERS });
  const conn = await connected(server.port);
  // The first send holds the connection: its body is not finished.
  const first = conn.createSendStream(env(1));
  first.write("Subject: first\r\n\r\n");
  const firstDone = new Promise<void>((resolve, reject) => first.once("finish", resolve).once("error", reject));
  const controller = new AbortController();
  const { signal } = controller;
  const aborted = Object.entries(SEND_APIS).map(([api, send], i) => ({ api, result: outcome(send(conn, 10 + i, signal), api) }));
  const login = outcome(conn.login({ user: "user", pass: "secret" }, { signal }), "login");
  const behind = conn.send(env(2), MESSAGE);
  assert.is(getEventListeners(signal, "abort").length, 1, "one listener on the signal, however many operations watch it");

  const reason = new Error("shutting down");
  controller.abort(reason);
  for (const { api, result } of aborted) assertAborted(await result, reason, /^API$/, api);
  assertAborted(await login, reason, /^API$/, "login");
  assert.not.ok(first.writableFinished, "they rejected while the first send still held the connection");

  first.end("first body\r\n");
  await settlesWithin(firstDone, HANG_MS, "the first send");
  await settlesWithin(behind, HANG_MS, "the send behind the aborted ones");
  assert.equal(server.messages.map((m) => m.to[0]), ["rcpt1@example.test", "rcpt2@example.test"]);
  assert.not.ok(server.commands.some((line) => /^AUTH|rcpt1\d@/.test(line)), `nothing was written for them: ${server.commands.join(" | ")}`);
  assert.is(conn.authenticated, false);
  assert.is(getEventListeners(signal, "abort").length, 0);
  await conn.quit();
  await server.close();
});

/** The messages the fault server read bodies for, and what followed each DATA line. */
function afterData(c: FaultConnection): string {
  const text = c.received.toString("latin1");
  const at = text.indexOf("DATA\r\n");
  return at < 0 ? "" : text.slice(at + "DATA\r\n".length);
}

/** The end of a script whose connection goes on after an abort: the next send is delivered, then QUIT. */
const NEXT_SEND_DELIVERED: Step[] = [...acceptEnvelope(1), { expectData: true }, { send: "250 2.0.0 Queued\r\n" }, { expect: "QUIT" }, { send: "221 Bye\r\n" }];

/** Sends the next message, opens `held`, checks that message was delivered, quits; gives what the server read. */
async function nextSendDelivered(conn: SMTPConnection, held: { open(): void }, server: FaultServer): Promise<FaultConnection> {
  const next = conn.send(env(2), MESSAGE);
  held.open();
  const info = await settlesWithin(next, HANG_MS, "the next send");
  assert.is(info.response, "250 2.0.0 Queued");
  await conn.quit();
  const c = await server.connection();
  await c.done;
  server.assertNoScriptErrors();
  return c;
}

for (const [api, send] of Object.entries(SEND_APIS)) {
  test(`${api} aborted while its MAIL FROM waits (no PIPELINING): RSET, the connection goes on, nothing delivered`, async () => {
    const held = gate();
    const server = await startFaultServer([
      ...greetAndEhlo(["SIZE 1000000"]),
      { expect: /^MAIL FROM:<sender@/ },
      held.step,
      { send: "250 2.1.0 Ok\r\n" },
      { expect: "RSET" },
      { send: "250 2.0.0 Reset\r\n" },
      ...NEXT_SEND_DELIVERED,
    ]);
    const conn = await connected(server.port);
    const events = watchEvents(conn);
    const { reason, result } = await abortWhenHeld(held, api, (signal) => send(conn, 1, signal));
    // Rejected at once: the server has not answered MAIL yet.
    assertAborted(await result, reason, /^(MAIL FROM|API)$/, api);
    const c = await nextSendDelivered(conn, held, server);
    assert.match(c.commands[1]!, /^MAIL FROM:<sender@/);
    assert.is(c.commands[2], "RSET", "RSET, not RCPT, follows the aborted MAIL FROM");
    assert.not.ok(c.commands.some((line) => line.includes("rcpt1@")), "no RCPT for the aborted send");
    assert.is(c.data.length, 1, "one body: the next send's");
    assert.equal(events.seen.errors, []);
    await server.close();
    await assertNothingOpen(api);
  });
}

for (const [api, send] of Object.entries(SEND_APIS)) {
  test(`${api} aborted while its leading RSET waits (no PIPELINING): that RSET is the only one, and the next send starts with MAIL`, async () => {
    const held = gate();
    const server = await startFaultServer([
      ...greetAndEhlo(["SIZE 1000000"]),
      { expect: /^MAIL FROM:<refused@/ },
      { send: "550 5.7.1 Sender refused\r\n" },
      { expect: "RSET" },
      held.step,
      { send: "250 2.0.0 Reset\r\n" },
      ...NEXT_SEND_DELIVERED,
    ]);
    const conn = await connected(server.port);
    const refused = await outcome(conn.send({ from: "refused@example.test", to: "rcpt0@example.test" }, MESSAGE), "the refused send");
    assertSMTPError(refused, "the refused send");
    const { reason, result } = await abortWhenHeld(held, api, (signal) => send(conn, 1, signal));
    assertAborted(await result, reason, /^(RSET|API)$/, api);
    const c = await nextSendDelivered(conn, held, server);
    assert.is(c.commands.filter((line) => line === "RSET").length, 1, c.commands.join("\n"));
    assert.not.ok(c.commands.some((line) => line.includes("rcpt1@")), "nothing of the aborted send");
    await server.close();
    await assertNothingOpen(api);
  });
}

test("aborted while DATA waits (no PIPELINING): the 354 leaves closing as the only way out, without a byte of body", async () => {
  const held = gate();
  const server = await startFaultServer([...greetAndEhlo(), ...acceptEnvelope(1).slice(0, -1), held.step, { send: "354 go ahead\r\n" }, { call: (c) => c.whenClosed }]);
  const conn = await connected(server.port);
  const events = watchEvents(conn);
  const queued = nodeCallback<SendInfo>("queued send");
  const { reason, result } = await abortWhenHeld(held, "send", (signal) => {
    const sending = conn.send(env(1), MESSAGE, { signal });
    conn.send(env(2), MESSAGE, queued);
    return sending;
  });
  assertAborted(await result, reason, /^DATA$/, "send");
  held.open();
  const queuedErr = await outcome(queued.result, "queued send");
  assertSMTPError(queuedErr, "queued send");
  assert.is(queuedErr.code, "ECONNECTION");
  assert.is(queuedErr.temporary, true);
  await settlesWithin(events.ended, HANG_MS, "end");
  const c = await server.connection();
  await c.whenClosed;
  assert.is(afterData(c), "", "nothing after DATA: no body, no terminator");
  queued.assertCalledOnce();
  assert.is(events.seen.ends, 1);
  assert.equal(events.seen.errors, [], "the abort is reported to the send, not as an error event");
  await server.close();
  await assertNothingOpen("DATA abort");
});

test("aborted during a pipelined MAIL, RCPT, DATA group: closed after the 354, nothing after DATA", async () => {
  const held = gate();
  const server = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    { expect: /^MAIL FROM/ },
    { expect: /^RCPT TO/ },
    { expect: "DATA" },
    held.step,
    { send: "250 ok\r\n250 ok\r\n354 go\r\n" },
    { call: (c) => c.whenClosed },
  ]);
  const conn = await connected(server.port);
  const events = watchEvents(conn);
  const controller = new AbortController();
  const stream = conn.createSendStream(env(1), { signal: controller.signal });
  stream.write("Subject: held\r\n\r\nheld before the 354\r\n");
  const result = outcome(new Promise((_, reject) => stream.once("error", reject)), "stream");
  await settlesWithin(held.reached, HANG_MS, "the group on the wire");
  const reason = new Error("deadline");
  controller.abort(reason);
  assertAborted(await result, reason, /^(MAIL FROM|DATA)$/, "stream");
  held.open();
  await settlesWithin(events.ended, HANG_MS, "end");
  const c = await server.connection();
  await c.whenClosed;
  assert.is(afterData(c), "", "the held body never went out");
  await server.close();
  await assertNothingOpen("pipelined abort");
});

test("aborted during a BDAT envelope, before a chunk left: RSET, and the connection goes on", async () => {
  const held = gate();
  const server = await startFaultServer([
    ...greetAndEhlo(["PIPELINING", "CHUNKING"]),
    { expect: /^MAIL FROM/ },
    { expect: /^RCPT TO/ },
    held.step,
    { send: "250 ok\r\n250 ok\r\n" },
    { expect: "RSET" },
    { send: "250 2.0.0 Reset\r\n" },
    { expect: "RSET" },
    { send: "250 2.0.0 Reset again\r\n" },
  ]);
  const conn = await connected(server.port, { chunking: true });
  // Less than a chunk and not ended: nothing of the body can leave with the envelope.
  const source = new PassThrough();
  source.write("Subject: still coming\r\n\r\n");
  const { reason, result } = await abortWhenHeld(held, "send", (signal) => conn.send(env(1), source, { signal }));
  assertAborted(await result, reason, /^(MAIL FROM|RCPT TO)$/, "send");
  const reset = conn.reset();
  held.open();
  assert.is(await settlesWithin(reset, HANG_MS, "reset()"), true, "the session still answers");
  const c = await server.connection();
  assert.not.ok(c.commands.some((line) => line.startsWith("BDAT")), "no chunk was sent");
  server.assertNoScriptErrors();
  conn.close();
  await server.close();
  await assertNothingOpen("BDAT envelope abort");
});

test("BDAT: once a chunk left with the envelope, an abort closes the connection and BDAT LAST never follows", async () => {
  const held = gate();
  const server = await startFaultServer([
    ...greetAndEhlo(["PIPELINING", "CHUNKING"]),
    { expect: /^MAIL FROM/ },
    { expect: /^RCPT TO/ },
    { expect: "BDAT 16" },
    { expectBytes: 16 },
    held.step,
    { send: "250 ok\r\n250 ok\r\n250 chunk ok\r\n" },
    { call: (c) => c.whenClosed },
  ]);
  const conn = await connected(server.port, { chunking: true, bdatChunkSize: 16 });
  const source = new PassThrough();
  source.write("Subject: 16 + 4\r\n\r\nmore");
  const { reason, result } = await abortWhenHeld(held, "send", (signal) => conn.send(env(1), source, { signal }));
  assertAborted(await result, reason, /^(MAIL FROM|RCPT TO|BDAT)$/, "send");
  held.open();
  const c = await server.connection();
  await settlesWithin(c.whenClosed, HANG_MS, "the connection closed");
  assert.not.ok(c.commands.some((line) => line.includes("LAST")), `no last chunk: ${c.commands.join(" | ")}`);
  server.assertNoScriptErrors();
  await server.close();
  await assertNothingOpen("BDAT mid-body abort");
});

test("BDAT: a small whole message leaves with its envelope as BDAT n LAST, so an abort after that is ignored", async () => {
  const held = gate();
  const server = await startFaultServer([
    ...greetAndEhlo(["PIPELINING", "CHUNKING"]),
    { expect: /^MAIL FROM/ },
    { expect: /^RCPT TO/ },
    { expect: `BDAT ${MESSAGE.length} LAST` },
    { expectBytes: MESSAGE.length },
    held.step,
    { send: "250 ok\r\n250 ok\r\n250 2.0.0 Queued\r\n" },
  ]);
  const conn = await connected(server.port, { chunking: true });
  const { result } = await abortWhenHeld(held, "send", (signal) => conn.send(env(1), MESSAGE, { signal }));
  held.open();
  const info = await result;
  assert.not.instance(info, Error, String(info));
  assert.is((info as SendInfo).response, "250 2.0.0 Queued");
  server.assertNoScriptErrors();
  conn.close();
  await server.close();
  await assertNothingOpen("BDAT LAST abort");
});

test("aborted mid-body: the connection is closed without the terminator and the server delivers nothing", async () => {
  let flowing!: () => void;
  const bodyFlowing = new Promise<void>((resolve) => (flowing = resolve));
  const server = await startServer({ onChunk: () => flowing() });
  const conn = await connected(server.port);
  const events = watchEvents(conn);
  const controller = new AbortController();
  const source = new PassThrough();
  const cb = nodeCallback<SendInfo>("send(source, { signal }, cb)");
  conn.send(env(1), source, { signal: controller.signal }, cb);
  const queued = outcome(conn.send(env(2), MESSAGE), "queued send");
  source.write("Subject: half\r\n\r\n" + "x".repeat(100_000) + "\r\n");
  await settlesWithin(bodyFlowing, HANG_MS, "the body reaching the server");
  const reason = new Error("upload cancelled");
  controller.abort(reason);
  assertAborted(await outcome(cb.result, "send"), reason, /^DATA$/, "send");
  assert.ok(source.destroyed, "the source is destroyed");
  const queuedErr = await queued;
  assertSMTPError(queuedErr, "queued");
  assert.is(queuedErr.code, "ECONNECTION");
  await settlesWithin(events.ended, HANG_MS, "end");
  // Give the server time to see the close and (it must not) finish a message.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(server.messages, [], "no message, whole or half, reached the server");
  cb.assertCalledOnce();
  assert.equal(events.seen.errors, []);
  await server.close();
  await assertNothingOpen("mid-body abort");
});

test("aborted mid-body (fault server): what arrived has no terminator", async () => {
  const bodyFlowing = gate();
  const server = await startFaultServer([...greetAndEhlo(["PIPELINING"]), { expect: /^MAIL/ }, { expect: /^RCPT/ }, { expect: "DATA" }, { send: "250 ok\r\n250 ok\r\n354 go\r\n" }, bodyFlowing.step, { call: (c) => c.whenClosed }]);
  const conn = await connected(server.port);
  const controller = new AbortController();
  const stream = conn.createSendStream(env(1), { signal: controller.signal });
  // A source that has not ended: the body is still in progress when the abort comes.
  const source = new PassThrough();
  source.write("Subject: x\r\n\r\nline one\r\n");
  const result = outcome(pipeline(source, stream), "pipeline");
  await settlesWithin(bodyFlowing.reached, HANG_MS, "the 354 sent");
  const c = await server.connection();
  while (!afterData(c).includes("line one")) await new Promise((resolve) => setTimeout(resolve, 5));
  const reason = new Error("stop");
  controller.abort(reason);
  assert.instance(await result, Error);
  assert.ok(stream.destroyed);
  await c.whenClosed;
  assert.not.ok(afterData(c).includes("\r\n.\r\n"), "no terminator");
  bodyFlowing.open();
  await server.close();
  await assertNothingOpen("mid-body abort, fault server");
});

for (const [api, send] of Object.entries(SEND_APIS)) {
  test(`${api} aborted after its end of data left: the send settles with the server's final reply`, async () => {
    const held = gate();
    const server = await startFaultServer([...greetAndEhlo(), ...acceptEnvelope(1), { expectData: true }, held.step, { send: "250 2.0.0 Queued as 42\r\n" }]);
    const conn = await connected(server.port);
    let used!: AbortSignal;
    const { result } = await abortWhenHeld(held, api, (signal) => send(conn, 1, (used = signal)));
    held.open();
    const info = await result;
    assert.not.instance(info, Error, `${api} resolves: ${String(info)}`);
    assert.is((info as SendInfo).response, "250 2.0.0 Queued as 42");
    assert.is(getEventListeners(used, "abort").length, 0);
    conn.close();
    await server.close();
    await assertNothingOpen(api);
  });
}

/** Phases of connect() the fault server can hold it in. */
const CONNECT_PHASES: { name: string; steps: Step[]; options?: SMTPConnectionOptions; command: RegExp }[] = [
  { name: "before the greeting", steps: [], command: /^CONN$/ },
  { name: "during EHLO", steps: [{ send: "220 fault.example.test ESMTP\r\n" }, { expect: /^EHLO / }], command: /^EHLO$/ },
  {
    name: "during the TLS handshake after STARTTLS",
    steps: [...greetAndEhlo(["STARTTLS"]), { expect: "STARTTLS" }, { send: "220 2.0.0 Ready\r\n" }],
    options: { requireTLS: true },
    command: /^(CONN|STARTTLS)$/,
  },
  { name: "during the implicit TLS handshake", steps: [], options: { secure: true }, command: /^CONN$/ },
];

for (const phase of CONNECT_PHASES) {
  for (const withErrorListener of [true, false]) {
    test(`connect() aborted ${phase.name}${withErrorListener ? "" : " (no error listener)"}: the socket is closed, operations queued behind fail, nothing stays open`, async () => {
      const held = gate();
      const server = await startFaultServer([...phase.steps, held.step, { call: (c) => c.whenClosed }]);
      const conn = new SMTPConnection({ host: "127.0.0.1", port: server.port, name: "client.example.test", ...phase.options });
      let ends = 0;
      const errors: unknown[] = [];
      conn.on("end", () => ends++);
      if (withErrorListener) conn.on("error", (err) => errors.push(err));
      const controller = new AbortController();
      const connecting = nodeCallback<void>("connect({ signal }, cb)");
      conn.connect({ signal: controller.signal }, connecting);
      const queued = outcome(conn.send(env(1), MESSAGE), "queued send");
      await settlesWithin(held.reached, HANG_MS, phase.name);
      const reason = new Error("shutdown");
      controller.abort(reason);
      assertAborted(await outcome(connecting.result, "connect"), reason, phase.command, `connect() ${phase.name}`);
      const queuedErr = await queued;
      assertSMTPError(queuedErr, "queued send");
      assert.is(queuedErr.code, "ECONNECTION");
      assert.match(queuedErr.message, /Connection closed because connect\(\) was aborted/, "the queued send's error says why");
      assert.ok(causes(queuedErr).includes(reason), "the signal's reason is in its cause chain");
      assert.is(queuedErr.deliveryState, "not-sent");
      const c = await server.connection();
      await settlesWithin(c.whenClosed, HANG_MS, "the server sees the connection closed");
      held.open();
      await new Promise((resolve) => setTimeout(resolve, 5));
      connecting.assertCalledOnce();
      assert.is(ends, 1, "end once");
      assert.equal(errors, [], "no error event: connect() received the abort");
      const later = await outcome(conn.send(env(2), MESSAGE), "later send");
      assert.is((later as SMTPError).code, "ECONNECTION");
      assert.is(getEventListeners(controller.signal, "abort").length, 0);
      await server.close();
      await assertNothingOpen(phase.name);
    });
  }
}

test("login() aborted during AUTH: it rejects at once and the connection is closed (no way back out of SASL)", async () => {
  const held = gate();
  const server = await startFaultServer([...greetAndEhlo(["AUTH PLAIN"]), { expect: /^AUTH PLAIN / }, held.step, { call: (c) => c.whenClosed }]);
  const conn = await connected(server.port);
  const events = watchEvents(conn);
  const controller = new AbortController();
  const login = nodeCallback<void>("login(auth, { signal }, cb)");
  conn.login({ user: "user", pass: "secret" }, { signal: controller.signal }, login);
  const queued = outcome(conn.send(env(1), MESSAGE), "queued send");
  await settlesWithin(held.reached, HANG_MS, "AUTH on the wire");
  const reason = new Error("cancel");
  controller.abort(reason);
  assertAborted(await outcome(login.result, "login"), reason, /^AUTH PLAIN$/, "login");
  const queuedErr = await queued;
  assert.is((queuedErr as SMTPError).code, "ECONNECTION");
  const c = await server.connection();
  await settlesWithin(c.whenClosed, HANG_MS, "closed");
  held.open();
  await settlesWithin(events.ended, HANG_MS, "end");
  assert.is(conn.authenticated, false);
  login.assertCalledOnce();
  assert.equal(events.seen.errors, []);
  await server.close();
  await assertNothingOpen("login abort");
});

test("one long-lived signal for many sends: one listener while any is pending, none after, no warning, and a late abort changes nothing", async () => {
  const server = await startServer({ keepData: false });
  const conn = await connected(server.port);
  const controller = new AbortController();
  const { signal } = controller;
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on("warning", onWarning);
  try {
    const apis = Object.values(SEND_APIS);
    const sends = Array.from({ length: 150 }, (_, i) => apis[i % apis.length]!(conn, i, signal));
    assert.is(getEventListeners(signal, "abort").length, 1, "one listener for 150 pending sends");
    await settlesWithin(Promise.all(sends), 20_000, "150 queued sends");
    assert.is(getEventListeners(signal, "abort").length, 0, "none once they settled");
    for (let i = 0; i < 30; i++) {
      await SEND_APIS["send(string)"](conn, i, signal);
      assert.is(getEventListeners(signal, "abort").length, 0, `none after sequential send ${i}`);
    }
    controller.abort(new Error("late"));
    await conn.send(env(999), MESSAGE, { signal: new AbortController().signal });
    assert.is(server.messages.length, 181, "every message delivered, the connection untouched by the late abort");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(warnings.map((w) => w.message), [], "no MaxListenersExceededWarning");
  } finally {
    process.off("warning", onWarning);
  }
  await conn.quit();
  await server.close();
});

leakCheckTest(test, unhandled);
test.run();
