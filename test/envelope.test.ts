import { test } from "uvu";
import * as assert from "uvu/assert";
import { prepareEnvelope, xtext, checkClientName } from "../lib/envelope.js";
import { SMTPError } from "../lib/errors.js";

const ext = (...keywords: string[]) => new Map(keywords.map((k) => { const [name, ...params] = k.split(" "); return [name!, params]; }));
const full = { extensions: ext("SIZE 1000", "8BITMIME", "SMTPUTF8", "DSN", "PIPELINING"), secure: false };

function refuses(fn: () => unknown, code: string, pattern?: RegExp) {
  try {
    fn();
  } catch (err) {
    assert.instance(err, SMTPError);
    assert.is((err as SMTPError).code, code);
    assert.is((err as SMTPError).temporary, false);
    if (pattern) assert.match((err as SMTPError).message, pattern);
    return;
  }
  assert.unreachable("expected an error");
}

test("builds MAIL and RCPT lines for a plain envelope", () => {
  const p = prepareEnvelope({ from: "a@example.test", to: ["b@example.test", "c@example.test"] }, full);
  assert.is(p.mailLine, "MAIL FROM:<a@example.test>");
  assert.equal(p.rcptLines, ["RCPT TO:<b@example.test>", "RCPT TO:<c@example.test>"]);
});

test("accepts a single recipient string and the null sender", () => {
  const p = prepareEnvelope({ from: "", to: "b@example.test" }, full);
  assert.is(p.mailLine, "MAIL FROM:<>");
  assert.equal(p.to, ["b@example.test"]);
});

for (const bad of ["a@b\r\nRCPT TO:<x@y>", "a@b\n", "a\0@b", "<a@b>", "a@b>"]) {
  test(`refuses the address ${JSON.stringify(bad)} before anything is written`, () => {
    refuses(() => prepareEnvelope({ from: bad, to: ["b@example.test"] }, full), "EENVELOPE");
    refuses(() => prepareEnvelope({ from: "a@example.test", to: ["b@example.test", bad] }, full), "EENVELOPE");
  });
}

test("takes Nodemailer's address objects for their address", () => {
  const p = prepareEnvelope({ from: { name: "A", address: "a@example.test" }, to: [{ name: "B", address: "b@example.test" }, "c@example.test"] }, full);
  assert.is(p.mailLine, "MAIL FROM:<a@example.test>");
  assert.equal(p.rcptLines, ["RCPT TO:<b@example.test>", "RCPT TO:<c@example.test>"]);
});

test("refuses non-string addresses and an empty recipient list", () => {
  refuses(() => prepareEnvelope({ from: 42 as unknown as string, to: ["b@example.test"] }, full), "EENVELOPE", /string/);
  refuses(() => prepareEnvelope({ from: "a@example.test", to: [{} as unknown as string] }, full), "EENVELOPE");
  refuses(() => prepareEnvelope({ from: "a@example.test", to: [] }, full), "EENVELOPE", /No recipients/);
  refuses(() => prepareEnvelope(null as unknown as { from: string; to: string }, full), "EENVELOPE");
});

test("announces SIZE only when advertised and refuses a message over the limit", () => {
  assert.is(prepareEnvelope({ from: "a@x.test", to: "b@x.test", size: 999 }, full).mailLine, "MAIL FROM:<a@x.test> SIZE=999");
  refuses(() => prepareEnvelope({ from: "a@x.test", to: "b@x.test", size: 1001 }, full), "EMESSAGE", /1000/);
  assert.is(prepareEnvelope({ from: "a@x.test", to: "b@x.test", size: 5 }, { extensions: ext(), secure: false }).mailLine, "MAIL FROM:<a@x.test>");
  for (const size of [-1, 1.5, "12a", "-1", "1e3", NaN]) refuses(() => prepareEnvelope({ from: "a@x.test", to: "b@x.test", size: size as number }, full), "EENVELOPE", /size/);
});

