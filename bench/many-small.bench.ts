/**
 * Case 3, many small messages over one connection: `--count` messages of 4 KiB sent one
 * after another, timed. Run straight into the sink (0 RTT) or through the delaying proxy;
 * the sink counts the round trips.
 *
 *   node many-small.bench.js --client raw|smtp-wire|smtp-wire-queued|smtp-wire-chunking|nodemailer
 *        --port N --count N --warmup N [--warmup-port N] [--window N] [--max-seconds S]
 *
 * Warm-up first: `--warmup` untimed messages over two connections of their own, one after
 * the other, to `--warmup-port` (the sink itself, with no delay, so a long warm-up costs
 * little time), so that what is timed is the per-message cost of a process whose code the
 * engine has compiled, as in a sender that runs for months and has opened and closed
 * connections before (the first close changes what the engine assumed of the objects, and
 * it compiles much of the code again). The CPU of the warm-up is reported too: the one-time
 * cost a short-lived sender pays. Then the child prints `WARMED` and waits for SIGUSR2, so
 * the runner can zero the sink's counters; only then does it open the timed connection to
 * `--port`. (Printed with a synchronous write, and a signal rather than a line on stdin:
 * a stream of another kind used here would make the engine drop the code it compiled for
 * the socket's stream, and the timed part would pay for compiling it again.)
 *
 * A slow client stops after `--max-seconds` of timed sending (and its warm-up after a
 * quarter of that) and reports how many it sent, so one slow client cannot stall the suite.
 *
 * smtp-wire and Nodemailer: `await send(envelope, buffer)` for each message.
 * smtp-wire-chunking: the same with `chunking: true` (the sink offers CHUNKING): MAIL, RCPT
 * and the message as "BDAT n LAST" in one write, one round trip a message even awaited.
 * smtp-wire-queued: up to `--window` sends started without waiting (smtp-wire queues
 * them on the one connection and writes each envelope behind the previous message's
 * terminator: one round trip a message); Nodemailer has no such mode.
 * raw: MAIL/RCPT/DATA as one pipelined group, then the body: two round trips a message.
 */
import { writeSync } from "node:fs";
import { childArgs, now, required, runChild } from "./child.js";
import { RawClient } from "./raw-client.js";
import { NodemailerClient } from "./nodemailer-client.js";
import { SMTPConnection } from "../lib/index.js";
import { connectionOptions, ENVELOPE } from "./options.js";
import { smallMessage } from "./inputs.js";

const args = childArgs(["client", "port", "count", "warmup", "warmup-port", "window", "max-seconds"]);
const client = required(args, "client");
const port = Number(required(args, "port"));
const count = Number(required(args, "count"));
const warmup = Number(args.warmup ?? 0);
const warmupPort = Number(args["warmup-port"] ?? port);
const window = Number(args.window ?? 8);
const maxMs = Number(args["max-seconds"] ?? 60) * 1000;
const message = smallMessage(4096);

/** One connection of the client under test. */
interface Sender {
  /** Sends up to `total` messages, stopping early at `until` (ms); returns how many were sent. */
  sendMany(total: number, until: number): Promise<number>;
  /** Ends the connection (QUIT); resolves once it is closed. */
  close(): Promise<void>;
}

/** Each message sent and awaited before the next. */
function oneByOne(send: () => Promise<unknown>, close: () => Promise<void>): Sender {
  return {
    async sendMany(total, until) {
      let sent = 0;
      while (sent < total && now() < until) {
        await send();
        sent++;
      }
      return sent;
    },
    close,
  };
}

/** Up to `window` sends in flight on the one connection. */
function queued(connection: SMTPConnection): Sender {
  return {
    async sendMany(total, until) {
      const inFlight = new Set<Promise<unknown>>();
      let i = 0;
      for (; i < total && now() < until; i++) {
        const sending: Promise<unknown> = connection.send(ENVELOPE, message).finally(() => inFlight.delete(sending));
        inFlight.add(sending);
        if (inFlight.size >= window) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      return i;
    },
    close: () => quitSMTPWire(connection),
  };
}

const quitSMTPWire = (connection: SMTPConnection): Promise<void> => connection.quit().then(
  () => undefined,
  () => undefined,
);

async function open(toPort: number): Promise<Sender> {
  switch (client) {
    case "raw": {
      const raw = await RawClient.open(toPort);
      const send = async (): Promise<void> => {
        await raw.envelope(ENVELOPE.from, ENVELOPE.to[0]!);
        await raw.body(message);
      };
      return oneByOne(send, () => raw.quit());
    }
    case "smtp-wire":
    case "smtp-wire-chunking":
    case "smtp-wire-queued": {
      const connection = new SMTPConnection({ ...connectionOptions(toPort), chunking: client === "smtp-wire-chunking" });
      await connection.connect();
      if (client === "smtp-wire-queued") return queued(connection);
      return oneByOne(() => connection.send(ENVELOPE, message), () => quitSMTPWire(connection));
    }
    case "nodemailer": {
      const connection = await NodemailerClient.open(toPort);
      return oneByOne(() => connection.send(ENVELOPE, message), async () => connection.quit());
    }
    default:
      throw new Error(`unknown client ${client}`);
  }
}

/** Tells the runner the warm-up is over and waits for its go (it zeroes the sink meanwhile). */
async function handOver(): Promise<void> {
  // A signal handler does not keep the process alive, and the warm-up's connections are
  // closed: the timer does, and fails the child if the go never comes.
  let timer: NodeJS.Timeout | undefined;
  const go = new Promise<void>((resolve, reject) => {
    process.once("SIGUSR2", () => resolve());
    timer = setTimeout(() => reject(new Error("no go (SIGUSR2) from the runner within 60 s")), 60_000);
  });
  writeSync(1, "WARMED\n");
  await go.finally(() => clearTimeout(timer));
}

const perMessage = (cpu: NodeJS.CpuUsage, messages: number): number => (cpu.user + cpu.system) / Math.max(1, messages);

await runChild(async () => {
  const warmCpuAtStart = process.cpuUsage();
  const warmupEnd = now() + maxMs / 4;
  let warmed = 0;
  for (const share of [Math.ceil(warmup / 2), Math.floor(warmup / 2)]) {
    const warming = await open(warmupPort);
    warmed += await warming.sendMany(share, warmupEnd);
    await warming.close();
  }
  const warmupCpu = process.cpuUsage(warmCpuAtStart);
  await handOver();

  const sender = await open(port);
  const start = now();
  const cpuAtStart = process.cpuUsage();
  const sent = await sender.sendMany(count, start + maxMs);
  const seconds = (now() - start) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  void sender.close();
  return {
    seconds,
    messages: sent,
    bytes: sent * message.length,
    detail: {
      warmup: warmed,
      warmupCpuMicrosPerMessage: perMessage(warmupCpu, warmed),
      cpuMicrosPerMessage: perMessage(cpu, sent),
      userMicros: cpu.user / Math.max(1, sent),
      systemMicros: cpu.system / Math.max(1, sent),
    },
  };
});
