/**
 * The phase × fault table of the hostile-server tests (issue 4), and the one function that
 * runs a cell of it and checks every promise the library makes about failure:
 *
 * - every operation (connect, login, send, createSendStream, reset, quit) started at that
 *   point, in flight or queued, settles exactly once, with an SMTPError that carries
 *   `code`, `command` and `temporary`, and for a send its `deliveryState` (the phase's, for
 *   the send that meets the fault; "not-sent" for the sends queued behind it);
 * - `error` is emitted at most once, and never unhandled (each cell runs once with an
 *   `error` listener and once without; the file's trackUnhandled() catches a crash);
 * - `end` always comes;
 * - no socket, server or timer is left open afterwards;
 * - a partial body is never completed with a terminator.
 *
 * A phase is the script a well-behaved server plays up to the fault and the operations
 * that meet it; a fault is the steps played from there. Expectations (which error code)
 * are the table's defaults unless a phase says otherwise.
 *
 * Timeouts are short only where the fault needs one to fire (stall, readNothing), and only
 * from the fault on: the prefix runs under hang-detector timeouts. The fault server runs
 * in this process, so a stop of the whole process (a major GC on a loaded machine) stops
 * its replies too, and a short timer that ran out meanwhile fires before the reply is even
 * written: armed during the prefix, it turned such a stop into an ETIMEDOUT at the wrong
 * command. The socket's idle timeout (socketTimeout) is shortened by the script itself as
 * the fault starts, on the client socket the test hands the connection (the `socket`
 * option); a phase whose silence only the greeting or the TLS handshake timer notices
 * starts that one short (nothing before it waits on the server).
 */
import * as assert from "uvu/assert";
import { Socket } from "node:net";
import { SMTPConnection, type SMTPConnectionOptions, type SMTPError } from "../../lib/index.js";
import { startFaultServer, type FaultConnection, type Step } from "../helpers/fault-server.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { assertNoLeaks, type UnhandledTracker } from "../helpers/leak-check.js";
import { ENVELOPE, HANG_MS, assertNothingOpen, assertSMTPError } from "./ops.js";
import { defaultExpectation, faultSteps, faultsFor, needsTimeout, type Expectation, type FaultName } from "./faults.js";
import type { CellContext, Phase } from "./phases.js";

export * from "./ops.js";
export * from "./faults.js";
export * from "./phases.js";

/** The timeout, in ms, that notices a silent fault once it started. */
const SHORT_MS = 200;
/** Timeouts never reached unless something hangs: every cell's, until its fault starts. */
const LONG_TIMEOUTS = { greetingTimeout: 5000, socketTimeout: 5000, connectionTimeout: 5000 };

/** The connection's timeouts and the script for one cell: short ones only where, and from when, the fault needs them. */
function timing(phase: Phase, fault: FaultName, socket: Socket, ctx: CellContext): { options: SMTPConnectionOptions; script: Step[] } {
  const prefix = phase.prefix(ctx);
  const steps = faultSteps(fault, phase.validReply);
  if (!needsTimeout(fault)) return { options: LONG_TIMEOUTS, script: [...prefix, ...steps] };
  switch (phase.timer ?? "socket") {
    case "greeting":
      return { options: { ...LONG_TIMEOUTS, greetingTimeout: SHORT_MS }, script: [...prefix, ...steps] };
    case "connection":
      return { options: { ...LONG_TIMEOUTS, connectionTimeout: SHORT_MS }, script: [...prefix, ...steps] };
    case "socket":
      return { options: LONG_TIMEOUTS, script: [...prefix, { call: () => void socket.setTimeout(SHORT_MS) }, ...steps] };
  }
}

/**
 * Runs one cell: `phase` meets `fault`, with (`withErrorListener`) or without an `error`
 * listener. Returns the fault connection for extra checks.
 */
