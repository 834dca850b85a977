/**
 * The streaming relay (examples/relay/): smtp-wire as the inbound client, the relay in
 * this process, smtp-server or the fault server as the upstream.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect as netConnect } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createHash } from "node:crypto";
import type { SMTPServerSession } from "smtp-server";
import { SMTPConnection, SMTPError, type SMTPConnectionOptions } from "../../lib/index.js";
import { createRelay, type RelayOptions } from "../../examples/relay/relay.js";
import { startServer, type TestServerOptions } from "../helpers/server.js";
import { startFaultServer, greetAndEhlo, acceptEnvelope } from "../helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const MiB = 1024 * 1024;
const message = "From: a@example.test\r\nSubject: relayed\r\n\r\nHello through the relay.\r\n.dot line\r\n";

async function startRelay(upstreamPort: number, options: Partial<RelayOptions> = {}): Promise<{ port: number; close(): Promise<void> }> {
  const relay = createRelay({ upstream: { host: "127.0.0.1", port: upstreamPort, name: "relay.example.test", maxRequeues: 1 }, ...options });
  const { port } = await relay.listen(0);
  return { port, close: () => relay.close() };
}

async function client(port: number, options: SMTPConnectionOptions = {}): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: "127.0.0.1", port, name: "sender.example.test", ...options });
  await conn.connect();
  return conn;
}

async function failure(promise: Promise<unknown>): Promise<SMTPError> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, SMTPError);
    return err as SMTPError;
  }
  throw new Error("expected a failure");
}

/** An upstream smtp-server that records the session each MAIL FROM arrived in. */
async function upstream(options: TestServerOptions = {}) {
  const sessions: SMTPServerSession[] = [];
  const server = await startServer({
    onMailFrom(_address, session, callback) {
      sessions.push({ ...session, xClient: new Map(session.xClient), xForward: new Map(session.xForward) });
      callback();
    },
    ...options,
  });
  return Object.assign(server, { sessions });
}

test("a message goes through byte-exact, the final reply is the upstream's, and XCLIENT names the original client", async () => {
  const up = await upstream({ useXClient: true });
  const relay = await startRelay(up.port);
  const conn = await client(relay.port);
  const info = await conn.send({ from: "a@example.test", to: ["b@example.test", "c@example.test"] }, message);
  assert.is(up.messages.length, 1);
  assert.is(up.messages[0]!.data.toString(), message);
  assert.equal(up.messages[0]!.to, ["b@example.test", "c@example.test"]);
  // The upstream (smtp-server with enhanced codes on) says "250 2.6.0 2.0.0 Ok: queued".
  assert.is(info.response, "250 2.6.0 2.0.0 Ok: queued", "the upstream's final reply, passed through");
  const session = up.sessions[0]!;
  assert.is(session.hostNameAppearsAs, "sender.example.test", "EHLO upstream repeats the client's HELO");
  assert.is(session.xClient.get("ADDR:DEFAULT"), "127.0.0.1", "the relay connected from loopback…");
  assert.is(session.remoteAddress, "127.0.0.1", "…and handed over the client's address");
  assert.ok(session.xClient.has("HELO") && session.xClient.get("PROTO") === "ESMTP");
  // A second message on the same inbound session reuses the upstream session.
  await conn.send({ from: "a@example.test", to: "d@example.test" }, message);
  assert.is(up.messages.length, 2);
  assert.is(up.commands.filter((c) => c.startsWith("XCLIENT")).length, 1);
  await conn.quit();
  await relay.close();
  await up.close();
});


