/**
 * No crash when nobody listens (SPEC §8, issue 10): a Promise-only user, with no `error`
 * listener, whose idle connection is closed by the server (421 then FIN, a plain FIN) or
 * idles past socketTimeout. The process must survive, `end` must fire, `conn.closed` must
 * say why, the next call must reject with ECONNECTION whose `cause` is that error, and the
 * process must exit by itself: measured in a fresh child process, where an unhandled
 * `error` event would kill it and a leaked handle would keep it alive.
 *
 * Run with `--child` it is that child; without, it is the test.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError } from "../lib/index.js";
import { greetAndEhlo, startFaultServer, type Step } from "./helpers/fault-server.js";
import { assertNoLeaks, runInChild, sendResult, trackUnhandled } from "./helpers/leak-check.js";

const CASES: Record<string, { steps: Step[]; options?: { socketTimeout: number } }> = {
  "421 then FIN": { steps: [{ delayMs: 100 }, { send: "421 4.4.2 Idle too long\r\n" }, { close: true }] },
  "plain FIN": { steps: [{ delayMs: 100 }, { close: true }] },
  "socketTimeout": { steps: [{ stall: true }], options: { socketTimeout: 300 } },
};

interface CaseReport {
  name: string;
  ended: boolean;
  errorListeners: number;
  reason?: { code: string; responseCode: number | null; command?: string };
  next?: { code: string; causeIsReason: boolean };
  cleanClose?: string;
}

async function runCase(name: string): Promise<CaseReport> {
  const { steps, options } = CASES[name]!;
  const server = await startFaultServer([...greetAndEhlo(), ...steps]);
  const conn = new SMTPConnection({ host: server.host, port: server.port, ...options });
  let ended = false;
  conn.on("end", () => (ended = true));
  await conn.connect();
  const reason = await conn.closed;
  await new Promise((resolve) => setImmediate(resolve));
  const next = await conn.send({ from: "a@example.test", to: ["b@example.test"] }, "x").then(
    () => undefined,
    (err: SMTPError) => err,
  );
  await server.close();
  return {
    name,
    ended,
    errorListeners: conn.listenerCount("error"),
    reason: reason && { code: reason.code, responseCode: reason.responseCode ?? null, command: reason.command },
    next: next && { code: next.code, causeIsReason: next.cause === reason },
  };
}

/** A clean close (quit) resolves `closed` with undefined. */
async function cleanClose(): Promise<string> {
  const server = await startFaultServer([...greetAndEhlo(), { expect: "QUIT" }, { send: "221 bye\r\n" }, { close: true }]);
  const conn = new SMTPConnection({ host: server.host, port: server.port });
  await conn.connect();
  await conn.quit();
  const reason = await conn.closed;
  await server.close();
  return String(reason);
}

async function child(): Promise<void> {
  const reports: CaseReport[] = [];
  for (const name of Object.keys(CASES)) reports.push(await runCase(name));
  reports.push({ name: "quit", ended: true, errorListeners: 0, cleanClose: await cleanClose() });
  // No process.exit(): the parent checks that the process ends by itself.
  sendResult(reports);
}

if (process.argv.includes("--child")) {
  await child();
} else {
  const unhandled = trackUnhandled();

  test("a Promise-only process survives an idle close (421 + FIN, FIN) and an idle timeout, learns why from conn.closed, and exits by itself", async () => {
    const reports = await runInChild<CaseReport[]>(new URL(import.meta.url), ["--child"], { timeoutMs: 30_000 });
    const byName = Object.fromEntries(reports.map((r) => [r.name, r]));
    for (const name of Object.keys(CASES)) {
      const report = byName[name]!;
      assert.is(report.errorListeners, 0, `${name}: no error listener`);
      assert.ok(report.ended, `${name}: end fired`);
      assert.ok(report.next, `${name}: the next call rejects`);
      assert.is(report.next!.code, "ECONNECTION", `${name}: the next call's code`);
      assert.ok(report.next!.causeIsReason, `${name}: the next call's cause is the error that closed the connection`);
    }
    assert.equal(byName["421 then FIN"]!.reason, { code: "ECONNECTION", responseCode: 421, command: "CONN" });
    assert.equal(byName["plain FIN"]!.reason, { code: "ECONNECTION", responseCode: null, command: "CONN" });
    assert.equal(byName["socketTimeout"]!.reason, { code: "ETIMEDOUT", responseCode: null, command: "CONN" });
    assert.is(byName["quit"]!.cleanClose, "undefined", "a clean quit resolves closed with undefined");
  });

  test("with an error listener, the idle close is emitted once as error, and is the value of conn.closed", async () => {
    const server = await startFaultServer([...greetAndEhlo(), { delayMs: 20 }, { close: true }]);
    const conn = new SMTPConnection({ host: server.host, port: server.port });
    const emitted: unknown[] = [];
    conn.on("error", (err) => emitted.push(err));
    await conn.connect();
    const reason = await conn.closed;
    await new Promise((resolve) => setImmediate(resolve));
    assert.instance(reason, SMTPError);
    assert.equal(emitted, [reason]);
    await server.close();
  });

  test("leaves no socket, timer or rejection behind", async () => {
    unhandled.assertNone();
    await assertNoLeaks();
  });

  test.run();
}
