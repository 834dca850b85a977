/**
 * Shared by the TLS tests (and the STARTTLS injection test): what connect() settles
 * with, the ETLS cases every certificate check must refuse, and the SNI a scripted
 * server saw.
 */
import * as assert from "uvu/assert";
import type { TLSSocket } from "node:tls";
import { SMTPConnection, SMTPError, type SMTPConnectionOptions } from "../../lib/index.js";
import { startFaultServer, type Script } from "../helpers/fault-server.js";
import { getCerts, type TestCerts } from "../helpers/certs.js";
import { settlesWithin } from "../helpers/callbacks.js";

/**
 * What `conn.connect()` settles with: undefined when it resolves, the SMTPError when it
 * rejects; fails the test if it does neither within 10 s.
 */
export function connectOutcome(conn: SMTPConnection): Promise<SMTPError | undefined> {
  return settlesWithin(
    conn.connect().then(
      () => undefined,
      (e: SMTPError) => e,
    ),
    10_000,
    "connect()",
  );
}

/**
 * Connects `conn` (or a new connection with these options), which must fail: closes it
 * and returns the SMTPError.
 */
export async function connectError(connection: SMTPConnection | SMTPConnectionOptions): Promise<SMTPError> {
  const conn = connection instanceof SMTPConnection ? connection : new SMTPConnection(connection);
  const err = await connectOutcome(conn);
  conn.close();
  assert.instance(err, SMTPError, "connect() must fail");
  return err!;
}

/** The certificates a verifying client refuses: what, which key pair, and OpenSSL's reason. */
export const CERT_REFUSALS: [string, keyof TestCerts, string][] = [
  ["a self-signed certificate", "selfSigned", "DEPTH_ZERO_SELF_SIGNED_CERT"],
  ["a certificate for another host", "wrongHost", "ERR_TLS_CERT_ALTNAME_INVALID"],
  ["an expired certificate", "expired", "CERT_HAS_EXPIRED"],
  ["a certificate from an unknown CA", "unknownCa", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
];

/**
 * Connects with `options` (trusting the test CA unless they say otherwise) to a fault
 * server playing `script`, and returns the SNI the server got (false for none); then
 * quits and closes the server.
 */
export async function sniSeen(script: Script, options: SMTPConnectionOptions): Promise<string | false> {
  const fault = await startFaultServer(script);
  const conn = new SMTPConnection({ port: fault.port, tls: { ca: getCerts().ca }, ...options });
  await conn.connect();
  const seen = await fault.connection();
  const servername = (seen.socket as TLSSocket).servername || false;
  await conn.quit();
  await fault.close();
  return servername;
}
