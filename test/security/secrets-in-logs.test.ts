/**
 * Credentials and tokens never reach a log, a debug transcript or an error message: every
 * line sent during AUTH is logged masked ("/* secret *\/"). Each test logs in with the
 * full transcript on (`logger` + `debug: true`), captures everything the logger got, and
 * searches it for the secret in every form it could take on the wire: as is, base64, the
 * PLAIN blob, the XOAUTH2 blob, and the CRAM-MD5 answer.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { inspect } from "node:util";
import { SMTPConnection, SMTPError, type AuthCredentials, type SMTPConnectionOptions } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const USER = "alice@example.test";
const PASSWORD = "Pa55-w0rd/secret";
const TOKEN = "ya29.STALE-secret-token";
const FRESH = "ya29.FRESH-secret-token";
const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** Every form a secret could take in a transcript. */
function forms(secret: string): string[] {
  return [
    secret,
    b64(secret),
    b64(`\0${USER}\0${secret}`),
    b64(`user=${USER}\x01auth=Bearer ${secret}\x01\x01`),
    // base64 of a prefix is the start of the base64 of the whole: catch partial blobs too
    b64(`\0${USER}\0`).slice(0, -4),
  ];
}

/** A Bunyan/pino-style logger that keeps every call, rendered as text. */
function capture() {
  const lines: string[] = [];
  const record =
    (level: string) =>
    (...args: unknown[]) =>
      lines.push(`${level} ${args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: 5 }))).join(" ")}`);
  const logger = { trace: record("trace"), debug: record("debug"), info: record("info"), warn: record("warn"), error: record("error"), fatal: record("fatal") };
  return { logger, lines, text: () => lines.join("\n") };
}

function assertNoSecret(text: string, secrets: string[], where: string): void {
  for (const secret of secrets) {
    for (const form of forms(secret)) {
      assert.not.ok(text.includes(form), `${where} contains a form of a secret: ${JSON.stringify(form)}`);
    }
  }
}

/** Renders an error the way a user's logging would: message, stack, fields, cause. */
function renderError(err: unknown): string {
  return `${inspect(err, { depth: 5 })}\n${JSON.stringify(err)}\n${String(err)}`;
}

async function loginLogged(auth: AuthCredentials, options: SMTPConnectionOptions = {}, users: Record<string, string> = { [USER]: PASSWORD }) {
  const server = await startServer({ users });
  const log = capture();
  const conn = new SMTPConnection({ host: "127.0.0.1", port: server.port, logger: log.logger, debug: true, ...options });
  await conn.connect();
  const err = await conn.login(auth).then(
    () => undefined,
    (e: unknown) => e,
  );
  await conn.quit();
  await server.close();
  return { log, err, conn };
}

for (const method of ["PLAIN", "LOGIN", "CRAM-MD5"]) {
  test(`${method}: the debug transcript shows AUTH ${method} masked and no form of the password`, async () => {
    const { log, err, conn } = await loginLogged({ user: USER, pass: PASSWORD, method });
    assert.is(err, undefined);
    assert.is(conn.authenticated, true);
    const text = log.text();
    assert.match(text, /C: EHLO /, "the transcript is on");
    assert.ok(text.includes(`C: AUTH ${method} /* secret */`), `AUTH ${method} is logged masked:\n${text}`);
    assert.match(text, /S: 235 /);
    assertNoSecret(text, [PASSWORD], "the transcript");
  });

  test(`${method}: a refused login logs no form of the wrong password, and its EAUTH holds none`, async () => {
    const wrong = "wr0ng-" + PASSWORD;
    const { log, err } = await loginLogged({ user: USER, pass: wrong, method });
    assert.instance(err, SMTPError);
    assert.is((err as SMTPError).code, "EAUTH");
    assertNoSecret(log.text(), [wrong], "the transcript");
    assertNoSecret(renderError(err), [wrong], "the error");
  });
}

