/**
 * SMTPPool against a real smtp-server: what it delivers, over how many connections, in
 * what order of events; leases; idle connections; close(); verify(); the room a producer
 * is told about (isIdle, 'idle', maxQueued); a stream that takes bytes only once it has a
 * connection.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { once } from "node:events";
import { SMTPPool, SMTPError, type SendInfo } from "../../lib/index.js";
import { nodeCallback, settlesWithin } from "../helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { arrivals, envelopeOf, messageOf, startCountingServer, until, whileLent, withPool } from "./support.js";

const unhandled = trackUnhandled();

test("delivers every send exactly once over at most maxConnections connections", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 3 });
  try {
    const infos = await settlesWithin(Promise.all(Array.from({ length: 60 }, (_, n) => pool.send(envelopeOf(n), messageOf(n)))), 20_000, "60 sends");
    assert.is(infos.length, 60);
    infos.forEach((info, n) => assert.equal(info.accepted, [`rcpt${n}@example.test`]));
    const counts = arrivals(server);
    assert.is(counts.size, 60);
    assert.ok([...counts.values()].every((c) => c === 1), "no message twice");
    assert.ok(server.mostAtOnce <= 3, `at most 3 sessions at once, saw ${server.mostAtOnce}`);
    assert.is(pool.pendingCount(), 0);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("replaces a connection after maxMessages, saying QUIT", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1, maxMessages: 4 });
  try {
    await Promise.all(Array.from({ length: 10 }, (_, n) => pool.send(envelopeOf(n), messageOf(n))));
    await pool.close();
    assert.is(server.messages.length, 10);
    assert.is(server.total, 3, "4 + 4 + 2 messages: three sessions");
    assert.is(server.commands.filter((c) => c === "QUIT").length, 3);
    assert.is(server.mostAtOnce, 1);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("send() takes a string, a Buffer or a Readable, and a callback", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 2 });
  try {
    await pool.send(envelopeOf(1), messageOf(1));
    await pool.send(envelopeOf(2), Buffer.from(messageOf(2)));
    await pool.send(envelopeOf(3), Readable.from([Buffer.from("X-Seq: 3\r\n"), Buffer.from("\r\nfrom a stream\r\n")]));
    const callback = nodeCallback<SendInfo>();
    pool.send(envelopeOf(4), messageOf(4), callback);
    const [err, info] = await callback.firstCall;
    assert.is(err, null);
    assert.equal(info!.accepted, ["rcpt4@example.test"]);
    assert.equal([...arrivals(server).keys()].sort(), [1, 2, 3, 4]);
    assert.match(server.messages.find((m) => m.data.includes("from a stream"))!.data.toString(), /^X-Seq: 3\r\n\r\nfrom a stream\r\n$/);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("a refused recipient fails its own send only; the connection goes on", async () => {
  const server = await startCountingServer({ refuseRecipients: ["rcpt2@example.test"] });
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1 });
  try {
    const results = await Promise.allSettled([0, 1, 2, 3].map((n) => pool.send(envelopeOf(n), messageOf(n))));
    assert.equal(results.map((r) => r.status), ["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    const err = (results[2] as PromiseRejectedResult).reason as SMTPError;
    assert.is(err.code, "EENVELOPE");
    assert.is(err.responseCode, 550);
    assert.is(server.total, 1, "one session for all four");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("createSendStream: a pipeline into the pool's stream resolves once the server accepted it", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port });
  try {
    const stream = pool.createSendStream(envelopeOf(7));
    const dispatched = once(stream, "dispatch");
    await pipeline(Readable.from([messageOf(7)]), stream);
    await dispatched;
    assert.equal(stream.info!.accepted, ["rcpt7@example.test"]);
    assert.equal([...arrivals(server).keys()], [7]);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("a pool stream takes no bytes before it has a connection: write() returns false and nothing reaches the server", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1 });
  try {
    const lease = await pool.acquire();
    const stream = pool.createSendStream(envelopeOf(1));
    let dispatched = false;
    stream.on("dispatch", () => (dispatched = true));
    // The first write is held; the rest fill the buffer up to highWaterMark.
    let accepted = 0;
    while (stream.write(Buffer.alloc(16 * 1024, 0x61))) accepted++;
    assert.ok(accepted < 8, `write() returned false after ${accepted} writes of 16 KiB`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.not.ok(dispatched, "no connection while the only one is lent");
    assert.is(server.messages.length, 0);
    lease.release();
    await once(stream, "dispatch");
    stream.end("\r\n");
    await once(stream, "finish");
    assert.is(server.messages.length, 1);
    assert.is(server.messages[0]!.data.length, (accepted + 1) * 16 * 1024 + 2);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("a pool stream destroyed while it waits for a connection leaves the line and sends nothing", () =>
  whileLent(async (pool) => {
    const stream = pool.createSendStream(envelopeOf(1));
    const failed = once(stream, "error").then(([err]) => err as SMTPError);
    stream.destroy(new Error("the caller changed its mind"));
    assert.is((await failed).code, "ESTREAM");
  }));

test("acquire() lends a connection counted against maxConnections; release() gives it back", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1 });
  try {
    const lease = await pool.acquire();
    await lease.connection.send(envelopeOf(1), messageOf(1));
    const waiting = pool.send(envelopeOf(2), messageOf(2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.is(server.messages.length, 1, "the pool sends nothing while its only connection is lent");
    assert.is(pool.pendingCount(), 1);
    lease.release();
    lease.release();
    await waiting;
    assert.is(server.total, 1, "the lent connection came back and carried the send");
    const second = await pool.acquire();
    second.release({ close: true });
    await until(() => server.open === 0, "the released connection's QUIT");
    assert.is(server.commands.filter((c) => c === "QUIT").length, 1);
    await pool.send(envelopeOf(3), messageOf(3));
    assert.is(server.total, 2, "a new connection after the closed one");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("close() waits for a lent connection's release, and fails leases asked for after it", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1 });
  const lease = await pool.acquire();
  const waiter = pool.acquire();
  let ended = false;
  const closing = pool.close().then(() => (ended = true));
  const refused = (await waiter.catch((err: unknown) => err)) as SMTPError;
  assert.is(refused.code, "ECONNECTION");
  assert.is((refused as SMTPError & { deliveryState?: string }).deliveryState, "not-sent");
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.not.ok(ended, "still lent");
  lease.release();
  await closing;
  assert.is(server.commands.filter((c) => c === "QUIT").length, 1);
  assert.match(String(await pool.acquire().catch((e: unknown) => e)), /closed/);
  await server.close();
});

test("an idle connection says QUIT after idleTimeout; the next send opens another", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, idleTimeout: 40 });
  try {
    await pool.send(envelopeOf(1), messageOf(1));
    await until(() => server.open === 0, "the idle connection's QUIT");
    assert.is(server.commands.filter((c) => c === "QUIT").length, 1);
    await pool.send(envelopeOf(2), messageOf(2));
    assert.is(server.total, 2);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("close() fails the waiting sends not-sent, lets those on a connection finish, then ends", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1 });
  const ended = once(pool, "end");
  const sends = Array.from({ length: 10 }, (_, n) => pool.send(envelopeOf(n), messageOf(n)));
  const settled = Promise.allSettled(sends);
  await until(() => server.messages.length > 0 || pool.pendingCount() < 10, "the first send on its way");
  await pool.close();
  await ended;
  const results = await settled;
  const delivered = results.filter((r) => r.status === "fulfilled").length;
  const failed = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as SMTPError & { deliveryState?: string });
  assert.ok(delivered >= 1, "sends on the connection finished");
  assert.is(delivered + failed.length, 10);
  assert.is(server.messages.length, delivered);
  for (const err of failed) {
    assert.is(err.code, "ECONNECTION");
    assert.is(err.deliveryState, "not-sent");
  }
  assert.is(pool.pendingCount(), 0);
  assert.match(String(await pool.send(envelopeOf(99), messageOf(99)).catch((e: unknown) => e)), /closed/);
  const late = pool.createSendStream(envelopeOf(100));
  const [lateErr] = (await once(late, "error")) as [SMTPError];
  assert.is(lateErr.code, "ECONNECTION");
  await server.close();
});

test("close({ force: true }) ends connections at once; every send settles", async () => {
  const server = await startCountingServer({ slowReadMs: 20, slowEvery: 1 });
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 2 });
  const sends = Array.from({ length: 6 }, (_, n) => pool.send(envelopeOf(n), messageOf(n, "x".repeat(200_000) + "\r\n")));
  const settled = Promise.allSettled(sends);
  await until(() => pool.pendingCount() < 6 || server.open > 0, "a connection open");
  await settlesWithin(pool.close({ force: true }), 5000, "a forced close");
  const results = await settlesWithin(settled, 5000, "every send");
  assert.is(results.length, 6);
  assert.is(pool.pendingCount(), 0);
  await server.close();
});

test("verify() resolves true, and fails with the login's error", async () => {
  const server = await startCountingServer({ users: { alice: "secret" } });
  try {
    const good = new SMTPPool({ host: "127.0.0.1", port: server.port, auth: { user: "alice", pass: "secret" } });
    assert.is(await good.verify(), true);
    const callback = nodeCallback<true>();
    good.verify(callback);
    assert.equal(await callback.firstCall, [null, true]);
    await good.close();
    const bad = new SMTPPool({ host: "127.0.0.1", port: server.port, auth: { user: "alice", pass: "wrong" } });
    const err = (await bad.verify().catch((e: unknown) => e)) as SMTPError;
    assert.is(err.code, "EAUTH");
    await bad.close();
  } finally {
    await server.close();
  }
});

test("wrong credentials fail every waiting send with EAUTH instead of retrying", async () => {
  const server = await startCountingServer({ users: { alice: "secret" } });
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, auth: { user: "alice", pass: "wrong" }, maxConnections: 2 });
  try {
    const results = await settlesWithin(Promise.allSettled([1, 2, 3].map((n) => pool.send(envelopeOf(n), messageOf(n)))), 10_000, "the sends");
    for (const result of results) {
      assert.is(result.status, "rejected");
      const err = (result as PromiseRejectedResult).reason as SMTPError;
      assert.is(err.code, "EAUTH");
      assert.is((err as SMTPError & { deliveryState?: string }).deliveryState, "not-sent");
    }
    assert.is(server.messages.length, 0);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("a destination that refuses every connection fails what waits, not-sent, after maxRequeues more tries", async () => {
  const gone = await startCountingServer();
  const port = gone.port;
  await gone.close();
  const pool = new SMTPPool({ host: "127.0.0.1", port, maxConnections: 1, maxRequeues: 1, maxQueued: 1 });
  try {
    const sends = [1, 2].map((n) => pool.send(envelopeOf(n), messageOf(n)));
    const streamed = pool.send(envelopeOf(3), Readable.from([messageOf(3)]));
    const lease = pool.acquire();
    const results = await settlesWithin(Promise.allSettled([...sends, streamed, lease]), 10_000, "the sends and the lease");
    for (const result of results) {
      assert.is(result.status, "rejected");
      const err = (result as PromiseRejectedResult).reason as SMTPError;
      assert.match(err.message, /Could not open a connection \(2 attempts\)/);
      assert.is(err.deliveryState, "not-sent");
      assert.ok(err.temporary);
    }
    assert.is(pool.pendingCount(), 0);
  } finally {
    await pool.close();
  }
});

test("maxQueued: sends beyond it wait for room; isIdle() and 'idle' tell a producer when there is room", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1, maxQueued: 3 });
  try {
    await once(pool, "idle");
    assert.ok(pool.isIdle());
    const sends = Array.from({ length: 12 }, (_, n) => pool.send(envelopeOf(n), messageOf(n)));
    assert.not.ok(pool.isIdle(), "12 sends offered, room for 3");
    assert.is(pool.pendingCount(), 12);
    await once(pool, "idle");
    await Promise.all(sends);
    assert.ok(pool.isIdle());
    assert.is(arrivals(server).size, 12);
  } finally {
    await pool.close();
  }
  assert.not.ok(pool.isIdle(), "a closed pool has no room");
  await server.close();
});

test("a producer that sends from its 'idle' listener while isIdle() is told again each time there is room, until all is sent", () =>
  withPool({ maxConnections: 2, maxQueued: 2 }, async (pool, server) => {
    const total = 20;
    const sends: Promise<SendInfo>[] = [];
    const madePerIdle: number[] = [];
    const allOffered = new Promise<void>((resolve) => {
      pool.on("idle", () => {
        let made = 0;
        while (pool.isIdle() && sends.length < total) {
          sends.push(pool.send(envelopeOf(sends.length), messageOf(sends.length)));
          made++;
        }
        madePerIdle.push(made);
        if (sends.length === total) resolve();
      });
    });
    // A send made inside the listener runs the pump again within emit(): the pool must not
    // forget that it is no longer idle, or no 'idle' comes once the line drains.
    await settlesWithin(allOffered, 20_000, "every send offered from 'idle' listeners");
    await Promise.all(sends);
    assert.is(arrivals(server).size, total);
    assert.ok(madePerIdle.every((made) => made <= 2), `never more than maxQueued offered at once: ${madePerIdle}`);
  }));

test("with no 'error' listener, connections the server closes never crash a Promise user", async () => {
  // smtp-server closes a connection idle for longer than socketTimeout (with 421).
  const server = await startCountingServer({ socketTimeout: 500 });
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 2 });
  try {
    await Promise.all([1, 2, 3].map((n) => pool.send(envelopeOf(n), messageOf(n))));
    await until(() => server.open === 0, "the server closing the idle connections", 5000);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await Promise.all([4, 5].map((n) => pool.send(envelopeOf(n), messageOf(n))));
    assert.equal([...arrivals(server).keys()].sort(), [1, 2, 3, 4, 5]);
    assert.is(pool.listenerCount("error"), 0);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("bad input fails the send before anything is queued", async () => {
  const pool = new SMTPPool({ host: "127.0.0.1", port: 9 });
  const err = (await pool.send(envelopeOf(1), 42 as unknown as string).catch((e: unknown) => e)) as SMTPError;
  assert.is(err.code, "EMESSAGE");
  assert.is(pool.pendingCount(), 0);
  await pool.close();
});

test("a send's stream that fails before a connection is free is reported as ESTREAM and not retried", async () => {
  const server = await startCountingServer();
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1 });
  try {
    const source = new Readable({ read() {} });
    const sending = pool.send(envelopeOf(1), source);
    await until(() => server.total === 1, "the connection");
    source.destroy(new Error("disk on fire"));
    const err = (await sending.catch((e: unknown) => e)) as SMTPError;
    assert.is(err.code, "ESTREAM");
    await pool.send(envelopeOf(2), messageOf(2));
    assert.equal([...arrivals(server).keys()], [2]);
  } finally {
    await pool.close();
    await server.close();
  }
});

leakCheckTest(test, unhandled);
test.run();
