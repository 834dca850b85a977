/**
 * Self-test of the callback recorders and the hang detector. (A callback called twice
 * failing the leak check is tested in a child process by leak-check.test.ts.)
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { countCalls, nodeCallback, settlesWithin } from "./callbacks.js";
import { assertNoLeaks, trackUnhandled } from "./leak-check.js";

const unhandled = trackUnhandled();

test("countCalls counts calls, keeps their arguments and passes through the result", async () => {
  const double = countCalls((n: number) => n * 2, "double");
  assert.throws(() => double.assertCalledOnce(), /expected double to be called exactly once, it was called 0 times/);
  assert.is(double(21), 42);
  assert.is(double.count, 1);
  assert.equal(double.calls, [[21]]);
  assert.equal(await double.firstCall, [21]);
  double.assertCalledOnce();
});

test("countCalls works without a function", () => {
  const callback = countCalls<[string]>();
  assert.is(callback("x"), undefined);
  callback.assertCalledOnce();
});

test("nodeCallback resolves its result with the value", async () => {
  const callback = nodeCallback<number>();
  setImmediate(() => callback(null, 7));
  assert.is(await callback.result, 7);
  callback.assertCalledOnce();
});

test("nodeCallback rejects its result with the error, and an unread error is not unhandled", async () => {
  const read = nodeCallback<number>();
  read(Object.assign(new Error("refused"), { code: "EAUTH" }));
  await read.result.then(
    () => assert.unreachable("should reject"),
    (err: Error & { code?: string }) => assert.is(err.code, "EAUTH"),
  );
  const unread = nodeCallback<number>("ignored callback");
  unread(new Error("nobody reads this"));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(unhandled.events.length, 0);
});

test("settlesWithin passes a value or an error through", async () => {
  assert.is(await settlesWithin(Promise.resolve("done"), 1000), "done");
  const err = await settlesWithin(Promise.reject(new Error("own error")), 1000).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.is(err?.message, "own error");
});

test("settlesWithin rejects with a clear message when the promise hangs", async () => {
  const never = new Promise<void>(() => {});
  const err = await settlesWithin(never, 30, "connect()").then(
    () => undefined,
    (e: Error) => e,
  );
  assert.is(err?.message, "connect() did not settle within 30 ms: it hangs");
});

test("leaves no socket, timer or rejection behind", () => assertNoLeaks());

test.run();
