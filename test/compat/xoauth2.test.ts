/**
 * Issue 11, item 12: `login({ oauth2 })` with Nodemailer's own XOAuth2 object. The user
 * comes from its `options.user`, the token from its `getToken(renew, cb)`; a token the
 * server refuses (334 with an error, then 535) is renewed once. Each client gets its own
 * XOAuth2 object with the same options, against the same smtp-server; the server's record
 * of AUTH attempts must be the same for both.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import XOAuth2 from "nodemailer/lib/xoauth2";
import { startServer } from "../helpers/server.js";
import { sideBySide } from "../helpers/nodemailer.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const USER = "user@example.test";
const FRESH = "fresh-token";

type Provision = (user: string, renew: boolean, cb: (err: Error | null, token?: string) => void) => void;

/** Runs login with a fresh XOAuth2(options) per client; returns what each reported, the provider calls and the server's AUTH record. */
async function loginBoth(options: Record<string, unknown>, provision?: Provision) {
  const server = await startServer({ users: { [USER]: FRESH } });
  try {
    const calls: { client: string; renew: boolean }[] = [];
    let split = 0;
    const run = await sideBySide({ host: "127.0.0.1", port: server.port, ignoreTLS: true }, async (driver) => {
      const oauth2 = new XOAuth2({
        ...options,
        ...(provision ? { provisionCallback: (user: string, renew: boolean, cb: (err: Error | null, token?: string) => void) => (calls.push({ client: driver.client, renew }), provision(user, renew, cb)) } : {}),
      } as XOAuth2.Options);
      await driver.connect();
      try {
        await driver.login({ oauth2 });
      } finally {
        if (driver.client === "nodemailer") split = server.auths.length;
      }
      return (driver.raw as { authenticated: boolean }).authenticated;
    });
    const attempts = (from: number, to?: number) => server.auths.slice(from, to).map((a) => ({ method: a.method, user: a.username, ok: a.ok }));
    return {
      ...run,
      nodemailerCalls: calls.filter((c) => c.client === "nodemailer").map((c) => c.renew),
      ourCalls: calls.filter((c) => c.client === "smtp-wire").map((c) => c.renew),
      nodemailerAuths: attempts(0, split),
      ourAuths: attempts(split),
    };
  } finally {
    await server.close();
  }
}

test("a valid access token: both log in with XOAUTH2 as options.user, once", async () => {
  const run = await loginBoth({ user: USER, accessToken: FRESH });
  assert.is(run.nodemailer.error, undefined);
  assert.is(run.ours.error, undefined);
  assert.is(run.ours.value, true);
  assert.equal(run.ourAuths, run.nodemailerAuths);
  assert.equal(run.ourAuths, [{ method: "XOAUTH2", user: USER, ok: true }]);
});

test("a refused token is renewed through getToken(true) once, then accepted: the same attempts for both", async () => {
  const run = await loginBoth({ user: USER, accessToken: "stale-token" }, (_user, _renew, cb) => cb(null, FRESH));
  assert.is(run.nodemailer.error, undefined);
  assert.is(run.ours.error, undefined);
  assert.equal(run.ourCalls, run.nodemailerCalls);
  assert.equal(run.ourCalls, [true]);
  assert.equal(run.ourAuths, run.nodemailerAuths);
  assert.equal(run.ourAuths, [
    { method: "XOAUTH2", user: USER, ok: false },
    { method: "XOAUTH2", user: USER, ok: true },
  ]);
});

test("an expired token is replaced before the first attempt, as getToken(false) decides", async () => {
  const run = await loginBoth({ user: USER, accessToken: "expired-token", expires: Date.now() - 1000 }, (_user, _renew, cb) => cb(null, FRESH));
  assert.is(run.ours.error, undefined);
  assert.equal(run.ourCalls, run.nodemailerCalls);
  assert.equal(run.ourAuths, run.nodemailerAuths);
  assert.equal(run.ourAuths, [{ method: "XOAUTH2", user: USER, ok: true }]);
});

test("a renewed token refused again fails with EAUTH in both, after the same two attempts", async () => {
  const run = await loginBoth({ user: USER, accessToken: "stale-token" }, (_user, _renew, cb) => cb(null, "also-stale"));
  assert.is(run.ours.error?.code, "EAUTH");
  assert.is(run.nodemailer.error?.code, "EAUTH");
  assert.is(run.ours.error?.responseCode, run.nodemailer.error?.responseCode);
  assert.equal(run.ourAuths, run.nodemailerAuths);
  assert.is(run.ourAuths.length, 2);
});

test("a provider that fails: EAUTH in both, nothing sent", async () => {
  const run = await loginBoth({ user: USER }, (_user, _renew, cb) => cb(new Error("token endpoint down")));
  assert.is(run.ours.error?.code, "EAUTH");
  assert.is(run.nodemailer.error?.code, "EAUTH");
  assert.equal(run.ourAuths, []);
  assert.equal(run.nodemailerAuths, []);
});

test("leaves no socket, timer, rejection or double callback behind", () => assertNoLeaks());
void unhandled;
test.run();
