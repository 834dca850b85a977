/**
 * What a send reports, decided in one place (SPEC §6, STYLE "Outcomes"): from how far the
 * send got and which replies came, never patched into an error where it failed.
 *
 * A send moves through the phases of the fault table (test/faults/phases.ts):
 *   queued (nothing written) -> envelope (MAIL, RCPT..., DATA written) -> body (after 354,
 *   no end of data yet) -> final (the terminator or last BDAT chunk is on the wire).
 * Before `final` the server cannot have the message: "not-sent", a retry never delivers it
 * twice. In `final`, a refusal the server sent is "rejected"; no verdict at all (connection
 * lost, timeout, garbage) is "unknown": the server may have queued the message (RFC 1047).
 *
 * Per recipient, as Postfix's smtp_rcpt_fail/smtp_mesg_fail do it: a recipient refused at
 * RCPT keeps that verdict; the others take their final reply (LMTP: their own), or the
 * failure that stopped the whole send. Deliberately left out: what to do about it (retry,
 * bounce) — that is the caller's policy; the README's outcome table gives the advice.
 */
import type { DeliveryState, RecipientOutcome, Reply } from "./types.js";
import { REPLY, replyText, SMTPError } from "./errors.js";

/** How far a send got; it only moves forward. */
export type SendPhase = "queued" | "envelope" | "body" | "final";

/** One recipient and the replies it got so far. */
export interface RecipientFacts {
  address: string;
  /** Its RCPT TO reply. */
  rcpt?: Reply;
  /** Its final reply: the one final reply for SMTP, its own for LMTP. */
  final?: Reply;
}

/** What happened to one send: all the outcome functions look at. */
export interface SendFacts {
  phase: SendPhase;
  /** Envelope recipients in order, once the envelope was checked. */
  recipients?: RecipientFacts[];
  /** A reply that refused the message after its end of data (final reply, BDAT chunk). */
  refusal?: Reply;
}

const isPositive = (reply: Reply): boolean => reply.code >= 200 && reply.code < 300;

/**
 * Whether the server may have the message (SPEC §6). `failure` is the error that stopped
 * the send, when one did.
 */
export function deliveryState({ phase, refusal, recipients }: Pick<SendFacts, "phase" | "refusal" | "recipients">, failure?: SMTPError): DeliveryState {
  if (phase !== "final") return "not-sent";
  if (refusal !== undefined && refusal.code >= 400) return "rejected";
  // A 421 where the final reply belongs is that reply, not a missing one: a server shutting
  // down answers with it instead of taking the message (RFC 5321 §3.8), so a retry cannot
  // duplicate it. It ends the connection, so it arrives as the connection's failure rather
  // than as a refusal. Not once an LMTP recipient had its own positive final reply: that
  // recipient has the message.
  const closingVerdict = failure?.responseCode === REPLY.SERVICE_NOT_AVAILABLE && !recipients?.some(({ final }) => final !== undefined && isPositive(final));
  return closingVerdict ? "rejected" : "unknown";
}

/** A recipient settled by a reply: 2xx accepted, 5xx rejected, anything else deferred (a retry may work). */
function settledBy(address: string, reply: Reply): RecipientOutcome {
  const status = isPositive(reply) ? "accepted" : reply.code >= 500 ? "rejected" : "deferred";
  return { address, status, responseCode: reply.code, ...(reply.enhancedCode ? { enhancedCode: reply.enhancedCode } : {}), response: replyText(reply) };
}

/** A recipient no reply of its own settled, taking the verdict of the failure that stopped the send. */
function settledByFailure(address: string, failure: SMTPError): RecipientOutcome {
  return {
    address,
    status: failure.temporary ? "deferred" : "rejected",
    ...(failure.responseCode !== undefined ? { responseCode: failure.responseCode } : {}),
    ...(failure.enhancedCode ? { enhancedCode: failure.enhancedCode } : {}),
    response: failure.response ?? failure.message,
  };
}

/**
 * One outcome per recipient: refused at RCPT keeps that reply; otherwise its final reply,
 * else the failure of the whole send (a send that failed before the recipient's verdict).
 */
export function recipientOutcomes(recipients: readonly RecipientFacts[], failure?: SMTPError): RecipientOutcome[] {
  return recipients.map(({ address, rcpt, final }) => {
    if (rcpt && !isPositive(rcpt)) return settledBy(address, rcpt);
    if (final) return settledBy(address, final);
    if (failure) return settledByFailure(address, failure);
    return settledBy(address, rcpt!);
  });
}

/**
 * The refusal that speaks for a send refused for every recipient: the first temporary one
 * if any, so a greylisted recipient (451) is retried rather than bounced whatever the order
 * the recipients were given in.
 */
export function speakingRefusal<T extends { temporary: boolean }>(refusals: readonly T[]): T | undefined {
  return refusals.find((refusal) => refusal.temporary) ?? refusals[0];
}

/**
 * The error a failed send rejects with: `err`, this send's own instance, completed with
 * its deliveryState and recipients. A deliveryState decided earlier (by the SendStream at
 * the moment its source failed, with the same function) is kept.
 */
export function sendFailure(err: unknown, facts: SendFacts): SMTPError {
  const error =
    err instanceof SMTPError ? err : new SMTPError("EPROTOCOL", String((err as Error)?.message ?? err), { command: "API", cause: err });
  error.deliveryState ??= deliveryState(facts, error);
  if (facts.recipients && !error.recipients) error.recipients = recipientOutcomes(facts.recipients, error);
  return error;
}
