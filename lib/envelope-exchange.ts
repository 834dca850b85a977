/**
 * The envelope of one transaction on the wire: [RSET] MAIL FROM, RCPT TO..., DATA, written
 * as one pipelined group when the server allows it (RFC 2920), else one command at a time
 * (also for an envelope given one recipient at a time), and every reply judged in one
 * place: who was accepted, who refused, and whether the transaction stops here.
 *
 * Every reply of a pipelined group is read before any is acted on, so we always know
 * whether the server is in DATA mode and whether RSET is needed before the next one. The
 * body and the final reply are transaction.ts's.
 */
import type { Envelope, Reply } from "./types.js";
import { fromReply, REPLY, SMTPError } from "./errors.js";
import type { PreparedEnvelope, SessionFacts } from "./envelope.js";
import type { Command } from "./command-queue.js";
import type { BdatChannel } from "./body.js";
import { speakingRefusal, type SendFacts } from "./outcome.js";
import type { TransactionSession } from "./transaction.js";

const RSET: Command = { command: "RSET", line: "RSET" };
const DATA: Command = { command: "DATA", line: "DATA" };

export const isPositive = (reply: Reply | undefined): reply is Reply => reply !== undefined && reply.code >= 200 && reply.code < 300;

/**
 * An envelope given one recipient at a time (MailTransaction): MAIL FROM goes out first,
 * each RCPT TO as it is added, DATA once the body is asked for. It is written by the same
 * stepwise code as a whole envelope, so its replies are judged the same way.
 */
export interface StagedEnvelope {
  /** Checks the sender and the parameters; `to` grows as recipients are taken. */
  prepare(session: SessionFacts): PreparedEnvelope;
  /** MAIL FROM was accepted: recipients may come now. */
  mailAccepted(): void;
  /**
   * RCPT TO lines as they are added, in batches: each batch is every line added since the
   * last one was taken (several addRecipient() calls in one turn make one batch). Ends
   * once the body is asked for or the transaction abandoned (its stream destroyed).
   */
  recipients(): AsyncIterable<string[]>;
  /** The reply to the oldest RCPT TO taken from recipients() and not answered yet. */
  recipientAnswered(reply: Reply): void;
  /** The envelope as far as it is known (traces, events): the recipients added so far. */
  readonly envelope: Envelope;
}

/** A refused RCPT TO as the error reported for that recipient; undefined when it was accepted. */
export function recipientRefusal(address: string, reply: Reply): SMTPError | undefined {
  return isPositive(reply) ? undefined : fromReply("EENVELOPE", `RCPT TO:<${address}> rejected`, reply, "RCPT TO", { recipient: address });
}

export interface EnvelopeResult {
  accepted: string[];
  rejected: string[];
  rejectedErrors: SMTPError[];
  /** Set when the envelope failed; the transaction stops here. */
  error?: SMTPError;
  /** DATA got 354: the server is in data mode. */
  dataOpen: boolean;
  /** Abandoned before MAIL FROM was written: the server has no transaction to end. */
  beforeMail?: true;
}

function judgeEnvelope(prepared: PreparedEnvelope, facts: SendFacts, reset: Reply | undefined, mail: Reply, rcpts: (Reply | undefined)[], data: Reply | undefined): EnvelopeResult {
  const result: EnvelopeResult = { accepted: [], rejected: [], rejectedErrors: [], dataOpen: data?.code === REPLY.START_MAIL_INPUT };
  if (reset && !isPositive(reset)) {
    result.error = fromReply("EPROTOCOL", "RSET before the transaction failed", reset, "RSET");
    return result;
  }
  if (!isPositive(mail)) {
    result.error = fromReply("EENVELOPE", `MAIL FROM:<${prepared.from}> rejected`, mail, "MAIL FROM");
    return result;
  }
  // Only now: behind a refused MAIL, pipelined RCPT replies ("503 need MAIL") judge nobody.
  rcpts.forEach((reply, i) => (facts.recipients![i]!.rcpt = reply));
  rcpts.forEach((reply, i) => {
    const address = prepared.to[i]!;
    if (!reply) return;
    const refusal = recipientRefusal(address, reply);
    if (!refusal) result.accepted.push(address);
    else {
      result.rejected.push(address);
      result.rejectedErrors.push(refusal);
    }
  });
  if (result.accepted.length === 0) {
    // Temporary when any refusal was: a greylisted recipient is retried, not bounced.
    const speaking = speakingRefusal(result.rejectedErrors);
    result.error = new SMTPError(speaking?.code === "ECONNECTION" ? "ECONNECTION" : "EENVELOPE", `Can't send mail - all recipients were rejected: ${speaking?.response ?? ""}`.trim(), {
      response: speaking?.response,
      responseCode: speaking?.responseCode,
      enhancedCode: speaking?.enhancedCode,
      command: "RCPT TO",
      temporary: speaking?.temporary ?? false,
      rejected: result.rejected,
      rejectedErrors: result.rejectedErrors,
    });
    return result;
  }
  if (data && !result.dataOpen) result.error = fromReply("EENVELOPE", "DATA command failed", data, "DATA");
  return result;
}

