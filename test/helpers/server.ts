/**
 * A real smtp-server on a free loopback port that records what it received: the
 * envelope of each transaction, the exact message bytes after smtp-server's own DATA
 * reader (dot-stuffing undone), and every command line in order. Tests assert on these.
 */
import {
  SMTPServer,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerOptions,
  type SMTPServerSession,
  type SMTPServerAddress,
} from "smtp-server";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { getCerts, type KeyPair } from "./certs.js";

export interface ReceivedMessage {
  from: string;
  to: string[];
  mailParams: Record<string, unknown>;
  rcptParams: Record<string, unknown>[];
  data: Buffer;
  sizeExceeded: boolean;
}

export interface TestServer {
  port: number;
  server: SMTPServer;
  messages: ReceivedMessage[];
  /** Every command line the server read, in order, also those sent over TLS (as smtp-server logs them). */
  commands: string[];
  /** Every AUTH attempt that reached onAuth, in order. */
  auths: AuthAttempt[];
  close(): Promise<void>;
}

export interface AuthAttempt {
  /** "PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"... */
  method: string;
  username: string;
  /** Whether it was accepted. */
  ok: boolean;
  /** Whether the session was over TLS at the time. */
  secure: boolean;
}

export interface TestServerOptions extends SMTPServerOptions {
  /** Refuse these recipients with 550 5.1.1. */
  refuseRecipients?: string[];
  /** Refuse these senders with 550 5.7.1. */
  refuseSenders?: string[];
  /** Read the body slowly: pause this many ms every `slowEvery` bytes. */
  slowReadMs?: number;
  slowEvery?: number;
  /** Do not keep message bytes (for huge messages); a hash function may be given instead. */
  onChunk?: (chunk: Buffer) => void;
  keepData?: boolean;
  /**
   * Offer STARTTLS with this key pair, or with the CA-signed localhost certificate of
   * getCerts() when true (clients then need `tls: { ca: getCerts().ca }`). Default false.
   * With `secure: true` (implicit TLS) and no `key`/`cert`, that certificate is used too.
   */
  starttls?: boolean | KeyPair;
  /**
   * Accept AUTH for these users: name → password (for XOAUTH2, the access token);
   * anything else is refused with 535 5.7.8. Unless given, also sets `authMethods` to
   * PLAIN, LOGIN, CRAM-MD5 and XOAUTH2 and `allowInsecureAuth` to true (the client, not
   * the server, is under test). An explicit `onAuth` takes precedence.
   */
  users?: Record<string, string>;
}

