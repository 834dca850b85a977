/**
 * `{ signal }` on the pool's send() and createSendStream(), and messages given as an
 * opener (a function called for each attempt): what the server received, what each send
 * reported, and that an aborted send is never tried again.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable } from "node:stream";
import { getEventListeners, once } from "node:events";
import type { Socket } from "node:net";
import { SMTPPool, SMTPError } from "../../lib/index.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { arrivals, envelopeOf, messageOf, startCountingServer, until, whileLent, withPool, type CountingServer } from "./support.js";

const unhandled = trackUnhandled();

async function rejection(promise: Promise<unknown>, what: string): Promise<SMTPError> {
  return (await settlesWithin(promise.then(() => assert.unreachable(`${what} resolved`), (err: SMTPError) => err), 10_000, what)) as SMTPError;
}

test("send({ signal }) aborted while it waits in line: rejects at once, not-sent, nothing reaches the server, the listener goes", () =>
  withPool({ maxConnections: 1 }, async (pool, server) => {
    // The only connection is lent: every send waits in line.
    const lease = await pool.acquire();
    const controller = new AbortController();
    const reason = new Error("shutting down");
    const waiting = [pool.send(envelopeOf(1), messageOf(1), { signal: controller.signal }), pool.send(envelopeOf(2), Readable.from([messageOf(2)]), { signal: controller.signal })];
    const opener = (): string => assert.unreachable("an aborted send's opener is never called") as never;
    waiting.push(pool.send(envelopeOf(3), opener, { signal: controller.signal }));
    const kept = pool.send(envelopeOf(4), messageOf(4));
    assert.is(pool.pendingCount(), 4);
    assert.is(getEventListeners(controller.signal, "abort").length, 1, "one listener however many sends watch the signal");
    controller.abort(reason);
    for (const [n, sending] of waiting.entries()) {
      const err = await rejection(sending, `aborted send ${n + 1}`);
      assert.instance(err, SMTPError);
      assert.is(err.code, "ECONNECTION");
      assert.is(err.command, "API");
      assert.is(err.deliveryState, "not-sent");
      assert.is(err.cause, reason);
    }
    assert.is(pool.pendingCount(), 1);
    lease.release();
    await settlesWithin(kept, 10_000, "the send that was not aborted");
    assert.equal([...arrivals(server).keys()], [4]);
    assert.is(getEventListeners(controller.signal, "abort").length, 0);
  }));

test("an already aborted signal: send() rejects and createSendStream() is destroyed, before anything is queued", () =>
  withPool({}, async (pool, server) => {
    const signal = AbortSignal.abort(new Error("too late"));
    const err = await rejection(pool.send(envelopeOf(1), messageOf(1), { signal }), "send with an aborted signal");
    assert.is(err.deliveryState, "not-sent");
    assert.is((err.cause as Error).message, "too late");
    const stream = pool.createSendStream(envelopeOf(2), { signal });
    const [streamErr] = (await once(stream, "error")) as [SMTPError];
    assert.is(streamErr.deliveryState, "not-sent");
    assert.is(streamErr.command, "API");
    assert.is(pool.pendingCount(), 0);
    assert.is(server.total, 0, "no connection was opened");
    const notASignal = await rejection(pool.send(envelopeOf(3), messageOf(3), { signal: new AbortController() as never }), "send with a controller as signal");
    assert.match(notASignal.message, /AbortSignal/);
  }));

test("the send callback form takes options too: send(envelope, message, { signal }, callback)", () =>
  withPool({}, async (pool, server) => {
    const info = await new Promise((resolve, reject) => pool.send(envelopeOf(1), messageOf(1), { signal: new AbortController().signal }, (err, result) => (err ? reject(err) : resolve(result))));
    assert.equal((info as { accepted: string[] }).accepted, ["rcpt1@example.test"]);
    assert.equal([...arrivals(server).keys()], [1]);
  }));

test("createSendStream({ signal }) aborted while waiting for a connection: destroyed not-sent, leaves the line", () =>
  whileLent(async (pool) => {
    const controller = new AbortController();
    const stream = pool.createSendStream(envelopeOf(1), { signal: controller.signal });
    const failed = once(stream, "error");
    controller.abort();
    const [err] = (await failed) as [SMTPError];
    assert.is(err.code, "ECONNECTION");
    assert.is(err.deliveryState, "not-sent");
  }));

test("send({ signal }) aborted mid-body: the connection's rule applies (not-sent, nothing delivered) and the pool never tries it again", async () => {
  let bodySeen = false;
  const server: CountingServer = await startCountingServer({
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => {
        bodySeen = true;
        chunks.push(chunk);
      });
      stream.on("end", () => {
        server.messages.push({ from: "", to: session.envelope.rcptTo.map((r) => r.address), mailParams: {}, rcptParams: [], data: Buffer.concat(chunks), sizeExceeded: false });
        callback(null, "2.0.0 queued");
      });
    },
  });
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1, maxRequeues: 5 });
  try {
    const controller = new AbortController();
    let opened = 0;
    // A body that gives its first half and then waits: the abort finds it mid-body.
    const opener = () => {
      opened++;
      const source = new Readable({ read() {} });
      source.push(messageOf(1, "first half\r\n"));
      return source;
    };
    const sending = pool.send(envelopeOf(1), opener, { signal: controller.signal });
    // Part of the body reached the server: the client is past DATA's 354.
    await until(() => bodySeen, "body bytes at the server");
    controller.abort();
    const err = await rejection(sending, "the send aborted mid-body");
    assert.is(err.deliveryState, "not-sent");
    assert.is(err.command, "DATA");
    await pool.send(envelopeOf(2), messageOf(2));
    assert.is(opened, 1, "the opener was called once: no second attempt");
    assert.equal([...arrivals(server).keys()], [2]);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("an opener is called only once the send has a connection, and again when that connection died mid-body: the message arrives once, in full", async () => {
  const sockets = new Map<number, Socket>();
  let sessions = 0;
  let dropped = false;
  const server = await startCountingServer({
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        if (!dropped) {
          // The first message's connection breaks under its body: its end never arrives.
          dropped = true;
          sockets.get(session.remotePort)?.destroy();
        }
      });
      stream.on("end", () => {
        if (!sockets.get(session.remotePort)?.destroyed) {
          server.messages.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "", to: [], mailParams: {}, rcptParams: [], data: Buffer.concat(chunks), sizeExceeded: false });
          callback(null, "2.0.0 queued");
        }
      });
    },
    onConnect(_session, callback) {
      sessions++;
      callback();
    },
  });
  server.server.server.on("connection", (socket: Socket) => sockets.set(socket.remotePort!, socket));
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1, maxRequeues: 2 });
  try {
    const lease = await pool.acquire();
    const message = messageOf(7, "line\r\n".repeat(1000));
    let opened = 0;
    const opener = () => {
      opened++;
      // The first attempt stalls after its first part (so the drop finds it mid-body).
      if (opened === 1) {
        const source = new Readable({ read() {} });
        source.push(message.slice(0, 2000));
        return source;
      }
      return Readable.from([message]);
    };
    const sending = pool.send(envelopeOf(7), opener);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.is(opened, 0, "not opened while the send waits in line");
    lease.release();
    const info = await settlesWithin(sending, 10_000, "the re-sent message");
    assert.equal(info.accepted, ["rcpt7@example.test"]);
    assert.is(opened, 2);
    assert.is(server.messages.length, 1);
    assert.is(server.messages[0]!.data.toString(), message);
    assert.ok(sessions >= 2, "the second attempt went over another connection");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("an opener that throws fails its send ESTREAM, not-sent, and the connection goes on", () =>
  withPool({ maxConnections: 1 }, async (pool, server) => {
    const err = await rejection(
      pool.send(envelopeOf(1), () => {
        throw new Error("no such file");
      }),
      "a send whose opener threw",
    );
    assert.is(err.code, "ESTREAM");
    assert.is(err.deliveryState, "not-sent");
    assert.match(err.message, /no such file/);
    await pool.send(envelopeOf(2), () => messageOf(2));
    assert.equal([...arrivals(server).keys()], [2]);
    assert.is(server.total, 1, "the same connection carried the next send");
  }));

test("an opener whose stream fails mid-body: ESTREAM once, not-sent, never tried again, nothing delivered", () =>
  withPool({ maxConnections: 1, maxRequeues: 3 }, async (pool, server) => {
    let opened = 0;
    const opener = () => {
      opened++;
      const source = new Readable({ read() {} });
      source.push(messageOf(1, "half a body\r\n"));
      setTimeout(() => source.destroy(new Error("disk read failed")), 20);
      return source;
    };
    const outcomes: unknown[] = [];
    await new Promise<void>((resolve) =>
      pool.send(envelopeOf(1), opener, (err: SMTPError | null, info?: unknown) => {
        outcomes.push(err ?? info);
        setTimeout(resolve, 50);
      }),
    );
    assert.is(outcomes.length, 1, "the callback was called once");
    const err = outcomes[0] as SMTPError;
    assert.instance(err, SMTPError);
    assert.is(err.code, "ESTREAM");
    assert.is(err.deliveryState, "not-sent");
    assert.is(opened, 1);
    await pool.send(envelopeOf(2), messageOf(2));
    assert.equal([...arrivals(server).keys()], [2]);
  }));

leakCheckTest(test, unhandled);

test.run();
