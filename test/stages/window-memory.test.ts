/**
 * Where encoded windows are written (lib/stages/window-memory.ts): memory given back after
 * a socket wrote it is used again, and only then; slab slices never overlap; and, end to
 * end, messages that need every window changed arrive byte-exact over several connections
 * at once (recycled memory in flight on each), and over a `connection` stream that keeps
 * what it is written (which must never get recycled memory).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type Socket } from "node:net";
import { Duplex, Readable } from "node:stream";
import { giveBack, isRecycled, takeFromSlab, takeRecycled } from "../../lib/stages/window-memory.js";
import { MAX_ENCODED_WINDOW } from "../../lib/stages/window-encoding.js";
import { SMTPConnection } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { createRandom, randomFor, seedNote } from "../helpers/random.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();

test("a recycled Buffer given back is the memory of the next one; each is taken back once; others are ignored", () => {
  const first = takeRecycled(1000);
  assert.is(first.length, 1000);
  assert.ok(isRecycled(first));
  const second = takeRecycled(MAX_ENCODED_WINDOW);
  assert.is.not(second.buffer, first.buffer, "two lent at once never share memory");
  giveBack(first);
  assert.not.ok(isRecycled(first), "given back");
  const third = takeRecycled(50);
  assert.is(third.buffer, first.buffer, "the memory given back is used again");
  giveBack(first);
  const fourth = takeRecycled(10);
  assert.is.not(fourth.buffer, third.buffer, "a Buffer given back again after its memory was lent anew is ignored");
  const stranger = Buffer.alloc(10);
  assert.not.ok(isRecycled(stranger));
  giveBack(stranger);
  const fifth = takeRecycled(10);
  assert.is.not(fifth.buffer, stranger.buffer, "memory not lent here is never taken");
  for (const buffer of [second, third, fourth, fifth]) giveBack(buffer);
});

test("slab slices of any sizes never overlap, and a slab is left when the next slice does not fit", () => {
  const random = randomFor("slab slices");
  const slices: Buffer[] = [];
  for (let i = 0; i < 200; i++) slices.push(takeFromSlab(random.int(1, MAX_ENCODED_WINDOW)));
  for (const [i, slice] of slices.entries()) slice.fill(i % 251);
  for (const [i, slice] of slices.entries()) assert.ok(slice.every((byte) => byte === i % 251), `slice ${i} kept its bytes${seedNote()}`);
  const slabs = new Set(slices.map((s) => s.buffer));
  assert.ok(slabs.size > 1 && slabs.size < slices.length, `${slabs.size} slabs for ${slices.length} slices`);
});

/** Text with bare LF line ends and dot-led lines: every window of it needs changes. */
function lfText(seed: number, bytes: number): string {
  const random = createRandom(seed);
  const lines: string[] = [];
  let size = 0;
  while (size < bytes) {
    const line = (random.chance(0.2) ? "." : "") + "word ".repeat(random.int(1, 14)) + `${seed}`;
    lines.push(line);
    size += line.length + 1;
  }
  return lines.join("\n") + "\n";
}

const onTheWire = (text: string) => text.replace(/\n/g, "\r\n");

test("messages whose every window changes arrive byte-exact over three connections at once", async () => {
  const server = await startServer();
  const connections = Array.from({ length: 3 }, () => new SMTPConnection({ host: "127.0.0.1", port: server.port, ignoreTLS: true }));
  try {
    await Promise.all(connections.map((c) => c.connect()));
    const texts = Array.from({ length: 9 }, (_, n) => lfText(n + 1, 600 * 1024 + n * 7919));
    await Promise.all(texts.map((text, n) => connections[n % 3]!.send({ from: "s@example.test", to: [`r${n}@example.test`] }, Buffer.from(text))));
    assert.is(server.messages.length, texts.length);
    for (const message of server.messages) {
      const n = Number(/^r(\d+)@/.exec(message.to[0]!)![1]);
      assert.ok(message.data.equals(Buffer.from(onTheWire(texts[n]!))), `message ${n} is byte-exact`);
    }
  } finally {
    for (const c of connections) c.close();
    await server.close();
  }
});

/** A stream given as the connection that keeps each chunk and passes it on later (as a queue or a PassThrough does). */
function keepingStream(socket: Socket): Duplex {
  const held: Buffer[] = [];
  let flushing = false;
  const flush = () => {
    flushing = false;
    for (const chunk of held.splice(0)) socket.write(chunk);
  };
  const stream = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      held.push(chunk);
      if (!flushing) {
        flushing = true;
        setTimeout(flush, 5);
      }
      // Done with it, as far as the writer can tell: it is only queued.
      callback();
    },
    read() {},
    final(callback) {
      flush();
      socket.end();
      callback();
    },
  });
  socket.on("data", (data) => stream.push(data));
  socket.on("end", () => stream.push(null));
  socket.on("close", () => stream.destroy());
  // What the connection calls on a socket, passed on.
  return Object.assign(stream, {
    setNoDelay: (on?: boolean) => socket.setNoDelay(on),
    setTimeout: (ms: number, listener?: () => void) => (socket.setTimeout(ms, listener), stream),
    setKeepAlive: (on?: boolean, delay?: number) => socket.setKeepAlive(on, delay),
  });
}

test("over a `connection` stream that keeps what it is written, windows are never recycled: the message arrives byte-exact", async () => {
  const server = await startServer();
  const socket = connect(server.port, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  const connection = new SMTPConnection({ connection: keepingStream(socket) as unknown as Socket, ignoreTLS: true });
  try {
    await connection.connect();
    const texts = [lfText(101, 900 * 1024), lfText(102, 700 * 1024)];
    // From a stream, so each window is written in a turn of its own, after the last one's write callback.
    const chunksOf = (bytes: Buffer) => Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536));
    for (const [n, text] of texts.entries()) await connection.send({ from: "s@example.test", to: [`r${n}@example.test`] }, Readable.from(chunksOf(Buffer.from(text))));
    assert.is(server.messages.length, 2);
    server.messages.forEach((message, n) => assert.ok(message.data.equals(Buffer.from(onTheWire(texts[n]!))), `message ${n} is byte-exact`));
  } finally {
    connection.close();
    socket.destroy();
    await server.close();
  }
});

leakCheckTest(test, unhandled);

test.run();
