/**
 * Sends queued on one connection overlap (RFC 2920 §3.1): once a message's terminator (or
 * last BDAT chunk) is on the wire, the next send writes RSET, MAIL, RCPT and DATA behind
 * it without waiting for the final reply, so a queue of messages costs one round trip per
 * message instead of two. RSET leads because whether the message before was accepted is
 * not known yet (SPEC §3: after a failed transaction RSET precedes the next one).
 *
 * The scripted servers below answer a message's final reply only after they have read the
 * next envelope: a client that waited for the final reply before writing it would hang
 * there, and settlesWithin fails the test instead.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable } from "node:stream";
import { SMTPError, type SMTPConnectionOptions } from "../lib/index.js";
import { acceptEnvelope, acceptPipelinedEnvelope, greetAndEhlo, startFaultServer, type FaultConnection, type Step } from "./helpers/fault-server.js";
import { startServer } from "./helpers/server.js";
import { settlesWithin } from "./helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";
import { connected } from "./helpers/client.js";

const unhandled = trackUnhandled();
const env = (n: number) => ({ from: "sender@example.test", to: [`rcpt${n}@example.test`] });

/** The second envelope as it arrives behind the first terminator: RSET, MAIL, RCPT, DATA. */
const overlappedEnvelope: Step[] = [{ expect: "RSET" }, { expect: /^MAIL FROM:/ }, { expect: /^RCPT TO:/ }, { expect: "DATA" }];

/** Settles every promise and gives back, for each, its value or its error. */
function outcomes<T>(promises: Promise<T>[]): Promise<(T | SMTPError)[]> {
  return settlesWithin(
    Promise.all(promises.map((p) => p.then((value) => value, (err: SMTPError) => err))),
    5000,
    "the queued sends",
  );
}

/**
 * Two messages, the second overlapping the first: the first's final reply (`firstFinal`) is
 * sent only once the second envelope is in, then the second is accepted. `atTerminator`
 * runs when the first body has been read.
 */
function overlappedPair(firstFinal: string, atTerminator: Step[] = []): Step[] {
  return [
    ...untilOverlapped(atTerminator),
    { send: `${firstFinal}\r\n250 2.0.0 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n` },
    { expectData: true },
    { send: "250 2.0.0 second queued\r\n" },
  ];
}

/** Up to the point where the first body and the second envelope are in and nothing is answered yet. */
function untilOverlapped(atTerminator: Step[] = []): Step[] {
  return [...greetAndEhlo(["PIPELINING"]), ...acceptPipelinedEnvelope(), { expectData: true }, ...atTerminator, ...overlappedEnvelope];
}

test("a queued send's envelope follows the terminator before the final reply: one round trip per message", async () => {
  let withTerminator = "";
  // What had arrived by the time the terminator was read: the next envelope, right behind it.
  const noteArrivals: Step = { call: (c) => void (withTerminator = c.received.subarray(c.received.indexOf("\r\n.\r\n")).toString()) };
  const fault = await startFaultServer(overlappedPair("250 2.0.0 first queued", [noteArrivals]));
  const conn = await connected(fault.port);
  const [first, second] = await outcomes([conn.send(env(1), "one\r\n"), conn.send(env(2), Readable.from(["two\r\n"]))]);
  fault.assertNoScriptErrors();
  assert.is((first as { response: string }).response, "250 2.0.0 first queued");
  assert.is((second as { response: string }).response, "250 2.0.0 second queued");
  const c = await fault.connection();
  assert.equal(c.data.map(String), ["one\r\n.\r\n", "two\r\n.\r\n"]);
  assert.match(withTerminator, /^\r\n\.\r\nRSET\r\nMAIL FROM:<sender@example\.test>\r\nRCPT TO:<rcpt2@example\.test>\r\nDATA\r\n$/);
  conn.close();
  await fault.close();
});

