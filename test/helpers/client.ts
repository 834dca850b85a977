/**
 * The client side most protocol tests start from: an SMTPConnection to a test server on
 * 127.0.0.1 (smtp-server from server.ts or the fault server), its handshake done.
 */
import { SMTPConnection, type SMTPConnectionOptions } from "../../lib/index.js";
import { startFaultServer, type FaultServer, type Script } from "./fault-server.js";

/** A connection to 127.0.0.1 at `server` (a port, or a server with one), once connect() resolved. */
export async function connected(server: number | { port: number }, options: SMTPConnectionOptions = {}): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: "127.0.0.1", port: typeof server === "number" ? server : server.port, ...options });
  await conn.connect();
  return conn;
}

/**
 * A fault server playing `script` and a client connected to it, the start of most tests of
 * what the client puts on the wire. `finish()` closes both, then fails on any step of the
 * script the client did not match.
 */
export async function faultSession(script: Script, options: SMTPConnectionOptions = {}): Promise<{ conn: SMTPConnection; fault: FaultServer; finish(): Promise<void> }> {
  const fault = await startFaultServer(script);
  const conn = await connected(fault, options);
  const finish = async (): Promise<void> => {
    conn.close();
    await fault.close();
    fault.assertNoScriptErrors();
  };
  return { conn, fault, finish };
}
