/**
 * Hostile servers while the message body flows and after it: cut after 0, 1 and many
 * chunks, and after the terminator before the final reply. Each cell of the phase × fault
 * table is one test; harness.ts says what every cell checks, including that a cut body is
 * never completed with a terminator.
 */
import { test } from "uvu";
import { PHASES, registerCells } from "./harness.js";
import { trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();

registerCells(test, [PHASES.body0!, PHASES.body1!, PHASES.bodyMany!, PHASES.afterTerminator!], unhandled);

test.run();
