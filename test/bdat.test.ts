/**
 * CHUNKING (RFC 3030): with `chunking: true` and a server offering CHUNKING and
 * PIPELINING, the body goes as length-prefixed BDAT chunks instead of DATA.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable } from "node:stream";
import { SMTPConnection, type SMTPConnectionOptions, SMTPError, BdatEncoder } from "../lib/index.js";
import { startFaultServer, greetAndEhlo, type Step } from "./helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";

const unhandled = trackUnhandled();
const env = { from: "a@example.test", to: ["b@example.test"] };
const envelopeReplies: Step[] = [{ expect: /^MAIL FROM:/ }, { expect: /^RCPT TO:/ }, { send: "250 ok\r\n250 ok\r\n" }];

/** A connection to 127.0.0.1:`port`, once its handshake is done. */
async function connected(port: number, options: SMTPConnectionOptions = {}): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ port, host: "127.0.0.1", ...options });
  await conn.connect();
  return conn;
}

/** A fault server offering PIPELINING and CHUNKING that accepts the envelope and then plays `steps`, and a chunking connection to it. */
async function chunkingSession(steps: Step[]) {
  const fault = await startFaultServer([...greetAndEhlo(["PIPELINING", "CHUNKING"]), ...envelopeReplies, ...steps]);
  const conn = await connected(fault.port, { chunking: true });
  return { fault, conn };
}

test("sends the body as BDAT chunks and BDAT 0 LAST, normalising line ends, without dot-stuffing", async () => {
  const { fault, conn } = await chunkingSession([
    { expect: "BDAT 11" },
    { expectBytes: 11 },
    { expect: "BDAT 0 LAST" },
    { send: "250 2.0.0 chunk ok\r\n250 2.0.0 queued\r\n" },
  ]);
  const info = await conn.send(env, ".a\nb\r.c\r\n");
  assert.is(info.response, "250 2.0.0 queued");
  assert.is(info.messageSize, 11, "the sum of the chunk payloads");
  const c = await fault.connection();
  assert.is(c.data[0]!.toString("latin1"), ".a\r\nb\r\n.c\r\n");
  assert.not.ok(c.commands.includes("DATA"));
  conn.close();
  fault.assertNoScriptErrors();
  await fault.close();
});

test("a streamed body becomes one chunk per write", async () => {
  const { fault, conn } = await chunkingSession([
    { expect: "BDAT 3" },
    { expectBytes: 3 },
    { expect: "BDAT 4" },
    { expectBytes: 4 },
    { expect: "BDAT 0 LAST" },
    { send: "250 one\r\n250 two\r\n250 done\r\n" },
  ]);
  const info = await conn.send(env, Readable.from([Buffer.from("abc"), Buffer.from("de\r\n")]));
  assert.is(info.messageSize, 7);
  const c = await fault.connection();
  assert.equal(c.data.map((d) => d.toString()), ["abc", "de\r\n"]);
  conn.close();
  await fault.close();
});

test("a refused chunk fails the send with EMESSAGE naming BDAT, and the next send starts with RSET", async () => {
  const { fault, conn } = await chunkingSession([
    { expect: "BDAT 5" },
    { expectBytes: 5 },
    { expect: "BDAT 0 LAST" },
    { send: "552 5.3.4 Message too big\r\n503 5.5.1 No transaction\r\n" },
    { expect: "RSET" },
    { expect: /^MAIL FROM:/ },
    { expect: /^RCPT TO:/ },
    { send: "250 reset\r\n250 ok\r\n250 ok\r\n" },
    { expect: "BDAT 2" },
    { expectBytes: 2 },
    { expect: "BDAT 0 LAST" },
    { send: "250 chunk\r\n250 queued\r\n" },
  ]);
  const err = (await conn.send(env, "hello").catch((e) => e)) as SMTPError;
  assert.instance(err, SMTPError);
  assert.is(err.code, "EMESSAGE");
  assert.is(err.command, "BDAT");
  assert.is(err.responseCode, 552);
  assert.is(err.enhancedCode, "5.3.4");
  const info = await conn.send(env, "ok");
  assert.is(info.response, "250 queued");
  conn.close();
  fault.assertNoScriptErrors();
  await fault.close();
});

test("LMTP: BDAT 0 LAST gets one reply per accepted recipient", async () => {
  const fault = await startFaultServer([
    { send: "220 lmtp\r\n" },
    { expect: /^LHLO / },
    { send: "250-lmtp\r\n250-PIPELINING\r\n250 CHUNKING\r\n" },
    { expect: /^MAIL FROM:/ },
    { expect: /^RCPT TO:/ },
    { expect: /^RCPT TO:/ },
    { send: "250 ok\r\n250 ok\r\n250 ok\r\n" },
    { expect: "BDAT 2" },
    { expectBytes: 2 },
    { expect: "BDAT 0 LAST" },
    { send: "250 chunk\r\n250 2.0.0 <a> saved\r\n552 5.2.2 <b> full\r\n" },
  ]);
  const conn = await connected(fault.port, { chunking: true, lmtp: true });
  const info = await conn.send({ from: "x@example.test", to: ["a@example.test", "b@example.test"] }, "hi");
  assert.equal(info.accepted, ["a@example.test"]);
  assert.equal(info.rejected, ["b@example.test"]);
  assert.is(info.rejectedErrors![0]!.command, "BDAT");
  conn.close();
  await fault.close();
});

test("DATA is used when chunking is off, or the server lacks CHUNKING or PIPELINING", async () => {
  for (const [options, extensions] of [
    [{}, ["PIPELINING", "CHUNKING"]],
    [{ chunking: true }, ["PIPELINING"]],
    [{ chunking: true }, ["CHUNKING"]],
  ] as const) {
    const pipelined = (extensions as readonly string[]).includes("PIPELINING");
    const fault = await startFaultServer([
      ...greetAndEhlo([...extensions]),
      { expect: /^MAIL FROM:/ },
      ...(pipelined ? [] : [{ send: "250 ok\r\n" }]),
      { expect: /^RCPT TO:/ },
      ...(pipelined ? [] : [{ send: "250 ok\r\n" }]),
      { expect: "DATA" },
      { send: pipelined ? "250 ok\r\n250 ok\r\n354 go\r\n" : "354 go\r\n" },
      { expectData: true },
      { send: "250 done\r\n" },
    ] as Step[]);
    const conn = await connected(fault.port, { ...options });
    assert.is((await conn.send(env, "x")).response, "250 done");
    conn.close();
    fault.assertNoScriptErrors();
    await fault.close();
  }
});

test("BdatEncoder frames each chunk and announces it before pushing", async () => {
  const announced: [number, boolean][] = [];
  const encoder = new BdatEncoder({ onChunk: (size, last) => announced.push([size, last]) });
  const out: Buffer[] = [];
  encoder.on("data", (chunk: Buffer) => out.push(chunk));
  encoder.write(Buffer.from("abc"));
  encoder.write(Buffer.alloc(0));
  encoder.write("xy");
  encoder.end();
  await new Promise((resolve) => encoder.once("end", resolve));
  assert.is(Buffer.concat(out).toString(), "BDAT 3\r\nabcBDAT 2\r\nxyBDAT 0 LAST\r\n");
  assert.equal(announced, [[3, false], [2, false], [0, true]]);
  assert.is(encoder.bytes, 5);
});

leakCheckTest(test, unhandled);

test.run();
