/**
 * A mail transaction opened one step at a time (`conn.beginTransaction()`): MAIL FROM
 * first, then one RCPT TO per addRecipient() with that recipient's own reply, then the
 * body through createSendStream(). This is what a relay needs to answer each command of
 * its own client with the upstream server's reply before it reads the next one.
 *
 * It writes nothing itself. transaction.ts runs it through the same stepwise envelope code
 * as a whole envelope (reading recipients() as they are added) and the same body and
 * final-reply code, so replies are judged, RSET is sent and the message is delivered
 * exactly as for `createSendStream(envelope)`. With PIPELINING, the recipients added in one
 * turn (several addRecipient() calls without an await between them) go out in one write;
 * one added after the reply to the one before (a relay answering its client in between)
 * waits for it, as it must. Deliberately left out: pipelining MAIL FROM with the RCPTs
 * (MAIL's reply settles beginTransaction() first), and BDAT: the body follows DATA.
 */
import type { AddressObject, Envelope, RecipientOutcome, Reply } from "./types.js";
import { badInput, connectionFailure, SMTPError } from "./errors.js";
import { recipientOutcomes } from "./outcome.js";
import { prepareEnvelope, recipientLine, type PreparedEnvelope, type RecipientDSN, type SessionFacts } from "./envelope.js";
import { SendStream } from "./send-stream.js";
import { recipientRefusal } from "./envelope-exchange.js";

/** The envelope of a transaction opened with beginTransaction(): everything but `to`. */
export type TransactionEnvelope = Omit<Envelope, "to">;

/**
 * What the server said to one RCPT TO of a transaction opened with beginTransaction(): the
 * recipient's outcome as SendInfo.recipients reports it, and for a refused recipient the
 * EENVELOPE error, as SendInfo.rejectedErrors holds it.
 */
export type RecipientReply = RecipientOutcome & { error?: SMTPError };

interface PendingRecipient {
  address: string;
  line: string;
  resolve(outcome: RecipientReply): void;
  reject(err: SMTPError): void;
}

const ignore = (): void => {};

/** Judged as the whole-envelope path judges it: outcome.ts for the outcome, transaction.ts for the error. */
function outcomeOf(address: string, reply: Reply): RecipientReply {
  const [outcome] = recipientOutcomes([{ address, rcpt: reply }]);
  const error = recipientRefusal(address, reply);
  return error ? { ...outcome!, error } : outcome!;
}

/**
 * A transaction whose envelope is given one step at a time. Get one from
 * `conn.beginTransaction(envelope)`, which resolves once MAIL FROM was accepted; then add
 * recipients, and either take the body stream or abort.
 */
export class MailTransaction {
  readonly #envelope: TransactionEnvelope;
  readonly #stream = new SendStream();
  #prepared: PreparedEnvelope | undefined;
  /** Added and checked, not yet written. */
  #waiting: PendingRecipient[] = [];
  /** Written, oldest first; the first one's reply is the next one recipientAnswered() gets. */
  #inFlight: PendingRecipient[] = [];
  #wake: (() => void) | undefined;
  /** "open" until the body is asked for or the transaction abandoned or failed. */
  #state: "open" | "body" | "closed" = "open";
  #failure: SMTPError | undefined;
  #opened!: { resolve(tx: MailTransaction): void; reject(err: SMTPError): void };
  /** Resolves with this transaction once MAIL FROM was accepted; rejects with why it was not. */
  readonly opened: Promise<MailTransaction>;

