/**
 * CHUNKING (RFC 3030): with `chunking: true` and a server offering CHUNKING and
 * PIPELINING, the body goes as length-prefixed BDAT chunks instead of DATA.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable } from "node:stream";
import { SMTPError } from "../lib/index.js";
import { startFaultServer, greetAndEhlo, type Step } from "./helpers/fault-server.js";
import { createHash } from "node:crypto";
import diagnostics from "node:diagnostics_channel";
import { leakCheckTest, runInChild, trackUnhandled } from "./helpers/leak-check.js";
import { settlesWithin } from "./helpers/callbacks.js";
import { randomChunkLimit, randomFor, randomMessage, seedNote, splitRandomly } from "./helpers/random.js";
import { connected, faultSession } from "./helpers/client.js";

const unhandled = trackUnhandled();
const MiB = 1024 * 1024;
const env = { from: "a@example.test", to: ["b@example.test"] };

/** A server offering PIPELINING and CHUNKING, reading MAIL FROM and RCPT TO (answered by a later step). */
const chunkingEnvelope = (): Step[] => [...greetAndEhlo(["PIPELINING", "CHUNKING"]), { expect: /^MAIL FROM:/ }, { expect: /^RCPT TO:/ }];

test("a small whole message goes with MAIL and RCPT in one write, as BDAT n LAST, normalised and not dot-stuffed", async () => {
  // The server reads the chunk before it answers the envelope: a client that waited for
  // the envelope's replies before its first chunk would hang here.
  const { conn, fault, finish } = await faultSession([
    ...chunkingEnvelope(),
    { expect: "BDAT 11 LAST" },
    { expectBytes: 11 },
    { send: "250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n" },
  ], { chunking: true });
  const info = await settlesWithin(conn.send(env, ".a\nb\r.c\r\n"), 5000, "the send");
  assert.is(info.response, "250 2.0.0 queued");
  assert.is(info.messageSize, 11, "the sum of the chunk payloads");
  const c = await fault.connection();
  assert.is(c.data[0]!.toString("latin1"), ".a\r\nb\r\n.c\r\n");
  assert.not.ok(c.commands.includes("DATA"));
  await finish();
});

test("a streamed body is cut into chunks of bdatChunkSize whatever the writes; only the first goes before the envelope is accepted", async () => {
  const { conn, fault, finish } = await faultSession([
    ...chunkingEnvelope(),
    { expect: "BDAT 4" },
    { expectBytes: 4 },
    // Nothing more may come before these replies: the next line read must be the second chunk.
    { delayMs: 50 },
    { send: "250 ok\r\n250 ok\r\n250 chunk\r\n" },
    { expect: "BDAT 4" },
    { expectBytes: 4 },
    { expect: "BDAT 4" },
    { expectBytes: 4 },
    { expect: "BDAT 0 LAST" },
    { send: "250 chunk\r\n250 chunk\r\n250 done\r\n" },
  ], { chunking: true, bdatChunkSize: 4 });
  const info = await settlesWithin(conn.send(env, Readable.from([Buffer.from("abc"), Buffer.from("de\r\n"), Buffer.from("fghij")])), 5000, "the send");
  assert.is(info.messageSize, 12);
  const c = await fault.connection();
  assert.equal(c.data.map((d) => d.toString()), ["abcd", "e\r\nf", "ghij"]);
  assert.is(c.received.toString("latin1").split("BDAT 4\r\n").length, 4, "three chunks, none sent twice");
  await finish();
});

test("a chunk refused after the whole body went fails the send with EMESSAGE naming BDAT, and the next send starts with RSET", async () => {
  const { conn, finish } = await faultSession([
    ...chunkingEnvelope(),
    { expect: "BDAT 4" },
    { expectBytes: 4 },
    { send: "250 ok\r\n250 ok\r\n" },
    { expect: "BDAT 1 LAST" },
    { expectBytes: 1 },
    { send: "552 5.3.4 Message too big\r\n503 5.5.1 No transaction\r\n" },
    { expect: "RSET" },
    { expect: /^MAIL FROM:/ },
    { expect: /^RCPT TO:/ },
    { expect: "BDAT 2 LAST" },
    { expectBytes: 2 },
    { send: "250 reset\r\n250 ok\r\n250 ok\r\n250 queued\r\n" },
  ], { chunking: true, bdatChunkSize: 4 });
  const err = (await conn.send(env, "hello").catch((e) => e)) as SMTPError;
  assert.instance(err, SMTPError);
  assert.is(err.code, "EMESSAGE");
  assert.is(err.command, "BDAT");
  assert.is(err.responseCode, 552);
  assert.is(err.enhancedCode, "5.3.4");
  const info = await conn.send(env, "ok");
  assert.is(info.response, "250 queued");
  await finish();
});

