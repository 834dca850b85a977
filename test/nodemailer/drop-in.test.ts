/**
 * smtp-wire/nodemailer as a drop-in, checked against Nodemailer itself: the same sendMail,
 * verify and close calls through Nodemailer's SMTP transport, its pooled transport and
 * ours, each against a real smtp-server of its own, report the same info (or the same
 * error fields) and deliver the same envelopes. Where ours differs on purpose (README,
 * "Deliberate differences"), the test says so in its title.
 */
import { test } from "uvu";
import { once } from "node:events";
import * as assert from "uvu/assert";
import type Mail from "nodemailer/lib/mailer";
import { closedPort } from "../helpers/server.js";
import { countCalls, settlesWithin } from "../helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { eachTransport, infoFacts, KINDS, receivedFacts, refusalFacts, startDroppingServer, type Reported, type Transporter } from "./side-by-side.js";

const unhandled = trackUnhandled();

/** Nodemailer's pooled transport and ours: for what only a pool has (isIdle, maxConnections, requeues). */
const POOLED = ["pool", "smtp-wire"] as const;

const MAIL: Mail.Options = { from: "sender@example.test", to: "a@example.test", subject: "s", text: "t", messageId: "<drop-in@example.test>", date: new Date(0) };

/** sendMail with a callback, checking it is called exactly once; settles as the callback said. */
async function sendWithCallback(transporter: Transporter, mail: Mail.Options): Promise<unknown> {
  const callback = countCalls<[Error | null, unknown]>(undefined, "sendMail callback");
  transporter.sendMail(mail, callback);
  const [err, info] = await callback.firstCall;
  await new Promise((resolve) => setImmediate(resolve));
  callback.assertCalledOnce();
  if (err) throw err;
  return info;
}

/** Asserts ours reported what both of Nodemailer's transports did, through `facts`. */
function sameAsNodemailer<T>(reported: Record<string, Reported<T>>, facts: (r: Reported<T>) => unknown, what: string): void {
  const ours = facts(reported["smtp-wire"]!);
  for (const kind of ["smtp", "pool"]) assert.equal(ours, facts(reported[kind]!), `${what}: smtp-wire vs Nodemailer's ${kind} transport`);
}

test("a delivered mail and a partly refused one: info has the same values as Nodemailer's, Promise and callback forms alike", async () => {
  for (const send of [(t: Transporter, m: Mail.Options) => t.sendMail(m) as Promise<unknown>, sendWithCallback]) {
    const reported = await eachTransport({ refuseRecipients: ["nobody@example.test"] }, () => ({}), async (transporter) => [
      await send(transporter, MAIL),
      await send(transporter, { ...MAIL, to: "a@example.test, nobody@example.test, b@example.test" }),
    ]);
    for (const kind of KINDS) assert.is(reported[kind].error, undefined, `${kind}: ${reported[kind].error}`);
    sameAsNodemailer(reported, (r) => r.value!.map(infoFacts), "info");
    const [, partly] = reported["smtp-wire"].value! as Record<string, unknown>[];
    assert.equal(partly!.rejected, ["nobody@example.test"]);
    assert.is((partly!.rejectedErrors as unknown[]).length, 1);
    sameAsNodemailer(reported, (r) => receivedFacts(r.server), "what the server received");
  }
});

test("every recipient refused, the sender refused, the message refused at its end of data: the same error fields as Nodemailer's, nothing delivered", async () => {
  const refuseData = {
    onData(stream: NodeJS.ReadableStream, _session: unknown, callback: (err?: Error | null) => void) {
      stream.resume();
      stream.on("end", () => callback(Object.assign(new Error("5.7.1 Looks like spam"), { responseCode: 554 })));
    },
  };
  const cases = [
    { server: { refuseRecipients: ["nobody@example.test", "none@example.test"] }, mail: { ...MAIL, to: "nobody@example.test, none@example.test" }, code: "EENVELOPE" },
    { server: { refuseSenders: ["sender@example.test"] }, mail: MAIL, code: "EENVELOPE" },
    { server: refuseData, mail: MAIL, code: "EMESSAGE" },
  ];
  for (const { server, mail, code } of cases) {
    const reported = await eachTransport(server as never, () => ({}), (transporter) => sendWithCallback(transporter, mail));
    const facts = (r: Reported<unknown>) => ({
      ...refusalFacts(r.error),
      rejected: r.error?.rejected,
      rejectedErrors: (r.error?.rejectedErrors as unknown[] | undefined)?.map(refusalFacts),
      delivered: r.server.messages.length,
    });
    sameAsNodemailer(reported, facts, code);
    assert.is(reported["smtp-wire"].error?.code, code);
  }
});

