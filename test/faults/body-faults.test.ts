/**
 * Hostile servers while the message body flows and after it: cut after 0, 1 and many
 * chunks, and after the terminator before the final reply. Each cell of the phase × fault
 * table is one test; harness.ts says what every cell checks, including that a cut body is
 * never completed with a terminator.
 */
import { test } from "uvu";
import { PHASES, registerCells, runCell, type Phase } from "./harness.js";
import { trackUnhandled } from "../helpers/leak-check.js";
import type { Step } from "../helpers/fault-server.js";

const unhandled = trackUnhandled();

/** Stops the whole process (fault server and client alike) for `ms`, as a major GC on a starved machine does. */
const processStop = (ms: number): Step => ({
  call: () => {
    const until = Date.now() + ms;
    while (Date.now() < until);
  },
});

// The cell that once failed under load: the short timeout meant for the stall ran during the
// envelope too, and a stop of the process there became an ETIMEDOUT at RCPT TO.
test("a stop of the whole process while the envelope is answered is not taken for the silence the stall cell waits for", async () => {
  const body1 = PHASES.body1!;
  const stopped: Phase = {
    ...body1,
    prefix: (ctx) => {
      const steps = body1.prefix(ctx);
      const rcpt = steps.findIndex((step) => "expect" in step && String(step.expect).includes("RCPT"));
      steps.splice(rcpt + 1, 0, processStop(300));
      return steps;
    },
  };
  await runCell(stopped, "silent stall", true, unhandled);
});

registerCells(test, [PHASES.body0!, PHASES.body1!, PHASES.bodyMany!, PHASES.afterTerminator!], unhandled);

test.run();