export async function runCell(phase: Phase, fault: FaultName, withErrorListener: boolean, unhandled: UnhandledTracker): Promise<FaultConnection> {
  const where = `${phase.name} × ${fault}${withErrorListener ? "" : " (no error listener)"}`;
  const ctx: CellContext = {};
  const expectation: Expectation = { ...defaultExpectation(fault), ...phase.expect?.(fault) };
  const socket = new Socket();
  const { options, script } = timing(phase, fault, socket, ctx);
  const server = await startFaultServer(script);
  const conn = new SMTPConnection({ host: server.host, port: server.port, name: "client.example.test", socket, ...options, ...phase.options });
  const errorEvents: unknown[] = [];
  if (withErrorListener) conn.on("error", (err) => errorEvents.push(err));
  let ends = 0;
  const ended = new Promise<void>((resolve) => conn.on("end", () => (ends++, resolve())));
  const unhandledBefore = unhandled.events.length;
  try {
    const ops = await settlesWithin(phase.start(conn), HANG_MS, `${where}: reaching the phase`);
    const results = await settlesWithin(Promise.all(ops.map((op) => op.settled)), HANG_MS, `${where}: every operation settling`);
    await settlesWithin(ended, HANG_MS, `${where}: the end event`);
    // Give a double callback or a second event the chance to show up.
    await new Promise((resolve) => setTimeout(resolve, 5));

    results.forEach((result, i) => {
      const op = ops[i]!;
      const label = `${where}: ${op.label}`;
      assert.is(op.count(), 1, `${label} settled exactly once`);
      const isFirst = i === 0;
      if (isFirst && expectation.code === "resolves") {
        assert.ok(result.ok, `${label} resolves, got ${String(result.error)}`);
        return;
      }
      if (result.ok) {
        assert.ok(isFirst && expectation.firstMayResolve, `${label} must fail, but it succeeded`);
        return;
      }
      assertSMTPError(result.error, label);
      const err = result.error as SMTPError;
      const wanted = isFirst ? expectation.code : (expectation.queuedCode ?? (expectation.code === "resolves" ? undefined : expectation.code));
      if (wanted) assert.is(err.code, wanted, `${label}: code (message: ${err.message})`);
      // A reply nobody asked for answers no command: it may be charged to the connection, or
      // found only when the send has moved on to its next command (each send's error names
      // where that send was).
      const command = fault === "reply nobody asked for" ? /./ : phase.command;
      if (isFirst) {
        assert.ok(command.test(err.command!), `${label}: command ${err.command} should match ${command} (${err.code}: ${err.message})`);
        if (expectation.responseCode !== undefined) assert.is(err.responseCode, expectation.responseCode, `${label}: responseCode`);
      }
      // Every send says whether the server may have its message; nothing else does.
      const deliveryState = /send/i.test(op.label) ? (isFirst ? (expectation.deliveryState ?? phase.deliveryState ?? "not-sent") : "not-sent") : undefined;
      assert.is(err.deliveryState, deliveryState, `${label}: deliveryState (${err.code}: ${err.message})`);
      // A send that started (its envelope was checked) names every recipient's outcome;
      // one that never started ("API") has none to name.
      if (deliveryState && err.command !== "API") {
        assert.equal(err.recipients?.map((r) => r.address), ENVELOPE.to, `${label}: recipients (${err.code}: ${err.message})`);
      }
      if (op.mustBeDestroyed) assert.ok(op.mustBeDestroyed.destroyed, `${label}: its stream is destroyed, not left paused`);
    });

    assert.is(ends, 1, `${where}: end is emitted once`);
    assert.ok(errorEvents.length <= 1, `${where}: error is emitted at most once, got ${errorEvents.length}`);
    for (const err of errorEvents) assertSMTPError(err, `${where}: error event`);
    assert.is(unhandled.events.length, unhandledBefore, `${where}: nothing unhandled`);

    const connection = server.connections[0];
    if (connection && phase.partialBody && ctx.bodyStart !== undefined) {
      const body = connection.received.subarray(ctx.bodyStart);
      assert.not.ok(body.includes("\r\n.\r\n") || body.subarray(0, 3).toString() === ".\r\n", `${where}: a cut body is never terminated`);
    }
    server.assertNoScriptErrors();
    return connection!;
  } finally {
    conn.close();
    await settlesWithin(server.close(), HANG_MS, `${where}: the fault server closing`);
    await assertNothingOpen(where);
  }
}

/**
 * Registers one test per cell of `phases` × their faults (each run with and without an
 * `error` listener), then the final leak check: the whole body of a phase-table file.
 */
export function registerCells(test: (title: string, fn: () => Promise<void>) => void, phases: Phase[], unhandled: UnhandledTracker): void {
  for (const phase of phases) {
    for (const fault of faultsFor(phase)) {
      test(`${phase.name}, ${fault}: every operation settles once with the right SMTPError, end comes, nothing leaks`, async () => {
        await runCell(phase, fault, true, unhandled);
        await runCell(phase, fault, false, unhandled);
      });
    }
  }
  test("leaves no socket, timer or rejection behind", () => assertNoLeaks());
}