test("a mail's envelope option with size, use8BitMime and dsn: the same MAIL and RCPT parameters as Nodemailer's transports send", async () => {
  const mail = {
    ...MAIL,
    envelope: { from: "bounce@example.test", to: ["c@example.test", "d@example.test"], size: 4321, use8BitMime: true, dsn: { id: "env-1", return: "headers", notify: "failure", recipient: "sender@example.test" } },
  } as Mail.Options;
  const reported = await eachTransport({ size: 1 << 20 }, () => ({}), (transporter) => transporter.sendMail(mail));
  sameAsNodemailer(reported, (r) => [r.error?.message, receivedFacts(r.server)], "what the server received");
  const [received] = receivedFacts(reported["smtp-wire"].server) as { mailParams: Record<string, string> }[];
  assert.equal(received!.mailParams, { SIZE: "4321", BODY: "8BITMIME", RET: "HDRS", ENVID: "env-1" });
  // The mail's own dsn option wins over the one in its envelope, as in Nodemailer.
  const both = { ...mail, dsn: { id: "env-2", return: "full" } } as Mail.Options;
  const again = await eachTransport({}, () => ({}), (transporter) => transporter.sendMail(both));
  sameAsNodemailer(again, (r) => [r.error?.message, receivedFacts(r.server)], "dsn option and envelope dsn");
  assert.is((receivedFacts(again["smtp-wire"].server)[0] as { mailParams: Record<string, string> }).mailParams.ENVID, "env-2");
});

test("authMethod at the transport level chooses the AUTH method, as in Nodemailer", async () => {
  const reported = await eachTransport({ users: { alice: "secret" } }, () => ({ auth: { user: "alice", pass: "secret" }, authMethod: "LOGIN" }), (transporter) => transporter.sendMail(MAIL));
  sameAsNodemailer(reported, (r) => [r.error, r.server.auths], "the AUTH exchanges");
  assert.equal(reported["smtp-wire"].server.auths, [{ method: "LOGIN", username: "alice", ok: true, secure: false }]);
});

test("verify(): true when the login works; EAUTH with the server's 535 for wrong credentials; ESOCKET for a port nothing listens on; callback form too", async () => {
  const good = await eachTransport({ users: { alice: "secret" } }, () => ({ auth: { user: "alice", pass: "secret", method: "PLAIN" } }), (transporter) => transporter.verify());
  sameAsNodemailer(good, (r) => [r.value, r.error, r.server.auths.map((a) => a.ok), r.server.messages.length], "verify with good credentials");
  assert.is(good["smtp-wire"].value, true);

  const bad = await eachTransport(
    { users: { alice: "secret" } },
    () => ({ auth: { user: "alice", pass: "wrong", method: "PLAIN" } }),
    (transporter) =>
      new Promise((resolve, reject) => {
        const callback = countCalls<[Error | null, unknown]>((err, ok) => (err ? reject(err) : resolve(ok)), "verify callback");
        transporter.verify(callback as never);
      }),
  );
  sameAsNodemailer(bad, (r) => ({ code: r.error?.code, responseCode: r.error?.responseCode, response: r.error?.response, command: r.error?.command }), "verify with wrong credentials");
  assert.is(bad["smtp-wire"].error?.code, "EAUTH");

  const port = await closedPort();
  const unreachable = await eachTransport({}, () => ({ port }), (transporter) => transporter.verify());
  sameAsNodemailer(unreachable, (r) => ({ code: r.error?.code, command: r.error?.command, originalCode: r.error?.originalCode }), "verify of a closed port");
  assert.is(unreachable["smtp-wire"].error?.code, "ESOCKET");
});

