/**
 * SPEC §3: after close() or a fatal error every call fails with ECONNECTION, never hangs,
 * each callback exactly once; SPEC §8: after a fatal error the next call's `cause` is the
 * error that closed the connection. Checked through every public method, with a callback
 * and without, after close() and after the server dropped the connection.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError } from "smtp-wire";
import { greetAndEhlo, startFaultServer } from "../helpers/fault-server.js";
import { nodeCallback, settlesWithin } from "../helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const HANG_MS = 5000;
const ENVELOPE = { from: "a@example.test", to: ["b@example.test"] };

/** Every call a caller may make, as a Promise of its outcome. */
const CALLS: [string, (conn: SMTPConnection) => Promise<unknown>][] = [
  ["login()", (conn) => conn.login({ user: "u", pass: "p" })],
  ["send()", (conn) => conn.send(ENVELOPE, "x")],
  ["reset()", (conn) => conn.reset()],
  ["xclient()", (conn) => conn.xclient({ addr: "192.0.2.1" })],
  ["xforward()", (conn) => conn.xforward({ addr: "192.0.2.1" })],
  ["beginTransaction()", (conn) => conn.beginTransaction({ from: "a@example.test" })],
  [
    "createSendStream()",
    (conn) =>
      new Promise((resolve, reject) => {
        const stream = conn.createSendStream(ENVELOPE);
        stream.on("error", reject);
        stream.on("finish", resolve);
        stream.end("x");
      }),
  ],
  ["login(cb)", (conn) => viaCallback((cb) => conn.login({ user: "u", pass: "p" }, cb))],
  ["send(cb)", (conn) => viaCallback((cb) => conn.send(ENVELOPE, "x", cb))],
  ["reset(cb)", (conn) => viaCallback((cb) => conn.reset(cb))],
  ["xclient(cb)", (conn) => viaCallback((cb) => conn.xclient({ addr: "192.0.2.1" }, cb))],
];

/** Runs `start` with a counted callback; the result settles as the callback's first call does. */
async function viaCallback(start: (cb: (err?: Error | null) => void) => void): Promise<unknown> {
  const cb = nodeCallback("callback");
  start(cb);
  try {
    return await cb.result;
  } finally {
    await new Promise((resolve) => setTimeout(resolve, 10));
    cb.assertCalledOnce();
  }
}

async function assertEveryCallFails(conn: SMTPConnection, closedWith: SMTPError | undefined, how: string): Promise<void> {
  for (const [what, call] of CALLS) {
    const err = await settlesWithin(
      call(conn).then(
        () => assert.unreachable(`${what} after ${how} succeeded`),
        (e: unknown) => e,
      ),
      HANG_MS,
      `${what} after ${how}`,
    );
    assert.instance(err, SMTPError, `${what} after ${how}: ${String(err)}`);
    const e = err as SMTPError;
    assert.is(e.code, "ECONNECTION", `${what} after ${how}: ${e.message}`);
    assert.is(e.command, "API", `${what} after ${how}: nothing was written`);
    assert.is(e.temporary, true, `${what} after ${how}: nothing was tried, so a retry elsewhere may succeed`);
    if (closedWith) assert.is(e.cause, closedWith, `${what} after ${how}: the cause is the error that closed the connection`);
  }
  // connect() cannot bring it back, and quit() has nothing left to do.
  assert.is((await conn.connect().then(() => undefined, (e: SMTPError) => e))?.code, "ECONNECTION", `connect() after ${how}`);
  await settlesWithin(conn.quit(), HANG_MS, `quit() after ${how}`);
}

test("after close(), every call fails at once with ECONNECTION, through its callback or Promise", async () => {
  const server = await startFaultServer([...greetAndEhlo(), { stall: true }]);
  const conn = new SMTPConnection({ host: server.host, port: server.port });
  try {
    await conn.connect();
    conn.close();
    assert.is(await conn.closed, undefined, "a close on purpose is a clean close");
    await assertEveryCallFails(conn, undefined, "close()");
  } finally {
    conn.close();
    await server.close();
  }
});

test("after the server dropped an idle connection, every call fails with ECONNECTION whose cause is that error", async () => {
  const server = await startFaultServer([...greetAndEhlo(), { delayMs: 20 }, { close: true }]);
  const conn = new SMTPConnection({ host: server.host, port: server.port });
  try {
    await conn.connect();
    const closedWith = await settlesWithin(conn.closed, HANG_MS, "conn.closed");
    assert.instance(closedWith, SMTPError);
    await assertEveryCallFails(conn, closedWith, "the server's close");
  } finally {
    conn.close();
    await server.close();
  }
});

leakCheckTest(test, unhandled);
test.run();
