/**
 * The faults of the hostile-server table (issue 4): what a server does at the point a
 * phase reached, as fault-server steps, and the error each must end with by default.
 */
import type { DeliveryState, SMTPErrorCode } from "../../lib/index.js";
import type { FaultConnection, Step } from "../helpers/fault-server.js";

export type FaultName =
  | "close (FIN)"
  | "reset (RST)"
  | "421 then close"
  | "silent stall"
  | "server never reads"
  | "line without a code"
  | "code outside 2xx-5xx"
  | "code changing mid multi-line"
  | "10 MiB line"
  | "endless continuation lines"
  | "NUL byte"
  | "reply nobody asked for";

export const FAULT_NAMES: FaultName[] = [
  "close (FIN)",
  "reset (RST)",
  "421 then close",
  "silent stall",
  "server never reads",
  "line without a code",
  "code outside 2xx-5xx",
  "code changing mid multi-line",
  "10 MiB line",
  "endless continuation lines",
  "NUL byte",
  "reply nobody asked for",
];

const TEN_MIB_LINE = Buffer.concat([Buffer.from("250 "), Buffer.alloc(10 * 1024 * 1024, 0x61), Buffer.from("\r\n")]);

/** Writes "250-..." lines until the client hangs up (or 64 MiB, which would be a failure). */
const endlessContinuation: Step = {
  call: async (connection: FaultConnection) => {
    const batch = Buffer.from("250-and there is more\r\n".repeat(2000));
    for (let written = 0; written < 64 * 1024 * 1024 && !connection.closed; written += batch.length) {
      const socket = connection.socket;
      if (socket.destroyed || !socket.writable) return;
      if (!socket.write(batch)) await new Promise<void>((resolve) => (socket.once("drain", resolve), socket.once("close", resolve)));
    }
  },
};

export function faultSteps(fault: FaultName, validReply: string): Step[] {
  switch (fault) {
    case "close (FIN)":
      return [{ close: true }];
    case "reset (RST)":
      return [{ reset: true }];
    case "421 then close":
      return [{ send: "421 4.3.2 Service shutting down\r\n" }, { close: true }];
    case "silent stall":
      return [{ stall: true }];
    case "server never reads":
      return [{ readNothing: true }, { stall: true }];
    case "line without a code":
      return [{ send: "hello, I am not SMTP\r\n" }, { stall: true }];
    case "code outside 2xx-5xx":
      return [{ send: "600 what\r\n" }, { stall: true }];
    case "code changing mid multi-line":
      return [{ send: "250-first line\r\n550 second line\r\n" }, { stall: true }];
    case "10 MiB line":
      return [{ send: TEN_MIB_LINE }, { stall: true }];
    case "endless continuation lines":
      return [endlessContinuation, { stall: true }];
    case "NUL byte":
      return [{ send: "250 o\0k\r\n" }, { stall: true }];
    case "reply nobody asked for":
      return [{ send: `${validReply}250 2.0.0 nobody asked for this\r\n` }, { stall: true }];
  }
}

export const needsTimeout = (fault: FaultName): boolean => fault === "silent stall" || fault === "server never reads";

/** What a cell must end with. */
export interface Expectation {
  /** Code of the first operation's error; "resolves" when it must succeed (quit). */
  code: SMTPErrorCode | "resolves";
  /** Code of the queued operations' errors (default: `code`, or ECONNECTION when the first resolves). */
  queuedCode?: SMTPErrorCode;
  /** The first operation may also succeed (its reply came before the fault). */
  firstMayResolve?: boolean;
  responseCode?: number;
  /** The first send's deliveryState, where this fault decides it rather than the phase. */
  deliveryState?: DeliveryState;
}

export function defaultExpectation(fault: FaultName): Expectation {
  switch (fault) {
    case "close (FIN)":
    case "reset (RST)":
      return { code: "ECONNECTION" };
    case "421 then close":
      return { code: "ECONNECTION", responseCode: 421 };
    case "silent stall":
    case "server never reads":
      return { code: "ETIMEDOUT" };
    case "reply nobody asked for":
      return { code: "EPROTOCOL", firstMayResolve: true };
    default:
      return { code: "EPROTOCOL" };
  }
}

/** Every fault a phase meets. */
export function faultsFor(phase: { skip?: FaultName[] }): FaultName[] {
  return FAULT_NAMES.filter((fault) => !phase.skip?.includes(fault));
}

