/**
 * The TLS and authentication option groups of `smtp-wire send`, against smtp-server with
 * a certificate made at test time (verification stays on unless the test says
 * --no-tls-verify): STARTTLS required, optional, off, implicit TLS, --ca; AUTH by method,
 * the password from the option, the environment or nowhere; secrets never shown.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startServer } from "../helpers/server.js";
import { greetAndEhlo, startFaultServer, acceptEnvelope } from "../helpers/fault-server.js";
import { getCerts } from "../helpers/certs.js";
import { jsonLines, message, runCommand, scratch } from "./command.js";

const files = scratch();
const eml = files.file("tls.eml", message());
test.after(() => files.remove());

test("STARTTLS is used when offered, the certificate checked against --ca", async () => {
  const server = await startServer({ starttls: true });
  try {
    const run = await runCommand(["send", "-s", `localhost:${server.port}`, "--ca", files.ca, eml]);
    assert.is(run.code, 0, run.stderr);
    assert.ok(server.commands.includes("STARTTLS"));
    assert.is(server.messages.length, 1);
  } finally {
    await server.close();
  }
});

test("a certificate that does not verify fails with exit 3 (ETLS), and --no-tls-verify accepts it", async () => {
  const server = await startServer({ starttls: true });
  try {
    const refused = await runCommand(["send", "-s", `localhost:${server.port}`, "--json", eml]);
    assert.is(refused.code, 3);
    const [line] = jsonLines(refused.stdout);
    assert.is(line!.sent, false);
    assert.is(line!.error.code, "ETLS");
    assert.is(line!.error.deliveryState, "not-sent");
    assert.match(refused.stderr, /ETLS/);
    const accepted = await runCommand(["send", "-s", `localhost:${server.port}`, "--no-tls-verify", eml]);
    assert.is(accepted.code, 0, accepted.stderr);
    assert.is(server.messages.length, 1);
  } finally {
    await server.close();
  }
});

test("--tls fails with exit 3 when the server does not offer STARTTLS; --no-tls never asks for it", async () => {
  const plain = await startServer();
  const tls = await startServer({ starttls: true });
  try {
    const required = await runCommand(["send", "-s", `127.0.0.1:${plain.port}`, "--tls", eml]);
    assert.is(required.code, 3);
    assert.match(required.stdout, /not sent: ETLS STARTTLS is required/);
    assert.is(plain.messages.length, 0);
    const off = await runCommand(["send", "-s", `127.0.0.1:${tls.port}`, "--no-tls", eml]);
    assert.is(off.code, 0, off.stderr);
    assert.not.ok(tls.commands.includes("STARTTLS"));
    assert.is(tls.messages.length, 1);
  } finally {
    await plain.close();
    await tls.close();
  }
});

test("--tls-optional goes on without TLS when STARTTLS is refused", async () => {
  const fault = await startFaultServer([
    ...greetAndEhlo(["STARTTLS"]),
    { expect: "STARTTLS" },
    { send: "454 4.7.0 TLS not available\r\n" },
    { expect: /^EHLO / },
    { send: "250 fault.example.test\r\n" },
    ...acceptEnvelope(),
    { expectData: true },
    { send: "250 2.0.0 queued\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${fault.port}`, "--tls-optional", eml]);
    assert.is(run.code, 0, run.stderr);
    fault.assertNoScriptErrors();
    assert.is(fault.connections[0]!.data.length, 1);
  } finally {
    await fault.close();
  }
});

test("--tls-on-connect speaks TLS from the first byte", async () => {
  const server = await startServer({ secure: true });
  try {
    const run = await runCommand(["send", "-s", `localhost:${server.port}`, "--tls-on-connect", "--ca", files.ca, eml]);
    assert.is(run.code, 0, run.stderr);
    assert.is(server.messages.length, 1);
  } finally {
    await server.close();
  }
});

test("--ca with a file that cannot be read is bad usage (exit 2)", async () => {
  const run = await runCommand(["send", "-s", "127.0.0.1:1", "--ca", files.dir + "/missing.pem", eml]);
  assert.is(run.code, 2);
  assert.match(run.stderr, /Cannot read --ca .*missing\.pem: ENOENT/);
});

test("--user and --password log in with the best method offered; -v shows the AUTH line masked, never the password", async () => {
  const server = await startServer({ starttls: true, users: { me: "s3cr3t-Pa55" } });
  try {
    const run = await runCommand(["send", "-s", `localhost:${server.port}`, "--ca", files.ca, "--user", "me", "--password", "s3cr3t-Pa55", "-v", eml]);
    assert.is(run.code, 0, run.stderr);
    assert.equal(server.auths.map((a) => [a.method, a.ok]), [["CRAM-MD5", true]]);
    assert.match(run.stderr, /^C: AUTH CRAM-MD5 \*\*\*\*$/m);
    assert.not.ok((run.stdout + run.stderr).includes("s3cr3t-Pa55"), "the password is never shown");
  } finally {
    await server.close();
  }
});

for (const method of ["PLAIN", "LOGIN", "CRAM-MD5"]) {
  test(`--auth ${method} uses that method, the password from SMTP_WIRE_PASSWORD; the transcript masks it`, async () => {
    const server = await startServer({ starttls: true, users: { me: "env-Pa55word" } });
    try {
      const run = await runCommand(["send", "-s", `localhost:${server.port}`, "--ca", files.ca, "--auth", method.toLowerCase(), "--user", "me", "-v", eml], { env: { SMTP_WIRE_PASSWORD: "env-Pa55word" } });
      assert.is(run.code, 0, run.stderr);
      assert.equal(server.auths.map((a) => [a.method, a.ok]), [[method, true]]);
      assert.match(run.stderr, new RegExp(`^C: AUTH ${method} \\*\\*\\*\\*$`, "m"));
      const encoded = [Buffer.from("\0me\0env-Pa55word").toString("base64"), Buffer.from("env-Pa55word").toString("base64")];
      for (const secret of ["env-Pa55word", ...encoded]) assert.not.ok(run.stderr.includes(secret), `${secret} is not in the transcript`);
    } finally {
      await server.close();
    }
  });
}

test("--auth XOAUTH2 sends the password as the access token", async () => {
  const server = await startServer({ starttls: true, users: { me: "token-123" } });
  try {
    const run = await runCommand(["send", "-s", `localhost:${server.port}`, "--ca", files.ca, "--auth", "XOAUTH2", "--user", "me", "--password", "token-123", eml]);
    assert.is(run.code, 0, run.stderr);
    assert.equal(server.auths.map((a) => [a.method, a.ok]), [["XOAUTH2", true]]);
  } finally {
    await server.close();
  }
});

test("a refused login is exit 4, every message reported not sent", async () => {
  const server = await startServer({ starttls: true, users: { me: "right" } });
  try {
    const run = await runCommand(["send", "-s", `localhost:${server.port}`, "--ca", files.ca, "--user", "me", "--password", "wrong", "--json", eml, eml]);
    assert.is(run.code, 4);
    const lines = jsonLines(run.stdout);
    assert.is(lines.length, 2);
    for (const line of lines) {
      assert.is(line.error.code, "EAUTH");
      assert.is(line.error.responseCode, 535);
      assert.is(line.error.deliveryState, "not-sent");
    }
    assert.is(server.messages.length, 0);
  } finally {
    await server.close();
  }
});

test("--auth without --user, an unknown method, or no password off a terminal is bad usage (exit 2)", async () => {
  const noUser = await runCommand(["send", "--auth", eml]);
  assert.is(noUser.code, 2);
  assert.match(noUser.stderr, /--auth needs --user/);
  const unknown = await runCommand(["send", "--auth=GSSAPI", "--user", "me", eml]);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown --auth method "GSSAPI"/);
  const noPassword = await runCommand(["send", "-s", "127.0.0.1:1", "--user", "me", eml], { env: { SMTP_WIRE_PASSWORD: "" } });
  assert.is(noPassword.code, 2);
  assert.match(noPassword.stderr, /No password: give --password, set SMTP_WIRE_PASSWORD, or run on a terminal/);
});

test.run();
