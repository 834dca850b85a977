/**
 * smtp-wire/nodemailer through Nodemailer's own Mail API against a real smtp-server: the
 * same sendMail calls through Nodemailer's SMTP transport and through ours deliver the
 * same envelopes and bytes; info has Nodemailer's shape plus smtp-wire's fields; verify,
 * close, isIdle, 'idle', signals, refusals and credentials.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Readable } from "node:stream";
import { once } from "node:events";
import nodemailer from "nodemailer";
import type Mail from "nodemailer/lib/mailer";
import { smtpWire, SmtpWireTransport } from "../../lib/nodemailer/index.js";
import { SMTPError } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { startDroppingServer } from "./side-by-side.js";
import { settlesWithin, until } from "../helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();

/** The mails both transports send: text, HTML, attachments from a Buffer and from streams, an explicit envelope, DSN. */
function mails(): Mail.Options[] {
  const fixed = (n: number): Mail.Options => ({ messageId: `<fixed-${n}@example.test>`, date: new Date("2026-01-02T03:04:05Z"), baseBoundary: `boundary${n}` }) as Mail.Options;
  return [
    { ...fixed(1), from: "Sender <sender@example.test>", to: "a@example.test, B <b@example.test>", subject: "plain", text: "hello\r\n.\r\na dot line\r\n" },
    { ...fixed(2), from: "sender@example.test", to: ["c@example.test"], cc: "d@example.test", subject: "html", html: "<p>ünïcödé</p>", text: "unicode" },
    {
      ...fixed(3),
      from: "sender@example.test",
      to: "e@example.test",
      subject: "attachments",
      text: "see attached",
      attachments: [
        { filename: "a.bin", content: Buffer.alloc(3000, 7) },
        { filename: "b.txt", content: Readable.from(["line one\n", "line two\n"]) },
      ],
    },
    { ...fixed(4), from: "sender@example.test", to: "f@example.test", envelope: { from: "bounce@example.test", to: ["g@example.test"] }, subject: "envelope", text: "x" },
    { ...fixed(5), from: "sender@example.test", to: "h@example.test", subject: "dsn", text: "x", dsn: { id: "env-5", return: "headers", notify: ["failure", "delay"], recipient: "sender@example.test" } },
  ];
}

function serverOptions() {
  return { host: "127.0.0.1", secure: false, ignoreTLS: true } as const;
}

test("the same sendMail calls through Nodemailer's SMTP transport and through ours deliver the same envelopes and bytes", async () => {
  const theirs = await startServer();
  const ours = await startServer();
  const reference = nodemailer.createTransport({ ...serverOptions(), port: theirs.port });
  const wire = nodemailer.createTransport(smtpWire({ ...serverOptions(), port: ours.port }));
  try {
    for (const mail of mails()) await reference.sendMail(mail);
    for (const mail of mails()) await wire.sendMail(mail);
    assert.is(ours.messages.length, theirs.messages.length);
    ours.messages.forEach((message, i) => {
      const other = theirs.messages[i]!;
      assert.is(message.from, other.from, `mail ${i + 1}: MAIL FROM`);
      assert.equal(message.to, other.to, `mail ${i + 1}: RCPT TO`);
      assert.equal(message.mailParams, other.mailParams, `mail ${i + 1}: MAIL parameters`);
      assert.equal(message.rcptParams, other.rcptParams, `mail ${i + 1}: RCPT parameters`);
      assert.is(message.data.toString("latin1"), other.data.toString("latin1"), `mail ${i + 1}: the message bytes`);
    });
    assert.equal(ours.messages[3]!.to, ["g@example.test"]);
    assert.is(ours.messages[3]!.from, "bounce@example.test");
  } finally {
    reference.close();
    await wire.close();
    await theirs.close();
    await ours.close();
  }
});

test("info has Nodemailer's shape (envelope, messageId, accepted, rejected, response) and smtp-wire's SendInfo", async () => {
  const server = await startServer({ refuseRecipients: ["nobody@example.test"] });
  const transport = nodemailer.createTransport(smtpWire({ ...serverOptions(), port: server.port }));
  try {
    const info = (await transport.sendMail({ from: "sender@example.test", to: "a@example.test, nobody@example.test", subject: "s", text: "t", messageId: "<id-1@example.test>" })) as unknown as Record<string, unknown>;
    assert.equal(info.envelope, { from: "sender@example.test", to: ["a@example.test", "nobody@example.test"] });
    assert.is(info.messageId, "<id-1@example.test>");
    assert.equal(info.accepted, ["a@example.test"]);
    assert.equal(info.rejected, ["nobody@example.test"]);
    assert.is((info.rejectedErrors as SMTPError[])[0]!.responseCode, 550);
    assert.match(String(info.response), /^250 /);
    assert.type(info.messageSize, "number");
    assert.ok(Array.isArray(info.ehlo));
  } finally {
    await transport.close();
    await server.close();
  }
});

