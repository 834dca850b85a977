/**
 * Test runner: runs every compiled `*.test.js` (and CommonJS `*.test.cjs`) file in its own Node process (two at a
 * time, for two cores), so one file's leaked handle or crash cannot hide in another's,
 * then prints the totals as `N passed, N failed`.
 *
 *   node dist/test/run.js [path-fragment ...]     e.g. `stages` or `test/interop`
 *
 * Interop tests (real MTAs) run only when a fragment names them; `npm run test:interop`
 * does that after starting the servers.
 */
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
const FILE_TIMEOUT_MS = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 240_000);
const CONCURRENCY = Number(process.env.TEST_CONCURRENCY ?? 2);

/**
 * The newest modification time under dist/lib, the compiled library every test and every
 * spawned `smtp-wire` command loads. A build during the run (tsc writes file by file)
 * gives a test half-written modules: a command spawned then exits 1 with a SyntaxError
 * that says nothing of the code under test, so a failure in such a run says so.
 */
function newestBuild(dir = join(root, "..", "lib")): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stats = statSync(path);
    newest = Math.max(newest, stats.isDirectory() ? newestBuild(path) : stats.mtimeMs);
  }
  return newest;
}
const BUILT_AT = newestBuild();
const REBUILT_NOTE = "[runner] dist/lib was rewritten while the tests ran (a build during the run): a failure here may come from half-written files, not from the code\n";

function findTests(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith(".test.js") || name.endsWith(".test.cjs")) found.push(path);
  }
  return found;
}

interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  output: string;
}

function parseSummary(output: string): { total: number; passed: number; skipped: number } | undefined {
  const total = /Total:\s+(\d+)/.exec(output);
  const passed = /Passed:\s+(\d+)/.exec(output);
  const skipped = /Skipped:\s+(\d+)/.exec(output);
  if (!total || !passed) return undefined;
  return { total: Number(total[1]), passed: Number(passed[1]), skipped: Number(skipped?.[1] ?? 0) };
}

function runFile(file: string): Promise<FileResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n[runner] ${FILE_TIMEOUT_MS} ms passed and the process had not exited (a hang or a leaked handle); killed\n`;
      child.kill("SIGKILL");
    }, FILE_TIMEOUT_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      const name = relative(root, file);
      const summary = parseSummary(output);
      if (!summary) {
        resolve({ file: name, passed: 0, failed: 1, skipped: 0, output: output + `\n[runner] no uvu summary (exit ${code})\n` });
        return;
      }
      // uvu's Total leaves out skipped tests already.
      let failed = summary.total - summary.passed;
      // A file whose tests passed but whose process failed (an unhandled rejection after
      // the last test, a leak check) counts as one more failure, never as a pass.
      if (failed === 0 && code !== 0) {
        failed = 1;
        output += `\n[runner] tests passed but the process exited with ${code}\n`;
      }
      resolve({ file: name, passed: summary.passed, failed, skipped: summary.skipped, output });
    });
  });
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2).map((f) => f.replace(/^test[\\/]/, "").split("/").join(sep));
  const wantsInterop = filters.some((f) => f.startsWith("interop"));
  const files = findTests(root).filter((file) => {
    const name = relative(root, file);
    if (!wantsInterop && name.startsWith(`interop${sep}`)) return false;
    return filters.length === 0 || filters.some((f) => name.includes(f));
  });
  const results: FileResult[] = [];
  let next = 0;
  async function worker(): Promise<void> {
    while (next < files.length) {
      const file = files[next++]!;
      const result = await runFile(file);
      results.push(result);
      const status = result.failed > 0 ? "FAIL" : "ok  ";
      process.stdout.write(`${status} ${result.file}  (${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped)\n`);
      if (result.failed > 0 && newestBuild() !== BUILT_AT) result.output += REBUILT_NOTE;
      if (result.failed > 0 || process.env.TEST_VERBOSE) process.stdout.write(indent(result.output));
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const skipped = results.reduce((n, r) => n + r.skipped, 0);
  if (files.length === 0) {
    process.stdout.write("no test files matched\n");
    process.exitCode = 1;
  }
  if (failed > 0) process.exitCode = 1;
  process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n") + "\n";
}

await main();