test("a chunk refused while the stream still writes fails the send with EMESSAGE and closes the connection without the last chunk", async () => {
  const fault = await startFaultServer([
    ...chunkingEnvelope(),
    { expect: "BDAT 4" },
    { expectBytes: 4 },
    { send: "250 ok\r\n250 ok\r\n552 5.3.4 Message too big\r\n" },
    { stall: true },
  ]);
  const conn = await connected(fault.port, { chunking: true, bdatChunkSize: 4 });
  const out = conn.createSendStream(env);
  out.write("abcdefgh");
  const err = (await new Promise((resolve) => out.once("error", resolve))) as SMTPError;
  assert.is(err.code, "EMESSAGE");
  assert.is(err.command, "BDAT");
  assert.is(err.responseCode, 552);
  const c = await fault.connection();
  await c.whenClosed;
  assert.not.match(c.received.toString("latin1"), /LAST/);
  conn.close();
  await fault.close();
});

for (const [what, replies, code] of [
  ["MAIL FROM is refused", "550 5.7.1 Sender refused\r\n503 5.5.1 No recipients\r\n503 5.5.1 No transaction\r\n", "MAIL FROM"],
  ["every recipient is refused", "250 ok\r\n550 5.1.1 Unknown user\r\n554 5.5.1 No valid recipients\r\n", "RCPT TO"],
] as const) {
  test(`when ${what}, the pipelined chunk's reply is read and dropped, the send fails with EENVELOPE as over DATA, and the session goes on`, async () => {
    const { conn, finish } = await faultSession([
      ...chunkingEnvelope(),
      { expect: "BDAT 5 LAST" },
      { expectBytes: 5 },
      { send: replies },
      { expect: "RSET" },
      { expect: /^MAIL FROM:/ },
      { expect: /^RCPT TO:/ },
      { expect: "BDAT 2 LAST" },
      { expectBytes: 2 },
      { send: "250 reset\r\n250 ok\r\n250 ok\r\n250 queued\r\n" },
    ], { chunking: true });
    const err = (await conn.send(env, "hello").catch((e) => e)) as SMTPError;
    assert.is(err.code, "EENVELOPE");
    assert.is(err.command, code);
    assert.is(err.responseCode, 550);
    assert.is(err.deliveryState, "not-sent", "the server discarded the message sent with the envelope");
    if (code === "RCPT TO") assert.equal(err.rejected, ["b@example.test"]);
    assert.is((await conn.send(env, "ok")).response, "250 queued");
    await finish();
  });
}

test("a refused envelope stops a streamed body after its first chunk; the stream fails with EENVELOPE", async () => {
  const { conn, fault, finish } = await faultSession([
    ...chunkingEnvelope(),
    { expect: "BDAT 4" },
    { expectBytes: 4 },
    { send: "550 5.7.1 Sender refused\r\n503 5.5.1 No recipients\r\n503 5.5.1 No transaction\r\n" },
    { expect: "RSET" },
    { send: "250 ok\r\n" },
  ], { chunking: true, bdatChunkSize: 4 });
  const out = conn.createSendStream(env);
  out.write("abcdefghijkl");
  const err = (await new Promise((resolve) => out.once("error", resolve))) as SMTPError;
  assert.is(err.code, "EENVELOPE");
  assert.is(err.command, "MAIL FROM");
  // The connection is still in step: the next command gets its own reply.
  assert.is(await conn.reset(), true);
  const c = await fault.connection();
  assert.equal(c.commands.slice(1), ["MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>", "BDAT 4", "RSET"]);
  await finish();
});

