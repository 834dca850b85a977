/**
 * `smtp-wire probe host[:port]` against smtp-server and the fault server: greeting, EHLO
 * keywords with parameters, STARTTLS and the certificate with its verification result,
 * AUTH methods; and its exit codes (0 when reached and verified, 3 otherwise).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { closedPort, startServer } from "../helpers/server.js";
import { getCerts } from "../helpers/certs.js";
import { startFaultServer } from "../helpers/fault-server.js";
import { jsonLines, runCommand, scratch } from "./command.js";

const files = scratch();
test.after(() => files.remove());

test("shows the greeting, the keywords with their parameters, STARTTLS, the certificate and AUTH", async () => {
  const server = await startServer({ starttls: true, size: 10_485_760, users: { me: "pw" } });
  try {
    const run = await runCommand(["probe", `localhost:${server.port}`, "--ca", files.ca]);
    assert.is(run.code, 0, run.stderr);
    const out = run.stdout;
    assert.match(out, new RegExp(`^server       localhost:${server.port}\\ngreeting     220 `));
    assert.match(out, /^EHLO {9}PIPELINING\n(?: {13}.*\n)*? {13}SIZE 10485760\n/m);
    assert.match(out, /^ {13}STARTTLS$/m);
    assert.match(out, /^TLS          upgraded$/m);
    assert.match(out, /^  protocol   TLSv1\.[23] /m);
    assert.match(out, /^  subject    CN=localhost$/m);
    assert.match(out, /^  issuer     CN=smtp-wire test CA$/m);
    assert.match(out, /^  names      DNS:localhost, DNS:mx\.example\.test, IP Address:127\.0\.0\.1$/m);
    assert.match(out, /^  valid      \d{4}-\d\d-\d\dT.* to \d{4}-/m);
    assert.match(out, /^  verified   yes$/m);
    assert.match(out, /^EHLO \(TLS\) {3}PIPELINING$/m);
    assert.match(out, /^AUTH         PLAIN LOGIN CRAM-MD5 XOAUTH2$/m);
    assert.is(server.messages.length, 0);
    assert.is(server.commands.at(-1), "QUIT");
  } finally {
    await server.close();
  }
});

test("--json prints one object with the same facts", async () => {
  const server = await startServer({ starttls: true, size: 1000 });
  try {
    const run = await runCommand(["probe", "--server", `localhost:${server.port}`, "--ca", files.ca, "--json"]);
    assert.is(run.code, 0, run.stderr);
    const [result, ...rest] = jsonLines(run.stdout);
    assert.is(rest.length, 0);
    assert.match(result!.greeting, /^220 /);
    assert.ok(result!.ehlo.includes("SIZE 1000"));
    assert.ok(result!.ehlo.includes("STARTTLS"));
    assert.not.ok(result!.ehloAfterTls.includes("STARTTLS"));
    assert.is(result!.tlsMode, "upgraded");
    assert.is(result!.tls.verified, true);
    assert.is(result!.tls.subject, "CN=localhost");
    assert.match(result!.tls.fingerprint256, /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    assert.equal(result!.auth, ["LOGIN", "PLAIN"], "what the server offers over TLS");
  } finally {
    await server.close();
  }
});

const unverified: Array<[string, Parameters<typeof startServer>[0], string]> = [
  ["a CA nobody trusts", { starttls: true }, "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
  ["a self-signed certificate", { starttls: getCerts().selfSigned }, "DEPTH_ZERO_SELF_SIGNED_CERT"],
  ["an expired certificate", { starttls: getCerts().expired }, "CERT_HAS_EXPIRED"],
];
for (const [what, options, reason] of unverified) {
  test(`${what} is described, not refused: exit 3, and 0 with --no-tls-verify`, async () => {
    const server = await startServer(options);
    try {
      const ca = what === "a CA nobody trusts" ? [] : ["--ca", files.ca];
      const run = await runCommand(["probe", `localhost:${server.port}`, ...ca]);
      assert.is(run.code, 3);
      assert.match(run.stdout, new RegExp(`^  verified   no \\(${reason}\\)$`, "m"));
      assert.match(run.stdout, /^EHLO \(TLS\)/m);
      assert.match(run.stderr, /the certificate does not verify .*--no-tls-verify accepts it/);
      const accepted = await runCommand(["probe", `localhost:${server.port}`, ...ca, "--no-tls-verify"]);
      assert.is(accepted.code, 0);
    } finally {
      await server.close();
    }
  });
}

test("a certificate for another host name does not verify (the name is checked too)", async () => {
  const server = await startServer({ starttls: getCerts().wrongHost });
  try {
    const run = await runCommand(["probe", `localhost:${server.port}`, "--ca", files.ca, "--json"]);
    assert.is(run.code, 3);
    assert.is(jsonLines(run.stdout)[0]!.tls.verifyError, "ERR_TLS_CERT_ALTNAME_INVALID");
  } finally {
    await server.close();
  }
});

test("--tls-on-connect probes an implicit-TLS server", async () => {
  const server = await startServer({ secure: true });
  try {
    const run = await runCommand(["probe", `localhost:${server.port}`, "--tls-on-connect", "--ca", files.ca, "--json"]);
    assert.is(run.code, 0, run.stderr);
    const [result] = jsonLines(run.stdout);
    assert.is(result!.tlsMode, "implicit");
    assert.is(result!.tls.verified, true);
    assert.is(result!.ehloAfterTls, undefined);
  } finally {
    await server.close();
  }
});

test("no STARTTLS offered: said so, exit 0; with --tls exit 3", async () => {
  const server = await startServer();
  try {
    const run = await runCommand(["probe", `127.0.0.1:${server.port}`]);
    assert.is(run.code, 0, run.stderr);
    assert.match(run.stdout, /^TLS          not offered$/m);
    const required = await runCommand(["probe", `127.0.0.1:${server.port}`, "--tls"]);
    assert.is(required.code, 3);
    assert.match(required.stderr, /does not offer STARTTLS, which --tls requires/);
  } finally {
    await server.close();
  }
});

test("--no-tls looks without upgrading", async () => {
  const server = await startServer({ starttls: true });
  try {
    const run = await runCommand(["probe", `127.0.0.1:${server.port}`, "--no-tls"]);
    assert.is(run.code, 0, run.stderr);
    assert.match(run.stdout, /^TLS          offered$/m);
    assert.not.ok(server.commands.includes("STARTTLS"));
  } finally {
    await server.close();
  }
});

test("--lmtp says LHLO; -v shows the transcript on standard error", async () => {
  const server = await startServer({ lmtp: true });
  try {
    const run = await runCommand(["probe", `127.0.0.1:${server.port}`, "--lmtp", "-v"]);
    assert.is(run.code, 0, run.stderr);
    assert.match(run.stderr, /^C: LHLO /m);
    assert.match(run.stderr, /^S: 220 /m);
    assert.match(run.stderr, /^C: QUIT$/m);
  } finally {
    await server.close();
  }
});

test("a refused connection or a refusing greeting: exit 3, the error in the JSON", async () => {
  const port = await closedPort();
  const refused = await runCommand(["probe", `127.0.0.1:${port}`, "--json"]);
  assert.is(refused.code, 3);
  assert.is(jsonLines(refused.stdout)[0]!.error.code, "ESOCKET");

  const fault = await startFaultServer([{ send: "554 5.7.1 go away\r\n" }, { close: true }]);
  try {
    const run = await runCommand(["probe", `127.0.0.1:${fault.port}`]);
    assert.is(run.code, 3);
    assert.match(run.stderr, /probe of 127\.0\.0\.1:\d+ failed: ECONNECTION Invalid greeting from server: 554 5\.7\.1 go away/);
  } finally {
    await fault.close();
  }
});

test("a server that knows only HELO: no keywords, no TLS, no AUTH, and still exit 0", async () => {
  const fault = await startFaultServer([
    { send: "220 old.example.test SMTP\r\n" },
    { expect: /^EHLO / },
    { send: "502 5.5.1 EHLO not implemented\r\n" },
    { expect: /^HELO / },
    { send: "250 old.example.test\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  try {
    const run = await runCommand(["probe", `127.0.0.1:${fault.port}`]);
    assert.is(run.code, 0, run.stderr);
    assert.match(run.stdout, /^EHLO {9}\(no keywords\)$/m);
    assert.match(run.stdout, /^TLS {10}not offered$/m);
    assert.match(run.stdout, /^AUTH {9}\(none offered\)$/m);
    fault.assertNoScriptErrors();
  } finally {
    await fault.close();
  }
});

test("a failure after the greeting still shows the greeting, with the error (exit 3)", async () => {
  const fault = await startFaultServer([{ send: "220 busy.example.test ESMTP\r\n" }, { expect: /^EHLO / }, { send: "421 4.3.2 Too busy, try later\r\n" }, { close: true }]);
  try {
    const run = await runCommand(["probe", `127.0.0.1:${fault.port}`, "--json"]);
    assert.is(run.code, 3);
    const [result] = jsonLines(run.stdout);
    assert.is(result!.greeting, "220 busy.example.test ESMTP");
    assert.is(result!.error.code, "ECONNECTION");
    assert.is(result!.error.responseCode, 421);
    assert.is(result!.ehlo, undefined);
  } finally {
    await fault.close();
  }
});

test.run();