test("sendMail with a callback calls it once; a refused message is an SMTPError with its deliveryState", async () => {
  const server = await startServer({ refuseRecipients: ["nobody@example.test"] });
  const transport = nodemailer.createTransport(smtpWire({ ...serverOptions(), port: server.port }));
  try {
    const [err, info] = await new Promise<[Error | null, unknown]>((resolve) => transport.sendMail({ from: "s@example.test", to: "nobody@example.test", text: "x" }, (e, i) => resolve([e, i])));
    assert.instance(err, SMTPError);
    assert.is((err as SMTPError).code, "EENVELOPE");
    assert.is(info, undefined);
    assert.is(server.messages.length, 0);
  } finally {
    await transport.close();
    await server.close();
  }
});

test("verify, isIdle, 'idle', pendingCount and close pass through to the pool", async () => {
  const server = await startServer({ users: { alice: "secret" } });
  const options = { ...serverOptions(), port: server.port, auth: { user: "alice", pass: "secret" }, pool: { maxConnections: 2, maxQueued: 2 } };
  const raw = smtpWire(options);
  const transport = nodemailer.createTransport(raw);
  try {
    await once(transport, "idle");
    assert.is(await transport.verify(), true);
    assert.ok(transport.isIdle());
    const sends = Array.from({ length: 6 }, (_, n) => transport.sendMail({ from: "s@example.test", to: `r${n}@example.test`, text: `n${n}` }));
    await until(() => raw.pendingCount() > 0, "the sends reach the transport");
    await Promise.all(sends);
    assert.is(raw.pendingCount(), 0);
    assert.is(server.messages.length, 6);
    assert.ok(server.auths.every((a) => a.ok && a.username === "alice"));
    const bad = nodemailer.createTransport(smtpWire({ ...serverOptions(), port: server.port, auth: { user: "alice", pass: "wrong" } }));
    const err = await new Promise<Error | null>((resolve) => bad.verify((e) => resolve(e)));
    assert.is((err as SMTPError).code, "EAUTH");
    await bad.close();
  } finally {
    await transport.close();
    await server.close();
  }
});

test("top-level pool settings (Nodemailer's pooled transport style) are taken too", async () => {
  const raw = new SmtpWireTransport({ host: "127.0.0.1", port: 9, maxConnections: 7, maxMessages: 3, rateLimit: 2, rateDelta: 500, idleTimeout: 1000, maxRequeues: -1, pool: true } as never);
  assert.equal({ ...raw.pool.limits }, { maxConnections: 7, maxMessages: 3, rateLimit: 2, rateDelta: 500, idleTimeout: 1000, maxRequeues: Infinity, maxQueued: 7 });
  assert.is(raw.name, "smtp-wire");
  assert.ok(raw.isIdle());
  await raw.close();
  assert.not.ok(raw.isIdle(), "closed: a producer that sends while isIdle() stops (Nodemailer's pooled transport still says true)");
  const nested = new SmtpWireTransport({ host: "127.0.0.1", port: 9, maxConnections: 7, pool: { maxConnections: 2, maxQueued: 10 } });
  assert.is(nested.pool.limits.maxConnections, 2, "settings under pool win over the top level");
  assert.is(nested.pool.limits.maxQueued, 10);
  await nested.close();
  assert.ok(raw.supportsAbortSignal);
  await raw.close();
});

