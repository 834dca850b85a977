/**
 * The progress line of one message on a terminal: bytes read from the message so far,
 * the rate, and the time left when the size is known. Redrawn at most every
 * REDRAW_MS as bytes arrive (no timer, so nothing is left running), and kept as a line
 * of its own once the message is settled.
 */
import type { Terminal } from "./terminal.js";

const REDRAW_MS = 100;

export class Progress {
  readonly #terminal: Terminal;
  readonly #name: string;
  readonly #total: number | undefined;
  readonly #now: () => number;
  #bytes = 0;
  #started: number | undefined;
  #drawn = 0;

  constructor(terminal: Terminal, name: string, total: number | undefined, now: () => number = () => performance.now()) {
    this.#terminal = terminal;
    this.#name = name;
    this.#total = total;
    this.#now = now;
  }

  /** `n` more bytes of the message were read. */
  add(n: number): void {
    const now = this.#now();
    this.#started ??= now;
    this.#bytes += n;
    if (now - this.#drawn < REDRAW_MS && this.#drawn !== 0) return;
    this.#drawn = now;
    this.#terminal.status(this.#describe(now));
  }

  /** The message is settled: its last progress line stays, with `outcome` ("sent", "failed"). */
  finish(outcome: string): void {
    this.#terminal.keepStatus(`${this.#describe(this.#now(), false)}  ${outcome}`);
  }

  #describe(now: number, withEta = true): string {
    const seconds = Math.max((now - (this.#started ?? now)) / 1000, 0.001);
    const rate = this.#bytes / seconds / 1e6;
    const parts = [this.#name, this.#total === undefined ? formatBytes(this.#bytes) : `${formatBytes(this.#bytes)} / ${formatBytes(this.#total)}`, `${rate.toFixed(1)} MB/s`];
    if (withEta && this.#total !== undefined && this.#bytes > 0) parts.push(`ETA ${Math.ceil(Math.max(this.#total - this.#bytes, 0) / (this.#bytes / seconds))} s`);
    return parts.join("  ");
  }
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
