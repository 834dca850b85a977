/**
 * What a send reports (SPEC §6, issue 10): one error per send naming where that send was,
 * its `deliveryState` (not-sent / rejected / unknown), per-recipient `recipients` on
 * SendInfo and on errors, and `temporary` on an all-refused send whatever the recipient
 * order. Against smtp-server and the scripted fault server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPError, type RecipientOutcome } from "../lib/index.js";
import { acceptLmtpEnvelope, acceptPipelinedEnvelope, greetAndEhlo, startFaultServer, type Step } from "./helpers/fault-server.js";
import { startServer } from "./helpers/server.js";
import { settlesWithin } from "./helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";
import { connected, faultSession } from "./helpers/client.js";

const unhandled = trackUnhandled();
const env = (n: number) => ({ from: "sender@example.test", to: [`rcpt${n}@example.test`] });

const failureOf = (promise: Promise<unknown>): Promise<SMTPError> =>
  settlesWithin(
    promise.then(
      () => assert.unreachable("the send must fail"),
      (err: SMTPError) => err,
    ),
    5000,
    "the send",
  ) as Promise<SMTPError>;

test("a connection dropped with 4 sends queued gives 4 distinct errors, each saying where its send was and whether it may be delivered", async () => {
  // The first message is complete on the wire and the second envelope overlaps its final
  // reply; then the server drops the connection.
  const fault = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    ...acceptPipelinedEnvelope(),
    { expectData: true },
    { expect: "RSET" },
    { expect: /^MAIL FROM:/ },
    { expect: /^RCPT TO:/ },
    { expect: "DATA" },
    { reset: true },
  ]);
  const conn = await connected(fault.port);
  const sends = [1, 2, 3, 4].map((n) => failureOf(conn.send(env(n), `message ${n}`)));
  const errors = await Promise.all(sends);
  assert.is(new Set(errors).size, 4, "four distinct SMTPError instances");
  for (const err of errors) {
    assert.instance(err, SMTPError);
    assert.is(err.code, "ECONNECTION");
    assert.is(err.temporary, true);
  }
  assert.equal(
    errors.map((err) => [err.command, err.deliveryState]),
    [
      ["DATA", "unknown"], // its terminator left: the server may have queued it
      ["RSET", "not-sent"], // only its envelope left
      ["API", "not-sent"], // never started
      ["API", "not-sent"],
    ],
  );
  const shared = errors[0]!.cause as SMTPError;
  assert.instance(shared, SMTPError);
  assert.ok(errors.every((err) => err.cause === shared), "the shared failure is every error's cause");
  assert.is(await conn.closed, shared, "closed resolves with the shared failure");
  assert.equal(
    errors[1]!.recipients,
    [{ address: "rcpt2@example.test", status: "deferred", response: shared.message }],
    "a recipient no reply settled takes the failure's verdict",
  );
  await fault.close();
});

for (const [code, temporary] of [
  [554, false],
  [451, true],
] as const) {
  test(`a ${code} final reply is deliveryState "rejected", temporary ${temporary}, with every recipient settled by it`, async () => {
    const enhanced = code === 554 ? "5.6.0" : "4.3.0";
    const { conn, finish } = await faultSession([
      ...greetAndEhlo(["PIPELINING"]),
      { expect: /^MAIL FROM/ },
      { expect: /^RCPT TO/ },
      { expect: /^RCPT TO/ },
      { expect: "DATA" },
      { send: "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n" },
      { expectData: true },
      { send: `${code} ${enhanced} refused\r\n` },
      { expect: "RSET" },
      { send: "250 ok\r\n" },
      ...acceptPipelinedEnvelope(),
      { expectData: true },
      { send: "250 2.0.0 queued\r\n" },
    ]);
    const err = await failureOf(conn.send({ from: "s@example.test", to: ["a@example.test", "gone@example.test"] }, "x"));
    assert.is(err.code, "EMESSAGE");
    assert.is(err.command, "DATA");
    assert.is(err.deliveryState, "rejected");
    assert.is(err.temporary, temporary);
    assert.equal(err.recipients, [
      { address: "a@example.test", status: temporary ? "deferred" : "rejected", responseCode: code, enhancedCode: enhanced, response: `${code} ${enhanced} refused` },
      { address: "gone@example.test", status: "rejected", responseCode: 550, enhancedCode: "5.1.1", response: "550 5.1.1 no such user" },
    ]);
    // The connection stays usable.
    const info = await conn.send(env(1), "y");
    assert.equal(info.recipients, [{ address: "rcpt1@example.test", status: "accepted", responseCode: 250, enhancedCode: "2.0.0", response: "250 2.0.0 queued" }]);
    await finish();
  });
}

test("SendInfo.recipients has one outcome per address, settled by the final reply or the RCPT refusal (smtp-server)", async () => {
  const server = await startServer({ refuseRecipients: ["nobody@example.test"] });
  const conn = await connected(server.port);
  const info = await conn.send({ from: "s@example.test", to: ["one@example.test", "nobody@example.test", "two@example.test"] }, "Subject: x\r\n\r\nhi\r\n");
  assert.equal(
    info.recipients.map((r) => [r.address, r.status, r.responseCode, r.enhancedCode]),
    [
      ["one@example.test", "accepted", 250, "2.6.0"],
      ["nobody@example.test", "rejected", 550, "5.1.1"],
      ["two@example.test", "accepted", 250, "2.6.0"],
    ],
  );
  assert.is(info.recipients[0]!.response, info.response, "an accepted recipient carries the final reply");
  assert.equal(info.rejected, ["nobody@example.test"]);
  await conn.quit();
  await server.close();
});

/** smtp-server refusing each listed recipient with its own reply code. */
function refusing(codes: Record<string, number>) {
  return startServer({
    onRcptTo(address, _session, callback) {
      const code = codes[address.address];
      if (code === undefined) return callback();
      callback(Object.assign(new Error(`${code === 451 ? "4.7.1 Greylisted, try later" : "5.1.1 User unknown"}`), { responseCode: code }));
    },
  });
}

