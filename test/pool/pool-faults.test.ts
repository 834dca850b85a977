/**
 * The pool against servers that drop connections: every message is delivered exactly
 * once, or reported `unknown` (it may have arrived once), or reported `not-sent` (it did
 * not arrive); never twice. Counted in what the server received.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Socket } from "node:net";
import { SMTPPool, SMTPError, type SendInfo } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { acceptPipelinedEnvelope, greetAndEhlo, startFaultServer, type Step } from "../helpers/fault-server.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { arrivals, envelopeOf, messageOf, seqOf, startCountingServer, until } from "./support.js";

const unhandled = trackUnhandled();
type Outcome = SendInfo | (SMTPError & { deliveryState?: string });

/** One message accepted, as a pipelining server sees it. */
const acceptedMessage: Step[] = [...acceptPipelinedEnvelope(), { expectData: true }, { send: "250 2.0.0 queued\r\n" }];
/** A whole session that accepts one message, then QUIT. */
const oneMessageSession: Step[] = [...greetAndEhlo(["PIPELINING"]), ...acceptedMessage, { expect: "QUIT" }, { send: "221 bye\r\n" }];

function settleAll(sends: Promise<SendInfo>[], what: string): Promise<Outcome[]> {
  return settlesWithin(Promise.all(sends.map((s) => s.then((info) => info as Outcome, (err: SMTPError) => err as Outcome))), 30_000, what);
}

test("a server that drops every 3rd connection: each message arrives once, or is reported unknown, never twice", async () => {
  const every = 3;
  const sockets = new Map<number, Socket>();
  const indexOf = new Map<string, number>();
  const messagesOn = new Map<number, number>();
  let connections = 0;
  let dropped = 0;
  const server = await startServer({
    onConnect(session, callback) {
      indexOf.set(session.id, connections++);
      callback();
    },
    onData(stream, session, callback) {
      const index = indexOf.get(session.id)!;
      const nth = (messagesOn.get(index) ?? 0) + 1;
      messagesOn.set(index, nth);
      // On a doomed connection, the second message is where it breaks, three ways in turn.
      const doomed = index % every === every - 1 && nth === 2;
      const way = dropped % 3;
      const socket = sockets.get(session.remotePort);
      const chunks: Buffer[] = [];
      let cut = false;
      stream.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        if (doomed && way === 0 && !cut) {
          // Mid-body: the terminator never arrives, nothing is delivered.
          cut = true;
          dropped++;
          socket?.destroy();
        }
      });
      stream.on("end", () => {
        if (cut) return;
        const data = Buffer.concat(chunks);
        if (doomed && way === 1) {
          // Delivered, but the reply never leaves: the client cannot know (unknown).
          dropped++;
          server.messages.push({ from: "", to: [], mailParams: {}, rcptParams: [], data, sizeExceeded: false });
          socket?.destroy();
          return;
        }
        server.messages.push({ from: "", to: [], mailParams: {}, rcptParams: [], data, sizeExceeded: false });
        callback(null, "2.0.0 Ok: queued");
        if (doomed && way === 2) {
          // Right after a reply: the next envelope finds the connection gone.
          dropped++;
          setImmediate(() => socket?.destroy());
        }
      });
    },
  });
  server.server.server.on("connection", (socket: Socket) => sockets.set(socket.remotePort!, socket));
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 3, maxMessages: 4, maxRequeues: 3 });
  try {
    const total = 60;
    const outcomes = await settleAll(Array.from({ length: total }, (_, n) => pool.send(envelopeOf(n), messageOf(n))), "60 sends");
    const counts = arrivals(server);
    assert.ok(dropped >= 3, `the server dropped ${dropped} connections`);
    let delivered = 0;
    outcomes.forEach((outcome, n) => {
      const arrived = counts.get(n) ?? 0;
      if (!(outcome instanceof Error)) {
        delivered++;
        assert.is(arrived, 1, `message ${n} was accepted and arrived ${arrived} times`);
        return;
      }
      const state = outcome.deliveryState;
      assert.ok(state === "unknown" || state === "not-sent" || state === "rejected", `message ${n}: deliveryState ${state}`);
      if (state === "unknown") assert.ok(arrived <= 1, `message ${n} (unknown) arrived ${arrived} times`);
      else assert.is(arrived, 0, `message ${n} (${state}) arrived ${arrived} times`);
    });
    assert.ok([...counts.values()].every((c) => c === 1), "no message arrived twice");
    assert.ok(delivered >= total - dropped * 2, `${delivered} of ${total} delivered with ${dropped} connections dropped`);
    assert.ok(connections > total / 4, "connections were replaced after maxMessages and after drops");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("an idle connection the server closed (421 and FIN) never eats the next message", async () => {
  const first: Step[] = [
    ...greetAndEhlo(["PIPELINING"]),
    ...acceptedMessage,
    { delayMs: 20 },
    { send: "421 4.4.2 idle for too long\r\n" },
    { close: true },
  ];
  const server = await startFaultServer((index) => (index === 0 ? first : oneMessageSession));
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1 });
  try {
    await pool.send(envelopeOf(1), messageOf(1));
    const closed = await server.connection(0);
    await closed.whenClosed;
    const info = await settlesWithin(pool.send(envelopeOf(2), messageOf(2)), 10_000, "the send after the idle close");
    assert.match(info.response, /queued/);
    assert.is(server.connections.length, 2);
    assert.is(server.connections[1]!.data.length, 1);
    assert.match(server.connections[1]!.data[0]!.toString(), /^X-Seq: 2\r\n/);
  } finally {
    await pool.close();
    await server.close();
  }
  server.assertNoScriptErrors();
});

