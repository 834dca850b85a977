/**
 * A TCP proxy on loopback that adds round-trip time: every chunk from the server to the
 * client is held for `rtt` milliseconds before it is passed on (client to server goes
 * straight through), so each wait for a reply costs one `rtt`. Order is kept. Node's
 * timers fire no sooner than 1 ms, so the delay added is at least `rtt` and a little
 * more; the mean actually added is reported in the stats.
 *
 * Same IPC protocol as the sink (ready, reset, stats); started as
 *   node delay-proxy.js <target-port> <rtt-ms>
 */
import { createServer, connect, type Socket } from "node:net";

const targetPort = Number(process.argv[2]);
const rttMs = Number(process.argv[3] ?? 1);

let delayedChunks = 0;
let delayNsTotal = 0n;

interface Held {
  due: bigint;
  received: bigint;
  chunk: Buffer;
}

/** Copies `from` into `to` with every chunk held until `rttMs` after it arrived. */
function delayInto(from: Socket, to: Socket): void {
  const held: Held[] = [];
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const delayNs = BigInt(Math.round(rttMs * 1e6));
  const release = (): void => {
    timer = undefined;
    const now = process.hrtime.bigint();
    while (held.length > 0 && held[0]!.due <= now + 50_000n) {
      const item = held.shift()!;
      delayedChunks++;
      delayNsTotal += now - item.received;
      to.write(item.chunk);
    }
    if (held.length > 0) arm(now);
    else if (ended) to.end();
  };
  const arm = (now: bigint): void => {
    if (timer) return;
    const waitMs = Math.max(1, Math.ceil(Number(held[0]!.due - now) / 1e6));
    timer = setTimeout(release, waitMs);
  };
  from.on("data", (chunk: Buffer) => {
    const now = process.hrtime.bigint();
    held.push({ due: now + delayNs, received: now, chunk });
    arm(now);
  });
  from.on("end", () => {
    ended = true;
    if (held.length === 0 && !timer) to.end();
  });
}

const server = createServer((client) => {
  client.setNoDelay(true);
  const upstream = connect({ host: "127.0.0.1", port: targetPort });
  upstream.setNoDelay(true);
  // Client to server: straight through, with backpressure.
  client.pipe(upstream);
  if (rttMs > 0) delayInto(upstream, client);
  else upstream.pipe(client);
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", close);
  upstream.on("error", close);
  client.on("close", () => upstream.end());
});

process.on("message", (message: { type: string }) => {
  if (message.type === "reset") {
    delayedChunks = 0;
    delayNsTotal = 0n;
    process.send?.({ type: "reset" });
  } else if (message.type === "stats") {
    const meanMs = delayedChunks ? Number(delayNsTotal / BigInt(delayedChunks)) / 1e6 : 0;
    process.send?.({ type: "stats", stats: { delayedChunks, meanDelayMs: meanMs } });
  }
});
process.on("disconnect", () => process.exit(0));

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  if (process.send) process.send({ type: "ready", port });
  else process.stdout.write(`delay proxy on 127.0.0.1:${port} -> ${targetPort}, rtt ${rttMs} ms\n`);
});
