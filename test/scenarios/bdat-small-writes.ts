/**
 * Child-process scenario for the BDAT cost test: writes argv[3] MiB of CRLF text in
 * 256-byte writes into a chunking SendStream to 127.0.0.1:argv[2] (waiting for 'drain'
 * when write() says so), and reports the SHA-256 of what it wrote, the send's messageSize
 * and its own peak heap and RSS, sampled while sending.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { SMTPConnection } from "../../lib/index.js";
import { sendResult } from "../helpers/leak-check.js";

const port = Number(process.argv[2]);
const total = Number(process.argv[3]) * 1024 * 1024;
const WRITE = 256;

const hash = createHash("sha256");
let peakHeap = 0;
let peakRss = 0;
const sample = () => {
  const m = process.memoryUsage();
  peakHeap = Math.max(peakHeap, m.heapUsed);
  peakRss = Math.max(peakRss, m.rss);
};
const sampler = setInterval(sample, 20);
const conn = new SMTPConnection({ host: "127.0.0.1", port, chunking: true });
await conn.connect();
const out = conn.createSendStream({ from: "small-writes@example.test", to: ["rcpt@example.test"] });
const finished = new Promise((resolve, reject) => {
  out.once("finish", resolve);
  out.once("error", reject);
});
for (let written = 0; written < total; written += WRITE) {
  // A fresh buffer each time, as a source reading a file or socket would hand over.
  const piece = Buffer.from(`${String(written).padStart(WRITE - 2, "x")}\r\n`, "latin1");
  hash.update(piece);
  if (!out.write(piece)) await once(out, "drain");
}
out.end();
await finished;
sample();
clearInterval(sampler);
await conn.quit();
sendResult({ sha256: hash.digest("hex"), peakHeap, peakRss, messageSize: out.info!.messageSize });
