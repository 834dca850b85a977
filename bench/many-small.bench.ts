/**
 * Case 3, many small messages over one connection: `--count` messages of 4 KiB sent one
 * after another, timed after `--warmup` untimed ones. Run straight into the sink (0 RTT)
 * or through the delaying proxy; the sink counts the round trips.
 *
 *   node many-small.bench.js --client raw|smtp-wire|smtp-wire-queued|smtp-wire-chunking|nodemailer
 *        --port N --count N --warmup N [--window N] [--max-seconds S]
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
import { childArgs, now, required, runChild } from "./child.js";
import { RawClient } from "./raw-client.js";
import { NodemailerClient } from "./nodemailer-client.js";
import { SMTPConnection } from "../lib/index.js";
import { connectionOptions, ENVELOPE } from "./options.js";
import { smallMessage } from "./inputs.js";

const args = childArgs(["client", "port", "count", "warmup", "window", "max-seconds"]);
const client = required(args, "client");
const port = Number(required(args, "port"));
const count = Number(required(args, "count"));
const warmup = Number(args.warmup ?? 0);
const window = Number(args.window ?? 8);
const maxMs = Number(args["max-seconds"] ?? 60) * 1000;
const message = smallMessage(4096);

interface Run {
  seconds: number;
  sent: number;
  warmed: number;
  /** CPU this process used (user + system, µs) during the timed part. */
  cpu: NodeJS.CpuUsage;
}

/** Sends `warmup` untimed messages, then up to `count` timed ones; returns seconds and how many. */
async function timed(send: () => Promise<unknown>): Promise<Run> {
  const warmupEnd = now() + maxMs / 4;
  let warmed = 0;
  while (warmed < warmup && now() < warmupEnd) {
    await send();
    warmed++;
  }
  const start = now();
  const cpuAtStart = process.cpuUsage();
  let sent = 0;
  while (sent < count && now() - start < maxMs) {
    await send();
    sent++;
  }
  return { seconds: (now() - start) / 1000, sent, warmed, cpu: process.cpuUsage(cpuAtStart) };
}

await runChild(async () => {
  let run: Run;
  switch (client) {
    case "raw": {
      const raw = await RawClient.open(port);
      run = await timed(async () => {
        await raw.envelope(ENVELOPE.from, ENVELOPE.to[0]!);
        await raw.body(message);
      });
      await raw.quit();
      break;
    }
    case "smtp-wire":
    case "smtp-wire-chunking": {
      const connection = new SMTPConnection({ ...connectionOptions(port), chunking: client === "smtp-wire-chunking" });
      await connection.connect();
      run = await timed(() => connection.send(ENVELOPE, message));
      connection.quit().catch(() => undefined);
      break;
    }
    case "smtp-wire-queued": {
      const connection = new SMTPConnection(connectionOptions(port));
      await connection.connect();
      const sendMany = async (total: number, until: number): Promise<number> => {
        const inFlight = new Set<Promise<unknown>>();
        let i = 0;
        for (; i < total && now() < until; i++) {
          const sending: Promise<unknown> = connection.send(ENVELOPE, message).finally(() => inFlight.delete(sending));
          inFlight.add(sending);
          if (inFlight.size >= window) await Promise.race(inFlight);
        }
        await Promise.all(inFlight);
        return i;
      };
      const warmed = await sendMany(warmup, now() + maxMs / 4);
      const start = now();
      const cpuAtStart = process.cpuUsage();
      const sent = await sendMany(count, start + maxMs);
      run = { seconds: (now() - start) / 1000, sent, warmed, cpu: process.cpuUsage(cpuAtStart) };
      connection.quit().catch(() => undefined);
      break;
    }
    case "nodemailer": {
      const connection = await NodemailerClient.open(port);
      run = await timed(() => connection.send(ENVELOPE, message));
      connection.quit();
      break;
    }
    default:
      throw new Error(`unknown client ${client}`);
  }
  const cpuMicrosPerMessage = (run.cpu.user + run.cpu.system) / Math.max(1, run.sent);
  return { seconds: run.seconds, messages: run.sent, bytes: run.sent * message.length, detail: { warmup: run.warmed, cpuMicrosPerMessage, userMicros: run.cpu.user / Math.max(1, run.sent), systemMicros: run.cpu.system / Math.max(1, run.sent) } };
});
