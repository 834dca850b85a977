/**
 * XOAUTH2 (Google's and Microsoft's OAuth 2.0 bearer mechanism): the initial response,
 * a fixed access token, and token providers (oauth2.getToken as Promise or callback,
 * oauth2.provisionCallback). A refused token comes back as a 334 carrying a JSON error;
 * the client answers it with an empty line, takes the 535, fetches a fresh token once and
 * tries again, and never more than once; a refusal without that challenge is final.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { xoauth2 } from "../../lib/auth/xoauth2.js";
import { greetAndEhlo, type Step } from "../helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { b64, failure, withFaultServer, withServer } from "./support.js";

const unhandled = trackUnhandled();
const USER = "me@example.test";
const FRESH = "ya29.fresh-token";
const STALE = "ya29.stale-token";

/** A getToken provider that answers `token` every time and records each `renew` it was asked with. */
function tokenProvider(token: string) {
  const renews: boolean[] = [];
  const getToken = async (renew: boolean) => {
    renews.push(renew);
    return token;
  };
  return { renews, getToken };
}

const xoauth2Attempts = (server: { auths: { method: string; ok: boolean }[] }) => server.auths.filter((a) => a.method === "XOAUTH2").map((a) => a.ok);

test("sends user=, auth=Bearer and the ^A separators as the initial response", () => {
  const mechanism = xoauth2(USER, FRESH);
  assert.is(mechanism.name, "XOAUTH2");
  assert.is(mechanism.start(), `XOAUTH2 ${b64(`user=${USER}\x01auth=Bearer ${FRESH}\x01\x01`)}`);
  assert.is(mechanism.next(Buffer.from('{"status":"401"}')), "", "an error challenge is answered with an empty line");
});

test("logs in with a fixed access token", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn, server) => {
    await conn.login({ user: USER, oauth2: { user: USER, accessToken: FRESH } });
    assert.is(conn.authenticated, true);
    assert.equal(xoauth2Attempts(server), [true]);
  });
});

test("chooses XOAUTH2 by itself when an oauth2 object and no password is given", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn, server) => {
    await conn.login({ oauth2: { user: USER, accessToken: FRESH } });
    assert.equal(server.commands.filter((c) => c.startsWith("AUTH")).map((c) => c.split(" ").slice(0, 2).join(" ")), ["AUTH XOAUTH2"]);
  });
});

test("method XOAUTH2 with pass as the token works too", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn) => {
    await conn.login({ user: USER, pass: FRESH, method: "XOAUTH2" });
    assert.is(conn.authenticated, true);
  });
});

test("a refused fixed token fails with EAUTH and the server's 535, without a retry", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn, server) => {
    const err = await failure(conn.login({ user: USER, oauth2: { accessToken: STALE } }));
    assert.is(err.code, "EAUTH");
    assert.is(err.responseCode, 535);
    assert.is(conn.authenticated, false);
    assert.equal(xoauth2Attempts(server), [false]);
  });
});

test("answers the 334 error challenge with an empty line, then reports the 535", async () => {
  const challenge = b64(JSON.stringify({ status: "401", schemes: "bearer", scope: "https://mail.example.test/" }));
  const script: Step[] = [
    ...greetAndEhlo(["AUTH XOAUTH2"]),
    { expect: /^AUTH XOAUTH2 / },
    { send: `334 ${challenge}\r\n` },
    { expect: "" },
    { send: "535 5.7.8 Username and Password not accepted\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ];
  await withFaultServer(script, async (conn) => {
    const err = await failure(conn.login({ user: USER, oauth2: { accessToken: STALE } }));
    assert.is(err.code, "EAUTH");
    assert.is(err.responseCode, 535);
    assert.is(err.enhancedCode, "5.7.8");
  });
});

test("provisionCallback: a refused token is renewed once (renew = true) and the login retried", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn, server) => {
    const calls: [string, boolean][] = [];
    await conn.login({
      user: USER,
      oauth2: {
        provisionCallback(user, renew, cb) {
          calls.push([user, renew]);
          setImmediate(() => cb(null, renew ? FRESH : STALE));
        },
      },
    });
    assert.is(conn.authenticated, true);
    assert.equal(calls, [
      [USER, false],
      [USER, true],
    ]);
    assert.equal(xoauth2Attempts(server), [false, true]);
  });
});

