import { test } from "uvu";
import * as assert from "uvu/assert";
import { CommandQueue } from "../lib/command-queue.js";
import { SMTPError } from "../lib/errors.js";

const reply = (code: number, text = "ok") => ({ code, lines: [text], text });

test("replies go to commands first in, first out", async () => {
  const written: string[] = [];
  const queue = new CommandQueue((line) => written.push(line));
  const a = queue.send("MAIL FROM", "MAIL FROM:<a@x.test>");
  const b = queue.send("RCPT TO", "RCPT TO:<b@x.test>");
  assert.is(queue.size, 2);
  assert.is(queue.head, "MAIL FROM");
  queue.dispatch(reply(250, "first"));
  queue.dispatch(reply(550, "second"));
  assert.is((await a).text, "first");
  assert.is((await b).code, 550);
  assert.equal(written, ["MAIL FROM:<a@x.test>", "RCPT TO:<b@x.test>"]);
});

test("a reply with nothing pending is EPROTOCOL", () => {
  const queue = new CommandQueue(() => {});
  try {
    queue.dispatch(reply(250));
    assert.unreachable();
  } catch (err) {
    assert.is((err as SMTPError).code, "EPROTOCOL");
  }
});

test("a line the writer refuses rejects and queues nothing, so later replies stay matched", async () => {
  const queue = new CommandQueue((line) => {
    if (/[\r\n]/.test(line)) throw new SMTPError("EPROTOCOL", "CR or LF in a command line");
  });
  const bad = queue.send("AUTH", "AUTH X\r\nRSET");
  const good = queue.send("NOOP", "NOOP");
  assert.is(queue.size, 1);
  queue.dispatch(reply(250, "noop"));
  assert.is((await bad.catch((e: SMTPError) => e)) instanceof SMTPError, true);
  assert.is((await good).text, "noop");
});

test("failAll rejects every waiting command and every later one, without writing", async () => {
  const written: string[] = [];
  const queue = new CommandQueue((line) => written.push(line));
  const pending = queue.expect("CONN");
  const err = new SMTPError("ECONNECTION", "gone");
  queue.failAll(err);
  assert.is(await pending.catch((e) => e), err);
  assert.is(await queue.send("QUIT", "QUIT").catch((e) => e), err);
  assert.equal(written, []);
  queue.failAll(new SMTPError("ETIMEDOUT", "later"));
  assert.is(await queue.expect("X").catch((e) => e), err, "the first failure stays");
});

test.run();
