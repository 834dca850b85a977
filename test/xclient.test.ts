/**
 * XCLIENT and XFORWARD: the attribute lines (xtext, checks, splitting), and the commands
 * against smtp-server (which implements both) and the fault server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { SMTPServerSession } from "smtp-server";
import { SMTPError, type SMTPConnectionOptions } from "../lib/index.js";
import { proxyCommandLines } from "../lib/xclient.js";
import { startServer } from "./helpers/server.js";
import { startFaultServer, greetAndEhlo, ehloReply } from "./helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "./helpers/leak-check.js";
import { randomFor, seedNote } from "./helpers/random.js";
import { connected } from "./helpers/client.js";

const unhandled = trackUnhandled();
const XCLIENT = ["NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN", "DESTADDR", "DESTPORT"];
const XFORWARD = ["NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"];
const body = "Subject: x\r\n\r\nHi.\r\n";

function refused(fn: () => unknown, pattern: RegExp): SMTPError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, SMTPError);
    assert.is((err as SMTPError).code, "EPROTOCOL");
    assert.is((err as SMTPError).temporary, false);
    assert.match((err as SMTPError).message, pattern);
    return err as SMTPError;
  }
  throw new Error("expected a refusal");
}

/** A connection whose EHLO says relay.example.test. */
const connectedAs = (port: number, options: SMTPConnectionOptions = {}) => connected(port, { name: "relay.example.test", ...options });

test("attributes become one line in the documented order, values xtext-encoded", () => {
  const lines = proxyCommandLines("XCLIENT", { addr: "192.0.2.7", name: "client.example", helo: "client.example", proto: "esmtp", port: 4711, login: "joe+x=y z" }, XCLIENT);
  assert.equal(lines, ["XCLIENT PROTO=ESMTP HELO=client.example LOGIN=joe+2Bx+3Dy+20z PORT=4711 NAME=client.example ADDR=192.0.2.7"]);
  assert.equal(proxyCommandLines("XFORWARD", { addr: "2001:db8::1", source: "remote", ident: "ABC123" }, XFORWARD), ["XFORWARD IDENT=ABC123 SOURCE=REMOTE ADDR=IPV6:2001:db8::1"]);
  assert.equal(proxyCommandLines("XCLIENT", { addr: "IPv6:::1", name: "[tempunavail]" }, XCLIENT), ["XCLIENT NAME=[TEMPUNAVAIL] ADDR=IPV6:::1"]);
});

test("a long attribute list is split over lines of at most 512 octets, ADDR in the last", () => {
  const long = "h".repeat(250);
  const lines = proxyCommandLines("XCLIENT", { helo: long, name: long, login: long, addr: "192.0.2.1" }, XCLIENT);
  assert.ok(lines.length >= 2);
  for (const line of lines) assert.ok(line.length + 2 <= 512, `${line.length}`);
  assert.match(lines[lines.length - 1]!, /ADDR=192\.0\.2\.1$/);
  assert.ok(lines.every((line) => line.startsWith("XCLIENT ")));
});

test("CR, LF and other control characters in a value are refused, not encoded", () => {
  for (const value of ["evil\r\nMAIL FROM:<x@y>", "a\nb", "a\0b", "tab\there"]) {
    refused(() => proxyCommandLines("XCLIENT", { name: value }, XCLIENT), /control characters/);
    refused(() => proxyCommandLines("XFORWARD", { helo: value }, XFORWARD), /control characters/);
  }
});

