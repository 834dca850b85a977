/**
 * SPEC §6: "Bad input (CR, LF or NUL in an address, a DSN value or the EHLO name) is
 * refused with a clear error before anything is written." Checked from outside, through
 * the package entry, for every DSN field and every place the forbidden byte can sit (a
 * value is not to be trimmed into shape: a CR at its end is as bad as one in its middle).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError, type Envelope } from "smtp-wire";
import { startServer, type TestServer } from "../helpers/server.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const FORBIDDEN = { CR: "\r", LF: "\n", CRLF: "\r\n", NUL: "\0" };

/** Each DSN field with a valid value, and the envelope's `dsn` that carries a value in it. */
const DSN_FIELDS: [field: string, valid: string, dsn: (value: string) => Envelope["dsn"]][] = [
  ["ret", "HDRS", (value) => ({ ret: value })],
  ["envid", "id-1", (value) => ({ envid: value })],
  ["notify (a string)", "SUCCESS", (value) => ({ notify: value })],
  ["notify (an array)", "DELAY", (value) => ({ notify: ["FAILURE", value] as never })],
  ["orcpt", "rfc822;b@example.test", (value) => ({ orcpt: value })],
];

/** A connection to a fresh smtp-server for `body`; both are closed whatever happens. */
async function withConnection(body: (conn: SMTPConnection, server: TestServer) => Promise<void>): Promise<void> {
  const server = await startServer();
  const conn = new SMTPConnection({ host: "127.0.0.1", port: server.port });
  try {
    await conn.connect();
    await body(conn, server);
  } finally {
    conn.close();
    await server.close();
  }
}

/** The SMTPError `promise` rejects with; resolving fails the test. */
async function refusal(promise: Promise<unknown>, what: string): Promise<SMTPError> {
  const err = await promise.then(
    () => assert.unreachable(`${what} was sent`),
    (e: unknown) => e,
  );
  assert.instance(err, SMTPError, what);
  return err as SMTPError;
}

test("a CR, LF or NUL anywhere in a DSN value fails with EENVELOPE and nothing is written", () =>
  withConnection(async (conn, server) => {
    const before = server.commands.length;
    for (const [field, valid, dsn] of DSN_FIELDS) {
      for (const [name, bytes] of Object.entries(FORBIDDEN)) {
        for (const value of [bytes + valid, valid.slice(0, 2) + bytes + valid.slice(2), valid + bytes]) {
          const what = `${name} in dsn.${field} ${JSON.stringify(value)}`;
          const err = await refusal(conn.send({ from: "a@example.test", to: "b@example.test", dsn: dsn(value) }, "x"), what);
          assert.is(err.code, "EENVELOPE", what);
          assert.is(err.temporary, false, `${what}: bad input is not temporary`);
          assert.is(err.deliveryState, "not-sent", what);
        }
      }
    }
    assert.equal(server.commands.slice(before), [], "nothing was written for any of them");
    // Each valid value still goes through: only the bytes are refused.
    for (const [field, valid, dsn] of DSN_FIELDS) {
      const info = await conn.send({ from: "a@example.test", to: "b@example.test", dsn: dsn(valid) }, "x");
      assert.equal(info.accepted, ["b@example.test"], field);
    }
  }));

test("a recipient's own DSN notify with a CR or LF at its end is refused before its RCPT TO is written", () =>
  withConnection(async (conn, server) => {
    const tx = await conn.beginTransaction({ from: "a@example.test" });
    const before = server.commands.length;
    for (const notify of ["SUCCESS\r", "FAILURE\n", "DELAY\r\n"]) {
      const err = await refusal(tx.addRecipient("b@example.test", { notify }), `notify ${JSON.stringify(notify)}`);
      assert.is(err.code, "EENVELOPE", JSON.stringify(notify));
    }
    assert.equal(server.commands.slice(before), [], "no RCPT TO was written");
    tx.abort();
  }));

test("an empty recipient among valid ones is refused with EENVELOPE before anything is written, as Nodemailer refuses it", () =>
  withConnection(async (conn, server) => {
    const before = server.commands.length;
    for (const to of [["b@example.test", ""], ["", "b@example.test"], ["b@example.test", "  "], ["b@example.test", { address: "" }]]) {
      const err = await refusal(conn.send({ from: "a@example.test", to: to as string[] }, "x"), JSON.stringify(to));
      assert.is(err.code, "EENVELOPE", JSON.stringify(to));
      assert.is(err.temporary, false);
    }
    assert.equal(server.commands.slice(before), [], "nothing was written");
    assert.equal((await conn.send({ from: "a@example.test", to: ["b@example.test"] }, "x")).accepted, ["b@example.test"]);
  }));

leakCheckTest(test, unhandled);
test.run();
