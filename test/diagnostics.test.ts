/**
 * node:diagnostics_channel (issue 10): a tracing channel per send whose error carries the
 * deliveryState, and a channel per command and per reply with credentials masked; nothing
 * built when nobody subscribes. Against smtp-server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { channel, tracingChannel } from "node:diagnostics_channel";
import { SMTPConnection, type CommandMessage, type ReplyMessage, type SendTrace, type SMTPError } from "../lib/index.js";
import { traceSend } from "../lib/diagnostics.js";
import { startServer } from "./helpers/server.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";

const unhandled = trackUnhandled();

test("a send is traced (start, asyncEnd with the SendInfo, error with deliveryState), and every command and reply is published, credentials masked", async () => {
  const server = await startServer({ users: { alice: "s3cret-pass" }, refuseRecipients: ["nobody@example.test"] });
  const events: [string, SendTrace][] = [];
  const commands: CommandMessage[] = [];
  const replies: ReplyMessage[] = [];
  const trace = tracingChannel<SendTrace>("smtp-wire:send");
  const handlers = {
    start: (ctx: SendTrace) => void events.push(["start", ctx]),
    end: () => {},
    asyncStart: () => {},
    asyncEnd: (ctx: SendTrace) => void events.push(["asyncEnd", ctx]),
    error: (ctx: SendTrace) => void events.push(["error", ctx]),
  };
  const onCommand = (message: unknown) => void commands.push(message as CommandMessage);
  const onReply = (message: unknown) => void replies.push(message as ReplyMessage);
  trace.subscribe(handlers);
  channel("smtp-wire:command").subscribe(onCommand);
  channel("smtp-wire:reply").subscribe(onReply);
  try {
    const conn = new SMTPConnection({ host: "127.0.0.1", port: server.port });
    await conn.connect();
    await conn.login({ user: "alice", pass: "s3cret-pass", method: "PLAIN" });
    const good = { from: "a@example.test", to: ["b@example.test"] };
    const bad = { from: "a@example.test", to: ["nobody@example.test"] };
    const info = await conn.send(good, "Subject: traced\r\n\r\nhi\r\n");
    const err = (await conn.send(bad, "x").catch((e: unknown) => e)) as SMTPError;
    await conn.quit();

    assert.equal(
      events.map(([kind, ctx]) => [kind, ctx.envelope]),
      [
        ["start", good],
        ["asyncEnd", good],
        ["start", bad],
        ["error", bad],
        ["asyncEnd", bad],
      ],
    );
    const [, first] = events[0]!;
    assert.is(first.connectionId, conn.id);
    assert.is(first.port, server.port);
    assert.is(first.result, info, "the traced result is the send's SendInfo");
    const [, failed] = events[3]!;
    assert.is(failed.error, err);
    assert.is(failed.error!.deliveryState, "not-sent");

    const lines = commands.map((c) => c.line);
    assert.ok(lines.includes("AUTH PLAIN /* secret */"), `the AUTH line is masked: ${JSON.stringify(lines)}`);
    const secret = Buffer.from("\0alice\0s3cret-pass").toString("base64");
    assert.not.ok(lines.some((line) => line.includes(secret) || line.includes("s3cret-pass")), "no credential is published");
    assert.ok(lines.some((line) => line.startsWith("MAIL FROM:<a@example.test>")));
    assert.ok(commands.every((c) => c.connectionId === conn.id));
    const auth = replies.find((r) => r.command === "AUTH PLAIN");
    assert.is(auth?.code, 235);
    assert.is(replies[0]!.command, "CONN", "the greeting answers no command");
    assert.is(replies[0]!.code, 220);
    const refusal = replies.find((r) => r.code === 550);
    assert.equal([refusal?.command, refusal?.enhancedCode], ["RCPT TO", "5.1.1"]);
  } finally {
    trace.unsubscribe(handlers);
    channel("smtp-wire:command").unsubscribe(onCommand);
    channel("smtp-wire:reply").unsubscribe(onReply);
    await server.close();
  }
});

test("nobody subscribed: a send runs untraced, its trace context is never built", async () => {
  let built = 0;
  const sending = Promise.resolve({} as never);
  const returned = traceSend(
    () => sending,
    () => {
      built++;
      return {} as SendTrace;
    },
  );
  assert.is(returned, sending, "the send's own promise, no wrapper");
  await returned;
  assert.is(built, 0);
});

leakCheckTest(test, unhandled);

test.run();
