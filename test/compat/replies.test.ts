/**
 * Issue 11, items 4, 5 and 6: replies from servers that bend RFC 5321, as Nodemailer reads
 * them. The same scripted server plays the same bytes to Nodemailer and to smtp-wire; the
 * test compares what each reports.
 *
 * 4. A blank line (before the greeting, after the last EHLO line) is skipped.
 * 5. Reply bytes that are not UTF-8 are kept, decoded as latin1.
 * 6. A last reply without CRLF before the server closes is still reported, as the error's
 *    `response` and as `lastServerResponse`.
 * The line and reply limits still hold (the stage tests check them byte by byte).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ehloReply, startFaultServer, type Step } from "../helpers/fault-server.js";
import { errorFacts, sideBySide } from "../helpers/nodemailer.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const ENVELOPE = { from: "a@example.test", to: ["b@example.test"] };
const MESSAGE = "Subject: compat\r\n\r\nHello\r\n";
const latin1 = (text: string) => Buffer.from(text, "latin1");

/** Plays `script` to both clients (connect, then send) and returns what each reported. */
async function playToBoth(script: Step[], { send = true } = {}) {
  const server = await startFaultServer(script);
  try {
    const run = await sideBySide({ host: "127.0.0.1", port: server.port, ignoreTLS: true, name: "client.example.test" }, async (driver) => {
      await driver.connect();
      // A fresh copy each time: Nodemailer keeps state on the envelope it was given.
      return send ? driver.send(structuredClone(ENVELOPE), MESSAGE) : undefined;
    });
    return { ...run, server };
  } finally {
    await server.close();
  }
}

const envelopeSteps: Step[] = [
  { expect: /^MAIL FROM:/ },
  { send: "250 2.1.0 Ok\r\n" },
  { expect: /^RCPT TO:/ },
  { send: "250 2.1.5 Ok\r\n" },
  { expect: "DATA" },
  { send: "354 go ahead\r\n" },
  { expectData: true },
];

test("blank lines before the greeting and after the last EHLO line are skipped by both", async () => {
  const run = await playToBoth([
    { send: "\r\n  \r\n220 blank.example.test ESMTP\r\n" },
    { expect: /^EHLO / },
    { send: ehloReply(["SIZE 1000"]) + "\r\n" },
    ...envelopeSteps,
    { send: "\r\n250 2.0.0 queued\r\n" },
  ]);
  assert.is(run.nodemailer.error, undefined);
  assert.is(run.ours.error, undefined);
  assert.is(run.ours.value?.response, run.nodemailer.value?.response);
  assert.is(run.ours.value?.response, "250 2.0.0 queued");
  assert.is(run.ours.lastServerResponse, run.nodemailer.lastServerResponse);
  assert.equal(run.server.connections.map((c) => c.data.length), [1, 1], "both delivered the message");
});

test("reply bytes that are not UTF-8 are kept as latin1 by both, in response and lastServerResponse", async () => {
  const run = await playToBoth([
    { send: latin1("220 caf\xe9.example.test ESMTP\r\n") },
    { expect: /^EHLO / },
    { send: ehloReply() },
    ...envelopeSteps,
    { send: latin1("250 2.0.0 re\xe7u, id \xff\xfe\r\n") },
  ]);
  assert.is(run.nodemailer.error, undefined);
  assert.is(run.ours.error, undefined);
  assert.is(run.ours.value?.response, run.nodemailer.value?.response);
  assert.is(run.ours.value?.response, "250 2.0.0 re\xe7u, id \xff\xfe");
  assert.is(run.ours.lastServerResponse, run.nodemailer.lastServerResponse);
  assert.equal(latin1(run.ours.value!.response as string), latin1("250 2.0.0 re\xe7u, id \xff\xfe"), "no byte lost");
});

