/**
 * Self-test of the leak check and runInChild. The failing cases (a leaked server, an
 * unhandled rejection, a callback called twice) run in child processes written at test
 * time, so this file itself stays clean for its own final check.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertNoLeaks, openResources, runInChild, trackUnhandled } from "./leak-check.js";
import { settlesWithin } from "./callbacks.js";
import { startServer } from "./server.js";

trackUnhandled();

const dir = mkdtempSync(join(tmpdir(), "smtp-wire-leak-check-"));
const helpers = (name: string): string => JSON.stringify(new URL(`./${name}.js`, import.meta.url).href);

/** Writes a child scenario module and returns its path. */
function scenario(name: string, body: string): string {
  const path = join(dir, `${name}.mjs`);
  writeFileSync(
    path,
    `import { assertNoLeaks, sendResult, trackUnhandled } from ${helpers("leak-check")};\n` +
      `import { countCalls } from ${helpers("callbacks")};\n` +
      `import { createServer } from "node:net";\n` +
      body,
  );
  return path;
}

test("assertNoLeaks lets closing sockets and servers finish, then passes", async () => {
  const server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = connect((server.address() as AddressInfo).port, "127.0.0.1");
  await new Promise((resolve) => client.once("close", resolve));
  server.close();
  // Not waiting for the close callback: the settle loop covers handles still closing.
  await assertNoLeaks();
  assert.equal(openResources(), []);
});

test("assertNoLeaks names a leaked server and timer", async () => {
  const path = scenario(
    "leaky",
    `createServer().listen(0, "127.0.0.1", async () => {
       setTimeout(() => {}, 60_000);
       const message = await assertNoLeaks({ settleMs: 20 }).then(() => "passed", (err) => err.message);
       sendResult({ message });
       process.exit(0);
     });\n`,
  );
  const { message } = await runInChild<{ message: string }>(path);
  assert.match(message, /still open after 20 ms: /);
  assert.match(message, /1 × TCPServerWrap/);
  assert.match(message, /1 × Timeout/);
});

test("trackUnhandled reports an unhandled rejection and makes the process exit with 1", async () => {
  const path = scenario(
    "rejects",
    `trackUnhandled();
     Promise.reject(new Error("nobody caught me"));
     setImmediate(async () => {
       const message = await assertNoLeaks().then(() => "passed", (err) => err.message);
       sendResult({ message });
     });\n`,
  );
  const failure = await runInChild(path).then(
    () => undefined,
    (err: Error) => err,
  );
  assert.ok(failure, "the child exits non-zero");
  assert.match(failure.message, /exited with 1/);
  assert.match(failure.message, /unhandledRejection: Error: nobody caught me/);
});

test("a callback called twice fails the leak check", async () => {
  const path = scenario(
    "twice",
    `const callback = countCalls(undefined, "connect callback");
     callback(null, 1);
     callback(new Error("late"));
     const message = await assertNoLeaks().then(() => "passed", (err) => err.message);
     sendResult({ message, count: callback.count });\n`,
  );
  const result = await runInChild<{ message: string; count: number }>(path);
  assert.is(result.count, 2);
  assert.match(result.message, /connect callback was called more than once; the second call had \(Error: late\)/);
});

test("runInChild passes arguments and Node flags and reads the last JSON line", async () => {
  const path = scenario("echo", `console.log("noise first");\nsendResult({ args: process.argv.slice(2), gc: typeof globalThis.gc });\n`);
  const result = await runInChild<{ args: string[]; gc: string }>(path, ["a", "b c"], { execArgv: ["--expose-gc"] });
  assert.equal(result, { args: ["a", "b c"], gc: "function" });
});

test("runInChild rejects when the child fails, prints no JSON, or hangs", async () => {
  const crash = scenario("crash", `throw new Error("scenario broke");\n`);
  const quiet = scenario("quiet", `console.log("not json");\n`);
  const hang = scenario("hang", `setInterval(() => {}, 1000);\n`);
  const reason = (promise: Promise<unknown>): Promise<string> => promise.then(() => "resolved", (err: Error) => err.message);
  assert.match(await reason(runInChild(crash)), /exited with 1; stderr:[^]*scenario broke/);
  assert.match(await reason(runInChild(quiet)), /did not end with a JSON line: "not json"/);
  assert.match(await reason(runInChild(hang, [], { timeoutMs: 300 })), /did not finish within 300 ms and was killed/);
});

test("a session with the smtp-server helper, closed, leaves nothing open", async () => {
  const server = await startServer();
  const socket = connect(server.port, "127.0.0.1");
  let text = "";
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString();
    if (/^220 /m.test(text) && !text.includes("QUIT-SENT")) {
      text += "QUIT-SENT";
      socket.write("QUIT\r\n");
    }
  });
  await settlesWithin(new Promise((resolve) => socket.once("close", resolve)), 5000, "the QUIT");
  assert.match(text, /221 /);
  await server.close();
  await assertNoLeaks();
});

test("leaves no socket, timer or rejection behind", async () => {
  rmSync(dir, { recursive: true, force: true });
  await assertNoLeaks();
});

test.run();