test("sendMail with wrong credentials or to a closed port fails with Nodemailer's code (EAUTH, ESOCKET) and delivers nothing", async () => {
  const bad = await eachTransport({ users: { alice: "secret" } }, () => ({ auth: { user: "alice", pass: "wrong", method: "PLAIN" } }), (transporter) => transporter.sendMail(MAIL));
  sameAsNodemailer(bad, (r) => ({ code: r.error?.code, responseCode: r.error?.responseCode, response: r.error?.response, command: r.error?.command, delivered: r.server.messages.length }), "wrong credentials");
  const port = await closedPort();
  // Ours tries maxRequeues more connections before it gives up (README, "Deliberate differences"); 0 here.
  const closed = await eachTransport({}, () => ({ port, maxRequeues: 0 }), (transporter) => transporter.sendMail(MAIL));
  sameAsNodemailer(closed, (r) => ({ code: r.error?.code, command: r.error?.command, originalCode: r.error?.originalCode }), "a closed port");
  assert.is(closed["smtp-wire"].error?.code, "ESOCKET");
});

test("sendMail after close(): ECONNECTION, as Nodemailer's pooled transport (its SMTP transport opens a new connection each time and sends)", async () => {
  const reported = await eachTransport({}, () => ({}), async (transporter) => {
    await transporter.close();
    return transporter.sendMail(MAIL);
  });
  assert.is(reported.pool.error?.code, "ECONNECTION");
  assert.is(reported["smtp-wire"].error?.code, "ECONNECTION");
  assert.is(reported["smtp-wire"].server.messages.length, 0);
  const withOwnAuth = await eachTransport({ users: { bob: "b" } }, () => ({}), async (transporter) => {
    await transporter.close();
    return transporter.sendMail({ ...MAIL, auth: { user: "bob", pass: "b" } } as Mail.Options);
  });
  assert.is(withOwnAuth["smtp-wire"].error?.code, "ECONNECTION", "a mail with its own auth, after close()");
  assert.is(withOwnAuth["smtp-wire"].server.auths.length, 0);
});

/** Nodemailer's documented producer: on each 'idle', send while isIdle(). Returns how many mails each 'idle' let in. */
async function produceOnIdle(transporter: Transporter, total: number): Promise<number[]> {
  const sends: Promise<unknown>[] = [];
  const madePerIdle: number[] = [];
  await settlesWithin(
    new Promise<void>((resolve) => {
      transporter.on("idle", () => {
        let made = 0;
        while (transporter.isIdle() && sends.length < total) {
          sends.push(transporter.sendMail({ ...MAIL, to: `r${sends.length}@example.test` }));
          made++;
        }
        madePerIdle.push(made);
        if (sends.length === total) resolve();
      });
    }),
    20_000,
    "every mail offered from 'idle' listeners",
  );
  await Promise.all(sends);
  return madePerIdle;
}

test("isIdle() and 'idle' as in Nodemailer's pooled transport: a producer sending while isIdle() composes at most maxConnections mails ahead", async () => {
  const reported = await eachTransport({}, () => ({ maxConnections: 2 }), (transporter) => produceOnIdle(transporter, 12), POOLED);
  for (const kind of POOLED) {
    const { value, error, server } = reported[kind];
    assert.is(error, undefined, `${kind}: ${error}`);
    assert.is(server.messages.length, 12, `${kind}: every mail delivered`);
    assert.is(value![0], 2, `${kind}: the first 'idle' lets in maxConnections mails`);
    assert.ok(value!.every((made) => made <= 2), `${kind}: never more than maxConnections mails ahead: ${value}`);
  }
});

test("maxConnections and maxMessages, at the top level as Nodemailer's pooled transport takes them, bound the connections the server sees as Nodemailer's do", async () => {
  let counts = { open: 0, most: 0, total: 0 };
  const serverOptions = {
    onConnect(_session: unknown, callback: () => void) {
      counts.open++;
      counts.total++;
      counts.most = Math.max(counts.most, counts.open);
      callback();
    },
    onClose() {
      counts.open--;
    },
  };
  const options = () => {
    counts = { open: 0, most: 0, total: 0 };
    return { maxConnections: 2, maxMessages: 3 };
  };
  const reported = await eachTransport(serverOptions as never, options, async (transporter) => {
    await Promise.all(Array.from({ length: 12 }, (_, n) => transporter.sendMail({ ...MAIL, to: `r${n}@example.test` })));
    return { ...counts };
  }, POOLED);
  for (const kind of POOLED) {
    const { value, server } = reported[kind];
    assert.is(server.messages.length, 12, `${kind}: every mail delivered`);
    assert.ok(value!.most <= 2, `${kind}: at most maxConnections at once (${value!.most})`);
    assert.ok(value!.total >= 4, `${kind}: a connection carries at most maxMessages mails (${value!.total} sessions for 12 mails)`);
  }
});

