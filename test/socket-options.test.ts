/**
 * Transport options of the constructor that need the machine's help to observe:
 * localAddress (bind to 127.0.0.2), dnsTimeout (a resolver that never answers), and the
 * resolver's answer being used as it comes (no cache of our own).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import dns from "node:dns";
import { syncBuiltinESMExports } from "node:module";
import { SMTPConnection, SMTPError } from "../lib/index.js";
import { startFaultServer, greetAndEhlo } from "./helpers/fault-server.js";
import { leakCheckTest, openResources, trackUnhandled } from "./helpers/leak-check.js";
import { until } from "./helpers/callbacks.js";

const unhandled = trackUnhandled();
const realLookup = dns.lookup;

/** Replaces dns.lookup for the ESM bindings too, until `restore()`. */
function fakeLookup(lookup: (...args: unknown[]) => void): () => void {
  (dns as { lookup: unknown }).lookup = lookup;
  syncBuiltinESMExports();
  return () => {
    (dns as { lookup: unknown }).lookup = realLookup;
    syncBuiltinESMExports();
  };
}

test("localAddress binds the client socket to that local address", async () => {
  const fault = await startFaultServer([...greetAndEhlo([]), { expect: "QUIT" }, { send: "221 bye\r\n" }]);
  const conn = new SMTPConnection({ host: "127.0.0.1", port: fault.port, localAddress: "127.0.0.2" });
  await conn.connect();
  const c = await fault.connection();
  assert.is(c.socket.remoteAddress, "127.0.0.2");
  await conn.quit();
  await fault.close();
});

test("dnsTimeout fails connect() with ETIMEDOUT when the resolver never answers", async () => {
  const restore = fakeLookup(() => {
    /* never answers */
  });
  try {
    const conn = new SMTPConnection({ host: "slow-dns.example.test", port: 25, dnsTimeout: 50 });
    const err = (await conn.connect().catch((e) => e)) as SMTPError;
    assert.instance(err, SMTPError);
    assert.is(err.code, "ETIMEDOUT");
    assert.match(err.message, /DNS lookup of slow-dns\.example\.test timed out after 50 ms/);
    assert.is(err.temporary, true);
  } finally {
    restore();
  }
});

test("connect() aborted while the resolver has not answered leaves no dnsTimeout timer behind", async () => {
  let asked = 0;
  const restore = fakeLookup(() => {
    asked++; /* never answers */
  });
  try {
    const timersBefore = openResources(["Timeout"]).length;
    // A deadline far beyond the test: only clearing it at the abort can make it go.
    const conn = new SMTPConnection({ host: "slow-dns.example.test", port: 25, dnsTimeout: 600_000 });
    const ended = new Promise<void>((resolve) => conn.once("end", resolve));
    const controller = new AbortController();
    const connecting = conn.connect({ signal: controller.signal }).catch((e: unknown) => e);
    await until(() => asked > 0, "the lookup");
    controller.abort();
    const err = (await connecting) as SMTPError;
    assert.instance(err, SMTPError);
    assert.is(err.code, "ECONNECTION");
    await ended;
    // The socket's close (which cancels the lookup) comes a turn or two after its destroy.
    await until(() => openResources(["TCPSocketWrap"]).length === 0, "the socket closing");
    assert.is(openResources(["Timeout"]).length, timersBefore, "the DNS deadline's timer is cleared at once, not when the resolver answers");
  } finally {
    restore();
  }
});

test("each connection asks the resolver again: a changed answer is used at once", async () => {
  const fault = await startFaultServer([...greetAndEhlo([]), { expect: "QUIT" }, { send: "221 bye\r\n" }]);
  const answers = ["127.0.0.1", "127.0.0.3"];
  const asked: string[] = [];
  const restore = fakeLookup((host: unknown, _options: unknown, callback: unknown) => {
    asked.push(String(host));
    const address = answers.shift()!;
    (callback as (err: null, addresses: { address: string; family: number }[]) => void)(null, [{ address, family: 4 }]);
  });
  try {
    const first = new SMTPConnection({ host: "mx.example.test", port: fault.port });
    await first.connect();
    await first.quit();
    const second = new SMTPConnection({ host: "mx.example.test", port: fault.port, connectionTimeout: 2000 });
    // 127.0.0.3 has no server on this port: the second answer was used, not a cached first.
    const err = (await second.connect().catch((e) => e)) as SMTPError;
    assert.is(err.code, "ESOCKET");
    assert.match(String((err.cause as { address?: string })?.address ?? err.message), /127\.0\.0\.3/);
    assert.equal(asked, ["mx.example.test", "mx.example.test"]);
  } finally {
    restore();
    await fault.close();
  }
});

leakCheckTest(test, unhandled);
test.run();
