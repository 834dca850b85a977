/**
 * BDAT pipelined with the envelope (RFC 3030 with RFC 2920) against Postfix and Dovecot
 * LMTP: MAIL, RCPT and the first chunk are written before any reply is read, messages
 * arrive byte for byte, the number of BDAT commands depends only on the message size, and
 * a refused envelope leaves the session usable (the server discards the chunk). BINARYMIME
 * is used where offered and refused before anything is written where not.
 */
import { connect, type Socket } from "node:net";
import { once } from "node:events";
import { Readable } from "node:stream";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertDelivered, disconnectLine, finish, interopEnv, makeMessage, open, rejection, uniqueLoopback, within, type InteropEnv } from "./support.js";

const env = interopEnv("bdat");
const FROM = "sender@client.example";

/** The bytes of a BDAT body: every line end as CRLF, nothing stuffed. */
const onTheWire = (raw: Buffer): Buffer => Buffer.from(raw.toString("latin1").replace(/\r\n|\r|\n/g, "\r\n"), "latin1");

/**
 * A chunking connection on a socket we opened, which notes, for each write the client
 * makes, how many reads of server replies had arrived before it. Returns `quiet(work)`:
 * runs `work` and says whether every write it made came before any reply was read.
 */
async function watched(env: InteropEnv, port: number, options: { lmtp?: boolean; bdatChunkSize?: number } = {}) {
  const localAddress = uniqueLoopback();
  const socket: Socket = connect({ host: env.host, port, localAddress });
  await once(socket, "connect");
  const conn = await open(env, { port, ignoreTLS: true, chunking: true, connection: socket, ...options });
  // Counted from here on: a 'data' listener added before the connection's own would read the greeting.
  let reads = 0;
  socket.on("data", () => reads++);
  const writes: number[] = [];
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((...args: unknown[]) => {
    writes.push(reads);
    return write(...args);
  }) as typeof socket.write;
  const quiet = async <T>(work: () => Promise<T>): Promise<{ result: T; writes: number; beforeAnyReply: boolean }> => {
    writes.length = 0;
    const start = reads;
    const result = await work();
    return { result, writes: writes.length, beforeAnyReply: writes.every((seen) => seen === start) };
  };
  return { conn, quiet, localAddress };
}

/** BDAT commands Postfix counted for the session from `address` ("bdat=3" or "bdat=0/1"). */
async function postfixBdatCount(env: InteropEnv, address: string): Promise<string> {
  const line = await disconnectLine(env, address);
  assert.not.match(line, /\bdata=/, `no DATA: ${line}`);
  return /\bbdat=(\S+)/.exec(line)?.[1] ?? `none in: ${line}`;
}

