/**
 * Fuzzing the reply side (issue 4): fast-check feeds LineSplitter, ReplyDecoder and the
 * two piped together with random bytes (biased towards what SMTP replies are made of) in
 * random chunkings. Whatever arrives, nothing throws out of write(), every run settles
 * (ends or fails), a failure is an SMTPError EPROTOCOL, the limits hold, and the outcome
 * does not depend on how the bytes were cut. ReplyDecoder is also checked against a small
 * model of RFC 5321 §4.2 written here, and the two stages against the connection's own
 * reply pipeline fed the same bytes over a loopback socket.
 *
 * fast-check prints the seed and the shrunk counterexample of a failure; TEST_SEED fixes
 * the seed (test/helpers/random.ts).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { isUtf8 } from "node:buffer";
import { once } from "node:events";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { ReplyPipeline } from "../../lib/reply-pipeline.js";
import { LineSplitter } from "../../lib/stages/line-splitter.js";
import { ReplyDecoder } from "../../lib/stages/reply-decoder.js";
import { SMTPError } from "../../lib/errors.js";
import type { Reply } from "../../lib/types.js";
import { seed } from "../helpers/random.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";

trackUnhandled();
const RUNS = { seed, numRuns: 300 };
const MAX_LINE = 32;
const MAX_LINES = 6;
const MAX_REPLY_BYTES = 200;

/** Pieces replies are made of, so random input often gets deep into the parser. */
const PIECES = ["250", "220", "421", "550", "354", "199", "600", "25", "-", " ", "\r\n", "\n", "\r", "\0", "ok", "2.1.0", "x".repeat(40), "é"];
const piece = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...PIECES).map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)) },
);
const bytes = fc.array(piece, { maxLength: 60 }).map((parts) => Buffer.concat(parts));
/** Bytes and where to cut them. */
const chunked = fc.tuple(bytes, fc.array(fc.nat(), { maxLength: 20 })).map(([data, cuts]) => ({ data, chunks: cut(data, cuts) }));

function cut(data: Buffer, cuts: number[]): Buffer[] {
  if (data.length === 0) return [data];
  const at = [...new Set(cuts.map((c) => c % data.length))].filter((c) => c > 0).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const c of at) (chunks.push(data.subarray(from, c)), (from = c));
  chunks.push(data.subarray(from));
  return chunks;
}

interface Run<T> {
  out: T[];
  error?: unknown;
}

/** Writes `inputs` into `stage` (each after the last one's callback), ends it, and waits until it ends or fails. */
async function drive<T>(stage: LineSplitter | ReplyDecoder, inputs: (Buffer | string)[]): Promise<Run<T>> {
  const out: T[] = [];
  let error: unknown;
  stage.on("data", (item: T) => out.push(item));
  stage.on("error", (err) => (error ??= err));
  const settled = new Promise<void>((resolve) => (stage.once("end", resolve), stage.once("close", resolve)));
  for (const input of inputs) {
    if (error !== undefined || stage.destroyed) break;
    await new Promise<void>((resolve) => stage.write(input, () => resolve()));
  }
  if (error === undefined && !stage.destroyed) stage.end();
  await settlesWithin(settled, 5000, "the stage ending or failing");
  return { out, error };
}

function assertProtocolError(error: unknown): void {
  if (error === undefined) return;
  assert.instance(error, SMTPError, `an SMTPError, got ${String(error)}`);
  assert.is((error as SMTPError).code, "EPROTOCOL");
}

test("LineSplitter: any bytes in any chunking give the same lines, within the limit, or EPROTOCOL; never a throw", async () => {
  await fc.assert(
    fc.asyncProperty(chunked, async ({ data, chunks }) => {
      const whole = await drive<Buffer>(new LineSplitter({ maxLineLength: MAX_LINE }), [data]);
      const pieces = await drive<Buffer>(new LineSplitter({ maxLineLength: MAX_LINE }), chunks);
      assertProtocolError(whole.error);
      assertProtocolError(pieces.error);
      assert.equal(pieces.out.map(String), whole.out.map(String), "the chunking does not change the lines");
      assert.is(pieces.error === undefined, whole.error === undefined, "nor whether it fails");
      for (const line of pieces.out) {
        assert.ok(line.length <= MAX_LINE, `line of ${line.length} bytes passed a ${MAX_LINE}-byte limit`);
        assert.is(line.indexOf(0x0a), -1, "no LF inside a line");
      }
    }),
    RUNS,
  );
});

