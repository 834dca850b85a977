/**
 * What the two benchmark targets share: the counters they keep, and the IPC protocol the
 * runner drives them with (reset, stats; each server sends ready itself once listening).
 */
export interface SinkStats {
  connections: number;
  messages: number;
  /** Body bytes received (dot-stuffed, up to and including the CRLF before the final dot). */
  bytes: number;
  /** Size of each message's body, in order (capped at the first 64). */
  sizes: number[];
  /** Hex SHA-256 of each message's body (when hashing), in order (capped at 64). */
  hashes: string[];
  flights: number;
  /** Flights that carried no transaction: EHLO, QUIT and the like. */
  setupFlights: number;
  commands: number;
}

/** The counters and the hashing switch, reset by the runner between runs. */
export interface SinkState {
  stats: SinkStats;
  hashing: boolean;
}

function emptyStats(): SinkStats {
  return { connections: 0, messages: 0, bytes: 0, sizes: [], hashes: [], flights: 0, setupFlights: 0, commands: 0 };
}

/** Answers the runner's reset and stats messages; exits when the runner goes away. */
export function answerRunner(): SinkState {
  const state: SinkState = { stats: emptyStats(), hashing: false };
  process.on("message", (message: { type: string; hash?: boolean }) => {
    if (message.type === "reset") {
      state.stats = emptyStats();
      state.hashing = Boolean(message.hash);
      process.send?.({ type: "reset" });
    } else if (message.type === "stats") {
      process.send?.({ type: "stats", stats: state.stats });
    }
  });
  process.on("disconnect", () => process.exit(0));
  return state;
}
