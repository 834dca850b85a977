/**
 * End-of-file checks that make a leaked socket, server, timer, unhandled rejection or
 * doubly-called callback fail the suite (STYLE.md, Tests), and runInChild() for
 * measurements that need a fresh process (memory, handle counts).
 *
 * Usage at the end of a test file:
 *
 *   const unhandled = trackUnhandled();                    // at the top of the file
 *   ...
 *   leakCheckTest(test, unhandled);                        // registers the final check
 *   test.run();
 *
 * It deliberately checks only the resource types our code creates; it cannot close a
 * leaked handle (Node does not hand them out), so after a failed check it makes the
 * process exit once uvu has printed its summary instead of hanging until the runner kills it.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { callbackViolations } from "./callbacks.js";

/** The resource types (as process.getActiveResourcesInfo() names them) that count as leaks. */
export const LEAK_TYPES: readonly string[] = ["TCPSocketWrap", "TCPServerWrap", "TLSWrap", "Timeout"];

export interface LeakCheckOptions {
  /** How long to let closing handles finish before judging, polled with setImmediate (default 250 ms). */
  settleMs?: number;
  /** Resource types to count as leaks (default LEAK_TYPES). */
  types?: readonly string[];
}

/**
 * Waits (setImmediate turns, up to `settleMs`) until no resource of the leak types
 * remains, then throws an Error listing what is still open, if anything; it also fails on
 * anything trackUnhandled() recorded and on callbacks from callbacks.ts called twice.
 * Call it after every server and connection of the file is closed (a uvu `test.after`
 * hook runs after the last test, so close servers in the tests themselves or call this
 * from the after hook, after closing them).
 */
export async function assertNoLeaks(options: LeakCheckOptions = {}): Promise<void> {
  const { settleMs = 250, types = LEAK_TYPES } = options;
  const deadline = Date.now() + settleMs;
  let leaked = openResources(types);
  while (leaked.length > 0 && Date.now() < deadline) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    leaked = openResources(types);
  }
  const problems: string[] = [];
  if (leaked.length > 0) {
    problems.push(`still open after ${settleMs} ms: ${summarize(leaked)}`);
    exitAfterSummary(`leaked ${summarize(leaked)} would keep the process alive`);
  }
  if (tracker) problems.push(...tracker.events.map(describeEvent));
  problems.push(...callbackViolations());
  if (problems.length > 0) throw new Error(`leak check failed:\n  ${problems.join("\n  ")}`);
}

/** The open resources of the given types right now, e.g. ["TCPSocketWrap", "Timeout"]. */
export function openResources(types: readonly string[] = LEAK_TYPES): string[] {
  return process.getActiveResourcesInfo().filter((type) => types.includes(type));
}

function summarize(types: string[]): string {
  const counts = new Map<string, number>();
  for (const type of types) counts.set(type, (counts.get(type) ?? 0) + 1);
  return [...counts].map(([type, n]) => `${n} × ${type}`).join(", ");
}

let exitArmed = false;

// A leaked handle keeps the process alive after uvu's summary, and the runner would only
// kill it after its long file timeout. uvu sets process.exitCode when it has finished;
// from then on an unref'd timer (which itself keeps nothing alive) ends the process.
function exitAfterSummary(reason: string): void {
  if (exitArmed) return;
  exitArmed = true;
  const timer = setInterval(() => {
    if (process.exitCode === undefined) return;
    process.stderr.write(`[leak-check] ${reason}; exiting with 1\n`);
    process.exit(1);
  }, 100);
  timer.unref();
}

/** One 'unhandledRejection' or 'uncaughtException' seen by trackUnhandled(). */
export interface UnhandledEvent {
  kind: "unhandledRejection" | "uncaughtException";
  error: unknown;
}

export interface UnhandledTracker {
  /** Everything recorded so far, in order. */
  readonly events: readonly UnhandledEvent[];
  /** Throws an Error describing the events, if any. */
  assertNone(): void;
}

let tracker: (UnhandledTracker & { events: UnhandledEvent[] }) | undefined;