/** RFC 5321 §4.2 as plainly as it can be said: the model the decoder is compared with. */
function model(lines: Buffer[]): { replies: { code: number; lines: string[] }[]; fails: boolean } {
  const replies: { code: number; lines: string[] }[] = [];
  let code = 0;
  let texts: string[] = [];
  let size = 0;
  let count = 0;
  for (const line of lines) {
    const text = line.toString("latin1");
    // A blank line is skipped (as Nodemailer does) but counts against the limits.
    const blank = /^[ \t\r]*$/.test(text);
    if (!blank && (!/^[2-5][0-9]{2}([ -]|$)/.test(text) || text.includes("\0"))) return { replies, fails: true };
    const lineCode = Number(text.slice(0, 3));
    if (!blank && code !== 0 && lineCode !== code) return { replies, fails: true };
    size += line.length + 2;
    if (++count > MAX_LINES || size > MAX_REPLY_BYTES) return { replies, fails: true };
    if (blank) continue;
    code = lineCode;
    const bytes = line.subarray(4);
    texts.push(isUtf8(bytes) ? bytes.toString("utf8") : bytes.toString("latin1"));
    if (text[3] !== "-") {
      replies.push({ code, lines: texts });
      code = 0;
      texts = [];
      size = 0;
      count = 0;
    }
  }
  return { replies, fails: texts.length > 0 };
}

const replyLine = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom("250", "220", "550", "421", "354"), fc.constantFrom(" ", "-", ""), fc.constantFrom("", "ok", "2.0.0 done", "x".repeat(60))).map(([c, s, t]) => Buffer.from(c + s + (s ? t : ""))) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b.filter((byte) => byte !== 0x0a))) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "\t\r", "25", "199 x", "600 x", "250x", "250 a\0b", "2500").map((s) => Buffer.from(s)) },
);

/** A whole multi-line reply of 1 to 9 lines: reaches the line and byte limits often. */
const replyGroup = fc
  .tuple(fc.constantFrom("250", "220", "550"), fc.integer({ min: 1, max: MAX_LINES + 3 }), fc.nat({ max: 80 }).map((n) => "x".repeat(n)))
  .map(([code, count, text]) => Array.from({ length: count }, (_, i) => Buffer.from(code + (i < count - 1 ? "-" : " ") + text)));
const replyLines = fc.array(fc.oneof({ weight: 3, arbitrary: replyGroup }, { weight: 2, arbitrary: replyLine.map((line) => [line]) }), { maxLength: 10 }).map((groups) => groups.flat());

test("ReplyDecoder: any lines give the replies a plain model of RFC 5321 §4.2 gives, within the limits, or EPROTOCOL", async () => {
  // The input must reach both outcomes often, or the comparison proves little.
  const seen = { replies: 0, failures: 0, runs: 0 };
  await fc.assert(
    fc.asyncProperty(replyLines, async (lines) => {
      const run = await drive<Reply>(new ReplyDecoder({ maxLines: MAX_LINES, maxReplyBytes: MAX_REPLY_BYTES }), lines);
      seen.runs++;
      if (run.out.length > 0) seen.replies++;
      if (run.error !== undefined) seen.failures++;
      assertProtocolError(run.error);
      const expected = model(lines);
      assert.equal(
        run.out.map((r) => ({ code: r.code, lines: r.lines })),
        expected.replies,
        "the same replies as the model",
      );
      assert.is(run.error !== undefined, expected.fails, "fails exactly when the model does");
      for (const reply of run.out) {
        assert.ok(reply.code >= 200 && reply.code <= 599);
        assert.ok(reply.lines.length <= MAX_LINES);
      }
    }),
    RUNS,
  );
  assert.ok(seen.replies > seen.runs / 10 && seen.failures > seen.runs / 10, `runs with replies / failures: ${JSON.stringify(seen)}`);
});

