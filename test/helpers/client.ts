/**
 * The client side most protocol tests start from: an SMTPConnection to a test server on
 * 127.0.0.1 (smtp-server from server.ts or the fault server), its handshake done.
 */
import { SMTPConnection, type SMTPConnectionOptions } from "../../lib/index.js";

/** A connection to 127.0.0.1 at `server` (a port, or a server with one), once connect() resolved. */
export async function connected(server: number | { port: number }, options: SMTPConnectionOptions = {}): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: "127.0.0.1", port: typeof server === "number" ? server : server.port, ...options });
  await conn.connect();
  return conn;
}
