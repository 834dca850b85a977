/**
 * A mail with its own `auth` option. Nodemailer's SMTP transport logs in with it (its keys
 * over the transport's auth) on the connection it opens for that mail; the pool's
 * connections are logged in as the transport's user, so such a mail must not ride one of
 * them, or it would go out under the wrong account. It gets a connection of its own:
 * connect, log in, send, QUIT, as Nodemailer's SMTP transport does.
 *
 * Deliberately left out: reusing these connections (each mail may name another user), and
 * the pool's retries (a failure is reported as it is, as Nodemailer's SMTP transport does).
 */
import { SMTPConnection } from "../connection.js";
import type { MessageInput } from "../message.js";
import type { AuthCredentials, Envelope, SendInfo, SMTPConnectionOptions } from "../types.js";

/**
 * The keys a mail's `auth` may set over the transport's, as Nodemailer allows them: who logs
 * in and with what. Anything else (where a token is fetched from, an application's secret)
 * stays the transport's, so a mail cannot send the transport's secrets elsewhere.
 */
const MAIL_AUTH_KEYS = ["type", "user", "pass", "accessToken", "refreshToken", "expires"] as const;

/** The transport's auth with the keys a mail may set taken from the mail's. */
export function mergeMailAuth<T extends object>(transportAuth: T | undefined, mailAuth: object): T {
  const merged: Record<string, unknown> = { ...transportAuth };
  for (const key of MAIL_AUTH_KEYS) if (Object.hasOwn(mailAuth, key)) merged[key] = (mailAuth as Record<string, unknown>)[key];
  return merged as T;
}

/** Sends one message on a connection of its own, logged in with `auth` (when the server offers AUTH, or `force`). */
export async function sendWithOwnLogin(
  options: SMTPConnectionOptions,
  login: { auth: AuthCredentials | undefined; force: boolean },
  envelope: Envelope,
  open: () => MessageInput,
  signal: AbortSignal | undefined,
): Promise<SendInfo> {
  const connection = new SMTPConnection(options);
  // Every failure also reaches the call it belongs to; this keeps it from being uncaught.
  connection.on("error", () => {});
  const withSignal = signal ? { signal } : {};
  try {
    await connection.connect(withSignal);
    if (login.auth && (connection.allowsAuth || login.force)) await connection.login(login.auth, withSignal);
    const info = await connection.send(envelope, open(), withSignal);
    await connection.quit().catch(() => undefined);
    return info;
  } finally {
    connection.close();
  }
}
