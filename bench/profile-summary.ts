/**
 * Sums a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --profile DIR`) by
 * function: self time, and the time under each function of the library (inclusive),
 * so the hot spots inside smtp-wire can be named without a profiler UI.
 *
 *   node dist/bench/profile-summary.js FILE.cpuprofile [--top N] [--match lib/]
 *
 * `--match` picks the functions whose script URL contains it for the inclusive list
 * (default "/lib/", the library's own files).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({
  options: { top: { type: "string", default: "20" }, match: { type: "string", default: "/lib/" } },
  allowPositionals: true,
});
if (positionals.length !== 1) {
  process.stderr.write("usage: node profile-summary.js FILE.cpuprofile [--top N] [--match TEXT]\n");
  process.exit(2);
}
// Piped into `head`: stop quietly when the reader has gone.
process.stdout.on("error", () => process.exit(0));
const profile = JSON.parse(readFileSync(positionals[0]!, "utf8")) as Profile;
const top = Number(values.top);
const match = values.match!;

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

const label = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*\/(dist\/|node_modules\/)/, "$1").replace(/^node:/, "node:");
  return `${functionName || "(anonymous)"} ${file ? `${file}:${lineNumber + 1}` : ""}`.trim();
};

// Time per sample: the delta that follows it (V8 records the gap before each sample).
const selfMs = new Map<string, number>();
const inclusiveMs = new Map<string, number>();
let totalMs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
  totalMs += ms;
  let node = byId.get(profile.samples[i]!);
  if (!node) continue;
  selfMs.set(label(node), (selfMs.get(label(node)) ?? 0) + ms);
  const seen = new Set<string>();
  while (node) {
    const name = label(node);
    if (node.callFrame.url.includes(match) && !seen.has(name)) {
      seen.add(name);
      inclusiveMs.set(name, (inclusiveMs.get(name) ?? 0) + ms);
    }
    const up = parent.get(node.id);
    node = up === undefined ? undefined : byId.get(up);
  }
}

const print = (title: string, map: Map<string, number>): void => {
  process.stdout.write(`${title}\n`);
  for (const [name, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${ms.toFixed(1).padStart(9)} ms ${((ms / totalMs) * 100).toFixed(1).padStart(5)}%  ${name}\n`);
  }
};
process.stdout.write(`${positionals[0]}: ${totalMs.toFixed(0)} ms sampled\n`);
print("self time, by function:", selfMs);
print(`inclusive time, functions whose URL contains "${match}":`, inclusiveMs);
