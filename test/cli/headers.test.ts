/**
 * The envelope read from a message's header: address lists with display names, quoted
 * strings, comments and groups; folded fields; Bcc taken out of what is sent.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { envelopeFromHeader, headerFields, parseAddressList, withoutBcc } from "../../lib/cli/headers.js";

test("a plain list gives its addresses in order", () => {
  assert.equal(parseAddressList("a@x.example, b@y.example"), ["a@x.example", "b@y.example"]);
});

test("display names, quoted commas and comments are dropped", () => {
  assert.equal(parseAddressList(`"Doe, John" <john@x.example>, Jane (the boss) <jane@y.example>, (c) plain@z.example`), [
    "john@x.example",
    "jane@y.example",
    "plain@z.example",
  ]);
});

test("a group gives its members; an empty group gives nothing", () => {
  assert.equal(parseAddressList("Team: a@x.example, B <b@x.example>;, undisclosed-recipients:;"), ["a@x.example", "b@x.example"]);
});

test("a quoted local part inside angle brackets is kept, escapes and all", () => {
  assert.equal(parseAddressList(`Odd <"john doe\\"x"@x.example>`), [`"john doe\\"x"@x.example`]);
});

test("nested comments and escaped parentheses in comments are skipped", () => {
  assert.equal(parseAddressList("a@x.example (one (two) \\) three)"), ["a@x.example"]);
});

test("folded fields are unfolded and names match whatever their case", () => {
  const fields = headerFields("TO: a@x.example,\r\n  b@x.example\r\nsubject: hi\r\nnot a field\r\n");
  assert.equal(fields.get("to"), ["a@x.example, b@x.example"]);
  assert.equal(fields.get("subject"), ["hi"]);
});

test("the envelope takes the first From and every To, Cc and Bcc once", () => {
  const head = "From: Me <me@x.example>, other@x.example\nTo: a@x.example\nCc: b@x.example, a@x.example\nBcc: c@x.example\nTo: d@x.example\n\n";
  assert.equal(envelopeFromHeader(head), { from: "me@x.example", to: ["a@x.example", "d@x.example", "b@x.example", "c@x.example"] });
});

test("no From gives no sender", () => {
  assert.is(envelopeFromHeader("To: a@x.example\r\n\r\n").from, undefined);
});

test("Bcc fields and their folded lines are removed, every other byte kept", () => {
  const head = "From: a@x.example\r\nBcc: hidden@x.example,\r\n\tmore@x.example\r\nTo: b@x.example\r\nbcc:x@x.example\r\nSubject: Bcc: not a field\r\n\r\n";
  assert.is(withoutBcc(head), "From: a@x.example\r\nTo: b@x.example\r\nSubject: Bcc: not a field\r\n\r\n");
});

test.run();
