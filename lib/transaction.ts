/**
 * One mail transaction: [RSET] MAIL FROM, RCPT TO..., DATA, body, final reply (RFC 5321
 * §3.3), pipelined as one group when the server allows it (RFC 2920), and LMTP's one
 * final reply per accepted recipient (RFC 2033 §4.2).
 *
 * The transaction's state only moves forward:
 *   envelope (commands written, replies read) -> body (after 354: bytes flow through the
 *   DataEncoder) -> final (terminator sent, waiting for the final reply) -> done | failed.
 * With BDAT (RFC 3030) the body starts in the envelope's write: its first chunk (the whole
 * of a small message, as "BDAT n LAST") leaves with MAIL and RCPT, so a message costs one
 * round trip; the rest waits until the envelope is accepted. A refused envelope is
 * reported as over DATA; the server discards that chunk and its reply is dropped. The
 * envelope's commands and the judging of their replies are envelope-exchange.ts's.
 * With pipelining, the final state hands the wire to the next queued send, whose
 * envelope (led by RSET) goes out before this final reply arrives (OperationQueue).
 * A body that cannot be completed (source failed, stream destroyed, server answered
 * early) is never terminated: the connection is closed instead, so no partial message
 * can be delivered. A message abandoned before its body started ends with RSET, and the
 * connection goes on, unless DATA's 354 had come (then it is closed as well).
 */
import type { Socket } from "node:net";
import type { Envelope, RecipientOutcome, Reply, SendInfo } from "./types.js";
import { fromReply, replyText, SMTPError } from "./errors.js";
import { prepareEnvelope } from "./envelope.js";
import type { CommandQueue } from "./command-queue.js";
import { bdatChannel, dataChannel, type BodyChannel } from "./body.js";
import type { SendStream } from "./send-stream.js";
import { recipientOutcomes, sendFailure, speakingRefusal, type RecipientFacts, type SendFacts } from "./outcome.js";
import { isPositive, pipelinedEnvelope, stepwiseEnvelope, type StagedEnvelope } from "./envelope-exchange.js";

export type { StagedEnvelope } from "./envelope-exchange.js";

/** What the transactions on one connection know of one another. */
export interface TransactionState {
  /** The last transaction failed: RSET before the next MAIL. */
  needsReset: boolean;
  /**
   * Transactions that handed the wire over and still wait for their final reply. While
   * one does, whether it failed is not known yet, so the envelope starts with RSET.
   */
  finalsPending: number;
  /**
   * Envelopes written on this connection so far. A message refused at its final reply
   * asks for RSET only if no envelope (led by RSET) went out behind it meanwhile.
   */
  envelopesSent: number;
  /** quit() was called: QUIT follows the operations queued before it. */
  quitAsked: boolean;
}

/** What a transaction needs from the connection. */
export interface TransactionSession {
  readonly queue: CommandQueue;
  readonly socket: Socket;
  readonly extensions: ReadonlyMap<string, string[]>;
  readonly secure: boolean;
  readonly lmtp: boolean;
  /** PIPELINING advertised and not disabled. */
  readonly canPipeline: boolean;
  /** Send the body with BDAT: asked for, CHUNKING advertised, and pipelining possible. */
  readonly canChunk: boolean;
  /** Payload bytes per BDAT chunk (the `bdatChunkSize` option). */
  readonly bdatChunkSize: number;
  /** Notes a command the body writes itself (BDAT) as every other: transcript and diagnostics. */
  noteCommand(line: string): void;
  /** What the connection's transactions know of one another; shared, so mutable. */
  readonly state: TransactionState;
  /**
   * Closes the connection at once (no terminator, no QUIT); pending and queued operations
   * fail with `err`. The caller reports its own failure, so no `error` event follows.
   */
  abort(err: SMTPError): void;
  /** LMTP: a recipient's final reply arrived (the connection's `recipient` event). */
  recipient(outcome: RecipientOutcome, envelope: Envelope): void;
}