test("a connection found dead as the next envelope goes out: the message goes out again on another one", async () => {
  const first: Step[] = [
    ...greetAndEhlo(["PIPELINING"]),
    ...acceptedMessage,
    // The server had given up on this session: it reads the next MAIL FROM and hangs up.
    { expect: /^MAIL FROM/ },
    { close: true },
  ];
  const server = await startFaultServer((index) => (index === 0 ? first : oneMessageSession));
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1 });
  try {
    await pool.send(envelopeOf(1), messageOf(1));
    const info = await settlesWithin(pool.send(envelopeOf(2), messageOf(2)), 10_000, "the re-queued send");
    assert.match(info.response, /queued/);
    assert.equal(
      server.connections.map((c) => c.data.map((d) => /^X-Seq: (\d+)/.exec(d.toString())![1])),
      [["1"], ["2"]],
      "each message once",
    );
  } finally {
    await pool.close();
    await server.close();
  }
  server.assertNoScriptErrors();
});

test("a server that drops every connection: the send fails not-sent after maxRequeues attempts, not forever", async () => {
  const script: Step[] = [...greetAndEhlo(["PIPELINING"]), { expect: /^MAIL FROM/ }, { close: true }];
  const server = await startFaultServer(script);
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1, maxRequeues: 2 });
  try {
    const err = (await settlesWithin(pool.send(envelopeOf(1), messageOf(1)), 10_000, "the send").catch((e: unknown) => e)) as SMTPError & { deliveryState?: string };
    assert.instance(err, SMTPError);
    assert.is(err.code, "ECONNECTION");
    assert.is(err.deliveryState, "not-sent");
    assert.is(server.connections.length, 3, "the first attempt and two more");
  } finally {
    await pool.close();
    await server.close();
  }
});

test("a server that refuses connections (421 too many) gets fewer; no message fails for it", async () => {
  let refused = 0;
  const server = await startCountingServer({
    onConnect(_session, callback) {
      // One session at a time; the counting wrapper has counted this one already.
      if (server.open > 1) {
        refused++;
        return callback(Object.assign(new Error("4.7.0 Too many connections, slow down"), { responseCode: 421 }));
      }
      callback();
    },
    // smtp-server runs onConnect only ~100 ms after it accepted a connection; the pool's
    // other connections may be accepted a little later, and on a loaded machine the first
    // one could deliver all 20 messages before any of them is turned away. The refusals
    // must meet work still waiting: the first message waits for one.
    async onMailFrom(_address, _session, callback) {
      await until(() => refused > 0, "a connection refused");
      callback();
    },
  });
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 4 });
  try {
    const outcomes = await settleAll(Array.from({ length: 20 }, (_, n) => pool.send(envelopeOf(n), messageOf(n))), "20 sends");
    assert.ok(outcomes.every((o) => !(o instanceof Error)), `every send delivered: ${outcomes.filter((o) => o instanceof Error).map(String).join("; ")}`);
    assert.is(arrivals(server).size, 20);
    assert.ok(refused >= 1, "the server refused at least one connection");
    assert.ok(refused <= 3, `after the refusals the pool stopped opening more (${refused} refused)`);
  } finally {
    await pool.close();
    await server.close();
  }
});

test("a streamed send whose connection dies during its envelope goes out on another connection with its bytes intact", async () => {
  const first: Step[] = [...greetAndEhlo(["PIPELINING"]), { expect: /^MAIL FROM/ }, { close: true }];
  const server = await startFaultServer((index) => (index === 0 ? first : oneMessageSession));
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 1 });
  try {
    const stream = pool.createSendStream(envelopeOf(5));
    stream.write(messageOf(5, "line one\r\n"));
    stream.end("line two\r\n");
    await settlesWithin(new Promise((resolve, reject) => stream.once("finish", resolve).once("error", reject)), 10_000, "the stream");
    assert.is(server.connections[1]!.data[0]!.toString(), "X-Seq: 5\r\nSubject: message 5\r\n\r\nline one\r\nline two\r\n.\r\n");
    assert.is(seqOf({ data: server.connections[1]!.data[0]! } as never), 5);
  } finally {
    await pool.close();
    await server.close();
  }
});

leakCheckTest(test, unhandled);
test.run();