test("a mail with its own auth logs in as that user, as Nodemailer's SMTP transport does, and never rides a connection logged in as another", async () => {
  const users = { alice: "secret", bob: "bobs-secret" };
  const transportAuth = { auth: { user: "alice", pass: "secret", method: "PLAIN" } };
  const reported = await eachTransport({ users }, () => transportAuth, async (transporter, server) => {
    await transporter.sendMail({ ...MAIL, to: "first@example.test" });
    await transporter.sendMail({ ...MAIL, to: "bob-mail@example.test", auth: { user: "bob", pass: "bobs-secret" } } as Mail.Options);
    const wrong = await transporter.sendMail({ ...MAIL, to: "never@example.test", auth: { user: "bob", pass: "wrong" } } as Mail.Options).catch((err: Error) => err);
    await transporter.sendMail({ ...MAIL, to: "last@example.test" });
    return { wrong: { code: (wrong as { code?: string }).code, responseCode: (wrong as { responseCode?: number }).responseCode }, delivered: server.messages.map((m) => m.to[0]) };
  });
  const facts = (r: Reported<unknown>) => [r.error, r.value];
  assert.equal(facts(reported["smtp-wire"]), facts(reported.smtp), "smtp-wire vs Nodemailer's SMTP transport");
  assert.equal((reported["smtp-wire"].value as { delivered: string[] }).delivered, ["first@example.test", "bob-mail@example.test", "last@example.test"]);
  // The pooled connection logged in as alice once and carried both of her mails; bob's went on connections of their own.
  assert.equal(
    reported["smtp-wire"].server.auths.map((a) => [a.username, a.ok]),
    [["alice", true], ["bob", true], ["bob", false]],
  );
  assert.equal((reported["smtp-wire"].value as { wrong: unknown }).wrong, { code: "EAUTH", responseCode: 535 });

  // Only the mail's auth, none for the transport.
  const alone = await eachTransport({ users }, () => ({}), (transporter, server) =>
    transporter.sendMail({ ...MAIL, auth: { user: "bob", pass: "bobs-secret", method: "PLAIN" } } as Mail.Options).then(() => server.auths.map((a) => [a.username, a.ok])),
  );
  assert.equal(alone["smtp-wire"].value, alone.smtp.value);
  assert.equal(alone["smtp-wire"].value, [["bob", true]]);
});

test("LMTP, one recipient refused at the end of data: the same info as Nodemailer's; every one refused: deliberate difference, ours fails EMESSAGE (Nodemailer resolves with accepted empty)", async () => {
  const lmtp = {
    lmtp: true,
    onData(stream: NodeJS.ReadableStream, session: { envelope: { rcptTo: { address: string }[] } }, callback: (err: Error | null, replies?: (string | Error)[]) => void) {
      stream.resume();
      stream.on("end", () => callback(null, session.envelope.rcptTo.map((r) => (r.address.startsWith("full") ? Object.assign(new Error("5.2.2 Mailbox full"), { responseCode: 552 }) : "2.0.0 delivered"))));
    },
  };
  const reported = await eachTransport(lmtp as never, () => ({ lmtp: true }), async (transporter) => ({
    partly: infoFacts(await transporter.sendMail({ ...MAIL, to: "a@example.test, full@example.test" })),
    none: (await transporter.sendMail({ ...MAIL, to: "full@example.test" }).then(infoFacts, (err: Error & Record<string, unknown>) => ({ ...refusalFacts(err), rejected: err.rejected }))) as Record<string, unknown>,
  }));
  sameAsNodemailer(reported, (r) => [r.error?.message, r.value?.partly], "LMTP info");
  assert.equal(reported["smtp-wire"].value!.partly.rejected, ["full@example.test"]);
  for (const kind of ["smtp", "pool"] as const) assert.equal(reported[kind].value!.none.accepted, [], `${kind} resolves`);
  const none = reported["smtp-wire"].value!.none as Record<string, unknown>;
  assert.equal([none.code, none.responseCode, none.rejected], ["EMESSAGE", 552, ["full@example.test"]]);
  assert.is(none.response, reported.smtp.value!.none.response);
});

