/**
 * Streams of every kind as message sources (issue 10): an old-style stream (a legacy
 * `Stream` with pipe(), no `readableEnded`, no `unpipe`, as `through` and event-stream
 * make) closes right after it ends, and has no unpipe(). Its message must be delivered,
 * never failed as ESTREAM because it closed after its end; a refusal must reach the caller
 * as itself, never replaced by a TypeError from a method the source lacks; a source that
 * fails is ESTREAM, temporary, not-sent.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Stream, type Readable } from "node:stream";
import through from "through";
import { SMTPError } from "../lib/index.js";
import { startServer } from "./helpers/server.js";
import { acceptEnvelope, greetAndEhlo, startFaultServer } from "./helpers/fault-server.js";
import { randomFor, seedNote, splitRandomly, type Random } from "./helpers/random.js";
import { settlesWithin } from "./helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";
import { connected } from "./helpers/client.js";

const unhandled = trackUnhandled();
const env = { from: "sender@example.test", to: ["rcpt@example.test"] };

/** CRLF lines of words, some starting with a dot, so dot-stuffing is on the path. */
function randomLines(random: Random): Buffer {
  const lines: string[] = [];
  for (let i = random.int(1, 200); i > 0; i--) {
    let line = random.int(0, 5) === 0 ? "." : "";
    for (let j = random.int(0, 20); j > 0; j--) line += random.pick(["mail", "relay", "x", ".", "dot..", "é", "0123"]) + " ";
    lines.push(line);
  }
  return Buffer.from(`Subject: old-style source\r\n\r\n${lines.join("\r\n")}\r\n`);
}

/** Writes `chunks` into a through stream one turn apart, as a real producer would, then ends it. */
function feed(source: ReturnType<typeof through>, chunks: Buffer[]): void {
  let i = 0;
  const next = () => {
    if (i < chunks.length) {
      source.write(chunks[i++]);
      setImmediate(next);
    } else source.end();
  };
  setImmediate(next);
}

test("a through source delivers through send(), intact, however its writes are cut (seeded)", async () => {
  const random = randomFor("through send");
  const server = await startServer();
  const conn = await connected(server.port);
  const sent: Buffer[] = [];
  for (let n = 0; n < 12; n++) {
    const message = randomLines(random);
    sent.push(message);
    const source = through();
    const sending = conn.send(env, source as unknown as Readable);
    feed(source, splitRandomly(random, message, random.pick([1, 7, 100, 4096])));
    const info = await settlesWithin(sending, 5000, `message ${n}`).catch((err: unknown) => assert.unreachable(`message ${n} failed: ${String(err)} (${seedNote()})`));
    assert.equal(info!.accepted, env.to);
    assert.is(info!.recipients[0]!.status, "accepted");
  }
  assert.equal(
    server.messages.map((m) => m.data.toString("latin1")),
    sent.map((m) => m.toString("latin1")),
    `every message arrives byte for byte (${seedNote()})`,
  );
  await conn.quit();
  await server.close();
});

test("a through source piped with plain pipe() into createSendStream() finishes once the server accepted it", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const source = through();
  const out = conn.createSendStream(env);
  const finished = new Promise<void>((resolve, reject) => (out.once("finish", resolve), out.once("error", reject)));
  source.pipe(out);
  feed(source, [Buffer.from("Subject: piped\r\n\r\n"), Buffer.from("line one\r\n.line two\r\n")]);
  await settlesWithin(finished, 5000, "the piped send");
  assert.is(out.info!.accepted[0], "rcpt@example.test");
  assert.is(server.messages[0]!.data.toString(), "Subject: piped\r\n\r\nline one\r\n.line two\r\n");
  await conn.quit();
  await server.close();
});

test("a 550 final reply to a through source reaches send() as EMESSAGE 550, rejected, never as a TypeError", async () => {
  let refuse = true;
  const server = await startServer({
    onData(stream, _session, callback) {
      const refusal = refuse ? Object.assign(new Error("Message content rejected"), { responseCode: 550 }) : null;
      refuse = false;
      stream.resume();
      stream.on("end", () => callback(refusal));
    },
  });
  const conn = await connected(server.port);
  const source = through();
  const sending = conn.send(env, source as unknown as Readable);
  feed(source, [Buffer.from("Subject: spam\r\n\r\nbuy now\r\n")]);
  const err = (await settlesWithin(sending.then(() => undefined, (e: unknown) => e), 5000, "the refused send")) as SMTPError;
  assert.instance(err, SMTPError);
  assert.is(err.code, "EMESSAGE");
  assert.is(err.responseCode, 550);
  assert.is(err.deliveryState, "rejected");
  // The connection is still usable: the refusal was the message's, not the connection's.
  assert.equal((await conn.send(env, "Subject: next\r\n\r\nok\r\n")).accepted, env.to);
  await conn.quit();
  await server.close();
});

test("a bare legacy Stream (pipe() only: no unpipe, no destroy) refused at RCPT reaches send() as EENVELOPE", async () => {
  const server = await startServer({ refuseRecipients: ["rcpt@example.test"] });
  const conn = await connected(server.port);
  const source = new Stream() as Stream & { readable: boolean };
  source.readable = true;
  const err = (await conn.send(env, source as unknown as Readable).catch((e: unknown) => e)) as SMTPError;
  assert.instance(err, SMTPError);
  assert.is(err.code, "EENVELOPE");
  assert.is(err.responseCode, 550);
  assert.is(err.deliveryState, "not-sent");
  assert.equal(err.recipients!.map((r) => r.status), ["rejected"]);
  await conn.quit();
  await server.close();
});

for (const [what, fail, message] of [
  ["emits an error", (source: ReturnType<typeof through>) => void source.emit("error", new Error("object store read failed")), /object store read failed/],
  ["is destroyed (closes without end)", (source: ReturnType<typeof through>) => void source.destroy(), /closed before it ended|destroyed/],
] as const) {
  test(`a through source that ${what} mid-message: ESTREAM, temporary, not-sent, no terminator`, async () => {
    const server = await startFaultServer([...greetAndEhlo(["PIPELINING"]), ...acceptEnvelope(1), { expectData: true }]);
    const conn = await connected(server.port);
    const source = through();
    const sending = conn.send(env, source as unknown as Readable).then(() => undefined, (e: unknown) => e);
    source.write(Buffer.from("Subject: partial\r\n\r\nfirst line\r\n"));
    const c = await server.connection();
    while (!c.received.includes("first line")) await new Promise((resolve) => setTimeout(resolve, 2));
    fail(source);
    const err = (await settlesWithin(sending, 5000, "the failing send")) as SMTPError;
    assert.instance(err, SMTPError);
    assert.is(err.code, "ESTREAM");
    assert.match(err.message, message);
    assert.is(err.temporary, true, "a source failing locally is not a refusal of the message");
    assert.is(err.deliveryState, "not-sent");
    await c.done;
    assert.not.ok(c.received.includes("\r\n.\r\n"), "the partial message was never terminated");
    await server.close();
  });
}

leakCheckTest(test, unhandled);

test.run();