test("the first message refused at its final reply: it fails with EMESSAGE, the second (after RSET) is accepted", async () => {
  const fault = await startFaultServer([
    ...overlappedPair("554 5.7.1 first refused"),
    // A third send, awaited on its own: the refusal was already followed by an RSET.
    ...acceptPipelinedEnvelope(),
    { expectData: true },
    { send: "250 2.0.0 third queued\r\n" },
  ]);
  const conn = await connected(fault.port);
  const [first, second] = await outcomes([conn.send(env(1), "one"), conn.send(env(2), "two")]);
  const third = await conn.send(env(3), "three");
  fault.assertNoScriptErrors();
  const err = first as SMTPError;
  assert.is(err.code, "EMESSAGE");
  assert.is(err.responseCode, 554);
  assert.is((second as { response: string }).response, "250 2.0.0 second queued");
  assert.is(third.response, "250 2.0.0 third queued");
  const c = await fault.connection();
  assert.equal(c.commands.filter((line) => line === "RSET").length, 1, "one RSET: the one leading the overlapped envelope");
  conn.close();
  await fault.close();
});

test("a queued stream destroyed before its turn writes nothing, and the send behind it overlaps the first instead", async () => {
  const fault = await startFaultServer(overlappedPair("250 2.0.0 first queued"));
  const conn = await connected(fault.port);
  const first = conn.send(env(1), "one");
  const abandoned = conn.createSendStream(env(2));
  const abandonedError = new Promise<SMTPError>((resolve) => abandoned.once("error", resolve));
  abandoned.destroy(new Error("the caller gave up"));
  const [firstInfo, thirdInfo] = await outcomes([first, conn.send(env(3), "three")]);
  fault.assertNoScriptErrors();
  assert.is((await abandonedError).code, "ESTREAM");
  assert.is((firstInfo as { response: string }).response, "250 2.0.0 first queued");
  assert.is((thirdInfo as { response: string }).response, "250 2.0.0 second queued");
  const c = await fault.connection();
  assert.not.ok(c.commands.some((line) => line.includes("rcpt2@")), "nothing was written for the destroyed stream");
  conn.close();
  await fault.close();
});

test("a 421 as the first final reply fails both sends, temporary, and closes the connection", async () => {
  const fault = await startFaultServer([...untilOverlapped(), { send: "421 4.3.2 shutting down\r\n" }, { close: true }]);
  const conn = await connected(fault.port);
  const ended = new Promise<void>((resolve) => conn.once("end", resolve));
  const [first, second] = await outcomes([conn.send(env(1), "one"), conn.send(env(2), "two")]);
  fault.assertNoScriptErrors();
  for (const err of [first, second] as SMTPError[]) {
    assert.is(err.code, "ECONNECTION");
    assert.is(err.temporary, true);
  }
  assert.is((first as SMTPError).responseCode, 421);
  await settlesWithin(ended, 2000, "end");
  await fault.close();
});

test("the connection lost after the first terminator fails both sends with ECONNECTION", async () => {
  const fault = await startFaultServer([...untilOverlapped(), { reset: true }]);
  const conn = await connected(fault.port);
  conn.on("error", () => {});
  const results = (await outcomes([conn.send(env(1), "one"), conn.send(env(2), "two")])) as SMTPError[];
  assert.equal(
    results.map((err) => err.code),
    ["ECONNECTION", "ECONNECTION"],
  );
  await fault.close();
});