/** Reads every reply of a written group; a dead connection rejects with its error. */
async function readAll(replies: Promise<Reply>[]): Promise<Reply[]> {
  // The usual case (one final reply) needs none of allSettled's bookkeeping.
  if (replies.length === 1) return [await replies[0]!];
  const settled = await Promise.allSettled(replies);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((r) => (r as PromiseFulfilledResult<Reply>).value);
}

/**
 * Waits for the replies to a body that is complete on the wire: every BDAT chunk's, then
 * the final ones. With pipelining, the next send may write its envelope meanwhile
 * (RFC 2920 §3.1): its replies come after these, and it starts with RSET because whether
 * this message was accepted is not known when it is written.
 */
async function awaitFinal(session: TransactionSession, channel: BodyChannel, facts: SendFacts, handOver: () => void, refused: () => void): Promise<Reply[]> {
  if (session.canPipeline) {
    session.state.finalsPending++;
    handOver();
  }
  try {
    const replies = await readAll(channel.finalReplies);
    // Chunk replies come before the final ones: all are in now.
    const refusedChunk = channel.refusedChunk();
    if (refusedChunk) {
      refused();
      facts.refusal = refusedChunk;
      throw fromReply("EMESSAGE", "BDAT chunk refused", refusedChunk, "BDAT");
    }
    return replies;
  } finally {
    if (session.canPipeline) session.state.finalsPending--;
  }
}

/**
 * The message was abandoned (its stream destroyed, its signal aborted) while its envelope
 * was out and before any of its body: RSET ends the transaction and the connection goes on
 * (AUTH, for one, is refused inside a transaction). After DATA's 354 the server takes
 * every byte as message text and only the end of data leaves that mode, which would
 * deliver what it got: that case is cut like a body, by closing the connection.
 * Once quit() was called, QUIT ends the transaction as well (RFC 5321 §4.1.1.10), so the
 * RSET would only cost a round trip; a transaction queued before QUIT leads with it.
 */
async function abandonEnvelope(session: TransactionSession, reason: SMTPError): Promise<never> {
  if (session.state.quitAsked) {
    session.state.needsReset = true;
    throw reason;
  }
  const reset = await session.queue.send("RSET", "RSET").catch(() => undefined);
  // Refused or lost: the next transaction leads with RSET again (or finds the connection closed).
  session.state.needsReset = !isPositive(reset);
  throw reason;
}

/**
 * LMTP: each accepted recipient's final reply is recorded and announced (`recipient` on
 * the connection and on the SendStream) as it arrives, so a delivery agent learns each
 * verdict at once, and a connection lost halfway still tells who already has the message.
 */
function announceFinals(session: TransactionSession, finals: Promise<Reply>[], recipients: RecipientFacts[], envelope: Envelope, stream: SendStream | undefined): void {
  finals.forEach((final, i) =>
    final.then(
      (reply) => {
        const recipient = recipients[i]!;
        recipient.final = reply;
        const [outcome] = recipientOutcomes([recipient]);
        session.recipient(outcome!, envelope);
        stream?.emit("recipient", outcome);
      },
      () => undefined,
    ),
  );
}

/**
 * Runs one transaction; `handOver` lets the next send write its envelope (see awaitFinal).
 * `open` gives the session when the send's turn comes, or throws (the connection died
 * while it was queued). The message is a SendStream (it finishes with the SendInfo, or is
 * destroyed with the SMTPError) or, for send() with a string or Buffer, the whole
 * message, written with its terminator in one burst. A failure is this send's own error,
 * with what it tells (deliveryState, recipients) decided by outcome.ts.
 */
export async function runTransaction(open: () => TransactionSession, envelope: Envelope | StagedEnvelope, message: SendStream | Buffer, ehlo: string[], handOver: () => void): Promise<SendInfo> {
  const facts: SendFacts = { phase: "queued" };
  try {
    return await transact(open(), envelope, message, ehlo, handOver, facts);
  } catch (err) {
    const error = sendFailure(err, facts);
    if (!Buffer.isBuffer(message)) message.fail(error);
    throw error;
  }
}

