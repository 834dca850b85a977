/**
 * One attempt of a pooled send on the connection the pump gave it: the message opened (an
 * opener is called again for each attempt) and sent with the caller's signal. A streamed
 * message is bridged to the connection's own stream.
 *
 * Deliberately left out: what happens after, whether the send settles or goes out again
 * (the pool decides, requeue.ts says which), and the connection's counters.
 */
import type { MessageInput } from "../message.js";
import type { OperationOptions, SendInfo } from "../types.js";
import type { Job } from "./job.js";
import type { PoolConnection } from "./pool-connection.js";
import { PoolSendStream } from "./pool-send-stream.js";
import { sourceFailed } from "./requeue.js";

/** One attempt of a send on `pc`, with the caller's signal. */
export function attemptSend(pc: PoolConnection, job: Job): Promise<SendInfo> {
  const options = job.signal ? { signal: job.signal } : {};
  if (job.message instanceof PoolSendStream) return attemptStream(pc, job, job.message, options);
  if (Buffer.isBuffer(job.message)) return pc.connection.send(job.envelope, job.message, options);
  let message: MessageInput;
  try {
    message = job.message();
  } catch (err) {
    return Promise.reject(sourceFailed(err));
  }
  return pc.connection.send(job.envelope, message, options);
}

/** One attempt of a streamed message: the caller's stream is attached once the server takes the body. */
function attemptStream(pc: PoolConnection, job: Job, stream: PoolSendStream, options: OperationOptions): Promise<SendInfo> {
  const target = pc.connection.createSendStream(job.envelope, options);
  return new Promise<SendInfo>((resolve, reject) => {
    target.once("ready", () => stream.attach(target));
    target.once("finish", () => resolve(target.info!));
    target.once("error", reject);
    job.cancel = (reason) => {
      // A body abandoned midway closes its connection (SPEC §4): nothing more goes on it.
      pc.retiring = true;
      target.destroy(reason);
    };
    // Never during createSendStream() itself, before the caller could listen for it.
    process.nextTick(() => stream.emit("dispatch"));
  });
}
