/**
 * What the DataEncoder does to a message, as a real server sees it. Postfix here refuses
 * a bare LF ("550 5.5.2 ... bare <LF> received") and would store a bare CR as a space, so
 * a byte-exact delivery proves the client turned both into CRLF, dot-stuffed correctly and
 * sent no end-of-data look-alike (SMTP smuggling). Messages go in as string, Buffer and
 * Readable.
 */
import { Readable } from "node:stream";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertDelivered, finish, interopEnv, makeMessage, open, wireSize, within } from "./support.js";

const env = interopEnv("data-encoding");

const BODIES: [string, string][] = [
  ["dot lines", ".\r\n..\r\n...\r\n.x\r\n. \r\nend\r\n"],
  ["bare LF line ends", "one\ntwo\n.three\n\nfive\n"],
  ["bare CR line ends", "one\rtwo\r.three\rfour\r\n"],
  ["end-of-data look-alikes (smuggling)", "a\n.\r\nMAIL FROM:<evil@example.test>\r\nb\r.\r\nc\r\n.\nd\r\n"],
  ["no final line end", "the last line has no line end"],
  ["an empty body", ""],
  ["a 3000-byte line", `${"y".repeat(3000)}\r\nshort\r\n`],
];

if (env) {
  for (const [what, body] of BODIES) {
    for (const kind of ["string", "Buffer", "Readable"] as const) {
      test(`delivers ${what} byte for byte (message given as ${kind})`, async () => {
        const conn = await open(env, { port: env.smtpPort, ignoreTLS: true });
        try {
          const m = makeMessage({ subject: `${what} (${kind})`, body });
          const message =
            kind === "string" ? m.raw.toString("utf8") : kind === "Buffer" ? m.raw : Readable.from([m.raw.subarray(0, 7), m.raw.subarray(7)]);
          const info = await within(conn.send({ from: "sender@client.example", to: env.address("bob") }, message), 30_000, "send");
          assert.equal(info.accepted, [env.address("bob")]);
          assert.is(info.messageSize, wireSize(m.stored));
          await assertDelivered(env, "bob", m);
        } finally {
          await finish(conn);
        }
      });
    }
  }
}

test.run();
