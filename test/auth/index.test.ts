/**
 * login() as a whole: which method is chosen (CRAM-MD5 > PLAIN > LOGIN, XOAUTH2 for a
 * token, `method` forces one), what an EAUTH carries, when `authenticated` turns true,
 * a second login refused cleanly, both calling styles, and login() where it cannot run.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { startFaultServer, greetAndEhlo, type Step } from "../helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { nodeCallback } from "../helpers/callbacks.js";
import { connectTo, failure, withFaultServer, withServer } from "./support.js";

const unhandled = trackUnhandled();
const users = { me: "s3cret" };
const authLines = (commands: string[]) => commands.filter((c) => c.startsWith("AUTH")).map((c) => c.split(" ").slice(0, 2).join(" "));

const choices: [string[], string][] = [
  [["PLAIN", "LOGIN", "CRAM-MD5"], "CRAM-MD5"],
  [["LOGIN", "PLAIN"], "PLAIN"],
  [["LOGIN"], "LOGIN"],
  [["XOAUTH2", "LOGIN", "PLAIN"], "PLAIN"],
];
for (const [offered, chosen] of choices) {
  test(`chooses ${chosen} when the server offers ${offered.join(" ")}`, async () => {
    await withServer({ users, authMethods: offered }, async (conn, server) => {
      await conn.login({ user: "me", pass: "s3cret" });
      assert.equal(authLines(server.commands), [`AUTH ${chosen}`]);
    });
  });
}

test("method forces one, in any case, even when a stronger one is offered", async () => {
  await withServer({ users, authMethods: ["PLAIN", "LOGIN", "CRAM-MD5"] }, async (conn, server) => {
    await conn.login({ user: "me", pass: "s3cret", method: "login" });
    assert.equal(authLines(server.commands), ["AUTH LOGIN"]);
  });
});

test("takes Nodemailer's { credentials: { user, pass } } shape too", async () => {
  await withServer({ users }, async (conn) => {
    await conn.login({ credentials: { user: "me", pass: "s3cret" } });
    assert.is(conn.authenticated, true);
  });
});

test("an unknown method fails with EAUTH before anything is sent", async () => {
  await withServer({ users }, async (conn, server) => {
    const err = await failure(conn.login({ user: "me", pass: "s3cret", method: "NTLM" }));
    assert.is(err.code, "EAUTH");
    assert.match(err.message, /Unknown authentication method "NTLM"/);
    assert.equal(authLines(server.commands), []);
  });
});

test("a missing user or password fails with EAUTH before anything is sent", async () => {
  await withServer({ users }, async (conn, server) => {
    for (const auth of [{ user: "me" }, { pass: "s3cret" }, { user: "me", pass: "", method: "LOGIN" }, {}]) {
      const err = await failure(conn.login(auth));
      assert.is(err.code, "EAUTH", JSON.stringify(auth));
      assert.match(err.message, /Missing credentials/);
    }
    assert.equal(authLines(server.commands), []);
  });
});

test("EAUTH carries the reply, its code and enhanced code, and the command; a 454 is temporary", async () => {
  const fault = await startFaultServer([
    ...greetAndEhlo(["AUTH PLAIN"]),
    { expect: /^AUTH PLAIN / },
    { send: "454 4.7.0 Temporary authentication failure\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  const conn = await connectTo(fault.port);
  const err = await failure(conn.login({ user: "me", pass: "s3cret" }));
  assert.is(err.code, "EAUTH");
  assert.is(err.response, "454 4.7.0 Temporary authentication failure");
  assert.is(err.responseCode, 454);
  assert.is(err.enhancedCode, "4.7.0");
  assert.is(err.command, "AUTH PLAIN", "the command as Nodemailer names it");
  assert.is(err.temporary, true);
  assert.match(err.message, /454 4\.7\.0 Temporary authentication failure/);
  await conn.quit();
  await fault.close();
});

test("a 421 during AUTH is ECONNECTION with responseCode 421 and closes the connection", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["AUTH PLAIN"]), { expect: /^AUTH PLAIN / }, { send: "421 4.3.2 Going down\r\n" }, { stall: true }]);
  const conn = await connectTo(fault.port);
  const err = await failure(conn.login({ user: "me", pass: "s3cret" }));
  assert.is(err.code, "ECONNECTION");
  assert.is(err.responseCode, 421);
  const next = await failure(conn.login({ user: "me", pass: "s3cret" }));
  assert.is(next.code, "ECONNECTION");
  await fault.close();
});

test("authenticated turns true only on 235: not while waiting, not after a refusal", async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const script: Step[] = [
    ...greetAndEhlo(["AUTH PLAIN"]),
    { expect: /^AUTH PLAIN / },
    { send: "535 5.7.8 Bad credentials\r\n" },
    { expect: /^AUTH PLAIN / },
    { call: () => held },
    { send: "235 2.7.0 Accepted\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ];
  await withFaultServer(script, async (conn, fault) => {
    await failure(conn.login({ user: "me", pass: "wrong" }));
    assert.is(conn.authenticated, false);
    const pending = conn.login({ user: "me", pass: "s3cret" });
    const seen = await fault.connection();
    while (seen.commands.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.is(conn.authenticated, false, "the AUTH line is out, the 235 is not in");
    release();
    await pending;
    assert.is(conn.authenticated, true);
  });
});

test("a second login on the same connection is refused with EAUTH, nothing sent, and the session goes on", async () => {
  await withServer({ users }, async (conn, server) => {
    await conn.login({ user: "me", pass: "s3cret" });
    const err = await failure(conn.login({ user: "me", pass: "s3cret" }));
    assert.is(err.code, "EAUTH");
    assert.match(err.message, /Already authenticated/);
    assert.is(err.temporary, false);
    assert.is(authLines(server.commands).length, 1);
    assert.is(conn.authenticated, true);
    const info = await conn.send({ from: "me@example.test", to: "you@example.test" }, "Subject: after\r\n\r\nx\r\n");
    assert.equal(info.accepted, ["you@example.test"]);
  });
});

test("two logins called without waiting: the first wins, the second is refused", async () => {
  await withServer({ users }, async (conn, server) => {
    const [first, second] = await Promise.allSettled([conn.login({ user: "me", pass: "s3cret" }), conn.login({ user: "me", pass: "s3cret" })]);
    assert.is(first.status, "fulfilled");
    assert.is(second.status, "rejected");
    assert.is((second as PromiseRejectedResult).reason.code, "EAUTH");
    assert.is(authLines(server.commands).length, 1);
  });
});

test("the login callback is called exactly once, with null on success and the EAUTH on failure", async () => {
  await withServer({ users }, async (conn) => {
    const bad = nodeCallback<void>("failed login");
    conn.login({ user: "me", pass: "wrong" }, bad);
    const err = await bad.result.catch((e) => e);
    assert.is(err.code, "EAUTH");
    const good = nodeCallback<void>("login");
    conn.login({ user: "me", pass: "s3cret" }, good);
    await good.result;
    await new Promise((resolve) => setTimeout(resolve, 20));
    bad.assertCalledOnce();
    good.assertCalledOnce();
    assert.is(good.calls[0]![0], null);
  });
});

test("login() before connect() or after close() fails with ECONNECTION", async () => {
  const fresh = new SMTPConnection({ host: "127.0.0.1", port: 1 });
  assert.is((await failure(fresh.login({ user: "me", pass: "s3cret" }))).code, "ECONNECTION");
  const server = await startServer({ users });
  const conn = await connectTo(server.port);
  conn.close();
  assert.is((await failure(conn.login({ user: "me", pass: "s3cret" }))).code, "ECONNECTION");
  await server.close();
});

test("login() without a credentials object fails with EAUTH", async () => {
  await withServer({ users }, async (conn) => {
    const err = await failure(conn.login(undefined as unknown as { user: string; pass: string }));
    assert.is(err.code, "EAUTH");
  });
});

leakCheckTest(test, unhandled);

test.run();
