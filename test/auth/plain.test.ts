/**
 * PLAIN (RFC 4616): the mechanism's line, then login() with it against smtp-server:
 * accepted with the right password, EAUTH with the server's reply on a wrong one.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { plain } from "../../lib/auth/plain.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { b64, loginWith, wrongPasswordFailure } from "./support.js";

const unhandled = trackUnhandled();

test("sends authzid NUL authcid NUL password as the initial response", () => {
  const mechanism = plain("me@example.test", "s3cret");
  assert.is(mechanism.name, "PLAIN");
  assert.is(mechanism.start(), `PLAIN ${b64("\0me@example.test\0s3cret")}`);
});

test("encodes non-ASCII user names and passwords as UTF-8", () => {
  assert.is(plain("josé", "пароль").start(), `PLAIN ${Buffer.from("\0josé\0пароль", "utf8").toString("base64")}`);
});

test("cancels with * if the server challenges after the initial response", () => {
  assert.is(plain("u", "p").next(Buffer.alloc(0)), "*");
});

test("logs in with PLAIN against smtp-server", async () => {
  const server = await loginWith("PLAIN");
  assert.equal(server.commands.filter((c) => c.startsWith("AUTH")), [`AUTH PLAIN ${b64("\0me\0s3cret")}`]);
});

test("fails with EAUTH carrying the server's 535 on a wrong password", async () => {
  const err = await wrongPasswordFailure("PLAIN");
  assert.match(err.response ?? "", /^535 5\.7\.8 .*Authentication credentials invalid/);
  assert.is(err.temporary, false);
});

leakCheckTest(test, unhandled);

test.run();
