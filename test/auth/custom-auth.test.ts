/**
 * customAuth handlers, in Nodemailer's shape: the handler gets the credentials, the
 * method, the server's extensions and AUTH methods, and sendCommand (Promise or
 * callback), and ends with resolve()/reject() or by settling the Promise it returns.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { CustomAuthContext, CustomAuthResponse } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { greetAndEhlo, type Step } from "../helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { nodeCallback } from "../helpers/callbacks.js";
import { b64, connectTo, failure, ME, withFaultServer, withServer } from "./support.js";

const unhandled = trackUnhandled();

/** A handler that does PLAIN by hand, the way Nodemailer's documentation shows it. */
async function manualPlain(ctx: CustomAuthContext): Promise<void> {
  const { user, pass } = ctx.auth.credentials;
  const reply = await ctx.sendCommand(`AUTH PLAIN ${b64(`\0${user}\0${pass}`)}`);
  if (reply.status !== 235) return ctx.reject(new Error(`refused: ${reply.text}`));
  ctx.resolve();
}

test("a handler forced with method gets the context and logs in through sendCommand", async () => {
  let seen: CustomAuthContext | undefined;
  let reply: CustomAuthResponse | undefined;
  await withServer({ users: ME }, {
    customAuth: {
      "MY-PLAIN": async (ctx) => {
        seen = ctx;
        const { user, pass } = ctx.auth.credentials;
        reply = await ctx.sendCommand(`AUTH PLAIN ${b64(`\0${user}\0${pass}`)}`);
        ctx.resolve();
      },
    },
  }, async (conn, server) => {
    await conn.login({ user: "me", pass: "s3cret", method: "MY-PLAIN" });
    assert.is(conn.authenticated, true);
    assert.is(seen!.method, "MY-PLAIN");
    assert.equal(seen!.auth.credentials.user, "me");
    assert.equal(seen!.auth.credentials.pass, "s3cret");
    assert.ok(seen!.extensions.includes("AUTH"));
    assert.equal(seen!.authMethods, ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]);
    assert.type(seen!.maxAllowedSize, "boolean");
    // Nodemailer's response shape: status is the reply code, code the enhanced code.
    assert.is(reply!.status, 235);
    assert.is(reply!.code, "2.7.0");
    assert.is(reply!.command, `AUTH PLAIN ${b64("\0me\0s3cret")}`);
    assert.match(reply!.response, /^235 2\.7\.0 /);
    assert.not.match(reply!.text, /^235|^2\.7\.0/);
    assert.equal(server.auths, [{ method: "PLAIN", username: "me", ok: true, secure: false }]);
  });
});

test("handler names match case-insensitively, and a handler named like a built-in method replaces it", async () => {
  let calls = 0;
  await withServer({ users: ME }, {
    customAuth: {
      plain: (ctx) => {
        calls++;
        return manualPlain(ctx);
      },
    },
  }, async (conn) => {
    await conn.login({ user: "me", pass: "s3cret", method: "PLAIN" });
    assert.is(calls, 1);
    assert.is(conn.authenticated, true);
  });
});

test("reject() fails login() with EAUTH carrying the server's last reply", async () => {
  await withServer({ users: ME }, { customAuth: { "MY-PLAIN": manualPlain } }, async (conn) => {
    const err = await failure(conn.login({ user: "me", pass: "wrong", method: "MY-PLAIN" }));
    assert.is(err.code, "EAUTH");
    assert.match(err.message, /Custom authentication MY-PLAIN failed: refused/);
    assert.is(err.responseCode, 535);
    assert.is(err.enhancedCode, "5.7.8");
    assert.is(conn.authenticated, false);
  });
});

test("a returned Promise settles the login: resolved is success, rejected is EAUTH", async () => {
  const server = await startServer({ users: { me: "s3cret" } });
  const ok = await connectTo(server.port, {
    customAuth: {
      "BY-PROMISE": async (ctx) => {
        const reply = await ctx.sendCommand(`AUTH PLAIN ${b64("\0me\0s3cret")}`);
        if (reply.status !== 235) throw new Error("no");
      },
    },
  });
  await ok.login({ user: "me", pass: "s3cret", method: "BY-PROMISE" });
  assert.is(ok.authenticated, true);
  await ok.quit();
  const bad = await connectTo(server.port, { customAuth: { "BY-PROMISE": async () => Promise.reject(new Error("token expired")) } });
  const err = await failure(bad.login({ user: "me", pass: "x", method: "BY-PROMISE" }));
  assert.is(err.code, "EAUTH");
  assert.match(err.message, /token expired/);
  await bad.quit();
  await server.close();
});

test("sendCommand also takes a Node-style callback", async () => {
  await withServer({ users: ME }, {
    customAuth: {
      "BY-CALLBACK": (ctx) => {
        void ctx.sendCommand(`AUTH PLAIN ${b64("\0me\0s3cret")}`, (err, reply) => {
          if (err || reply!.status !== 235) return ctx.reject(err ?? new Error("refused"));
          ctx.resolve();
        });
      },
    },
  }, async (conn) => {
    await conn.login({ user: "me", pass: "s3cret", method: "BY-CALLBACK" });
    assert.is(conn.authenticated, true);
  });
});

test("a handler that throws fails login() with EAUTH, and one that settles twice counts once", async () => {
  await withServer({ users: ME }, {
    customAuth: {
      THROWS: () => {
        throw new Error("handler bug");
      },
      TWICE: (ctx) => {
        ctx.resolve();
        ctx.reject(new Error("too late"));
        ctx.resolve();
      },
    },
  }, async (conn) => {
    const err = await failure(conn.login({ user: "me", pass: "x", method: "THROWS" }));
    assert.is(err.code, "EAUTH");
    assert.match(err.message, /handler bug/);
    const cb = nodeCallback<void>("login");
    conn.login({ user: "me", pass: "x", method: "TWICE" }, cb);
    await cb.result;
    await new Promise((resolve) => setTimeout(resolve, 20));
    cb.assertCalledOnce();
    assert.is(conn.authenticated, true);
  });
});

test("a command with CR or LF is refused before it is written, and the session stays in step", async () => {
  await withServer({ users: ME }, {
    customAuth: {
      SMUGGLE: async (ctx) => {
        await ctx.sendCommand("AUTH PLAIN x\r\nMAIL FROM:<evil@example.test>");
      },
    },
  }, async (conn, server) => {
    const err = await failure(conn.login({ user: "me", pass: "x", method: "SMUGGLE" }));
    assert.is(err.code, "EAUTH");
    assert.match(err.message, /CR or LF/);
    assert.not.ok(server.commands.some((c) => c.startsWith("AUTH") || c.startsWith("MAIL")));
    await conn.login({ user: "me", pass: "s3cret", method: "PLAIN" });
    assert.is(conn.authenticated, true, "the next command still gets its own reply");
  });
});

test("without a method, a custom handler is chosen when the server offers its name and no built-in method", async () => {
  const script: Step[] = [
    ...greetAndEhlo(["AUTH X-TOKEN"]),
    { expect: "AUTH X-TOKEN abc" },
    { send: "235 2.7.0 Welcome\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ];
  await withFaultServer(script, {
    customAuth: {
      "x-token": async (ctx) => {
        const reply = await ctx.sendCommand("AUTH X-TOKEN abc");
        if (reply.status === 235) ctx.resolve();
        else ctx.reject("refused");
      },
    },
  }, async (conn) => {
    await conn.login({ user: "me", pass: "unused" });
    assert.is(conn.authenticated, true);
  });
});

leakCheckTest(test, unhandled);

test.run();
