/**
 * Opening the transport: DNS, TCP (Happy Eyeballs), implicit TLS, a caller's socket, and
 * the STARTTLS upgrade of a live socket.
 *
 * Each resolution goes through Node's resolver with its own timeout; there is no global
 * DNS cache, so a changed record is seen on the next connection. Certificates are
 * verified unless the caller's `tls` options say otherwise. Nothing here speaks SMTP.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from "node:dns";
import net, { type Socket } from "node:net";
import os from "node:os";
import tls, { type ConnectionOptions as TlsConnectionOptions, type TLSSocket } from "node:tls";
import { plaintextServerError, SMTPError, tlsServerError } from "./errors.js";
import type { TlsInfo } from "./types.js";

export interface OpenOptions {
  host: string;
  port: number;
  secure: boolean;
  servername?: string;
  localAddress?: string;
  tls?: TlsConnectionOptions;
  socket?: Socket;
  connection?: Socket;
  dnsTimeout: number;
  allowInternalNetworkInterfaces: boolean;
}

const unbracket = (host: string): string => host.replace(/^\[|\]$/g, "");

/** Loopback names and addresses: the only places credentials may go unencrypted by default. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const h = unbracket(host).toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** SNI must not carry an IP literal (RFC 6066 §3). */
export function serverName(options: { host: string; servername?: string }): string | undefined {
  const name = options.servername ?? options.host;
  return net.isIP(unbracket(name)) ? undefined : name;
}

/** True when the machine has a usable interface of this family; internal ones count only when allowed. */
function isFamilyUsable(family: number, allowInternal: boolean): boolean {
  let addresses: os.NetworkInterfaceInfo[];
  try {
    addresses = Object.values(os.networkInterfaces()).flat() as os.NetworkInterfaceInfo[];
  } catch {
    return true;
  }
  if (addresses.length === 0) return true;
  return addresses.some((a) => (!a.internal || allowInternal) && (a.family === `IPv${family}` || (a.family as unknown) === family));
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * dns.lookup with a deadline; a late answer is ignored once the deadline fired. Addresses
 * of a family this machine can reach only through internal interfaces (Nodemailer's
 * allowInternalNetworkInterfaces) are tried last rather than dropped, so a loopback-only
 * machine still connects. `cancel()` gives up on a lookup in progress (its socket was
 * destroyed, say by an aborted connect()): the deadline's timer goes at once instead of
 * keeping the process alive until the resolver answers.
 */
function lookupWithTimeout(timeoutMs: number, allowInternal: boolean): { lookup: net.LookupFunction; cancel(): void } {
  let cancelled = false;
  let pending: NodeJS.Timeout | undefined;
  const lookup = (hostname: string, options: LookupAllOptions | number, callback: LookupCallback): void => {
    if (cancelled) return;
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      callback(new SMTPError("ETIMEDOUT", `DNS lookup of ${hostname} timed out after ${timeoutMs} ms`, { command: "CONN", temporary: true }) as unknown as NodeJS.ErrnoException, []);
    }, timeoutMs);
    pending = timer;
    const opts = typeof options === "number" ? { family: options } : options;
    dnsLookup(hostname, { ...opts, all: true }, (err, addresses) => {
      if (done || cancelled) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        const wrapped = new SMTPError("EDNS", `DNS lookup of ${hostname} failed: ${err.code ?? err.message}`, { command: "CONN", temporary: true, cause: err });
        return callback(wrapped as unknown as NodeJS.ErrnoException, []);
      }
      const usable = addresses.filter((a) => isFamilyUsable(a.family, allowInternal));
      const ordered = [...usable, ...addresses.filter((a) => !usable.includes(a))];
      if ((opts as LookupAllOptions).all) return callback(null, ordered);
      callback(null, ordered[0]!.address, ordered[0]!.family);
    });
  };
  const cancel = (): void => {
    cancelled = true;
    clearTimeout(pending);
  };
  return { lookup: lookup as unknown as net.LookupFunction, cancel };
}

/**
 * Starts connecting and returns the socket at once, with the event that means "ready"
 * (empty for a socket that is connected already), so the caller applies its own timeout.
 */