if (env) {
  test("Postfix: a small message is written whole with MAIL and RCPT before any reply is read, as one BDAT n LAST", async () => {
    const { conn, quiet, localAddress } = await watched(env, env.smtpPort);
    let closed = false;
    try {
      const m = makeMessage({ subject: "pipelined BDAT", body: ".dot line, not stuffed\r\nbare LF\nend\r\n" });
      const { result: info, writes, beforeAnyReply } = await quiet(() => within(conn.send({ from: FROM, to: env.address("bob") }, m.raw), 30_000, "send"));
      assert.ok(beforeAnyReply, "MAIL, RCPT and BDAT all went out before the first reply was read");
      assert.ok(writes >= 3, `MAIL, RCPT and the chunk were written (${writes} writes)`);
      assert.is(info.messageSize, onTheWire(m.raw).length);
      await assertDelivered(env, "bob", m);
      await finish(conn);
      closed = true;
      assert.is(await postfixBdatCount(env, localAddress), "1");
    } finally {
      if (!closed) await finish(conn);
    }
  });

  test("Postfix: a streamed message goes in chunks of bdatChunkSize whatever the writes, byte for byte", async () => {
    const { conn, localAddress } = await watched(env, env.smtpPort, { bdatChunkSize: 1000 });
    let closed = false;
    try {
      const lines = Array.from({ length: 400 }, (_, i) => (i % 7 === 0 ? `.line ${i} starts with a dot\n` : `line ${i} of a streamed message\r\n`)).join("");
      const m = makeMessage({ subject: "BDAT chunks", body: lines });
      const pieces: Buffer[] = [];
      for (let offset = 0, step = 1; offset < m.raw.length; offset += step, step = (step * 7) % 613 + 1) pieces.push(m.raw.subarray(offset, offset + step));
      const info = await within(conn.send({ from: FROM, to: env.address("carol") }, Readable.from(pieces)), 30_000, "send");
      const size = onTheWire(m.raw).length;
      assert.is(info.messageSize, size);
      await assertDelivered(env, "carol", m);
      await finish(conn);
      closed = true;
      assert.is(await postfixBdatCount(env, localAddress), String(Math.floor(size / 1000) + 1));
    } finally {
      if (!closed) await finish(conn);
    }
  });

  test("Postfix: every recipient refused with the chunk already sent fails with EENVELOPE; the next send is delivered", async () => {
    const { conn, quiet } = await watched(env, env.smtpPort);
    try {
      const refused = makeMessage({ subject: "to nobody over BDAT" });
      const { result: err, beforeAnyReply } = await quiet(() => rejection(within(conn.send({ from: FROM, to: env.address("nobody") }, refused.raw), 30_000, "send")));
      assert.ok(beforeAnyReply, "the chunk went with the envelope");
      assert.is(err.code, "EENVELOPE");
      assert.is(err.command, "RCPT TO");
      assert.is(err.responseCode, 550);
      assert.equal(err.rejected, [env.address("nobody")]);
      const next = makeMessage({ subject: "after a refused BDAT envelope" });
      await within(conn.send({ from: FROM, to: env.address("alice") }, next.raw), 30_000, "next send");
      await assertDelivered(env, "alice", next);
    } finally {
      await finish(conn);
    }
  });

  test("Dovecot LMTP: BDAT n LAST goes with the envelope; an unknown recipient is refused, the other gets the message byte for byte", async () => {
    const { conn, quiet } = await watched(env, env.lmtpPort, { lmtp: true });
    try {
      const m = makeMessage({ subject: "LMTP pipelined BDAT", body: ".dot\r\nbare LF\nbare CR\rend\r\n" });
      const { result: info, beforeAnyReply } = await quiet(() => within(conn.send({ from: FROM, to: [env.address("nobody"), env.address("alice"), env.address("bob")] }, m.raw), 30_000, "send"));
      assert.ok(beforeAnyReply, "MAIL, the RCPTs and BDAT all went out before the first reply was read");
      assert.equal(info.accepted, [env.address("alice"), env.address("bob")]);
      assert.equal(info.rejected, [env.address("nobody")]);
      assert.is(info.rejectedErrors?.[0]?.command, "RCPT TO");
      await assertDelivered(env, "alice", m);
      await assertDelivered(env, "bob", m);
    } finally {
      await finish(conn);
    }
  });

  test("Dovecot LMTP: every recipient refused with the chunk already sent fails with EENVELOPE; the next send is delivered", async () => {
    const { conn } = await watched(env, env.lmtpPort, { lmtp: true });
    try {
      const err = await rejection(within(conn.send({ from: FROM, to: env.address("nobody") }, makeMessage({ subject: "nobody" }).raw), 30_000, "send"));
      assert.is(err.code, "EENVELOPE");
      assert.is(err.command, "RCPT TO");
      const next = makeMessage({ subject: "LMTP after a refused BDAT envelope" });
      const info = await within(conn.send({ from: FROM, to: env.address("carol") }, next.raw), 30_000, "next send");
      assert.equal(info.accepted, [env.address("carol")]);
      await assertDelivered(env, "carol", next);
    } finally {
      await finish(conn);
    }
  });

  for (const [name, port, lmtp] of [
    ["Postfix", env.smtpPort, false],
    ["Dovecot LMTP", env.lmtpPort, true],
  ] as const) {
    test(`${name}: BINARYMIME is used where offered (the body as is), and refused before anything is written where not`, async () => {
      const { conn, quiet } = await watched(env, port, { lmtp });
      try {
        const body = Buffer.concat([Buffer.from("8-bit, as is: "), Buffer.from([0xe9, 0xff, 0x80]), Buffer.from("\r\n.\r\nend\r\n")]);
        const m = makeMessage({ subject: `BINARYMIME (${name})`, headers: "MIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n", body });
        const envelope = { from: FROM, to: env.address("dave"), binaryMime: true };
        console.log(`${name} offers: ${[...conn.extensions.keys()].join(" ")}`);
        if (conn.extensions.has("BINARYMIME")) {
          const info = await within(conn.send({ ...envelope, to: env.address("alice") }, m.raw), 30_000, "send");
          assert.is(info.messageSize, m.raw.length, "sent as is");
          await assertDelivered(env, "alice", m);
        } else {
          const { result: err, writes } = await quiet(() => rejection(conn.send(envelope, m.raw)));
          assert.is(err.code, "EENVELOPE");
          assert.match(err.message, /BINARYMIME/);
          assert.is(writes, 0, "nothing was written");
          const next = makeMessage({ subject: `after BINARYMIME was refused (${name})` });
          await within(conn.send({ from: FROM, to: env.address("alice") }, next.raw), 30_000, "next send");
          await assertDelivered(env, "alice", next);
        }
      } finally {
        await finish(conn);
      }
    });
  }
}

test.run();
