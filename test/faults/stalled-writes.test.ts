/**
 * A server that stops reading while the client streams a body: the client's writes back
 * up, the source is not read without bound, the socket timeout still fires (ETIMEDOUT),
 * and the source is destroyed. Also the connection timeout, and the greeting timeout with
 * a server that reads nothing at all.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable } from "node:stream";
import { SMTPConnection, type SMTPError } from "../../lib/index.js";
import { acceptEnvelope, acceptPipelinedEnvelope, greetAndEhlo, startFaultServer } from "../helpers/fault-server.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";
import { ENVELOPE, HANG_MS, assertNothingOpen, assertSMTPError } from "./harness.js";

const unhandled = trackUnhandled();

/** A source that never ends: 64 KiB chunks for as long as anyone reads, counting them. */
function endlessSource(): Readable & { produced: number } {
  const chunk = Buffer.alloc(64 * 1024, "x");
  const source = new Readable({
    read() {
      source.produced += chunk.length;
      this.push(chunk);
    },
  }) as Readable & { produced: number };
  source.produced = 0;
  return source;
}

/**
 * Bytes pulled from the source that the server never read: the kernel's socket buffers at
 * both ends (a few MiB on loopback) plus our few high-water marks. Without backpressure it
 * would be everything the source can make in the timeout, hundreds of MiB.
 */
const IN_FLIGHT_LIMIT = 24 * 1024 * 1024;

for (const pipelining of [false, true]) {
  test(`a server that stops reading mid-body${pipelining ? " (pipelined envelope)" : ""}: bounded reads from the source, ETIMEDOUT, source destroyed`, async () => {
    const server = await startFaultServer([
      ...greetAndEhlo(pipelining ? ["PIPELINING"] : []),
      ...(pipelining ? acceptPipelinedEnvelope() : acceptEnvelope(1)),
      // Read for a while first, so the body is in full flow (and the kernel buffers have
      // grown) when the server stops.
      { delayMs: 100 },
      { readNothing: true },
      { stall: true },
    ]);
    const conn = new SMTPConnection({ host: server.host, port: server.port, socketTimeout: 300 });
    let ends = 0;
    conn.on("end", () => ends++);
    await conn.connect();
    const source = endlessSource();
    const stalled = conn.send(ENVELOPE, source).then(() => undefined, (e: SMTPError) => e);
    const queued = conn.send(ENVELOPE, "queued behind").catch((e: SMTPError) => e);
    const err = (await settlesWithin(stalled, HANG_MS, "the stalled send")) as SMTPError;
    assertSMTPError(err, "stalled send");
    assert.is(err.code, "ETIMEDOUT");
    assert.is(err.command, "DATA");
    assert.is(err.deliveryState, "not-sent", "the body never ended: the server cannot have it");
    assert.ok(source.destroyed, "the source is destroyed, not left paused");
    const c = await server.connection();
    const inFlight = source.produced - c.received.length;
    assert.ok(inFlight < IN_FLIGHT_LIMIT, `${inFlight} bytes pulled from the source but never read by the server; a stalled socket must stop the reads`);
    const mib = (n: number): string => (n / 1024 / 1024).toFixed(1);
    console.log(`stalled write: ${mib(source.produced)} MiB pulled from the source, ${mib(c.received.length)} MiB read by the server, ${mib(inFlight)} MiB held in buffers`);
    const queuedErr = (await queued) as SMTPError;
    assertSMTPError(queuedErr, "queued send");
    assert.is(queuedErr.code, "ETIMEDOUT");
    assert.is(queuedErr.deliveryState, "not-sent");
    assert.not.ok(c.received.includes("\r\n.\r\n"), "no terminator");
    await new Promise((resolve) => setImmediate(resolve));
    assert.is(ends, 1);
    await server.close();
    await assertNothingOpen("stalled write");
  });
}

test("a server that never reads nor greets: greeting timeout, ETIMEDOUT, nothing left open", async () => {
  const server = await startFaultServer([{ readNothing: true }, { stall: true }]);
  const conn = new SMTPConnection({ host: server.host, port: server.port, greetingTimeout: 150 });
  const err = (await settlesWithin(conn.connect().then(() => undefined, (e: SMTPError) => e), HANG_MS, "connect()")) as SMTPError;
  assertSMTPError(err, "connect()");
  assert.is(err.code, "ETIMEDOUT");
  assert.is(err.command, "CONN");
  assert.match(err.message, /Greeting never received/);
  await server.close();
  await assertNothingOpen("greeting timeout");
});

test("a TLS server that never answers the client's hello: connection timeout, ETIMEDOUT", async () => {
  const server = await startFaultServer([{ stall: true }]);
  const conn = new SMTPConnection({ host: server.host, port: server.port, secure: true, connectionTimeout: 150 });
  const err = (await settlesWithin(conn.connect().then(() => undefined, (e: SMTPError) => e), HANG_MS, "connect()")) as SMTPError;
  assertSMTPError(err, "connect()");
  assert.is(err.code, "ETIMEDOUT");
  assert.match(err.message, /Connection timeout/);
  await server.close();
  await assertNothingOpen("connection timeout");
});

test("leaves no socket, timer or rejection behind", async () => {
  unhandled.assertNone();
  await assertNoLeaks();
});

test.run();
