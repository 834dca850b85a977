/**
 * The pool cases (issue 12): `--count` messages of 4 KiB offered at once to a pool of
 * `--connections`, timed from the first send to the last result, with the peak RSS that
 * offering them all at once costs.
 *
 *   node pool.bench.js --client smtp-wire-pool|nodemailer-pool|smtp-wire-transport|nodemailer-transport
 *        --port N --count N --connections N [--max-seconds S]
 *
 * smtp-wire-pool: SMTPPool.send(envelope, buffer). nodemailer-pool: Nodemailer's own pool
 * (nodemailer/lib/smtp-pool) given the same bytes through the smallest mail object its
 * send() reads. The two transports: nodemailer.createTransport(...).sendMail() of the
 * same composed mail (4 KiB of text), through smtp-wire/nodemailer or through Nodemailer's
 * pooled SMTP transport, both with the same pool settings.
 *
 * A client still sending after `--max-seconds` closes its pool (sends in line fail) and
 * reports how many were accepted, so one slow client cannot stall the suite.
 */
import { Readable } from "node:stream";
import nodemailer from "nodemailer";
import NodemailerPool from "nodemailer/lib/smtp-pool";
import { childArgs, now, required, runChild } from "./child.js";
import { connectionOptions, ENVELOPE } from "./options.js";
import { smallMessage } from "./inputs.js";
import { SMTPPool } from "../lib/index.js";
import { smtpWire } from "../lib/nodemailer/index.js";

const args = childArgs(["client", "port", "count", "connections", "max-seconds"]);
const client = required(args, "client");
const port = Number(required(args, "port"));
const count = Number(required(args, "count"));
const connections = Number(args.connections ?? 5);
const maxMs = Number(args["max-seconds"] ?? 60) * 1000;
const message = smallMessage(4096);
const settings = { ...connectionOptions(port), maxConnections: connections };

/** The mail both transports compose: 4 KiB of plain text. */
const text = message.subarray(message.indexOf("\r\n\r\n") + 4).toString("latin1");
const mail = { from: ENVELOPE.from, to: ENVELOPE.to, subject: "small", text };

/** Nodemailer's pool reads only these of a mail object: the same bytes as SMTPPool gets. */
function rawMail(n: number) {
  return {
    data: {},
    message: {
      getEnvelope: () => ({ from: ENVELOPE.from, to: [...ENVELOPE.to] }),
      messageId: () => `<${n}@bench.example>`,
      getHeader: () => `<${n}@bench.example>`,
      createReadStream: () => Readable.from([message]),
    },
  };
}

interface Sender {
  send(n: number): Promise<unknown>;
  close(): Promise<void> | void;
}

function sender(): Sender {
  switch (client) {
    case "smtp-wire-pool": {
      const pool = new SMTPPool(settings);
      return { send: () => pool.send(ENVELOPE, message), close: () => pool.close({ force: true }) };
    }
    case "nodemailer-pool": {
      const pool = new NodemailerPool(settings as ConstructorParameters<typeof NodemailerPool>[0]);
      return {
        send: (n) => new Promise((resolve, reject) => pool.send(rawMail(n) as never, (err, info) => (err ? reject(err) : resolve(info)))),
        close: () => pool.close(),
      };
    }
    case "smtp-wire-transport": {
      const transport = nodemailer.createTransport(smtpWire({ ...settings, pool: true }));
      return { send: () => transport.sendMail(mail), close: () => transport.close() };
    }
    case "nodemailer-transport": {
      const transport = nodemailer.createTransport({ ...settings, pool: true });
      return { send: () => transport.sendMail(mail), close: () => transport.close() };
    }
    default:
      throw new Error(`unknown client ${client}`);
  }
}

await runChild(async () => {
  const target = sender();
  let accepted = 0;
  let failed = 0;
  let firstError: unknown;
  const start = now();
  const cpuAtStart = process.cpuUsage();
  const sends: Promise<void>[] = [];
  for (let n = 0; n < count; n++) {
    sends.push(
      target.send(n).then(
        () => void accepted++,
        (err: unknown) => {
          failed++;
          firstError ??= err;
        },
      ),
    );
  }
  const all = Promise.all(sends);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), maxMs)))]);
  clearTimeout(timer);
  const seconds = (now() - start) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  if (timedOut) {
    await target.close();
    await all;
  } else await target.close();
  if (failed > 0 && !timedOut) throw new Error(`${failed} of ${count} sends failed: ${String((firstError as Error)?.message ?? firstError)}`);
  return {
    seconds,
    messages: accepted,
    bytes: accepted * message.length,
    detail: { cpuMicrosPerMessage: (cpu.user + cpu.system) / Math.max(1, accepted), timedOut },
  };
});
