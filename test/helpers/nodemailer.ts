/**
 * Nodemailer's SMTPConnection and ours driven the same way, for the compatibility tests
 * (issue 11): each test gives both clients the same options and the same calls against
 * the same server and compares what each reports (value or error, lastServerResponse)
 * and what the server received.
 *
 * Nodemailer reports some failures only as an `error` event (a failed handshake never
 * calls the connect callback), so its driver settles each call on its callback, the
 * next `error` event, or `end`, whichever comes first. Both drivers close their
 * connection and wait for `end`, so a test leaves nothing open.
 */
import NodemailerConnection from "nodemailer/lib/smtp-connection";
import { SMTPConnection } from "../../lib/connection.js";
import type { SMTPConnectionOptions } from "../../lib/types.js";

/** What a test does with a connection: the calls common to both APIs. */
export interface Driver {
  readonly client: "nodemailer" | "smtp-wire";
  connect(): Promise<void>;
  login(auth: unknown): Promise<void>;
  send(envelope: unknown, message: string | Buffer): Promise<Record<string, unknown>>;
  lastServerResponse(): string | false;
  /** The connection object itself, for what only one API has. */
  readonly raw: unknown;
  /** Closes (if still open) and resolves once `end` was emitted. */
  close(): Promise<void>;
}

/** What one client reported for a scenario: its result or its error, and its last reply. */
export interface Outcome<T> {
  client: Driver["client"];
  value?: T;
  error?: Error & Record<string, unknown>;
  lastServerResponse: string | false;
}

type NodemailerLike = NodemailerConnection & { _destroyed?: boolean; lastServerResponse: string | false };

/** A driver for Nodemailer's SMTPConnection with these options. */
export function nodemailerDriver(options: SMTPConnectionOptions): Driver {
  const conn = new NodemailerConnection(options as NodemailerConnection.Options) as NodemailerLike;
  let ended = false;
  const end = new Promise<void>((resolve) => conn.once("end", () => ((ended = true), resolve())));
  // Nodemailer emits errors it has no callback for; they settle the call in progress.
  let failCurrent: ((err: Error) => void) | undefined;
  conn.on("error", (err: Error) => failCurrent?.(err));
  const call = <T>(start: (done: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      failCurrent = reject;
      end.then(() => reject(Object.assign(new Error("connection ended before the call settled"), { code: "ENDED" })));
      start((err, value) => (err ? reject(err) : resolve(value as T)));
    });
  return {
    client: "nodemailer",
    raw: conn,
    connect: () => call<void>((done) => conn.connect((err?: Error | null) => done(err))),
    login: (auth) => call<void>((done) => conn.login(auth as NodemailerConnection.Credentials, (err?: Error | null) => done(err))),
    send: (envelope, message) =>
      call<Record<string, unknown>>((done) => conn.send(envelope as NodemailerConnection.Envelope, message, (err, info) => done(err, info as unknown as Record<string, unknown>))),
    lastServerResponse: () => conn.lastServerResponse,
    close: async () => {
      if (!ended) conn.close();
      await end;
    },
  };
}

/** A driver for our SMTPConnection with these options. */
export function smtpWireDriver(options: SMTPConnectionOptions): Driver {
  const conn = new SMTPConnection(options);
  let ended = false;
  const end = new Promise<void>((resolve) => conn.once("end", () => ((ended = true), resolve())));
  conn.on("error", () => {
    /* every failure also reaches the call that met it; that is what the tests compare */
  });
  return {
    client: "smtp-wire",
    raw: conn,
    connect: () => conn.connect(),
    login: (auth) => conn.login(auth as never),
    send: (envelope, message) => conn.send(envelope as never, message) as unknown as Promise<Record<string, unknown>>,
    lastServerResponse: () => conn.lastServerResponse,
    close: async () => {
      if (!ended) conn.close();
      await end;
    },
  };
}

/**
 * Runs `scenario` once with each client (Nodemailer first), each on its own connection
 * with the same options, and returns what each reported. The connection is closed after.
 */
export async function sideBySide<T>(options: SMTPConnectionOptions, scenario: (driver: Driver) => Promise<T>): Promise<{ nodemailer: Outcome<T>; ours: Outcome<T> }> {
  const run = async (driver: Driver): Promise<Outcome<T>> => {
    const outcome: Outcome<T> = { client: driver.client, lastServerResponse: false };
    try {
      outcome.value = await scenario(driver);
    } catch (err) {
      outcome.error = err as Outcome<T>["error"];
    }
    outcome.lastServerResponse = driver.lastServerResponse();
    await driver.close();
    return outcome;
  };
  const nodemailer = await run(nodemailerDriver({ logger: false, ...options }));
  const ours = await run(smtpWireDriver({ logger: false, ...options }));
  return { nodemailer, ours };
}

/** The fields of an error both clients set, for side-by-side comparison. */
export function errorFacts(err: Outcome<unknown>["error"]): { code?: unknown; response?: unknown; responseCode?: unknown; command?: unknown } | undefined {
  if (!err) return undefined;
  return { code: err.code, response: err.response, responseCode: err.responseCode, command: err.command };
}
