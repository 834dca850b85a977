/**
 * Nothing is left behind, measured in a fresh process: every phase meets a clean close, a
 * stall and garbage in a child process, which then reports process.getActiveResourcesInfo()
 * (every resource type, not only sockets and timers) before and after. The other fault
 * files check sockets, servers and timers after each cell in their own process.
 *
 * Run with `--child` it is that child; without, it is the test.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PHASES, runCell, type FaultName } from "./harness.js";
import { runInChild, sendResult, trackUnhandled, assertNoLeaks } from "../helpers/leak-check.js";

const FAULTS: FaultName[] = ["close (FIN)", "silent stall", "NUL byte"];

interface ChildReport {
  before: string[];
  after: string[];
  cells: number;
  failures: string[];
  unhandled: number;
}

async function child(): Promise<void> {
  const unhandled = trackUnhandled();
  // Node opens the stdio handles on first use; open them now so they are in the baseline.
  void process.stdout;
  void process.stderr;
  const before = process.getActiveResourcesInfo();
  const failures: string[] = [];
  let cells = 0;
  for (const phase of Object.values(PHASES)) {
    for (const fault of FAULTS) {
      if (phase.skip?.includes(fault)) continue;
      cells++;
      await runCell(phase, fault, cells % 2 === 0, unhandled).catch((err: Error) => failures.push(`${phase.name} × ${fault}: ${err.message}`));
    }
  }
  // Let closing handles finish their last callbacks, as a process about to exit would.
  for (let i = 0; i < 20 && process.getActiveResourcesInfo().length > before.length; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise((resolve) => setImmediate(resolve));
  sendResult({ before, after: process.getActiveResourcesInfo(), cells, failures, unhandled: unhandled.events.length } satisfies ChildReport);
}

if (process.argv.includes("--child")) {
  await child();
} else {
  trackUnhandled();

  test("after every phase meets a close, a stall and garbage, a fresh process has no more active resources than it started with", async () => {
    const report = await runInChild<ChildReport>(new URL(import.meta.url), ["--child"], { timeoutMs: 120_000 });
    assert.equal(report.failures, [], "every cell passes in the child too");
    assert.is(report.unhandled, 0, "nothing unhandled in the child");
    assert.ok(report.cells >= 40, `ran ${report.cells} cells`);
    const count = (types: string[]) => types.reduce((m, t) => m.set(t, (m.get(t) ?? 0) + 1), new Map<string, number>());
    const before = count(report.before);
    const extra = [...count(report.after)].filter(([type, n]) => n > (before.get(type) ?? 0));
    assert.equal(extra, [], "no resource type has more instances than at the start");
    console.log(`handles: ${report.cells} cells; active resources before ${JSON.stringify(report.before)}, after ${JSON.stringify(report.after)}`);
  });

  test("leaves no socket, timer or rejection behind", () => assertNoLeaks());

  test.run();
}
