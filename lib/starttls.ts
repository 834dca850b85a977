/**
 * STARTTLS on a live connection (RFC 3207): send it when the policy says so, refuse any
 * byte the server sent before the TLS handshake, hand the socket to TLS, and ask EHLO
 * again. With opportunisticTLS a refused STARTTLS or a failed handshake goes on without
 * TLS.
 *
 * Deliberately left out: the policy table (handshake.ts), making the TLS socket
 * (socket.ts), and the reply pipeline, timers and teardown, which stay the session's.
 * A reply smuggled behind the 220 in the same packet is caught by wire.ts, the only
 * place that sees each reply as it is decoded; it fails with startTlsInjection().
 */
import type { TLSSocket } from "node:tls";
import type { SMTPConnectionOptions } from "./types.js";
import { fromReply, fromSocketError, SMTPError, REPLY } from "./errors.js";
import type { CommandQueue } from "./command-queue.js";
import type { ReplyPipeline } from "./reply-pipeline.js";
import type { Transcript } from "./logger.js";
import { decideStartTls, startTlsNotOffered, type Extensions } from "./handshake.js";
import { handshakeDone, upgradeSocket, type OpenOptions } from "./socket.js";

/** What STARTTLS needs from the connection, as it is when the policy is applied. */
export interface StartTlsSession {
  readonly options: SMTPConnectionOptions;
  readonly queue: CommandQueue;
  readonly transcript: Transcript;
  readonly secure: boolean;
  readonly extensions: Extensions;
  /** The plaintext pipeline, whose socket TLS takes over. */
  readonly pipeline: ReplyPipeline;
  /** Where the connection goes; its TLS options and server name serve the upgrade. */
  openOptions(): OpenOptions;
  /** The error the connection closed with; undefined while it is open. */
  closedWith(): SMTPError | undefined;
  /** Races `work` against the connection timeout, which closes the connection with the error `timedOut` makes. */
  within<T>(timedOut: () => SMTPError, work: Promise<T>): Promise<T>;
  /** Says EHLO (or LHLO) and keeps what the server advertised. */
  hello(): Promise<void>;
  /** Opens a new transport, reads the greeting and says EHLO. */
  reopen(): Promise<void>;
  /** The plaintext pipeline reads no more, so no reply can follow the 220 there. */
  plaintextStopped(): void;
  /** Wires the TLS socket to a new reply pipeline and marks the connection secure. */
  secured(socket: TLSSocket): void;
}

/** A reply (or any byte) after STARTTLS's 220 and before the TLS handshake. */
export function startTlsInjection(): SMTPError {
  return new SMTPError("ETLS", "Server sent data after STARTTLS ready (possible STARTTLS response injection)", { command: "STARTTLS", temporary: false });
}

/** Upgrades with STARTTLS when the policy asks for it; resolves once EHLO was said on the connection that goes on. */
export async function applyTlsPolicy(session: StartTlsSession): Promise<void> {
  const { options } = session;
  const decision = decideStartTls({ ...options, secure: session.secure }, session.extensions);
  if (decision === "fail") throw startTlsNotOffered();
  if (decision === "skip") return;
  const opportunistic = Boolean(options.opportunisticTLS && !options.requireTLS);
  const reply = await session.queue.send("STARTTLS", "STARTTLS");
  if (reply.code !== REPLY.SERVICE_READY) {
    if (opportunistic) return session.hello();
    throw fromReply("ETLS", "STARTTLS failed", reply, "STARTTLS");
  }
  // NO STARTTLS (USENIX Security 2021): bytes sent before the TLS handshake could be
  // read as replies of the encrypted session. An honest server sends none, so any is
  // an attack: fail rather than just discard, whatever the policy.
  if (session.pipeline.hasUnreadInput) throw startTlsInjection();
  const failure = await upgrade(session).then(
    () => undefined,
    (err: SMTPError) => err,
  );
  if (failure) {
    // A failed handshake leaves the TCP connection unusable, so opportunisticTLS goes on
    // without TLS on a new connection that does not ask for STARTTLS again. Not on a
    // socket the caller handed us (we cannot open another), nor once closed or timed out.
    if (!opportunistic || session.closedWith() || options.connection || options.socket) throw failure;
    session.transcript.info(`${failure.message}; going on without TLS on a new connection (opportunisticTLS)`);
    session.pipeline.destroy();
    return session.reopen();
  }
  // RFC 3207 §4.2: forget everything learned in plaintext.
  await session.hello();
}

/**
 * The TLS handshake after STARTTLS's 220. The TLS socket is wired to the session only
 * once the handshake (certificate check included) succeeded; until then a failure is
 * the upgrade's, rejected as ETLS with Node's error as `cause`, and the plaintext pipeline
 * is left for the caller to tear down.
 */
async function upgrade(session: StartTlsSession): Promise<void> {
  const plain = session.pipeline;
  plain.detach();
  session.plaintextStopped();
  const secured = upgradeSocket(plain.socket, session.openOptions());
  try {
    // The queue is empty during the handshake, so the timeout names STARTTLS itself.
    await session.within(() => new SMTPError("ETIMEDOUT", "TLS handshake timeout", { command: "STARTTLS", temporary: true }), handshakeDone(secured));
  } catch (err) {
    secured.on("error", () => {});
    secured.destroy();
    const fatal = session.closedWith();
    if (fatal) throw fatal;
    const error = fromSocketError(err, "STARTTLS", "ETLS");
    throw error.code === "ETLS" ? error : new SMTPError("ETLS", `TLS handshake after STARTTLS failed: ${error.message}`, { command: "STARTTLS", temporary: true, cause: err });
  }
  session.secured(secured);
}
