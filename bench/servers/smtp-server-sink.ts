/**
 * The second target: a real smtp-server that reads each message to the end and throws
 * it away. smtp-server undoes dot-stuffing, so the bytes it counts are the message as
 * the client was given it (CRLF normalised), not the stuffed bytes on the wire.
 *
 * Same IPC protocol as the fast sink (see sink.ts): ready, reset, stats (sink-control.ts).
 */
import { SMTPServer } from "smtp-server";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { answerRunner } from "./sink-control.js";

const state = answerRunner();

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  logger: false,
  disableReverseLookup: true,
  banner: "bench",
  size: 0,
  onConnect(_session, callback) {
    state.stats.connections++;
    callback();
  },
  onData(stream, _session, callback) {
    const hash = state.hashing ? createHash("sha256") : undefined;
    let bytes = 0;
    stream.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      hash?.update(chunk);
    });
    stream.on("end", () => {
      state.stats.messages++;
      state.stats.bytes += bytes;
      if (state.stats.sizes.length < 64) state.stats.sizes.push(bytes);
      if (hash && state.stats.hashes.length < 64) state.stats.hashes.push(hash.digest("hex"));
      callback(null, "2.0.0 Ok: queued");
    });
  },
});
server.on("error", () => {
  /* a client that goes away mid-message is not a benchmark failure of the server */
});


server.listen(0, "127.0.0.1", () => {
  const port = (server.server.address() as AddressInfo).port;
  if (process.send) process.send({ type: "ready", port });
  else process.stdout.write(`smtp-server sink listening on 127.0.0.1:${port}\n`);
});
