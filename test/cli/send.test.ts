/**
 * `smtp-wire send` against a real smtp-server: where the envelope comes from, several
 * messages over one connection, standard input, the envelope options, the output on
 * standard output (one line per message, or JSON lines) and the transcript.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startServer } from "../helpers/server.js";
import { greetAndEhlo, startFaultServer } from "../helpers/fault-server.js";
import { jsonLines, message, runCommand, scratch } from "./command.js";

const files = scratch();
test.after(() => files.remove());

test("sends a message to the --from and --to given, one result line on standard output, exit 0", async () => {
  const server = await startServer();
  try {
    const body = message({ from: "header@example.com", to: "header-rcpt@example.org" });
    const file = files.file("plain.eml", body);
    const run = await runCommand(["send", "--server", `127.0.0.1:${server.port}`, "--from", "me@example.com", "--to", "a@example.org,b@example.org", "-t", "c@example.org", file]);
    assert.is(run.code, 0, run.stderr);
    assert.is(server.messages.length, 1);
    assert.is(server.messages[0]!.from, "me@example.com");
    assert.equal(server.messages[0]!.to, ["a@example.org", "b@example.org", "c@example.org"]);
    assert.is(server.messages[0]!.data.toString(), body, "the message went as it is in the file");
    assert.match(run.stdout, new RegExp(`^${file}: sent to a@example.org, b@example.org, c@example.org \\(250 `));
    assert.is(run.stdout.split("\n").length, 2, "one line");
  } finally {
    await server.close();
  }
});

test("takes the envelope from From, To, Cc and Bcc, and sends the header without Bcc", async () => {
  const server = await startServer();
  try {
    const file = files.file("headers.eml", message({ from: `"Me, Myself" <me@example.com>`, to: "You <you@example.org>", extra: "Cc: cc@example.org\r\nBcc: hidden@example.org,\r\n secret@example.org\r\n" }));
    const run = await runCommand(["send", "-s", "127.0.0.1", "-p", String(server.port), file]);
    assert.is(run.code, 0, run.stderr);
    const received = server.messages[0]!;
    assert.is(received.from, "me@example.com");
    assert.equal(received.to, ["you@example.org", "cc@example.org", "hidden@example.org", "secret@example.org"]);
    assert.not.match(received.data.toString(), /hidden|secret|Bcc/i);
    assert.match(received.data.toString(), /^From: "Me, Myself" <me@example.com>\r\nTo: You <you@example.org>\r\nCc: cc@example.org\r\nSubject: test\r\n\r\nHello/);
  } finally {
    await server.close();
  }
});

test("--to with the header's sender: Bcc stays as the file has it", async () => {
  const server = await startServer();
  try {
    const body = message({ extra: "Bcc: hidden@example.org\r\n" });
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--to", "x@example.org", files.file("bcc-kept.eml", body)]);
    assert.is(run.code, 0, run.stderr);
    assert.is(server.messages[0]!.from, "me@example.com");
    assert.equal(server.messages[0]!.to, ["x@example.org"]);
    assert.is(server.messages[0]!.data.toString(), body);
  } finally {
    await server.close();
  }
});

test("several files go over one connection in the order given, each envelope overlapping the previous final reply", async () => {
  const server = await startServer();
  try {
    const names = Array.from({ length: 12 }, (_, i) => files.file(`many-${i}.eml`, message({ to: `r${i}@example.org`, body: `message ${i}\r\n` })));
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, ...names]);
    assert.is(run.code, 0, run.stderr);
    assert.equal(
      server.messages.map((m) => m.to[0]),
      names.map((_, i) => `r${i}@example.org`),
    );
    assert.is(server.commands.filter((c) => c.startsWith("EHLO")).length, 1, "one connection");
    assert.ok(server.commands.includes("RSET"), "queued sends overlap (RSET leads each overlapped envelope)");
    assert.equal(
      run.stdout.trim().split("\n").map((line) => line.split(":")[0]),
      names,
    );
  } finally {
    await server.close();
  }
});

test("--connections N sends over a pool of N connections, each message once, each transcript line with its connection's id", async () => {
  const server = await startServer({ users: { me: "pw" } });
  try {
    const names = Array.from({ length: 12 }, (_, i) => files.file(`pool-${i}.eml`, message({ to: `p${i}@example.org` })));
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--connections", "3", "--user", "me", "--password", "pw", "--json", "-v", ...names]);
    assert.is(run.code, 0, run.stderr);
    assert.equal(server.messages.map((m) => m.to[0]).sort(), names.map((_, i) => `p${i}@example.org`).sort());
    const connections = server.commands.filter((c) => c.startsWith("EHLO")).length;
    assert.ok(connections >= 1 && connections <= 3, `${connections} connections`);
    assert.is(server.auths.length, connections, "each connection logged in");
    assert.equal(jsonLines(run.stdout).map((line) => line.file).sort(), [...names].sort());
    assert.match(run.stderr, /^\[[^\]]+\] C: MAIL FROM:<me@example.com>$/m);
  } finally {
    await server.close();
  }
});

test("--connections N: a refused login fails each message with exit 4", async () => {
  const server = await startServer({ users: { me: "pw" } });
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--connections", "2", "--user", "me", "--password", "wrong", "--json", files.file("pool-auth.eml", message())]);
    assert.is(run.code, 4, run.stderr);
    assert.is(jsonLines(run.stdout)[0]!.error.code, "EAUTH");
    assert.is(server.messages.length, 0);
  } finally {
    await server.close();
  }
});

test("reads the message from standard input with - and with no file at all", async () => {
  const server = await startServer();
  try {
    const body = message({ to: "stdin@example.org" });
    for (const args of [["-"], []]) {
      const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, ...args], { input: body });
      assert.is(run.code, 0, run.stderr);
      assert.match(run.stdout, /^-: sent to stdin@example.org/);
    }
    assert.is(server.messages.length, 2);
    assert.is(server.messages[1]!.data.toString(), body);
  } finally {
    await server.close();
  }
});

test("a message read in many small pieces (standard input) arrives whole, with the header read across them", async () => {
  const server = await startServer();
  try {
    const body = message({ to: "pieces@example.org", extra: `X-Long: ${"x".repeat(70_000)}\r\nBcc: b@example.org\r\n`, body: "line\r\n".repeat(50_000) });
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`], { input: body });
    assert.is(run.code, 0, run.stderr);
    assert.equal(server.messages[0]!.to, ["pieces@example.org", "b@example.org"]);
    assert.is(server.messages[0]!.data.toString(), body.replace("Bcc: b@example.org\r\n", ""));
  } finally {
    await server.close();
  }
});

test("--json prints one JSON object per message and nothing else; refused recipients are in it", async () => {
  const server = await startServer({ refuseRecipients: ["bad@example.org"] });
  try {
    const good = files.file("json-good.eml", message());
    const partly = files.file("json-partly.eml", message({ to: "ok@example.org, bad@example.org" }));
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--json", good, partly]);
    assert.is(run.code, 5, "some recipients refused");
    assert.is(run.stderr, "");
    const [first, second] = jsonLines(run.stdout);
    assert.is(first!.file, good);
    assert.is(first!.sent, true);
    assert.equal(first!.accepted, ["you@example.org"]);
    assert.match(first!.response, /^250 /);
    assert.type(first!.messageSize, "number");
    assert.is(second!.sent, true);
    assert.equal(second!.rejected, ["bad@example.org"]);
    assert.equal(
      second!.recipients.map((r: { address: string; status: string }) => [r.address, r.status]),
      [
        ["ok@example.org", "accepted"],
        ["bad@example.org", "rejected"],
      ],
    );
    assert.is(second!.rejectedErrors[0].responseCode, 550);
    assert.is(second!.rejectedErrors[0].recipient, "bad@example.org");
    assert.match(second!.rejectedErrors[0].message, /RCPT TO:<bad@example.org> rejected/);
  } finally {
    await server.close();
  }
});

test("--8bitmime, --smtputf8 and --dsn-notify reach the server as MAIL and RCPT parameters; --ehlo names the client", async () => {
  const server = await startServer();
  try {
    const file = files.file("params.eml", message());
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--8bitmime", "--smtputf8", "--dsn-notify", "success,failure", "--ehlo", "client.example.net", file]);
    assert.is(run.code, 0, run.stderr);
    const received = server.messages[0]!;
    assert.is(received.mailParams.BODY, "8BITMIME");
    assert.ok(received.mailParams.SMTPUTF8, "SMTPUTF8");
    assert.is(received.rcptParams[0]!.NOTIFY, "SUCCESS,FAILURE");
    assert.ok(server.commands.includes("EHLO client.example.net"), server.commands.join("\n"));
  } finally {
    await server.close();
  }
});

test("--lmtp speaks LMTP (LHLO, a reply per recipient)", async () => {
  const server = await startServer({ lmtp: true });
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "--lmtp", "--json", files.file("lmtp.eml", message({ to: "a@example.org, b@example.org" }))]);
    assert.is(run.code, 0, run.stderr);
    assert.ok(server.commands.some((c) => c.startsWith("LHLO ")), server.commands.join("\n"));
    assert.equal(jsonLines(run.stdout)[0]!.accepted, ["a@example.org", "b@example.org"]);
  } finally {
    await server.close();
  }
});

test("--bdat sends the body with BDAT when the server offers CHUNKING", async () => {
  const body = message();
  const fault = await startFaultServer([
    ...greetAndEhlo(["PIPELINING", "CHUNKING"]),
    { expect: /^MAIL FROM:<me@example.com>/ },
    { expect: /^RCPT TO:<you@example.org>/ },
    { send: "250 ok\r\n250 ok\r\n" },
    {
      // One reply per BDAT command, however the body was cut into chunks.
      call: async (connection) => {
        while (!/BDAT \d+ LAST\r\n/.test(connection.received.toString("latin1"))) await new Promise((resolve) => setTimeout(resolve, 10));
        const chunks = connection.received.toString("latin1").match(/BDAT \d+/g)!.length;
        connection.socket.write("250 ok\r\n".repeat(chunks));
      },
    },
    { close: true },
  ]);
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${fault.port}`, "--bdat", files.file("bdat.eml", body)]);
    assert.is(run.code, 0, run.stderr);
    const received = fault.connections[0]!.received.toString();
    assert.match(received, /\r\nBDAT \d+/);
    assert.not.match(received, /\r\nDATA\r\n/);
    // Take the chunks' payloads out of their framing: they are the message.
    let rest = received.slice(received.indexOf("BDAT "));
    let payload = "";
    for (let frame = /^BDAT (\d+)( LAST)?\r\n/.exec(rest); frame; frame = /^BDAT (\d+)( LAST)?\r\n/.exec(rest)) {
      payload += rest.substr(frame[0].length, Number(frame[1]));
      rest = rest.slice(frame[0].length + Number(frame[1]));
    }
    assert.is(payload, body, "the body went in BDAT chunks");
  } finally {
    await fault.close();
  }
});

test("-v writes the transcript on standard error, and standard output keeps only the results", async () => {
  const server = await startServer();
  try {
    const run = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, "-v", files.file("verbose.eml", message())]);
    assert.is(run.code, 0, run.stderr);
    assert.match(run.stderr, /^\* Connection established to 127\.0\.0\.1:/m);
    assert.match(run.stderr, /^S: 220 /m);
    assert.match(run.stderr, /^C: MAIL FROM:<me@example.com>$/m);
    assert.match(run.stderr, /^C: QUIT$/m);
    assert.not.match(run.stdout, /MAIL FROM/);
  } finally {
    await server.close();
  }
});

test.run();
