/**
 * Hostile servers at the edges of a session: during an explicit RSET and during QUIT.
 * Each cell of the phase × fault table is one test; harness.ts says what every cell checks.
 */
import { test } from "uvu";
import { PHASES, registerCells } from "./harness.js";
import { trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();

registerCells(test, [PHASES.reset!, PHASES.quit!], unhandled);

test.run();
