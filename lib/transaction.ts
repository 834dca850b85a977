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
 * reported as over DATA; the server discards that chunk and its reply is dropped.
 * Every reply of a pipelined group is read before any is acted on, so we always know
 * whether the server is in DATA mode and whether RSET is needed before the next one.
 * With pipelining, the final state hands the wire to the next queued send, whose
 * envelope (led by RSET) goes out before this final reply arrives (OperationQueue).
 * A body that cannot be completed (source failed, stream destroyed, server answered
 * early) is never terminated: the connection is closed instead, so no partial message
 * can be delivered. A message abandoned before its body started ends with RSET, and the
 * connection goes on, unless DATA's 354 had come (then it is closed as well).
 */
import type { Socket } from "node:net";
import type { Envelope, RecipientOutcome, Reply, SendInfo } from "./types.js";
import { fromReply, replyText, SMTPError, REPLY } from "./errors.js";
import { prepareEnvelope, type PreparedEnvelope, type SessionFacts } from "./envelope.js";
import type { Command, CommandQueue } from "./command-queue.js";
import { bdatChannel, dataChannel, type BdatChannel, type BodyChannel } from "./body.js";
import type { SendStream } from "./send-stream.js";
import { recipientOutcomes, sendFailure, speakingRefusal, type RecipientFacts, type SendFacts } from "./outcome.js";

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

const RSET: Command = { command: "RSET", line: "RSET" };
const DATA: Command = { command: "DATA", line: "DATA" };

const isPositive = (reply: Reply | undefined): reply is Reply => reply !== undefined && reply.code >= 200 && reply.code < 300;

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

/** Reads every reply of a written group; a dead connection rejects with its error. */
async function readAll(replies: Promise<Reply>[]): Promise<Reply[]> {
  // The usual case (one final reply) needs none of allSettled's bookkeeping.
  if (replies.length === 1) return [await replies[0]!];
  const settled = await Promise.allSettled(replies);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((r) => (r as PromiseFulfilledResult<Reply>).value);
}

interface EnvelopeResult {
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
async function pipelinedEnvelope(session: TransactionSession, prepared: PreparedEnvelope, facts: SendFacts, chunks?: BdatChannel, startBody?: () => void): Promise<EnvelopeResult> {
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
async function stepwiseEnvelope(session: TransactionSession, prepared: PreparedEnvelope, facts: SendFacts, abandoned: () => boolean, staged?: StagedEnvelope): Promise<EnvelopeResult> {
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
