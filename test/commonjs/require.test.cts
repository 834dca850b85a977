/**
 * Issue 11, item 10: smtp-wire from CommonJS, as Nodemailer's users load
 * `nodemailer/lib/smtp-connection`. `require("smtp-wire")` is the class itself, with the
 * named exports on it; it is the same class the ES module exports (one copy, so
 * `instanceof` holds across both); and Nodemailer-style callback code runs unchanged.
 * This file is CommonJS itself (compiled to .cjs), so the package's "require" export is
 * what it loads.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import SMTPConnection = require("smtp-wire");
import type { TestServer } from "../helpers/server.js";

type Nodemailer = typeof import("nodemailer/lib/smtp-connection").default;
const NodemailerConnection = require("nodemailer/lib/smtp-connection") as Nodemailer;

const { startServer } = require("../helpers/server.js") as typeof import("../helpers/server.js");
const { assertNoLeaks, trackUnhandled } = require("../helpers/leak-check.js") as typeof import("../helpers/leak-check.js");

trackUnhandled();

test("the package's types are there under the class's name (SMTPConnection.SendInfo, .SMTPError...)", () => {
  // Compiled with the rest: a type missing from the CommonJS declarations fails the build.
  const envelope: SMTPConnection.Envelope = { from: "a@example.test", to: ["b@example.test"] };
  const options: SMTPConnection.SMTPConnectionOptions = { host: "localhost", port: 25 };
  const failure: SMTPConnection.SMTPError = new SMTPConnection.SMTPError("EAUTH", "no");
  const done: SMTPConnection.Callback<SMTPConnection.SendInfo> = (err, info) => void [err, info];
  assert.is(failure.code satisfies SMTPConnection.SMTPErrorCode, "EAUTH");
  assert.equal(envelope.to, ["b@example.test"]);
  assert.is(options.port, 25);
  assert.type(done, "function");
});

test("require('smtp-wire') is the class itself, as require('nodemailer/lib/smtp-connection') is", () => {
  assert.type(SMTPConnection, "function");
  assert.type(NodemailerConnection, "function");
  assert.is(SMTPConnection.name, "SMTPConnection");
  const conn = new SMTPConnection({ host: "localhost" });
  assert.instance(conn, SMTPConnection);
  assert.type(conn.connect, "function");
});

test("the named exports are on it, and it carries no ES module marker", () => {
  const { SMTPError, LineSplitter, ReplyDecoder, DataEncoder, BdatEncoder, SendStream } = SMTPConnection;
  assert.is(SMTPConnection.SMTPConnection, SMTPConnection);
  for (const exported of [SMTPError, LineSplitter, ReplyDecoder, DataEncoder, BdatEncoder, SendStream]) assert.type(exported, "function");
  assert.is(new SMTPError("EAUTH", "x").code, "EAUTH");
  assert.is((SMTPConnection as unknown as { __esModule?: boolean }).__esModule, undefined, "an interop default import must get the class, not .default");
  // As Nodemailer's: itself again as a non-enumerable default, for interop default imports.
  assert.is((SMTPConnection as unknown as { default?: unknown }).default, SMTPConnection);
  assert.is((NodemailerConnection as unknown as { default?: unknown }).default, NodemailerConnection);
  assert.not.ok(Object.keys(SMTPConnection).includes("default"));
});

test("it is the very class the ES module exports", async () => {
  const esm = await import("smtp-wire");
  assert.is(esm.SMTPConnection, SMTPConnection);
  assert.is(esm.default, SMTPConnection);
  assert.is(esm.SMTPError, SMTPConnection.SMTPError);
});

test("Nodemailer-style callback code runs unchanged against smtp-server, with the same SendInfo shape", async () => {
  const server: TestServer = await startServer();
  try {
    const sendWith = (Connection: unknown) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const connection = new (Connection as Nodemailer)({ host: "127.0.0.1", port: server.port, ignoreTLS: true, logger: false });
        connection.on("error", reject);
        connection.connect(() => {
          connection.send({ from: "a@example.test", to: ["b@example.test"] }, "Subject: cjs\r\n\r\nHello\r\n", (err, info) => {
            if (err) return reject(err);
            connection.once("end", () => resolve(info as unknown as Record<string, unknown>));
            connection.quit();
          });
        });
      });
    const theirs = await sendWith(NodemailerConnection);
    const ours = await sendWith(SMTPConnection);
    assert.equal(ours.accepted, theirs.accepted);
    assert.equal(ours.rejected, theirs.rejected);
    assert.is(ours.response, theirs.response);
    assert.equal(ours.ehlo, theirs.ehlo);
    assert.equal(server.messages[1]!.data, server.messages[0]!.data);
  } finally {
    await server.close();
  }
});

test("leaves no socket, timer, rejection or double callback behind", () => assertNoLeaks());
test.run();
