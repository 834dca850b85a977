/**
 * Faults of the message source rather than the server (issue 4): a source that errors
 * mid-message, is destroyed, closes before the send's turn, or emits chunks that are not
 * bytes; through send(envelope, readable) and through pipeline(source, createSendStream()).
 * In every case the partial message is never terminated, the source is destroyed rather
 * than left paused, the connection never stays in DATA mode, and each call settles once.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SMTPConnection, SMTPError } from "../../lib/index.js";
import { acceptEnvelope, acceptPipelinedEnvelope, greetAndEhlo, startFaultServer, type FaultConnection, type Step } from "../helpers/fault-server.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";
import { ENVELOPE, HANG_MS, MESSAGE, assertNothingOpen, assertSMTPError } from "./harness.js";

const unhandled = trackUnhandled();
const LINE = "y".repeat(510) + "\r\n";

/** How the source misbehaves once the server has `afterBytes` body bytes (0: at once). */
interface SourceFault {
  name: string;
  /** Body bytes the server waits for before the source fails; -1: it fails at once, before the 354. */
  afterBytes: number;
  /** Makes the source (already holding `afterBytes` bytes of lines). */
  make(): Readable;
  fail(source: Readable): void;
  /** What send() rejects with. */
  message: RegExp;
  /**
   * A source that failed locally (disk, object store) may work on a retry; one that emits
   * something other than bytes is a bug in the caller's code and will not.
   */
  temporary: boolean;
}

const SOURCE_FAULTS: SourceFault[] = [
  {
    name: "errors mid-message",
    afterBytes: 3 * LINE.length,
    make: () => lines(3),
    fail: (source) => source.destroy(new Error("disk read failed")),
    message: /disk read failed/,
    temporary: true,
  },
  {
    name: "is destroyed mid-message",
    afterBytes: 3 * LINE.length,
    make: () => lines(3),
    fail: (source) => source.destroy(),
    message: /closed before it ended|destroyed|premature/i,
    temporary: true,
  },
  {
    name: "ends early, closing without 'end' while the envelope is still in flight",
    afterBytes: -1,
    make: () => lines(0),
    fail: (source) => source.destroy(),
    message: /closed before it ended|destroyed|premature/i,
    temporary: true,
  },
  {
    name: "emits an object instead of bytes",
    afterBytes: 3 * LINE.length,
    make: () => {
      const source = new PassThrough({ objectMode: true });
      for (let i = 0; i < 3; i++) source.write(Buffer.from(LINE));
      return source;
    },
    fail: (source) => void (source as PassThrough).write({ not: "bytes" }),
    message: /must be Buffer, Uint8Array or string, got object/,
    temporary: false,
  },
  {
    name: "emits a number instead of bytes",
    afterBytes: 3 * LINE.length,
    make: () => {
      const source = new PassThrough({ objectMode: true });
      for (let i = 0; i < 3; i++) source.write(Buffer.from(LINE));
      return source;
    },
    fail: (source) => void (source as PassThrough).write(42),
    message: /got number/,
    temporary: false,
  },
];

function lines(count: number): PassThrough {
  const source = new PassThrough();
  for (let i = 0; i < count; i++) source.write(LINE);
  return source;
}

/** Greets, accepts one envelope, waits for `bytes` body bytes, signals, then reads on (the body never ends). */
function script(bytes: number, arrived: () => void): Step[] {
  let bodyStart = 0;
  return [
    ...greetAndEhlo(["PIPELINING"]),
    ...acceptEnvelope(1),
    { call: (c) => void (bodyStart = c.received.length) },
    {
      call: async (c) => {
        while (c.received.length - bodyStart < bytes && !c.closed) await new Promise((resolve) => setTimeout(resolve, 2));
        arrived();
      },
    },
    { expectData: true },
    { send: "250 2.0.0 Queued: must never happen\r\n" },
  ];
}

function assertNoTerminator(c: FaultConnection, where: string): void {
  assert.is(c.data.length, 1, `${where}: the partial body is on record`);
  const body = c.data[0]!;
  assert.ok(body.length > 0 || !where.includes("mid-message"), `${where}: some of the body arrived`);
  assert.not.ok(body.includes("\r\n.\r\n") || body.toString().startsWith(".\r\n"), `${where}: the partial body was never terminated`);
  assert.not.ok(c.received.toString().includes("must never happen"), `${where}: no final reply was asked for`);
}

