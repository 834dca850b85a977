/**
 * What the pool tests share: numbered messages whose number the server can read back,
 * an smtp-server that counts connections (open now, most at once, in all), and a wait
 * for something the server will see.
 */
import * as assert from "uvu/assert";
import { SMTPPool, type PoolOptions } from "../../lib/index.js";
import { startServer, type TestServer, type TestServerOptions } from "../helpers/server.js";
import type { ReceivedMessage } from "../helpers/server.js";

export const FROM = "sender@example.test";

/** The envelope of message `n`. */
export function envelopeOf(n: number) {
  return { from: FROM, to: [`rcpt${n}@example.test`] };
}

/** Message `n`: a header carrying its number and a short body. */
export function messageOf(n: number, body = `message number ${n}\r\n`): string {
  return `X-Seq: ${n}\r\nSubject: message ${n}\r\n\r\n${body}`;
}

/** The number of a received message, from its X-Seq header. */
export function seqOf(message: ReceivedMessage): number {
  const match = /^X-Seq: (\d+)/m.exec(message.data.toString("latin1"));
  return match ? Number(match[1]) : -1;
}

/** How many times each message number arrived. */
export function arrivals(server: TestServer): Map<number, number> {
  const counts = new Map<number, number>();
  for (const message of server.messages) counts.set(seqOf(message), (counts.get(seqOf(message)) ?? 0) + 1);
  return counts;
}

export interface CountingServer extends TestServer {
  /** Sessions open now. */
  readonly open: number;
  /** Most sessions open at the same time. */
  readonly mostAtOnce: number;
  /** Sessions in all. */
  readonly total: number;
}

/** An smtp-server (see startServer) that also counts its sessions. */
export async function startCountingServer(options: TestServerOptions = {}): Promise<CountingServer> {
  let open = 0;
  let mostAtOnce = 0;
  let total = 0;
  const server = await startServer({
    ...options,
    onConnect(session, callback) {
      open++;
      total++;
      mostAtOnce = Math.max(mostAtOnce, open);
      if (options.onConnect) return options.onConnect(session, callback);
      callback();
    },
    onClose(session, ctx) {
      open--;
      options.onClose?.(session, ctx);
    },
  });
  return Object.defineProperties(server, {
    open: { get: () => open },
    mostAtOnce: { get: () => mostAtOnce },
    total: { get: () => total },
  }) as CountingServer;
}

export { until } from "../helpers/callbacks.js";

/**
 * Runs `body` with a pool of one connection whose connection is lent, so every send it
 * makes waits in line; then checks that none of them was sent: the line is empty, and once
 * the lease is given back only a send made afterwards arrives.
 */
export function whileLent(body: (pool: SMTPPool) => Promise<void>): Promise<void> {
  return withPool({ maxConnections: 1 }, async (pool, server) => {
    const lease = await pool.acquire();
    await body(pool);
    assert.is(pool.pendingCount(), 0, "nothing is left in line");
    lease.release();
    await pool.send(envelopeOf(999), messageOf(999));
    assert.equal([...arrivals(server).keys()], [999], "only the send made afterwards arrived");
  });
}

/** Runs `body` with a pool (these `limits`) over a counting server; closes both afterwards, whatever happened. */
export async function withPool(limits: Omit<PoolOptions, "host" | "port">, body: (pool: SMTPPool, server: CountingServer) => Promise<void>, serverOptions: TestServerOptions = {}): Promise<void> {
  const server = await startCountingServer(serverOptions);
  const pool = new SMTPPool({ host: "127.0.0.1", port: server.port, ...limits });
  try {
    await body(pool, server);
  } finally {
    await pool.close();
    await server.close();
  }
}
