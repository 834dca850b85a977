/**
 * SMTP smuggling (Longin, SEC Consult, December 2023): a message carries an end-of-data
 * look-alike such as "\n.\n" or "\r.\r\n" followed by a second, forged transaction. A
 * server that reads line endings loosely ends the first message there and runs the rest
 * as commands (a MAIL FROM the sender's server never checked). The DataEncoder turns every
 * bare CR and LF into CRLF and stuffs every leading dot (SPEC §7), so no byte sequence a
 * caller sends can end the data early, however it is chunked.
 *
 * Checked on the wire, through the whole connection: the body a server receives has
 * exactly one end of data even by the loosest reading (a dot alone between any two of CR,
 * LF or CRLF), at its very end; the smuggled commands arrive as body text, never as
 * commands; and undoing the dot-stuffing gives back the message with its line endings
 * made CRLF. Also: a body cut short is never completed by a terminator (the other way to
 * deliver something the caller never finished).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { Readable } from "node:stream";
import { SMTPConnection, type SMTPError } from "../../lib/index.js";
import { acceptEnvelope, greetAndEhlo, startFaultServer, type Step } from "../helpers/fault-server.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";
import { seed } from "../helpers/random.js";

const unhandled = trackUnhandled();
const env = { from: "sender@example.test", to: ["rcpt@example.test"] };
const SMUGGLED = "MAIL FROM:<admin@victim.example>\r\nRCPT TO:<target@example.test>\r\nDATA\r\nFrom: admin@victim.example\r\n\r\nforged\r\n";

/** End-of-data look-alikes from the research, and their neighbours. */
const LOOKALIKES = ["\n.\n", "\r.\r", "\r.\r\n", "\n.\r\n", "\r\n.\n", "\r\n.\r", "\n.\r", "\r\n.\r\n", "\r\n\x00.\r\n", "\r\n.\x00\r\n", "\r\r\n.\r\n"];

/**
 * Where the loosest reader would see the end of data: a dot alone on a "line" whose ends
 * may be CR, LF or CRLF. The body starts at a line start.
 */
function loosestEnd(wire: Buffer): number {
  const text = "\n" + wire.toString("latin1");
  const match = /[\r\n]\.(\r\n|\r|\n)/.exec(text);
  return match ? match.index : -1;
}

/** What a server that undoes dot-stuffing delivers from the exact bytes after the 354. */
function delivered(wire: Buffer): string {
  const text = wire.toString("latin1");
  assert.ok(text.endsWith(".\r\n"), "the body ends with the terminator");
  const body = text.slice(0, -3);
  return body.replace(/(^|\r\n)\.\./g, "$1.");
}

/** The message as a strict server must deliver it: every CR, LF or CRLF a CRLF, ended by one. */
function normalised(message: Buffer): string {
  const text = message.toString("latin1").replace(/\r\n|\r|\n/g, "\r\n");
  return text === "" || text.endsWith("\r\n") ? text : text + "\r\n";
}

/**
 * One transaction per message, then QUIT. Queued sends overlap: each after the first is
 * written behind the terminator of the one before and so starts with RSET.
 */
function transactions(count: number, queued = false): Step[] {
  // The replies to a pipelined group are separate writes: without NODELAY each waits ~40 ms for an ACK.
  const steps: Step[] = [{ call: (c) => void c.socket.setNoDelay(true) }, ...greetAndEhlo(["PIPELINING"])];
  for (let i = 0; i < count; i++) {
    if (queued && i > 0) steps.push({ expect: "RSET" }, { send: "250 2.0.0 Ok\r\n" });
    steps.push(...acceptEnvelope(1), { expectData: true }, { send: "250 2.0.0 Queued\r\n" });
  }
  steps.push({ expect: "QUIT" }, { send: "221 Bye\r\n" });
  return steps;
}

function assertNotSmuggled(wire: Buffer, commands: string[], what: string): void {
  const end = loosestEnd(wire);
  assert.is(end, wire.length - 3, `${what}: the only end of data, even read loosely, is the last 3 bytes (found at ${end} of ${wire.length})`);
  assert.not.ok(
    commands.some((line) => line.includes("victim")),
    `${what}: the forged transaction never became commands`,
  );
}

