/**
 * smtp-wire: a streams-native SMTP and LMTP client connection, API-compatible with
 * Nodemailer's SMTPConnection. The class is the default export and a named export; the
 * stream stages and SMTPError are exported for users who build their own pipelines.
 */
import { SMTPConnection } from "./connection.js";

export { SMTPConnection };
export { SendStream } from "./send-stream.js";
export { MailTransaction, type TransactionEnvelope, type RecipientReply } from "./mail-transaction.js";
export { fromXtext, type RecipientDSN } from "./envelope.js";
export type { XClientAttributes, XForwardAttributes } from "./xclient.js";
export type { SendPhase } from "./outcome.js";
export { SMTPError, type SMTPErrorCode } from "./errors.js";
export type { SendTrace, CommandMessage, ReplyMessage } from "./diagnostics.js";
export { LineSplitter } from "./stages/line-splitter.js";
export { ReplyDecoder } from "./stages/reply-decoder.js";
export { DataEncoder } from "./stages/data-encoder.js";
export { BdatEncoder } from "./stages/bdat-encoder.js";
export { SMTPPool, PoolSendStream, type PoolLease, type PoolOptions, type MessageOpener } from "./pool/index.js";
export type { PoolLimits } from "./pool/options.js";
export type { MessageInput } from "./message.js";
export type * from "./types.js";
export default SMTPConnection;