export function openSocket(options: OpenOptions): { socket: Socket; readyEvent: string } {
  // net.connect opens its handle before it checks the port, and a throw leaves that handle
  // open for the life of the process: check first.
  if (!options.connection && !(Number.isInteger(options.port) && options.port > 0 && options.port < 65536)) {
    throw new SMTPError("ECONNECTION", `Invalid port ${options.port}: an integer from 1 to 65535 is expected`, { command: "API", temporary: false });
  }
  if (options.connection) {
    // A `connection` with `secure` (and not `secured`) gets its TLS handshake here, as in
    // Nodemailer: trusting it as encrypted would send credentials in cleartext.
    if (options.secure) return { socket: upgradeSocket(options.connection, options), readyEvent: "secureConnect" };
    return { socket: options.connection, readyEvent: "" };
  }
  const { lookup, cancel } = lookupWithTimeout(options.dnsTimeout, options.allowInternalNetworkInterfaces);
  const target = { host: unbracket(options.host), port: options.port, localAddress: options.localAddress, lookup };
  let raw: Socket | undefined;
  if (options.socket) raw = options.socket.connect(target);
  let opened: { socket: Socket; readyEvent: string };
  if (options.secure) {
    // tls.connect hands its options to net.connect, which does Happy Eyeballs.
    const socket = tls.connect({ ...options.tls, ...target, servername: serverName(options), socket: raw, autoSelectFamily: true } as tls.ConnectionOptions);
    opened = { socket, readyEvent: "secureConnect" };
  } else opened = { socket: raw ?? net.connect({ ...target, autoSelectFamily: true }), readyEvent: "connect" };
  // Closed while the resolver still works on the name (an aborted connect(), a teardown):
  // no lookup result can be used any more, so its deadline timer goes now.
  (raw ?? opened.socket).once("close", cancel);
  return opened;
}

/** What a relay logs of an encrypted connection; undefined for a plaintext socket. */
export function tlsDetails(socket: Socket | undefined): TlsInfo | undefined {
  if (!(socket instanceof tls.TLSSocket) || !socket.encrypted) return undefined;
  return {
    cipher: socket.getCipher(),
    protocol: socket.getProtocol(),
    authorized: socket.authorized,
    authorizationError: socket.authorizationError,
    peerCertificate: socket.getPeerCertificate(),
  };
}

/** Wraps a live plaintext socket in TLS after STARTTLS's 220 (RFC 3207). */
export function upgradeSocket(socket: Socket, options: OpenOptions): TLSSocket {
  return tls.connect({ ...options.tls, socket, host: unbracket(options.host), servername: serverName(options) });
}

/**
 * Resolves once the TLS handshake of `socket` (certificate check included) succeeded;
 * rejects with Node's error, or when the server closes during the handshake. Its
 * listeners are gone either way, so the socket can then be wired to the session.
 */
export function handshakeDone(socket: TLSSocket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: unknown) => done(err);
    const onClose = () => done(new Error("The server closed the connection during the TLS handshake"));
    const onSecure = () => done();
    const done = (err?: unknown) => {
      socket.off("error", onError);
      socket.off("close", onClose);
      socket.off("secureConnect", onSecure);
      if (err === undefined) resolve();
      else reject(err);
    };
    socket.on("error", onError);
    socket.once("close", onClose);
    socket.once("secureConnect", onSecure);
  });
}

/**
 * Watches a new connection for the wrong TLS setting, so the error names the option to
 * change instead of quoting OpenSSL or waiting for a timeout: implicit TLS against a
 * plaintext port (OpenSSL reads the "220" greeting as a broken TLS record), and plaintext
 * against a TLS port (a TLS record, 0x16 handshake or 0x15 alert, where "220" belongs).
 */
export function watchForTlsMismatch(socket: Socket, implicitTls: boolean, port: number, onMismatch: (err: SMTPError) => void): void {
  if (implicitTls) {
    const onError = (err: unknown) => {
      const mismatch = plaintextServerError(err, port);
      if (mismatch) onMismatch(mismatch);
    };
    socket.prependListener("error", onError);
    socket.once("secureConnect", () => socket.off("error", onError));
    return;
  }
  socket.prependOnceListener("data", (chunk: Buffer) => {
    if (chunk[0] === 0x16 || chunk[0] === 0x15) onMismatch(tlsServerError(port));
  });
}
