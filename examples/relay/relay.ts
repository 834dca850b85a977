/**
 * A streaming SMTP relay: smtp-server in front, smtp-wire behind, message bytes piped
 * straight through. It holds no mail: each inbound command is answered with the upstream
 * server's reply to the same command, and the inbound final reply is the upstream's, so
 * the relay says 250 only once the upstream has taken responsibility for the message.
 *
 * - Upstream connections come from an SMTPPool: each inbound session leases one when the
 *   client connects (an upstream that cannot be reached is a 421 to the client, which then
 *   tries its next MX) and gives it back when the client leaves, for the next session to
 *   reuse, unless XCLIENT made it speak for that client (then it is closed).
 * - The original client is passed on with XCLIENT when the upstream offers it (once, before
 *   the first MAIL), else with XFORWARD before each transaction.
 * - MAIL FROM opens an upstream transaction (beginTransaction); each RCPT TO is sent
 *   upstream and answered with the upstream's code and text; DATA pipes the inbound
 *   data stream into the upstream send stream, so a slow upstream slows the client
 *   (backpressure end to end) and nothing is spooled.
 * - A failure upstream mid-body closes the upstream connection without the end of data
 *   (no partial mail is delivered) and the client gets a 4xx to retry.
 *
 * Deliberately left out: TLS and AUTH on the inbound side (smtp-server options can add
 * them), queueing and retries (the sending client retries, as SMTP intends), LMTP inbound.
 */
