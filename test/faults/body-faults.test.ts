/**
 * Hostile servers while the message body flows and after it: cut after 0, 1 and many
 * chunks, and after the terminator before the final reply. Each cell of the phase × fault
 * table is one test; harness.ts says what every cell checks, including that a cut body is
 * never completed with a terminator.
 */
import { test } from "uvu";
import { PHASES, faultsFor, runCell } from "./harness.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();

for (const phase of [PHASES.body0!, PHASES.body1!, PHASES.bodyMany!, PHASES.afterTerminator!]) {
  for (const fault of faultsFor(phase)) {
    test(`${phase.name}, ${fault}: every operation settles once with the right SMTPError, end comes, nothing leaks`, async () => {
      await runCell(phase, fault, true, unhandled);
      await runCell(phase, fault, false, unhandled);
    });
  }
}

test("leaves no socket, timer or rejection behind", () => assertNoLeaks());

test.run();
