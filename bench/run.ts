/**
 * The benchmark suite. Starts the servers (the fast sink, smtp-server, the delaying
 * proxy) once, then runs every case as a fresh child process per client and rep, checks
 * what the server received against what was sent, and prints one table: median, min–max,
 * the ratios to the raw socket and to Nodemailer, peak RSS, and the targets of issue 5.
 *
 *   npm run bench                      full run (6 to 10 minutes on 2 cores)
 *   npm run bench -- --quick           about a minute: smaller inputs, no 1 GiB message
 *   npm run bench -- --json            machine-readable results instead of the table
 *   npm run bench -- --only encoder,large,small,relay,pool    some cases only
 *   npm run bench -- --reps 5          reps per client (default 3 quick, 5 full)
 *   npm run bench -- --profile DIR     smtp-wire's children write CPU profiles to DIR
 *   npm run bench -- --verbose         print each child's command line and result
 *   npm run bench -- --env MALLOC_TRIM_THRESHOLD_=268435456   set a variable for every child
 *   npm run bench -- --shared-cores    do not pin (see below)
 *
 * Pinning: by default (when taskset is there and the machine has 2 cores or more) the
 * servers run on the last core and every client under test on the first, so a client
 * never competes with the sink for a core and its own CPU cost sets its rate: what the
 * sink is for (it must be faster than any client). The relay case's processes are not
 * pinned (its feeder and relay would otherwise share the one client core).
 *
 * Every child gets the same environment; glibc's malloc tunables are the same for all of
 * them (see CHILD_ENV), because trimming freed memory can move Node's throughput
 * by half. Input files are generated in a temporary directory and deleted at the end.
 * Exits non-zero when any check failed (a child crashed, or a server got other bytes).
 */
import { fork, spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { cpus, loadavg, totalmem, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { once } from "node:events";
import { RESULT_PREFIX, type ChildResult } from "./child.js";
import { MESSAGE_KINDS, writeMessageFile, type MessageFile, type MessageKind } from "./inputs.js";
import type { SinkStats } from "./servers/sink.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;

/**
 * glibc returns freed heap to the kernel once the free top of the heap passes
 * M_TRIM_THRESHOLD, and Node frees and allocates 64 KiB buffers all the time; how often
 * that trims (and faults the pages back in) moves throughput by up to 1.5x. So the
 * children's environment is fixed: inherited MALLOC_* and GLIBC_TUNABLES variables are
 * removed and these (none by default: glibc's own defaults, what users run with) are set,
 * the same for every client. The table's header and RESULTS.md say what was set.
 */
const CHILD_ENV: Record<string, string> = {};

// ---------------------------------------------------------------------------------------
// Options and plan

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    reps: { type: "string" },
    only: { type: "string" },
    profile: { type: "string" },
    verbose: { type: "boolean", default: false },
    env: { type: "string", multiple: true },
    "shared-cores": { type: "boolean", default: false },
  },
  strict: true,
});

const quick = flags.quick === true;
const plan = {
  reps: Number(flags.reps ?? (quick ? 3 : 5)),
  encoderMiB: quick ? 16 : 64,
  /** Each encoder child repeats its timed pass until this many seconds have passed. */
  encoderSeconds: quick ? 0.2 : 1,
  encoderInputs: ["crlf", "lf", "dots", "binary"],
  largeSinkSizes: quick ? [16 * MiB, 256 * MiB] : [16 * MiB, 256 * MiB, 1024 * MiB],
  /** The text files (with dots and UTF-8; with bare LF) go into the sink at these sizes. */
  largeTextSizes: quick ? [256 * MiB] : [256 * MiB, 1024 * MiB],
  largeSmtpServerSizes: quick ? [16 * MiB] : [16 * MiB, 256 * MiB],
  /** The size whose bytes are hashed by the server (the hash check). */
  hashedSize: 16 * MiB,
  small: quick
    ? { count0: 2000, count1: 300, warmup: 1000, rttMs: 1, maxSeconds: 2 }
    : { count0: 10000, count1: 1500, warmup: 5000, rttMs: 1, maxSeconds: 10 },
  relaySize: quick ? 64 * MiB : 256 * MiB,
  /** Issue 12: messages of 4 KiB offered at once to a pool of `connections`, and mails through the two Nodemailer transports. */
  pool: quick ? { count: 2000, mails: 1000, connections: 5, maxSeconds: 20 } : { count: 10000, mails: 10000, connections: 5, maxSeconds: 60 },
  childTimeoutMs: quick ? 120_000 : 600_000,
};
const only = flags.only ? new Set(flags.only.split(",")) : undefined;
const wants = (name: string): boolean => !only || only.has(name);

const childEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !name.startsWith("MALLOC_") && !name.startsWith("GLIBC_TUNABLES")),
);
for (const setting of flags.env ?? []) {
  const [name, ...value] = setting.split("=");
  if (!name || value.length === 0) throw new Error(`--env wants NAME=VALUE, got ${setting}`);
  CHILD_ENV[name] = value.join("=");
}
Object.assign(childEnv, CHILD_ENV);

// ---------------------------------------------------------------------------------------
// Results

type Unit = "MB/s" | "msg/s";