for (const fault of SOURCE_FAULTS) {
  for (const api of ["send(envelope, readable)", "pipeline(readable, createSendStream())", "readable.pipe(createSendStream())"] as const) {
    test(`a source that ${fault.name}, through ${api}: ESTREAM, source destroyed, no terminator, the connection closes`, async () => {
      let arrived!: () => void;
      const bytesArrived = new Promise<void>((resolve) => (arrived = resolve));
      const server = await startFaultServer(script(Math.max(0, fault.afterBytes), arrived));
      const conn = new SMTPConnection({ host: server.host, port: server.port });
      const errorEvents: unknown[] = [];
      conn.on("error", (err) => errorEvents.push(err));
      let ends = 0;
      conn.on("end", () => ends++);
      await conn.connect();

      const source = fault.make();
      let outcome: Promise<unknown>;
      let out: ReturnType<SMTPConnection["createSendStream"]> | undefined;
      if (api === "send(envelope, readable)") outcome = conn.send(ENVELOPE, source);
      else if (api === "pipeline(readable, createSendStream())") {
        out = conn.createSendStream(ENVELOPE);
        outcome = pipeline(source, out);
      } else {
        // Plain pipe() forwards no errors; the SendStream watches what is piped into it.
        const stream = conn.createSendStream(ENVELOPE);
        out = stream;
        outcome = new Promise((resolve, reject) => {
          stream.once("error", reject);
          stream.once("finish", resolve);
        });
        source.on("error", () => {});
        source.pipe(stream);
      }
      const settled = outcome.then(() => "resolved", (err: unknown) => err);
      const queued = conn.send(ENVELOPE, MESSAGE).then(() => "resolved", (err: unknown) => err);
      if (fault.afterBytes >= 0) await settlesWithin(bytesArrived, HANG_MS, "the first body bytes");
      fault.fail(source);

      const err = await settlesWithin(settled, HANG_MS, api);
      assert.ok(err instanceof Error, `${api} rejects`);
      if (api !== "pipeline(readable, createSendStream())") {
        assertSMTPError(err, api);
        assert.is((err as SMTPError).code, "ESTREAM");
        assert.is((err as SMTPError).command, "DATA");
        assert.is((err as SMTPError).temporary, fault.temporary);
        assert.is((err as SMTPError).deliveryState, "not-sent", "no terminator left: the server cannot have it");
        assert.match((err as SMTPError).message, fault.message);
      } else {
        assert.ok(out!.destroyed, "the SendStream is destroyed");
      }
      // With plain pipe() the caller owns the source; the other two destroy it.
      if (api !== "readable.pipe(createSendStream())") assert.ok(source.destroyed, "the source is destroyed, not left paused");

      // The sends behind it lose the connection, not their message: temporary ECONNECTION.
      const queuedErr = await settlesWithin(queued, HANG_MS, "the queued send");
      assertSMTPError(queuedErr, "queued send");
      assert.is((queuedErr as SMTPError).code, "ECONNECTION");
      assert.is((queuedErr as SMTPError).temporary, true);
      assert.is((queuedErr as SMTPError).deliveryState, "not-sent");
      // Never stuck in DATA mode: a later call fails at once.
      const later = await settlesWithin(conn.send(ENVELOPE, MESSAGE).then(() => "resolved", (e: unknown) => e), HANG_MS, "a later send");
      assertSMTPError(later, "later send");
      assert.is((later as SMTPError).code, "ECONNECTION");

      const c = await server.connection();
      await c.done;
      assertNoTerminator(c, fault.name);
      await new Promise((resolve) => setImmediate(resolve));
      assert.is(ends, 1, "end once");
      assert.equal(errorEvents, [], "the failure is reported to the send, not as an error event");
      await server.close();
      await assertNothingOpen(fault.name);
    });
  }
}

test("a source destroyed while its send waits in the queue: ESTREAM, nothing written for it, the connection goes on", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    { expect: "RSET" },
    { call: () => released },
    { send: "250 2.0.0 Ok\r\n" },
    ...acceptPipelinedEnvelope(),
    { expectData: true },
    { send: "250 2.0.0 Queued\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  const conn = new SMTPConnection({ host: server.host, port: server.port });
  await conn.connect();
  const reset = conn.reset();
  const source = lines(2);
  const doomed = conn.send(ENVELOPE, source).then(() => "resolved", (e: unknown) => e);
  const next = conn.send(ENVELOPE, MESSAGE);
  source.destroy(new Error("upload aborted"));
  const err = await settlesWithin(doomed, HANG_MS, "the doomed send");
  assertSMTPError(err, "doomed send");
  assert.is((err as SMTPError).code, "ESTREAM");
  release();
  assert.is(await reset, true);
  const info = await settlesWithin(next, HANG_MS, "the next send");
  assert.equal(info.accepted, ENVELOPE.to);
  await conn.quit();
  const c = await server.connection();
  assert.equal(c.data.map(String), [MESSAGE + ".\r\n"]);
  assert.is(c.commands.filter((line) => line.startsWith("MAIL")).length, 1, "no envelope for the doomed send");
  server.assertNoScriptErrors();
  await server.close();
  await assertNothingOpen("queued source");
});

test("an envelope refused with a Readable message: EENVELOPE, the source is destroyed, the connection stays usable", async () => {
  const server = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    { expect: /^MAIL FROM/ },
    { expect: /^RCPT TO/ },
    { expect: "DATA" },
    { send: "250 ok\r\n550 5.1.1 No such user\r\n554 5.5.1 No valid recipients\r\n" },
    { expect: "RSET" },
    { send: "250 ok\r\n" },
    ...acceptPipelinedEnvelope(),
    { expectData: true },
    { send: "250 2.0.0 Queued\r\n" },
  ]);
  const conn = new SMTPConnection({ host: server.host, port: server.port });
  await conn.connect();
  const source = lines(100);
  const err = (await conn.send(ENVELOPE, source).catch((e: unknown) => e)) as SMTPError;
  assertSMTPError(err, "refused send");
  assert.is(err.code, "EENVELOPE");
  assert.ok(source.destroyed, "the source is destroyed, not left paused");
  assert.equal((await conn.send(ENVELOPE, MESSAGE)).accepted, ENVELOPE.to);
  conn.close();
  server.assertNoScriptErrors();
  await server.close();
  await assertNothingOpen("refused envelope");
});

test("leaves no socket, timer or rejection behind", async () => {
  unhandled.assertNone();
  await assertNoLeaks();
});

test.run();
