/**
 * The second target: a real smtp-server that reads each message to the end and throws
 * it away. smtp-server undoes dot-stuffing, so the bytes it counts are the message as
 * the client was given it (CRLF normalised), not the stuffed bytes on the wire.
 *
 * Same IPC protocol as the fast sink (see sink.ts): ready, reset, stats.
 */
import { SMTPServer } from "smtp-server";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { SinkStats } from "./sink.js";

let stats: SinkStats = emptyStats();
let hashing = false;

function emptyStats(): SinkStats {
  return { connections: 0, messages: 0, bytes: 0, sizes: [], hashes: [], flights: 0, setupFlights: 0, commands: 0 };
}

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  logger: false,
  disableReverseLookup: true,
  banner: "bench",
  size: 0,
  onConnect(_session, callback) {
    stats.connections++;
    callback();
  },
  onData(stream, _session, callback) {
    const hash = hashing ? createHash("sha256") : undefined;
    let bytes = 0;
    stream.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      hash?.update(chunk);
    });
    stream.on("end", () => {
      stats.messages++;
      stats.bytes += bytes;
      if (stats.sizes.length < 64) stats.sizes.push(bytes);
      if (hash && stats.hashes.length < 64) stats.hashes.push(hash.digest("hex"));
      callback(null, "2.0.0 Ok: queued");
    });
  },
});
server.on("error", () => {
  /* a client that goes away mid-message is not a benchmark failure of the server */
});

process.on("message", (message: { type: string; hash?: boolean }) => {
  if (message.type === "reset") {
    stats = emptyStats();
    hashing = Boolean(message.hash);
    process.send?.({ type: "reset" });
  } else if (message.type === "stats") {
    process.send?.({ type: "stats", stats });
  }
});
process.on("disconnect", () => process.exit(0));

server.listen(0, "127.0.0.1", () => {
  const port = (server.server.address() as AddressInfo).port;
  if (process.send) process.send({ type: "ready", port });
  else process.stdout.write(`smtp-server sink listening on 127.0.0.1:${port}\n`);
});
