/**
 * The connection's options read with their defaults: the timeouts, the BDAT chunk size,
 * the name sent with EHLO/LHLO, and what opening the socket needs (see socket.ts).
 *
 * Deliberately left out: the option types (types.ts) and anything that acts on a value;
 * the connection decides when each timeout starts and what its expiry means.
 */
import net from "node:net";
import os from "node:os";
import type { SMTPConnectionOptions } from "./types.js";
import type { OpenOptions } from "./socket.js";
import { DEFAULT_BDAT_CHUNK_SIZE } from "./stages/bdat-encoder.js";

/** Milliseconds each timeout option waits when it is unset, zero or not a number (Nodemailer's values). */
export const DEFAULT_TIMEOUTS = {
  connectionTimeout: 2 * 60 * 1000,
  greetingTimeout: 30 * 1000,
  socketTimeout: 10 * 60 * 1000,
  dnsTimeout: 30 * 1000,
};

export type TimeoutOption = keyof typeof DEFAULT_TIMEOUTS;

/** The timeout option `name` in milliseconds; anything not a positive number gets its default. */
export function readTimeout(options: SMTPConnectionOptions, name: TimeoutOption): number {
  const value = Number(options[name]);
  return value > 0 ? value : DEFAULT_TIMEOUTS[name];
}

/** The `bdatChunkSize` option in bytes: a positive number (rounded down), else the default. */
export function readChunkSize(options: SMTPConnectionOptions): number {
  const value = Math.floor(Number(options.bdatChunkSize));
  return value > 0 ? value : DEFAULT_BDAT_CHUNK_SIZE;
}

/** os.hostname() when it is a usable FQDN, else the loopback literal (Nodemailer's rule). */
export function defaultClientName(): string {
  let name = "";
  try {
    name = os.hostname();
  } catch {
    /* some sandboxes refuse */
  }
  return name.includes(".") && /^[a-z0-9.-]+$/i.test(name) && !net.isIP(name) ? name.toLowerCase() : "[127.0.0.1]";
}

/** Where the connection stands now: `secure` turns true after STARTTLS. */
export interface Endpoint {
  host: string;
  port: number;
  secure: boolean;
}

/** What openSocket() and the STARTTLS upgrade need, from the caller's options and the connection's endpoint. */
export function openOptions(o: SMTPConnectionOptions, endpoint: Endpoint): OpenOptions {
  return {
    host: endpoint.host,
    port: endpoint.port,
    // A `connection` is wrapped in TLS here unless the caller says it is TLS already.
    secure: endpoint.secure && !(o.connection && o.secured),
    // Nodemailer's order: tls.servername, then servername, then host (never an IP).
    servername: o.tls?.servername ?? o.servername,
    localAddress: o.localAddress,
    tls: o.tls,
    socket: o.socket,
    connection: o.connection,
    dnsTimeout: readTimeout(o, "dnsTimeout"),
    allowInternalNetworkInterfaces: Boolean(o.allowInternalNetworkInterfaces),
  };
}
