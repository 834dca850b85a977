/**
 * A real smtp-server on a free loopback port that records what it received: the
 * envelope of each transaction, the exact message bytes after smtp-server's own DATA
 * reader (dot-stuffing undone), and every command line in order. Tests assert on these.
 */
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession, type SMTPServerAddress } from "smtp-server";
import type { AddressInfo } from "node:net";

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
  /** Every command line the server read, in order (as smtp-server logs them). */
  commands: string[];
  close(): Promise<void>;
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
}

export async function startServer(options: TestServerOptions = {}): Promise<TestServer> {
  const messages: ReceivedMessage[] = [];
  const commands: string[] = [];
  const { refuseRecipients = [], refuseSenders = [], slowReadMs, slowEvery = 1 << 20, onChunk, keepData = true, ...serverOptions } = options;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    disableReverseLookup: true,
    // smtp-server hides these by default; real MTAs offer them, and the tests check them.
    hideDSN: false,
    hideENHANCEDSTATUSCODES: false,
    ...serverOptions,
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
  });
  server.on("error", () => {
    /* a client reset during a fault test is not a server failure */
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  server.server.on("connection", (socket) => {
    let pending = "";
    socket.on("data", (chunk: Buffer) => {
      // Record only command lines; DATA bodies are long and recorded in messages.
      pending += chunk.toString("latin1");
      if (pending.length > 1 << 16) pending = pending.slice(-1024);
      let index: number;
      while ((index = pending.indexOf("\r\n")) >= 0) {
        const line = pending.slice(0, index);
        pending = pending.slice(index + 2);
        if (/^(EHLO|HELO|LHLO|MAIL|RCPT|DATA|RSET|QUIT|NOOP|AUTH|STARTTLS|BDAT)\b/i.test(line)) commands.push(line);
      }
    });
  });
  return {
    port,
    server,
    messages,
    commands,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
