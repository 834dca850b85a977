/**
 * Child-process scenario for the Nodemailer transport with a large attachment: sendMail
 * through nodemailer.createTransport(smtpWire(...)) to 127.0.0.1:argv[2] with an attachment
 * of argv[3] MiB from a stream that makes its bytes as it is read, and reports the peak RSS
 * (sampled while sending), the attachment's size and what sendMail resolved with.
 */
import { Readable } from "node:stream";
import nodemailer from "nodemailer";
import { smtpWire } from "../../lib/nodemailer/index.js";
import { sendResult } from "../helpers/leak-check.js";

const port = Number(process.argv[2]);
const total = Number(process.argv[3]) * 1024 * 1024;
const block = Buffer.alloc(64 * 1024, 0x5a);

let produced = 0;
const attachment = new Readable({
  read() {
    if (produced >= total) return void this.push(null);
    const piece = block.subarray(0, Math.min(block.length, total - produced));
    produced += piece.length;
    this.push(Buffer.from(piece));
  },
});

let peakRss = 0;
const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
const sampler = setInterval(sample, 20);
const transport = nodemailer.createTransport(smtpWire({ host: "127.0.0.1", port, ignoreTLS: true }));
const info = await transport.sendMail({
  from: "big@example.test",
  to: "rcpt@example.test",
  subject: "a large attachment",
  text: "see attached",
  attachments: [{ filename: "large.bin", content: attachment }],
});
sample();
clearInterval(sampler);
await transport.close();
sendResult({ peakRss, produced, accepted: info.accepted, messageSize: (info as { messageSize?: number }).messageSize });
