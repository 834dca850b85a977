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

/** A command's own error for a shared failure: same code and text, its command, the failure as cause. */
function assertOwnError(got: unknown, shared: SMTPError, command: string): void {
  assert.instance(got, SMTPError);
  const err = got as SMTPError;
  assert.is.not(err, shared, "each command gets its own instance");
  assert.is(err.code, shared.code);
  assert.is(err.message, shared.message);
  assert.is(err.command, command);
  assert.is(err.temporary, shared.temporary);
  assert.is(err.cause, shared);
}

test("failAll rejects every waiting command and every later one, without writing, each with its own error", async () => {
  const written: string[] = [];
  const queue = new CommandQueue((line) => written.push(line));
  const pending = queue.expect("CONN");
  const err = new SMTPError("ECONNECTION", "gone", { command: "CONN", temporary: true });
  queue.failAll(err);
  assertOwnError(await pending.catch((e) => e), err, "CONN");
  assertOwnError(await queue.send("QUIT", "QUIT").catch((e) => e), err, "QUIT");
  assert.equal(written, []);
  queue.failAll(new SMTPError("ETIMEDOUT", "later"));
  assertOwnError(await queue.expect("X").catch((e) => e), err, "X");
});

test("a group resolves once, with every reply in order, when its last reply is in", async () => {
  const written: string[] = [];
  const queue = new CommandQueue((line) => written.push(line));
  const group = queue.sendGroup([
    { command: "MAIL FROM", line: "MAIL FROM:<a@x.test>" },
    { command: "RCPT TO", line: "RCPT TO:<b@x.test>" },
    { command: "DATA", line: "DATA" },
  ]);
  const after = queue.send("NOOP", "NOOP");
  assert.equal(written, ["MAIL FROM:<a@x.test>", "RCPT TO:<b@x.test>", "DATA", "NOOP"]);
  let settled = false;
  void group.then(() => (settled = true));
  queue.dispatch(reply(250, "mail"));
  queue.dispatch(reply(550, "rcpt"));
  await Promise.resolve();
  assert.is(settled, false, "not before the last reply");
  queue.dispatch(reply(354, "data"));
  queue.dispatch(reply(250, "noop"));
  assert.equal(
    (await group).map((r) => r.text),
    ["mail", "rcpt", "data"],
  );
  assert.is((await after).text, "noop");
});

test("a group fails with the connection's error; a refused line stops the group and keeps later replies matched", async () => {
  const queue = new CommandQueue((line) => {
    if (/[\r\n]/.test(line)) throw new SMTPError("EPROTOCOL", "CR or LF in a command line");
  });
  const refused = queue.sendGroup([
    { command: "MAIL FROM", line: "MAIL FROM:<a@x.test>" },
    { command: "RCPT TO", line: "RCPT TO:<b@x.test>\r\nRSET" },
    { command: "DATA", line: "DATA" },
  ]);
  assert.is(((await refused.catch((e: SMTPError) => e)) as SMTPError).code, "EPROTOCOL");
  assert.is(queue.size, 1, "only MAIL FROM was written, and waits for its reply");
  const noop = queue.send("NOOP", "NOOP");
  queue.dispatch(reply(250, "mail"));
  queue.dispatch(reply(250, "noop"));
  assert.is((await noop).text, "noop");
  const dying = queue.sendGroup([
    { command: "MAIL FROM", line: "MAIL FROM:<a@x.test>" },
    { command: "DATA", line: "DATA" },
  ]);
  const err = new SMTPError("ECONNECTION", "gone");
  queue.dispatch(reply(250, "mail"));
  queue.failAll(err);
  assertOwnError(await dying.catch((e) => e), err, "DATA");
  assertOwnError(await queue.sendGroup([{ command: "RSET", line: "RSET" }]).catch((e) => e), err, "RSET");
});

test.run();