test("XOAUTH2 with a renewal: neither the refused nor the fresh token is logged or in an error", async () => {
  const { log, err, conn } = await loginLogged(
    { user: USER, oauth2: { accessToken: TOKEN, getToken: async (renew: boolean) => (renew ? FRESH : TOKEN) } },
    {},
    { [USER]: FRESH },
  );
  assert.is(err, undefined);
  assert.is(conn.authenticated, true);
  const text = log.text();
  assert.is(text.split("C: AUTH XOAUTH2 /* secret */").length - 1, 2, "both attempts are logged, masked");
  assertNoSecret(text, [TOKEN, FRESH], "the transcript");
});

test("XOAUTH2 refused for good: no token in the transcript or in the EAUTH", async () => {
  const { log, err } = await loginLogged({ user: USER, oauth2: { accessToken: TOKEN, getToken: async () => FRESH } }, {}, { [USER]: "something-else" });
  assert.is((err as SMTPError).code, "EAUTH");
  assertNoSecret(log.text(), [TOKEN, FRESH], "the transcript");
  assertNoSecret(renderError(err), [TOKEN, FRESH], "the error");
});

test("customAuth: every line the handler sends is logged masked", async () => {
  const { log, err } = await loginLogged(
    { user: USER, pass: PASSWORD, method: "BY-HAND" },
    {
      customAuth: {
        "BY-HAND": async (ctx) => {
          const first = await ctx.sendCommand("AUTH LOGIN");
          if (first.status !== 334) return ctx.reject("no challenge");
          await ctx.sendCommand(b64(ctx.auth.credentials.user));
          const last = await ctx.sendCommand(b64(ctx.auth.credentials.pass));
          if (last.status !== 235) return ctx.reject("refused");
          ctx.resolve();
        },
      },
    },
  );
  assert.is(err, undefined);
  const text = log.text();
  assert.ok(text.includes("C: AUTH BY-HAND /* secret */"), text);
  assert.is(text.split("C: /* secret */").length - 1, 2, "the user and password lines are masked");
  assertNoSecret(text, [PASSWORD], "the transcript");
});

test("logger: true writes to the console, and the console gets no secret either", async () => {
  const server = await startServer({ users: { [USER]: PASSWORD } });
  const seen: string[] = [];
  const methods = ["log", "debug", "info", "warn", "error", "trace"] as const;
  const originals = methods.map((m) => console[m]);
  for (const m of methods) console[m] = (...args: unknown[]) => void seen.push(args.map((a) => (typeof a === "string" ? a : inspect(a))).join(" "));
  try {
    const conn = new SMTPConnection({ host: "127.0.0.1", port: server.port, logger: true, debug: true });
    await conn.connect();
    await conn.login({ user: USER, pass: PASSWORD, method: "PLAIN" });
    await conn.login({ user: USER, pass: PASSWORD }).catch(() => undefined);
    await conn.quit();
  } finally {
    methods.forEach((m, i) => (console[m] = originals[i] as never));
  }
  const text = seen.join("\n");
  assert.ok(text.includes("AUTH PLAIN /* secret */"), "the console got the transcript");
  assertNoSecret(text, [PASSWORD], "the console");
  await server.close();
});

test("the cleartext refusal and the token-provider failure hold no secret either", async () => {
  const server = await startServer({ users: { [USER]: PASSWORD } });
  const log = capture();
  const net = await import("node:net");
  const socket = net.connect(server.port, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  const conn = new SMTPConnection({ host: "smtp.example.com", port: server.port, connection: socket, logger: log.logger, debug: true });
  await conn.connect();
  const refused = await conn.login({ user: USER, pass: PASSWORD }).catch((e: unknown) => e);
  assert.is((refused as SMTPError).code, "EAUTH");
  assertNoSecret(renderError(refused), [PASSWORD], "the refusal");
  await conn.quit();

  const local = new SMTPConnection({ host: "127.0.0.1", port: server.port, logger: log.logger, debug: true });
  await local.connect();
  const failed = await local.login({ user: USER, oauth2: { accessToken: TOKEN, getToken: async () => Promise.reject(new Error("endpoint down")) } }).catch((e: unknown) => e);
  assert.is((failed as SMTPError).code, "EAUTH");
  assertNoSecret(renderError(failed), [TOKEN], "the token-provider failure");
  await local.quit();
  assertNoSecret(log.text(), [PASSWORD, TOKEN], "the transcript");
  await server.close();
});

leakCheckTest(test, unhandled);

test.run();
