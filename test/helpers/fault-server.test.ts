/**
 * Self-test of the fault server: each kind of step, driven by a raw socket (or node:tls
 * after an upgrade), and what it records.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { acceptEnvelope, ehloReply, greetAndEhlo, startFaultServer, type FaultServer } from "./fault-server.js";
import { getCerts } from "./certs.js";
import { assertNoLeaks, trackUnhandled } from "./leak-check.js";
import { settlesWithin } from "./callbacks.js";

trackUnhandled();

/** Reads what a socket receives and waits for patterns in it. */
class Reader {
  text = "";
  chunks: Buffer[] = [];
  ended = false;
  error: (Error & { code?: string }) | undefined;
  #waiters: Array<() => void> = [];
  constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.text += chunk.toString("latin1");
      this.#notify();
    });
    socket.on("end", () => {
      this.ended = true;
      this.#notify();
    });
    socket.on("error", (err) => {
      this.error = err;
      this.#notify();
    });
    socket.on("close", () => this.#notify());
  }
  #notify(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }
  /** Resolves with the text up to the end of the first match of `pattern`, and consumes it. */
  until(pattern: RegExp): Promise<string> {
    return settlesWithin(
      new Promise<string>((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(this.text);
          if (match) {
            const end = match.index + match[0].length;
            const text = this.text.slice(0, end);
            this.text = this.text.slice(end);
            resolve(text);
          } else if (this.socket.destroyed || this.ended) reject(new Error(`socket ended before ${pattern}; had ${JSON.stringify(this.text)}`));
          else this.#waiters.push(check);
        };
        check();
      }),
      5000,
      `waiting for ${pattern}`,
    );
  }
  /** Resolves once the socket has closed. */
  closed(): Promise<void> {
    return settlesWithin(
      new Promise<void>((resolve) => (this.socket.destroyed ? resolve() : this.socket.once("close", () => resolve()))),
      5000,
      "the socket close",
    );
  }
}

function connectTo(server: FaultServer): Promise<Reader> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(server.port, server.host, () => resolve(new Reader(socket)));
    socket.once("error", reject);
  });
}

function startTls(reader: Reader, options: { ca?: Buffer; servername?: string } = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    reader.socket.removeAllListeners("data");
    const secure = tlsConnect({ socket: reader.socket, ca: options.ca, servername: options.servername ?? "localhost" }, () => resolve(secure));
    secure.once("error", reject);
  });
}

