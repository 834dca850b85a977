/**
 * Where encoded windows are written: the memory of every window that needs changes (bare
 * LF text, dot-led lines), which is most of the encoder's cost when it is new each time.
 *
 * Why it matters: a Buffer made for each window is fresh memory. The allocator hands freed
 * blocks of that size back to the system and maps them again for the next ones, and the
 * page faults cost more than the encoding itself (measured: text with bare LF at a third
 * of the speed, most of it system time). So:
 *
 * - takeRecycled/giveBack: for a channel that writes to a socket. The socket's write
 *   callback says when it no longer needs a Buffer; the channel gives it back, and the
 *   next window is written into memory already mapped, still in cache. Only Buffers
 *   handed out here are taken back, each once; at most KEEP wait, so memory stays bounded
 *   whatever the number of connections.
 * - takeFromSlab: for a stream stage, whose reader may keep what it reads, so nothing can
 *   be used twice. Windows are slices of 1 MiB slabs, one allocation per sixteen windows,
 *   the way Node pools small Buffers. A slab is freed once no slice of it is referenced;
 *   a reader that keeps one window keeps its slab (at most 1 MiB) alive.
 */
import { MAX_ENCODED_WINDOW, type Allocate } from "./window-encoding.js";

/** Spare Buffers kept: 16 x 128 KiB, enough for a few sockets' writes in flight. */
const KEEP = 16;

const spare: ArrayBufferLike[] = [];
/**
 * The Buffers handed out and not given back yet: the Buffer objects themselves, so a stale
 * one given back again after its memory was lent anew can never free the new lender's.
 */
const lent = new WeakSet<Buffer>();

/** A Buffer of `length` bytes (at most MAX_ENCODED_WINDOW), from memory used before when there is some. */
export const takeRecycled: Allocate = (length) => {
  const buffer = Buffer.from(spare.pop() ?? Buffer.allocUnsafeSlow(MAX_ENCODED_WINDOW).buffer, 0, length);
  lent.add(buffer);
  return buffer;
};

/** True for a Buffer from takeRecycled() not given back yet. */
export function isRecycled(buffer: Buffer): boolean {
  return lent.has(buffer);
}

/** Takes back a Buffer from takeRecycled() that nothing reads any more; anything else is ignored. */
export function giveBack(buffer: Buffer): void {
  if (!lent.delete(buffer)) return;
  if (spare.length < KEEP) spare.push(buffer.buffer);
}

/** Slab size: sixteen 64 KiB windows, or eight that doubled. */
const SLAB = 1024 * 1024;
let slab = Buffer.alloc(0);
let slabUsed = 0;

/** A Buffer of `length` bytes (at most MAX_ENCODED_WINDOW): a slice of the current slab, or of a new one. */
export const takeFromSlab: Allocate = (length) => {
  if (slabUsed + length > slab.length) {
    slab = Buffer.allocUnsafeSlow(SLAB);
    slabUsed = 0;
  }
  const view = slab.subarray(slabUsed, slabUsed + length);
  // The next slice starts 8-byte aligned, as Node's own Buffer pool does.
  slabUsed += (length + 7) & ~7;
  return view;
};
