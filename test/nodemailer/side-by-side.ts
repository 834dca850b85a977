/**
 * Nodemailer's own SMTP transport, its pooled transport and smtp-wire/nodemailer driven the
 * same way: each gets the same transport options and the same calls, against an smtp-server
 * of its own started with the same options, and a test compares what each reported (the
 * sendMail info, or the error's fields) and what each server received.
 */
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
 * Runs `body` once per transport kind, each with a server of its own (these options) and a
 * transport made with `options` (a function of the server, for its port); closes both after.
 */
export async function eachTransport<T>(
  serverOptions: TestServerOptions,
  options: (server: TestServer) => Record<string, unknown>,
  body: (transporter: Transporter, server: TestServer) => Promise<T>,
): Promise<Record<TransportKind, Reported<T>>> {
  const reported = {} as Record<TransportKind, Reported<T>>;
  for (const kind of KINDS) {
    const server = await startServer(serverOptions);
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
  return { code: e.code, responseCode: e.responseCode, response: e.response, command: e.command, recipient: e.recipient };
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
