/**
 * Where SPEC is silent, Nodemailer's SMTPConnection is the contract (SPEC: code written
 * for it works unchanged). A failed login() is EAUTH in both, and its `command` is what a
 * caller logs or switches on: `AUTH <method>` for an exchange the server refused, "API"
 * for a call refused before anything was written. Both clients meet the same scripted
 * server here, side by side.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { greetAndEhlo, startFaultServer, type Step } from "../helpers/fault-server.js";
import { errorFacts, sideBySide } from "../helpers/nodemailer.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const USERNAME_PROMPT = "334 VXNlcm5hbWU6\r\n";
const PASSWORD_PROMPT = "334 UGFzc3dvcmQ6\r\n";
const refused: Step = { send: "535 5.7.8 Authentication credentials invalid\r\n" };
const quit: Step[] = [{ expect: "QUIT" }, { send: "221 bye\r\n" }];

const CASES: { what: string; script: Step[]; auth: object; command: string }[] = [
  { what: "PLAIN refused", script: [...greetAndEhlo(["AUTH PLAIN LOGIN"]), { expect: /^AUTH PLAIN / }, refused, ...quit], auth: { user: "u", pass: "p", method: "PLAIN" }, command: "AUTH PLAIN" },
  { what: "LOGIN refused at the user name", script: [...greetAndEhlo(["AUTH LOGIN"]), { expect: "AUTH LOGIN" }, { send: USERNAME_PROMPT }, { expect: /.+/ }, refused, ...quit], auth: { user: "u", pass: "p", method: "LOGIN" }, command: "AUTH LOGIN" },
  { what: "LOGIN refused at the password", script: [...greetAndEhlo(["AUTH LOGIN"]), { expect: "AUTH LOGIN" }, { send: USERNAME_PROMPT }, { expect: /.+/ }, { send: PASSWORD_PROMPT }, { expect: /.+/ }, refused, ...quit], auth: { user: "u", pass: "p", method: "LOGIN" }, command: "AUTH LOGIN" },
  { what: "an unknown method", script: [...greetAndEhlo(["AUTH PLAIN"]), ...quit], auth: { user: "u", pass: "p", method: "NO-SUCH-METHOD" }, command: "API" },
  { what: "no password", script: [...greetAndEhlo(["AUTH PLAIN"]), ...quit], auth: { user: "u" }, command: "API" },
];

for (const { what, script, auth, command } of CASES) {
  test(`login() with ${what}: EAUTH with command ${command}, as in Nodemailer`, async () => {
    const server = await startFaultServer(script);
    try {
      const run = await sideBySide({ host: server.host, port: server.port, allowInsecureAuth: true }, async (driver) => {
        await driver.connect();
        try {
          await driver.login(auth);
        } finally {
          await (driver.raw as { quit(): unknown }).quit();
        }
      });
      assert.is(run.nodemailer.error?.command, command, "Nodemailer's command");
      assert.equal(errorFacts(run.ours.error), errorFacts(run.nodemailer.error));
      assert.is(run.ours.error?.code, "EAUTH");
    } finally {
      await server.close();
    }
    server.assertNoScriptErrors();
  });
}

leakCheckTest(test, unhandled);
test.run();
