/**
 * The contract of the DATA encoding of one window, which two implementations keep byte
 * for byte (the tests hold them to it): window-simd.ts (WebAssembly SIMD, the output
 * built where the scan runs) and window-indexof.ts (one native `indexOf` per line, the
 * fallback where WebAssembly cannot be loaded).
 *
 * A window is at most WINDOW bytes of the body. Its encoding depends only on its bytes and
 * on the byte before it (`previous`: the last byte of the window before; LF at the start
 * of the data, which starts a line):
 * - a CR not followed by LF gets an LF after it, an LF not preceded by CR a CR before it
 *   (so no end-of-data look-alike can reach a server: "SMTP smuggling");
 * - with `dotStuffing`, a dot that starts a line gets another before it.
 * A CR in the window's last byte is left as is: the next window's first byte, or the
 * encoder's finish(), decides whether it was bare.
 */

/** The largest window: what a file stream delivers at once, and what the scratch space holds. */
export const WINDOW = 64 * 1024;

/**
 * The most an encoded window can take: one insert per byte at most, but for a dot after a
 * bare CR (two inserts), which its previous byte cannot also have; the first byte may.
 */
export const MAX_ENCODED_WINDOW = 2 * WINDOW + 2;

/** Gives the Buffer an encoded window is written into: exactly `length` (at most MAX_ENCODED_WINDOW) bytes. */
export type Allocate = (length: number) => Buffer;

/**
 * Encodes `chunk` (1 to WINDOW bytes); returns `chunk` itself when nothing changes, else
 * the encoded window in a Buffer from `allocate` (default: a new one).
 */
export type WindowEncoder = (chunk: Buffer, previous: number, dotStuffing: boolean, allocate?: Allocate) => Buffer;