interface Sample {
  ok: boolean;
  value: number;
  peakRssMiB: number;
  /** Round trips per message the sink saw (many-small only). */
  tripsPerMessage?: number;
  /** The client's CPU (user + system) while timed: µs per message, or s per GB of message. */
  cpu?: { value: number; unit: "µs/msg" | "s/GB" };
  problem?: string;
  detail?: Record<string, unknown>;
}

interface Row {
  case: string;
  variant: string;
  client: string;
  unit: Unit;
  samples: Sample[];
  /** A check made over all reps (e.g. the encoder's output equals Nodemailer's). */
  note?: string;
}

const rows: Row[] = [];

function rowFor(caseName: string, variant: string, client: string, unit: Unit): Row {
  let row = rows.find((r) => r.case === caseName && r.variant === variant && r.client === client);
  if (!row) {
    row = { case: caseName, variant, client, unit, samples: [] };
    rows.push(row);
  }
  return row;
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Summary {
  median: number;
  min: number;
  max: number;
  rss: number;
  trips?: number;
  cpu?: string;
  ok: number;
  failed: number;
  problems: string[];
}

function summarize(row: Row): Summary {
  const good = row.samples.filter((s) => s.ok);
  const values = good.map((s) => s.value);
  const trips = good.map((s) => s.tripsPerMessage).filter((t): t is number => t !== undefined);
  const cpus = good.map((s) => s.cpu).filter((c): c is NonNullable<Sample["cpu"]> => c !== undefined);
  return {
    median: median(values),
    min: values.length ? Math.min(...values) : NaN,
    max: values.length ? Math.max(...values) : NaN,
    rss: median(good.map((s) => s.peakRssMiB)),
    trips: trips.length ? median(trips) : undefined,
    cpu: cpus.length ? `${median(cpus.map((c) => c.value)).toFixed(cpus[0]!.unit === "s/GB" ? 2 : 0)} ${cpus[0]!.unit}` : undefined,
    ok: good.length,
    failed: row.samples.length - good.length,
    problems: [...new Set(row.samples.filter((s) => !s.ok).map((s) => s.problem ?? "failed"))],
  };
}

// ---------------------------------------------------------------------------------------
// Processes

/** A long-lived server child (sink, smtp-server, proxy) spoken to over IPC. */
class ServerProcess {
  readonly name: string;
  readonly port: number;
  #child: ChildProcess;

  private constructor(name: string, child: ChildProcess, port: number) {
    this.name = name;
    this.#child = child;
    this.port = port;
  }

  static async start(name: string, script: string, args: string[] = []): Promise<ServerProcess> {
    const child = fork(join(HERE, "servers", script), args, { env: childEnv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    pin(child, SERVER_CORE);
    const [message] = (await Promise.race([
      once(child, "message"),
      once(child, "exit").then(() => {
        throw new Error(`${name} exited before it was ready`);
      }),
    ])) as [{ type: string; port: number }];
    return new ServerProcess(name, child, message.port);
  }

  #ask<T>(message: Record<string, unknown>): Promise<T> {
    return new Promise((resolve) => {
      this.#child.once("message", (reply) => resolve(reply as T));
      this.#child.send(message);
    });
  }

  async reset(hash = false): Promise<void> {
    await this.#ask({ type: "reset", hash });
  }

  async stats<T = SinkStats>(): Promise<T> {
    return (await this.#ask<{ stats: T }>({ type: "stats" })).stats;
  }

  stop(): void {
    this.#child.kill();
  }
}

const CLIENT_CORE = 0;
const SERVER_CORE = cpus().length - 1;

function tasksetWorks(): boolean {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const pinning = !flags["shared-cores"] && SERVER_CORE > CLIENT_CORE && tasksetWorks();

/**
 * Keeps every thread of `child` (and those it starts later, which inherit the mask) on one
 * core, when pinning. Done right after the start, before the child has loaded its modules.
 */
function pin(child: ChildProcess, core: number): void {
  if (!pinning || child.pid === undefined) return;
  execFileSync("taskset", ["-a", "-p", "-c", String(core), String(child.pid)], { stdio: "ignore" });
}

interface Spawned {
  result: Promise<ChildResult>;
  /** Resolves with the first line of stdout that starts with `prefix`. */
  line(prefix: string): Promise<string>;
  /** Sends the child a signal. */
  signal(name: NodeJS.Signals): void;
}

/** Starts a benchmark child; its result is the RESULT line, or a failure that says why. */
function spawnChild(script: string, args: string[], profile: boolean, pinned = true): Spawned {
  const nodeArgs = profile && flags.profile ? ["--cpu-prof", "--cpu-prof-dir", flags.profile] : [];
  const command = [...nodeArgs, join(HERE, script), ...args];
  if (flags.verbose) process.stderr.write(`  $ node ${command.join(" ")}\n`);
  const child = spawn(process.execPath, command, { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  if (pinned) pin(child, CLIENT_CORE);
  let stdout = "";
  let stderr = "";
  const lineWaiters: { prefix: string; resolve: (line: string) => void }[] = [];
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const waiter of [...lineWaiters]) {
      const line = stdout.split("\n").find((l) => l.startsWith(waiter.prefix));
      if (line !== undefined) {
        lineWaiters.splice(lineWaiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), plan.childTimeoutMs);
  const result = new Promise<ChildResult>((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split("\n").find((l) => l.startsWith(RESULT_PREFIX));
      if (line) {
        const parsed = JSON.parse(line.slice(RESULT_PREFIX.length)) as ChildResult;
        if (flags.verbose) process.stderr.write(`    ${line}\n`);
        resolve(parsed);
        return;
      }
      const why = signal === "SIGKILL" ? `killed after ${plan.childTimeoutMs} ms` : `exit ${code ?? signal}`;
      const last = stderr.trim().split("\n").slice(-3).join(" | ");
      resolve({ ok: false, seconds: 0, peakRssMiB: 0, error: `${why}: ${last || "no result"}` });
    });
  });
  return {
    result,
    line: (prefix) =>
      new Promise((resolve, reject) => {
        lineWaiters.push({ prefix, resolve });
        void result.then(() => reject(new Error(`child ended before "${prefix}"`)));
      }),
    signal: (name) => void (child.exitCode === null && child.kill(name)),
  };
}

/** The child's result as a sample; a failed child is a failed sample. */
function sampleOf(result: ChildResult, value: number): Sample {
  if (!result.ok) return { ok: false, value: 0, peakRssMiB: result.peakRssMiB, problem: shorten(result.error ?? "failed") };
  return { ok: true, value, peakRssMiB: result.peakRssMiB, detail: result.detail, cpu: cpuOf(result.detail) };
}

/** The client's CPU as its child reported it (many-small: per message; large: per GB). */
function cpuOf(detail: Record<string, unknown> = {}): Sample["cpu"] {
  const { cpuMicrosPerMessage, userSecondsPerGB, systemSecondsPerGB } = detail;
  if (typeof cpuMicrosPerMessage === "number") return { value: cpuMicrosPerMessage, unit: "µs/msg" };
  if (typeof userSecondsPerGB === "number" && typeof systemSecondsPerGB === "number") return { value: userSecondsPerGB + systemSecondsPerGB, unit: "s/GB" };
  return undefined;
}

/** Compares what a server counted with what should have arrived; marks the sample failed if not. */
function verify(sample: Sample, stats: SinkStats, expect: { messages: number; bytes: number; sha256?: string }): void {
  if (!sample.ok) return;
  const problems: string[] = [];
  if (stats.messages !== expect.messages) problems.push(`${stats.messages} messages, expected ${expect.messages}`);
  if (stats.bytes !== expect.bytes) problems.push(`${stats.bytes} bytes, expected ${expect.bytes}`);
  if (expect.sha256 && stats.hashes[0] !== expect.sha256) problems.push("SHA-256 differs");
  if (problems.length) {
    sample.ok = false;
    sample.problem = `server got ${problems.join(", ")}`;
  }
}

function shorten(text: string): string {
  return text.length > 160 ? text.slice(0, 157) + "..." : text;
}

function progress(text: string): void {
  if (!flags.json) process.stderr.write(text);
}

// ---------------------------------------------------------------------------------------
// Cases

const LARGE_CLIENTS = ["raw", "smtp-wire", "nodemailer"];

async function encoderCase(): Promise<void> {
  const impls = ["memcpy", "indexof", "smtp-wire", "nodemailer"];
  for (const input of plan.encoderInputs) {
    progress(`encoder ${input}: `);
    for (let rep = 0; rep < plan.reps; rep++) {
      for (const impl of impls) {
        const child = spawnChild("encoder.bench.js", ["--impl", impl, "--input", input, "--mib", String(plan.encoderMiB), "--min-seconds", String(plan.encoderSeconds)], impl === "smtp-wire");
        const result = await child.result;
        // Rated by the child's CPU time: one thread's work, which other processes on the core disturb less.
        const cpuSeconds = Number(result.detail?.cpuSeconds ?? result.seconds);
        const sample = sampleOf(result, (result.bytes ?? 0) / cpuSeconds / 1e6);
        rowFor("encoder", `${input}, ${plan.encoderMiB} MiB`, impl, "MB/s").samples.push(sample);
        progress(sample.ok ? "." : "x");
      }
    }
    progress("\n");
    // The encoders must agree byte for byte, and smtp-wire's own count must be right.
    const wire = rowFor("encoder", `${input}, ${plan.encoderMiB} MiB`, "smtp-wire", "MB/s");
    const nodemailer = rowFor("encoder", `${input}, ${plan.encoderMiB} MiB`, "nodemailer", "MB/s");
    const reference = nodemailer.samples.find((s) => s.ok)?.detail;
    for (const sample of wire.samples) {
      if (!sample.ok || !reference) continue;
      const detail = sample.detail ?? {};
      if (detail.sha256 !== reference.sha256) {
        sample.ok = false;
        sample.problem = `output differs from Nodemailer's (${String(detail.outBytes)} vs ${String(reference.outBytes)} bytes)`;
      } else if (detail.counted !== detail.outBytes) {
        sample.ok = false;
        sample.problem = `bytes getter says ${String(detail.counted)}, output was ${String(detail.outBytes)}`;
      }
    }
    if (reference) wire.note = "output = Nodemailer's (SHA-256)";
  }
}

/** The message file of a kind and size (written before the servers start). */
type MessageFiles = Map<string, MessageFile>;
const fileKey = (kind: MessageKind, size: number): string => `${kind} ${size}`;

async function largeCase(sink: ServerProcess, smtpServer: ServerProcess, files: MessageFiles): Promise<void> {
  const targets: [ServerProcess, MessageKind, number[]][] = [
    [sink, "base64", plan.largeSinkSizes],
    [sink, "text", plan.largeTextSizes],
    [sink, "text-lf", plan.largeTextSizes],
    [smtpServer, "base64", plan.largeSmtpServerSizes],
  ];
  for (const [server, kind, sizes] of targets) {
    for (const size of sizes) {
      const file = files.get(fileKey(kind, size))!;
      const variant = `${sizeLabel(size)} ${kind} → ${server.name}`;
      progress(`large ${variant}: `);
      const hashed = size === plan.hashedSize;
      // smtp-server undoes dot-stuffing; the fast sink counts the stuffed bytes.
      const expect =
        server === sink
          ? { messages: 1, bytes: file.stuffedBytes, sha256: hashed ? file.stuffedSha256 : undefined }
          : { messages: 1, bytes: file.bytes, sha256: hashed ? file.sha256 : undefined };
      for (let rep = 0; rep < plan.reps; rep++) {
        for (const client of LARGE_CLIENTS) {
          await server.reset(hashed);
          const args = ["--client", client, "--port", String(server.port), "--file", file.path, "--stuffed", file.stuffedPath];
          const result = await spawnChild("large-message.bench.js", args, client === "smtp-wire").result;
          const sample = sampleOf(result, file.bytes / result.seconds / 1e6);
          verify(sample, await server.stats(), expect);
          if (sample.ok && result.detail?.messageSize !== undefined && result.detail.messageSize !== file.stuffedBytes + 3) {
            sample.ok = false;
            sample.problem = `messageSize ${String(result.detail.messageSize)}, expected ${file.stuffedBytes + 3}`;
          }
          rowFor("large", variant, client, "MB/s").samples.push(sample);
          progress(sample.ok ? "." : "x");
        }
      }
      const note = hashed ? "bytes + SHA-256 checked" : "bytes checked";
      for (const client of LARGE_CLIENTS) rowFor("large", variant, client, "MB/s").note = note;
      progress("\n");
    }
  }
}

async function smallCase(sink: ServerProcess, proxy: ServerProcess): Promise<{ meanDelayMs: number }> {
  const base = ["raw", "smtp-wire", "smtp-wire-queued", "nodemailer"];
  let meanDelayMs = 0;
  // With a delay, each send awaited over BDAT too: the round trip DATA's 354 costs is gone.
  const variants: [string, ServerProcess, number, string[]][] = [
    ["4 KiB, 0 RTT", sink, plan.small.count0, base],
    [`4 KiB, ${plan.small.rttMs} ms RTT`, proxy, plan.small.count1, [...base.slice(0, 3), "smtp-wire-chunking", "nodemailer"]],
  ];
  for (const [variant, target, count, clients] of variants) {
    progress(`small ${variant}: `);
    const warmupCpu = new Map<string, number[]>();
    for (let rep = 0; rep < plan.reps; rep++) {
      for (const client of clients) {
        // Warm-up straight into the sink, then the counters are zeroed and the timed part runs.
        const args = ["--client", client, "--port", String(target.port), "--count", String(count)];
        args.push("--warmup", String(plan.small.warmup), "--warmup-port", String(sink.port), "--max-seconds", String(plan.small.maxSeconds));
        const child = spawnChild("many-small.bench.js", args, client.startsWith("smtp-wire"));
        await child.line("WARMED").catch(() => undefined);
        await sink.reset();
        if (target === proxy) await proxy.reset();
        child.signal("SIGUSR2");
        const result = await child.result;
        const sample = sampleOf(result, (result.messages ?? 0) / result.seconds);
        const stats = await sink.stats();
        // A slow client stops early and says how many it sent; the sink must agree.
        const sent = result.messages ?? 0;
        verify(sample, stats, { messages: sent, bytes: sent * 4096 });
        if (stats.messages > 0) sample.tripsPerMessage = stats.flights / stats.messages;
        if (target === proxy) meanDelayMs = (await proxy.stats<{ meanDelayMs: number }>()).meanDelayMs;
        const warmed = result.detail?.warmupCpuMicrosPerMessage;
        if (typeof warmed === "number") warmupCpu.set(client, [...(warmupCpu.get(client) ?? []), warmed]);
        rowFor("small", variant, client, "msg/s").samples.push(sample);
        progress(sample.ok ? "." : "x");
      }
    }
    for (const client of clients) {
      const warmed = median(warmupCpu.get(client) ?? []);
      const during = Number.isNaN(warmed) ? "" : `; warm-up ${Math.round(warmed)} µs/msg`;
      rowFor("small", variant, client, "msg/s").note = `count + bytes checked${during}`;
    }
    progress("\n");
  }
  return { meanDelayMs };
}

/**
 * Issue 12: the pool. `pool`: every message offered at once to SMTPPool and to Nodemailer's
 * own pool, the same bytes, the same settings, at 0 and 1 ms RTT (count and bytes checked).
 * `transport`: nodemailer.createTransport(smtpWire(...)).sendMail against Nodemailer's pooled
 * SMTP transport, the same composed mails (count checked: the headers differ in length).
 * Peak RSS is what offering them all at once costs each client.
 */
async function poolCase(sink: ServerProcess, proxy: ServerProcess): Promise<void> {
  const { count, mails, connections, maxSeconds } = plan.pool;
  const variants: [string, string, ServerProcess, number][] = [
    ["pool", `${count} x 4 KiB at once, pool of ${connections}, 0 RTT`, sink, count],
    ["pool", `${count} x 4 KiB at once, pool of ${connections}, ${plan.small.rttMs} ms RTT`, proxy, count],
    ["transport", `${mails} sendMail at once, pool of ${connections}, ${plan.small.rttMs} ms RTT`, proxy, mails],
  ];
  for (const [caseName, variant, target, total] of variants) {
    progress(`${caseName} ${variant}: `);
    for (let rep = 0; rep < plan.reps; rep++) {
      for (const client of ["smtp-wire", "nodemailer"]) {
        await sink.reset();
        if (target === proxy) await proxy.reset();
        const args = ["--client", `${client}-${caseName}`, "--port", String(target.port), "--count", String(total), "--connections", String(connections), "--max-seconds", String(maxSeconds)];
        const result = await spawnChild("pool.bench.js", args, client === "smtp-wire").result;
        const sample = sampleOf(result, (result.messages ?? 0) / result.seconds);
        const stats = await sink.stats();
        if (caseName === "pool") verify(sample, stats, { messages: result.messages ?? 0, bytes: (result.messages ?? 0) * 4096 });
        else if (sample.ok && stats.messages !== result.messages) Object.assign(sample, { ok: false, problem: `server got ${stats.messages} messages, expected ${result.messages}` });
        if (sample.ok && result.detail?.timedOut) Object.assign(sample, { problem: `stopped after ${maxSeconds} s` });
        if (stats.messages > 0) sample.tripsPerMessage = stats.flights / stats.messages;
        rowFor(caseName, variant, client, "msg/s").samples.push(sample);
        progress(sample.ok ? "." : "x");
      }
    }
    for (const client of ["smtp-wire", "nodemailer"]) rowFor(caseName, variant, client, "msg/s").note = caseName === "pool" ? "count + bytes checked" : "count checked";
    progress("\n");
  }
}

async function relayCase(sink: ServerProcess, smtpServer: ServerProcess, file: MessageFile): Promise<void> {
  const variant = `${sizeLabel(file.bytes)} via smtp-server`;
  progress(`relay ${variant}: `);
  const feederArgs = (port: number): string[] => ["--client", "raw", "--port", String(port), "--file", file.path, "--stuffed", file.stuffedPath];
  for (let rep = 0; rep < plan.reps; rep++) {
    // The raw row: the same feeder into smtp-server alone, no forwarding.
    await smtpServer.reset();
    const direct = await spawnChild("large-message.bench.js", feederArgs(smtpServer.port), false, false).result;
    const directSample = sampleOf(direct, file.bytes / direct.seconds / 1e6);
    verify(directSample, await smtpServer.stats(), { messages: 1, bytes: file.bytes });
    rowFor("relay", variant, "raw", "MB/s").samples.push(directSample);
    progress(directSample.ok ? "." : "x");

    for (const client of ["smtp-wire", "nodemailer"]) {
      await sink.reset();
      const relay = spawnChild("backpressure.bench.js", ["--client", client, "--upstream", String(sink.port)], client === "smtp-wire", false);
      let sample: Sample;
      try {
        const ready = await relay.line("READY ");
        const feeder = await spawnChild("large-message.bench.js", feederArgs(Number(ready.split(" ")[1])), false, false).result;
        const relayed = await relay.result;
        sample = sampleOf(feeder, file.bytes / feeder.seconds / 1e6);
        sample.peakRssMiB = relayed.peakRssMiB;
        if (!relayed.ok) Object.assign(sample, { ok: false, problem: shorten(`relay: ${relayed.error ?? "failed"}`) });
        verify(sample, await sink.stats(), { messages: 1, bytes: file.stuffedBytes });
      } catch (err) {
        const relayed = await relay.result;
        sample = { ok: false, value: 0, peakRssMiB: 0, problem: shorten(relayed.error ?? String(err)) };
      }
      rowFor("relay", variant, client, "MB/s").samples.push(sample);
      progress(sample.ok ? "." : "x");
    }
  }
  for (const client of ["raw", "smtp-wire", "nodemailer"]) rowFor("relay", variant, client, "MB/s").note = "bytes checked";
  rowFor("relay", variant, "raw", "MB/s").note = "feeder → smtp-server, no relay";
  progress("\n");
}

// ---------------------------------------------------------------------------------------
// Report

/** The row a case/variant's ratios are taken against: the raw socket, or the indexOf scan. */
function baselineOf(row: Row): Row | undefined {
  const name = row.case === "encoder" ? "indexof" : "raw";
  return rows.find((r) => r.case === row.case && r.variant === row.variant && r.client === name);
}

function nodemailerOf(row: Row): Row | undefined {
  return rows.find((r) => r.case === row.case && r.variant === row.variant && r.client === "nodemailer");
}

function ratio(row: Row, other: Row | undefined): number | undefined {
  if (!other || other === row) return undefined;
  const ours = summarize(row).median;
  const theirs = summarize(other).median;
  return Number.isFinite(ours) && Number.isFinite(theirs) && theirs > 0 ? ours / theirs : undefined;
}

interface Target {
  text: string;
  value: string;
  met: boolean | undefined;
}

function sizeLabel(size: number): string {
  return size >= 1024 * MiB ? `${size / 1024 / MiB} GiB` : `${size / MiB} MiB`;
}

function find(caseName: string, variantStart: string, client: string): Row | undefined {
  return rows.find((r) => r.case === caseName && r.variant.startsWith(variantStart) && r.client === client);
}

function targets(): Target[] {
  const list: Target[] = [];
  const add = (text: string, value: number | undefined, met: (v: number) => boolean, format = (v: number) => `${v.toFixed(2)}x`): void => {
    list.push({ text, value: value === undefined ? "n/a" : format(value), met: value === undefined ? undefined : met(value) });
  };
  const crlf = find("encoder", "crlf", "smtp-wire");
  if (crlf) {
    add("encoder, CRLF text: >= 5x Nodemailer's data stream", ratio(crlf, nodemailerOf(crlf)), (v) => v >= 5);
    add("encoder, CRLF text: >= 0.5x the plain indexOf scan", ratio(crlf, baselineOf(crlf)), (v) => v >= 0.5);
  }
  // Issue 14: near memory speed on every input. memcpy is a plain copy of the same bytes.
  for (const input of plan.encoderInputs) {
    const row = find("encoder", input, "smtp-wire");
    if (!row) continue;
    add(`encoder, ${input}: >= 0.25x memcpy`, ratio(row, find("encoder", input, "memcpy")), (v) => v >= 0.25);
    if (input === "lf") add("encoder, lf: >= 0.6x the indexOf scan", ratio(row, baselineOf(row)), (v) => v >= 0.6);
    if (input === "dots") add("encoder, dots: >= 1.0x the indexOf scan", ratio(row, baselineOf(row)), (v) => v >= 1);
  }
  for (const kind of MESSAGE_KINDS) {
    for (const size of [...plan.largeSinkSizes, ...plan.largeTextSizes].filter((s, i, all) => s >= 256 * MiB && all.indexOf(s) === i)) {
      const label = `${sizeLabel(size)} ${kind} → sink`;
      const row = find("large", label, "smtp-wire");
      if (!row) continue;
      add(`large ${label}: >= 0.85x raw socket`, ratio(row, baselineOf(row)), (v) => v >= 0.85);
      add(`large ${label}: >= 3x Nodemailer`, ratio(row, nodemailerOf(row)), (v) => v >= 3);
    }
  }
  for (const size of plan.largeSinkSizes) {
    const row = find("large", `${sizeLabel(size)} base64 → sink`, "smtp-wire");
    const raw = row && baselineOf(row);
    if (!row || !raw) continue;
    const ours = summarize(row);
    const theirs = summarize(raw);
    const extra = ours.ok && theirs.ok ? ours.rss - theirs.rss : undefined;
    add(`large ${sizeLabel(size)} base64 → sink: peak RSS within 16 MiB of raw`, extra, (v) => v <= 16, (v) => `${v >= 0 ? "+" : ""}${v.toFixed(1)} MiB`);
  }
  // Two ways to send many messages: each send awaited before the next (what Nodemailer's
  // SMTPConnection allows), and sends queued on the connection (smtp-wire overlaps each
  // envelope with the previous message's final reply). Both are reported.
  const ways: [string, string][] = [
    ["smtp-wire", "each send awaited"],
    ["smtp-wire-queued", "sends queued"],
  ];
  for (const [client, how] of ways) {
    const small0 = find("small", "4 KiB, 0 RTT", client);
    if (small0) add(`small, 0 RTT, ${how}: >= 1.2x Nodemailer's msg/s`, ratio(small0, nodemailerOf(small0)), (v) => v >= 1.2);
  }
  const chunked = rows.find((r) => r.case === "small" && r.variant.includes("ms RTT") && r.client === "smtp-wire-chunking");
  if (chunked) {
    const how = `small, ${plan.small.rttMs} ms RTT, each send awaited, CHUNKING`;
    add(`${how}: 1.0 round trips per message`, summarize(chunked).trips, (v) => v <= 1.01, (v) => v.toFixed(2));
    add(`${how}: >= 1.9x Nodemailer's msg/s`, ratio(chunked, nodemailerOf(chunked)), (v) => v >= 1.9);
  }
  for (const [client, how] of ways) {
    const small1 = rows.find((r) => r.case === "small" && r.variant.includes("ms RTT") && r.client === client);
    if (!small1) continue;
    const ours = summarize(small1).trips;
    const nm = nodemailerOf(small1);
    const theirs = nm ? summarize(nm).trips : undefined;
    const value = ours !== undefined && theirs !== undefined ? ours - theirs : undefined;
    list.push({
      text: `small, ${plan.small.rttMs} ms RTT, ${how}: no more round trips per message than Nodemailer`,
      value: value === undefined ? "n/a" : `${ours!.toFixed(2)} vs ${theirs!.toFixed(2)}`,
      met: value === undefined ? undefined : value <= 0.01,
    });
  }
  // Issue 14: an awaited send over DATA costs little more CPU than the raw client's.
  for (const variant of ["4 KiB, 0 RTT", `4 KiB, ${plan.small.rttMs} ms RTT`]) {
    const row = find("small", variant, "smtp-wire");
    const raw = row && baselineOf(row);
    if (!row || !raw) continue;
    const ours = cpuMedian(row);
    const theirs = cpuMedian(raw);
    add(`small, ${variant}, each send awaited: client CPU per message <= 1.2x the raw client's`, ours !== undefined && theirs ? ours / theirs : undefined, (v) => v <= 1.2);
  }
  // Issue 12: the pool and the Nodemailer transport against Nodemailer's pooled ones.
  const pool1 = rows.find((r) => r.case === "pool" && r.variant.endsWith("ms RTT") && r.client === "smtp-wire");
  if (pool1) add(`pool, ${plan.small.rttMs} ms RTT: >= 2x Nodemailer's pool msg/s`, ratio(pool1, nodemailerOf(pool1)), (v) => v >= 2);
  const transport = rows.find((r) => r.case === "transport" && r.client === "smtp-wire");
  if (transport) add("sendMail through smtp-wire/nodemailer: >= 1.5x Nodemailer's pooled transport", ratio(transport, nodemailerOf(transport)), (v) => v >= 1.5);
  const relay = rows.find((r) => r.case === "relay" && r.client === "smtp-wire");
  if (relay) add(`relay ${relay.variant}: >= 0.85x its raw baseline`, ratio(relay, baselineOf(relay)), (v) => v >= 0.85);
  return list;
}

/** The median of a row's client CPU figures (per message or per GB), when it has them. */
function cpuMedian(row: Row): number | undefined {
  const values = row.samples.filter((s) => s.ok && s.cpu).map((s) => s.cpu!.value);
  return values.length ? median(values) : undefined;
}

function formatNumber(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return "-";
  return unit === "msg/s" || value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

function table(): string {
  const header = ["case", "input / target", "client", "median", "min–max", "unit", "/raw", "/nodemailer", "peak RSS MiB", "trips/msg", "client CPU", "check"];
  const lines: string[][] = [header];
  for (const row of rows) {
    const s = summarize(row);
    // Ratios are ours over theirs: to the raw baseline for every other row, to Nodemailer for smtp-wire's.
    const vsRaw = ratio(row, baselineOf(row));
    const vsNm = row.client.startsWith("smtp-wire") ? ratio(row, nodemailerOf(row)) : undefined;
    const check = s.failed > 0 ? `FAILED ${s.failed}/${row.samples.length}: ${s.problems.join("; ")}` : `ok ${s.ok}/${row.samples.length}${row.note ? `, ${row.note}` : ""}`;
    lines.push([
      row.case,
      row.variant,
      row.client,
      formatNumber(s.median, row.unit),
      s.ok ? `${formatNumber(s.min, row.unit)}–${formatNumber(s.max, row.unit)}` : "-",
      row.unit,
      vsRaw === undefined ? "" : vsRaw.toFixed(2),
      vsNm === undefined ? "" : vsNm.toFixed(2),
      Number.isFinite(s.rss) && row.case !== "encoder" ? s.rss.toFixed(1) : Number.isFinite(s.rss) ? s.rss.toFixed(0) : "-",
      s.trips === undefined ? "" : s.trips.toFixed(2),
      s.cpu ?? "",
      check,
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (i === header.length - 1 ? 0 : l[i]!.length))));
  const numeric = new Set([3, 4, 6, 7, 8, 9, 10]);
  const render = (cells: string[]): string =>
    cells.map((cell, i) => (i === cells.length - 1 ? cell : numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join("  ").trimEnd();
  const out = [render(lines[0]!), render(header.map((_, i) => "-".repeat(i === header.length - 1 ? 5 : widths[i]!))), ...lines.slice(1).map(render)];
  return out.join("\n");
}

function machine(): Record<string, string | number> {
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: HERE, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    /* not a checkout */
  }
  let nodemailer = "?";
  try {
    const url = new URL(import.meta.resolve("nodemailer/package.json"));
    nodemailer = (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
  } catch {
    /* left as ? */
  }
  return {
    date: new Date().toISOString().slice(0, 10),
    commit,
    node: process.version,
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    nodemailer,
    /** 1-minute load average when the run started: above ~0.5, something else competed for the CPU. */
    loadAtStart: Number(loadavg()[0]!.toFixed(2)),
    env: Object.entries(CHILD_ENV).map(([k, v]) => `${k}=${v}`).join(" ") || "glibc malloc defaults (no MALLOC_* set)",
    pinned: pinning ? `servers on core ${SERVER_CORE}, clients under test on core ${CLIENT_CORE}` : "no",
  };
}

// ---------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "smtp-wire-bench-"));
  const servers: ServerProcess[] = [];
  const cleanup = (): void => {
    for (const server of servers) server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      cleanup();
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  }
  try {
    const info = machine();
    progress(`smtp-wire bench${quick ? " --quick" : ""}: ${info.cores} cores, ${info.memoryGiB} GiB, Node ${info.node}, commit ${info.commit}\n`);
    const files: MessageFiles = new Map();
    const wanted = new Set<string>();
    if (wants("large")) {
      for (const size of [...plan.largeSinkSizes, ...plan.largeSmtpServerSizes]) wanted.add(fileKey("base64", size));
      for (const size of plan.largeTextSizes) for (const kind of MESSAGE_KINDS.filter((k) => k !== "base64")) wanted.add(fileKey(kind, size));
    }
    if (wants("relay")) wanted.add(fileKey("base64", plan.relaySize));
    if (wanted.size) progress(`writing ${[...wanted].map((key) => key.replace(/ (\d+)$/, (_, n: string) => ` ${Number(n) / MiB} MiB`)).join(", ")} of input to a temporary directory\n`);
    for (const key of wanted) {
      const [kind, size] = key.split(" ") as [MessageKind, string];
      files.set(key, writeMessageFile(dir, Number(size), kind));
    }

    const sink = await ServerProcess.start("sink", "sink.js");
    servers.push(sink);
    const smtpServer = await ServerProcess.start("smtp-server", "smtp-server-sink.js");
    servers.push(smtpServer);
    const proxy = await ServerProcess.start("proxy", "delay-proxy.js", [String(sink.port), String(plan.small.rttMs)]);
    servers.push(proxy);

    let measuredRtt: number | undefined;
    if (wants("encoder")) await encoderCase();
    if (wants("large")) await largeCase(sink, smtpServer, files);
    if (wants("small")) measuredRtt = (await smallCase(sink, proxy)).meanDelayMs;
    if (wants("pool")) await poolCase(sink, proxy);
    if (wants("relay")) await relayCase(sink, smtpServer, files.get(fileKey("base64", plan.relaySize))!);

    const minutes = (Date.now() - started) / 60000;
    const goals = targets();
    if (flags.json) {
      const json = {
        machine: info,
        command: `npm run bench${process.argv.length > 2 ? " -- " + process.argv.slice(2).join(" ") : ""}`,
        plan,
        measuredRttMs: measuredRtt,
        minutes,
        rows: rows.map((row) => ({ ...row, summary: summarize(row), vsRaw: ratio(row, baselineOf(row)), vsNodemailer: ratio(row, nodemailerOf(row)) })),
        targets: goals,
      };
      process.stdout.write(JSON.stringify(json, null, 2) + "\n");
    } else {
      const out: string[] = [];
      out.push(
        `${info.date}  commit ${info.commit}  Node ${info.node}  ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB  nodemailer ${info.nodemailer}`,
        `child env: ${info.env}; reps per client: ${plan.reps}, each in a fresh process; MB/s = 10^6 bytes of message per second (encoder: per second of its CPU time)`,
        pinning ? `pinned: ${info.pinned} (relay case unpinned)` : "not pinned: clients and servers share the cores",
        `load average: ${info.loadAtStart} at start, ${loadavg()[0]!.toFixed(2)} at end${Number(info.loadAtStart) > 0.5 ? " (other work shared the CPU: expect noise)" : ""}`,
        "",
        table(),
        "",
        "/raw: the row over the raw-socket row of its input (encoder: over the indexOf scan, and memcpy is a plain",
        "copy of the same bytes into new Buffers; relay: over the feeder into smtp-server alone). /nodemailer:",
        "smtp-wire over Nodemailer. trips/msg: round trips per message the sink saw (reads that followed a reply).",
        "peak RSS: the client's (relay: the relaying process's), median of reps. Large-message kinds: base64",
        "attachment; text (UTF-8, 1.5 % dot-led lines); text-lf (the same with bare LF); raw sends them encoded.",
        "client CPU: the client process's user + system CPU while timed, per message or per GB of message (the",
        "system part includes the loopback delivery its writes cause). Small messages are timed after a warm-up",
        `(${plan.small.warmup} messages over two connections straight into the sink); "warm-up" in the note is`,
        "that warm-up's CPU per message: the one-time cost of a process whose code is not compiled yet.",
        "",
        measuredRtt !== undefined ? `Delaying proxy: mean added delay ${measuredRtt.toFixed(2)} ms per reply.` : "",
        "Targets (issues 5, 12 and 14):",
        ...(goals.length ? goals.map((t) => `  [${t.met === undefined ? " n/a " : t.met ? " met " : "MISSED"}] ${t.text}: ${t.value}`) : ["  (none in the cases run)"]),
        "",
        `${minutes.toFixed(1)} minutes`,
      );
      process.stdout.write(out.filter((line, i, all) => line !== "" || all[i - 1] !== "").join("\n") + "\n");
    }
    const failed = rows.some((row) => row.samples.some((s) => !s.ok));
    if (failed) process.exitCode = 1;
  } finally {
    cleanup();
  }
}

await main();
