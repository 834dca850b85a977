/**
 * `smtp-wire/nodemailer`: the Nodemailer transport (README, "Use with Nodemailer").
 * Nodemailer is an optional peer dependency; nothing else in smtp-wire loads this module.
 */
import { smtpWire } from "./transport.js";

export { smtpWire, SmtpWireTransport, type SmtpWireTransportOptions, type SmtpWireSentMessageInfo, type NodemailerMail, type NodemailerAuth, type NodemailerDsn, type NodemailerEnvelope, type PoolSettings } from "./transport.js";
export default smtpWire;