test("LineSplitter piped into ReplyDecoder: any bytes in any chunking give the same replies or EPROTOCOL, and always settle", async () => {
  const pipeline = async (chunks: Buffer[]): Promise<Run<Reply>> => {
    const splitter = new LineSplitter({ maxLineLength: MAX_LINE });
    const decoder = new ReplyDecoder({ maxLines: MAX_LINES, maxReplyBytes: MAX_REPLY_BYTES });
    const out: Reply[] = [];
    let error: unknown;
    // A failure of either stage stops both, as the connection's teardown does.
    const fail = (err: unknown) => {
      error ??= err;
      splitter.destroy();
      decoder.destroy();
    };
    splitter.on("error", fail);
    decoder.on("error", fail);
    decoder.on("data", (reply: Reply) => out.push(reply));
    const settled = new Promise<void>((resolve) => (decoder.once("end", resolve), decoder.once("close", resolve)));
    splitter.pipe(decoder);
    for (const chunk of chunks) {
      if (error !== undefined) break;
      await new Promise<void>((resolve) => splitter.write(chunk, () => resolve()));
    }
    if (error === undefined) splitter.end();
    await settled;
    return { out, error };
  };
  await fc.assert(
    fc.asyncProperty(chunked, async ({ data, chunks }) => {
      const whole = await settlesWithin(pipeline([data]), 5000, "the pipeline");
      const pieces = await settlesWithin(pipeline(chunks), 5000, "the pipeline");
      assertProtocolError(whole.error);
      assertProtocolError(pieces.error);
      assert.equal(
        pieces.out.map((r) => [r.code, r.lines]),
        whole.out.map((r) => [r.code, r.lines]),
        "the chunking does not change the replies",
      );
    }),
    { ...RUNS, numRuns: 200 },
  );
});

/** Bytes through LineSplitter piped into ReplyDecoder (default limits), ended: the replies and the first failure. */
async function throughStages(chunks: Buffer[]): Promise<Run<Reply>> {
  const splitter = new LineSplitter();
  const decoder = new ReplyDecoder();
  const out: Reply[] = [];
  let error: unknown;
  const fail = (err: unknown) => ((error ??= err), splitter.destroy(), decoder.destroy());
  splitter.on("error", fail);
  decoder.on("error", fail);
  decoder.on("data", (reply: Reply) => out.push(reply));
  const settled = new Promise<void>((resolve) => (decoder.once("end", resolve), decoder.once("close", resolve)));
  splitter.pipe(decoder);
  for (const chunk of chunks) splitter.write(chunk);
  splitter.end();
  await settled;
  return { out, error };
}

/**
 * What the connection's reply pipeline makes of `data` from a server that sends it and
 * closes: the replies handed on, the reply the server sent without its line ending before
 * closing (if any), and the stage failure (if any).
 */
async function throughConnectionPipeline(server: Server, data: Buffer): Promise<Run<Reply> & { last?: Reply }> {
  const arrived = once(server, "connection");
  const socket = connect((server.address() as AddressInfo).port, "127.0.0.1");
  const [peer] = (await arrived) as [Socket];
  const out: Reply[] = [];
  let error: unknown;
  let last: Reply | undefined;
  const closed = new Promise<void>((resolve) => {
    let seen = false;
    new ReplyPipeline(socket, {
      reply: (reply) => out.push(reply),
      stageError: (err) => ((error ??= err), socket.destroy()),
      socketError: () => {},
      // 'end' comes first and carries the unterminated reply; 'close' repeats the call.
      closed: (lastReply) => {
        if (!seen) last = lastReply;
        seen = true;
        resolve();
      },
      timeout: () => {},
    });
  });
  peer.end(data);
  await settlesWithin(closed, 5000, "the pipeline seeing the close");
  socket.destroy();
  return { out, error, last };
}

test("LineSplitter and ReplyDecoder end as the connection's reply pipeline does: a last reply without its line ending is decoded, in any chunking", async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const seen = { unterminated: 0, dropped: 0 };
  const replies = (run: { out: Reply[] }) => run.out.map((r) => [r.code, r.lines]);
  try {
    await fc.assert(
      fc.asyncProperty(chunked, async ({ data, chunks }) => {
        const stages = await settlesWithin(throughStages(chunks), 5000, "the stages");
        const connection = await throughConnectionPipeline(server, data);
        assertProtocolError(stages.error);
        if (connection.error !== undefined) {
          // A malformed reply is refused by both, at the same place.
          assert.ok(stages.error !== undefined, "the stages fail where the pipeline does");
          assert.equal(replies(stages), replies(connection));
          return;
        }
        // The pipeline reports the unterminated last reply apart (the close is its failure); the stages hand it on.
        assert.equal(replies(stages), replies({ out: [...connection.out, ...(connection.last ? [connection.last] : [])] }));
        if (connection.last) seen.unterminated++;
        // An unfinished fragment at the end: the connection drops it, the stages say it is not a reply.
        if (stages.error !== undefined) (seen.dropped++, assert.is(connection.last, undefined));
      }),
      { ...RUNS, numRuns: 200 },
    );
    assert.ok(seen.unterminated > 0 && seen.dropped > 0, `runs ending in an unterminated reply / a dropped fragment: ${JSON.stringify(seen)}`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test("leaves no socket, timer or rejection behind", () => assertNoLeaks());

test.run();
