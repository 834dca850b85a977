/**
 * What the command writes on standard error: whole lines (the transcript, failures) and,
 * on a terminal only, one status line redrawn in place (the progress). A whole line first
 * clears the status line, so the two never garble each other.
 *
 * Deliberately left out: standard output, which carries only results (one line per
 * message, or JSON with --json) so it can be piped.
 */
import type { Writable } from "node:stream";
import { MASK as SECRET_MASK } from "../auth/index.js";
import type { Logger } from "../types.js";

const CLEAR_LINE = "\r\x1b[K";

export class Terminal {
  readonly #out: Writable;
  /** Status lines are drawn only on a terminal, and never with --json. */
  readonly showsStatus: boolean;
  #statusShown = false;

  constructor(out: Writable & { isTTY?: boolean }, { quiet = false } = {}) {
    this.#out = out;
    this.showsStatus = Boolean(out.isTTY) && !quiet;
  }

  /** Writes a whole line, above the status line if one is shown. */
  line(text: string): void {
    this.#clearStatus();
    this.#out.write(text + "\n");
  }

  /** Replaces the status line (nothing happens off a terminal). */
  status(text: string): void {
    if (!this.showsStatus) return;
    this.#out.write(CLEAR_LINE + text);
    this.#statusShown = true;
  }

  /** Turns the status line into a whole line that stays. */
  keepStatus(text: string): void {
    if (!this.showsStatus) return;
    this.#out.write(CLEAR_LINE + text + "\n");
    this.#statusShown = false;
  }

  #clearStatus(): void {
    if (!this.#statusShown) return;
    this.#out.write(CLEAR_LINE);
    this.#statusShown = false;
  }
}

/**
 * The connection's logger for `-v`: the transcript ("C: ", "S: " lines) and its notes,
 * on standard error. The connection masks what authentication sends; the mask is shown
 * as "****", the way people write a hidden value. With several connections (`withIds`)
 * each line starts with its connection's id, so the transcripts can be told apart.
 */
export function transcriptLogger(terminal: Terminal, { withIds = false } = {}): Logger {
  const show = (prefix: string) => (meta: unknown, message?: unknown) => {
    const id = withIds ? `[${(meta as { sid?: string } | undefined)?.sid}] ` : "";
    terminal.line(id + prefix + String(message).replaceAll(SECRET_MASK, "****"));
  };
  return { debug: show(""), info: show("* "), error: show("! ") };
}