test("DSN requests are passed on: RET and ENVID with MAIL, each recipient's NOTIFY and ORCPT with its RCPT", async () => {
  const up = await upstream();
  const relay = await startRelay(up.port);
  const conn = await client(relay.port);
  try {
    await conn.send({ from: "a@example.test", to: ["b@example.test"], dsn: { ret: "HDRS", envid: "env 1+x", notify: ["SUCCESS", "FAILURE"], orcpt: "rfc822;Orig B@example.test" } }, message);
    await conn.send({ from: "a@example.test", to: ["c@example.test"] }, message);
    const mails = up.commands.filter((c) => c.startsWith("MAIL FROM"));
    const rcpts = up.commands.filter((c) => c.startsWith("RCPT TO"));
    assert.is(mails[0], "MAIL FROM:<a@example.test> RET=HDRS ENVID=env+201+2Bx");
    assert.is(rcpts[0], "RCPT TO:<b@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Orig+20B@example.test");
    assert.is(mails[1], "MAIL FROM:<a@example.test>", "none asked for, none passed on");
    assert.is(rcpts[1], "RCPT TO:<c@example.test>");
  } finally {
    await conn.quit();
    await relay.close();
    await up.close();
  }
});
test("inbound sessions one after another share one upstream connection from the pool", async () => {
  const up = await upstream();
  const relay = await startRelay(up.port);
  for (let i = 0; i < 3; i++) {
    const conn = await client(relay.port);
    await conn.send({ from: "a@example.test", to: `r${i}@example.test` }, message);
    await conn.quit();
  }
  assert.is(up.messages.length, 3);
  assert.is(up.commands.filter((c) => c.startsWith("EHLO")).length, 1, "one upstream session");
  await relay.close();
  await up.close();
});

test("an upstream session that carried XCLIENT is not reused for another client", async () => {
  const up = await upstream({ useXClient: true });
  const relay = await startRelay(up.port);
  for (let i = 0; i < 2; i++) {
    const conn = await client(relay.port);
    await conn.send({ from: "a@example.test", to: `r${i}@example.test` }, message);
    await conn.quit();
  }
  assert.is(up.commands.filter((c) => c.startsWith("XCLIENT")).length, 2, "each client introduced on its own upstream session");
  await relay.close();
  await up.close();
});

test("without XCLIENT the relay sends XFORWARD before each transaction", async () => {
  const up = await upstream({ useXForward: true });
  const relay = await startRelay(up.port);
  const conn = await client(relay.port);
  await conn.send({ from: "a@example.test", to: "b@example.test" }, message);
  await conn.send({ from: "a@example.test", to: "b@example.test" }, message);
  assert.is(up.sessions[0]!.xForward.get("HELO"), "sender.example.test");
  assert.is(up.sessions[0]!.xForward.get("PROTO"), "ESMTP");
  assert.is(up.sessions[1]!.xForward.get("ADDR"), "127.0.0.1");
  assert.is(up.commands.filter((c) => c.startsWith("XFORWARD")).length, 2);
  await conn.quit();
  await relay.close();
  await up.close();
});

test("each refused recipient is refused to the client with the upstream's code and text", async () => {
  const up = await upstream({ refuseRecipients: ["nobody@example.test"] });
  const relay = await startRelay(up.port);
  const conn = await client(relay.port);
  const info = await conn.send({ from: "a@example.test", to: ["b@example.test", "nobody@example.test"] }, message);
  assert.equal(info.accepted, ["b@example.test"]);
  assert.equal(info.rejected, ["nobody@example.test"]);
  assert.is(info.rejectedErrors![0]!.responseCode, 550);
  assert.match(info.rejectedErrors![0]!.response!, /User unknown/);
  assert.equal(up.messages[0]!.to, ["b@example.test"]);
  const all = await failure(conn.send({ from: "a@example.test", to: "nobody@example.test" }, message));
  assert.is(all.code, "EENVELOPE");
  assert.is(all.responseCode, 550);
  await conn.quit();
  await relay.close();
  await up.close();
});

test("a refused sender is refused to the client with the upstream's code", async () => {
  const up = await upstream({ refuseSenders: ["spam@example.test"] });
  const relay = await startRelay(up.port);
  const conn = await client(relay.port);
  const err = await failure(conn.send({ from: "spam@example.test", to: "b@example.test" }, message));
  assert.is(err.code, "EENVELOPE");
  assert.is(err.responseCode, 550);
  assert.match(err.response!, /Sender refused/);
  // RSET and a new MAIL work on the same inbound session.
  await conn.send({ from: "ok@example.test", to: "b@example.test" }, message);
  assert.is(up.messages.length, 1);
  await conn.quit();
  await relay.close();
  await up.close();
});

