/**
 * The pool: many messages to one destination over a few reused connections (README, "Pool").
 */
export { SMTPPool } from "./pool.js";
export type { PoolLease } from "./lease.js";
export type { MessageOpener } from "./job.js";
export { PoolSendStream } from "./pool-send-stream.js";
export type { PoolOptions, PoolLimits } from "./options.js";
