/**
 * SPEC §3: when the connection dies or is closed, every pending and queued operation fails
 * — none is left waiting. A login() may be waiting for no reply at all but for the
 * caller's own code: a customAuth handler, or an OAuth2 token provider, that has not
 * answered yet. The connection's end must still end that login (ECONNECTION, its own
 * error), and the operations queued behind it, each callback once.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection, SMTPError, type AuthCredentials, type SMTPConnectionOptions } from "smtp-wire";
import { greetAndEhlo, startFaultServer, type Step } from "../helpers/fault-server.js";
import { nodeCallback, settlesWithin } from "../helpers/callbacks.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const HANG_MS = 5000;
const never = () => new Promise<never>(() => {});

const WAITS: { what: string; offered: string; options?: SMTPConnectionOptions; auth: AuthCredentials }[] = [
  { what: "a customAuth handler that has not answered", offered: "AUTH X-SLOW", options: { customAuth: { "X-SLOW": never } }, auth: { user: "u", pass: "p", method: "X-SLOW" } },
  { what: "an OAuth2 token provider that has not answered", offered: "AUTH XOAUTH2", auth: { user: "u", oauth2: { user: "u", getToken: never } } as AuthCredentials },
];
const ENDINGS: { how: string; server: Step[]; end(conn: SMTPConnection): void }[] = [
  { how: "close()", server: [{ stall: true }], end: (conn) => conn.close() },
  { how: "the server's close", server: [{ delayMs: 50 }, { close: true }], end: () => undefined },
];

for (const { what, offered, options, auth } of WAITS) {
  for (const { how, server: ending, end } of ENDINGS) {
    test(`${how} while login() waits for ${what}: the login and the operations queued behind it fail with ECONNECTION`, async () => {
      const server = await startFaultServer([...greetAndEhlo([offered]), ...ending]);
      const conn = new SMTPConnection({ host: server.host, port: server.port, ...options });
      try {
        await conn.connect();
        const login = conn.login(auth);
        const queuedSend = nodeCallback("send(cb) queued behind the login");
        conn.send({ from: "a@example.test", to: ["b@example.test"] }, "x", queuedSend);
        const queuedReset = conn.reset();
        end(conn);
        for (const [name, settled] of [
          ["login()", login],
          ["the queued send(cb)", queuedSend.result],
          ["the queued reset()", queuedReset],
        ] as const) {
          const err = await settlesWithin(
            (settled as Promise<unknown>).then(
              () => assert.unreachable(`${name} succeeded`),
              (e: unknown) => e,
            ),
            HANG_MS,
            name,
          );
          assert.instance(err, SMTPError, `${name}: ${String(err)}`);
          assert.is((err as SMTPError).code, "ECONNECTION", name);
        }
        assert.is(conn.authenticated, false);
        queuedSend.assertCalledOnce();
        assert.equal((await server.connection()).commands.filter((line) => line.startsWith("AUTH")), [], "no AUTH was written");
      } finally {
        conn.close();
        await server.close();
      }
    });
  }
}

leakCheckTest(test, unhandled);
test.run();