import { SMTPServer, type SMTPServerAddress, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { fromXtext, SMTPError, SMTPPool, type MailTransaction, type RecipientDSN, type PoolLease, type PoolOptions, type SMTPConnection, type XClientAttributes, type XForwardAttributes } from "../../lib/index.js";

export interface RelayOptions {
  /**
   * Where to relay to: host, port, TLS, timeouts and credentials, as for SMTPPool, whose
   * `maxConnections` (default here 100) bounds the inbound sessions served at once: one
   * more waits for a connection before it is greeted.
   */
  upstream: PoolOptions;
  /** Options for the inbound smtp-server (banner, size, TLS keys, logger…). */
  server?: SMTPServerOptions;
  /** Pass the original client on with XCLIENT/XFORWARD when the upstream offers it. Default true. */
  forwardClient?: boolean;
  /** Called with upstream connection errors nobody was waiting for (default: ignored). */
  onUpstreamError?: (err: Error) => void;
}

/** A relay: the inbound server and the pool behind it. */
export interface Relay {
  /** The inbound smtp-server. */
  readonly server: SMTPServer;
  /** The upstream connections. */
  readonly pool: SMTPPool;
  /** Starts accepting connections; resolves with the address it listens on. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Stops accepting, waits for the sessions in progress, then closes the upstream connections. */
  close(): Promise<void>;
}

/** What the relay keeps per inbound session. */
interface Upstream {
  lease: PoolLease;
  conn: SMTPConnection;
  /** Stops watching the leased connection: it goes back to the pool. */
  unwatch(): void;
  /** Closed (by the server, a fault or us): the next MAIL opens a new connection. */
  closed: boolean;
  /** XCLIENT was sent on this connection. */
  introduced: boolean;
  /** The transaction of the inbound MAIL in progress, until its final reply. */
  tx?: MailTransaction;
}

/** An error smtp-server sends to the client as `responseCode message`. */
type InboundError = Error & { responseCode: number };

function inboundError(responseCode: number, text: string): InboundError {
  return Object.assign(new Error(text), { responseCode });
}

/** A reply's text without its code, its lines joined (smtp-server writes a single line). */
function replyWords(response: string): string {
  return response
    .split("\n")
    .map((line) => line.slice(4))
    .join(" ");
}

/**
 * The reply the inbound client gets for an upstream failure: the upstream's own code and
 * text when it replied (a 421 becomes 451: the inbound session goes on), otherwise 451
 * for anything temporary (connection lost, timeout) and 554 for the rest.
 */
export function replyFor(err: unknown): InboundError {
  const e = err instanceof SMTPError ? err : new SMTPError("EPROTOCOL", String((err as Error)?.message ?? err), { temporary: true });
  if (e.responseCode && e.response && e.responseCode >= 400) {
    return e.responseCode === 421 ? inboundError(451, `4.4.2 Upstream closed the connection: ${replyWords(e.response)}`) : inboundError(e.responseCode, replyWords(e.response));
  }
  if (e.code === "EMESSAGE" && !e.temporary) return inboundError(552, `5.3.4 ${e.message}`);
  return e.temporary ? inboundError(451, `4.4.2 Upstream failure, try again later: ${e.message}`) : inboundError(554, `5.3.0 ${e.message}`);
}

/** The XCLIENT / XFORWARD attributes of the inbound client, as far as the upstream offers them. */
function clientAttributes(session: SMTPServerSession, offered: readonly string[]): XClientAttributes & XForwardAttributes {
  const named = session.clientHostname && !session.clientHostname.startsWith("[") ? session.clientHostname : "[UNAVAILABLE]";
  const all: XClientAttributes & XForwardAttributes = {
    addr: session.remoteAddress,
    port: session.remotePort,
    name: named,
    helo: session.hostNameAppearsAs || undefined,
    proto: /^ESMTP/i.test(session.transmissionType ?? "") ? "ESMTP" : "SMTP",
    login: session.user ? String(session.user) : undefined,
    ident: session.id,
    source: "REMOTE",
  };
  const wire: Record<string, string> = { destAddr: "DESTADDR", destPort: "DESTPORT" };
  const upper = new Set(offered.map((name) => name.toUpperCase()));
  return Object.fromEntries(Object.entries(all).filter(([key, value]) => value !== undefined && value !== "" && upper.has(wire[key] ?? key.toUpperCase())));
}

/** The relay, not yet listening: `await createRelay(options).listen(port, host)`. */
export function createRelay(options: RelayOptions): Relay {
  const sessions = new Map<string, Upstream>();
  const forwardClient = options.forwardClient !== false;
  const pool = new SMTPPool({ maxConnections: 100, ...options.upstream });
  pool.on("error", (err: Error) => options.onUpstreamError?.(err));

  /** Gives the session's connection back; closed when it spoke for the client (XCLIENT) or broke. */
  function release(upstream: Upstream): void {
    upstream.unwatch();
    upstream.lease.release({ close: upstream.introduced || upstream.closed });
  }

  /** Sessions waiting for a lease, and those of them whose client left meanwhile. */
  const leasing = new Set<string>();
  const leftWhileLeasing = new Set<string>();

  async function openUpstream(session: SMTPServerSession): Promise<Upstream> {
    leasing.add(session.id);
    let lease: PoolLease;
    try {
      lease = await pool.acquire();
    } catch (err) {
      leftWhileLeasing.delete(session.id);
      throw err;
    } finally {
      leasing.delete(session.id);
    }
    const conn = lease.connection;
    const onEnd = () => (upstream.closed = true);
    const upstream: Upstream = { lease, conn, unwatch: () => conn.off("end", onEnd), closed: false, introduced: false };
    conn.on("end", onEnd);
    if (leftWhileLeasing.delete(session.id)) {
      release(upstream);
      throw new Error("the inbound client disconnected");
    }
    sessions.set(session.id, upstream);
    return upstream;
  }

  /** The session's upstream, leased again if the one it had was closed. */
  async function upstreamFor(session: SMTPServerSession): Promise<Upstream> {
    const current = sessions.get(session.id);
    if (current && !current.closed) return current;
    if (current) {
      sessions.delete(session.id);
      release(current);
    }
    return openUpstream(session);
  }

  /** Tells the upstream who the client is: XCLIENT once per connection, else XFORWARD per transaction. */
  async function introduce(upstream: Upstream, session: SMTPServerSession): Promise<void> {
    if (!forwardClient) return;
    const { conn } = upstream;
    const xclient = conn.extensions.get("XCLIENT");
    if (xclient && !upstream.introduced) {
      upstream.introduced = true;
      const { ident: _ident, source: _source, ...attributes } = clientAttributes(session, xclient);
      return conn.xclient(attributes);
    }
    const xforward = conn.extensions.get("XFORWARD");
    if (xforward && !upstream.introduced) {
      const { login: _login, ...attributes } = clientAttributes(session, xforward);
      return conn.xforward(attributes);
    }
  }

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    disableReverseLookup: true,
    // The upstream's enhanced status codes are passed on in its text, so none of our own.
    hideENHANCEDSTATUSCODES: true,
    logger: false,
    // DSN requests (RET, ENVID; each recipient's NOTIFY, ORCPT) are passed on upstream.
    hideDSN: false,
    ...options.server,

    onConnect(session, callback) {
      openUpstream(session).then(
        () => callback(),
        (err: unknown) => callback(inboundError(421, `4.4.1 Upstream unavailable, try another server: ${(err as Error).message}`)),
      );
    },

    onMailFrom(address: SMTPServerAddress, session, callback) {
      // A MAIL after RSET (or after a refused DATA) replaces the transaction left open.
      sessions.get(session.id)?.tx?.abort();
      const args = (address.args || {}) as Record<string, string | boolean>;
      upstreamFor(session)
        .then(async (upstream) => {
          upstream.tx = undefined;
          await introduce(upstream, session);
          upstream.tx = await upstream.conn.beginTransaction({
            from: address.address,
            size: Number(args.SIZE) || undefined,
            use8BitMime: String(args.BODY).toUpperCase() === "8BITMIME",
            smtpUtf8: Boolean(args.SMTPUTF8),
            dsn: args.RET || args.ENVID ? { ret: args.RET ? String(args.RET) : undefined, envid: args.ENVID ? fromXtext(String(args.ENVID)) : undefined } : undefined,
          });
        })
        .then(() => callback(), (err: unknown) => callback(replyFor(err)));
    },

    onRcptTo(address: SMTPServerAddress, session, callback) {
      const tx = sessions.get(session.id)?.tx;
      if (!tx) return callback(inboundError(503, "5.5.1 Error: need MAIL command"));
      tx.addRecipient(address.address, recipientDsn(address)).then(
        (outcome) => callback(outcome.status === "accepted" ? undefined : replyFor(outcome.error)),
        (err: unknown) => callback(replyFor(err)),
      );
    },

    onData(stream: Readable, session, callback) {
      const upstream = sessions.get(session.id);
      const tx = upstream?.tx;
      if (!tx) {
        stream.resume();
        return callback(inboundError(503, "5.5.1 Error: need MAIL command"));
      }
      const out = tx.createSendStream();
      let answered = false;
      const answer = (err: InboundError | null, text?: string) => {
        if (answered) return;
        answered = true;
        if (upstream.tx === tx) upstream.tx = undefined;
        callback(err, text);
      };
      out.once("finish", () => answer(null, replyWords(out.info!.response)));
      out.once("error", (err) => {
        // The rest of the message is read and dropped, so the client gets the reply.
        stream.unpipe(out);
        stream.resume();
        answer(replyFor(err));
      });
      stream.pipe(out);
    },

    onClose(session) {
      const upstream = sessions.get(session.id);
      sessions.delete(session.id);
      if (!upstream) {
        if (leasing.has(session.id)) leftWhileLeasing.add(session.id);
        return;
      }
      // A body cut short by the client is abandoned upstream: no partial mail.
      upstream.tx?.abort(new Error("the inbound client disconnected"));
      release(upstream);
    },
  });
  return {
    server,
    pool,
    listen: (port, host = "127.0.0.1") => new Promise((resolve) => server.listen(port, host, () => resolve(server.server.address() as AddressInfo))),
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.close();
    },
  };
}

/** A recipient's DSN parameters as its client gave them (RFC 3461 §4), for the upstream RCPT TO. */
function recipientDsn(address: SMTPServerAddress): RecipientDSN | undefined {
  const args = (address.args || {}) as Record<string, string | boolean>;
  if (!args.NOTIFY && !args.ORCPT) return undefined;
  return { notify: args.NOTIFY ? String(args.NOTIFY) : undefined, orcpt: args.ORCPT ? fromXtext(String(args.ORCPT)) : undefined };
}
