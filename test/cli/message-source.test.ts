/**
 * The message source of `smtp-wire send`: whatever the chunks standard input arrives in,
 * the envelope read from the header is the same and the bytes sent are the message's
 * (without Bcc when the recipients came from the header), every byte counted once.
 * Seeded random chunk boundaries (a failure prints the seed).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable } from "node:stream";
import { prepareMessage } from "../../lib/cli/message-source.js";
import { UsageError } from "../../lib/cli/arguments.js";
import { randomChunkLimit, randomFor, randomMessage, seedNote, splitRandomly } from "../helpers/random.js";

const header = "From: \"Sender, The\" <me@example.com>\r\nTo: a@example.org,\r\n b@example.org\r\nBcc: hidden@example.org\r\nSubject: chunks\r\n\r\n";

test(`any chunking of the input gives the same envelope and the same bytes${seedNote()}`, async () => {
  const random = randomFor("message-source");
  for (let round = 0; round < 200; round++) {
    const body = randomMessage(random, 4096);
    const input = Buffer.concat([Buffer.from(header, "latin1"), body]);
    const stdin = Readable.from(splitRandomly(random, input, randomChunkLimit(random)), { objectMode: false });
    const message = await prepareMessage("-", { to: [] }, stdin, () => {});
    assert.equal(message.envelope.from, "me@example.com");
    assert.equal(message.envelope.to, ["a@example.org", "b@example.org", "hidden@example.org"]);
    message.source.destroy();
  }
});

test(`the bytes read equal the message without its Bcc field, and all are counted${seedNote()}`, async () => {
  const random = randomFor("message-source-bytes");
  for (let round = 0; round < 200; round++) {
    const body = randomMessage(random, 4096);
    const input = Buffer.concat([Buffer.from(header, "latin1"), body]);
    let counted = 0;
    const stdin = Readable.from(splitRandomly(random, input, randomChunkLimit(random)), { objectMode: false });
    const message = await prepareMessage("-", { to: [] }, stdin, (n) => (counted += n));
    const chunks: Buffer[] = [];
    for await (const chunk of message.source) chunks.push(chunk as Buffer);
    const expected = Buffer.concat([Buffer.from(header.replace("Bcc: hidden@example.org\r\n", ""), "latin1"), body]);
    assert.ok(Buffer.concat(chunks).equals(expected), `round ${round}`);
    assert.is(counted, expected.length);
  }
});

test("with --from and --to the header is not read and the message goes untouched", async () => {
  const input = Buffer.from(header + "body\r\n", "latin1");
  const message = await prepareMessage("-", { from: "x@example.com", to: ["y@example.org"] }, Readable.from([input]), () => {});
  assert.equal(message.envelope, { from: "x@example.com", to: ["y@example.org"] });
  const chunks: Buffer[] = [];
  for await (const chunk of message.source) chunks.push(chunk as Buffer);
  assert.ok(Buffer.concat(chunks).equals(input));
});

test("a message with only a header (no empty line) is read whole for its envelope", async () => {
  const message = await prepareMessage("-", { to: [] }, Readable.from([Buffer.from("From: a@x.example\nTo: b@x.example")]), () => {});
  assert.equal(message.envelope, { from: "a@x.example", to: ["b@x.example"] });
});

test("no sender found is a UsageError naming the file; the input is released", async () => {
  const stdin = Readable.from([Buffer.from("To: b@x.example\r\n\r\nbody")]);
  const err = await prepareMessage("-", { to: [] }, stdin, () => {}).catch((e: Error) => e);
  assert.instance(err, UsageError);
  assert.match((err as Error).message, /^-: no --from/);
  assert.ok(stdin.destroyed, "the source was closed");
});

test.run();
