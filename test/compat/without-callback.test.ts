/**
 * Issue 11, item 2: methods called without a callback, their result ignored, with an
 * `error` listener (Nodemailer's style: `conn.connect(); conn.on("error", ...)`). The
 * rule (lib/callback.ts): the returned Promise is marked handled when the same failure
 * reached an `error` listener, so the process is not crashed by an unhandled rejection;
 * whoever awaits the Promise still gets the rejection; a failure that is not emitted
 * (a refused message on a live connection) stays the Promise's own.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import NodemailerConnection from "nodemailer/lib/smtp-connection";
import { SMTPConnection, type SMTPError } from "../../lib/index.js";
import { ehloReply, startFaultServer } from "../helpers/fault-server.js";
import { closedPort, startServer } from "../helpers/server.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();

/** Lets every queued tick, microtask and unhandled-rejection check run. */
const settleTurns = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

interface Listened {
  errors: (Error & { code?: string })[];
  ended: Promise<void>;
}

function listen(conn: NodeJS.EventEmitter): Listened {
  const errors: Listened["errors"] = [];
  conn.on("error", (err: Error) => errors.push(err));
  return { errors, ended: new Promise((resolve) => conn.once("end", () => resolve())) };
}

test("connect() without a callback to a refused port, error listener attached after the call: both report ESOCKET to it, no unhandled rejection", async () => {
  const port = await closedPort();
  const before = unhandled.events.length;
  const theirs = new NodemailerConnection({ host: "127.0.0.1", port, logger: false });
  (theirs.connect as () => void)();
  const nm = listen(theirs);
  const ours = new SMTPConnection({ host: "127.0.0.1", port });
  void ours.connect();
  const our = listen(ours);
  await Promise.all([nm.ended, our.ended]);
  await settleTurns();
  assert.equal(nm.errors.map((e) => e.code), ["ESOCKET"]);
  assert.equal(our.errors.map((e) => e.code), ["ESOCKET"]);
  assert.is(unhandled.events.length, before, "no unhandled rejection");
});

test("connect() without a callback, greeting refused: the listener gets the error in both, and an awaiting caller still gets the rejection", async () => {
  const fault = await startFaultServer([{ send: "554 5.3.2 No service\r\n" }, { close: true }]);
  try {
    const before = unhandled.events.length;
    const theirs = new NodemailerConnection({ host: "127.0.0.1", port: fault.port, logger: false });
    const nm = listen(theirs);
    (theirs.connect as () => void)();
    const ours = new SMTPConnection({ host: "127.0.0.1", port: fault.port });
    const our = listen(ours);
    const pending = ours.connect();
    await Promise.all([nm.ended, our.ended]);
    await settleTurns();
    assert.is(nm.errors.length, 1);
    assert.is(our.errors.length, 1);
    assert.is(our.errors[0]!.code, "ECONNECTION");
    assert.is(unhandled.events.length, before, "no unhandled rejection");
    const err = await pending.then(
      () => undefined,
      (e: SMTPError) => e,
    );
    assert.is(err, our.errors[0], "the same error, to the listener and to whoever awaits");
  } finally {
    await fault.close();
  }
});

test("send() and reset() without a callback on a connection that dies: the listener gets the failure once, nothing unhandled", async () => {
  const fault = await startFaultServer([{ send: "220 x ESMTP\r\n" }, { expect: /^EHLO / }, { send: ehloReply() }, { expect: /^MAIL FROM:/ }, { close: true }]);
  try {
    const before = unhandled.events.length;
    const conn = new SMTPConnection({ host: "127.0.0.1", port: fault.port });
    const listened = listen(conn);
    await conn.connect();
    void conn.send({ from: "a@example.test", to: ["b@example.test"] }, "Subject: x\r\n\r\nx\r\n");
    void conn.reset();
    void conn.login({ user: "u", pass: "p" });
    await listened.ended;
    await settleTurns();
    assert.equal(listened.errors.map((e) => e.code), ["ECONNECTION"]);
    assert.is(unhandled.events.length, before, "no unhandled rejection");
    // A call after the death is told through its Promise; its cause is the failure the
    // listener received, so ignoring it is no unhandled rejection either.
    void conn.send({ from: "a@example.test", to: ["b@example.test"] }, "x");
    await settleTurns();
    assert.is(unhandled.events.length, before);
  } finally {
    await fault.close();
  }
});

test("a refused message is not emitted as error: it belongs to the Promise, which rejects with it", async () => {
  const server = await startServer({ refuseRecipients: ["nobody@example.test"] });
  try {
    const conn = new SMTPConnection({ host: "127.0.0.1", port: server.port, ignoreTLS: true });
    const listened = listen(conn);
    await conn.connect();
    const err = await conn.send({ from: "a@example.test", to: ["nobody@example.test"] }, "x").then(
      () => undefined,
      (e: SMTPError) => e,
    );
    assert.is(err?.code, "EENVELOPE");
    assert.equal(listened.errors, [], "no error event for a refusal the connection survives");
    await conn.quit();
    await listened.ended;
  } finally {
    await server.close();
  }
});

test("leaves no socket, timer, rejection or double callback behind", () => assertNoLeaks());
test.run();
