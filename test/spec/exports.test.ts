/**
 * SPEC §1, from the package entry as a user imports it: the class is the named and the
 * default export, and the stream stages (the BDAT encoder too, now that chunking exists)
 * and SMTPError are exported, each a working class.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRequire } from "node:module";
import SMTPConnectionDefault, { BdatEncoder, DataEncoder, LineSplitter, ReplyDecoder, SMTPConnection, SMTPError } from "smtp-wire";

test("the class is the default and the named export, and require() gives the same class", () => {
  assert.is(SMTPConnectionDefault, SMTPConnection);
  const required = createRequire(import.meta.url)("smtp-wire") as { SMTPConnection: unknown; default: unknown };
  assert.is(required.SMTPConnection, SMTPConnection, "one class for both module systems");
});

test("every stage is exported and works on its own", async () => {
  for (const Stage of [LineSplitter, ReplyDecoder, DataEncoder, BdatEncoder]) assert.type(Stage, "function");
  const encoder = new BdatEncoder({ chunkSize: 4 });
  const out: Buffer[] = [];
  encoder.on("data", (chunk: Buffer) => out.push(chunk));
  const ended = new Promise((resolve) => encoder.on("end", resolve));
  encoder.end(Buffer.from("hello"));
  await ended;
  const wire = Buffer.concat(out).toString();
  assert.match(wire, /^BDAT 4\r\nhell/, "chunks of the asked size, each with its BDAT line");
  assert.match(wire, /BDAT 1 LAST\r\no$/, "the last one marked LAST");
});

test("SMTPError is an Error with its code", () => {
  const err = new SMTPError("EAUTH", "refused");
  assert.instance(err, Error);
  assert.is(err.code, "EAUTH");
});

test.run();