test("property: no value, however random, puts a space, CR or LF into the line", () => {
  const random = randomFor("xtext values");
  for (let i = 0; i < 500; i++) {
    const value = Buffer.from(Array.from({ length: random.int(1, 40) }, () => random.int(0x20, 0x7e))).toString("latin1") + (random.chance(0.3) ? "ü ä" : "");
    const [line] = proxyCommandLines("XCLIENT", { login: value }, XCLIENT);
    const encoded = line!.slice("XCLIENT LOGIN=".length);
    assert.not.match(encoded, /[\s]/, `${JSON.stringify(value)}${seedNote()}`);
    const decoded = Buffer.from(encoded.replace(/\+([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), "latin1").toString("utf8");
    assert.is(decoded, value, seedNote());
  }
});

test("values are checked by attribute: address, port, protocol, source, length", () => {
  refused(() => proxyCommandLines("XCLIENT", { addr: "not-an-ip" }, XCLIENT), /IPv4 or IPv6/);
  refused(() => proxyCommandLines("XCLIENT", { port: 70000 }, XCLIENT), /port/);
  refused(() => proxyCommandLines("XCLIENT", { destPort: "12a" }, XCLIENT), /port/);
  refused(() => proxyCommandLines("XCLIENT", { proto: "HTTP" }, XCLIENT), /SMTP/);
  refused(() => proxyCommandLines("XFORWARD", { source: "SOMEWHERE" }, XFORWARD), /LOCAL/);
  refused(() => proxyCommandLines("XCLIENT", { helo: "x".repeat(256) }, XCLIENT), /255/);
  refused(() => proxyCommandLines("XCLIENT", { name: "" }, XCLIENT), /non-empty/);
  refused(() => proxyCommandLines("XCLIENT", {}, XCLIENT), /at least one/);
  refused(() => proxyCommandLines("XCLIENT", null as unknown as object, XCLIENT), /object/);
  refused(() => proxyCommandLines("XCLIENT", { ident: "x" } as object, XCLIENT), /Unknown XCLIENT attribute "ident"/);
});

test("a command or attribute the server did not advertise is refused", () => {
  refused(() => proxyCommandLines("XCLIENT", { addr: "192.0.2.1" }, undefined), /does not offer XCLIENT/);
  refused(() => proxyCommandLines("XCLIENT", { destAddr: "192.0.2.1" }, ["NAME", "ADDR"]), /DESTADDR/);
});

test("xclient() against smtp-server: the server sees the original client, and EHLO is said again with its HELO", async () => {
  const seen: SMTPServerSession[] = [];
  const server = await startServer({
    useXClient: true,
    onMailFrom(_address, session, callback) {
      seen.push(session);
      callback();
    },
  });
  const conn = await connectedAs(server.port);
  assert.ok(conn.extensions.has("XCLIENT"));
  await conn.xclient({ addr: "192.0.2.7", name: "client.example", helo: "helo.client.example", port: 4711, proto: "ESMTP" });
  await conn.send({ from: "s@example.test", to: "r@example.test" }, body);
  const session = seen[0]!;
  assert.is(session.remoteAddress, "192.0.2.7");
  assert.is(session.clientHostname, "client.example");
  assert.is(session.hostNameAppearsAs, "helo.client.example");
  assert.is(session.xClient.get("PORT"), 4711);
  const xclient = server.commands.findIndex((c) => c.startsWith("XCLIENT"));
  assert.is(server.commands[xclient + 1], "EHLO helo.client.example");
  // smtp-server offers XCLIENT no more once ADDR was set, and the extensions say so.
  assert.not.ok(conn.extensions.has("XCLIENT"));
  const again = await conn.xclient({ addr: "192.0.2.8" }).catch((err: SMTPError) => err);
  assert.instance(again, SMTPError);
  assert.match((again as SMTPError).message, /does not offer XCLIENT/);
  await conn.quit();
  await server.close();
});

test("xforward() against smtp-server: the attributes apply to the next transaction", async () => {
  const seen: SMTPServerSession[] = [];
  const server = await startServer({
    useXForward: true,
    onMailFrom(_address, session, callback) {
      seen.push(session);
      callback();
    },
  });
  const conn = await connectedAs(server.port);
  await new Promise<void>((resolve, reject) => conn.xforward({ addr: "198.51.100.4", helo: "orig.example", proto: "SMTP", ident: "Q1" }, (err) => (err ? reject(err) : resolve())));
  await conn.send({ from: "s@example.test", to: "r@example.test" }, body);
  assert.is(seen[0]!.xForward.get("ADDR"), "198.51.100.4");
  assert.is(seen[0]!.xForward.get("HELO"), "orig.example");
  assert.is(seen[0]!.xForward.get("IDENT"), "Q1");
  const commands = server.commands.map((c) => c.split(" ")[0]);
  assert.ok(commands.indexOf("XFORWARD") < commands.indexOf("MAIL"), commands.join(" "));
  await conn.quit();
  await server.close();
});

test("a server that does not advertise them gets nothing written, and the connection goes on", async () => {
  const server = await startServer();
  const conn = await connectedAs(server.port);
  for (const call of [() => conn.xclient({ addr: "192.0.2.1" }), () => conn.xforward({ addr: "192.0.2.1" })]) {
    const err = await call().catch((e: SMTPError) => e);
    assert.instance(err, SMTPError);
    assert.is((err as SMTPError).code, "EPROTOCOL");
  }
  await conn.send({ from: "s@example.test", to: "r@example.test" }, body);
  assert.not.ok(server.commands.some((c) => /^X(CLIENT|FORWARD)/.test(c)));
  await conn.quit();
  await server.close();
});

test("a refused XCLIENT fails with the server's reply; a failed transaction is reset first", async () => {
  const server = await startFaultServer([
    ...greetAndEhlo(["XCLIENT NAME ADDR HELO", "XFORWARD ADDR"]),
    { expect: /^MAIL FROM/ },
    { send: "550 5.7.1 sender refused\r\n" },
    { expect: "RSET" },
    { send: "250 ok\r\n" },
    { expect: "XCLIENT ADDR=192.0.2.9" },
    { send: "550 5.7.0 Error: insufficient authorization\r\n" },
    { expect: "XFORWARD ADDR=192.0.2.9" },
    { send: "421 4.3.0 going down\r\n" },
  ]);
  const conn = await connectedAs(server.port, { pipelining: false });
  const sent = await conn.send({ from: "s@example.test", to: "r@example.test" }, body).catch((err: SMTPError) => err);
  assert.is((sent as SMTPError).code, "EENVELOPE");
  const err = (await conn.xclient({ addr: "192.0.2.9" }).catch((e: SMTPError) => e)) as SMTPError;
  assert.is(err.code, "EPROTOCOL");
  assert.is(err.responseCode, 550);
  assert.is(err.command, "XCLIENT");
  const gone = (await conn.xforward({ addr: "192.0.2.9" }).catch((e: SMTPError) => e)) as SMTPError;
  assert.is(gone.code, "ECONNECTION");
  assert.is(gone.responseCode, 421);
  await server.close();
  assert.equal(server.errors, []);
});

test("after XCLIENT's new greeting the client says EHLO again and takes the new extensions", async () => {
  const server = await startFaultServer([
    ...greetAndEhlo(["XCLIENT ADDR HELO"]),
    { expect: "XCLIENT HELO=orig.example ADDR=192.0.2.3" },
    { send: "220 fault.example.test ESMTP again\r\n" },
    { expect: "EHLO orig.example" },
    { send: ehloReply(["SIZE 1000"]) },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ]);
  const conn = await connectedAs(server.port);
  await conn.xclient({ addr: "192.0.2.3", helo: "orig.example" });
  assert.equal(conn.extensions.get("SIZE"), ["1000"]);
  assert.not.ok(conn.extensions.has("XCLIENT"));
  await conn.quit();
  await server.close();
  assert.equal(server.errors, []);
});

leakCheckTest(test, unhandled);
test.run();