/**
 * MAIL, RCPT... and DATA as one write, then every reply. With BDAT there is no DATA: the
 * first chunk goes in the same write (RFC 3030 with RFC 2920), started by `startBody`.
 */
export async function pipelinedEnvelope(session: TransactionSession, prepared: PreparedEnvelope, facts: SendFacts, chunks?: BdatChannel, startBody?: () => void): Promise<EnvelopeResult> {
  const { queue, socket } = session;
  const reset = session.state.needsReset || session.state.finalsPending > 0;
  // With BDAT there is no DATA: the first chunk follows the envelope directly.
  const data = !session.canChunk;
  // Built and read back by index, not by spreads and destructuring: this runs for every
  // message, and iterators are the larger part of what it would allocate.
  const group: Command[] = [];
  if (reset) group.push(RSET);
  group.push({ command: "MAIL FROM", line: prepared.mailLine });
  for (const line of prepared.rcptLines) group.push({ command: "RCPT TO", line });
  if (data) group.push(DATA);
  // LMTP: the number of replies to "BDAT n LAST" is the number of RCPTs accepted.
  const firstRcpt = reset ? 2 : 1;
  let accepted = 0;
  const onEach =
    chunks && session.lmtp
      ? (reply: Reply, i: number) => {
          if (i >= firstRcpt && isPositive(reply)) accepted++;
          if (i === firstRcpt + prepared.rcptLines.length - 1) chunks.expectFinals(Math.max(1, accepted));
        }
      : undefined;
  socket.cork();
  const replies = queue.sendGroup(group, onEach);
  startBody?.();
  socket.uncork();
  const all = await replies;
  const mail = reset ? 1 : 0;
  const rcptEnd = mail + 1 + prepared.rcptLines.length;
  return judgeEnvelope(prepared, facts, reset ? all[0] : undefined, all[mail]!, all.slice(mail + 1, rcptEnd), data ? all[rcptEnd] : undefined);
}

/** An envelope left unfinished because its message was abandoned: no error of its own. */
const ABANDONED: EnvelopeResult = Object.freeze({ accepted: [], rejected: [], rejectedErrors: [], dataOpen: false });
/** The same, abandoned while the leading RSET was out: that RSET already ended everything. */
const ABANDONED_BEFORE_MAIL: EnvelopeResult = Object.freeze({ ...ABANDONED, beforeMail: true });

/**
 * One command at a time, stopping at the first thing that makes going on pointless: a
 * refusal, or the message being abandoned (then above all before DATA, whose 354 would
 * leave closing the connection as the only way out). A staged envelope gives its
 * recipients as they are added and hears each one's reply; with PIPELINING, the
 * recipients added in one turn go out as one group (RFC 2920), so a caller that adds
 * them all at once waits one round trip, not one per recipient.
 */
export async function stepwiseEnvelope(session: TransactionSession, prepared: PreparedEnvelope, facts: SendFacts, abandoned: () => boolean, staged?: StagedEnvelope): Promise<EnvelopeResult> {
  const { queue } = session;
  // finalsPending is non-zero only with pipelining: a staged envelope behind an overlapped send.
  const reset = session.state.needsReset || session.state.finalsPending > 0 ? await queue.send("RSET", "RSET") : undefined;
  if (reset && !isPositive(reset)) return judgeEnvelope(prepared, facts, reset, reset, [], undefined);
  if (abandoned()) return ABANDONED_BEFORE_MAIL;
  const mail = await queue.send("MAIL FROM", prepared.mailLine);
  if (!isPositive(mail)) return judgeEnvelope(prepared, facts, reset, mail, [], undefined);
  staged?.mailAccepted();
  const rcpts: Reply[] = [];
  for await (const lines of staged?.recipients() ?? [prepared.rcptLines]) {
    if (abandoned()) return ABANDONED;
    if (session.canPipeline && lines.length > 1) {
      session.socket.cork();
      const replies = queue.sendGroup(
        lines.map((line) => ({ command: "RCPT TO", line })),
        (reply) => staged?.recipientAnswered(reply),
      );
      session.socket.uncork();
      for (const reply of await replies) rcpts.push(reply);
      continue;
    }
    for (const line of lines) {
      if (abandoned()) return ABANDONED;
      const reply = await queue.send("RCPT TO", line);
      rcpts.push(reply);
      staged?.recipientAnswered(reply);
    }
  }
  // The staged recipients are known only now.
  if (staged) facts.recipients = prepared.to.map((address) => ({ address }));
  if (abandoned()) return ABANDONED;
  if (!rcpts.some(isPositive)) return judgeEnvelope(prepared, facts, reset, mail, rcpts, undefined);
  const data = await queue.send("DATA", "DATA");
  return judgeEnvelope(prepared, facts, reset, mail, rcpts, data);
}