test("plays a greeting and EHLO answer and records the commands", async () => {
  const server = await startFaultServer([...greetAndEhlo(["PIPELINING", "SIZE 1000"]), { expect: "QUIT" }, { send: "221 Bye\r\n" }, { close: true }]);
  const client = await connectTo(server);
  assert.match(await client.until(/\r\n/), /^220 /);
  client.socket.write("EHLO client.example\r\n");
  assert.is(await client.until(/250 SIZE 1000\r\n/), "250-fault.example.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
  client.socket.write("QUIT\r\n");
  assert.is(await client.until(/\r\n/), "221 Bye\r\n");
  await client.closed();
  const connection = await server.connection(0);
  await connection.done;
  assert.equal(connection.commands, ["EHLO client.example", "QUIT"]);
  assert.is(connection.received.toString(), "EHLO client.example\r\nQUIT\r\n");
  assert.ok(connection.scriptDone);
  server.assertNoScriptErrors();
  await server.close();
});

test("input sent just before the client closed still satisfies the script; later sends are skipped", async () => {
  const server = await startFaultServer([{ send: "220 hi\r\n" }, { expect: /^EHLO/ }, { send: "250 ok\r\n" }, { expect: "QUIT" }, { send: "221 bye\r\n" }]);
  const client = await connectTo(server);
  await client.until(/\r\n/);
  client.socket.end("EHLO a\r\nQUIT\r\n");
  await client.closed();
  const connection = await server.connection();
  await connection.done;
  assert.equal(connection.commands, ["EHLO a", "QUIT"]);
  assert.ok(connection.scriptDone);
  assert.is(connection.stoppedAt, undefined);
  await server.close();
});

test("ehloReply ends with the last keyword after a space", () => {
  assert.is(ehloReply([]), "250 fault.example.test\r\n");
  assert.is(ehloReply(["8BITMIME"], "mx.example.test"), "250-mx.example.test\r\n250 8BITMIME\r\n");
});

test("records an unexpected command as a script error and drops the connection", async () => {
  const server = await startFaultServer([...greetAndEhlo(), { expect: /^MAIL FROM:/ }, { send: "250 Ok\r\n" }]);
  const client = await connectTo(server);
  await client.until(/^220 .*\r\n/);
  client.socket.write("EHLO a\r\nRSET\r\n");
  await client.closed();
  const connection = await server.connection();
  await connection.done;
  assert.equal(connection.commands, ["EHLO a", "RSET"]);
  assert.equal(server.errors, ['connection 0, step 3: expected /^MAIL FROM:/, got "RSET"']);
  assert.is(connection.stoppedAt, 3);
  assert.not.ok(connection.scriptDone);
  assert.throws(() => server.assertNoScriptErrors(), /RSET/);
  await server.close();
});

test("reads pipelined commands one expect at a time", async () => {
  const server = await startFaultServer([...greetAndEhlo(["PIPELINING"]), ...acceptEnvelope(2), { stall: true }]);
  const client = await connectTo(server);
  await client.until(/^220 .*\r\n/);
  client.socket.write("EHLO a\r\n");
  await client.until(/250 PIPELINING\r\n/);
  client.socket.write("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n");
  assert.is(await client.until(/^354 .*\r\n/m), "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  const connection = await server.connection();
  assert.equal(connection.commands.slice(1), ["MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>", "RCPT TO:<c@example.test>", "DATA"]);
  client.socket.destroy();
  await server.close();
});

test("reads a DATA body up to the terminator, dot-stuffing included, then goes on", async () => {
  const server = await startFaultServer([
    ...greetAndEhlo(),
    ...acceptEnvelope(),
    { expectData: true },
    { send: "250 2.0.0 queued\r\n" },
    ...acceptEnvelope(),
    { expectData: true },
    { send: "250 2.0.0 queued again\r\n" },
    { expect: "QUIT" },
    { close: true },
  ]);
  const client = await connectTo(server);
  await client.until(/^220 .*\r\n/);
  client.socket.write("EHLO a\r\n");
  await client.until(/^250 .*\r\n/);
  client.socket.write("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
  await client.until(/^354 .*\r\n/m);
  // The terminator is split across writes, and a dot-stuffed line looks like one early.
  client.socket.write("Subject: x\r\n\r\n..not the end\r\n.\r");
  client.socket.write("\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
  await client.until(/^354 .*\r\n/m);
  client.socket.write(".\r\nQUIT\r\n");
  await client.until(/queued again\r\n/);
  await client.closed();
  const connection = await server.connection();
  await connection.done;
  assert.equal(connection.data.map(String), ["Subject: x\r\n\r\n..not the end\r\n.\r\n", ".\r\n"]);
  assert.equal(connection.commands.at(-1), "QUIT");
  assert.not.ok(connection.commands.some((line) => line.includes("Subject")), "a body line is not a command");
  server.assertNoScriptErrors();
  await server.close();
});

test("cuts the connection mid-body with closeAfter and keeps the bytes so far", async () => {
  const server = await startFaultServer([...greetAndEhlo(), ...acceptEnvelope(), { expectData: true, closeAfter: 10 }, { send: "250 never\r\n" }]);
  const client = await connectTo(server);
  await client.until(/^220 .*\r\n/);
  client.socket.write("EHLO a\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
  await client.until(/^354 .*\r\n/m);
  client.socket.write("0123456789abcdef\r\n.\r\n");
  await client.closed();
  const connection = await server.connection();
  await connection.done;
  assert.equal(connection.data.map(String), ["0123456789"]);
  assert.is(connection.stoppedAt, 9);
  assert.not.match(client.text, /never/);
  await server.close();
});

test("expectBytes reads exactly a BDAT chunk", async () => {
  const server = await startFaultServer([{ expect: /^BDAT 5 LAST$/ }, { expectBytes: 5 }, { send: "250 Ok\r\n" }, { expect: "QUIT" }, { close: true }]);
  const client = await connectTo(server);
  client.socket.write("BDAT 5 LAST\r\nab\r\ncQUIT\r\n");
  await client.until(/250 Ok\r\n/);
  await client.closed();
  const connection = await server.connection();
  await connection.done;
  assert.equal(connection.data.map(String), ["ab\r\nc"]);
  assert.equal(connection.commands, ["BDAT 5 LAST", "QUIT"]);
  await server.close();
});

test("sendSlowly sends one byte at a time", async () => {
  const server = await startFaultServer([{ sendSlowly: "220 slow\r\n", byteDelayMs: 2 }, { stall: true }]);
  const client = await connectTo(server);
  client.socket.setNoDelay(true);
  assert.is(await client.until(/\r\n/), "220 slow\r\n");
  assert.ok(client.chunks.length > 1, `expected several chunks, got ${client.chunks.length}`);
  assert.ok(client.chunks.every((chunk) => chunk.length <= 2), "at most a byte or two per chunk");
  client.socket.destroy();
  await server.close();
});

test("close sends FIN and the client sees the end of the stream", async () => {
  const server = await startFaultServer([{ send: "220 hi\r\n" }, { expect: /^EHLO/ }, { send: "250-first line" }, { close: true }]);
  const client = await connectTo(server);
  await client.until(/\r\n/);
  client.socket.write("EHLO a\r\n");
  await client.closed();
  assert.ok(client.ended);
  assert.is(client.error, undefined);
  assert.is(client.text, "250-first line");
  await server.close();
});

test("reset aborts with RST and the client sees ECONNRESET", async () => {
  const server = await startFaultServer([{ send: "220 hi\r\n" }, { expect: /^EHLO/ }, { reset: true }]);
  const client = await connectTo(server);
  await client.until(/\r\n/);
  client.socket.write("EHLO a\r\n");
  await client.closed();
  assert.is(client.error?.code, "ECONNRESET");
  const connection = await server.connection();
  await connection.done;
  assert.ok(connection.scriptDone);
  await server.close();
});

test("stall answers nothing, keeps the connection open and still records commands", async () => {
  const server = await startFaultServer([{ send: "220 hi\r\n" }, { stall: true }]);
  const client = await connectTo(server);
  await client.until(/\r\n/);
  client.socket.write("EHLO a\r\nQUIT\r\n");
  const connection = await server.connection();
  await settlesWithin(
    (async () => {
      while (connection.commands.length < 2) await new Promise((resolve) => setImmediate(resolve));
    })(),
    5000,
    "the stalled connection recording two commands",
  );
  assert.equal(connection.commands, ["EHLO a", "QUIT"]);
  assert.not.ok(connection.closed);
  assert.is(client.text, "");
  client.socket.destroy();
  await connection.whenClosed;
  await server.close();
});

test("readNothing backs up the client's writes; resumeReading drains them", async () => {
  const size = 32 * 1024 * 1024;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = await startFaultServer([{ readNothing: true }, { send: "220 not reading\r\n" }, { call: () => released }, { resumeReading: true }, { expectBytes: size }, { send: "250 got it all\r\n" }]);
  const client = await connectTo(server);
  await client.until(/\r\n/);
  const accepted = client.socket.write(Buffer.alloc(size, 0x61));
  assert.not.ok(accepted, "write() reports backpressure");
  // Let the kernel buffers fill: poll until the client's pending byte count stops moving.
  let last = -1;
  while (client.socket.writableLength !== last) {
    last = client.socket.writableLength;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const connection = await server.connection();
  assert.ok(client.socket.writableLength > 0, "bytes are still waiting in the client");
  assert.ok(connection.received.length < size, "the server has not read everything");
  release();
  assert.is(await client.until(/\r\n/), "250 got it all\r\n");
  assert.is(connection.data[0]?.length, size);
  client.socket.destroy();
  await server.close();
});

test("upgradeTls runs the rest over TLS and keeps pipelined cleartext out of it", async () => {
  const certs = getCerts();
  const server = await startFaultServer([
    ...greetAndEhlo(["STARTTLS"]),
    { expect: "STARTTLS" },
    { send: "220 Ready to start TLS\r\n" },
    { upgradeTls: certs.server },
    ...greetAndEhlo(["AUTH PLAIN"]).slice(1),
    { expect: /^AUTH PLAIN / },
    { send: "235 Ok\r\n" },
    { stall: true },
  ]);
  const client = await connectTo(server);
  await client.until(/^220 .*\r\n/);
  client.socket.write("EHLO a\r\n");
  await client.until(/250 STARTTLS\r\n/);
  client.socket.write("STARTTLS\r\nMAIL FROM:<injected@example.test>\r\n");
  await client.until(/^220 .*\r\n/m);
  const secure = await startTls(client, { ca: certs.ca });
  assert.ok(secure.authorized);
  const tlsReader = new Reader(secure);
  secure.write("EHLO b\r\n");
  await tlsReader.until(/^250 .*\r\n/m);
  secure.write("AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
  assert.is(await tlsReader.until(/\r\n/), "235 Ok\r\n");
  const connection = await server.connection();
  assert.ok(connection.secure);
  assert.is(connection.discardedBeforeTls.toString(), "MAIL FROM:<injected@example.test>\r\n");
  assert.equal(connection.commands, ["EHLO a", "STARTTLS", "EHLO b", "AUTH PLAIN AHVzZXIAc2VjcmV0"]);
  assert.is(connection.cleartext.toString(), "EHLO a\r\nSTARTTLS\r\nMAIL FROM:<injected@example.test>\r\n");
  assert.not.match(connection.cleartext.toString(), /AUTH/);
  assert.match(connection.received.toString(), /AUTH PLAIN/);
  secure.destroy();
  await connection.whenClosed;
  server.assertNoScriptErrors();
  await server.close();
});

test("a client that refuses the certificate leaves the handshake error in tlsError", async () => {
  const certs = getCerts();
  const server = await startFaultServer([{ upgradeTls: certs.selfSigned }, { send: "220 never\r\n" }]);
  const client = await connectTo(server);
  const failure = await startTls(client, { ca: certs.ca }).then(
    () => undefined,
    (err: Error & { code?: string }) => err,
  );
  assert.is(failure?.code, "DEPTH_ZERO_SELF_SIGNED_CERT");
  const connection = await server.connection();
  await connection.done;
  assert.ok(connection.tlsError, "the server saw the handshake fail");
  assert.not.ok(connection.secure);
  assert.is(connection.stoppedAt, 0);
  await connection.whenClosed;
  await server.close();
});

test("implicit TLS: a script starting with upgradeTls greets over TLS; reset works over TLS", async () => {
  const certs = getCerts();
  const server = await startFaultServer([{ upgradeTls: certs.server }, { send: "220 over TLS\r\n" }, { expect: /^EHLO / }, { reset: true }]);
  const secure = await new Promise<TLSSocket>((resolve, reject) => {
    const socket = tlsConnect({ host: server.host, port: server.port, ca: certs.ca, servername: "mx.example.test" }, () => resolve(socket));
    socket.once("error", reject);
  });
  const reader = new Reader(secure);
  await reader.until(/^220 .*\r\n/);
  secure.write("EHLO a\r\n");
  await reader.closed();
  assert.is(reader.error?.code, "ECONNRESET");
  const connection = await server.connection();
  assert.is(connection.cleartext.length, 0);
  assert.equal(connection.commands, ["EHLO a"]);
  await server.close();
});

test("a script function gives each connection its own script; close() ends open connections", async () => {
  const server = await startFaultServer((index) => [{ send: `${index === 0 ? "421" : "220"} connection ${index}\r\n` }, { stall: true }]);
  const first = await connectTo(server);
  const second = await connectTo(server);
  assert.is(await first.until(/\r\n/), "421 connection 0\r\n");
  assert.is(await second.until(/\r\n/), "220 connection 1\r\n");
  assert.is(server.connections.length, 2);
  await settlesWithin(server.close(), 5000, "server.close()");
  await first.closed();
  await second.closed();
  assert.ok(server.connections.every((connection) => connection.closed));
});

test("leaves no socket, timer or rejection behind", () => assertNoLeaks());

test.run();
