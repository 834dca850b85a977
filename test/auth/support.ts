/**
 * Shared by the auth tests: a connection to a loopback server (cleartext credentials are
 * allowed there, so these tests are about the mechanisms, not the cleartext policy), and
 * a way to catch the error a call fails with.
 */
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError, type SMTPConnectionOptions } from "../../lib/index.js";

/** Connects to 127.0.0.1:`port` and resolves once the handshake is done. */
export async function connectTo(port: number, options: SMTPConnectionOptions = {}): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: "127.0.0.1", port, ...options });
  await conn.connect();
  return conn;
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

/** base64 of a UTF-8 string, as SASL puts it on the wire. */
export const b64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");