test("a server that stalls after the overlapped envelope fails both sends with ETIMEDOUT, and a garbage final reply with EPROTOCOL", async () => {
  for (const [fault, code] of [
    [{ stall: true }, "ETIMEDOUT"],
    [{ send: "hello there\r\n" }, "EPROTOCOL"],
  ] as [Step, string][]) {
    const server = await startFaultServer([...untilOverlapped(), fault, { stall: true }]);
    const conn = await connected(server.port, { socketTimeout: 200 });
    const emitted: SMTPError[] = [];
    conn.on("error", (err: SMTPError) => emitted.push(err));
    const ended = new Promise<void>((resolve) => conn.once("end", resolve));
    const results = (await outcomes([conn.send(env(1), "one"), conn.send(env(2), "two")])) as SMTPError[];
    assert.equal(
      results.map((err) => err.code),
      [code, code],
      `after ${JSON.stringify(fault)}`,
    );
    assert.ok(results.every((err) => err instanceof SMTPError), "SMTPErrors");
    await settlesWithin(ended, 2000, "end");
    // One failure, told once: each send its own error with the failure as cause, and at
    // most one 'error' event carrying that failure. The first message's end of data is on
    // the wire (it may have been delivered); the second never got past its envelope.
    assert.is.not(results[0], results[1]);
    assert.is(results[0]!.cause, results[1]!.cause);
    assert.equal(
      results.map((err) => [err.command, err.deliveryState]),
      [
        ["DATA", "unknown"],
        ["RSET", "not-sent"],
      ],
    );
    assert.ok(emitted.length <= 1 && emitted.every((err) => err === results[0]!.cause), `one 'error' event at most (${emitted.length})`);
    await server.close();
  }
});

/** A server taking each message one round trip at a time: MAIL only after the final reply. */
function stepByStep(extensions: string[]): Step[] {
  const steps: Step[] = [...greetAndEhlo(extensions)];
  for (const n of [1, 2]) steps.push(...acceptEnvelope(1), { expectData: true }, { send: `250 2.0.0 queued ${n}\r\n` });
  return steps;
}

test("nothing overlaps without PIPELINING, or with pipelining: false", async () => {
  for (const [extensions, options] of [
    [[], {}],
    [["PIPELINING"], { pipelining: false }],
  ] as [string[], SMTPConnectionOptions][]) {
    const fault = await startFaultServer(stepByStep(extensions));
    const conn = await connected(fault.port, options);
    const results = await outcomes([conn.send(env(1), "one"), conn.send(env(2), "two")]);
    fault.assertNoScriptErrors();
    assert.equal(
      results.map((info) => (info as { response: string }).response),
      ["250 2.0.0 queued 1", "250 2.0.0 queued 2"],
    );
    assert.not.ok((await fault.connection()).commands.includes("RSET"), `no RSET with ${JSON.stringify(extensions)} ${JSON.stringify(options)}`);
    conn.close();
    await fault.close();
  }
});

