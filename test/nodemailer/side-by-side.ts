/**
 * Nodemailer's own SMTP transport, its pooled transport and smtp-wire/nodemailer driven the
 * same way: each gets the same transport options and the same calls, against an smtp-server
 * of its own started with the same options, and a test compares what each reported (the
 * sendMail info, or the error's fields) and what each server received.
 */
import type { Socket } from "node:net";
import nodemailer from "nodemailer";
import type SMTPTransport from "nodemailer/lib/smtp-transport";
import { smtpWire } from "../../lib/nodemailer/index.js";
import { startServer, type TestServer, type TestServerOptions } from "../helpers/server.js";

export type TransportKind = "smtp" | "pool" | "smtp-wire";
export const KINDS: readonly TransportKind[] = ["smtp", "pool", "smtp-wire"];

/** What Nodemailer's createTransport returns, whichever transport is inside. */
export type Transporter = ReturnType<typeof nodemailer.createTransport>;

/** What one transport reported, and what its server received. */
export interface Reported<T> {
  value?: T;
  error?: Error & Record<string, unknown>;
  server: TestServer;
}

/** The transport of this kind with these options (host and port of a loopback server, cleartext). */
export function transportOf(kind: TransportKind, options: Record<string, unknown>): Transporter {
  const all = { host: "127.0.0.1", secure: false, ignoreTLS: true, ...options };
  if (kind === "smtp") return nodemailer.createTransport(all as SMTPTransport.Options);
  if (kind === "pool") return nodemailer.createTransport({ ...all, pool: true } as SMTPTransport.Options);
  return nodemailer.createTransport(smtpWire(all));
}

/**
 * Runs `body` once per transport kind, each with a server of its own (started with these
 * options, or by `start`) and a transport made with `options` (a function of the server, for
 * its port); closes both after. `kinds`: the transports to run (the pooled ones, for what
 * only a pool has); the record holds only those.
 */
export async function eachTransport<T, S extends TestServer = TestServer>(
  server: TestServerOptions | (() => Promise<S>),
  options: (server: S) => Record<string, unknown>,
  body: (transporter: Transporter, server: S) => Promise<T>,
  kinds: readonly TransportKind[] = KINDS,
): Promise<Record<TransportKind, Reported<T>>> {
  const reported = {} as Record<TransportKind, Reported<T>>;
  const start = typeof server === "function" ? server : () => startServer(server) as Promise<S>;
  for (const kind of kinds) {
    const server = await start();
    const transporter = transportOf(kind, { port: server.port, ...options(server) });
    const outcome: Reported<T> = { server };
    try {
      outcome.value = await body(transporter, server);
    } catch (err) {
      outcome.error = err as Reported<T>["error"];
    } finally {
      await transporter.close();
      await server.close();
    }
    reported[kind] = outcome;
  }
  return reported;
}

/** The fields of a refusal both sides set: what users switch on. */
export function refusalFacts(err: unknown): Record<string, unknown> | undefined {
  if (!err) return undefined;
  const e = err as Record<string, unknown>;
  return { code: e.code, responseCode: e.responseCode, response: e.response, command: e.command, recipient: e.recipient, permanent: e.permanent };
}

/** The sendMail info fields Nodemailer's transports report, with the timings reduced to their types. */
export function infoFacts(info: unknown): Record<string, unknown> {
  const i = info as Record<string, unknown>;
  return {
    accepted: i.accepted,
    rejected: i.rejected,
    rejectedErrors: (i.rejectedErrors as unknown[] | undefined)?.map(refusalFacts),
    response: i.response,
    envelope: i.envelope,
    messageId: i.messageId,
    envelopeTime: typeof i.envelopeTime,
    messageTime: typeof i.messageTime,
    messageSize: i.messageSize,
  };
}

/** What a server received, per message: envelope and parameters. */
export function receivedFacts(server: TestServer): unknown[] {
  return server.messages.map((m) => ({ from: m.from, to: m.to, mailParams: m.mailParams, rcptParams: m.rcptParams }));
}

/** Where a dropping server breaks its first connection: before the greeting, under the first body, or once the body's end is read. */
export type DropPoint = "greeting" | "body" | "end-of-data";

/**
 * An smtp-server that breaks its first `times` connections at `where` (every socket it has
 * is destroyed, no reply), then accepts: `state.dropped` says how many it broke. A message
 * whose connection broke is not recorded.
 */
export async function startDroppingServer(where: DropPoint, times = 1, options: TestServerOptions = {}) {
  const state = { dropped: 0 };
  const sockets: Socket[] = [];
  const drop = () => {
    state.dropped++;
    for (const socket of sockets) socket.destroy();
  };
  const server = await startServer({
    ...options,
    onConnect(_session, callback) {
      if (where === "greeting" && state.dropped < times) return drop();
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      let cut = false;
      stream.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        // The first body's first bytes: with a large message, long before its end is written.
        if (where === "body" && state.dropped < times) {
          cut = true;
          drop();
        }
      });
      stream.on("end", () => {
        if (where === "end-of-data" && state.dropped < times) {
          cut = true;
          drop();
        }
        if (cut) return;
        const envelope = session.envelope;
        server.messages.push({ from: envelope.mailFrom ? envelope.mailFrom.address : "", to: envelope.rcptTo.map((r) => r.address), mailParams: {}, rcptParams: [], data: Buffer.concat(chunks), sizeExceeded: false });
        callback(null, "2.0.0 queued");
      });
    },
  });
  server.server.server.on("connection", (socket: Socket) => sockets.push(socket));
  return Object.assign(server, { state });
}
