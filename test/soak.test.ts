/**
 * Soak (issue 4): 10 000 messages over one connection, a mix of accepted messages, refused
 * envelopes, refused messages, partial recipient refusals and explicit RSETs, sent 50 at a
 * time through every API (send with a string, a Buffer and a Readable, createSendStream).
 * The client runs in a fresh process, which samples its RSS and heap after a full GC every
 * 1 000 messages and reports its active resources; over the second half both must be
 * flat, and the resources the same as after connect(). The server is a
 * small pipelining responder in this process, fast enough not to be what is measured.
 *
 * Run with `--child <port>` it is that client; without, it is the test.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { Readable } from "node:stream";
import { SMTPConnection, type SMTPError } from "../lib/index.js";
import { assertNoLeaks, runInChild, sendResult, trackUnhandled } from "./helpers/leak-check.js";

const MESSAGES = 10_000;
const BATCH = 50;
const SAMPLE_EVERY = 1_000;
/** Growth allowed over the second half of the run: allocator and JIT noise, not a leak. */
const RSS_GROWTH_LIMIT = 8 * 1024 * 1024;
/**
 * V8 grows its young generation in steps as a process keeps allocating (about 15 MiB of
 * RSS, once, a few thousand messages in), which would read as growth; starting it at its
 * working size leaves RSS to show what the library keeps. gc() makes the samples exact.
 */
const CHILD_FLAGS = ["--expose-gc", "--min-semi-space-size=16"];
/** 512 KiB over 5 000 messages: a leak of ~100 bytes per message (one closure) fails. */
const HEAP_GROWTH_LIMIT = 512 * 1024;

/** What each message index does, and what its send must end with. */
type Kind = "accepted" | "envelope refused" | "message refused" | "one recipient refused" | "reset";
const kindOf = (i: number): Kind => (["accepted", "accepted", "accepted", "accepted", "accepted", "envelope refused", "message refused", "one recipient refused", "reset", "accepted"] as const)[i % 10]!;

// ---- the server ------------------------------------------------------------------------------

const TERMINATOR = Buffer.from("\r\n.\r\n");

/** RFC 5321 just far enough for the soak: pipelining, RSET, refusals chosen by address and header. */
function respond(socket: Socket): void {
  let pending: Buffer = Buffer.alloc(0);
  let inData = false;
  let accepted = 0;
  socket.on("error", () => {});
  socket.write("220 soak.example.test ESMTP\r\n");
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const out: string[] = [];
    for (;;) {
      if (inData) {
        // The body starts at a line start; the soak's bodies are small, so keep it whole.
        const end = Buffer.concat([Buffer.from("\r\n"), pending]).indexOf(TERMINATOR);
        if (end < 0) break;
        const body = pending.subarray(0, Math.max(0, end));
        pending = pending.subarray(end + TERMINATOR.length - 2);
        inData = false;
        accepted = 0;
        out.push(body.includes("X-Refuse: yes") ? "554 5.6.0 Refused by content" : "250 2.0.0 Queued");
        continue;
      }
      const lf = pending.indexOf(0x0a);
      if (lf < 0) break;
      const line = pending.subarray(0, lf).toString("latin1").replace(/\r$/, "");
      pending = pending.subarray(lf + 1);
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === "EHLO") out.push("250-soak.example.test", "250-PIPELINING", "250 SIZE 10000000");
      else if (verb === "MAIL") out.push("250 2.1.0 Ok");
      else if (verb === "RCPT") {
        if (line.includes("<nobody")) out.push("550 5.1.1 No such user");
        else (accepted++, out.push("250 2.1.5 Ok"));
      } else if (verb === "DATA") {
        if (accepted > 0) (inData = true, out.push("354 Go ahead"));
        else out.push("554 5.5.1 No valid recipients");
      } else if (verb === "RSET") (accepted = 0, out.push("250 2.0.0 Ok"));
      else if (verb === "QUIT") {
        socket.end("221 2.0.0 Bye\r\n");
        return;
      } else out.push("502 5.5.2 Unknown command");
    }
    if (out.length) socket.write(out.join("\r\n") + "\r\n");
  });
}

// ---- the client (child process) --------------------------------------------------------------

interface SoakReport {
  counts: Record<string, number>;
  /** After every SAMPLE_EVERY messages, after a full GC: RSS and heap used, in bytes. */
  samples: { messages: number; rss: number; heap: number }[];
  resourcesAfterConnect: string[];
  resourcesBeforeQuit: string[];
  resourcesAfterQuit: string[];
  ms: number;
}

function measure(): { rss: number; heap: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heap: heapUsed };
}

