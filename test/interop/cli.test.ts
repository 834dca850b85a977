/**
 * The smtp-wire command against real Postfix and Dovecot: probe of the submission port
 * (STARTTLS with the CA that up.sh made, AUTH offered only over TLS), send with STARTTLS
 * and AUTH (Postfix's Received header says ESMTPSA), several messages over one connection
 * to the MX-like port, and LMTP into Dovecot; each message compared byte for byte in the
 * Maildir it was delivered to.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { assertDelivered, CLIENT_NAME, interopEnv, makeMessage, receivedWith } from "./support.js";
import { jsonLines, runCommand, scratch } from "../cli/command.js";

const env = interopEnv("cli");

if (env) {
  const files = scratch();
  const ca = files.file("interop-ca.pem", env.ca);
  test.after(() => files.remove());
  const common = ["--ehlo", CLIENT_NAME, "--timeout", "20", "--ca", ca];

  test("probe shows STARTTLS verified against the CA, and AUTH offered after it", async () => {
    const run = await runCommand(["probe", `${env.host}:${env.submissionPort}`, ...common, "--json"]);
    assert.is(run.code, 0, run.stdout + run.stderr);
    const [result] = jsonLines(run.stdout);
    assert.ok(result!.ehlo.includes("STARTTLS"), result!.ehlo.join(", "));
    assert.is(result!.tlsMode, "upgraded");
    assert.is(result!.tls.verified, true);
    assert.ok(result!.auth.includes("PLAIN"), `AUTH after STARTTLS: ${result!.auth}`);
  });

  test("send with STARTTLS and AUTH through submission: delivered byte for byte, Received says ESMTPSA", async () => {
    const message = makeMessage({ subject: "command line submission", to: env.address("dave") });
    const eml = files.file("submission.eml", message.raw);
    const run = await runCommand(
      ["send", "-s", `${env.host}:${env.submissionPort}`, ...common, "--tls", "--user", env.address("alice"), "--from", env.address("alice"), "--to", env.address("dave"), eml],
      { env: { SMTP_WIRE_PASSWORD: env.passwords.get("alice")! } },
    );
    assert.is(run.code, 0, run.stdout + run.stderr);
    const delivered = await assertDelivered(env, "dave", message);
    assert.is(receivedWith(delivered.trace), "ESMTPSA");
  });

  test("several messages over one connection to the MX port, each delivered whole", async () => {
    const messages = [0, 1, 2, 3, 4].map((i) => makeMessage({ subject: `command line ${i}`, to: env.address("bob"), body: `message ${i}\r\n.leading dot\r\n` }));
    const names = messages.map((m, i) => files.file(`mx-${i}.eml`, m.raw));
    const run = await runCommand(["send", "-s", `${env.host}:${env.smtpPort}`, ...common, "--from", env.address("alice"), "--to", env.address("bob"), "--json", ...names]);
    assert.is(run.code, 0, run.stdout + run.stderr);
    assert.is(jsonLines(run.stdout).filter((line) => line.sent).length, 5);
    for (const message of messages) await assertDelivered(env, "bob", message);
  });

  test("--lmtp delivers into Dovecot", async () => {
    const message = makeMessage({ subject: "command line lmtp", to: env.address("carol") });
    const run = await runCommand(["send", "-s", `${env.host}:${env.lmtpPort}`, ...common, "--lmtp", "--from", env.address("alice"), "--to", env.address("carol"), files.file("lmtp.eml", message.raw)]);
    assert.is(run.code, 0, run.stdout + run.stderr);
    await assertDelivered(env, "carol", message);
  });
}

test.run();
