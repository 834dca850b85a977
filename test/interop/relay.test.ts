/**
 * The relay (examples/relay/) and XCLIENT/XFORWARD against Postfix: Postfix's xclient port
 * trusts XCLIENT and XFORWARD from loopback (test/interop/up.sh). The client connects from
 * a loopback address of its own, so Postfix's Received header and log can only show that
 * address if the relay passed it on: the relay itself connects from 127.0.0.1.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { createRelay } from "../../examples/relay/relay.js";
import { CLIENT_NAME, assertDelivered, finish, interopEnv, makeMessage, open, postfixLogLines, receivedWith, rejection, sleep, uniqueLoopback, within } from "./support.js";

const env = interopEnv("relay");

if (env) {
  const startRelay = async () => {
    const relay = createRelay({ upstream: { host: env.host, port: env.xclientPort, name: "relay.client.example", ignoreTLS: true } });
    const { port } = await relay.listen(0);
    return { port, close: () => relay.close() };
  };

  test("relaying into Postfix: XCLIENT puts the original client's HELO and address into the Received header", async () => {
    const relay = await startRelay();
    const from = uniqueLoopback();
    const conn = await open(env, { port: relay.port, localAddress: from, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "through the relay", to: env.address("alice") });
      const info = await within(conn.send({ from: "sender@client.example", to: env.address("alice") }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.address("alice")]);
      assert.match(info.response, /^250 2\.0\.0 Ok: queued as /, "Postfix's own final reply");
      const delivered = await assertDelivered(env, "alice", m);
      // "Received: from client.example (unknown [127.x.y.z])": the client's HELO and address.
      assert.match(delivered.trace, new RegExp(`^Received: from ${CLIENT_NAME.replace(".", "\\.")} \\(unknown \\[${from.replaceAll(".", "\\.")}\\]\\)`, "m"), delivered.trace);
      assert.is(receivedWith(delivered.trace), "ESMTP");
      assert.ok(postfixLogLines(env, from).some((line) => /client=unknown\[/.test(line)), "Postfix logged the original client");
    } finally {
      await finish(conn);
      await relay.close();
    }
  });

  test("relaying into Postfix: a recipient Postfix refuses is refused to the client with Postfix's code and text", async () => {
    const relay = await startRelay();
    const conn = await open(env, { port: relay.port, ignoreTLS: true });
    try {
      const m = makeMessage({ subject: "one refused", to: env.address("bob") });
      const nobody = env.address("nosuchuser");
      const info = await within(conn.send({ from: "sender@client.example", to: [env.address("bob"), nobody] }, m.raw), 30_000, "send");
      assert.equal(info.accepted, [env.address("bob")]);
      assert.equal(info.rejected, [nobody]);
      const refusal = info.rejectedErrors![0]!;
      assert.is(refusal.responseCode, 550);
      assert.is(refusal.enhancedCode, "5.1.1");
      assert.match(refusal.response!, /User unknown in virtual mailbox table/);
      await assertDelivered(env, "bob", m);
      const all = await rejection(conn.send({ from: "sender@client.example", to: nobody }, m.raw));
      assert.is(all.code, "EENVELOPE");
      assert.is(all.responseCode, 550);
    } finally {
      await finish(conn);
      await relay.close();
    }
  });

  test("xforward() into Postfix: the forwarded client is what Postfix logs for the message", async () => {
    const conn = await open(env, { port: env.xclientPort, ignoreTLS: true });
    try {
      assert.ok(conn.extensions.has("XFORWARD"), "Postfix offers XFORWARD to a trusted client");
      const addr = uniqueLoopback();
      await within(conn.xforward({ addr, name: "forwarded.example", helo: "helo.forwarded.example", proto: "ESMTP", source: "REMOTE" }), 10_000, "xforward");
      const m = makeMessage({ subject: "xforward", to: env.address("carol") });
      await within(conn.send({ from: "sender@client.example", to: env.address("carol") }, m.raw), 30_000, "send");
      const delivered = await assertDelivered(env, "carol", m);
      // Logged by its name, so not found by postfixLogLines (which looks for "unknown[addr]").
      const logged = () => readFileSync(env.postfixLog, "utf8").split("\n").filter((line) => line.includes(`[${addr}]`));
      for (let i = 0; i < 100 && !logged().some((line) => line.includes("client=forwarded.example")); i++) await sleep(50);
      assert.ok(logged().some((line) => line.includes(`client=forwarded.example[${addr}]`)), `Postfix logged the forwarded client:\n${logged().join("\n")}`);
      // XFORWARD is for logging only: the Received header still names the real connection.
      assert.match(delivered.trace, /^Received: from client\.example \(unknown \[127\.0\.0\.1\]\)/m, delivered.trace);
    } finally {
      await finish(conn);
    }
  });

  test("xclient() into Postfix with a value Postfix would take as two attributes is refused before it is written", async () => {
    const conn = await open(env, { port: env.xclientPort, ignoreTLS: true });
    try {
      const err = await rejection(conn.xclient({ name: "a.example\r\nMAIL FROM:<x@y>" }));
      assert.is(err.code, "EPROTOCOL");
      // The session is untouched: a message still goes through.
      const m = makeMessage({ subject: "after a refused xclient", to: env.address("alice") });
      await within(conn.send({ from: "sender@client.example", to: env.address("alice") }, m.raw), 30_000, "send");
      await assertDelivered(env, "alice", m);
    } finally {
      await finish(conn);
    }
  });
}


test.run();
