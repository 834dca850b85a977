/**
 * What every benchmark child process shares: its arguments, its clock, its peak RSS and
 * the one line it reports back to the runner (`RESULT {json}` on stdout). A child runs
 * one client once and exits; the runner starts a fresh one for every rep.
 */
import { parseArgs } from "node:util";

/** What a child reports. The runner turns it into a row and checks it against the sink. */
export interface ChildResult {
  ok: boolean;
  /** Seconds spent on the measured work only (connection set-up excluded). */
  seconds: number;
  /** Message bytes moved (the source's size, before dot-stuffing). */
  bytes?: number;
  /** Messages sent. */
  messages?: number;
  /** Peak resident set of this process, MiB (getrusage maxrss). */
  peakRssMiB: number;
  /** Scenario-specific figures and checks (e.g. the encoder's output hash). */
  detail?: Record<string, unknown>;
  error?: string;
}

export const RESULT_PREFIX = "RESULT ";

/** Parses `--name value` / `--name=value` options; every value is a string. */
export function childArgs(names: string[]): Record<string, string | undefined> {
  const options = Object.fromEntries(names.map((name) => [name, { type: "string" as const }]));
  const { values } = parseArgs({ options, strict: true, allowPositionals: false });
  return values as Record<string, string | undefined>;
}

export function required(args: Record<string, string | undefined>, name: string): string {
  const value = args[name];
  if (value === undefined) throw new Error(`missing --${name}`);
  return value;
}

export function peakRssMiB(): number {
  // maxRSS is in KiB on Linux.
  return process.resourceUsage().maxRSS / 1024;
}

/** Milliseconds since an arbitrary origin, sub-microsecond resolution. */
export function now(): number {
  return performance.now();
}

export function report(result: ChildResult): void {
  process.stdout.write(RESULT_PREFIX + JSON.stringify(result) + "\n");
}

/**
 * Runs `body`, reports what it returns, and turns a throw into a failed result, so the
 * runner always gets one line. Exits when done: a client that leaves a handle open must
 * not stall the suite.
 */
export async function runChild(body: () => Promise<Omit<ChildResult, "peakRssMiB" | "ok">>): Promise<void> {
  try {
    const result = await body();
    report({ ok: true, ...result, peakRssMiB: peakRssMiB() });
  } catch (err) {
    const error = err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err);
    report({ ok: false, seconds: 0, peakRssMiB: peakRssMiB(), error });
  }
  process.exit(0);
}