export async function startServer(options: TestServerOptions = {}): Promise<TestServer> {
  const messages: ReceivedMessage[] = [];
  const commands: string[] = [];
  const auths: AuthAttempt[] = [];
  const { refuseRecipients = [], refuseSenders = [], slowReadMs, slowEvery = 1 << 20, onChunk, keepData = true, starttls = false, users, ...serverOptions } = options;
  const implicitTls = Boolean(serverOptions.secure && !serverOptions.needsUpgrade && !serverOptions.secured);
  // smtp-server's built-in certificate would fail verification, which stays on in tests.
  const certificate = typeof starttls === "object" ? starttls : starttls || (implicitTls && !serverOptions.key && !serverOptions.cert) ? getCerts().server : undefined;
  function onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void): void {
    const record = (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse): void => {
      auths.push({ method: auth.method, username: auth.username ?? "", ok: !err && Boolean(response?.user), secure: Boolean(session.secure) });
      callback(err, response);
    };
    if (serverOptions.onAuth) return serverOptions.onAuth(auth, session, record);
    const expected = users && auth.username !== undefined ? users[auth.username] : undefined;
    const ok =
      expected !== undefined &&
      (auth.method === "XOAUTH2" ? auth.accessToken === expected : auth.method === "CRAM-MD5" ? auth.validatePassword(expected) : auth.password === expected);
    if (ok) return record(null, { user: auth.username });
    // XOAUTH2 fails as Gmail does: a 334 challenge with an error status, then 535.
    if (auth.method === "XOAUTH2") return record(null, { data: { status: "401", schemes: "bearer", scope: "https://mail.example.test/" } });
    record(Object.assign(new Error("5.7.8 Authentication credentials invalid"), { responseCode: 535 }));
  }

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: starttls ? [] : ["STARTTLS"],
    logger: false,
    disableReverseLookup: true,
    // smtp-server hides these by default; real MTAs offer them, and the tests check them.
    hideDSN: false,
    hideENHANCEDSTATUSCODES: false,
    ...(certificate ? { key: certificate.key, cert: certificate.cert } : {}),
    ...(users ? { authMethods: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"], allowInsecureAuth: true } : {}),
    ...serverOptions,
    onSecure(socket: Socket, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      // Listen only after smtp-server has piped the TLS socket to its parser (it does so
      // in this callback), so that no command reaches our listener alone.
      const done = (err?: Error | null): void => {
        callback(err);
        if (!err) recordCommands(socket);
      };
      if (serverOptions.onSecure) return serverOptions.onSecure(socket, session, done);
      done();
    },
    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      if (refuseSenders.includes(address.address)) {
        const err = Object.assign(new Error("5.7.1 Sender refused"), { responseCode: 550 });
        return callback(err);
      }
      if (serverOptions.onMailFrom) return serverOptions.onMailFrom(address, session, callback);
      callback();
    },
    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      if (refuseRecipients.includes(address.address)) {
        const err = Object.assign(new Error("5.1.1 User unknown"), { responseCode: 550 });
        return callback(err);
      }
      if (serverOptions.onRcptTo) return serverOptions.onRcptTo(address, session, callback);
      callback();
    },
    onData(stream, session, callback) {
      if (serverOptions.onData) return serverOptions.onData(stream, session, callback);
      const chunks: Buffer[] = [];
      let sinceSleep = 0;
      stream.on("data", (chunk: Buffer) => {
        onChunk?.(chunk);
        if (keepData) chunks.push(chunk);
        if (slowReadMs !== undefined) {
          sinceSleep += chunk.length;
          if (sinceSleep >= slowEvery) {
            sinceSleep = 0;
            stream.pause();
            setTimeout(() => stream.resume(), slowReadMs);
          }
        }
      });
      stream.on("end", () => {
        const sizeExceeded = Boolean((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded);
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          mailParams: session.envelope.mailFrom ? { ...(session.envelope.mailFrom.args || {}) } : {},
          rcptParams: session.envelope.rcptTo.map((r) => ({ ...(r.args || {}) })),
          data: Buffer.concat(chunks),
          sizeExceeded,
        });
        if (sizeExceeded) {
          const err = Object.assign(new Error("5.3.4 Message exceeds fixed maximum message size"), { responseCode: 552 });
          return callback(err);
        }
        callback(null, "2.0.0 Ok: queued");
      });
    },
    // Without `users` or an onAuth of the test's own, smtp-server's default (refuse all) stays.
    ...(users || serverOptions.onAuth ? { onAuth } : {}),
  });
  server.on("error", () => {
    /* a client reset during a fault test is not a server failure */
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;

  function recordCommands(socket: Socket): void {
    let pending = "";
    socket.on("data", (chunk: Buffer) => {
      // Record only command lines; DATA bodies are long and recorded in messages.
      pending += chunk.toString("latin1");
      if (pending.length > 1 << 16) pending = pending.slice(-1024);
      let index: number;
      while ((index = pending.indexOf("\r\n")) >= 0) {
        const line = pending.slice(0, index);
        pending = pending.slice(index + 2);
        if (/^(EHLO|HELO|LHLO|MAIL|RCPT|DATA|RSET|QUIT|NOOP|AUTH|STARTTLS|BDAT|XCLIENT|XFORWARD)\b/i.test(line)) commands.push(line);
      }
    });
  }
  // The cleartext part of each session; after STARTTLS smtp-server drops this listener
  // and onSecure records from the TLS socket. Under implicit TLS only onSecure records.
  if (!implicitTls) server.server.on("connection", recordCommands);
  return {
    port,
    server,
    messages,
    commands,
    auths,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A loopback port nothing listens on: one a server just gave back. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
