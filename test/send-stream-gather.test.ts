/**
 * Small writes into a SendStream in one turn of the event loop (a composed mail: header
 * lines, boundaries, short parts) leave in one system call; large ones are not held back.
 * Counted on the client's socket: Node calls its _writev once for writes gathered while it
 * was corked, its _write once for each write that went alone.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type Socket } from "node:net";
import { once } from "node:events";
import { SMTPConnection } from "../lib/index.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";

const unhandled = trackUnhandled();
const env = { from: "sender@example.test", to: ["rcpt@example.test"] };

/** Runs `body` with a connection over a socket whose system writes are counted; closes all afterwards. */
async function withCountedConnection(body: (conn: SMTPConnection, counts: { write: number; writev: number }, server: TestServer) => Promise<void>): Promise<void> {
  const server = await startServer();
  const socket = connect(server.port, "127.0.0.1");
  const conn = new SMTPConnection({ connection: socket as Socket, ignoreTLS: true });
  try {
    await once(socket, "connect");
    const counts = { write: 0, writev: 0 };
    const internals = socket as unknown as { _write: (...args: unknown[]) => void; _writev: (...args: unknown[]) => void };
    const write = internals._write.bind(socket);
    const writev = internals._writev.bind(socket);
    internals._write = (...args) => (counts.write++, write(...args));
    internals._writev = (...args) => (counts.writev++, writev(...args));
    await conn.connect();
    await body(conn, counts, server);
  } finally {
    conn.close();
    socket.destroy();
    await server.close();
  }
}

test("a hundred small writes made in one turn once the body flows leave in one system call, byte-exact", () =>
  withCountedConnection(async (conn, counts, server) => {
    const stream = conn.createSendStream(env);
    await once(stream, "ready");
    const lines = Array.from({ length: 100 }, (_, i) => `Header-${i}: value ${i}\r\n`);
    const before = { ...counts };
    for (const line of lines) stream.write(line);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const calls = counts.write - before.write + (counts.writev - before.writev);
    assert.ok(calls <= 2, `${calls} socket writes for 100 small writes made in one turn`);
    stream.end("\r\nbody\r\n");
    await once(stream, "finish");
    assert.is(server.messages[0]!.data.toString(), lines.join("") + "\r\nbody\r\n");
  }));

test("large writes are not held back: each goes to the socket as it is written", () =>
  withCountedConnection(async (conn, counts, server) => {
    const stream = conn.createSendStream(env);
    await once(stream, "ready");
    const before = counts.write + counts.writev;
    stream.write(Buffer.alloc(64 * 1024, 0x61));
    assert.ok(counts.write + counts.writev > before, "the 64 KiB write reached the socket within write()");
    stream.end("\r\n");
    await once(stream, "finish");
    assert.is(server.messages[0]!.data.length, 64 * 1024 + 2);
  }));

leakCheckTest(test, unhandled);

test.run();
