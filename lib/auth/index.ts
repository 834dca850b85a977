/**
 * Choosing an authentication method and driving it (RFC 4954).
 *
 * The strongest advertised method wins when the caller names none: CRAM-MD5 (the password
 * never crosses the wire), then PLAIN, then LOGIN; XOAUTH2 when a token is given. Every
 * line sent during AUTH is logged masked, and no error message repeats what was sent.
 * Whether credentials may be sent at all (cleartext policy) is decided by the caller.
 */
import type { AuthCredentials, CustomAuthHandler, CustomAuthResponse, OAuth2Credentials, Reply } from "../types.js";
import { fromReply, replyText, SMTPError, REPLY } from "../errors.js";
import type { AuthMechanism } from "./mechanism.js";
import { isLoopbackHost } from "../socket.js";
import { plain } from "./plain.js";
import { login } from "./login.js";
import { cramMd5 } from "./cram-md5.js";
import { xoauth2 } from "./xoauth2.js";

/** What authentication needs from the connection. */
export interface AuthSession {
  /** Writes a line and waits for its reply; `logAs` is what the transcript shows. */
  send(command: string, line: string, logAs?: string): Promise<Reply>;
  /** Methods advertised with AUTH in EHLO (upper case). */
  advertised: string[];
  extensions: string[];
  maxAllowedSize: number | false;
  customAuth: Record<string, CustomAuthHandler>;
}

const PREFERENCE = ["CRAM-MD5", "PLAIN", "LOGIN"];
/** What the transcript shows instead of anything authentication sends. */
export const MASK = "/* secret */";

/**
 * An EAUTH error naming the command as Nodemailer does, since its users read it:
 * `AUTH <method>` for an exchange the server refused, "API" for a call refused before
 * anything was written (no such method, no credentials).
 */
function authError(message: string, command: string, reply?: Reply): SMTPError {
  if (reply) return fromReply("EAUTH", message, reply, command);
  return new SMTPError("EAUTH", message, { command, temporary: false });
}

/** Normalises Nodemailer's two shapes: `{ user, pass }` and `{ credentials: { user, pass } }`. */
function credentialsOf(auth: AuthCredentials): { user: string; pass: string } {
  // Nodemailer's XOAuth2 object keeps the user in its options.
  const user = auth.credentials?.user ?? auth.user ?? auth.oauth2?.user ?? auth.oauth2?.options?.user ?? "";
  const pass = auth.credentials?.pass ?? auth.pass ?? "";
  return { user: String(user), pass: String(pass) };
}

/**
 * SPEC §8: credentials go over an unencrypted connection only when both the host the
 * caller named and the address actually reached are loopback, or the caller allowed it.
 * A `connection` socket to 127.0.0.1 with `host: "smtp.example.com"` is refused: the
 * caller believes the server is remote. Returns the refusal, or undefined when allowed.
 */
export function cleartextRefusal(facts: { host: string; remoteAddress?: string; secure: boolean; allowInsecureAuth?: boolean }): SMTPError | undefined {
  if (facts.secure || facts.allowInsecureAuth) return undefined;
  if (isLoopbackHost(facts.host) && isLoopbackHost(facts.remoteAddress)) return undefined;
  return new SMTPError(
    "EAUTH",
    `Refusing to send credentials over an unencrypted connection to ${facts.host} (${facts.remoteAddress ?? "unknown address"}): use TLS (secure, or STARTTLS) or set allowInsecureAuth: true`,
    { command: "AUTH", temporary: false },
  );
}

export function chooseMethod(auth: AuthCredentials, session: Pick<AuthSession, "advertised" | "customAuth">): string {
  const forced = auth.method ? String(auth.method).trim().toUpperCase() : "";
  if (forced) return forced;
  if (auth.oauth2 && !auth.credentials && !auth.pass) return "XOAUTH2";
  return PREFERENCE.find((m) => session.advertised.includes(m)) ?? session.advertised.find((m) => customHandler(session.customAuth, m)) ?? "PLAIN";
}

/** The customAuth handler for `method`; names match case-insensitively, as in Nodemailer. */
function customHandler(customAuth: Record<string, CustomAuthHandler>, method: string): CustomAuthHandler | undefined {
  return Object.entries(customAuth).find(([name]) => name.trim().toUpperCase() === method)?.[1];
}

/** Runs one mechanism to its end; resolves on 235, rejects with EAUTH otherwise. */
async function drive(session: AuthSession, mechanism: AuthMechanism): Promise<Reply> {
  let reply = await session.send("AUTH " + mechanism.name, `AUTH ${mechanism.start()}`, `AUTH ${mechanism.name} ${MASK}`);
  // A server that keeps challenging forever must not keep us here forever.
  for (let round = 0; reply.code === REPLY.AUTH_CONTINUE && round < 8; round++) {
    const challenge = Buffer.from(reply.lines[0] ?? "", "base64");
    reply = await session.send("AUTH " + mechanism.name, mechanism.next(challenge), MASK);
  }
  return reply;
}

