/**
 * 1 GiB through the relay program (examples/relay/main.js, its own process) byte-exact,
 * with the relay's peak RSS flat: measured after a 64 MiB warm-up message and again after
 * the 1 GiB one. The client is a child process that streams generated data and hashes it;
 * the upstream (this process) hashes what it receives and keeps nothing. Nothing holds a
 * message in memory, so a relay that spooled would show it in its peak RSS.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startServer } from "../helpers/server.js";
import { runInChild } from "../helpers/leak-check.js";

const MiB = 1024 * 1024;
const LARGE_MIB = Number(process.env.RELAY_TEST_MIB ?? 1024);

/** The relay's peak resident set so far (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error("no VmHWM in /proc status");
  return Number(match[1]) * 1024;
}

/** Starts the relay program towards `upstreamPort`; resolves with it and its port once it listens. */
function startRelayProgram(upstreamPort: number): Promise<{ child: ChildProcess; port: number }> {
  const main = fileURLToPath(new URL("../../examples/relay/main.js", import.meta.url));
  const child = spawn(process.execPath, [main, "--listen", "127.0.0.1:0", "--upstream", `127.0.0.1:${upstreamPort}`], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /relay listening on [^:]+:(\d+)/.exec(out);
      if (match) resolve({ child, port: Number(match[1]) });
    });
    child.once("exit", (code) => reject(new Error(`relay exited with ${code}: ${out}`)));
  });
}

interface SendResult {
  sha256: string;
  messageSize: number;
}

test(`${LARGE_MIB} MiB relayed byte-exact, and the relay's peak RSS does not grow with the message`, async () => {
  let hash = createHash("sha256");
  let bytes = 0;
  const upstream = await startServer({
    size: 0,
    keepData: false,
    onChunk(chunk) {
      hash.update(chunk);
      bytes += chunk.length;
    },
  });
  const relay = await startRelayProgram(upstream.port);
  const scenario = new URL("../scenarios/large-send.js", import.meta.url);
  try {
    const warmUp = await runInChild<SendResult>(scenario, [String(relay.port), "64"], { timeoutMs: 60_000 });
    assert.is(hash.digest("hex"), warmUp.sha256, "64 MiB arrived byte-exact");
    const afterWarmUp = peakRss(relay.child.pid!);
    hash = createHash("sha256");
    bytes = 0;
    const large = await runInChild<SendResult>(scenario, [String(relay.port), String(LARGE_MIB)], { timeoutMs: 170_000 });
    assert.is(bytes, LARGE_MIB * MiB);
    assert.is(hash.digest("hex"), large.sha256, `${LARGE_MIB} MiB arrived byte-exact`);
    const afterLarge = peakRss(relay.child.pid!);
    console.log(`relay peak RSS: ${(afterWarmUp / MiB).toFixed(1)} MiB after 64 MiB, ${(afterLarge / MiB).toFixed(1)} MiB after ${LARGE_MIB} MiB`);
    assert.ok(afterLarge - afterWarmUp < 32 * MiB, `the relay's peak RSS grew by ${((afterLarge - afterWarmUp) / MiB).toFixed(1)} MiB`);
  } finally {
    const exited = new Promise((resolve) => relay.child.once("exit", resolve));
    relay.child.kill("SIGTERM");
    await exited;
    await upstream.close();
  }
});

test.run();