test("a refusal with bytes that are not UTF-8 keeps them in the error's response, alike for both", async () => {
  const run = await playToBoth([
    { send: "220 x ESMTP\r\n" },
    { expect: /^EHLO / },
    { send: ehloReply() },
    { expect: /^MAIL FROM:/ },
    { send: latin1("550 5.7.1 refus\xe9\r\n") },
  ]);
  assert.is(run.ours.error?.response, "550 5.7.1 refus\xe9");
  assert.is(run.ours.error?.response, run.nodemailer.error?.response);
  assert.is(run.ours.error?.code, run.nodemailer.error?.code);
  assert.is(run.ours.lastServerResponse, run.nodemailer.lastServerResponse);
});

test("valid UTF-8 text stays UTF-8 for both", async () => {
  const run = await playToBoth([{ send: "220 x ESMTP\r\n" }, { expect: /^EHLO / }, { send: ehloReply() }, ...envelopeSteps, { send: "250 2.0.0 reçu 受け付けました\r\n" }]);
  assert.is(run.ours.value?.response, "250 2.0.0 reçu 受け付けました");
  assert.is(run.ours.value?.response, run.nodemailer.value?.response);
});

test("421 without CRLF after the message, then FIN: both fail with ECONNECTION carrying the 421 as response and lastServerResponse", async () => {
  const run = await playToBoth([{ send: "220 x ESMTP\r\n" }, { expect: /^EHLO / }, { send: ehloReply() }, ...envelopeSteps, { send: "421 4.3.2 Shutting down" }, { close: true }]);
  assert.equal(errorFacts(run.ours.error), { code: "ECONNECTION", response: "421 4.3.2 Shutting down", responseCode: 421, command: "DATA" });
  assert.is(run.ours.error?.response, run.nodemailer.error?.response);
  assert.is(run.ours.error?.responseCode, run.nodemailer.error?.responseCode);
  assert.is(run.ours.error?.code, run.nodemailer.error?.code);
  assert.is(run.ours.lastServerResponse, "421 4.3.2 Shutting down");
  assert.is(run.ours.lastServerResponse, run.nodemailer.lastServerResponse);
  assert.is(run.ours.error?.enhancedCode, "4.3.2");
  assert.is(run.ours.error?.temporary, true);
});

test("554 without CRLF instead of a greeting, then FIN: both report it (Nodemailer as an error event)", async () => {
  const run = await playToBoth([{ send: "554 5.7.1 No service for you" }, { close: true }], { send: false });
  assert.is(run.ours.error?.code, "ECONNECTION");
  assert.is(run.ours.error?.response, "554 5.7.1 No service for you");
  assert.is(run.ours.error?.response, run.nodemailer.error?.response);
  assert.is(run.ours.error?.responseCode, run.nodemailer.error?.responseCode);
  assert.is(run.ours.lastServerResponse, run.nodemailer.lastServerResponse);
  assert.is(run.ours.error?.temporary, false, "a 5xx is not temporary");
});

test("a positive reply without CRLF before FIN is the last response, but the close is still the failure", async () => {
  const run = await playToBoth([{ send: "220 x ESMTP\r\n" }, { expect: /^EHLO / }, { send: ehloReply() }, ...envelopeSteps, { send: "250 2.0.0 queued" }, { close: true }]);
  assert.is(run.ours.error?.code, "ECONNECTION");
  assert.is(run.nodemailer.error?.code, "ECONNECTION");
  assert.is(run.ours.error?.response, undefined, "only a refusal explains the close");
  assert.is(run.ours.error?.response, run.nodemailer.error?.response);
  assert.is(run.ours.lastServerResponse, "250 2.0.0 queued");
  assert.is(run.ours.lastServerResponse, run.nodemailer.lastServerResponse);
});

test("a fragment without CRLF before FIN is dropped: ECONNECTION, no response", async () => {
  const run = await playToBoth([{ send: "220 x ESMTP\r\n" }, { expect: /^EHLO / }, { send: ehloReply() }, { expect: /^MAIL FROM:/ }, { send: "55" }, { close: true }]);
  assert.is(run.ours.error?.code, "ECONNECTION");
  assert.is(run.ours.error?.response, undefined);
  assert.is(run.nodemailer.error?.code, "ECONNECTION");
  assert.is(run.nodemailer.error?.response, undefined);
});

test("leaves no socket, timer, rejection or double callback behind", () => assertNoLeaks());
void unhandled;
test.run();
