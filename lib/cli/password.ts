/**
 * Asking for the password on a terminal without showing it: the terminal is put in raw
 * mode, so typed characters are not echoed, and nothing of what was typed is written
 * back (not even stars, which would tell its length).
 *
 * Deliberately left out: other sources of the password (--password, the environment
 * variable), which the command line reads.
 */
import type { Writable } from "node:stream";

const CTRL_C = "\x03";
const CTRL_D = "\x04";
const BACKSPACE = ["\x7f", "\b"];

/** A terminal input: what raw mode needs. */
export interface TerminalInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

/** Asks on `output` and reads one line from the terminal `input` without echo; rejects on Ctrl-C or Ctrl-D. */
export function promptPassword(input: TerminalInput, output: Writable, prompt = "Password: "): Promise<string> {
  return new Promise((resolve, reject) => {
    let typed = "";
    const finish = (err?: Error) => {
      input.removeListener("data", onData);
      input.setRawMode?.(false);
      input.pause();
      output.write("\n");
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: Buffer | string) => {
      for (const c of chunk.toString()) {
        if (c === "\r" || c === "\n") return finish();
        if (c === CTRL_C || c === CTRL_D) return finish(new Error("No password given"));
        if (BACKSPACE.includes(c)) typed = typed.slice(0, -1);
        else typed += c;
      }
    };
    // Raw mode before the prompt: what is typed after seeing the prompt must not be echoed,
    // and a terminal applies a mode change only once its pending output has drained.
    input.setRawMode?.(true);
    output.write(prompt);
    input.on("data", onData);
    input.resume();
  });
}
