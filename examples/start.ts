/**
 * `npm start`: a real send, no configuration. Starts an smtp-server on a free loopback
 * port, generates a multi-megabyte message in a temp file, streams it with
 * createReadStream(...).pipe(conn.createSendStream(envelope)), checks the server got the
 * same bytes (SHA-256), and prints the SendInfo and the throughput.
 */
import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { SMTPServer } from "smtp-server";
import type { AddressInfo } from "node:net";
import { SMTPConnection } from "../lib/index.js";

const MESSAGE_MB = Number(process.env.START_MESSAGE_MB ?? 64);

function makeMessage(bytes: number): Buffer {
  const header = "From: sender@example.test\r\nTo: recipient@example.test\r\nSubject: smtp-wire start\r\n\r\n";
  const line = "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstuv\r\n";
  const dotLine = ".A line that starts with a dot and must be dot-stuffed on the wire\r\n";
  const parts = [header];
  let size = header.length;
  for (let i = 0; size < bytes; i++) {
    const next = i % 100 === 99 ? dotLine : line;
    parts.push(next);
    size += next.length;
  }
  return Buffer.from(parts.join(""), "latin1");
}

async function main(): Promise<void> {
  const received = createHash("sha256");
  let receivedBytes = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    size: 1024 * 1024 * 1024,
    onData(stream, _session, callback) {
      stream.on("data", (chunk: Buffer) => {
        received.update(chunk);
        receivedBytes += chunk.length;
      });
      stream.on("end", () => callback(null, "2.0.0 Ok: queued"));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;

  const dir = mkdtempSync(join(tmpdir(), "smtp-wire-start-"));
  const file = join(dir, "message.eml");
  const message = makeMessage(MESSAGE_MB * 1024 * 1024);
  writeFileSync(file, message);
  const sent = createHash("sha256").update(message).digest("hex");

  const conn = new SMTPConnection({ host: "127.0.0.1", port });
  try {
    await conn.connect();
    console.log(`connected to 127.0.0.1:${port}; server offers ${[...conn.extensions.keys()].join(", ")}`);
    const started = process.hrtime.bigint();
    const out = conn.createSendStream({ from: "sender@example.test", to: ["recipient@example.test"], size: message.length });
    await pipeline(createReadStream(file), out);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await conn.quit();
    const got = received.digest("hex");
    console.log("SendInfo:", out.info);
    console.log(`sent ${(message.length / 1048576).toFixed(1)} MiB in ${seconds.toFixed(3)} s: ${(message.length / 1048576 / seconds).toFixed(1)} MiB/s`);
    console.log(`server received ${receivedBytes} bytes, sha256 ${got === sent ? "matches" : "DIFFERS"}`);
    if (got !== sent) process.exitCode = 1;
  } finally {
    conn.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