test("with both an accessToken and getToken, getToken is asked first (as Nodemailer asks it: only it knows whether the token expired)", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn, server) => {
    const { renews, getToken } = tokenProvider(FRESH);
    await conn.login({ user: USER, oauth2: { accessToken: STALE, getToken } });
    assert.equal(renews, [false]);
    assert.equal(xoauth2Attempts(server), [true]);
  });
});

test("a given accessToken is tried first when only provisionCallback can renew it", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn, server) => {
    const renews: boolean[] = [];
    const provisionCallback = (_user: string, renew: boolean, cb: (err: Error | null, token?: string) => void) => (renews.push(renew), cb(null, FRESH));
    await conn.login({ user: USER, oauth2: { accessToken: STALE, provisionCallback } });
    assert.equal(renews, [true]);
    assert.equal(xoauth2Attempts(server), [false, true]);
  });
});

test("getToken may answer through a callback (Nodemailer's XOAuth2 shape)", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn) => {
    const renews: boolean[] = [];
    const getToken = (renew: boolean, cb: (err: Error | null, token?: string) => void): void => {
      renews.push(renew);
      setImmediate(() => cb(null, renew ? FRESH : STALE));
    };
    await conn.login({ user: USER, oauth2: { getToken: getToken as unknown as (renew: boolean) => Promise<string> } });
    assert.is(conn.authenticated, true);
    assert.equal(renews, [false, true]);
  });
});

test("renews at most once: a fresh token that is refused too fails with EAUTH", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn, server) => {
    const { renews, getToken } = tokenProvider(STALE);
    const err = await failure(conn.login({ user: USER, oauth2: { getToken } }));
    assert.is(err.code, "EAUTH");
    assert.is(err.responseCode, 535);
    assert.equal(renews, [false, true]);
    assert.equal(xoauth2Attempts(server), [false, false]);
  });
});

test("a refusal without the 334 error challenge is not a token problem: no renewal", async () => {
  const script: Step[] = [
    ...greetAndEhlo(["AUTH XOAUTH2"]),
    { expect: /^AUTH XOAUTH2 / },
    { send: "535 5.7.8 Account disabled\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ];
  await withFaultServer(script, async (conn) => {
    const { renews, getToken } = tokenProvider(FRESH);
    const err = await failure(conn.login({ user: USER, oauth2: { getToken } }));
    assert.is(err.code, "EAUTH");
    assert.is(err.responseCode, 535);
    assert.equal(renews, [false], "the provider was asked once, not to renew");
  });
});

test("a token provider that fails makes login() fail with EAUTH, its error as cause, before AUTH is sent", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn, server) => {
    const cause = new Error("token endpoint unreachable");
    const err = await failure(
      conn.login({
        user: USER,
        oauth2: {
          provisionCallback: (_user, _renew, cb) => cb(cause),
        },
      }),
    );
    assert.is(err.code, "EAUTH");
    assert.is(err.cause, cause);
    assert.is(err.temporary, true, "a token endpoint outage may pass");
    assert.match(err.message, /token endpoint unreachable/);
    assert.equal(server.auths, []);
    assert.not.ok(server.commands.some((c) => c.startsWith("AUTH")));
  });
});

test("a provider that yields no token fails with EAUTH saying a token is needed", async () => {
  await withServer({ users: { [USER]: FRESH } }, async (conn, server) => {
    const err = await failure(conn.login({ user: USER, oauth2: { getToken: async () => "" } }));
    assert.is(err.code, "EAUTH");
    assert.match(err.message, /access token/);
    assert.not.ok(server.commands.some((c) => c.startsWith("AUTH")));
  });
});

leakCheckTest(test, unhandled);

test.run();