test("url: the same smtp:// url through Nodemailer's transport and ours logs in and delivers the same", async () => {
  const theirs = await startServer({ users: { "al@ice": "se:c@ret" } });
  const ours = await startServer({ users: { "al@ice": "se:c@ret" } });
  const url = (port: number) => `smtp://al%40ice:se%3Ac%40ret@127.0.0.1:${port}/?ignoreTLS=true&maxConnections=1&tls.rejectUnauthorized=false`;
  const reference = nodemailer.createTransport({ url: url(theirs.port), pool: true });
  const raw = smtpWire({ url: url(ours.port) });
  const wire = nodemailer.createTransport(raw);
  try {
    const mail = { from: "s@example.test", to: "r@example.test", subject: "url", text: "x", messageId: "<url@example.test>", date: new Date(0) };
    await reference.sendMail(mail);
    await wire.sendMail(mail);
    assert.is(raw.pool.limits.maxConnections, 1, "a numeric query value is a number");
    assert.is(raw.pool.options.ignoreTLS, true, "a boolean query value is a boolean");
    assert.equal(raw.pool.options.tls, { rejectUnauthorized: false }, "tls.x keys go under tls");
    assert.equal(ours.auths.map((a) => [a.username, a.ok]), theirs.auths.map((a) => [a.username, a.ok]));
    assert.equal(ours.auths.map((a) => a.username), ["al@ice"], "credentials are percent-decoded");
    assert.is(ours.messages[0]!.data.toString(), theirs.messages[0]!.data.toString());
    assert.throws(() => smtpWire({ url: "http://example.test" }), /smtp:\/\/ or smtps:\/\//);
    assert.throws(() => smtpWire({ url: "not a url" }), /Not a connection url/);
  } finally {
    reference.close();
    await wire.close();
    await theirs.close();
    await ours.close();
  }
});

test("service: a well-known name resolves to the host, port and secure Nodemailer's own transport uses; an unknown one is refused", async () => {
  for (const service of ["Gmail", "Outlook365", "someone@hotmail.com"]) {
    const reference = nodemailer.createTransport({ service, pool: true });
    const { options } = reference.transporter as unknown as { options: { host?: string; port?: number; secure?: boolean } };
    const raw = smtpWire({ service, port: 1, host: "ignored.example" });
    assert.ok(options.host, `${service}: Nodemailer knows it`);
    assert.is(raw.pool.options.host, options.host, `${service}: host`);
    assert.is(raw.pool.options.port, options.port, `${service}: port`);
    assert.is(Boolean(raw.pool.options.secure), Boolean(options.secure), `${service}: secure`);
    reference.close();
    await raw.close();
  }
  assert.throws(() => smtpWire({ service: "No Such Mail Service" }), /Unknown service/);
});

const BIG = 16 * 1024 * 1024;

test("a mail whose connection dropped under its body is composed and sent again, and arrives once, whole", async () => {
  const server = await startDroppingServer("body");
  const transport = nodemailer.createTransport(smtpWire({ ...serverOptions(), port: server.port, pool: { maxConnections: 1, maxRequeues: 2 } }));
  try {
    const attachment = Buffer.alloc(BIG, 0x5a);
    const info = (await settlesWithin(transport.sendMail({ from: "s@example.test", to: "r@example.test", subject: "big", text: "x", attachments: [{ filename: "big.bin", content: attachment }] }), 30_000, "the re-sent mail")) as unknown as { accepted: string[] };
    assert.ok(server.state.dropped, "the first connection was dropped mid-body");
    assert.equal(info.accepted, ["r@example.test"]);
    assert.is(server.messages.length, 1);
    const body = server.messages[0]!.data.toString("latin1");
    assert.ok(body.includes("filename=big.bin"), "the whole mail");
    assert.ok(body.length > BIG * 1.3, `the whole attachment, base64 (${body.length} bytes)`);
  } finally {
    await transport.close();
    await server.close();
  }
});

test("the same, with an attachment read from a stream (which cannot be read twice): ESTREAM, not-sent, nothing delivered", async () => {
  const server = await startDroppingServer("body");
  const transport = nodemailer.createTransport(smtpWire({ ...serverOptions(), port: server.port, pool: { maxConnections: 1, maxRequeues: 2 } }));
  try {
    const chunks = Array.from({ length: BIG / 65536 }, () => Buffer.alloc(65536, 0x5a));
    const sending = transport.sendMail({ from: "s@example.test", to: "r@example.test", subject: "big", text: "x", attachments: [{ filename: "big.bin", content: Readable.from(chunks) }] });
    const err = (await settlesWithin(sending.then(() => assert.unreachable("resolved"), (e: unknown) => e), 30_000, "the second attempt")) as SMTPError;
    assert.ok(server.state.dropped);
    assert.is(err.code, "ESTREAM");
    assert.is(err.deliveryState, "not-sent");
    assert.is(server.messages.length, 0);
    await transport.sendMail({ from: "s@example.test", to: "r@example.test", text: "after" });
    assert.is(server.messages.length, 1, "the transport goes on");
  } finally {
    await transport.close();
    await server.close();
  }
});

test("sendMail({ signal }): aborted while it waits for a connection, it fails with AbortError and sends nothing", async () => {
  const server = await startServer();
  const raw = smtpWire({ ...serverOptions(), port: server.port, pool: { maxConnections: 1 } });
  const transport = nodemailer.createTransport(raw);
  try {
    const lease = await raw.pool.acquire();
    const controller = new AbortController();
    const sending = transport.sendMail({ from: "s@example.test", to: "r@example.test", text: "never", signal: controller.signal } as Mail.Options);
    await until(() => raw.pendingCount() === 1, "the mail queued");
    controller.abort();
    const err = (await settlesWithin(sending.catch((e: unknown) => e), 5000, "the aborted send")) as Error & { code?: string; deliveryState?: string };
    assert.is(err.name, "AbortError");
    assert.is(err.code, "EABORT");
    assert.is(err.deliveryState, "not-sent");
    lease.release();
    await transport.sendMail({ from: "s@example.test", to: "r@example.test", text: "after" });
    assert.is(server.messages.length, 1);
    assert.match(server.messages[0]!.data.toString(), /after/);
    const already = new AbortController();
    already.abort();
    const early = (await transport.sendMail({ from: "s@example.test", to: "r@example.test", text: "x", signal: already.signal } as Mail.Options).catch((e: unknown) => e)) as Error;
    assert.is(early.name, "AbortError");
  } finally {
    await transport.close();
    await server.close();
  }
});

test("sendMail({ signal }) aborted mid-body: AbortError, not-sent, nothing delivered, the next mail goes out", async () => {
  let bodyBytes = 0;
  const server = await startServer({ size: 0, keepData: false, slowReadMs: 20, slowEvery: 64 * 1024, onChunk: (chunk) => (bodyBytes += chunk.length) });
  const transport = nodemailer.createTransport(smtpWire({ ...serverOptions(), port: server.port, pool: { maxConnections: 1 } }));
  try {
    const controller = new AbortController();
    let produced = 0;
    const attachment = new Readable({
      read() {
        produced += 64 * 1024;
        this.push(produced > 32 * 1024 * 1024 ? null : Buffer.alloc(64 * 1024, 0x41));
      },
    });
    const sending = transport.sendMail({ from: "s@example.test", to: "r@example.test", text: "big", attachments: [{ filename: "big.bin", content: attachment }], signal: controller.signal } as Mail.Options);
    await until(() => bodyBytes > 0, "the body reaching the server");
    controller.abort();
    const err = (await settlesWithin(sending.catch((e: unknown) => e), 10_000, "the aborted send")) as Error & { code?: string; deliveryState?: string };
    assert.is(err.name, "AbortError");
    assert.is(err.deliveryState, "not-sent");
    assert.ok(produced < 32 * 1024 * 1024, "the attachment stopped being read");
    await transport.sendMail({ from: "s@example.test", to: "r@example.test", text: "after" });
    assert.is(server.messages.length, 1, "only the mail after the abort was delivered");
  } finally {
    await transport.close();
    await server.close();
  }
});

test("a signal aborted after the transport took the mail but before it is dispatched is honoured by the transport", async () => {
  const server = await startServer();
  const raw = smtpWire({ ...serverOptions(), port: server.port });
  const controller = new AbortController();
  controller.abort();
  const errors: Error[] = [];
  // Called as Nodemailer would once its own checks passed: the transport owns the signal now.
  await new Promise<void>((resolve) => {
    raw.send(
      {
        data: { signal: controller.signal },
        message: { getEnvelope: () => ({ from: "s@example.test", to: ["r@example.test"] }), messageId: () => "<x@example.test>", createReadStream: () => Readable.from(["Subject: x\r\n\r\nx\r\n"]) },
      },
      (err) => {
        if (err) errors.push(err);
        resolve();
      },
    );
  });
  assert.is(errors[0]?.name, "AbortError");
  assert.is(server.messages.length, 0);
  await raw.close();
  await server.close();
});

test("a mail whose composition fails reaches the callback, not the process", async () => {
  const server = await startServer();
  const raw = smtpWire({ ...serverOptions(), port: server.port });
  const err = await new Promise<Error | null>((resolve) =>
    raw.send(
      {
        data: {},
        message: {
          getEnvelope: () => {
            throw new Error("bad address list");
          },
          messageId: () => "",
          createReadStream: () => Readable.from([]),
        },
      },
      (e) => resolve(e),
    ),
  );
  assert.match(String(err), /bad address list/);
  await raw.close();
  await server.close();
});

test("a message stream that fails fails the mail with ESTREAM and leaves the pool working", async () => {
  const server = await startServer();
  const raw = smtpWire({ ...serverOptions(), port: server.port, pool: { maxConnections: 1 } });
  const transport = nodemailer.createTransport(raw);
  try {
    const failing = new Readable({
      read() {
        this.destroy(new Error("object store went away"));
      },
    });
    const err = (await transport.sendMail({ from: "s@example.test", to: "r@example.test", text: "x", attachments: [{ filename: "f", content: failing }] }).catch((e: unknown) => e)) as SMTPError;
    assert.match(String(err.message), /object store went away/);
    await transport.sendMail({ from: "s@example.test", to: "r@example.test", text: "next" });
    assert.is(server.messages.length, 1);
  } finally {
    await transport.close();
    await server.close();
  }
});

leakCheckTest(test, unhandled);
test.run();
