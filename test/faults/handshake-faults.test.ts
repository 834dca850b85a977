/**
 * Hostile servers while the session opens: before and after the greeting, during EHLO,
 * STARTTLS and its TLS handshake, implicit TLS, and AUTH. Each cell of the phase × fault
 * table is one test; harness.ts says what every cell checks.
 */
import { test } from "uvu";
import { PHASES, faultsFor, runCell } from "./harness.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();

for (const phase of [PHASES.beforeGreeting!, PHASES.afterGreeting!, PHASES.ehlo!, PHASES.ehloHalfReply!, PHASES.starttls!, PHASES.tlsHandshake!, PHASES.implicitTls!, PHASES.auth!]) {
  for (const fault of faultsFor(phase)) {
    test(`${phase.name}, ${fault}: every operation settles once with the right SMTPError, end comes, nothing leaks`, async () => {
      await runCell(phase, fault, true, unhandled);
      await runCell(phase, fault, false, unhandled);
    });
  }
}

test("leaves no socket, timer or rejection behind", () => assertNoLeaks());

test.run();