async function tokenOf(oauth2: OAuth2Credentials, user: string, renew: boolean): Promise<string | undefined> {
  // A token provider is asked even when a token is at hand: Nodemailer's XOAuth2 object
  // has both, and only its getToken() knows whether that token has expired.
  if (typeof oauth2.getToken === "function") {
    const getToken = oauth2.getToken as (renew: boolean, cb?: (err: Error | null, token?: string) => void) => unknown;
    return new Promise<string | undefined>((resolve, reject) => {
      const result = getToken.call(oauth2, renew, (err, token) => (err ? reject(err) : resolve(token)));
      if (result !== undefined) Promise.resolve(result).then((token) => resolve(token as string), reject);
    });
  }
  if (!renew && oauth2.accessToken) return oauth2.accessToken;
  if (typeof oauth2.provisionCallback === "function") {
    return new Promise<string | undefined>((resolve, reject) => oauth2.provisionCallback!(user, renew, (err, token) => (err ? reject(err) : resolve(token))));
  }
  return undefined;
}

async function xoauth2Login(session: AuthSession, auth: AuthCredentials, user: string): Promise<void> {
  const oauth2 = auth.oauth2 ?? { accessToken: auth.pass };
  let renew = false;
  for (;;) {
    let token: string | undefined;
    try {
      token = await tokenOf(oauth2, user, renew);
    } catch (err) {
      throw new SMTPError("EAUTH", `Could not get an OAuth2 access token: ${(err as Error)?.message ?? err}`, { command: "AUTH XOAUTH2", temporary: true, cause: err });
    }
    if (!token) throw authError("XOAUTH2 needs an access token (oauth2.accessToken or a token provider)", "AUTH XOAUTH2");
    // Only a 334 error challenge says the token itself was refused (as in Nodemailer); a
    // plain 535 or 454 is not cured by a new token, and renewing costs a provider round trip.
    let challenged = false;
    const mechanism = xoauth2(user, token);
    const reply = await drive(session, { ...mechanism, next: (challenge) => ((challenged = true), mechanism.next(challenge)) });
    if (reply.code === REPLY.AUTH_SUCCESS) return;
    const canRenew = challenged && !renew && (typeof oauth2.getToken === "function" || typeof oauth2.provisionCallback === "function");
    if (!canRenew || reply.code === REPLY.SERVICE_NOT_AVAILABLE) throw authError(`Invalid login with XOAUTH2`, "AUTH XOAUTH2", reply);
    renew = true;
  }
}

async function customLogin(session: AuthSession, handler: CustomAuthHandler, method: string, auth: AuthCredentials, creds: { user: string; pass: string }): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    // The last reply goes into the EAUTH error, so a refusal carries the server's words.
    let lastReply: Reply | undefined;
    const finish = (err?: Error | string) => {
      if (settled) return;
      settled = true;
      if (err === undefined) resolve();
      else reject(err instanceof SMTPError ? err : authError(`Custom authentication ${method} failed: ${err instanceof Error ? err.message : err}`, `AUTH ${method}`, lastReply));
    };
    const sendCommand = (command: string, done?: (err: Error | null, reply?: CustomAuthResponse) => void): Promise<CustomAuthResponse> => {
      // Checked here, not by the connection's last line of defence, so the command queue
      // never holds an entry for a line that was not written.
      const result = /[\r\n]/.test(command)
        ? Promise.reject(authError(`Custom authentication ${method}: a command must not contain CR or LF`, `AUTH ${method}`))
        : session.send("AUTH " + method, command, command.startsWith("AUTH ") ? `AUTH ${method} ${MASK}` : MASK).then((reply) => {
            lastReply = reply;
            const text = reply.enhancedCode ? reply.text.slice(reply.enhancedCode.length).trimStart() : reply.text;
            return { command, response: replyText(reply), status: reply.code, code: reply.enhancedCode, text };
          });
      if (done) result.then((r) => done(null, r), (err: Error) => done(err));
      return result;
    };
    try {
      const returned = handler({
        auth: { ...auth, credentials: { user: creds.user, pass: creds.pass, options: auth.credentials?.options ?? auth.options }, method },
        method,
        extensions: session.extensions,
        authMethods: session.advertised,
        maxAllowedSize: session.maxAllowedSize,
        sendCommand,
        resolve: () => finish(),
        reject: (err) => finish(err),
      });
      if (returned && typeof (returned as Promise<void>).then === "function") (returned as Promise<void>).then(() => finish(), (err: Error) => finish(err ?? "rejected"));
    } catch (err) {
      finish(err as Error);
    }
  });
}

/** Authenticates with the chosen method; resolves once the server said 235. */
export async function authenticate(session: AuthSession, auth: AuthCredentials): Promise<void> {
  const method = chooseMethod(auth, session);
  const creds = credentialsOf(auth);
  const custom = customHandler(session.customAuth, method);
  if (custom) return customLogin(session, custom, method, auth, creds);
  if (method === "XOAUTH2") return xoauth2Login(session, auth, creds.user);
  let mechanism: AuthMechanism;
  switch (method) {
    case "PLAIN":
      mechanism = plain(creds.user, creds.pass);
      break;
    case "LOGIN":
      mechanism = login(creds.user, creds.pass);
      break;
    case "CRAM-MD5":
      mechanism = cramMd5(creds.user, creds.pass);
      break;
    default:
      throw authError(`Unknown authentication method "${method}"`, "API");
  }
  // As Nodemailer: without both a user name and a password there is nothing to send.
  if (!creds.user || !creds.pass) throw authError(`Missing credentials for "${method}": login() needs user and pass`, "API");
  const reply = await drive(session, mechanism);
  if (reply.code !== REPLY.AUTH_SUCCESS) throw authError(`Invalid login with ${method}`, `AUTH ${method}`, reply);
}
