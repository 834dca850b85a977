/**
 * The pool: many messages to one destination over a few reused connections (README, "Pool").
 */
export { SMTPPool, type PoolLease } from "./pool.js";
export type { MessageOpener } from "./job.js";
export { PoolSendStream } from "./pool-send-stream.js";
export type { PoolOptions, PoolLimits } from "./options.js";