for (const order of [
  [550, 451],
  [451, 550],
]) {
  test(`every recipient refused with [${order.join(", ")}] is temporary (a greylisted recipient is retried, not bounced), each refusal keeping its own`, async () => {
    const to = order.map((code, i) => `r${i}-${code}@example.test`);
    const server = await refusing(Object.fromEntries(to.map((address, i) => [address, order[i]!])));
    const conn = await connected(server.port);
    const err = await failureOf(conn.send({ from: "s@example.test", to }, "x"));
    assert.is(err.code, "EENVELOPE");
    assert.is(err.temporary, true);
    assert.is(err.responseCode, 451, "the temporary refusal speaks for the send");
    assert.is(err.deliveryState, "not-sent");
    assert.equal(
      err.rejectedErrors!.map((e) => [e.recipient, e.responseCode, e.temporary]),
      to.map((address, i) => [address, order[i], order[i] === 451]),
    );
    assert.equal(
      err.recipients!.map((r) => [r.address, r.status]),
      to.map((address, i) => [address, order[i] === 451 ? "deferred" : "rejected"]),
    );
    await conn.quit();
    await server.close();
  });
}

test("a send refused at MAIL gives every recipient that verdict (not the pipelined RCPTs' 503); a later send still works", async () => {
  const server = await startServer({ refuseSenders: ["bad@example.test"] });
  const conn = await connected(server.port);
  const err = await failureOf(conn.send({ from: "bad@example.test", to: ["a@example.test", "b@example.test"] }, "x"));
  assert.is(err.command, "MAIL FROM");
  assert.is(err.deliveryState, "not-sent");
  assert.equal(
    err.recipients!.map((r) => [r.address, r.status, r.responseCode]),
    [
      ["a@example.test", "rejected", 550],
      ["b@example.test", "rejected", 550],
    ],
  );
  assert.equal((await conn.send(env(1), "y")).accepted, ["rcpt1@example.test"]);
  await conn.quit();
  await server.close();
});

test("bad input is not-sent and names no recipients", async () => {
  const server = await startServer();
  const conn = await connected(server.port);
  const err = await failureOf(conn.send({ from: "s@example.test", to: ["bad\r\n@example.test"] }, "x"));
  assert.is(err.code, "EENVELOPE");
  assert.is(err.deliveryState, "not-sent");
  assert.is(err.recipients, undefined);
  await conn.quit();
  await server.close();
});

/** An LMTP server accepting two recipients, then answering the data with `finals`. */
function lmtpServer(finals: string[], extra: Step[] = []): Step[] {
  return [...acceptLmtpEnvelope(2), { expectData: true }, ...finals.map((line) => ({ send: `${line}\r\n` })), ...extra];
}
const lmtpEnv = { from: "s@example.test", to: ["first@example.test", "second@example.test"] };

