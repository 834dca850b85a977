/**
 * Hostile servers during a mail transaction's envelope: MAIL, RCPT, DATA (before 354),
 * a pipelined MAIL/RCPT/DATA group, and the RSET that precedes a send after a failed
 * one. Each cell of the phase × fault table is one test; harness.ts says what every cell
 * checks.
 */
import { test } from "uvu";
import { PHASES, faultsFor, runCell } from "./harness.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();

for (const phase of [PHASES.mail!, PHASES.rcpt!, PHASES.data!, PHASES.pipelined!, PHASES.implicitReset!]) {
  for (const fault of faultsFor(phase)) {
    test(`${phase.name}, ${fault}: every operation settles once with the right SMTPError, end comes, nothing leaks`, async () => {
      await runCell(phase, fault, true, unhandled);
      await runCell(phase, fault, false, unhandled);
    });
  }
}

test("leaves no socket, timer or rejection behind", () => assertNoLeaks());

test.run();