test("LMTP: BDAT n LAST sent before the recipients' replies gets one reply per accepted recipient", async () => {
  const { conn, finish } = await faultSession([
    { send: "220 lmtp\r\n" },
    { expect: /^LHLO / },
    { send: "250-lmtp\r\n250-PIPELINING\r\n250 CHUNKING\r\n" },
    { expect: /^MAIL FROM:/ },
    { expect: /^RCPT TO:/ },
    { expect: /^RCPT TO:/ },
    { expect: /^RCPT TO:/ },
    { expect: "BDAT 2 LAST" },
    { expectBytes: 2 },
    { send: "250 ok\r\n250 ok\r\n550 5.1.1 <c> unknown\r\n250 ok\r\n250 2.0.0 <a> saved\r\n552 5.2.2 <d> full\r\n" },
  ], { chunking: true, lmtp: true });
  const info = await settlesWithin(conn.send({ from: "x@example.test", to: ["a@example.test", "c@example.test", "d@example.test"] }, "hi"), 5000, "the send");
  assert.equal(info.accepted, ["a@example.test"]);
  assert.equal(info.rejected, ["c@example.test", "d@example.test"]);
  assert.is(info.rejectedErrors![1]!.command, "BDAT");
  assert.is(info.rejectedErrors![1]!.responseCode, 552);
  await finish();
});

test("DATA is used when chunking is off, or the server lacks CHUNKING or PIPELINING", async () => {
  for (const [options, extensions] of [
    [{}, ["PIPELINING", "CHUNKING"]],
    [{ chunking: true }, ["PIPELINING"]],
    [{ chunking: true }, ["CHUNKING"]],
  ] as const) {
    const pipelined = (extensions as readonly string[]).includes("PIPELINING");
    const { conn, finish } = await faultSession([
      ...greetAndEhlo([...extensions]),
      { expect: /^MAIL FROM:/ },
      ...(pipelined ? [] : [{ send: "250 ok\r\n" }]),
      { expect: /^RCPT TO:/ },
      ...(pipelined ? [] : [{ send: "250 ok\r\n" }]),
      { expect: "DATA" },
      { send: pipelined ? "250 ok\r\n250 ok\r\n354 go\r\n" : "354 go\r\n" },
      { expectData: true },
      { send: "250 done\r\n" },
    ] as Step[], { ...options });
    assert.is((await conn.send(env, "x")).response, "250 done");
    await finish();
  }
});

test("BINARYMIME: the body goes as is with BODY=BINARYMIME, bare CR, bare LF and NUL untouched", async () => {
  const body = Buffer.from("a\nb\rc\0\r\n.\r\n\xff\r", "latin1");
  const { conn, fault, finish } = await faultSession([
    ...greetAndEhlo(["PIPELINING", "CHUNKING", "8BITMIME", "BINARYMIME"]),
    { expect: "MAIL FROM:<a@example.test> BODY=BINARYMIME" },
    { expect: /^RCPT TO:/ },
    { expect: `BDAT ${body.length} LAST` },
    { expectBytes: body.length },
    { send: "250 ok\r\n250 ok\r\n250 queued\r\n" },
  ], { chunking: true });
  const info = await conn.send({ ...env, binaryMime: true, use8BitMime: true }, body);
  assert.is(info.messageSize, body.length);
  assert.ok((await fault.connection()).data[0]!.equals(body));
  await finish();
});

for (const [what, options, extensions] of [
  ["without chunking: true", {}, ["PIPELINING", "CHUNKING", "BINARYMIME"]],
  ["to a server without CHUNKING", { chunking: true }, ["PIPELINING", "BINARYMIME"]],
  ["to a server without BINARYMIME", { chunking: true }, ["PIPELINING", "CHUNKING"]],
] as const) {
  test(`BINARYMIME ${what} fails with EENVELOPE before anything is written`, async () => {
    const fault = await startFaultServer([...greetAndEhlo([...extensions]), { expect: "NOOP" }]);
    const conn = await connected(fault.port, options);
    const err = (await conn.send({ ...env, binaryMime: true }, "x\n").catch((e) => e)) as SMTPError;
    assert.instance(err, SMTPError);
    assert.is(err.code, "EENVELOPE");
    assert.is(err.command, "MAIL FROM");
    assert.is(err.temporary, false);
    assert.match(err.message, /BINARYMIME/);
    conn.close();
    const c = await fault.connection();
    await c.whenClosed;
    assert.equal(c.commands.filter((line) => !/^EHLO/.test(line)), []);
    await fault.close();
  });
}