test("LMTP: a recipient event (connection and SendStream) as each final reply arrives, and recipients on SendInfo", async () => {
  const fault = await startFaultServer(lmtpServer(["250 2.0.0 <first@example.test> Saved", "452 4.2.2 <second@example.test> Over quota"]));
  const conn = await connected(fault.port, { lmtp: true });
  const onConnection: [RecipientOutcome, unknown][] = [];
  conn.on("recipient", (outcome: RecipientOutcome, envelope: unknown) => onConnection.push([outcome, envelope]));
  const stream = conn.createSendStream(lmtpEnv);
  const onStream: RecipientOutcome[] = [];
  stream.on("recipient", (outcome: RecipientOutcome) => onStream.push(outcome));
  const finished = new Promise<void>((resolve, reject) => (stream.once("finish", resolve), stream.once("error", reject)));
  stream.end("Subject: x\r\n\r\nbody\r\n");
  await settlesWithin(finished, 5000, "the LMTP send");
  const expected: RecipientOutcome[] = [
    { address: "first@example.test", status: "accepted", responseCode: 250, enhancedCode: "2.0.0", response: "250 2.0.0 <first@example.test> Saved" },
    { address: "second@example.test", status: "deferred", responseCode: 452, enhancedCode: "4.2.2", response: "452 4.2.2 <second@example.test> Over quota" },
  ];
  assert.equal(onStream, expected);
  assert.equal(
    onConnection.map(([outcome]) => outcome),
    expected,
  );
  assert.ok(onConnection.every(([, envelope]) => envelope === lmtpEnv), "the connection's event names the send by its envelope");
  assert.equal(stream.info!.recipients, expected);
  assert.equal(stream.info!.accepted, ["first@example.test"]);
  assert.equal(stream.info!.rejected, ["second@example.test"]);
  assert.is(stream.info!.rejectedErrors![0]!.temporary, true);
  conn.close();
  await fault.close();
});

for (const order of [
  ["550 5.1.1 gone", "451 4.3.0 try later"],
  ["451 4.3.0 try later", "550 5.1.1 gone"],
]) {
  test(`LMTP: every recipient failing at the final reply with [${order.map((l) => l.slice(0, 3)).join(", ")}] is rejected and temporary`, async () => {
    const fault = await startFaultServer(lmtpServer(order));
    const conn = await connected(fault.port, { lmtp: true });
    const err = await failureOf(conn.send(lmtpEnv, "x"));
    assert.is(err.code, "EMESSAGE");
    assert.is(err.deliveryState, "rejected");
    assert.is(err.temporary, true);
    assert.is(err.responseCode, 451);
    assert.equal(
      err.rejectedErrors!.map((e) => e.temporary),
      order.map((line) => line.startsWith("4")),
    );
    assert.equal(
      err.recipients!.map((r) => r.status),
      order.map((line) => (line.startsWith("4") ? "deferred" : "rejected")),
    );
    conn.close();
    await fault.close();
  });
}

test("LMTP: a connection lost between the final replies is unknown, and recipients say who already has the message", async () => {
  const fault = await startFaultServer(lmtpServer(["250 2.0.0 <first@example.test> Saved"], [{ close: true }]));
  const conn = await connected(fault.port, { lmtp: true });
  const err = await failureOf(conn.send(lmtpEnv, "x"));
  assert.is(err.code, "ECONNECTION");
  assert.is(err.deliveryState, "unknown");
  assert.equal(
    err.recipients!.map((r) => [r.address, r.status]),
    [
      ["first@example.test", "accepted"],
      ["second@example.test", "deferred"],
    ],
  );
  await fault.close();
});

test("BDAT: a small message sent whole with its envelope, then the connection lost, is unknown (the server may have it)", async () => {
  const fault = await startFaultServer([...greetAndEhlo(["PIPELINING", "CHUNKING"]), { expect: /^MAIL FROM:/ }, { expect: /^RCPT TO:/ }, { expect: "BDAT 5 LAST" }, { expectBytes: 5 }, { reset: true }]);
  const conn = await connected(fault.port, { chunking: true });
  const err = await failureOf(conn.send(env(1), "hello"));
  assert.is(err.code, "ECONNECTION");
  assert.is(err.deliveryState, "unknown");
  await fault.close();
});

test("BDAT: a chunk refused after the whole body went is rejected, as the reply says", async () => {
  const fault = await startFaultServer([
    ...greetAndEhlo(["PIPELINING", "CHUNKING"]),
    { expect: /^MAIL FROM:/ },
    { expect: /^RCPT TO:/ },
    { expect: "BDAT 4" },
    { expectBytes: 4 },
    { send: "250 ok\r\n250 ok\r\n" },
    { expect: "BDAT 1 LAST" },
    { expectBytes: 1 },
    { send: "452 4.3.1 Out of storage\r\n503 5.5.1 No transaction\r\n" },
  ]);
  const conn = await connected(fault.port, { chunking: true, bdatChunkSize: 4 });
  const err = await failureOf(conn.send(env(1), "hello"));
  assert.equal([err.code, err.command, err.responseCode, err.temporary, err.deliveryState], ["EMESSAGE", "BDAT", 452, true, "rejected"]);
  conn.close();
  await fault.close();
});

leakCheckTest(test, unhandled);

test.run();