const BIG = 16 * 1024 * 1024;

test("deliberate difference: a pooled mail whose connection broke under its body is sent again, whole, on a new connection (Nodemailer's transports fail it ECONNECTION)", async () => {
  const mail = { ...MAIL, attachments: [{ filename: "big.bin", content: Buffer.alloc(BIG, 0x5a) }] };
  const reported = await eachTransport(() => startDroppingServer("body"), () => ({ maxConnections: 1 }), async (transporter, server) => {
    const info = await transporter.sendMail(mail);
    assert.ok(server.state.dropped);
    return info;
  });
  for (const kind of ["smtp", "pool"] as const) {
    assert.equal(refusalFacts(reported[kind].error), { code: "ECONNECTION", responseCode: undefined, response: undefined, command: "CONN", recipient: undefined, permanent: undefined }, kind);
    assert.is(reported[kind].server.messages.length, 0, kind);
  }
  const ours = reported["smtp-wire"];
  assert.is(ours.error, undefined, String(ours.error));
  assert.equal((ours.value as { accepted: string[] }).accepted, ["a@example.test"]);
  assert.is(ours.server.messages.length, 1, "it arrives once");
  assert.ok(ours.server.messages[0]!.data.length > BIG * 1.3, "whole");
});

test("a connection broken once the end of data was written: ECONNECTION in all three, never sent again (ours says deliveryState unknown)", async () => {
  const reported = await eachTransport(() => startDroppingServer("end-of-data"), () => ({ maxConnections: 1 }), (transporter) => transporter.sendMail(MAIL));
  for (const kind of KINDS) {
    assert.is(reported[kind].error?.code, "ECONNECTION", kind);
    assert.is(reported[kind].server.messages.length, 0, `${kind}: not sent again`);
  }
  assert.is(reported["smtp-wire"].error?.deliveryState, "unknown");
});

test("a connection closed before its greeting: both pooled transports open another and deliver the mail once", async () => {
  const reported = await eachTransport(() => startDroppingServer("greeting"), () => ({ maxConnections: 1 }), (transporter) => transporter.sendMail(MAIL));
  for (const kind of POOLED) {
    assert.is(reported[kind].error, undefined, `${kind}: ${reported[kind].error}`);
    assert.is(reported[kind].server.messages.length, 1, kind);
  }
  // Nodemailer's SMTP transport has one connection per mail, and fails with it.
  assert.is(reported.smtp.error?.code, "ECONNECTION");
});

test("maxRequeues: -1 means without limit, as in Nodemailer's pool: a server that closes six connections in a row before its greeting still gets the mail", async () => {
  const reported = await eachTransport(() => startDroppingServer("greeting", 6), () => ({ maxConnections: 1, maxRequeues: -1 }), (transporter) => transporter.sendMail(MAIL), POOLED);
  for (const kind of POOLED) {
    assert.is(reported[kind].error, undefined, `${kind}: ${reported[kind].error}`);
    assert.is(reported[kind].server.messages.length, 1, kind);
  }
});

test("'clear' once the last connection ended (here on its idle timeout) with nothing pending, as Nodemailer's pooled transport emits it", async () => {
  const reported = await eachTransport({}, () => ({ maxConnections: 1, idleTimeout: 100 }), async (transporter, server) => {
    const cleared = once(transporter, "clear");
    await transporter.sendMail(MAIL);
    await settlesWithin(cleared, 10_000, "'clear'");
    return server.messages.length;
  }, POOLED);
  for (const kind of POOLED) assert.is(reported[kind].value, 1, `${kind}: ${reported[kind].error}`);
});

leakCheckTest(test, unhandled);
test.run();
