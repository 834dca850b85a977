/**
 * Case 1, the DATA encoder alone, in memory: `--mib` MiB of one kind of input written in
 * 64 KiB chunks (what a file stream delivers) through one implementation.
 *
 *   node encoder.bench.js --impl smtp-wire|nodemailer|indexof|memcpy|passthrough
 *        --input crlf|lf|dots|binary --mib N
 *
 * smtp-wire: its DataEncoder. nodemailer: its DataStream, the same job. indexof: no
 * stream, no output, only `Buffer.indexOf` finding every LF: the least any encoder must
 * do. memcpy: no stream, each chunk copied into a new Buffer of its size: the least that
 * handing on new bytes costs, the physical limit an encoder that changes its input is
 * read against. passthrough: a PassThrough stream, the cost of the stream machinery alone.
 *
 * A first, untimed pass hashes the output (the runner checks that smtp-wire's equals
 * Nodemailer's and that `bytes` agrees); then passes are timed, as many as fit in
 * `--min-seconds` (at least one), each with a fresh stream. Besides the wall time the child
 * reports its CPU time (user + system) over the passes, `cpuSeconds`: the work is one
 * thread on one core, so the two agree on a quiet machine, and the CPU time is the one that
 * other processes taking turns on the core leave alone; the runner rates by it.
 */
import { PassThrough, type Transform } from "node:stream";
import { createHash } from "node:crypto";
import DataStream from "nodemailer/lib/smtp-connection/data-stream.js";
import { childArgs, now, required, runChild } from "./child.js";
import { encoderInput, type EncoderInputKind } from "./inputs.js";
import { DataEncoder } from "../lib/index.js";

const CHUNK = 64 * 1024;

const args = childArgs(["impl", "input", "mib", "min-seconds"]);
const impl = required(args, "impl");
const kind = required(args, "input") as EncoderInputKind;
const bytes = Number(required(args, "mib")) * 1024 * 1024;
const minSeconds = Number(args["min-seconds"] ?? 0.5);

/** Repeats `pass` until `minSeconds` have gone by (fast ones are too quick to time once). */
async function timedPasses(pass: () => Promise<void> | void): Promise<{ seconds: number; passes: number; cpuSeconds: number }> {
  let passes = 0;
  const start = now();
  const cpuAtStart = process.cpuUsage();
  do {
    await pass();
    passes++;
  } while ((now() - start) / 1000 < minSeconds);
  const cpu = process.cpuUsage(cpuAtStart);
  return { seconds: (now() - start) / 1000, passes, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** Writes every chunk into `stream` with backpressure; resolves when its output ended. */
function drive(stream: Transform, chunks: Buffer[], onData: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.on("data", onData);
    stream.on("end", resolve);
    stream.on("error", reject);
    let next = 0;
    const pump = (): void => {
      while (next < chunks.length) {
        if (!stream.write(chunks[next++])) {
          stream.once("drain", pump);
          return;
        }
      }
      stream.end();
    };
    pump();
  });
}

/** Counts every LF with indexOf, as an encoder must find each line end. */
function scan(chunks: Buffer[]): number {
  let lines = 0;
  for (const chunk of chunks) {
    let at = chunk.indexOf(0x0a);
    while (at >= 0) {
      lines++;
      at = chunk.indexOf(0x0a, at + 1);
    }
  }
  return lines;
}

/** Copies every chunk into a new Buffer, as an encoder hands on new bytes; returns the bytes copied. */
function copyAll(chunks: Buffer[]): number {
  let copied = 0;
  for (const chunk of chunks) {
    const copy = Buffer.allocUnsafe(chunk.length);
    copy.set(chunk);
    copied += copy.length;
  }
  return copied;
}

await runChild(async () => {
  const input = encoderInput(kind, bytes);
  const chunks: Buffer[] = [];
  for (let at = 0; at < input.length; at += CHUNK) chunks.push(input.subarray(at, at + CHUNK));

  if (impl === "indexof") {
    const lines = scan(chunks); // warm-up
    let again = 0;
    const { seconds, passes, cpuSeconds } = await timedPasses(() => {
      again = scan(chunks);
    });
    if (again !== lines) throw new Error("scan is not deterministic");
    return { seconds, bytes: bytes * passes, detail: { lines, passes, cpuSeconds } };
  }

  if (impl === "memcpy") {
    const copied = copyAll(chunks); // warm-up
    const { seconds, passes, cpuSeconds } = await timedPasses(() => {
      if (copyAll(chunks) !== copied) throw new Error("copy is not deterministic");
    });
    return { seconds, bytes: bytes * passes, detail: { outBytes: copied, passes, cpuSeconds } };
  }

  let create: () => Transform & { bytes?: number; outByteCount?: number };
  if (impl === "smtp-wire") {
    create = () => new DataEncoder();
  } else if (impl === "nodemailer") {
    create = () => new DataStream();
  } else if (impl === "passthrough") {
    create = () => new PassThrough();
  } else {
    throw new Error(`unknown impl ${impl}`);
  }

  // Untimed pass: the output's hash and size, and the encoder's own count.
  const hash = createHash("sha256");
  let outBytes = 0;
  const checked = create();
  await drive(checked, chunks, (chunk) => {
    outBytes += chunk.length;
    hash.update(chunk);
  });
  const counted = impl === "smtp-wire" ? checked.bytes : impl === "nodemailer" ? checked.outByteCount : outBytes;

  let timedBytes = 0;
  const { seconds, passes, cpuSeconds } = await timedPasses(async () => {
    timedBytes = 0;
    await drive(create(), chunks, (chunk) => {
      timedBytes += chunk.length;
    });
    if (timedBytes !== outBytes) throw new Error(`output size differs between passes: ${timedBytes} != ${outBytes}`);
  });
  return { seconds, bytes: bytes * passes, detail: { outBytes, sha256: hash.digest("hex"), counted, passes, cpuSeconds } };
});
