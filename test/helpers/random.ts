/**
 * Seeded randomness for property tests: a small PRNG (mulberry32), one seed per run that
 * failure messages print, and the few generators the stage tests share.
 *
 * The seed is random on each run unless TEST_SEED is set, so a failure seen once can be
 * replayed exactly: `TEST_SEED=1234 node dist/test/run.js stages`. Each test derives its
 * own stream from the seed and its name, so tests do not depend on each other's order.
 */

/** The run's seed: TEST_SEED when set, else random. */
export const seed: number = process.env.TEST_SEED !== undefined ? Number(process.env.TEST_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;

/** Appended to assertion messages so a failure names the seed that reproduces it. */
export function seedNote(): string {
  return ` (seed ${seed}; replay with TEST_SEED=${seed})`;
}

/** A seeded random source. */
export interface Random {
  /** The seed this source started from. */
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both included. */
  int(min: number, max: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** One of `items`. */
  pick<T>(items: readonly T[]): T;
  /** `length` uniformly random bytes. */
  bytes(length: number): Buffer;
}

/** mulberry32: 32-bit state, fast, good enough for test inputs. */
export function createRandom(start: number): Random {
  let state = start >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return {
    seed: start >>> 0,
    next,
    int,
    chance: (p) => next() < p,
    pick: (items) => items[int(0, items.length - 1)]!,
    bytes: (length) => {
      const out = Buffer.allocUnsafe(length);
      for (let i = 0; i < length; i++) out[i] = int(0, 255);
      return out;
    },
  };
}

/** A source for one test: the run's seed mixed with the test's name. */
export function randomFor(name: string): Random {
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619);
  return createRandom((seed ^ hash) >>> 0);
}

/** `data` cut at random points into chunks of 1 to `maxChunk` bytes (views, not copies). */
export function splitRandomly(random: Random, data: Buffer, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < data.length; ) {
    const size = random.int(1, maxChunk);
    chunks.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

/** A chunk-size limit that exercises tiny, small and large chunks alike (1 to 64 KiB). */
export function randomChunkLimit(random: Random): number {
  return random.pick([1, 2, 3, 7, 16, 100, 1024, 8192, 65536]);
}

const PIECES = ["\r\n", "\r", "\n", ".", "..", "\r\n.\r\n", "\n.\n", "\r.\r", "\r.\r\n", "\n.\r\n", "\r\r\n", "\n\r", ". ", "From ", "MAIL FROM:<a@b>"];
const WORD = "abcdefghijklmnopqrstuvwxyz0123456789 ";

/**
 * A message body heavy in what an encoder can get wrong: CR, LF and dot in every
 * combination, 8-bit bytes, random binary runs, and now and then a long line.
 */
export function randomMessage(random: Random, maxLength: number): Buffer {
  const parts: Buffer[] = [];
  let length = 0;
  const target = random.int(0, maxLength);
  while (length < target) {
    let part: Buffer;
    const kind = random.int(0, 9);
    if (kind <= 3) part = Buffer.from(random.pick(PIECES), "latin1");
    else if (kind <= 6) {
      let text = "";
      for (let i = random.int(1, 80); i > 0; i--) text += WORD[random.int(0, WORD.length - 1)];
      part = Buffer.from(text, "latin1");
    } else if (kind === 7) part = Buffer.from([random.int(0x80, 0xff), random.int(0x80, 0xff)]);
    else if (kind === 8) part = random.bytes(random.int(1, 64));
    else part = Buffer.alloc(random.chance(0.1) ? random.int(1000, 100_000) : random.int(1, 200), random.pick(["x", ".", "\u00e9"]), "latin1");
    parts.push(part);
    length += part.length;
  }
  return Buffer.concat(parts).subarray(0, target);
}
