/**
 * Microbenchmark of the DATA encoder design, in one process, in memory:
 *
 *   node dist/bench/encoder-micro.js [--mib 32] [--reps 7]
 *
 * For each input (written in 64 KiB chunks) it prints MB/s of input for:
 * - smtp-wire's DataEncoder (a stream, output consumed);
 * - Nodemailer's DataStream (the same job, the rival);
 * - "indexOf LF": `Buffer.indexOf(LF)` finding every LF, no output (the least an encoder
 *   that looks at every line must do) and "indexOf term": one `indexOf("\r\n.\r\n")` per
 *   chunk (a floor for any scan of the bytes);
 * - the clean-chunk checks that were weighed for the fast path, as bare functions: one
 *   regular expression over a latin1 string, two indexOf cursors (CR and LF) per line,
 *   and the design chosen (indexOf(LF) per line plus one indexOf(CR) over a scratch copy
 *   with the CRLF CRs erased).
 * Best of `--reps` runs, contenders taking turns; the first round is a warm-up and not
 * counted.
 */
import DataStream from "nodemailer/lib/smtp-connection/data-stream.js";
import type { Transform } from "node:stream";
import { DataEncoder } from "../lib/stages/data-encoder.js";

const CHUNK = 64 * 1024;
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const index = args.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(args[index + 1]);
};
const MIB = option("mib", 32);
const REPS = option("reps", 7);

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lines of 76 bytes from `byteAt`, each ended by `eol`; every `dotEvery`-th line starts with ".". */
function lines(size: number, eol: string, dotEvery: number, byteAt: () => number): Buffer {
  const out = Buffer.alloc(size);
  const end = Buffer.from(eol, "latin1");
  let pos = 0;
  for (let line = 0; pos < size; line++) {
    for (let i = 0; i < 76 && pos < size; i++) out[pos++] = i === 0 && dotEvery > 0 && line % dotEvery === 0 ? DOT : byteAt();
    for (let i = 0; i < end.length && pos < size; i++) out[pos++] = end[i]!;
  }
  return out;
}

function inputs(size: number): Record<string, Buffer> {
  const random = mulberry32(42);
  const letter = (): number => 0x61 + Math.floor(random() * 26);
  const high = (): number => (random() < 0.3 ? 0x80 + Math.floor(random() * 128) : letter());
  const binary = Buffer.alloc(size);
  for (let i = 0; i < size; i++) binary[i] = Math.floor(random() * 256);
  return {
    "CRLF text": lines(size, "\r\n", 0, letter),
    "bare-LF text": lines(size, "\n", 0, letter),
    "dot-heavy (every 2nd line)": lines(size, "\r\n", 2, letter),
    "8-bit text, CRLF": lines(size, "\r\n", 0, high),
    "random binary": binary,
  };
}

function chunksOf(input: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < input.length; offset += CHUNK) chunks.push(input.subarray(offset, offset + CHUNK));
  return chunks;
}

async function throughStream(stream: Transform | DataEncoder, chunks: Buffer[]): Promise<number> {
  let total = 0;
  const ended = new Promise<void>((resolve) => stream.on("end", resolve));
  stream.on("data", (chunk: Buffer) => (total += chunk.length));
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  await ended;
  return total;
}

/** The clean-chunk checks considered for the fast path; each returns true when the chunk needs a change. */
const CANDIDATE_REGEX = /\r(?!\n)|(?<!\r)\n|\n\./;
function regexCheck(chunk: Buffer): boolean {
  return CANDIDATE_REGEX.test(chunk.toString("latin1"));
}
function twoCursorCheck(chunk: Buffer): boolean {
  let cr = chunk.indexOf(CR);
  let lf = chunk.indexOf(LF);
  while (lf !== -1) {
    if (cr !== lf - 1 || chunk[lf + 1] === DOT) return true;
    cr = chunk.indexOf(CR, lf);
    lf = chunk.indexOf(LF, lf + 1);
  }
  return cr !== -1 && cr !== chunk.length - 1;
}
const scratch = Buffer.allocUnsafe(CHUNK);
function erasedScratchCheck(chunk: Buffer): boolean {
  const copy = chunk.length === scratch.length ? scratch : scratch.subarray(0, chunk.length);
  copy.set(chunk);
  let lf = chunk.indexOf(LF);
  while (lf !== -1) {
    if (chunk[lf - 1] !== CR || chunk[lf + 1] === DOT) return true;
    copy[lf - 1] = 0;
    lf = chunk.indexOf(LF, lf + 1);
  }
  const cr = copy.indexOf(CR);
  return cr !== -1 && cr !== chunk.length - 1;
}

const TERMINATOR = Buffer.from("\r\n.\r\n");
const contenders: Record<string, (chunks: Buffer[]) => Promise<number> | number> = {
  "smtp-wire DataEncoder": (chunks) => throughStream(new DataEncoder(), chunks),
  "Nodemailer DataStream": (chunks) => throughStream(new DataStream(), chunks),
  "indexOf LF (count)": (chunks) => {
    let count = 0;
    for (const chunk of chunks) for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, lf + 1)) count++;
    return count;
  },
  "indexOf term (1/chunk)": (chunks) => {
    let found = 0;
    for (const chunk of chunks) if (chunk.indexOf(TERMINATOR) !== -1) found++;
    return found;
  },
  "check: regex on latin1": (chunks) => chunks.filter(regexCheck).length,
  "check: 2 indexOf/line": (chunks) => chunks.filter(twoCursorCheck).length,
  "check: chosen (erased CR)": (chunks) => chunks.filter(erasedScratchCheck).length,
};

async function main(): Promise<void> {
  const size = MIB * 1024 * 1024;
  console.log(`DATA encoder microbenchmark: ${MIB} MiB per input in 64 KiB chunks, MB/s of input (best of ${REPS}), Node ${process.version}`);
  const names = Object.keys(contenders);
  const width = Math.max(...names.map((name) => name.length));
  for (const [label, input] of Object.entries(inputs(size))) {
    const chunks = chunksOf(input);
    console.log(`\n${label}`);
    // Contenders take turns within each rep, so a burst of load elsewhere on the machine
    // does not land on one of them only.
    const best: Record<string, number> = {};
    for (let rep = 0; rep <= REPS; rep++) {
      for (const name of names) {
        const started = process.hrtime.bigint();
        await contenders[name]!(chunks);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        if (rep > 0) best[name] = Math.min(best[name] ?? Infinity, seconds);
      }
    }
    const results: Record<string, number> = {};
    for (const name of names) results[name] = size / 1e6 / best[name]!;
    const ours = results["smtp-wire DataEncoder"]!;
    for (const name of names) {
      const rate = results[name]!;
      const note =
        name === "Nodemailer DataStream" ? `  smtp-wire is ${(ours / rate).toFixed(1)}x`
        : name === "indexOf LF (count)" ? `  smtp-wire is ${(ours / rate).toFixed(2)}x`
        : "";
      console.log(`  ${name.padEnd(width)}  ${rate.toFixed(0).padStart(6)} MB/s${note}`);
    }
  }
}

await main();