test("an upstream failure mid-body gives the client a 4xx, and no partial mail is completed upstream", async () => {
  const up = await startFaultServer([
    ...greetAndEhlo(["PIPELINING"]),
    ...acceptEnvelope(),
    { expectData: true, closeAfter: 256 * 1024 },
  ]);
  const relay = await startRelay(up.port);
  const conn = await client(relay.port);
  const big = Buffer.alloc(4 * MiB, "relay body line\r\n");
  const err = await failure(conn.send({ from: "a@example.test", to: "b@example.test" }, big));
  assert.is(err.code, "EMESSAGE");
  assert.ok(err.responseCode! >= 400 && err.responseCode! < 500, `a 4xx, got ${err.responseCode}`);
  assert.is(err.temporary, true);
  const received = Buffer.concat(up.connections[0]!.data);
  assert.ok(received.length >= 256 * 1024);
  assert.is(received.indexOf("\r\n.\r\n"), -1, "no end of data went upstream");
  await conn.quit();
  await relay.close();
  await up.close();
});

test("an unreachable upstream is a 421 at the client's greeting", async () => {
  const gone = await startFaultServer([]);
  const port = gone.port;
  await gone.close();
  const relay = await startRelay(port);
  const err = await failure(client(relay.port));
  assert.is(err.code, "ECONNECTION");
  assert.is(err.responseCode, 421);
  await relay.close();
});

test("a client that disconnects mid-body leaves no message upstream", async () => {
  let started!: () => void;
  const bodyStarted = new Promise<void>((resolve) => (started = resolve));
  const up = await upstream({ onChunk: () => started(), keepData: false });
  const relay = await startRelay(up.port);
  const socket = netConnect(relay.port, "127.0.0.1");
  let text = "";
  socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
  /** Waits for the next complete reply with `code`. */
  const reply = async (code: string) => {
    for (let i = 0; i < 500 && !new RegExp(`(^|\\n)${code} `).test(text); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.match(text, new RegExp(`(^|\\n)${code} `), text);
    text = "";
  };
  await reply("220");
  for (const [line, code] of [["EHLO raw.example.test", "250"], ["MAIL FROM:<a@example.test>", "250"], ["RCPT TO:<b@example.test>", "250"], ["DATA", "354"]] as const) {
    socket.write(`${line}\r\n`);
    await reply(code);
  }
  socket.write("Subject: cut\r\n\r\n" + "partial line\r\n".repeat(10000));
  await bodyStarted;
  socket.destroy();
  // The upstream sees its connection closed without the end of data.
  for (let i = 0; i < 400 && up.server.connections.size > 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.is(up.server.connections.size, 0, "the upstream connection was closed");
  assert.is(up.messages.length, 0);
  await relay.close();
  await up.close();
});

test("a paused upstream stops the client: nothing is spooled, and the message completes when it reads again", async () => {
  let paused = true;
  const waiting: (() => void)[] = [];
  const hash = createHash("sha256");
  let received = 0;
  const up = await upstream({
    onData(stream, _session, callback) {
      const pump = () => {
        if (paused) return waiting.push(pump);
        stream.resume();
      };
      stream.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        received += chunk.length;
      });
      stream.on("end", () => callback(null, "2.0.0 taken"));
      stream.pause();
      pump();
    },
  });
  const relay = await startRelay(up.port);
  const conn = await client(relay.port);
  const total = 64 * MiB;
  let produced = 0;
  const sent = createHash("sha256");
  const source = new Readable({
    read() {
      if (produced >= total) return void this.push(null);
      // 16-byte lines, so every chunk ends with CRLF and the bytes arrive unchanged.
      const chunk = Buffer.alloc(64 * 1024, `${String(produced).padStart(14, "0")}\r\n`);
      produced += chunk.length;
      sent.update(chunk);
      this.push(chunk);
    },
  });
  const out = conn.createSendStream({ from: "a@example.test", to: "b@example.test" });
  const done = pipeline(source, out);
  // Wait until the client's source stops being read (the whole chain is full)…
  let last = -1;
  while (produced !== last) {
    last = produced;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.ok(produced < 24 * MiB, `with the upstream paused the client got only ${(produced / MiB).toFixed(1)} MiB of 64 into the chain`);
  paused = false;
  for (const resume of waiting.splice(0)) resume();
  await done;
  assert.is(received, total);
  assert.is(hash.digest("hex"), sent.digest("hex"));
  assert.is(out.info!.response, "250 2.6.0 2.0.0 taken", "the upstream's final reply");
  await conn.quit();
  await relay.close();
  await up.close();
});

leakCheckTest(test, unhandled);
test.run();
