/**
 * beginTransaction(): a transaction opened one step at a time (MAIL, one RCPT per
 * addRecipient() with its own outcome, then the body), against smtp-server and the fault
 * server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SMTPError } from "../lib/index.js";
import { startServer } from "./helpers/server.js";
import { startFaultServer, greetAndEhlo, acceptEnvelope } from "./helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";
import { settlesWithin } from "./helpers/callbacks.js";
import { randomFor, seedNote } from "./helpers/random.js";
import { connected } from "./helpers/client.js";

const unhandled = trackUnhandled();
const body = "Subject: staged\r\n\r\nHello.\r\n";

async function rejection(promise: Promise<unknown>): Promise<SMTPError> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, SMTPError);
    return err as SMTPError;
  }
  throw new Error("expected a rejection");
}

for (const pipelining of [true, false]) {
  test(`each recipient gets its own outcome and only accepted ones receive the message (pipelining ${pipelining})`, async () => {
    const server = await startServer({ refuseRecipients: ["nobody@example.test"] });
    const conn = await connected(server.port, { pipelining });
    const tx = await conn.beginTransaction({ from: "sender@example.test" });
    const first = await tx.addRecipient("a@example.test");
    const refused = await tx.addRecipient("nobody@example.test");
    const last = await tx.addRecipient({ name: "B", address: "b@example.test" });
    assert.is(first.status, "accepted");
    assert.is(first.responseCode, 250);
    assert.not.ok(first.error);
    assert.is(refused.status, "rejected");
    assert.is(refused.responseCode, 550);
    assert.is(refused.enhancedCode, "5.1.1");
    assert.match(refused.response!, /^550 .*User unknown/);
    assert.is(refused.error?.code, "EENVELOPE");
    assert.is(refused.error?.recipient, "nobody@example.test");
    assert.is(last.address, "b@example.test");
    const out = tx.createSendStream();
    await pipeline(Readable.from([Buffer.from(body)]), out);
    assert.equal(out.info!.accepted, ["a@example.test", "b@example.test"]);
    assert.equal(out.info!.rejected, ["nobody@example.test"]);
    assert.is(out.info!.rejectedErrors?.[0]?.responseCode, 550);
    assert.equal(
      out.info!.recipients.map((r) => [r.address, r.status]),
      [["a@example.test", "accepted"], ["nobody@example.test", "rejected"], ["b@example.test", "accepted"]],
    );
    const { error: _error, ...refusedOutcome } = refused;
    assert.equal(out.info!.recipients[1], refusedOutcome, "addRecipient() and SendInfo tell the same outcome");
    assert.equal(server.messages[0]!.to, ["a@example.test", "b@example.test"]);
    assert.is(server.messages[0]!.data.toString(), body);
    // The connection goes on as usual afterwards.
    await conn.send({ from: "s@example.test", to: "c@example.test" }, body);
    assert.is(server.messages.length, 2);
    await conn.quit();
    await server.close();
  });
}

test("LMTP: each recipient's final reply is announced with the envelope as it was built", async () => {
  const server = await startServer({ lmtp: true });
  const conn = await connected(server.port, { lmtp: true });
  const events: { address: string; to: unknown }[] = [];
  conn.on("recipient", (outcome, envelope) => void events.push({ address: outcome.address, to: envelope.to }));
  const tx = await conn.beginTransaction({ from: "s@example.test" });
  await tx.addRecipient("a@example.test");
  await tx.addRecipient("b@example.test");
  const out = tx.createSendStream();
  await pipeline(Readable.from([Buffer.from(body)]), out);
  assert.equal(out.info!.accepted, ["a@example.test", "b@example.test"]);
  assert.equal(events, [
    { address: "a@example.test", to: ["a@example.test", "b@example.test"] },
    { address: "b@example.test", to: ["a@example.test", "b@example.test"] },
  ]);
  await conn.quit();
  await server.close();
});

test("beginTransaction rejects with EENVELOPE and the reply when MAIL FROM is refused", async () => {
  const server = await startServer({ refuseSenders: ["bad@example.test"] });
  const conn = await connected(server.port);
  const err = await rejection(conn.beginTransaction({ from: "bad@example.test" }));
  assert.is(err.code, "EENVELOPE");
  assert.is(err.responseCode, 550);
  assert.is(err.command, "MAIL FROM");
  await conn.send({ from: "s@example.test", to: "c@example.test" }, body);
  assert.ok(server.commands.includes("RSET"), "RSET before the next transaction");
  await conn.quit();
  await server.close();
});

test("every recipient refused: the stream fails with EENVELOPE and nothing is delivered", async () => {
  const server = await startServer({ refuseRecipients: ["x@example.test"] });
  const conn = await connected(server.port);
  const tx = await conn.beginTransaction({ from: "s@example.test" });
  assert.is((await tx.addRecipient("x@example.test")).status, "rejected");
  const err = await rejection(pipeline(Readable.from([Buffer.from(body)]), tx.createSendStream()));
  assert.is(err.code, "EENVELOPE");
  assert.equal(err.rejected, ["x@example.test"]);
  assert.is(server.messages.length, 0);
  assert.not.ok(server.commands.includes("DATA"), "no DATA without a recipient");
  await conn.quit();
  await server.close();
});

test("abort() before the body delivers nothing, rejects waiting recipients, and the next transaction starts with RSET", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const tx = await conn.beginTransaction({ from: "s@example.test" });
  await tx.addRecipient("a@example.test");
  tx.abort();
  tx.abort();
  const late = await rejection(tx.addRecipient("b@example.test"));
  assert.is(late.code, "EENVELOPE");
  assert.match(late.message, /abort/);
  // A stream asked for after abort() is already failing: it never opens DATA.
  const stream = tx.createSendStream();
  await rejection(pipeline(Readable.from([Buffer.from(body)]), stream));
  const next = await conn.beginTransaction({ from: "s2@example.test" });
  await next.addRecipient("c@example.test");
  await pipeline(Readable.from([Buffer.from(body)]), next.createSendStream());
  assert.equal(server.messages.map((m) => m.to), [["c@example.test"]]);
  const rset = server.commands.indexOf("RSET");
  assert.ok(rset > server.commands.indexOf("MAIL FROM:<s@example.test>") && rset < server.commands.indexOf("MAIL FROM:<s2@example.test>"), server.commands.join(" | "));
  await conn.quit();
  await server.close();
});

test("abort(reason) rejects recipients added but not yet written with that reason", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const tx = await conn.beginTransaction({ from: "s@example.test" });
  const first = tx.addRecipient("a@example.test");
  const second = tx.addRecipient("b@example.test");
  const reason = new Error("client went away");
  tx.abort(reason);
  for (const pending of [first, second]) {
    const err = await rejection(pending);
    assert.is(err.code, "ESTREAM");
    assert.is(err.cause, reason);
  }
  await conn.reset();
  assert.is(server.commands.filter((c) => c.startsWith("RCPT")).length, 0, "nothing written after abort()");
  await conn.quit();
  await server.close();
});

test("bad input is refused before anything is written", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  assert.is((await rejection(conn.beginTransaction({ from: "a@b\r\nRSET" }))).code, "EENVELOPE");
  const tx = await conn.beginTransaction({ from: "s@example.test" });
  for (const bad of ["x@y\r\nDATA", "", 42 as unknown as string, "δ@example.test"]) {
    const err = await rejection(tx.addRecipient(bad));
    assert.is(err.code, "EENVELOPE");
    assert.is(err.temporary, false);
  }
  assert.is(server.commands.filter((c) => c.startsWith("RCPT")).length, 0);
  const out = tx.createSendStream();
  assert.throws(() => tx.createSendStream(), /already called/);
  const err = await rejection(pipeline(Readable.from([Buffer.from(body)]), out));
  assert.match(err.message, /No recipients/);
  assert.is((await rejection(tx.addRecipient("late@example.test"))).code, "EENVELOPE");
  await conn.quit();
  await server.close();
});

test("a non-ASCII recipient is sent when the transaction declared SMTPUTF8", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const tx = await conn.beginTransaction({ from: "s@example.test", smtpUtf8: true });
  assert.is((await tx.addRecipient("δοκιμή@example.test")).status, "accepted");
  await pipeline(Readable.from([Buffer.from(body)]), tx.createSendStream());
  assert.equal(server.messages[0]!.to, ["δοκιμή@example.test"]);
  await conn.quit();
  await server.close();
});

test("a recipient's own DSN NOTIFY and ORCPT replace the transaction's; the others keep the transaction's", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const tx = await conn.beginTransaction({ from: "s@example.test", dsn: { ret: "HDRS", envid: "id+1", notify: "FAILURE" } });
  await tx.addRecipient("a@example.test");
  await tx.addRecipient("b@example.test", { notify: ["SUCCESS", "DELAY"], orcpt: "rfc822;Orig B@example.test" });
  await tx.addRecipient("c@example.test", { notify: "NEVER" });
  await pipeline(Readable.from([Buffer.from(body)]), tx.createSendStream());
  const rcpts = server.commands.filter((c) => c.startsWith("RCPT TO"));
  assert.equal(rcpts, [
    "RCPT TO:<a@example.test> NOTIFY=FAILURE",
    "RCPT TO:<b@example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Orig+20B@example.test",
    "RCPT TO:<c@example.test> NOTIFY=NEVER",
  ]);
  assert.ok(server.commands.some((c) => c === "MAIL FROM:<s@example.test> RET=HDRS ENVID=id+2B1"), server.commands.join(" | "));
  assert.is((await rejection(tx.addRecipient("d@example.test"))).code, "EENVELOPE", "no recipient after the body started");
  const next = await conn.beginTransaction({ from: "s@example.test" });
  const bad = await rejection(next.addRecipient("e@example.test", { notify: "SOMETIMES" }));
  assert.is(bad.code, "EENVELOPE");
  next.abort();
  await conn.quit();
  await server.close();
});

test("fromXtext reads back what a client xtext-encoded (RFC 3461 §4)", async () => {
  const { fromXtext } = await import("../lib/index.js");
  assert.is(fromXtext("rfc822;Orig+20B@example.test"), "rfc822;Orig B@example.test");
  assert.is(fromXtext("id+2B1+3D"), "id+1=");
  assert.is(fromXtext("+C3+A9t+C3+A9"), "été");
  assert.is(fromXtext("plain"), "plain");
});

test("with PIPELINING, recipients added in one turn go out in one write: the server reads every RCPT before it answers any", async () => {
  const server = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    { expect: /^MAIL FROM:<s@/ },
    { send: "250 ok\r\n" },
    // Read all three, then answer: a client that waited for each reply would hang here.
    { expect: "RCPT TO:<a@example.test>" },
    { expect: "RCPT TO:<b@example.test>" },
    { expect: "RCPT TO:<c@example.test>" },
    { send: "250 2.1.5 ok\r\n550 5.1.1 No such user\r\n250 2.1.5 ok\r\n" },
    // Added after those replies: a batch of one, answered on its own.
    { expect: "RCPT TO:<d@example.test>" },
    { send: "250 2.1.5 ok\r\n" },
    { expect: "DATA" },
    { send: "354 go\r\n" },
    { expectData: true },
    { send: "250 2.0.0 Queued\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  const conn = await connected(server.port);
  const tx = await conn.beginTransaction({ from: "s@example.test" });
  const outcomes = await settlesWithin(Promise.all(["a", "b", "c"].map((name) => tx.addRecipient(`${name}@example.test`))), 5000, "three recipients added at once");
  assert.equal(
    outcomes.map((o) => [o.address, o.status, o.responseCode]),
    [["a@example.test", "accepted", 250], ["b@example.test", "rejected", 550], ["c@example.test", "accepted", 250]],
  );
  assert.is(outcomes[1]!.error?.recipient, "b@example.test");
  assert.is((await tx.addRecipient("d@example.test")).status, "accepted");
  const out = tx.createSendStream();
  await pipeline(Readable.from([Buffer.from(body)]), out);
  assert.equal(out.info!.accepted, ["a@example.test", "c@example.test", "d@example.test"]);
  assert.equal(out.info!.rejected, ["b@example.test"]);
  await conn.quit();
  server.assertNoScriptErrors();
  await server.close();
});

test("the connection lost during a group of recipients rejects each of them with ECONNECTION", async () => {
  const server = await startFaultServer([...greetAndEhlo(["PIPELINING"]), { expect: /^MAIL FROM/ }, { send: "250 ok\r\n" }, { expect: /^RCPT TO/ }, { expect: /^RCPT TO/ }, { send: "250 ok\r\n" }, { close: true }]);
  const conn = await connected(server.port);
  const tx = await conn.beginTransaction({ from: "s@example.test" });
  const first = tx.addRecipient("a@example.test");
  const second = tx.addRecipient("b@example.test");
  assert.is((await first).status, "accepted", "answered before the close");
  assert.is((await rejection(second)).code, "ECONNECTION");
  await rejection(pipeline(Readable.from([Buffer.from(body)]), tx.createSendStream()));
  conn.close();
  await server.close();
});

test("a 4xx recipient is deferred, with a temporary error", async () => {
  const server = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    { expect: /^MAIL FROM/ },
    { send: "250 ok\r\n" },
    { expect: /^RCPT TO/ },
    { send: "450 4.2.0 Mailbox busy\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  const conn = await connected(server.port);
  const tx = await conn.beginTransaction({ from: "s@example.test" });
  const outcome = await tx.addRecipient("busy@example.test");
  assert.is(outcome.status, "deferred");
  assert.is(outcome.error?.temporary, true);
  tx.abort();
  await conn.quit();
  await server.close();
});

test("the connection lost between recipients rejects the next one and the stream with ECONNECTION, without a crash", async () => {
  const server = await startFaultServer([...greetAndEhlo(["PIPELINING"]), { expect: /^MAIL FROM/ }, { send: "250 ok\r\n" }, { expect: /^RCPT TO/ }, { send: "250 ok\r\n" }, { expect: /^RCPT TO/ }, { close: true }]);
  const conn = await connected(server.port);
  const tx = await conn.beginTransaction({ from: "s@example.test" });
  assert.is((await tx.addRecipient("a@example.test")).status, "accepted");
  const err = await rejection(tx.addRecipient("b@example.test"));
  assert.is(err.code, "ECONNECTION");
  assert.is((await rejection(tx.addRecipient("c@example.test"))).code, "ECONNECTION");
  await rejection(pipeline(Readable.from([Buffer.from(body)]), tx.createSendStream()));
  conn.close();
  await server.close();
});

test("abort() after createSendStream closes the connection without the end of data", async () => {
  const server = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    ...acceptEnvelope(),
    { expectData: true },
  ]);
  const conn = await connected(server.port);
  const ended = new Promise<void>((resolve) => conn.once("end", () => resolve()));
  const tx = await conn.beginTransaction({ from: "s@example.test" });
  await tx.addRecipient("a@example.test");
  const out = tx.createSendStream();
  const failed = new Promise<Error>((resolve) => out.once("error", resolve));
  out.write("Subject: cut\r\n\r\npartial");
  await new Promise((resolve) => setTimeout(resolve, 20));
  tx.abort(new Error("inbound client vanished"));
  assert.is(((await failed) as SMTPError).code, "ESTREAM");
  await ended;
  await server.close();
  const received = Buffer.concat(server.connections[0]!.data).toString();
  assert.not.match(received, /\r\n\.\r\n/, "no terminator was sent");
});

test("property: random accept/refuse patterns are reported recipient by recipient and match what was delivered", async () => {
  const random = randomFor("staged recipients");
  // startServer reads this array at each RCPT, so the test can grow it as it goes.
  const refused: string[] = [];
  const server = await startServer({ refuseRecipients: refused });
  const conn = await connected(server.port);
  for (let round = 0; round < 20; round++) {
    const addresses = Array.from({ length: random.int(1, 8) }, (_, i) => `r${round}-${i}@example.test`);
    for (const address of addresses) if (random.chance(0.4)) refused.push(address);
    const tx = await conn.beginTransaction({ from: "s@example.test" });
    const outcomes = [];
    for (const address of addresses) outcomes.push(await tx.addRecipient(address));
    const expected = addresses.filter((a) => !refused.includes(a));
    assert.equal(
      outcomes.filter((o) => o.status === "accepted").map((o) => o.address),
      expected,
      `outcomes${seedNote()}`,
    );
    const out = tx.createSendStream();
    const sent = pipeline(Readable.from([Buffer.from(body)]), out);
    if (expected.length === 0) {
      assert.is((await rejection(sent)).code, "EENVELOPE", seedNote());
      continue;
    }
    await sent;
    assert.equal(out.info!.accepted, expected, seedNote());
    assert.equal(server.messages[server.messages.length - 1]!.to, expected, seedNote());
  }
  await conn.quit();
  await server.close();
});

for (const pipelining of [true, false]) {
  test(`an envelope abandoned once quit() was called ends with QUIT alone, with no RSET before it (pipelining ${pipelining})`, async () => {
    const server = await startServer();
    const conn = await connected(server.port, { pipelining });
    const first = await conn.beginTransaction({ from: "sender@example.test" });
    await first.addRecipient("a@example.test");
    first.abort();
    const last = await conn.beginTransaction({ from: "sender@example.test" });
    await last.addRecipient("b@example.test");
    const quitting = conn.quit();
    last.abort();
    await quitting;
    const commands = server.commands.filter((c) => !c.startsWith("EHLO"));
    assert.equal(commands, ["MAIL FROM:<sender@example.test>", "RCPT TO:<a@example.test>", "RSET", "MAIL FROM:<sender@example.test>", "RCPT TO:<b@example.test>", "QUIT"]);
    assert.is(server.messages.length, 0);
    await server.close();
  });
}

test("a send queued before QUIT behind an envelope abandoned after quit() still leads with RSET", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const tx = await conn.beginTransaction({ from: "sender@example.test" });
  await tx.addRecipient("a@example.test");
  const sending = conn.send({ from: "sender@example.test", to: "b@example.test" }, body);
  const quitting = conn.quit();
  tx.abort();
  const info = await sending;
  await quitting;
  assert.equal(info.accepted, ["b@example.test"]);
  const commands = server.commands.filter((c) => !c.startsWith("EHLO"));
  assert.equal(commands.slice(0, 3), ["MAIL FROM:<sender@example.test>", "RCPT TO:<a@example.test>", "RSET"]);
  assert.is(commands.at(-1), "QUIT");
  assert.is(server.messages.length, 1);
  await server.close();
});

leakCheckTest(test, unhandled);
test.run();
