/**
 * The pool: many messages to one destination over a few reused connections (README, "Pool").
 */
export { SMTPPool, type PoolLease, type MessageOpener } from "./pool.js";
export { PoolSendStream } from "./pool-send-stream.js";
export type { PoolOptions, PoolLimits } from "./options.js";