/**
 * Starts recording 'unhandledRejection' and 'uncaughtException' for this process (call it
 * once at the top of a test file; later calls return the same tracker). Each event is
 * printed to stderr when it happens; assertNoLeaks() fails on them; and if any occurred,
 * the process exits with code 1 whatever uvu reported, so the runner counts a failure.
 * Note that with a listener installed an uncaught exception no longer kills the process.
 */
export function trackUnhandled(): UnhandledTracker {
  if (tracker) return tracker;
  const events: UnhandledEvent[] = [];
  const record = (kind: UnhandledEvent["kind"]) => (error: unknown) => {
    events.push({ kind, error });
    process.stderr.write(`[leak-check] ${describeEvent({ kind, error })}\n`);
  };
  process.on("unhandledRejection", record("unhandledRejection"));
  process.on("uncaughtException", record("uncaughtException"));
  // Registered after uvu's own 'exit' listener, so this runs after it set the exit code.
  process.on("exit", () => {
    if (events.length === 0) return;
    process.stderr.write(`[leak-check] ${events.length} unhandled rejection(s)/exception(s) in this file; exiting with 1\n`);
    process.exitCode = 1;
  });
  tracker = {
    events,
    assertNone() {
      if (events.length > 0) throw new Error(events.map(describeEvent).join("\n"));
    },
  };
  return tracker;
}

/** The title of the final test that leakCheckTest() registers. */
export const LEAK_CHECK_TITLE = "leaves no socket, timer or unhandled rejection behind";

/**
 * Registers the usual last test of a file: no unhandled rejection or exception was
 * recorded by `unhandled`, and assertNoLeaks() passes. Call it just before test.run():
 *
 *   const unhandled = trackUnhandled();                    // at the top of the file
 *   ...
 *   leakCheckTest(test, unhandled);
 *   test.run();
 */
export function leakCheckTest(test: (title: string, fn: () => Promise<void>) => void, unhandled: UnhandledTracker = trackUnhandled()): void {
  test(LEAK_CHECK_TITLE, async () => {
    unhandled.assertNone();
    await assertNoLeaks();
  });
}

function describeEvent(event: UnhandledEvent): string {
  const { error } = event;
  const text = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
  return `${event.kind}: ${text}`;
}

export interface ChildOptions {
  /** Node flags for the child, e.g. ["--expose-gc"] (default none). */
  execArgv?: string[];
  /** Extra environment variables (merged over process.env). */
  env?: Record<string, string>;
  /** Kill the child and reject after this many ms (default 60 000). */
  timeoutMs?: number;
}

/**
 * Runs the compiled module `modulePath` (a path or file: URL to a .js file, e.g.
 * `new URL("./scenarios/big-send.js", import.meta.url)`) with `args` in a fresh Node
 * process and resolves with the JSON value of the last non-empty line it printed to
 * stdout (see sendResult()). Rejects, quoting the child's stderr, if it exits non-zero,
 * is killed by the timeout, or its last line is not JSON. Name scenario files without
 * `.test.` so the runner does not run them on their own.
 */
export function runInChild<T = unknown>(modulePath: string | URL, args: string[] = [], options: ChildOptions = {}): Promise<T> {
  const { execArgv = [], env, timeoutMs = 60_000 } = options;
  const file = modulePath instanceof URL ? fileURLToPath(modulePath) : modulePath;
  return new Promise<T>((resolve, reject) => {
    const child = spawn(process.execPath, [...execArgv, file, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const err = Buffer.concat(stderr).toString().trim();
      const where = `child ${file}${args.length ? ` ${args.join(" ")}` : ""}`;
      if (timedOut) return reject(new Error(`${where} did not finish within ${timeoutMs} ms and was killed${err ? `; stderr:\n${err}` : ""}`));
      if (code !== 0) return reject(new Error(`${where} exited with ${code ?? signal}${err ? `; stderr:\n${err}` : ""}`));
      const lines = Buffer.concat(stdout).toString().split("\n").map((line) => line.trim()).filter(Boolean);
      const last = lines.at(-1);
      if (last === undefined) return reject(new Error(`${where} printed no result${err ? `; stderr:\n${err}` : ""}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${where} did not end with a JSON line: ${JSON.stringify(last.slice(0, 200))}`));
      }
    });
  });
}

/** For a module run by runInChild(): prints `value` as the JSON line the parent reads. */
export function sendResult(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
