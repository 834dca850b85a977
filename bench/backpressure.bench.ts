/**
 * Case 4, relay: an smtp-server receives one message and the client forwards its data
 * stream to the sink as the bytes arrive, so the sender is only as fast as backpressure
 * lets the whole chain go. The feeder (large-message.bench.js, raw) times it end to end;
 * this process reports its own peak RSS, which stays small only if backpressure holds
 * from the forwarding socket back to smtp-server's reading socket.
 *
 *   node backpressure.bench.js --client smtp-wire|nodemailer --upstream N
 *
 * Prints `READY <port>` once its smtp-server listens, and its RESULT line when the
 * feeder's session ends.
 *
 * smtp-wire: `pipeline(stream, conn.createSendStream(envelope))`.
 * Nodemailer: `send(envelope, stream)`.
 */
import { SMTPServer, type SMTPServerSession } from "smtp-server";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import type { AddressInfo } from "node:net";
import { childArgs, now, required, runChild } from "./child.js";
import { NodemailerClient } from "./nodemailer-client.js";
import { SMTPConnection } from "../lib/index.js";
import { connectionOptions, type BenchEnvelope } from "./options.js";

const args = childArgs(["client", "upstream"]);
const client = required(args, "client");
const upstream = Number(required(args, "upstream"));

type Forward = (envelope: BenchEnvelope, stream: Readable) => Promise<void>;

async function openForwarder(): Promise<{ forward: Forward; quit: () => void }> {
  if (client === "smtp-wire") {
    const connection = new SMTPConnection(connectionOptions(upstream));
    await connection.connect();
    return {
      forward: (envelope, stream) => pipeline(stream, connection.createSendStream(envelope)),
      quit: () => void connection.quit().catch(() => undefined),
    };
  }
  if (client === "nodemailer") {
    const connection = await NodemailerClient.open(upstream);
    return {
      forward: async (envelope, stream) => {
        await connection.send(envelope, stream);
      },
      quit: () => connection.quit(),
    };
  }
  throw new Error(`unknown client ${client}`);
}

function envelopeOf(session: SMTPServerSession): BenchEnvelope {
  const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
  return { from, to: session.envelope.rcptTo.map((r) => r.address) };
}

await runChild(async () => {
  const { forward, quit } = await openForwarder();
  let seconds = 0;
  let failure: Error | undefined;
  let done: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    disableReverseLookup: true,
    size: 0,
    onData(stream, session, callback) {
      const start = now();
      forward(envelopeOf(session), stream).then(
        () => {
          seconds = (now() - start) / 1000;
          callback(null, "2.0.0 Ok: relayed");
        },
        (err: Error) => {
          failure = err;
          stream.resume();
          callback(Object.assign(new Error(`4.4.0 relay failed: ${err.message}`), { responseCode: 451 }));
        },
      );
    },
    onClose() {
      done();
    },
  });
  server.on("error", () => {
    /* the feeder going away is reported by the feeder */
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  process.stdout.write(`READY ${(server.server.address() as AddressInfo).port}\n`);
  await finished;
  quit();
  if (failure) throw failure;
  // No 'data' listener here: one would set the stream flowing before the client pipes it.
  return { seconds };
});
