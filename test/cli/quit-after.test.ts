/**
 * `smtp-wire send --quit-after PHASE`: the session goes exactly as far as asked, with the
 * TLS and AUTH options applied as in a send, then says QUIT; no message is ever sent.
 * Checked on what smtp-server read.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startServer } from "../helpers/server.js";
import { jsonLines, message, runCommand, scratch } from "./command.js";

const files = scratch();
const eml = files.file("quit.eml", message({ to: "you@example.org, bad@example.org" }));
test.after(() => files.remove());

const EHLO = "EHLO client.example.net";
const expected: Record<string, RegExp[]> = {
  connect: [/^QUIT$/],
  ehlo: [new RegExp(`^${EHLO}$`), /^QUIT$/],
  tls: [new RegExp(`^${EHLO}$`), /^STARTTLS$/, new RegExp(`^${EHLO}$`), /^QUIT$/],
  auth: [new RegExp(`^${EHLO}$`), /^STARTTLS$/, new RegExp(`^${EHLO}$`), /^AUTH PLAIN /, /^QUIT$/],
  mail: [new RegExp(`^${EHLO}$`), /^STARTTLS$/, new RegExp(`^${EHLO}$`), /^AUTH PLAIN /, /^MAIL FROM:<me@example.com>$/, /^QUIT$/],
  rcpt: [new RegExp(`^${EHLO}$`), /^STARTTLS$/, new RegExp(`^${EHLO}$`), /^AUTH PLAIN /, /^MAIL FROM:<me@example.com>$/, /^RCPT TO:<you@example.org>$/, /^RCPT TO:<bad@example.org>$/, /^QUIT$/],
};

for (const [phase, commands] of Object.entries(expected)) {
  test(`--quit-after ${phase} stops there and says QUIT; nothing is sent`, async () => {
    const server = await startServer({ starttls: true, users: { me: "pw" }, refuseRecipients: ["bad@example.org"] });
    try {
      const run = await runCommand(["send", "-s", `localhost:${server.port}`, "--ca", files.ca, "--ehlo", "client.example.net", "--auth", "PLAIN", "--user", "me", "--password", "pw", "--quit-after", phase, eml]);
      assert.is(server.commands.length, commands.length, server.commands.join("\n"));
      commands.forEach((pattern, i) => assert.match(server.commands[i]!, pattern));
      assert.is(server.messages.length, 0);
      if (phase === "rcpt") {
        assert.is(run.code, 5, "a recipient was refused");
        assert.match(run.stdout, /quit\.eml: accepted you@example.org; refused bad@example.org \(550 /);
      } else {
        assert.is(run.code, 0, run.stderr);
        assert.match(run.stdout, new RegExp(`stopped after ${phase}\\n$`));
      }
    } finally {
      await server.close();
    }
  });
}

test("--quit-after rcpt goes through each message's envelope with RSET between, and says which were refused (JSON)", async () => {
  const server = await startServer({ refuseRecipients: ["bad@example.org"], refuseSenders: ["banned@example.com"] });
  try {
    const ok = files.file("quit-ok.eml", message({ to: "ok@example.org" }));
    const banned = files.file("quit-banned.eml", message({ from: "banned@example.com" }));
    const allBad = files.file("quit-all-bad.eml", message({ to: "bad@example.org" }));
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--quit-after", "rcpt", "--json", ok, banned, allBad]);
    assert.is(run.code, 6);
    const [first, second, third] = jsonLines(run.stdout);
    assert.equal(first, { file: ok, stoppedAfter: "rcpt", accepted: ["ok@example.org"], rejected: [], rejectedErrors: [] });
    assert.is(second!.error.command, "MAIL FROM");
    assert.equal(third!.rejected, ["bad@example.org"]);
    assert.is(third!.rejectedErrors[0].responseCode, 550);
    assert.is(server.commands.filter((c) => c === "RSET").length, 2);
    assert.not.ok(server.commands.includes("DATA"));
  } finally {
    await server.close();
  }
});

test("--quit-after mail reports each message; a message with no envelope is bad usage", async () => {
  const server = await startServer();
  try {
    const noFrom = files.file("quit-no-from.eml", "To: a@example.org\r\n\r\nx\r\n");
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--quit-after", "mail", eml, noFrom]);
    assert.is(run.code, 2);
    assert.match(run.stdout, /quit\.eml: stopped after mail\n.*quit-no-from\.eml: not sent: .*no --from/);
  } finally {
    await server.close();
  }
});

test("--quit-after: a failure on the way is reported with its exit code (TLS that does not verify: 3)", async () => {
  const server = await startServer({ starttls: true });
  try {
    const run = await runCommand(["send", "-s", `localhost:${server.port}`, "--quit-after", "ehlo", "--tls-on-connect", "--json", eml]);
    assert.is(run.code, 3);
    assert.is(jsonLines(run.stdout)[0]!.error.code, "ETLS");
  } finally {
    await server.close();
  }
});

test.run();
