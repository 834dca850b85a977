/**
 * The exit codes of `smtp-wire send`, one class each (exit-codes.ts), against smtp-server
 * and the fault server, and what each failure prints: a line per message on standard
 * output (JSON with --json) and nothing sent for bad usage.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { closedPort, startServer } from "../helpers/server.js";
import { acceptEnvelope, greetAndEhlo, startFaultServer } from "../helpers/fault-server.js";
import { jsonLines, message, runCommand, scratch } from "./command.js";

const files = scratch();
const eml = files.file("exit.eml", message());
test.after(() => files.remove());

test("0: every message sent to every recipient", async () => {
  const server = await startServer();
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, eml, eml]);
    assert.is(run.code, 0, run.stderr);
    assert.is(server.messages.length, 2);
  } finally {
    await server.close();
  }
});

test("3: a refused connection; each message gets a line saying it was not sent", async () => {
  const port = await closedPort();
  const run = await runCommand(["send", "-s", `127.0.0.1:${port}`, "--json", eml, eml]);
  assert.is(run.code, 3, run.stdout + run.stderr);
  const lines = jsonLines(run.stdout);
  assert.is(lines.length, 2);
  assert.is(lines[0]!.error.code, "ESOCKET");
  assert.is(lines[0]!.error.deliveryState, "not-sent");
  assert.is(lines[0]!.sent, false);
  assert.match(run.stderr, /ESOCKET .*ECONNREFUSED/);
});

test("3: a server that never greets, cut off by --timeout", async () => {
  const fault = await startFaultServer([{ stall: true }]);
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${fault.port}`, "--timeout", "0.3", eml]);
    assert.is(run.code, 3, run.stdout + run.stderr);
    assert.match(run.stdout, /not sent: ETIMEDOUT /);
  } finally {
    await fault.close();
  }
});

test("3: the connection lost after the end of data: the line says the message may have been delivered", async () => {
  const fault = await startFaultServer([...greetAndEhlo([]), ...acceptEnvelope(), { expectData: true }, { close: true }]);
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${fault.port}`, eml]);
    assert.is(run.code, 3, run.stdout + run.stderr);
    assert.match(run.stdout, /exit\.eml: may have been delivered: ECONNECTION /);
    const json = await runCommand(["send", "-s", `127.0.0.1:${fault.port}`, "--json", eml]);
    assert.is(jsonLines(json.stdout)[0]!.error.deliveryState, "unknown");
  } finally {
    await fault.close();
  }
});

test("5: a message sent, some of its recipients refused", async () => {
  const server = await startServer({ refuseRecipients: ["bad@example.org"] });
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--to", "ok@example.org,bad@example.org", eml]);
    assert.is(run.code, 5, run.stdout + run.stderr);
    assert.match(run.stdout, /sent to ok@example.org; refused bad@example.org/);
  } finally {
    await server.close();
  }
});

test("6: the sender refused, every recipient refused, or the message refused at its final reply", async () => {
  const server = await startServer({
    refuseSenders: ["banned@example.com"],
    refuseRecipients: ["bad@example.org"],
    onData(stream, _session, callback) {
      stream.resume();
      stream.on("end", () => callback(Object.assign(new Error("5.7.1 Message content rejected"), { responseCode: 554 })));
    },
  });
  try {
    const sender = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--from", "banned@example.com", "--json", eml]);
    assert.is(sender.code, 6, sender.stdout + sender.stderr);
    assert.is(jsonLines(sender.stdout)[0]!.error.code, "EENVELOPE");
    assert.is(jsonLines(sender.stdout)[0]!.error.command, "MAIL FROM");
    const recipients = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--to", "bad@example.org", "--json", eml]);
    assert.is(recipients.code, 6, recipients.stdout + recipients.stderr);
    assert.equal(jsonLines(recipients.stdout)[0]!.error.rejected, ["bad@example.org"]);
    const content = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--json", eml]);
    assert.is(content.code, 6, content.stdout + content.stderr);
    const error = jsonLines(content.stdout)[0]!.error;
    assert.is(error.code, "EMESSAGE");
    assert.is(error.responseCode, 554);
    assert.is(error.temporary, false);
    assert.is(error.deliveryState, "rejected");
    assert.is(jsonLines(sender.stdout)[0]!.error.deliveryState, "not-sent");
  } finally {
    await server.close();
  }
});

test("with several messages the most serious outcome is the exit code, and every message is still tried", async () => {
  const server = await startServer({ refuseRecipients: ["bad@example.org"] });
  try {
    const partly = files.file("partly.eml", message({ to: "ok@example.org, bad@example.org" }));
    const refused = files.file("refused.eml", message({ to: "bad@example.org" }));
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, partly, refused, eml]);
    assert.is(run.code, 6, run.stdout + run.stderr);
    assert.is(server.messages.length, 2);
    const lines = run.stdout.trim().split("\n");
    assert.match(lines[0]!, /partly\.eml: sent to ok@example.org; refused bad@example.org/);
    assert.match(lines[1]!, /refused\.eml: not sent: EENVELOPE/);
    assert.match(lines[2]!, /exit\.eml: sent to you@example.org/);
  } finally {
    await server.close();
  }
});

test("1: a message source that fails (a directory given as the message)", async () => {
  const server = await startServer();
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--from", "a@example.com", "--to", "b@example.org", "--json", files.dir]);
    assert.is(run.code, 1, run.stdout + run.stderr);
    assert.is(jsonLines(run.stdout)[0]!.error.code, "ESTREAM");
    assert.is(server.messages.length, 0);
  } finally {
    await server.close();
  }
});

test("2: a message with no sender or no recipient to be found is not sent; the others are", async () => {
  const server = await startServer();
  try {
    const noFrom = files.file("no-from.eml", "To: a@example.org\r\n\r\nbody\r\n");
    const noTo = files.file("no-to.eml", "From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n");
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--json", noFrom, noTo, eml]);
    assert.is(run.code, 2, run.stdout + run.stderr);
    const lines = jsonLines(run.stdout);
    assert.match(lines[0]!.error.message, /no --from, and no From: address/);
    assert.match(lines[1]!.error.message, /no --to, and no To:, Cc: or Bcc: address/);
    assert.is(lines[2]!.sent, true);
    assert.is(server.messages.length, 1);
  } finally {
    await server.close();
  }
});

test("2: a message whose header never ends within 1 MiB is not a message", async () => {
  const server = await startServer();
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`], { input: "X: " + "y".repeat(1.2 * 1024 * 1024) });
    assert.is(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stdout, /no end of the header within 1048576 bytes/);
    assert.is(server.messages.length, 0);
  } finally {
    await server.close();
  }
});

test("2: an address with a character no address may hold is refused before anything is sent", async () => {
  const server = await startServer();
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--to", "a<b@example.org", eml]);
    assert.is(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stdout, /not sent: EENVELOPE Invalid recipient address/);
    assert.is(server.messages.length, 0);
  } finally {
    await server.close();
  }
});

const usage: Array<[string[], RegExp]> = [
  [["frobnicate"], /Unknown command "frobnicate": expected send or probe/],
  [["send", "--bogus"], /Unknown option '--bogus'/],
  [["send", "--port", "70000"], /Port "70000": expected a number from 1 to 65535/],
  [["send", "--server", ":25"], /No host in ":25"/],
  [["send", "--timeout", "soon"], /--timeout "soon": expected a positive number/],
  [["send", "--connections", "1.5"], /--connections "1.5": expected a whole number/],
  [["send", "--connections", "0"], /--connections "0": expected a positive number/],
  [["send", "--quit-after", "data"], /--quit-after "data": expected one of connect, ehlo, tls, auth, mail, rcpt/],
  [["send", "--dsn-notify", "NEVER,SUCCESS"], /--dsn-notify "NEVER,SUCCESS": expected NEVER, or a comma-separated list/],
  [["send", "--tls-on-connect", "--tls"], /--tls-on-connect uses TLS from the first byte/],
  [["send", "--tls-optional", "--no-tls"], /--tls-optional cannot be combined with --tls or --no-tls/],
  [["send", "-", "-"], /Standard input \("-"\) can be read only once/],
  [["send", "no-such-file.eml"], /Cannot read no-such-file\.eml: ENOENT/],
  [["probe"], /probe needs a server/],
  [["probe", "a.example", "b.example"], /probe takes one server/],
];

for (const [args, says] of usage) {
  test(`2: bad usage \`smtp-wire ${args.join(" ")}\` connects to nothing`, async () => {
    const fault = await startFaultServer([{ stall: true }]);
    try {
      const run = await runCommand([...args, ...(args.includes("--server") || args[0] !== "send" ? [] : ["--server", `127.0.0.1:${fault.port}`])]);
      assert.is(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, says);
      assert.is(run.stdout, "");
      assert.is(fault.connections.length, 0);
    } finally {
      await fault.close();
    }
  });
}

test("--help and no arguments print the options and the exit codes; --version the package's version", async () => {
  for (const args of [["--help"], [], ["help"], ["send", "-h"]]) {
    const run = await runCommand(args);
    assert.is(run.code, 0, run.stdout + run.stderr);
    for (const option of ["--server", "--tls-on-connect", "--no-tls-verify", "--auth [TYPE]", "--quit-after", "--json", "--dsn-notify", "Exit codes"]) assert.ok(run.stdout.includes(option), `${option} in --help`);
  }
  const version = await runCommand(["--version"]);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test.run();
