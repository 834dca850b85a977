/**
 * What the handshake shows and how far it goes: `greeting`, `extensionsBeforeTls` and
 * `tlsInfo` after connect(), and connect({ stopAfter }) ending the handshake after the
 * greeting or the EHLO, with only quit() and close() allowed after it. Against smtp-server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError } from "../lib/index.js";
import { startServer } from "./helpers/server.js";
import { getCerts } from "./helpers/certs.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";

const unhandled = trackUnhandled();

/** The error `promise` rejects with; fails the test when it resolves. */
function failure(promise: Promise<unknown>): Promise<SMTPError> {
  return promise.then(
    (): never => {
      throw new Error("expected a rejection");
    },
    (err: unknown) => (assert.instance(err, SMTPError), err as SMTPError),
  );
}

test("after STARTTLS the keywords seen in plaintext stay readable, apart from extensions", async () => {
  const server = await startServer({ starttls: true, size: 1000 });
  try {
    const conn = new SMTPConnection({ port: server.port, host: "localhost", tls: { ca: getCerts().ca } });
    assert.is(conn.greeting, undefined);
    await conn.connect();
    assert.match(conn.greeting!, /^220 /);
    assert.ok(conn.extensionsBeforeTls?.has("STARTTLS"), "STARTTLS was offered in plaintext");
    assert.equal(conn.extensionsBeforeTls?.get("SIZE"), ["1000"]);
    assert.not.ok(conn.extensions.has("STARTTLS"), "and is not offered again over TLS");
    assert.throws(() => (conn.extensionsBeforeTls as unknown as Map<string, string[]>).set("X", []), /read-only/);
    assert.is(conn.tlsInfo?.authorized, true);
    await conn.quit();
  } finally {
    await server.close();
  }
});

test("without STARTTLS there are no plaintext keywords to keep", async () => {
  const server = await startServer();
  try {
    const conn = new SMTPConnection({ port: server.port, host: "127.0.0.1" });
    await conn.connect();
    assert.is(conn.extensionsBeforeTls, undefined);
    assert.ok(conn.extensions.has("PIPELINING"));
    await conn.quit();
  } finally {
    await server.close();
  }
});

test('connect({ stopAfter: "greeting" }) says no EHLO; QUIT is the only command', async () => {
  const server = await startServer();
  try {
    const conn = new SMTPConnection({ port: server.port, host: "127.0.0.1" });
    await conn.connect({ stopAfter: "greeting" });
    assert.match(conn.greeting!, /^220 /);
    assert.is(conn.extensions.size, 0);
    const refused = await failure(conn.send({ from: "a@example.test", to: "b@example.test" }, "Subject: x\r\n\r\nx\r\n"));
    assert.is(refused.code, "ECONNECTION");
    assert.is(refused.command, "API");
    assert.match(refused.message, /stopped after the greeting/);
    await conn.quit();
    assert.equal(server.commands, ["QUIT"]);
    assert.is(server.messages.length, 0);
  } finally {
    await server.close();
  }
});

test('connect({ stopAfter: "hello" }) says EHLO and applies no STARTTLS policy, requireTLS included', async () => {
  const server = await startServer({ starttls: true });
  try {
    const conn = new SMTPConnection({ port: server.port, host: "localhost", name: "client.example.test", requireTLS: true, tls: { ca: getCerts().ca } });
    await conn.connect({ stopAfter: "hello" });
    assert.ok(conn.extensions.has("STARTTLS"));
    assert.is(conn.secure, false);
    assert.is(conn.tlsInfo, undefined);
    assert.is((await failure(conn.login({ user: "me", pass: "pw" }))).code, "ECONNECTION");
    assert.is((await failure(conn.reset())).code, "ECONNECTION");
    await conn.quit();
    assert.equal(server.commands, ["EHLO client.example.test", "QUIT"]);
  } finally {
    await server.close();
  }
});

test("a stopAfter that is not a step is refused before anything is opened, with the callback too", async () => {
  const conn = new SMTPConnection({ port: 9, host: "127.0.0.1" });
  const refused = await failure(conn.connect({ stopAfter: "tls" as "hello" }));
  assert.is(refused.code, "ECONNECTION");
  assert.is(refused.command, "API");
  assert.match(refused.message, /stopAfter must be "greeting" or "hello"/);
  let calls = 0;
  const err = await new Promise<SMTPError | null | undefined>((resolve) =>
    conn.connect({ stopAfter: "later" as "hello" }, (e) => {
      calls++;
      resolve(e);
    }),
  );
  assert.is(calls, 1);
  assert.match(err!.message, /stopAfter/);
  conn.close();
});

leakCheckTest(test, unhandled);
test.run();
