/**
 * Issue 11, items 3 and 7: what a connection exposes, next to Nodemailer's. The same
 * options go to both classes and the same server serves both; the public properties
 * Nodemailer declares must read the same (`version` aside: each is its own package's),
 * `SendInfo.ehlo` must list the EHLO lines with their parameters, and the TLS details a
 * relay logs must match what Nodemailer's socket says.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import NodemailerConnection from "nodemailer/lib/smtp-connection";
import { SMTPConnection } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { getCerts } from "../helpers/certs.js";
import { sideBySide } from "../helpers/nodemailer.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const PROPERTIES = ["stage", "destroyed", "secureConnection", "alreadySecured", "servername", "allowInternalNetworkInterfaces", "secure", "host", "port"] as const;
type Props = Record<(typeof PROPERTIES)[number], unknown>;
const read = (conn: object): Props => Object.fromEntries(PROPERTIES.map((key) => [key, (conn as Record<string, unknown>)[key]])) as Props;

const OPTION_SETS = [
  {},
  { host: "127.0.0.1", port: 465 },
  { host: "mx.example.test", port: 465, secure: false },
  { host: "mx.example.test", servername: "sni.example.test", secure: true },
  { host: "::1", port: 25, allowInternalNetworkInterfaces: true },
  { host: "localhost", port: 2525, secured: true },
];

test("before connecting, every property Nodemailer declares reads the same for the same options", () => {
  for (const options of OPTION_SETS) {
    const theirs = new NodemailerConnection({ ...options, logger: false });
    const ours = new SMTPConnection(options);
    assert.equal(read(ours), read(theirs), JSON.stringify(options));
  }
});

test("version is this package's, a string as in Nodemailer", () => {
  const ours = new SMTPConnection();
  const theirs = new NodemailerConnection({ logger: false });
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  assert.is(ours.version, pkg.version);
  assert.type(theirs.version, "string");
});

test("customAuth is a Map by upper-case method name, in both", () => {
  const handler = () => undefined;
  const theirs = new NodemailerConnection({ customAuth: { " my-Auth ": handler }, logger: false });
  const ours = new SMTPConnection({ customAuth: { " my-Auth ": handler } });
  assert.instance(ours.customAuth, Map);
  assert.equal([...ours.customAuth.entries()], [...(theirs.customAuth as Map<string, unknown>).entries()]);
  assert.equal([...ours.customAuth.keys()], ["MY-AUTH"]);
});

test("logger has every level and tags entries with the connection id; silent without a logger", () => {
  const entries: unknown[][] = [];
  const sink = { debug: (...a: unknown[]) => entries.push(["debug", ...a]), info: (...a: unknown[]) => entries.push(["info", ...a]), error: (...a: unknown[]) => entries.push(["error", ...a]) };
  const ours = new SMTPConnection({ logger: sink });
  const theirs = new NodemailerConnection({ logger: false });
  for (const level of ["trace", "debug", "info", "warn", "error", "fatal"] as const) {
    assert.type(ours.logger[level], "function", level);
    assert.type((theirs.logger as unknown as Record<string, unknown>)[level], "function", level);
  }
  ours.logger.warn({ tnx: "relay" }, "queue %s is slow", "q1");
  ours.logger.fatal("plain message");
  assert.equal(entries, [
    ["info", { component: "smtp-wire", sid: ours.id, tnx: "relay" }, "queue %s is slow", "q1"],
    ["error", { component: "smtp-wire", sid: ours.id }, "plain message"],
  ]);
  new SMTPConnection().logger.error("nothing happens");
});

test("stage and destroyed move as in Nodemailer: init, connected, then destroyed after close", async () => {
  const server = await startServer();
  try {
    const run = await sideBySide({ host: "127.0.0.1", port: server.port, ignoreTLS: true }, async (driver) => {
      const conn = driver.raw as Props;
      const seen = [[conn.stage, conn.destroyed]];
      await driver.connect();
      seen.push([conn.stage, conn.destroyed]);
      await driver.close();
      seen.push([conn.stage, conn.destroyed]);
      return seen;
    });
    assert.equal(run.ours.value, run.nodemailer.value);
    assert.equal(run.ours.value, [
      ["init", false],
      ["connected", false],
      ["connected", true],
    ]);
  } finally {
    await server.close();
  }
});

test("SendInfo.ehlo lists the EHLO lines with their parameters, as Nodemailer's does", async () => {
  const server = await startServer({ size: 102400, users: { u: "p" } });
  try {
    const run = await sideBySide({ host: "127.0.0.1", port: server.port, ignoreTLS: true }, async (driver) => {
      await driver.connect();
      return driver.send({ from: "a@example.test", to: ["b@example.test"] }, "Subject: x\r\n\r\nx\r\n");
    });
    assert.ok(Array.isArray(run.nodemailer.value?.ehlo));
    assert.equal(run.ours.value?.ehlo, run.nodemailer.value?.ehlo);
    const ehlo = run.ours.value?.ehlo as string[];
    assert.ok(ehlo.includes("SIZE 102400"), JSON.stringify(ehlo));
    assert.ok(ehlo.some((line) => /^AUTH (?=.*PLAIN)(?=.*LOGIN)/.test(line)), JSON.stringify(ehlo));
  } finally {
    await server.close();
  }
});

test("tlsInfo after STARTTLS: cipher, protocol, authorized and the certificate, as Nodemailer's socket reports them", async () => {
  const server = await startServer({ starttls: true });
  try {
    const run = await sideBySide({ host: "localhost", port: server.port, tls: { ca: getCerts().ca } }, async (driver) => {
      const before = driver.client === "smtp-wire" ? (driver.raw as SMTPConnection).tlsInfo : undefined;
      await driver.connect();
      if (driver.client === "smtp-wire") {
        const info = (driver.raw as SMTPConnection).tlsInfo!;
        return { before, cipher: info.cipher.name, protocol: info.protocol, authorized: info.authorized, authorizationError: info.authorizationError, subject: info.peerCertificate.subject?.CN };
      }
      const socket = (driver.raw as { _socket: TLSSocket })._socket;
      return { before, cipher: socket.getCipher().name, protocol: socket.getProtocol(), authorized: socket.authorized, authorizationError: socket.authorizationError, subject: socket.getPeerCertificate().subject?.CN };
    });
    assert.equal(run.ours.value, run.nodemailer.value);
    assert.is(run.ours.value?.authorized, true);
    assert.is(run.ours.value?.protocol, "TLSv1.3");
    assert.is(run.ours.value?.before, undefined, "no TLS details before the upgrade");
  } finally {
    await server.close();
  }
});

test("leaves no socket, timer, rejection or double callback behind", () => assertNoLeaks());
void unhandled;
test.run();