test("at most 8 chunks wait for their reply: the source waits beyond that, and goes on as replies come", async () => {
  const chunk = (n: number): Step[] => Array.from({ length: n }, () => [{ expect: "BDAT 4" }, { expectBytes: 4 }] as Step[]).flat();
  let unanswered = -1;
  const { conn, fault, finish } = await faultSession([
    ...chunkingEnvelope(),
    ...chunk(1),
    { send: "250 ok\r\n250 ok\r\n250 chunk\r\n" },
    ...chunk(8),
    // A ninth chunk would be here by now if the bound did not hold.
    { delayMs: 100 },
    { call: (c) => void (unanswered = c.received.toString("latin1").split("BDAT ").length - 2) },
    { send: "250 chunk\r\n".repeat(8) },
    ...chunk(3),
    { expect: "BDAT 2 LAST" },
    { expectBytes: 2 },
    { send: "250 chunk\r\n".repeat(3) + "250 queued\r\n" },
  ], { chunking: true, bdatChunkSize: 4 });
  // 48 bytes and a CR whose LF the end adds: 12 chunks and BDAT 2 LAST.
  const info = await settlesWithin(conn.send(env, Readable.from([Buffer.alloc(48, "x"), Buffer.from("\r")])), 5000, "the send");
  assert.is(unanswered, 8, "chunks the server had while none was answered");
  assert.is(info.messageSize, 50);
  assert.is(Buffer.concat((await fault.connection()).data).toString("latin1"), "x".repeat(48) + "\r\n");
  await finish();
});

test("a connection lost while chunks are under way fails the send as not sent, with no last chunk written", async () => {
  const fault = await startFaultServer([...chunkingEnvelope(), { expect: "BDAT 4" }, { expectBytes: 4 }, { send: "250 ok\r\n250 ok\r\n" }, { expect: "BDAT 4" }, { reset: true }]);
  const conn = await connected(fault.port, { chunking: true, bdatChunkSize: 4 });
  conn.on("error", () => {});
  const out = conn.createSendStream(env);
  out.write("abcdefghij");
  const err = (await new Promise((resolve) => out.once("error", resolve))) as SMTPError;
  assert.instance(err, SMTPError);
  assert.ok(["ECONNECTION", "ESOCKET"].includes(err.code), err.code);
  assert.is(err.deliveryState, "not-sent");
  assert.not.match((await fault.connection()).received.toString("latin1"), /LAST/);
  conn.close();
  await fault.close();
});

test("BDAT commands show in the transcript and on the smtp-wire:command channel like every other command", async () => {
  const published: string[] = [];
  const logged: string[] = [];
  const onCommand = (message: unknown) => published.push((message as { line: string }).line);
  diagnostics.subscribe("smtp-wire:command", onCommand);
  const fault = await startFaultServer([
    ...chunkingEnvelope(),
    { expect: "BDAT 4" },
    { expectBytes: 4 },
    { send: "250 ok\r\n250 ok\r\n250 chunk\r\n" },
    { expect: "BDAT 1 LAST" },
    { expectBytes: 1 },
    { send: "250 queued\r\n" },
  ]);
  try {
    const logger = { debug: (...args: unknown[]) => logged.push(args.map(String).join(" ")), info() {}, error() {} };
    const conn = await connected(fault.port, { chunking: true, bdatChunkSize: 4, debug: true, logger });
    await conn.send(env, "hello");
    conn.close();
    assert.equal(published.filter((line) => line.startsWith("BDAT")), ["BDAT 4", "BDAT 1 LAST"]);
    assert.ok(logged.some((line) => line.includes("BDAT 1 LAST")), `transcript: ${logged.join(" | ")}`);
    fault.assertNoScriptErrors();
  } finally {
    diagnostics.unsubscribe("smtp-wire:command", onCommand);
    await fault.close();
  }
});

/** What a BDAT body must be on the wire: every bare CR and LF as CRLF, nothing stuffed. */
const normalised = (input: Buffer): Buffer => Buffer.from(input.toString("latin1").replace(/\r\n|\r|\n/g, "\r\n"), "latin1");

