/**
 * Issue 11, item 8: error codes where Nodemailer's users switch on them. A TCP connection
 * that cannot be made is ESOCKET in both, the Node code kept (`cause.code`, and
 * `originalCode` as Nodemailer names it). The codes that deliberately differ (README,
 * "Error codes that differ from Nodemailer's") are shown side by side too, so the list
 * there stays true.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ehloReply, startFaultServer, type Step } from "../helpers/fault-server.js";
import { sideBySide } from "../helpers/nodemailer.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";
import { closedPort } from "../helpers/server.js";

const unhandled = trackUnhandled();

async function playToBoth(script: Step[], send: boolean) {
  const server = await startFaultServer(script);
  try {
    return await sideBySide({ host: "127.0.0.1", port: server.port, ignoreTLS: true }, async (driver) => {
      await driver.connect();
      if (send) await driver.send({ from: "a@example.test", to: ["b@example.test"] }, "Subject: x\r\n\r\nx\r\n");
    });
  } finally {
    await server.close();
  }
}

test("a refused TCP connection is ESOCKET in both, with ECONNREFUSED kept as originalCode", async () => {
  const port = await closedPort();
  const run = await sideBySide({ host: "127.0.0.1", port }, (driver) => driver.connect());
  assert.is(run.nodemailer.error?.code, "ESOCKET");
  assert.is(run.ours.error?.code, "ESOCKET");
  assert.is(run.ours.error?.originalCode, "ECONNREFUSED");
  assert.is(run.ours.error?.originalCode, run.nodemailer.error?.originalCode);
  assert.is((run.ours.error?.cause as { code?: string }).code, "ECONNREFUSED");
  assert.is(run.ours.error?.command, run.nodemailer.error?.command);
  assert.is(run.ours.error?.temporary, true);
});

test("deliberate difference: a greeting that is not 220 is ECONNECTION (Nodemailer: EPROTOCOL), with the reply in both", async () => {
  const run = await playToBoth([{ send: "554 5.3.2 No service\r\n" }, { close: true }], false);
  assert.is(run.nodemailer.error?.code, "EPROTOCOL");
  assert.is(run.ours.error?.code, "ECONNECTION");
  assert.is(run.ours.error?.responseCode, 554);
  assert.is(run.ours.error?.responseCode, run.nodemailer.error?.responseCode);
});

test("deliberate difference: a 421 answering MAIL FROM is ECONNECTION (Nodemailer: EENVELOPE), with the reply in both", async () => {
  const run = await playToBoth([{ send: "220 x ESMTP\r\n" }, { expect: /^EHLO / }, { send: ehloReply() }, { expect: /^MAIL FROM:/ }, { send: "421 4.7.0 Try again later\r\n" }, { close: true }], true);
  assert.is(run.nodemailer.error?.code, "EENVELOPE");
  assert.is(run.ours.error?.code, "ECONNECTION");
  assert.is(run.ours.error?.responseCode, 421);
  assert.is(run.ours.error?.responseCode, run.nodemailer.error?.responseCode);
  assert.is(run.ours.error?.temporary, true);
});

test("leaves no socket, timer, rejection or double callback behind", () => assertNoLeaks());
void unhandled;
test.run();
