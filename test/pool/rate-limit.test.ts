/**
 * The pool's rate limit: a sliding window from the first message on. As a pure object
 * (seeded random schedules: no `limit + 1` starts ever fall within one window) and as the
 * server sees it (the MAIL FROM arrival times of every message, over several connections).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { SlidingRateLimit } from "../../lib/pool/rate-limit.js";
import { SMTPPool } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { envelopeOf, messageOf } from "./support.js";

const unhandled = trackUnhandled();

test("without a limit every start may go at once", () => {
  const rate = new SlidingRateLimit(0, 1000);
  assert.not.ok(rate.isLimited);
  for (let i = 0; i < 10; i++) {
    assert.is(rate.wait(0), 0);
    rate.record(0);
  }
});

test("the first window is limited too: the (limit + 1)th start waits for the first to be delta old", () => {
  const rate = new SlidingRateLimit(3, 100);
  for (let i = 0; i < 3; i++) {
    assert.is(rate.wait(i), 0);
    rate.record(i);
  }
  assert.is(rate.wait(2), 98);
  assert.is(rate.wait(60), 40);
  assert.is(rate.wait(100), 0);
  rate.record(100);
  assert.is(rate.wait(100), 1, "the next waits for the start at 1 ms");
});

test("property: whatever the schedule, no window of delta holds more than limit starts", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 500 }), fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 200 }), (limit, delta, steps) => {
      const rate = new SlidingRateLimit(limit, delta);
      const starts: number[] = [];
      let now = 0;
      for (const step of steps) {
        now += step;
        // A caller that waits as told, or tries early; either way only wait() === 0 starts.
        if (rate.wait(now) === 0) {
          rate.record(now);
          starts.push(now);
        } else {
          now += rate.wait(now);
          assert.is(rate.wait(now), 0);
          rate.record(now);
          starts.push(now);
        }
      }
      for (let i = 0; i + limit < starts.length; i++) {
        if (starts[i + limit]! - starts[i]! < delta) throw new Error(`starts ${i} and ${i + limit} only ${starts[i + limit]! - starts[i]!} ms apart`);
      }
    }),
    { seed: 12, numRuns: 300 },
  );
});

test("measured in the server: no rateDelta window, the first included, holds more than rateLimit messages", async () => {
  const arrivedAt: number[] = [];
  const server = await startServer({
    onMailFrom(_address, _session, callback) {
      arrivedAt.push(performance.now());
      callback();
    },
  });
  const limit = 4;
  const delta = 600;
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, maxConnections: 3, rateLimit: limit, rateDelta: delta });
  try {
    await Promise.all(Array.from({ length: 13 }, (_, n) => pool.send(envelopeOf(n), messageOf(n))));
    assert.is(arrivedAt.length, 13);
    assert.is(server.messages.length, 13);
    // Arrival on loopback lags the start by a little, and not always by the same amount: a
    // margin of a quarter of the window absorbs that (the server shares this process, busy at first with the connections opening); a fixed-checkpoint limiter (a burst of
    // 2 x limit at each checkpoint) would still fail by a whole window.
    const margin = delta * 0.25;
    for (let i = 0; i + limit < arrivedAt.length; i++) {
      const apart = arrivedAt[i + limit]! - arrivedAt[i]!;
      assert.ok(apart >= delta - margin, `messages ${i} and ${i + limit} arrived ${apart.toFixed(0)} ms apart (window ${delta} ms)`);
    }
  } finally {
    await pool.close();
    await server.close();
  }
});

leakCheckTest(test, unhandled);
test.run();
