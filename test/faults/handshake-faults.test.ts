/**
 * Hostile servers while the session opens: before and after the greeting, during EHLO,
 * STARTTLS and its TLS handshake, implicit TLS, and AUTH. Each cell of the phase × fault
 * table is one test; harness.ts says what every cell checks.
 */
import { test } from "uvu";
import { PHASES, registerCells } from "./harness.js";
import { trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();

registerCells(test, [PHASES.beforeGreeting!, PHASES.afterGreeting!, PHASES.ehlo!, PHASES.ehloHalfReply!, PHASES.starttls!, PHASES.tlsHandshake!, PHASES.implicitTls!, PHASES.auth!], unhandled);

test.run();
