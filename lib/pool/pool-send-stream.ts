/**
 * The Writable a pooled message is piped into: a SendStream (SPEC §4) whose body goes to
 * whichever connection the pool gives it. Until the pool attaches it to a connection's own
 * stream (once that server takes the body) it holds the one write in progress, so write()
 * returns false past its highWaterMark and a piped source waits. Nothing is handed to a
 * connection before that point, which is what lets the pool send it again over another
 * connection when the first one dies during the envelope.
 *
 * Events, besides a SendStream's: 'dispatch' each time the pool gives it a connection (a
 * caller can open its source only then, so a send waiting in line holds nothing).
 */
import { SendStream, type BodySink } from "../send-stream.js";

export class PoolSendStream extends SendStream {
  #handedOver = false;

  /** True once part of the body went to a connection: from then on it cannot go out elsewhere. */
  get handedOver(): boolean {
    return this.#handedOver;
  }

  override attach(sink: BodySink): void {
    this.#handedOver = true;
    super.attach(sink);
  }
}
