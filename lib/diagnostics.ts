/**
 * Observability through node:diagnostics_channel (issue 10): a relay can trace and count
 * sends, commands and replies without wrapping the API.
 *
 * Channels (names are public API, see the README):
 * - `smtp-wire:send`, a TracingChannel (`tracing:smtp-wire:send:start`, `:end`,
 *   `:asyncStart`, `:asyncEnd`, `:error`): one trace per send() or createSendStream(). The
 *   context is a SendTrace; `result` is the SendInfo, `error` the send's SMTPError (with
 *   its `deliveryState` and `recipients`).
 * - `smtp-wire:command`: every command line written, as the transcript shows it
 *   (credentials masked: AUTH lines are "AUTH PLAIN /* secret *\/").
 * - `smtp-wire:reply`: every reply read, with the command it answers.
 *
 * Zero cost when nobody subscribes: every publisher checks `hasSubscribers` before it
 * builds a payload, and an untraced send runs without the tracing wrapper. Message bodies
 * are never published.
 */
import { channel, tracingChannel } from "node:diagnostics_channel";
import type { Envelope, Reply, SendInfo } from "./types.js";
import type { SMTPError } from "./errors.js";

/** The context of one send's trace. */
export interface SendTrace {
  /** The connection's `id`. */
  connectionId: string;
  host: string;
  port: number;
  /** The envelope as the caller gave it. */
  envelope: Envelope;
  /** Set by the TracingChannel when the send succeeded. */
  result?: SendInfo;
  /** Set by the TracingChannel when it failed: `error.deliveryState` says whether the server may have it. */
  error?: SMTPError;
}

/** What `smtp-wire:command` publishes. */
export interface CommandMessage {
  connectionId: string;
  /** The line as written, without CRLF; credentials masked. */
  line: string;
}

/** What `smtp-wire:reply` publishes. */
export interface ReplyMessage {
  connectionId: string;
  /** The command this reply answers ("CONN" for the greeting or a reply nobody asked for). */
  command: string;
  code: number;
  enhancedCode?: string;
  /** The reply's lines joined with "\n", without codes. */
  text: string;
}

export const sendChannel = tracingChannel<SendTrace>("smtp-wire:send");
export const commandChannel = channel("smtp-wire:command");
export const replyChannel = channel("smtp-wire:reply");

/** Runs `send` inside a trace when someone subscribed, else just runs it. */
export function traceSend(send: () => Promise<SendInfo>, context: () => SendTrace): Promise<SendInfo> {
  if (!sendChannel.hasSubscribers) return send();
  return sendChannel.tracePromise(send, context());
}

/** Publishes a written command (already masked by the caller, as for the transcript). */
export function publishCommand(connectionId: string, line: string): void {
  if (commandChannel.hasSubscribers) commandChannel.publish({ connectionId, line } satisfies CommandMessage);
}

/** Publishes a reply read, with the command it answers. */
export function publishReply(connectionId: string, reply: Reply, command: string | undefined): void {
  if (!replyChannel.hasSubscribers) return;
  const message: ReplyMessage = { connectionId, command: command ?? "CONN", code: reply.code, text: reply.text };
  if (reply.enhancedCode) message.enhancedCode = reply.enhancedCode;
  replyChannel.publish(message);
}
