/**
 * Child-process scenario for the large-message test: streams a generated message of
 * argv[3] MiB through createSendStream to 127.0.0.1:argv[2], and reports the SHA-256 of
 * what it generated and its own peak memory, sampled while sending.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SMTPConnection } from "../../lib/index.js";
import { sendResult } from "../helpers/leak-check.js";

const port = Number(process.argv[2]);
const total = Number(process.argv[3]) * 1024 * 1024;

// A 64 KiB block of CRLF text with dot-leading lines (stuffed on the wire, unstuffed by the
// server), varied per block by a counter so a lost or repeated block changes the hash.
const line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\r\n";
const dotted = ".a line starting with a dot\r\n";
const template = Buffer.from((line.repeat(9) + dotted).repeat(Math.ceil(65536 / (line.length * 9 + dotted.length))).slice(0, 65536 - 16) + "\r\n", "latin1");

function source(hash: ReturnType<typeof createHash>): Readable {
  let produced = 0;
  let block = 0;
  return new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (produced >= total) return void this.push(null);
      const chunk = Buffer.allocUnsafe(template.length + 14);
      chunk.write(`X${String(block++).padStart(11, "0")}\r\n`, 0, "latin1");
      template.copy(chunk, 14);
      const piece = chunk.subarray(0, Math.min(chunk.length, total - produced));
      produced += piece.length;
      hash.update(piece);
      this.push(piece);
    },
  });
}

const hash = createHash("sha256");
let peakRss = 0;
let peakArrayBuffers = 0;
const sample = () => {
  const m = process.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers);
};
const sampler = setInterval(sample, 20);
const conn = new SMTPConnection({ host: "127.0.0.1", port });
await conn.connect();
const out = conn.createSendStream({ from: "big@example.test", to: ["rcpt@example.test"] });
await pipeline(source(hash), out);
sample();
clearInterval(sampler);
await conn.quit();
sendResult({ sha256: hash.digest("hex"), peakRss, peakArrayBuffers, messageSize: out.info!.messageSize });
