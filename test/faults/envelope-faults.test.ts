/**
 * Hostile servers during a mail transaction's envelope: MAIL, RCPT, DATA (before 354),
 * a pipelined MAIL/RCPT/DATA group, and the RSET that precedes a send after a failed
 * one. Each cell of the phase × fault table is one test; harness.ts says what every cell
 * checks.
 */
import { test } from "uvu";
import { PHASES, registerCells } from "./harness.js";
import { trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();

registerCells(test, [PHASES.mail!, PHASES.rcpt!, PHASES.data!, PHASES.pipelined!, PHASES.implicitReset!], unhandled);

test.run();