/** Lets the body flow into `channel`: the stream is attached, or the whole message written and ended. */
function startBody(channel: BodyChannel, message: SendStream | Buffer): void {
  const { sink } = channel;
  if (!Buffer.isBuffer(message)) return message.attach(sink);
  sink.cork?.();
  sink.write(message);
  sink.end();
  sink.uncork?.();
}

const isStaged = (envelope: Envelope | StagedEnvelope): envelope is StagedEnvelope => typeof (envelope as StagedEnvelope | undefined)?.recipients === "function";

/** The envelope of a transaction, whole or staged (as far as it is known). */
export const envelopeOf = (envelope: Envelope | StagedEnvelope): Envelope => (isStaged(envelope) ? envelope.envelope : envelope);

async function transact(session: TransactionSession, envelope: Envelope | StagedEnvelope, message: SendStream | Buffer, ehlo: string[], handOver: () => void, facts: SendFacts): Promise<SendInfo> {
  const stream = Buffer.isBuffer(message) ? undefined : message;
  const staged = isStaged(envelope) ? envelope : undefined;
  const prepared = staged ? staged.prepare(session) : prepareEnvelope(envelope as Envelope, session);
  // Destroyed (or aborted) while queued behind other sends: nothing was written, nothing to undo.
  if (stream?.abortReason) throw stream.abortReason;
  stream?.begin();
  const started = Date.now();
  facts.phase = "envelope";
  facts.recipients = prepared.to.map((address) => ({ address }));
  // Counted as it is written (both envelope writers write their first line at once).
  const envelopeNumber = ++session.state.envelopesSent;
  // BDAT: the body starts with the envelope, before its replies are known. A staged
  // envelope is not written in one group, so it sends its body after DATA instead.
  const chunks = session.canChunk && !staged ? bdatChannel(session.queue, session.socket, { chunkSize: session.bdatChunkSize, binary: prepared.binary, noteCommand: session.noteCommand }) : undefined;
  const abandoned = () => stream?.abortReason !== undefined;
  const result = await (session.canPipeline && !staged ? pipelinedEnvelope(session, prepared, facts, chunks, chunks && (() => startBody(chunks, message))) : stepwiseEnvelope(session, prepared, facts, abandoned, staged)).catch((err: unknown) => {
    chunks?.stop();
    // A small message goes whole ("BDAT n LAST") with its envelope: it may be delivered.
    if (chunks?.ended()) facts.phase = "final";
    throw err;
  });
  session.state.needsReset = false;
  /** The message was refused after the hand-over: RSET first, unless a later envelope already led with it. */
  const refused = () => {
    if (session.state.envelopesSent === envelopeNumber) session.state.needsReset = true;
  };

  if (result.error) {
    // Chunks already written are discarded by the server; their replies are read and dropped.
    chunks?.stop();
    session.state.needsReset = true;
    // A server that opened DATA although the envelope failed gets an empty body so the
    // session leaves data mode; with no valid recipient nothing can be delivered.
    if (result.dataOpen) {
      const closing = session.queue.send("DATA", ".");
      await closing.catch(() => undefined);
    }
    throw result.error;
  }
  // Destroyed (or aborted) while its envelope was out, before a byte of its body went:
  // RSET ends the transaction. After DATA's 354, or once a BDAT chunk left, it is cut
  // mid-body below instead.
  const bodyWritten = result.dataOpen || (chunks !== undefined && (chunks.size() > 0 || chunks.ended()));
  if (stream?.abortReason && !bodyWritten) {
    chunks?.stop();
    // Abandoned while the leading RSET was out: the session is reset already, a second RSET would say nothing.
    if (result.beforeMail) throw stream.abortReason;
    return abandonEnvelope(session, stream.abortReason);
  }

  const envelopeTime = Date.now() - started;
  const bodyStarted = Date.now();
  const expected = session.lmtp ? result.accepted.length : 1;
  let channel: BodyChannel;
  if (chunks) {
    chunks.accept();
    channel = chunks;
  } else {
    channel = dataChannel(session.queue, session.socket, expected);
    startBody(channel, message);
  }
  facts.phase = "body";

  // A whole message (Buffer) has normally ended by now: no race to run. No never-settling
  // placeholder for it either: every race leaves a reaction on a promise that never
  // settles, one closure per message for the life of the process.
  const outcome = channel.ended()
    ? ({ kind: "ended" } as const)
    : await Promise.race([
    channel.flushed().then(() => ({ kind: "ended" }) as const),
    channel.problem(),
    ...(stream ? [stream.aborted.then((err) => ({ kind: "aborted", err }) as const)] : []),
  ]);

  if (outcome.kind !== "ended") {
    channel.stop();
    // The end of data may have left just before the failure: then the server may have it.
    if (channel.ended()) facts.phase = "final";
    // An early 4xx/5xx (e.g. 552 over quota mid-transfer) refuses the message. An early
    // positive reply answers nothing we sent (the body is not finished): a broken server,
    // EPROTOCOL and temporary, so a relay retries rather than bounces the message.
    const err =
      outcome.kind !== "early"
        ? outcome.err
        : outcome.reply.code >= 400
          ? fromReply("EMESSAGE", "Server refused the message before it was complete", outcome.reply, outcome.command)
          : fromReply("EPROTOCOL", "Server replied before the message was complete", outcome.reply, outcome.command, { temporary: true });
    // Without the terminator (or the last chunk) the server discards what it got; closing
    // is the only way to leave the body without delivering a partial message. Sends queued
    // behind this one fail with ECONNECTION: the stream's own error is not theirs.
    session.abort(
      outcome.kind === "dead"
        ? err
        : new SMTPError("ECONNECTION", `Connection closed because the message in progress could not be completed: ${err.message}`, { command: outcome.kind === "early" ? outcome.command : "DATA", temporary: true, cause: err }),
    );
    throw err;
  }

  const command = chunks ? "BDAT" : "DATA";
  facts.phase = "final";
  // Every final reply is expected by now (BDAT queues them with its last chunk).
  const settled = facts.recipients!.filter((r) => isPositive(r.rcpt));
  if (session.lmtp) announceFinals(session, channel.finalReplies, settled, envelopeOf(envelope), stream);
  const replies = await awaitFinal(session, channel, facts, handOver, refused);
  const messageTime = Date.now() - bodyStarted;
  if (!session.lmtp) for (const recipient of settled) recipient.final = replies[0];
  const info: SendInfo = {
    accepted: result.accepted,
    rejected: result.rejected,
    response: replyText(replies[replies.length - 1]!),
    envelopeTime,
    messageTime,
    messageSize: channel.size(),
    ehlo,
    recipients: recipientOutcomes(facts.recipients!),
  };
  if (result.rejectedErrors.length) info.rejectedErrors = result.rejectedErrors;

  if (session.lmtp) {
    // RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
    const delivered: string[] = [];
    const refusals: SMTPError[] = [];
    replies.forEach((reply, i) => {
      const address = result.accepted[i]!;
      if (isPositive(reply)) delivered.push(address);
      else {
        info.rejected.push(address);
        const refusal = fromReply("EMESSAGE", `Delivery to <${address}> failed`, reply, command, { recipient: address });
        refusals.push(refusal);
        (info.rejectedErrors ??= []).push(refusal);
      }
    });
    info.accepted = delivered;
    if (delivered.length === 0) {
      refused();
      // Temporary when any recipient's refusal was (see judgeEnvelope).
      facts.refusal = replies[refusals.indexOf(speakingRefusal(refusals)!)];
      throw fromReply("EMESSAGE", "Message failed for every recipient", facts.refusal!, command, { rejected: info.rejected, rejectedErrors: info.rejectedErrors });
    }
  } else if (!isPositive(replies[0])) {
    refused();
    facts.refusal = replies[0];
    throw fromReply("EMESSAGE", "Message failed", replies[0]!, command);
  }

  stream?.complete(info);
  return info;
}
