/**
 * Case 2, one large message from a file: `createReadStream(eml)` into one client, timed
 * from the envelope to the server's final reply, with the client's peak RSS.
 *
 *   node large-message.bench.js --client raw|smtp-wire|nodemailer --port N
 *        --file message.eml --stuffed message.stuffed.eml
 *
 * smtp-wire: `pipeline(createReadStream(file), conn.createSendStream(envelope))`.
 * Nodemailer: `send(envelope, createReadStream(file))`.
 * raw: the stuffed file piped straight into the socket after a hand-written envelope.
 * Also the feeder of the relay case (raw, into the relay's smtp-server).
 */
import { createReadStream, statSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { childArgs, now, required, runChild } from "./child.js";
import { RawClient } from "./raw-client.js";
import { NodemailerClient } from "./nodemailer-client.js";
import { SMTPConnection } from "../lib/index.js";
import { connectionOptions, ENVELOPE } from "./options.js";

const args = childArgs(["client", "port", "file", "stuffed"]);
const client = required(args, "client");
const port = Number(required(args, "port"));
const file = required(args, "file");
const bytes = statSync(file).size;

/** The client's CPU while timed, in seconds per GB (10^9 bytes) of message: user and system. */
function cpuDetail(cpu: NodeJS.CpuUsage): Record<string, number> {
  const perGB = 1e9 / bytes / 1e6;
  return { userSecondsPerGB: cpu.user * perGB, systemSecondsPerGB: cpu.system * perGB };
}

await runChild(async () => {
  switch (client) {
    case "raw": {
      const raw = await RawClient.open(port);
      const start = now();
      const cpuAtStart = process.cpuUsage();
      await raw.envelope(ENVELOPE.from, ENVELOPE.to[0]!);
      await raw.body(createReadStream(required(args, "stuffed")));
      const seconds = (now() - start) / 1000;
      const cpu = process.cpuUsage(cpuAtStart);
      await raw.quit();
      return { seconds, bytes, detail: cpuDetail(cpu) };
    }
    case "smtp-wire": {
      const connection = new SMTPConnection(connectionOptions(port));
      await connection.connect();
      const start = now();
      const cpuAtStart = process.cpuUsage();
      const out = connection.createSendStream(ENVELOPE);
      await pipeline(createReadStream(file), out);
      const seconds = (now() - start) / 1000;
      const cpu = process.cpuUsage(cpuAtStart);
      connection.quit().catch(() => undefined);
      return { seconds, bytes, detail: { messageSize: out.info?.messageSize, ...cpuDetail(cpu) } };
    }
    case "nodemailer": {
      const connection = await NodemailerClient.open(port);
      const start = now();
      const cpuAtStart = process.cpuUsage();
      const info = await connection.send(ENVELOPE, createReadStream(file));
      const seconds = (now() - start) / 1000;
      const cpu = process.cpuUsage(cpuAtStart);
      connection.quit();
      return { seconds, bytes, detail: { messageSize: info.messageSize, ...cpuDetail(cpu) } };
    }
    default:
      throw new Error(`unknown client ${client}`);
  }
});
