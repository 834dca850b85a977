/**
 * The order of operations on one connection (lib/operation-queue.ts): call order, the
 * hand-over that lets a send overlap the one before, and the start without a promise job
 * when nothing is queued (what each awaited send gets).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { OperationQueue } from "../lib/operation-queue.js";

/** An operation that records its start and finishes (or hands over) when told. */
function controlled(log: string[], name: string) {
  let finish!: () => void;
  let handOver!: () => void;
  const operation = (over: () => void) => {
    log.push(`${name} started`);
    handOver = over;
    return new Promise<string>((resolve) => (finish = () => resolve(name)));
  };
  return { operation, finish: () => finish(), handOver: () => handOver() };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test("an operation on an idle queue starts within the call when asked to (atOnce), else on a later job", async () => {
  const queue = new OperationQueue();
  const log: string[] = [];
  const later = controlled(log, "later");
  const waited = queue.run(later.operation);
  assert.equal(log, [], "not within the call");
  await turn();
  assert.equal(log, ["later started"]);
  later.finish();
  await waited;
  await turn();
  log.length = 0;
  const first = controlled(log, "first");
  const running = queue.run(first.operation, { atOnce: true });
  assert.equal(log, ["first started"]);
  assert.is(queue.active, 1);
  first.finish();
  assert.is(await running, "first");
  await turn();
  assert.is(queue.active, 0);
  // Idle again: the next one starts at once too.
  const second = controlled(log, "second");
  const next = queue.run(second.operation, { atOnce: true });
  assert.equal(log, ["first started", "second started"]);
  second.finish();
  await next;
});

test("a guard that refuses an operation on an idle queue gives a rejection, never a throw", async () => {
  const queue = new OperationQueue();
  let called = false;
  const refused = queue.run(
    async () => {
      called = true;
    },
    {
      guard: () => {
        throw new Error("connection closed");
      },
      atOnce: true,
    },
  );
  await refused.then(
    () => assert.unreachable("should have been refused"),
    (err: Error) => assert.is(err.message, "connection closed"),
  );
  assert.not.ok(called);
  await turn();
  assert.is(queue.active, 0);
});

test("operations queued behind a running one start in call order once it finished; a send may start at its hand-over", async () => {
  const queue = new OperationQueue();
  const log: string[] = [];
  const [a, b, c] = ["a", "b", "c"].map((name) => controlled(log, name));
  const results = [queue.run(a!.operation, { overlap: true }), queue.run(b!.operation, { overlap: true }), queue.run(c!.operation)];
  await turn();
  assert.equal(log, ["a started"]);
  a!.handOver();
  await turn();
  assert.equal(log, ["a started", "b started"], "b overlaps a after the hand-over");
  b!.finish();
  await turn();
  assert.equal(log, ["a started", "b started"], "c (no overlap) waits for a as well");
  a!.finish();
  await turn();
  assert.equal(log, ["a started", "b started", "c started"]);
  c!.finish();
  assert.equal(await Promise.all(results), ["a", "b", "c"]);
  await turn();
  assert.is(queue.active, 0);
});

test("an operation queued from within another's first synchronous steps waits behind it", async () => {
  const queue = new OperationQueue();
  const log: string[] = [];
  const inner = controlled(log, "inner");
  let finishOuter!: () => void;
  let queued: Promise<string> | undefined;
  const outer = queue.run(
    () => {
      log.push("outer started");
      // As a user's event handler would, while the operation writes its first bytes.
      queued = queue.run(inner.operation, { overlap: true, atOnce: true });
      return new Promise<string>((resolve) => (finishOuter = () => resolve("outer")));
    },
    { atOnce: true },
  );
  await turn();
  assert.equal(log, ["outer started"]);
  finishOuter();
  await outer;
  await turn();
  assert.equal(log, ["outer started", "inner started"]);
  inner.finish();
  assert.is(await queued, "inner");
});

test.run();
