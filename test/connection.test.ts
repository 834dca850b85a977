/**
 * SMTPConnection against a real smtp-server on loopback: every method, both calling
 * styles, properties, events, and the operation queue.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable } from "node:stream";
import { SMTPConnection, SMTPError } from "../lib/index.js";
import { startServer } from "./helpers/server.js";
import { startFaultServer, greetAndEhlo } from "./helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";
import { connected, faultSession } from "./helpers/client.js";

const unhandled = trackUnhandled();
const env = (to: string | string[] = "rcpt@example.test") => ({ from: "sender@example.test", to });

test("the seed example works unchanged: connect, send with callbacks, quit", async () => {
  const server = await startServer();
  await new Promise<void>((resolve, reject) => {
    const connection = new SMTPConnection({ port: server.port, host: "127.0.0.1" });
    connection.on("error", reject);
    connection.on("end", () => resolve());
    connection.connect((err) => {
      if (err) return reject(err);
      connection.send({ from: "me@example.com", to: ["you@example.org"] }, "Subject: hi\r\n\r\nHello world!\r\n", (err, info) => {
        if (err) return reject(err);
        try {
          assert.equal(info!.accepted, ["you@example.org"]);
          assert.equal(info!.rejected, []);
          assert.match(info!.response, /^250 /);
        } catch (e) {
          return reject(e);
        }
        connection.quit();
      });
    });
  });
  assert.is(server.messages.length, 1);
  assert.is(server.messages[0]!.data.toString(), "Subject: hi\r\n\r\nHello world!\r\n");
  assert.equal(server.commands.slice(-1), ["QUIT"]);
  await server.close();
});

test("connect() resolves after EHLO and exposes the server's extensions", async () => {
  const server = await startServer({ size: 1234567 });
  const conn = new SMTPConnection({ port: server.port, host: "127.0.0.1", name: "client.example.test" });
  let connected = 0;
  conn.on("connect", () => connected++);
  await conn.connect();
  assert.is(connected, 1);
  assert.ok(conn.extensions.has("PIPELINING"));
  assert.equal(conn.extensions.get("SIZE"), ["1234567"]);
  assert.equal(conn.extensions.SIZE, ["1234567"], "keywords read as properties too");
  assert.throws(() => (conn.extensions as unknown as Map<string, string[]>).set("X", []), /read-only/);
  assert.is(conn.allowsAuth, true);
  assert.is(conn.secure, false);
  assert.is(conn.authenticated, false);
  assert.type(conn.id, "string");
  assert.match(String(conn.lastServerResponse), /^250/);
  assert.match(server.commands[0]!, /^EHLO client\.example\.test$/);
  await conn.quit();
  await server.close();
});

test("options default as in Nodemailer: port 587, 465 implies secure, a valid EHLO name", () => {
  const a = new SMTPConnection();
  assert.is(a.port, 587);
  assert.is(a.host, "localhost");
  assert.is(a.secure, false);
  assert.match(a.name, /^(\[127\.0\.0\.1\]|[a-z0-9.-]+\.[a-z0-9-]+)$/);
  const b = new SMTPConnection({ port: 465 });
  assert.is(b.secure, true);
  const c = new SMTPConnection({ secure: true });
  assert.is(c.port, 465);
  const d = new SMTPConnection({ port: 465, secure: false });
  assert.is(d.secure, false);
});

test("send() takes a string, a Buffer and a Readable, and the server gets the exact bytes", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  await conn.send(env(), "A: 1\r\n\r\nstring body\r\n");
  await conn.send(env(), Buffer.from("A: 2\r\n\r\n.dotted\r\nbuffer body\r\n"));
  await conn.send(env(), Readable.from([Buffer.from("A: 3\r\n\r\nstr"), Buffer.from("eam body\n.\n..x\r\n")]));
  await conn.quit();
  assert.equal(
    server.messages.map((m) => m.data.toString()),
    ["A: 1\r\n\r\nstring body\r\n", "A: 2\r\n\r\n.dotted\r\nbuffer body\r\n", "A: 3\r\n\r\nstream body\r\n.\r\n..x\r\n"],
  );
  await server.close();
});

test("SendInfo carries every field, messageSize counting dot-stuffed bytes and the terminator", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const body = "Subject: x\r\n\r\n.line\r\nend";
  const info = await conn.send(env(["a@example.test", "b@example.test"]), body);
  assert.equal(info.accepted, ["a@example.test", "b@example.test"]);
  assert.equal(info.rejected, []);
  assert.is(info.rejectedErrors, undefined, "rejectedErrors only when a recipient was refused");
  assert.match(info.response, /^250 .*queued/);
  assert.type(info.envelopeTime, "number");
  assert.type(info.messageTime, "number");
  assert.ok(info.envelopeTime >= 0 && info.messageTime >= 0);
  // "..line" (stuffed) + "\r\nend" + "\r\n.\r\n"
  assert.is(info.messageSize, Buffer.byteLength("Subject: x\r\n\r\n..line\r\nend\r\n.\r\n"));
  assert.ok(info.ehlo.includes("PIPELINING"));
  await conn.quit();
  await server.close();
});

test("a refused recipient lands in rejected with its SMTPError, and the send goes on", async () => {
  const server = await startServer({ refuseRecipients: ["nobody@example.test"] });
  const conn = await connected(server.port);
  const info = await conn.send(env(["ok@example.test", "nobody@example.test"]), "x");
  assert.equal(info.accepted, ["ok@example.test"]);
  assert.equal(info.rejected, ["nobody@example.test"]);
  const err = info.rejectedErrors![0]!;
  assert.instance(err, SMTPError);
  assert.is(err.code, "EENVELOPE");
  assert.is(err.responseCode, 550);
  assert.is(err.enhancedCode, "5.1.1");
  assert.is(err.command, "RCPT TO");
  assert.is(err.recipient, "nobody@example.test");
  assert.is(err.temporary, false);
  assert.equal(server.messages[0]!.to, ["ok@example.test"]);
  await conn.quit();
  await server.close();
});

test("fails with EENVELOPE when every recipient is refused, then RSET precedes the next send", async () => {
  const server = await startServer({ refuseRecipients: ["x@example.test", "y@example.test"] });
  const conn = await connected(server.port);
  const err = await conn.send(env(["x@example.test", "y@example.test"]), "x").then(() => undefined, (e: SMTPError) => e);
  assert.instance(err, SMTPError);
  assert.is(err!.code, "EENVELOPE");
  assert.is(err!.command, "RCPT TO");
  assert.is(err!.responseCode, 550);
  assert.equal(err!.rejected, ["x@example.test", "y@example.test"]);
  assert.is(err!.rejectedErrors!.length, 2);
  const info = await conn.send(env("ok@example.test"), "next");
  assert.equal(info.accepted, ["ok@example.test"]);
  const mails = server.commands.filter((c) => /^(MAIL|RSET)/.test(c));
  assert.equal(mails.map((c) => c.slice(0, 4)), ["MAIL", "RSET", "MAIL"]);
  await conn.quit();
  await server.close();
});

test("fails with EENVELOPE naming MAIL FROM when the sender is refused", async () => {
  const server = await startServer({ refuseSenders: ["bad@example.test"] });
  const conn = await connected(server.port);
  const err = await conn.send({ from: "bad@example.test", to: "a@example.test" }, "x").catch((e: SMTPError) => e);
  assert.is((err as SMTPError).code, "EENVELOPE");
  assert.is((err as SMTPError).command, "MAIL FROM");
  assert.match(String((err as SMTPError).enhancedCode), /^5\.\d\.\d$/);
  assert.match((err as SMTPError).message, /MAIL FROM:<bad@example\.test> rejected: 550/);
  assert.is(server.messages.length, 0);
  await conn.quit();
  await server.close();
});

test("five sends started at once reach the server in call order, each with its own envelope", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const sends = [1, 2, 3, 4, 5].map((n) => conn.send({ from: `s${n}@example.test`, to: [`r${n}@example.test`, `q${n}@example.test`] }, `Message-Id: ${n}\r\n\r\nbody ${n}\r\n`));
  const infos = await Promise.all(sends);
  assert.equal(infos.map((i) => i.accepted[0]), ["r1@example.test", "r2@example.test", "r3@example.test", "r4@example.test", "r5@example.test"]);
  assert.equal(
    server.messages.map((m) => [m.from, m.to.join(","), m.data.toString()]),
    [1, 2, 3, 4, 5].map((n) => [`s${n}@example.test`, `r${n}@example.test,q${n}@example.test`, `Message-Id: ${n}\r\n\r\nbody ${n}\r\n`]),
  );
  await conn.quit();
  await server.close();
});

test("envelope size, 8BITMIME, SMTPUTF8 and DSN parameters reach the server", async () => {
  const server = await startServer({ size: 1 << 20 });
  const conn = await connected(server.port);
  await conn.send(
    { from: "a@example.test", to: ["b@example.test"], size: 100, use8BitMime: true, smtpUtf8: true, dsn: { ret: "HDRS", envid: "env id", notify: ["SUCCESS", "DELAY"], orcpt: "orig@example.test" } },
    "Subject: ü\r\n\r\nbody\r\n",
  );
  await conn.send({ from: "a@example.test", to: ["δοκιμή@example.test"] }, "utf8 address\r\n");
  await conn.quit();
  const mail = server.commands.filter((c) => c.startsWith("MAIL"));
  assert.is(mail[0], "MAIL FROM:<a@example.test> SIZE=100 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=env+20id");
  assert.is(mail[1], "MAIL FROM:<a@example.test> SMTPUTF8");
  const rcpt = server.commands.filter((c) => c.startsWith("RCPT"));
  assert.is(rcpt[0], "RCPT TO:<b@example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;orig@example.test");
  assert.equal(server.messages[1]!.to, ["δοκιμή@example.test"]);
  assert.equal(server.messages[0]!.data.toString(), "Subject: ü\r\n\r\nbody\r\n");
  await server.close();
});

test("a size over the server's SIZE limit fails with EMESSAGE before MAIL is written", async () => {
  const server = await startServer({ size: 1000 });
  const conn = await connected(server.port);
  const err = (await conn.send({ ...env(), size: 5000 }, "x").catch((e) => e)) as SMTPError;
  assert.is(err.code, "EMESSAGE");
  assert.match(err.message, /1000/);
  assert.is(server.commands.filter((c) => c.startsWith("MAIL")).length, 0);
  const info = await conn.send({ ...env(), size: 10 }, "small");
  assert.equal(info.accepted, ["rcpt@example.test"]);
  await conn.quit();
  await server.close();
});

test("bad input is refused with EENVELOPE before anything is written, and the connection stays usable", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const before = server.commands.length;
  for (const envelope of [
    { from: "a@example.test\r\nRCPT TO:<evil@example.test>", to: "b@example.test" },
    { from: "a@example.test", to: ["b@example.test\nDATA"] },
    { from: "a@example.test", to: [] },
    { from: "a@example.test", to: "b@example.test", size: "big" as unknown as number },
  ]) {
    const err = (await conn.send(envelope, "x").catch((e) => e)) as SMTPError;
    assert.instance(err, SMTPError);
    assert.is(err.code, "EENVELOPE");
    assert.is(err.temporary, false);
  }
  const err = (await conn.send(env(), 42 as unknown as string).catch((e) => e)) as SMTPError;
  assert.is(err.code, "EMESSAGE");
  await new Promise((r) => setTimeout(r, 20));
  assert.is(server.commands.length, before, "nothing was written for bad input");
  assert.equal((await conn.send(env(), "ok")).accepted, ["rcpt@example.test"]);
  await conn.quit();
  await server.close();
});

test("reset() sends RSET and resolves true, with a callback too", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  assert.is(await conn.reset(), true);
  const viaCallback = await new Promise((resolve, reject) => conn.reset((err, ok) => (err ? reject(err) : resolve(ok))));
  assert.is(viaCallback, true);
  assert.equal(server.commands.filter((c) => c === "RSET").length, 2);
  await conn.quit();
  await server.close();
});

test("close() fails every queued operation with ECONNECTION and emits end once; later calls fail too", async () => {
  const server = await startServer();
  const conn = new SMTPConnection({ port: server.port, host: "127.0.0.1" });
  let ends = 0;
  let errors = 0;
  conn.on("end", () => ends++);
  conn.on("error", () => errors++);
  await conn.connect();
  const pending = [conn.send(env(), "a"), conn.send(env(), "b"), conn.reset()].map((p) => p.then(() => "ok", (e: SMTPError) => e.code));
  conn.close();
  assert.equal(await Promise.all(pending), ["ECONNECTION", "ECONNECTION", "ECONNECTION"]);
  const later = (await conn.send(env(), "c").catch((e) => e)) as SMTPError;
  assert.is(later.code, "ECONNECTION");
  const again = (await conn.connect().catch((e) => e)) as SMTPError;
  assert.is(again.code, "ECONNECTION");
  const stream = conn.createSendStream(env());
  const streamErr = await new Promise<SMTPError>((resolve) => stream.on("error", resolve));
  assert.is(streamErr.code, "ECONNECTION");
  await new Promise((r) => setImmediate(r));
  assert.is(ends, 1);
  assert.is(errors, 0, "closing on purpose is not an error");
  await server.close();
});

test("methods called before connect() fail with ECONNECTION instead of hanging", async () => {
  const conn = new SMTPConnection({ port: 1, host: "127.0.0.1" });
  const err = (await conn.send(env(), "x").catch((e) => e)) as SMTPError;
  assert.is(err.code, "ECONNECTION");
  assert.match(err.message, /connect\(\)/);
  const loginErr = (await conn.login({ user: "a", pass: "b" }).catch((e) => e)) as SMTPError;
  assert.is(loginErr.code, "ECONNECTION");
  await conn.quit();
});

test("operations called while connecting wait for the handshake", async () => {
  const server = await startServer();
  const conn = new SMTPConnection({ port: server.port, host: "127.0.0.1" });
  const connecting = conn.connect();
  const sent = conn.send(env(), "early");
  await connecting;
  assert.equal((await sent).accepted, ["rcpt@example.test"]);
  await conn.quit();
  await server.close();
});

test("quit() closes even when the server never answers QUIT", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["PIPELINING"]), { expect: "QUIT" }, { stall: true }]);
  const conn = await connected(fault.port, { socketTimeout: 200 });
  const ended = new Promise<void>((resolve) => conn.once("end", () => resolve()));
  await conn.quit();
  await ended;
  const c = await fault.connection();
  await c.whenClosed;
  assert.equal(c.commands.slice(-1), ["QUIT"]);
  await fault.close();
});

test("falls back to HELO when EHLO is refused", async () => {
  const fault = await startFaultServer([
    { send: "220 old.example.test\r\n" },
    { expect: /^EHLO / },
    { send: "502 5.5.1 EHLO not implemented\r\n" },
    { expect: /^HELO / },
    { send: "250 old.example.test\r\n" },
    { expect: /^MAIL FROM:<a@example\.test>$/ },
    { send: "250 ok\r\n" },
    { expect: /^RCPT TO:/ },
    { send: "250 ok\r\n" },
    { expect: "DATA" },
    { send: "354 go\r\n" },
    { expectData: true },
    { send: "250 queued\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
    { close: true },
  ]);
  const conn = await connected(fault.port);
  assert.is(conn.extensions.size, 0);
  const info = await conn.send({ from: "a@example.test", to: "b@example.test", size: 10, use8BitMime: true }, "hello");
  assert.is(info.response, "250 queued");
  await conn.quit();
  const c = await fault.connection();
  assert.equal(c.data[0]!.toString(), "hello\r\n.\r\n");
  fault.assertNoScriptErrors();
  await fault.close();
});

test("without PIPELINING each command waits for its reply; with it MAIL, RCPT and DATA go in one group", async () => {
  for (const advertise of [true, false]) {
    const fault = await startFaultServer([
      ...greetAndEhlo(advertise ? ["PIPELINING"] : []),
      // The server reads three lines before it answers anything: only a pipelining client
      // can get past this step.
      { expect: /^MAIL FROM/ },
      ...(advertise
        ? [{ expect: /^RCPT TO/ }, { expect: "DATA" }, { send: "250 ok\r\n250 ok\r\n354 go\r\n" }]
        : [{ send: "250 ok\r\n" }, { expect: /^RCPT TO/ }, { send: "250 ok\r\n" }, { expect: "DATA" }, { send: "354 go\r\n" }]),
      { expectData: true },
      { send: "250 done\r\n" },
      { expect: "QUIT" },
      { send: "221 bye\r\n" },
    ]);
    const conn = await connected(fault.port);
    const info = await conn.send(env(), "body");
    assert.is(info.response, "250 done");
    await conn.quit();
    fault.assertNoScriptErrors();
    await fault.close();
  }
});

test("the pipelining option turns pipelining off even when advertised", async () => {
  const { conn, finish } = await faultSession([
    ...greetAndEhlo(["PIPELINING"]),
    { expect: /^MAIL FROM/ },
    { delayMs: 30 },
    { call: (c) => assert.is(c.commands.length, 2, "nothing after MAIL before its reply") },
    { send: "250 ok\r\n" },
    { expect: /^RCPT TO/ },
    { send: "250 ok\r\n" },
    { expect: "DATA" },
    { send: "354 go\r\n" },
    { expectData: true },
    { send: "250 done\r\n" },
  ], { pipelining: false });
  await conn.send(env(), "body");
  await finish();
});

test("LMTP: LHLO, and one final reply per recipient moves refused ones to rejected", async () => {
  const server = await startServer({
    lmtp: true,
    onData(stream, session, callback) {
      stream.resume();
      stream.on("end", () => {
        const replies = session.envelope.rcptTo.map((r) =>
          r.address.startsWith("full") ? Object.assign(new Error("5.2.2 Mailbox full"), { responseCode: 552 }) : "2.0.0 Saved",
        );
        callback(null, replies as unknown as string);
      });
    },
  });
  const conn = await connected(server.port, { lmtp: true });
  assert.match(server.commands[0]!, /^LHLO /);
  const info = await conn.send(env(["alice@example.test", "full@example.test", "bob@example.test"]), "hi");
  assert.equal(info.accepted, ["alice@example.test", "bob@example.test"]);
  assert.equal(info.rejected, ["full@example.test"]);
  assert.is(info.rejectedErrors![0]!.code, "EMESSAGE");
  assert.is(info.rejectedErrors![0]!.responseCode, 552);
  assert.is(info.rejectedErrors![0]!.recipient, "full@example.test");
  const err = (await conn.send(env(["full1@example.test", "full2@example.test"]), "hi").catch((e) => e)) as SMTPError;
  assert.is(err.code, "EMESSAGE");
  assert.equal(err.rejected, ["full1@example.test", "full2@example.test"]);
  assert.equal((await conn.send(env("bob@example.test"), "again")).accepted, ["bob@example.test"]);
  await conn.quit();
  await server.close();
});

test("a 421 at any point fails with ECONNECTION carrying responseCode 421", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["PIPELINING"]), { expect: /^MAIL FROM/ }, { send: "421 4.3.2 Shutting down\r\n" }, { close: true }]);
  const conn = await connected(fault.port);
  const first = conn.send(env(), "x").catch((e) => e);
  const second = conn.send(env(), "y").catch((e) => e);
  const [a, b] = (await Promise.all([first, second])) as SMTPError[];
  assert.is(a!.code, "ECONNECTION");
  assert.is(a!.responseCode, 421);
  assert.is(a!.enhancedCode, "4.3.2");
  assert.is(a!.temporary, true);
  // One error per send: the queued one wrote nothing ("API"), the shared 421 is the cause of both.
  assert.is.not(b, a, "the queued send gets its own error");
  assert.is(a!.command, "MAIL FROM");
  assert.is(b!.command, "API");
  assert.is(b!.responseCode, 421);
  assert.is(b!.cause, a!.cause);
  assert.equal([a!.deliveryState, b!.deliveryState], ["not-sent", "not-sent"]);
  await fault.close();
});

test("a greeting other than 220 fails connect() with ECONNECTION and the server's reply", async () => {
  const fault = await startFaultServer([{ send: "554 5.7.1 No service for you\r\n" }, { stall: true }]);
  const conn = new SMTPConnection({ port: fault.port, host: "127.0.0.1" });
  const err = (await conn.connect().catch((e) => e)) as SMTPError;
  assert.is(err.code, "ECONNECTION");
  assert.is(err.responseCode, 554);
  assert.is(err.command, "CONN");
  await fault.close();
});

test("a connect callback is called exactly once, with the error, and no error event is needed", async () => {
  const conn = new SMTPConnection({ port: 1, host: "127.0.0.1" });
  const calls: (Error | null | undefined)[] = [];
  await new Promise<void>((resolve) => {
    conn.connect((err) => {
      calls.push(err);
      setTimeout(resolve, 20);
    });
  });
  assert.is(calls.length, 1);
  assert.instance(calls[0], SMTPError);
  assert.is((calls[0] as SMTPError).code, "ESOCKET");
  assert.is((calls[0] as SMTPError).temporary, true);
  assert.is(((calls[0] as SMTPError).cause as { code: string }).code, "ECONNREFUSED");
});

test("a host that does not resolve fails with EDNS", async () => {
  const conn = new SMTPConnection({ port: 25, host: "does-not-exist.invalid" });
  const err = (await conn.connect().catch((e) => e)) as SMTPError;
  assert.is(err.code, "EDNS");
  assert.is(err.temporary, true);
});

leakCheckTest(test, unhandled);

test.run();
