/**
 * createSendStream (SPEC §4): buffering before 354, backpressure after it, failing fast
 * on a refused envelope, never delivering a partial message.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { once } from "node:events";
import { SMTPError, type SendInfo } from "../lib/index.js";
import { startServer } from "./helpers/server.js";
import { startFaultServer, greetAndEhlo, acceptEnvelope } from "./helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";
import { connected } from "./helpers/client.js";

const unhandled = trackUnhandled();
const env = { from: "sender@example.test", to: ["rcpt@example.test"] };

function chunks(count: number, size: number, fill = 0x61): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent++ >= count) this.push(null);
      else this.push(Buffer.alloc(size, fill));
    },
  });
}

test("pipeline() into createSendStream resolves after the final reply, with info and a response event", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const out = conn.createSendStream(env);
  let viaEvent: SendInfo | undefined;
  out.on("response", (info: SendInfo) => (viaEvent = info));
  const body = "Subject: piped\r\n\r\n" + "line\r\n".repeat(10000);
  await pipeline(Readable.from([Buffer.from(body)]), out);
  assert.ok(out.info, "info is set once finished");
  assert.is(viaEvent, out.info);
  assert.equal(out.info!.accepted, ["rcpt@example.test"]);
  assert.is(out.info!.messageSize, body.length + 3);
  assert.is(server.messages[0]!.data.toString(), body);
  await conn.quit();
  await server.close();
});

test("finish comes only after the server's final reply", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const fault = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    ...acceptEnvelope(1),
    { expectData: true },
    { call: () => released },
    { send: "250 accepted\r\n" },
  ]);
  const conn = await connected(fault.port);
  const out = conn.createSendStream(env);
  let finished = false;
  out.on("finish", () => (finished = true));
  out.end("body");
  const c = await fault.connection();
  while (c.data.length === 0) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 30));
  assert.is(finished, false, "no finish while the final reply is outstanding");
  release();
  await once(out, "finish");
  assert.is(out.info!.response, "250 accepted");
  conn.close();
  await fault.close();
});

test("before 354, writes are held up to highWaterMark and write() returns false", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const fault = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    { expect: /^MAIL/ },
    { expect: /^RCPT/ },
    { expect: "DATA" },
    { call: () => released },
    { send: "250 ok\r\n250 ok\r\n354 go\r\n" },
    { expectData: true },
    { send: "250 done\r\n" },
  ]);
  const conn = await connected(fault.port);
  const out = conn.createSendStream(env);
  const chunk = Buffer.alloc(16 * 1024, 0x62);
  let accepted = 0;
  while (out.write(chunk)) accepted++;
  assert.ok(accepted < 8, `write() returned false after ${accepted + 1} chunks of 16 KiB`);
  assert.ok(out.writableLength <= out.writableHighWaterMark + chunk.length);
  const c = await fault.connection();
  assert.is(c.data.length, 0, "no body byte before 354");
  release();
  await once(out, "drain");
  out.end();
  await once(out, "finish");
  assert.is(c.data[0]!.length, (accepted + 1) * chunk.length + 5);
  conn.close();
  await fault.close();
});

test("a refused envelope destroys the stream at once, so pipeline() rejects and stops reading the source", async () => {
  const server = await startServer({ refuseRecipients: ["nobody@example.test"] });
  const conn = await connected(server.port);
  let produced = 0;
  const source = new Readable({
    read() {
      produced++;
      this.push(Buffer.alloc(64 * 1024, 0x63));
    },
  });
  const err = (await pipeline(source, conn.createSendStream({ from: "a@example.test", to: ["nobody@example.test"] })).catch((e) => e)) as SMTPError;
  assert.instance(err, SMTPError);
  assert.is(err.code, "EENVELOPE");
  assert.ok(source.destroyed, "the source was destroyed");
  assert.ok(produced < 64, `the source stopped early (${produced} chunks read)`);
  assert.is(server.messages.length, 0);
  const info = await conn.send(env, "still usable");
  assert.equal(info.accepted, ["rcpt@example.test"]);
  await conn.quit();
  await server.close();
});

test("a source that fails mid-message closes the connection without the terminator (ESTREAM)", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["PIPELINING"]), ...acceptEnvelope(1), { expectData: true }, { send: "250 should never happen\r\n" }]);
  const conn = await connected(fault.port);
  let n = 0;
  const source = new Readable({
    read() {
      if (++n === 5) this.destroy(new Error("disk on fire"));
      else this.push(Buffer.from("partial line\r\n"));
    },
  });
  const streamed = pipeline(source, conn.createSendStream(env)).catch((e) => e);
  const queued = conn.send(env, "queued behind").catch((e) => e);
  const err = (await streamed) as Error;
  assert.ok(err, "pipeline rejected");
  const c = await fault.connection();
  await c.whenClosed;
  assert.not.ok(c.received.includes(Buffer.from("\r\n.\r\n")), "no terminator on the wire");
  assert.not.ok(c.received.includes(Buffer.from("partial line")), "the source failed before 354: no body byte was sent");
  assert.is(((await queued) as SMTPError).code, "ECONNECTION");
  await fault.close();
});

test("send() with a failing Readable rejects with ESTREAM keeping the cause", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["PIPELINING"]), ...acceptEnvelope(1), { expectData: true }]);
  const conn = await connected(fault.port);
  const cause = new Error("read failed");
  const source = new Readable({ read() {} });
  source.push("Subject: x\r\n\r\n");
  setTimeout(() => source.destroy(cause), 20);
  const err = (await conn.send(env, source).catch((e) => e)) as SMTPError;
  assert.is(err.code, "ESTREAM");
  assert.is(err.cause, cause);
  // A source that fails locally (disk, object store) is not a refusal of the message.
  assert.is(err.temporary, true);
  assert.is(err.deliveryState, "not-sent");
  const c = await fault.connection();
  await c.whenClosed;
  assert.not.ok(c.received.includes(Buffer.from("\r\n.\r\n")), "no terminator on the wire");
  await fault.close();
});

test("a stream destroyed before end() is never delivered", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const out = conn.createSendStream(env);
  out.on("error", () => {});
  out.write("Subject: half\r\n\r\nhalf a message");
  await new Promise((r) => setTimeout(r, 30));
  out.destroy();
  await once(conn, "end");
  await new Promise((r) => setTimeout(r, 30));
  assert.is(server.messages.length, 0);
  await server.close();
});

test("after 354, write() returns false while the socket is full and the body moves with backpressure", async () => {
  const server = await startServer({ slowReadMs: 20, slowEvery: 256 * 1024 });
  const conn = await connected(server.port);
  const out = conn.createSendStream(env);
  let refusals = 0;
  const sink = new Writable({
    write(chunk, _enc, cb) {
      if (!out.write(chunk)) {
        refusals++;
        out.once("drain", () => cb());
      } else cb();
    },
    final(cb) {
      out.end();
      out.once("finish", () => cb());
    },
  });
  await pipeline(chunks(256, 64 * 1024), sink);
  assert.ok(refusals > 0, "write() returned false at least once");
  assert.is(server.messages[0]!.data.length, 256 * 64 * 1024 + 2);
  await conn.quit();
  await server.close();
});

leakCheckTest(test, unhandled);

test.run();
