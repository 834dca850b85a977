/**
 * Child-process scenario for the pool's memory bound: offers argv[3] sends at once to the
 * server at 127.0.0.1:argv[2], each a 64 KiB message from a source that makes its bytes
 * only when read. Waits until argv[4] messages were accepted, then closes the pool with
 * force, and reports its peak RSS, how many sources were ever read, and how every send
 * ended (each exactly once).
 */
import { Readable } from "node:stream";
import { SMTPPool, type SMTPError } from "../../lib/index.js";
import { sendResult } from "../helpers/leak-check.js";

const port = Number(process.argv[2]);
const offered = Number(process.argv[3]);
const enough = Number(process.argv[4]);
const body = Buffer.alloc(64 * 1024 - 2, 0x61);

let opened = 0;
function lazySource(n: number): Readable {
  let done = false;
  return new Readable({
    read() {
      if (done) return void this.push(null);
      if (!done) opened++;
      done = true;
      this.push(Buffer.concat([Buffer.from(`X-Seq: ${n}\r\n\r\n`), body]));
    },
  });
}

let peakRss = 0;
const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
const sampler = setInterval(sample, 10);

const pool = new SMTPPool({ host: "127.0.0.1", port, maxConnections: 4, maxQueued: 100 });
let accepted = 0;
const states = new Map<string, number>();
let settledTwice = 0;
const settledOnce = new Set<number>();
const all: Promise<void>[] = [];
let reachedEnough!: () => void;
const enoughAccepted = new Promise<void>((resolve) => (reachedEnough = resolve));
for (let n = 0; n < offered; n++) {
  all.push(
    pool.send({ from: "bulk@example.test", to: [`r${n}@example.test`] }, lazySource(n)).then(
      () => {
        if (settledOnce.has(n)) settledTwice++;
        settledOnce.add(n);
        if (++accepted === enough) reachedEnough();
      },
      (err: SMTPError & { deliveryState?: string }) => {
        if (settledOnce.has(n)) settledTwice++;
        settledOnce.add(n);
        const key = `${err.code}/${err.deliveryState}`;
        states.set(key, (states.get(key) ?? 0) + 1);
      },
    ),
  );
}
const pendingAfterOffer = pool.pendingCount();
const idleAfterOffer = pool.isIdle();
await enoughAccepted;
sample();
await pool.close({ force: true });
await Promise.all(all);
sample();
clearInterval(sampler);
sendResult({ peakRss, opened, accepted, settled: settledOnce.size, settledTwice, states: Object.fromEntries(states), pendingAfterOffer, idleAfterOffer, pendingAtEnd: pool.pendingCount() });