test("reset() and quit() queued behind a send wait for its final reply", async () => {
  const afterTerminator: number[] = [];
  /** How many bytes arrived after the first body's terminator, while its final reply is held back. */
  const note = (c: FaultConnection) => {
    const end = c.received.lastIndexOf("\r\n.\r\n") + 5;
    afterTerminator.push(c.received.length - end);
  };
  const fault = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    ...acceptPipelinedEnvelope(),
    { expectData: true },
    { delayMs: 50 },
    { call: note },
    { send: "250 2.0.0 queued\r\n" },
    { expect: "RSET" },
    { send: "250 2.0.0 reset\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  const conn = await connected(fault.port);
  const [info, reset, quit] = await outcomes<unknown>([conn.send(env(1), "one"), conn.reset(), conn.quit()]);
  fault.assertNoScriptErrors();
  assert.is((info as { response: string }).response, "250 2.0.0 queued");
  assert.is(reset, true);
  assert.is(quit, undefined);
  assert.equal(afterTerminator, [0], "nothing was written behind the terminator before the final reply");
  await fault.close();
});

test("LMTP: the next envelope follows the terminator, and the per-recipient replies stay with their message", async () => {
  const fault = await startFaultServer([
    { send: "220 lmtp ready\r\n" },
    { expect: /^LHLO / },
    { send: "250-lmtp\r\n250 PIPELINING\r\n" },
    { expect: /^MAIL FROM:/ },
    { expect: /^RCPT TO:/ },
    { expect: /^RCPT TO:/ },
    { expect: "DATA" },
    { send: "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n" },
    { expectData: true },
    { expect: "RSET" },
    { expect: /^MAIL FROM:/ },
    { expect: /^RCPT TO:/ },
    { expect: "DATA" },
    { send: "250 2.0.0 <a> saved\r\n552 5.2.2 <b> over quota\r\n250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n" },
    { expectData: true },
    { send: "250 2.0.0 <c> saved\r\n" },
  ]);
  const conn = await connected(fault.port, { lmtp: true });
  const [first, second] = await outcomes([
    conn.send({ from: "x@example.test", to: ["a@example.test", "b@example.test"] }, "one"),
    conn.send({ from: "x@example.test", to: ["c@example.test"] }, "two"),
  ]);
  fault.assertNoScriptErrors();
  const one = first as { accepted: string[]; rejected: string[] };
  assert.equal([one.accepted, one.rejected], [["a@example.test"], ["b@example.test"]]);
  assert.equal((second as { accepted: string[] }).accepted, ["c@example.test"]);
  conn.close();
  await fault.close();
});

test("BDAT: each message goes with its envelope as BDAT n LAST, and the next envelope follows before the final reply", async () => {
  // The envelope's replies come first; once they are in, the message is complete on the
  // wire and the next send writes RSET, MAIL, RCPT and its own chunk behind it.
  const fault = await startFaultServer([
    ...greetAndEhlo(["PIPELINING", "CHUNKING"]),
    { expect: /^MAIL FROM:/ },
    { expect: /^RCPT TO:/ },
    { expect: "BDAT 5 LAST" },
    { expectBytes: 5 },
    { send: "250 ok\r\n250 ok\r\n" },
    { expect: "RSET" },
    { expect: /^MAIL FROM:/ },
    { expect: /^RCPT TO:/ },
    { expect: "BDAT 5 LAST" },
    { expectBytes: 5 },
    { send: "250 first queued\r\n250 reset\r\n250 ok\r\n250 ok\r\n250 second queued\r\n" },
  ]);
  const conn = await connected(fault.port, { chunking: true });
  const results = await outcomes([conn.send(env(1), "one\r\n"), conn.send(env(2), "two\r\n")]);
  fault.assertNoScriptErrors();
  assert.equal(
    results.map((info) => (info as { response: string }).response),
    ["250 first queued", "250 second queued"],
  );
  conn.close();
  await fault.close();
});

test("smtp-server: 30 queued sends, strings and streams mixed, arrive whole and in order; sends awaited one by one need no RSET", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const bodies = Array.from({ length: 30 }, (_, i) => `Subject: ${i}\r\n\r\n${".line\r\n".repeat(i)}end ${i}\r\n`);
  const infos = await settlesWithin(
    Promise.all(bodies.map((body, i) => conn.send(env(i), i % 2 ? body : Readable.from([body.slice(0, 7), body.slice(7)])))),
    10_000,
    "30 queued sends",
  );
  assert.equal(
    infos.map((info) => info.accepted),
    bodies.map((_, i) => [`rcpt${i}@example.test`]),
  );
  assert.equal(
    server.messages.map((m) => m.data.toString()),
    bodies,
  );
  assert.equal(
    server.messages.map((m) => m.to),
    bodies.map((_, i) => [`rcpt${i}@example.test`]),
  );
  const queuedResets = server.commands.filter((line) => line === "RSET").length;
  assert.ok(queuedResets > 0 && queuedResets <= 29, `RSET leads the overlapped envelopes (${queuedResets})`);
  for (const i of [30, 31]) await conn.send(env(i), "awaited\r\n");
  assert.is(server.commands.filter((line) => line === "RSET").length, queuedResets, "no RSET between awaited successful sends");
  await conn.quit();
  await server.close();
});

leakCheckTest(test, unhandled);
test.run();