test("every end-of-data look-alike from the research reaches the server as body text, in any position and chunking", async () => {
  const messages: { what: string; chunks: Buffer[] }[] = [];
  for (const lookalike of LOOKALIKES) {
    const whole = Buffer.from(`Subject: hi\r\n\r\nbefore${lookalike}${SMUGGLED}.\r\nafter`, "latin1");
    messages.push({ what: JSON.stringify(lookalike), chunks: [whole] });
    // Cut right inside the look-alike: the encoder must carry a pending CR across chunks.
    const at = whole.indexOf(lookalike) + 1;
    messages.push({ what: `${JSON.stringify(lookalike)} split after its first byte`, chunks: [whole.subarray(0, at), whole.subarray(at)] });
    messages.push({ what: `${JSON.stringify(lookalike)} at the very start`, chunks: [Buffer.from(`${lookalike.replace(/^[\r\n]+/, "")}${SMUGGLED}`, "latin1")] });
    messages.push({ what: `${JSON.stringify(lookalike)} at the very end`, chunks: [Buffer.from(`body${lookalike}`, "latin1")] });
  }
  const server = await startFaultServer(transactions(messages.length));
  const conn = new SMTPConnection({ host: server.host, port: server.port });
  await conn.connect();
  for (const { chunks } of messages) await conn.send(env, Readable.from(chunks));
  await conn.quit();
  const c = await server.connection();
  server.assertNoScriptErrors();
  assert.is(c.data.length, messages.length, "one message per send, none split in two");
  messages.forEach(({ what, chunks }, i) => {
    assertNotSmuggled(c.data[i]!, c.commands, what);
    assert.is(delivered(c.data[i]!), normalised(Buffer.concat(chunks)), `${what}: delivered as sent, line endings made CRLF`);
  });
  await server.close();
});

/** Bytes rich in what an encoder can get wrong: CR, LF, dots, NUL, look-alikes, plain text. */
const piece = fc.oneof(
  fc.constantFrom("\r", "\n", "\r\n", ".", "..", "\0", " ", "x", "MAIL FROM:<a@b>", ...LOOKALIKES).map((s) => Buffer.from(s, "latin1")),
  fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
);
const message = fc.tuple(fc.array(piece, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 6 })).map(([pieces, cuts]) => {
  const whole = Buffer.concat(pieces);
  const at = [...new Set(cuts.map((c) => (whole.length ? c % whole.length : 0)))].filter((c) => c > 0).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const c of at) (chunks.push(whole.subarray(from, c)), (from = c));
  chunks.push(whole.subarray(from));
  return { whole, chunks };
});

test("random bytes in random chunks: one end of data, at the end, and the message delivered as sent with CRLF line endings", async () => {
  const RUNS = 150;
  const samples = fc.sample(message, { seed, numRuns: RUNS });
  const server = await startFaultServer(transactions(RUNS, true));
  const conn = new SMTPConnection({ host: server.host, port: server.port });
  await conn.connect();
  // The sends are queued at once: pipelined one after another on the one connection.
  await settlesWithin(Promise.all(samples.map(({ chunks }) => conn.send(env, Readable.from(chunks)))), 20_000, "the sends");
  await conn.quit();
  const c = await server.connection();
  server.assertNoScriptErrors();
  samples.forEach(({ whole }, i) => {
    const what = `sample ${i} ${JSON.stringify(whole.toString("latin1"))} (seed ${seed})`;
    assertNotSmuggled(c.data[i]!, [], what);
    assert.is(delivered(c.data[i]!), normalised(whole), `${what}: delivered as sent`);
  });
  await server.close();
});

test("a body cut short is never completed: the source fails after a look-alike, and no terminator follows it", async () => {
  const server = await startFaultServer([...greetAndEhlo(["PIPELINING"]), ...acceptEnvelope(1), { expectData: true }, { send: "250 must not happen\r\n" }]);
  const conn = new SMTPConnection({ host: server.host, port: server.port });
  await conn.connect();
  const source = new Readable({ read() {} });
  source.push(Buffer.from(`Subject: hi\r\n\r\nbefore\n.\n${SMUGGLED}`));
  const sent = conn.send(env, source).then(
    () => undefined,
    (err: SMTPError) => err,
  );
  const c = await server.connection();
  await settlesWithin(
    (async () => {
      while (!c.received.includes("forged")) await new Promise((resolve) => setTimeout(resolve, 2));
    })(),
    5000,
    "the body reaching the server",
  );
  source.destroy(new Error("upstream connection lost"));
  const err = await settlesWithin(sent, 5000, "the send");
  assert.is(err?.code, "ESTREAM");
  await c.whenClosed;
  const wire = c.received.subarray(c.received.indexOf("DATA\r\n") + 6);
  assert.ok(wire.includes("forged"), "the body went out");
  assert.is(loosestEnd(wire), -1, "no end of data at all, not even a loose one");
  await server.close();
});

test("leaves no socket, timer or rejection behind", async () => {
  unhandled.assertNone();
  await assertNoLeaks();
});

test.run();