  /**
   * Not for direct use: `conn.beginTransaction()` makes one and hands `run` (which queues
   * the transaction on the connection) its envelope source and body stream.
   * @internal
   */
  constructor(envelope: TransactionEnvelope, run: (staged: MailTransaction, stream: SendStream) => Promise<unknown>) {
    this.#envelope = envelope;
    this.opened = new Promise((resolve, reject) => (this.#opened = { resolve, reject }));
    // Until createSendStream() hands the stream out, a failure that destroys it (MAIL
    // refused, the connection lost between recipients) reaches the caller through
    // opened or addRecipient(), never as an 'error' event no one listens to.
    this.#stream.on("error", ignore);
    run(this, this.#stream).catch((err: SMTPError) => this.#fail(err));
  }

  /**
   * Sends RCPT TO for `address` and resolves with the server's answer to it, accepted or
   * not. Rejects (nothing written) for a bad address, after createSendStream() or abort(),
   * and when the transaction failed (the connection was lost: that error). `dsn` gives
   * this recipient its own NOTIFY and ORCPT (RFC 3461) in place of the transaction's
   * `dsn`, sent where the server offers DSN: a relay passes on its client's.
   */
  addRecipient(address: string | AddressObject, dsn?: RecipientDSN): Promise<RecipientReply> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#state !== "open" || !this.#prepared) {
      return Promise.reject(badInput(`addRecipient() after ${this.#state === "body" ? "createSendStream()" : "abort()"}: the envelope is closed`, "EENVELOPE"));
    }
    let checked: { address: string; line: string };
    try {
      checked = recipientLine(this.#prepared, address, dsn);
    } catch (err) {
      return Promise.reject(err as SMTPError);
    }
    return new Promise<RecipientReply>((resolve, reject) => {
      this.#waiting.push({ ...checked, resolve, reject });
      this.#wake?.();
    });
  }

  /**
   * Closes the envelope and returns the Writable to pipe the message into, as
   * `conn.createSendStream(envelope)` does: DATA (or BDAT) follows the last recipient's
   * reply; the stream finishes once the server accepted the message (`stream.info`), or
   * is destroyed with the SMTPError that stopped it (EENVELOPE when no recipient was
   * accepted). Called once.
   */
  createSendStream(): SendStream {
    if (this.#state === "body") throw badInput("createSendStream() was already called for this transaction", "ESTREAM");
    // Aborted or failed already: the stream is (or is about to be) destroyed with that error.
    if (this.#state === "closed") return this.#stream;
    this.#state = "body";
    this.#stream.off("error", ignore);
    if (!this.#prepared?.to.length && this.#waiting.length === 0 && this.#inFlight.length === 0) this.#stream.abort(badInput("No recipients defined", "EENVELOPE"));
    this.#wake?.();
    return this.#stream;
  }

  /**
   * Abandons the transaction, as destroying its stream would: before any of the body was
   * written, RSET ends it and the connection goes on (recipients not yet written are
   * rejected with `reason`); during the body, the connection is closed without the end of
   * data, so no partial message is delivered. After the end of data, it changes nothing.
   */
  abort(reason?: Error): void {
    const err = reason instanceof SMTPError ? reason : new SMTPError("ESTREAM", `Transaction aborted${reason ? `: ${reason.message}` : ""}`, { command: "API", temporary: false, cause: reason });
    if (this.#state === "open") {
      this.#state = "closed";
      for (const pending of this.#waiting.splice(0)) pending.reject(err);
    }
    this.#stream.abort(err);
    this.#wake?.();
  }

  // ---- StagedEnvelope (transaction.ts): the transaction drives these --------------------

  /** @internal */
  prepare(session: SessionFacts): PreparedEnvelope {
    // Its body goes after DATA (see transaction.ts), so BINARYMIME, which needs BDAT, is refused.
    this.#prepared = prepareEnvelope({ ...this.#envelope, to: [] }, { extensions: session.extensions, secure: session.secure, canChunk: false }, { recipientsLater: true });
    return this.#prepared;
  }

  /**
   * The connection ended (closed, lost, timed out). Between steps the transaction waits
   * for its caller, not for a reply, so the connection's failing of pending commands does
   * not reach it: without this it would wait for ever, and every operation queued behind
   * it with it (SPEC §3: none is left waiting). Ends it as abort() does, with its own
   * error (`shared` as cause) naming the last command it wrote.
   * @internal
   */
  connectionLost(shared: SMTPError): void {
    if (this.#state !== "open") return;
    const command = !this.#prepared ? "API" : this.#prepared.to.length > 0 ? "RCPT TO" : "MAIL FROM";
    this.abort(connectionFailure(shared, command));
  }

  /** @internal */
  mailAccepted(): void {
    this.#opened.resolve(this);
  }

  /** @internal */
  async *recipients(): AsyncIterable<string[]> {
    for (;;) {
      if (this.#waiting.length > 0) {
        const batch = this.#waiting.splice(0);
        for (const next of batch) {
          this.#inFlight.push(next);
          this.#prepared!.to.push(next.address);
        }
        yield batch.map((next) => next.line);
        continue;
      }
      if (this.#state !== "open") return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  /** @internal */
  recipientAnswered(reply: Reply): void {
    const pending = this.#inFlight.shift()!;
    pending.resolve(outcomeOf(pending.address, reply));
  }

  /** @internal */
  get envelope(): Envelope {
    return { ...this.#envelope, to: [...(this.#prepared?.to ?? [])] };
  }

  /** The transaction failed (or the connection was lost): everything still waiting gets the error. */
  #fail(err: SMTPError): void {
    this.#failure ??= err;
    this.#state = this.#state === "body" ? "body" : "closed";
    this.#opened.reject(err);
    for (const pending of this.#inFlight.splice(0)) pending.reject(err);
    for (const pending of this.#waiting.splice(0)) pending.reject(err);
  }
}
