/**
 * Shared by the auth tests: a connection to a loopback server (cleartext credentials are
 * allowed there, so these tests are about the mechanisms, not the cleartext policy), a
 * session around a test body (connect, run it, quit, close the server), a way to catch
 * the error a call fails with, and the login checks every mechanism shares.
 */
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError, type SMTPConnectionOptions } from "../../lib/index.js";
import { startServer, type TestServer, type TestServerOptions } from "../helpers/server.js";
import { startFaultServer, type FaultServer, type Script } from "../helpers/fault-server.js";

/** The one account of the mechanism tests. */
export const ME = { me: "s3cret" };

/** Connects to 127.0.0.1:`port` and resolves once the handshake is done. */
export async function connectTo(port: number, options: SMTPConnectionOptions = {}): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: "127.0.0.1", port, ...options });
  await conn.connect();
  return conn;
}

type Body<S> = (conn: SMTPConnection, server: S) => Promise<void>;
type Rest<S> = [body: Body<S>] | [options: SMTPConnectionOptions, body: Body<S>];

/** Connects to `server` (with the options, when given), runs the body, quits, runs `check` and closes the server. */
async function session<S extends { port: number; close(): Promise<void> }>(server: S, rest: Rest<S>, check: (server: S) => void = () => {}): Promise<void> {
  const [options, body] = rest.length === 1 ? [{}, rest[0]] : rest;
  const conn = await connectTo(server.port, options);
  await body(conn, server);
  await conn.quit();
  check(server);
  await server.close();
}

/**
 * Starts smtp-server with `serverOptions`, connects to it (with `options`, when given),
 * runs `body`, then quits and closes the server.
 */
export async function withServer(serverOptions: TestServerOptions, body: Body<TestServer>): Promise<void>;
export async function withServer(serverOptions: TestServerOptions, options: SMTPConnectionOptions, body: Body<TestServer>): Promise<void>;
export async function withServer(serverOptions: TestServerOptions, ...rest: Rest<TestServer>): Promise<void> {
  await session(await startServer(serverOptions), rest);
}

/**
 * Starts a fault server playing `script`, connects to it (with `options`, when given),
 * runs `body`, then quits, checks that the script ran without a mismatch and closes the
 * server.
 */
export async function withFaultServer(script: Script, body: Body<FaultServer>): Promise<void>;
export async function withFaultServer(script: Script, options: SMTPConnectionOptions, body: Body<FaultServer>): Promise<void>;
export async function withFaultServer(script: Script, ...rest: Rest<FaultServer>): Promise<void> {
  await session(await startFaultServer(script), rest, (fault) => fault.assertNoScriptErrors());
}

/** The SMTPError `promise` rejects with; fails the test if it resolves. */
export async function failure(promise: Promise<unknown>): Promise<SMTPError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, SMTPError, "the call must fail with an SMTPError");
  return err as SMTPError;
}

/**
 * Logs in as "me" to smtp-server with `method`, checks that the session is
 * authenticated and that the server saw exactly one accepted attempt with that method
 * in cleartext; resolves with the server (closed) for further checks of what it read.
 */
export async function loginWith(method: string): Promise<TestServer> {
  let seen!: TestServer;
  await withServer({ users: ME }, async (conn, server) => {
    seen = server;
    await conn.login({ user: "me", pass: "s3cret", method });
    assert.is(conn.authenticated, true);
    assert.equal(server.auths, [{ method, username: "me", ok: true, secure: false }]);
  });
  return seen;
}

/**
 * Logs in as "me" to smtp-server with `method` and a wrong password, checks the EAUTH
 * carrying the server's 535 5.7.8 and that the session is not authenticated; resolves
 * with the error for further checks.
 */
export async function wrongPasswordFailure(method: string): Promise<SMTPError> {
  let err!: SMTPError;
  await withServer({ users: ME }, async (conn) => {
    err = await failure(conn.login({ user: "me", pass: "wrong", method }));
    assert.is(err.code, "EAUTH");
    assert.is(err.responseCode, 535);
    assert.is(err.enhancedCode, "5.7.8");
    assert.is(conn.authenticated, false);
  });
  return err;
}

/** base64 of a UTF-8 string, as SASL puts it on the wire. */
export const b64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");
