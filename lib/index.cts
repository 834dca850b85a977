/**
 * The CommonJS entry (package.json `exports` "require"): `require("smtp-wire")` returns
 * the class itself, as `require("nodemailer/lib/smtp-connection")` does, with the named
 * exports on it (`const { SMTPError } = require("smtp-wire")` works too) and, as there,
 * itself as a non-enumerable `default`.
 *
 * It requires the ES module (require(esm), Node >= 20.19), so CommonJS and ESM users share
 * one copy of every class and `instanceof` holds across both.
 */
import esm = require("./index.js");

// Not `default` (the class is the export itself) and not the `__esModule` marker Node
// sets on a required ES module: on the class it would make an interop `import X from`
// look for `X.default`.
const named = Object.fromEntries(Object.entries(esm).filter(([name]) => name !== "default" && name !== "__esModule")) as unknown as Omit<typeof esm, "default">;
const SMTPConnection = Object.assign(esm.SMTPConnection, named);
// As Nodemailer's CommonJS modules: `default` is the class too, not enumerable, so either
// interop style of a default import finds it.
Object.defineProperty(SMTPConnection, "default", { value: SMTPConnection, enumerable: false, writable: true, configurable: true });

/**
 * The package's types under the class's name, for TypeScript code that loads it with
 * `import SMTPConnection = require("smtp-wire")` (`SMTPConnection.SendInfo`,
 * `SMTPConnection.SMTPError`), as the ES module exports them by name. Types only, so it
 * adds nothing at run time. test/package.test.ts checks that every public type is here.
 */
declare namespace SMTPConnection {
  // The classes, as the types of their instances.
  export type SMTPConnection = esm.SMTPConnection;
  export type SendStream = esm.SendStream;
  export type MailTransaction = esm.MailTransaction;
  export type SMTPError = esm.SMTPError;
  export type LineSplitter = esm.LineSplitter;
  export type ReplyDecoder = esm.ReplyDecoder;
  export type DataEncoder = esm.DataEncoder;
  export type BdatEncoder = esm.BdatEncoder;
  export type SMTPPool = esm.SMTPPool;
  export type PoolSendStream = esm.PoolSendStream;
  // The types.
  export type Reply = esm.Reply;
  export type Logger = esm.Logger;
  export type SMTPConnectionOptions = esm.SMTPConnectionOptions;
  export type DSNOptions = esm.DSNOptions;
  export type AddressObject = esm.AddressObject;
  export type Envelope = esm.Envelope;
  export type DeliveryState = esm.DeliveryState;
  export type RecipientOutcome = esm.RecipientOutcome;
  export type SendInfo = esm.SendInfo;
  export type OAuth2Credentials = esm.OAuth2Credentials;
  export type AuthCredentials = esm.AuthCredentials;
  export type CustomAuthResponse = esm.CustomAuthResponse;
  export type CustomAuthContext = esm.CustomAuthContext;
  export type CustomAuthHandler = esm.CustomAuthHandler;
  export type OperationOptions = esm.OperationOptions;
  export type ConnectOptions = esm.ConnectOptions;
  export type TlsInfo = esm.TlsInfo;
  export type Callback<T> = esm.Callback<T>;
  export type DoneCallback = esm.DoneCallback;
  export type SMTPConnectionEvents = esm.SMTPConnectionEvents;
  export type ExtensionsView = esm.ExtensionsView;
  export type TransactionEnvelope = esm.TransactionEnvelope;
  export type RecipientReply = esm.RecipientReply;
  export type RecipientDSN = esm.RecipientDSN;
  export type XClientAttributes = esm.XClientAttributes;
  export type XForwardAttributes = esm.XForwardAttributes;
  export type SendPhase = esm.SendPhase;
  export type SMTPErrorCode = esm.SMTPErrorCode;
  export type SendTrace = esm.SendTrace;
  export type CommandMessage = esm.CommandMessage;
  export type ReplyMessage = esm.ReplyMessage;
  export type PoolLease = esm.PoolLease;
  export type PoolOptions = esm.PoolOptions;
  export type MessageOpener = esm.MessageOpener;
  export type PoolLimits = esm.PoolLimits;
  export type MessageInput = esm.MessageInput;
}

export = SMTPConnection;
