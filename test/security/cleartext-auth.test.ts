/**
 * Credentials never go over an unencrypted connection to a host that is not loopback,
 * unless the caller sets allowInsecureAuth: true (SPEC §8). login() then fails with EAUTH
 * saying why, before a byte of the credentials is written and before a token provider or
 * custom handler is even asked.
 *
 * "Loopback" needs both the `host` option and the socket's remote address to be loopback,
 * so the tests reach a server on 127.0.0.1 through the `connection` option while the
 * client is told it talks to smtp.example.com: exactly what a DNS or routing mistake would
 * look like.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import net from "node:net";
import os from "node:os";
import { SMTPConnection, SMTPError, type SMTPConnectionOptions } from "../../lib/index.js";
import { isLoopbackHost } from "../../lib/socket.js";
import { startServer, type TestServer, type TestServerOptions } from "../helpers/server.js";
import { startFaultServer, greetAndEhlo, type FaultServer } from "../helpers/fault-server.js";
import { getCerts } from "../helpers/certs.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const certs = getCerts();
const NAME = "client.example.test";
const REMOTE = "smtp.example.com";
const PASSWORD = "correct horse battery staple";

/** A connected socket to 127.0.0.1:`port`, for the `connection` option. */
async function socketTo(port: number, host = "127.0.0.1"): Promise<net.Socket> {
  const socket = net.connect(port, host);
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return socket;
}

/** A fault server that offers every method and expects nothing but EHLO and QUIT. */
function noAuthExpected(): Promise<FaultServer> {
  return startFaultServer([...greetAndEhlo(["AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 X-CUSTOM"]), { expect: "QUIT" }, { send: "221 bye\r\n" }]);
}

async function connectVia(port: number, options: SMTPConnectionOptions = {}): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: REMOTE, port, name: NAME, connection: await socketTo(port), ...options });
  await conn.connect();
  return conn;
}

type Body = (conn: SMTPConnection, server: TestServer) => Promise<void>;

/** Starts smtp-server with `serverOptions`, connects through connectVia() (with `options`, when given), runs `body`, then quits and closes the server. */
async function viaServer(serverOptions: TestServerOptions, ...rest: [Body] | [SMTPConnectionOptions, Body]): Promise<void> {
  const [options, body] = rest.length === 1 ? [{}, rest[0]] : rest;
  const server = await startServer(serverOptions);
  const conn = await connectVia(server.port, options);
  await body(conn, server);
  await conn.quit();
  await server.close();
}

function assertRefused(err: unknown): asserts err is SMTPError {
  assert.instance(err, SMTPError);
  const e = err as SMTPError;
  assert.is(e.code, "EAUTH");
  assert.is(e.command, "AUTH");
  assert.is(e.temporary, false);
  assert.match(e.message, /unencrypted connection to smtp\.example\.com \(127\.0\.0\.1\)/);
  assert.match(e.message, /allowInsecureAuth: true/);
  assert.not.ok(e.message.includes(PASSWORD));
}

const methods: [string, Parameters<SMTPConnection["login"]>[0]][] = [
  ["PLAIN", { user: "me", pass: PASSWORD, method: "PLAIN" }],
  ["LOGIN", { user: "me", pass: PASSWORD, method: "LOGIN" }],
  ["CRAM-MD5", { user: "me", pass: PASSWORD, method: "CRAM-MD5" }],
  ["the method chosen by itself", { user: "me", pass: PASSWORD }],
];
for (const [what, auth] of methods) {
  test(`refuses ${what} to a remote host over plaintext: EAUTH, and nothing but EHLO and QUIT on the wire`, async () => {
    const fault = await noAuthExpected();
    const conn = await connectVia(fault.port);
    const err = await conn.login(auth).catch((e: unknown) => e);
    assertRefused(err);
    assert.is(conn.authenticated, false);
    await conn.quit();
    const seen = await fault.connection();
    await seen.done;
    assert.is(seen.received.toString(), `EHLO ${NAME}\r\nQUIT\r\n`);
    fault.assertNoScriptErrors();
    await fault.close();
  });
}

test("refuses XOAUTH2 the same way, without asking the token provider", async () => {
  const fault = await noAuthExpected();
  const conn = await connectVia(fault.port);
  let asked = 0;
  const err = await conn
    .login({
      user: "me",
      oauth2: {
        getToken: async () => {
          asked++;
          return "ya29.token";
        },
      },
    })
    .catch((e: unknown) => e);
  assertRefused(err);
  assert.is(asked, 0);
  await conn.quit();
  const seen = await fault.connection();
  await seen.done;
  assert.is(seen.received.toString(), `EHLO ${NAME}\r\nQUIT\r\n`);
  await fault.close();
});

test("refuses a customAuth method the same way, without calling the handler", async () => {
  const fault = await noAuthExpected();
  let called = 0;
  const conn = await connectVia(fault.port, {
    customAuth: {
      "X-CUSTOM": (ctx) => {
        called++;
        ctx.resolve();
      },
    },
  });
  const err = await conn.login({ user: "me", pass: PASSWORD, method: "X-CUSTOM" }).catch((e: unknown) => e);
  assertRefused(err);
  assert.is(called, 0);
  assert.is(conn.authenticated, false);
  await conn.quit();
  await fault.close();
});