/** A server script that accepts the envelope and expects exactly the frames of `total` bytes cut at `size`. */
function framesOf(total: number, size: number): Step[] {
  const steps: Step[] = [{ expect: /^MAIL FROM:/ }, { expect: /^RCPT TO:/ }];
  let envelopeReplies = "250 ok\r\n250 ok\r\n";
  for (let left = total; ; left -= size) {
    const last = left < size;
    steps.push({ expect: last ? `BDAT ${left} LAST` : `BDAT ${size}` }, { expectBytes: last ? left : size }, { send: `${envelopeReplies}250 ${last ? "queued" : "chunk"}\r\n` });
    envelopeReplies = "";
    if (last) return steps;
  }
}

test("any slicing of random messages gives the server the same normalised bytes in the same frames (seeded)", async () => {
  const random = randomFor("bdat connection slicing");
  const rounds = Array.from({ length: 24 }, () => {
    const message = randomMessage(random, 20_000);
    return { message, chunks: splitRandomly(random, message, randomChunkLimit(random)), size: random.pick([7, 100, 1000, 4096, 65536]), wire: normalised(message) };
  });
  const fault = await startFaultServer((i) => [...greetAndEhlo(["PIPELINING", "CHUNKING"]), ...framesOf(rounds[i]!.wire.length, rounds[i]!.size)]);
  for (const [i, round] of rounds.entries()) {
    const conn = await connected(fault.port, { chunking: true, bdatChunkSize: round.size });
    const info = await settlesWithin(conn.send(env, Readable.from(round.chunks)), 10_000, `round ${i}`);
    const c = await fault.connection(i);
    const note = `round ${i}: ${round.message.length} bytes in ${round.chunks.length} writes, chunks of ${round.size}${seedNote()}`;
    assert.ok(Buffer.concat(c.data).equals(round.wire), note);
    assert.is(info.messageSize, round.wire.length, note);
    assert.is(c.commands.filter((line) => line.startsWith("BDAT")).length, Math.floor(round.wire.length / round.size) + 1, note);
    conn.close();
  }
  fault.assertNoScriptErrors();
  await fault.close();
});

interface SmallWrites {
  sha256: string;
  peakHeap: number;
  peakRss: number;
  messageSize: number;
}

/** Runs the 256-byte-writes scenario for `megabytes` against a fault server expecting 256 KiB chunks. */
async function smallWrites(megabytes: number): Promise<SmallWrites & { received: string; commands: number }> {
  const total = megabytes * MiB;
  const fault = await startFaultServer([...greetAndEhlo(["PIPELINING", "CHUNKING"]), ...framesOf(total, 256 * 1024), { expect: "QUIT" }, { send: "221 bye\r\n" }]);
  try {
    const result = await runInChild<SmallWrites>(new URL("./scenarios/bdat-small-writes.js", import.meta.url), [String(fault.port), String(megabytes)], { timeoutMs: 120_000 });
    const c = await fault.connection();
    fault.assertNoScriptErrors();
    const hash = createHash("sha256");
    for (const data of c.data) hash.update(data);
    return { ...result, received: hash.digest("hex"), commands: c.commands.filter((line) => line.startsWith("BDAT")).length };
  } finally {
    await fault.close();
  }
}

test("64 MiB in 256-byte writes: 257 BDAT commands, the bytes intact, and the heap does not grow with the message", async () => {
  const small = await smallWrites(8);
  const large = await smallWrites(64);
  assert.is(large.received, large.sha256, "the server got what was written");
  assert.is(large.messageSize, 64 * MiB);
  assert.is(large.commands, 64 * 4 + 1, "one command per 256 KiB, and BDAT 0 LAST");
  assert.is(small.commands, 8 * 4 + 1);
  const growth = large.peakHeap - small.peakHeap;
  console.log(`peak heap: 8 MiB ${(small.peakHeap / MiB).toFixed(1)} MiB, 64 MiB ${(large.peakHeap / MiB).toFixed(1)} MiB; peak RSS 64 MiB ${(large.peakRss / MiB).toFixed(1)} MiB`);
  assert.ok(growth < 16 * MiB, `heap grew by ${(growth / MiB).toFixed(1)} MiB from an 8 MiB to a 64 MiB message`);
});

leakCheckTest(test, unhandled);

test.run();
