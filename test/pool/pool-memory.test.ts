/**
 * maxQueued and memory: a hundred thousand sends offered at once (64 KiB each, from
 * sources that make their bytes only when read: 6.4 GB if all were read) in a fresh
 * process. The pool reads a source only once its send has a connection, so memory stays
 * bounded, and close() settles every one of them exactly once.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { runInChild, leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { startServer } from "../helpers/server.js";

const unhandled = trackUnhandled();
const MiB = 1024 * 1024;

interface Result {
  peakRss: number;
  opened: number;
  accepted: number;
  settled: number;
  settledTwice: number;
  states: Record<string, number>;
  pendingAfterOffer: number;
  idleAfterOffer: boolean;
  pendingAtEnd: number;
}

test("100,000 sends offered at once: memory stays bounded, sources are read only once on a connection, close() settles each once", async () => {
  const server = await startServer({ keepData: false });
  try {
    const offered = 100_000;
    const result = await runInChild<Result>(new URL("../scenarios/pool-many-offered.js", import.meta.url), [String(server.port), String(offered), "200"], { timeoutMs: 120_000 });
    console.log(`peak RSS ${(result.peakRss / MiB).toFixed(0)} MiB; ${result.opened} sources read; ${result.accepted} accepted; ${JSON.stringify(result.states)}`);
    assert.is(result.pendingAfterOffer, offered);
    assert.not.ok(result.idleAfterOffer, "no room after 100,000 offered with maxQueued 100");
    assert.is(result.settled, offered, "every send settled");
    assert.is(result.settledTwice, 0);
    assert.is(result.pendingAtEnd, 0);
    assert.ok(result.accepted >= 200);
    // A send whose final reply was cut off by the forced close may have arrived: unknown.
    const unknown = result.states["ECONNECTION/unknown"] ?? 0;
    assert.ok(server.messages.length >= result.accepted && server.messages.length <= result.accepted + unknown, `${server.messages.length} arrived, ${result.accepted} accepted, ${unknown} unknown`);
    // Read: the ones delivered, and at most two per connection on their way when the pool closed.
    assert.ok(result.opened <= result.accepted + 8, `${result.opened} sources read for ${result.accepted} accepted`);
    const failed = Object.entries(result.states);
    assert.ok(failed.every(([key]) => key.startsWith("ECONNECTION/") || key.startsWith("ESTREAM/")), JSON.stringify(result.states));
    assert.ok((result.states["ECONNECTION/not-sent"] ?? 0) >= offered - result.accepted - 8, "the sends still in line failed not-sent");
    assert.ok(result.peakRss < 400 * MiB, `peak RSS ${(result.peakRss / MiB).toFixed(0)} MiB`);
  } finally {
    await server.close();
  }
});

leakCheckTest(test, unhandled);
test.run();