test("adds BODY=8BITMIME and SMTPUTF8 when asked for and advertised", () => {
  const p = prepareEnvelope({ from: "a@x.test", to: "b@x.test", use8BitMime: true, smtpUtf8: true }, full);
  assert.is(p.mailLine, "MAIL FROM:<a@x.test> BODY=8BITMIME SMTPUTF8");
});

test("uses SMTPUTF8 by itself for a non-ASCII address, and refuses one the server cannot take", () => {
  assert.is(prepareEnvelope({ from: "a@x.test", to: "δοκιμή@x.test" }, full).mailLine, "MAIL FROM:<a@x.test> SMTPUTF8");
  refuses(() => prepareEnvelope({ from: "a@x.test", to: "δοκιμή@x.test" }, { extensions: ext(), secure: false }), "EENVELOPE", /SMTPUTF8/);
});

test("encodes DSN parameters as xtext and validates NOTIFY", () => {
  const p = prepareEnvelope({ from: "a@x.test", to: "b@x.test", dsn: { ret: "hdrs", envid: "id+1=2 x", notify: ["success", "failure"], orcpt: "b@x.test" } }, full);
  assert.is(p.mailLine, "MAIL FROM:<a@x.test> RET=HDRS ENVID=id+2B1+3D2+20x");
  assert.equal(p.rcptLines, ["RCPT TO:<b@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@x.test"]);
  assert.is(prepareEnvelope({ from: "a@x.test", to: "b@x.test", dsn: { notify: "NEVER" } }, full).rcptLines[0], "RCPT TO:<b@x.test> NOTIFY=NEVER");
  refuses(() => prepareEnvelope({ from: "a@x.test", to: "b@x.test", dsn: { notify: ["NEVER", "SUCCESS"] } }, full), "EENVELOPE", /NEVER/);
  refuses(() => prepareEnvelope({ from: "a@x.test", to: "b@x.test", dsn: { notify: "SOMETIMES" } }, full), "EENVELOPE");
  refuses(() => prepareEnvelope({ from: "a@x.test", to: "b@x.test", dsn: { ret: "ALL" } }, full), "EENVELOPE");
  refuses(() => prepareEnvelope({ from: "a@x.test", to: "b@x.test", dsn: { envid: "x\r\nRSET" } }, full), "EENVELOPE");
  refuses(() => prepareEnvelope({ from: "a@x.test", to: "b@x.test", dsn: { orcpt: "b@x\n" } }, full), "EENVELOPE");
});

test("leaves DSN parameters out when the server has no DSN", () => {
  const p = prepareEnvelope({ from: "a@x.test", to: "b@x.test", dsn: { ret: "FULL", notify: "SUCCESS" } }, { extensions: ext(), secure: false });
  assert.is(p.mailLine, "MAIL FROM:<a@x.test>");
  assert.is(p.rcptLines[0], "RCPT TO:<b@x.test>");
});

test("REQUIRETLS needs an encrypted session that offers it", () => {
  refuses(() => prepareEnvelope({ from: "a@x.test", to: "b@x.test", requireTLS: true }, full), "EREQUIRETLS", /not encrypted/);
  refuses(() => prepareEnvelope({ from: "a@x.test", to: "b@x.test", requireTLS: true }, { ...full, secure: true }), "EREQUIRETLS", /does not support/);
  const p = prepareEnvelope({ from: "a@x.test", to: "b@x.test", requireTLS: true }, { extensions: ext("REQUIRETLS"), secure: true });
  assert.is(p.mailLine, "MAIL FROM:<a@x.test> REQUIRETLS");
});

test("xtext escapes plus, equals, space and 8-bit bytes", () => {
  assert.is(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
  assert.is(xtext("é"), "+C3+A9");
});

test("refuses an EHLO name with whitespace, CR, LF or NUL", () => {
  for (const name of ["", "a b", "a\r\nMAIL", "a\0"]) refuses(() => checkClientName(name), "ECONNECTION");
  checkClientName("mx.example.test");
});

test.run();