async function one(conn: SMTPConnection, i: number): Promise<string> {
  const kind = kindOf(i);
  const body = `Message-Id: <${i}@soak.example.test>\r\n${kind === "message refused" ? "X-Refuse: yes\r\n" : ""}\r\n${"soak line\r\n".repeat(20)}`;
  const to = kind === "envelope refused" ? ["nobody@example.test"] : kind === "one recipient refused" ? ["rcpt@example.test", "nobody@example.test"] : ["rcpt@example.test"];
  const envelope = { from: "soak@example.test", to };
  if (kind === "reset") return (await conn.reset()) ? "reset" : "reset failed";
  const outcome = (promise: Promise<{ accepted: string[]; rejected: string[] }>) =>
    promise.then(
      (info) => (info.rejected.length ? `accepted ${info.accepted.length}, rejected ${info.rejected.length}` : "accepted"),
      (err: SMTPError) => err.code,
    );
  switch (i % 4) {
    case 0:
      return outcome(conn.send(envelope, body));
    case 1:
      return outcome(conn.send(envelope, Buffer.from(body)));
    case 2:
      return outcome(conn.send(envelope, Readable.from([Buffer.from(body.slice(0, 30)), Buffer.from(body.slice(30))])));
    default: {
      const stream = conn.createSendStream(envelope);
      const done = new Promise<{ accepted: string[]; rejected: string[] }>((resolve, reject) => (stream.once("finish", () => resolve(stream.info!)), stream.once("error", reject)));
      stream.end(body);
      return outcome(done);
    }
  }
}

async function child(port: number): Promise<void> {
  void process.stdout;
  void process.stderr;
  const started = Date.now();
  const conn = new SMTPConnection({ host: "127.0.0.1", port, socketTimeout: 30_000 });
  let errors = 0;
  conn.on("error", () => errors++);
  await conn.connect();
  const resourcesAfterConnect = process.getActiveResourcesInfo();
  const counts: Record<string, number> = {};
  const samples: SoakReport["samples"] = [];
  for (let i = 0; i < MESSAGES; i += BATCH) {
    const results = await Promise.all(Array.from({ length: BATCH }, (_, k) => one(conn, i + k)));
    for (const result of results) counts[result] = (counts[result] ?? 0) + 1;
    if ((i + BATCH) % SAMPLE_EVERY === 0) samples.push({ messages: i + BATCH, ...measure() });
  }
  const resourcesBeforeQuit = process.getActiveResourcesInfo();
  await conn.quit();
  await new Promise((resolve) => setTimeout(resolve, 20));
  counts["error events"] = errors;
  sendResult({
    counts,
    samples,
    resourcesAfterConnect,
    resourcesBeforeQuit,
    resourcesAfterQuit: process.getActiveResourcesInfo(),
    ms: Date.now() - started,
  } satisfies SoakReport);
}

// ---- the test ------------------------------------------------------------------------------------

if (process.argv.includes("--child")) {
  await child(Number(process.argv[process.argv.indexOf("--child") + 1]));
} else {
  const unhandled = trackUnhandled();

  test(`${MESSAGES} messages over one connection (accepted, refused, RSET): every outcome as expected, RSS and active resources flat`, async () => {
    const sockets = new Set<Socket>();
    const server: Server = createServer((socket) => (sockets.add(socket), socket.on("close", () => sockets.delete(socket)), respond(socket)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const report = await runInChild<SoakReport>(new URL(import.meta.url), ["--child", String(port)], { execArgv: CHILD_FLAGS, timeoutMs: 120_000 });
      const expected: Record<string, number> = {};
      for (let i = 0; i < MESSAGES; i++) {
        const kind = kindOf(i);
        const key = { accepted: "accepted", "envelope refused": "EENVELOPE", "message refused": "EMESSAGE", "one recipient refused": "accepted 1, rejected 1", reset: "reset" }[kind];
        expected[key] = (expected[key] ?? 0) + 1;
      }
      expected["error events"] = 0;
      assert.equal(report.counts, expected, "every message ended as its kind says");
      const mib = (n: number): string => (n / 1024 / 1024).toFixed(1);
      const { samples } = report;
      console.log(
        `soak: ${MESSAGES} messages in ${report.ms} ms; RSS (MiB) every ${SAMPLE_EVERY}: ${samples.map((x) => mib(x.rss)).join(" ")}; ` +
          `heap (MiB): ${samples.map((x) => mib(x.heap)).join(" ")}; active resources after connect ${JSON.stringify(report.resourcesAfterConnect)}, ` +
          `before quit ${JSON.stringify(report.resourcesBeforeQuit)}, after quit ${JSON.stringify(report.resourcesAfterQuit)}`,
      );
      // Flat means the second half adds nothing: a leak of even a few hundred bytes per
      // message would show as megabytes there.
      const half = samples[samples.length / 2 - 1]!;
      const last = samples[samples.length - 1]!;
      assert.ok(last.heap - half.heap < HEAP_GROWTH_LIMIT, `heap grew ${mib(last.heap - half.heap)} MiB over the second half`);
      assert.ok(last.rss - half.rss < RSS_GROWTH_LIMIT, `RSS grew ${mib(last.rss - half.rss)} MiB over the second half`);
      assert.equal(report.resourcesBeforeQuit.sort(), report.resourcesAfterConnect.sort(), "the same active resources after 10 000 messages as after connect");
      assert.not.ok(report.resourcesAfterQuit.includes("TCPSocketWrap"), "the socket is gone after quit()");
      assert.not.ok(report.resourcesAfterQuit.includes("Timeout"), "no timer left after quit()");
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("leaves no socket, timer or rejection behind", async () => {
    unhandled.assertNone();
    await assertNoLeaks();
  });

  test.run();
}