test("the session goes on after the refusal: mail can still be sent unauthenticated", async () => {
  await viaServer({ users: { me: PASSWORD } }, async (conn, server) => {
    assertRefused(await conn.login({ user: "me", pass: PASSWORD }).catch((e: unknown) => e));
    const info = await conn.send({ from: "a@example.test", to: "b@example.test" }, "Subject: x\r\n\r\ny\r\n");
    assert.equal(info.accepted, ["b@example.test"]);
    assert.equal(server.auths, []);
  });
});

test("allowInsecureAuth: true lets the caller send credentials in cleartext on purpose", async () => {
  await viaServer({ users: { me: PASSWORD } }, { allowInsecureAuth: true }, async (conn, server) => {
    await conn.login({ user: "me", pass: PASSWORD });
    assert.is(conn.authenticated, true);
    assert.equal(server.auths, [{ method: "CRAM-MD5", username: "me", ok: true, secure: false }]);
  });
});

test("a loopback host reached at a loopback address may authenticate in cleartext", async () => {
  const server = await startServer({ users: { me: PASSWORD } });
  for (const host of ["localhost", "127.0.0.1"]) {
    const conn = new SMTPConnection({ host, port: server.port, name: NAME });
    await conn.connect();
    await conn.login({ user: "me", pass: PASSWORD, method: "PLAIN" });
    assert.is(conn.authenticated, true, host);
    await conn.quit();
  }
  await server.close();
});

const external = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a && !a.internal && a.family === "IPv4")?.address;

test("a loopback host name is not enough: a socket to a non-loopback address is refused too", async () => {
  if (!external) return; // this machine has no non-loopback IPv4 address to test with
  const fault = await noAuthExpected();
  // A relay on the machine's own external address, so the socket's remote address is not loopback.
  const relay = net.createServer((client) => {
    const upstream = net.connect(fault.port, "127.0.0.1");
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => relay.listen(0, external, resolve));
  const port = (relay.address() as net.AddressInfo).port;
  const conn = new SMTPConnection({ host: "localhost", port, name: NAME, connection: await socketTo(port, external) });
  await conn.connect();
  const err = (await conn.login({ user: "me", pass: PASSWORD }).catch((e: unknown) => e)) as SMTPError;
  assert.is(err.code, "EAUTH");
  assert.match(err.message, new RegExp(`localhost \\(${external.replace(/\./g, "\\.")}\\)`));
  await conn.quit();
  const seen = await fault.connection();
  await seen.done;
  assert.is(seen.received.toString(), `EHLO ${NAME}\r\nQUIT\r\n`);
  await new Promise<void>((resolve) => relay.close(() => resolve()));
  await fault.close();
});

test("after STARTTLS the same remote host may authenticate: the credentials go encrypted", async () => {
  // mx.example.test is in the certificate; the socket goes to 127.0.0.1.
  await viaServer({ starttls: true, users: { me: PASSWORD } }, { host: "mx.example.test", tls: { ca: certs.ca } }, async (conn, server) => {
    assert.is(conn.secure, true);
    await conn.login({ user: "me", pass: PASSWORD });
    assert.is(conn.authenticated, true);
    assert.equal(server.auths, [{ method: "CRAM-MD5", username: "me", ok: true, secure: true }]);
  });
});

test("over implicit TLS the same remote host may authenticate", async () => {
  await viaServer({ secure: true, users: { me: PASSWORD } }, { host: "mx.example.test", secure: true, tls: { ca: certs.ca } }, async (conn, server) => {
    await conn.login({ user: "me", pass: PASSWORD, method: "PLAIN" });
    assert.equal(server.auths, [{ method: "PLAIN", username: "me", ok: true, secure: true }]);
  });
});

test("ignoreTLS towards a remote host leaves the session in plaintext, so login() is refused", async () => {
  await viaServer({ starttls: true, users: { me: PASSWORD } }, { ignoreTLS: true }, async (conn, server) => {
    assert.is(conn.secure, false);
    assertRefused(await conn.login({ user: "me", pass: PASSWORD }).catch((e: unknown) => e));
    assert.equal(server.auths, []);
  });
});

test("opportunisticTLS that went on in plaintext (STARTTLS refused) refuses login() to a remote host", async () => {
  const fault = await startFaultServer([
    ...greetAndEhlo(["STARTTLS", "AUTH PLAIN"]),
    { expect: "STARTTLS" },
    { send: "454 4.7.0 TLS not available\r\n" },
    { expect: /^EHLO / },
    { send: "250-fault.example.test\r\n250 AUTH PLAIN\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  const conn = await connectVia(fault.port, { opportunisticTLS: true });
  assert.is(conn.secure, false);
  assertRefused(await conn.login({ user: "me", pass: PASSWORD }).catch((e: unknown) => e));
  await conn.quit();
  const seen = await fault.connection();
  await seen.done;
  assert.not.match(seen.received.toString(), /AUTH/);
  fault.assertNoScriptErrors();
  await fault.close();
});

test("isLoopbackHost: loopback names and addresses only", () => {
  for (const host of ["localhost", "LOCALHOST", "mail.localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "::ffff:127.0.0.1"]) {
    assert.ok(isLoopbackHost(host), host);
  }
  for (const host of ["smtp.example.com", "localhost.example.com", "10.0.0.1", "128.0.0.1", "0.0.0.0", "::", "", undefined]) {
    assert.not.ok(isLoopbackHost(host), String(host));
  }
});

leakCheckTest(test, unhandled);

test.run();
