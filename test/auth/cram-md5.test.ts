/**
 * CRAM-MD5 (RFC 2195): the user name and HMAC-MD5 of the server's challenge keyed by the
 * password, so the password never crosses the wire; checked against the RFC's example
 * and against smtp-server.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { cramMd5 } from "../../lib/auth/cram-md5.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { b64, loginWith, wrongPasswordFailure } from "./support.js";

const unhandled = trackUnhandled();

test("answers the RFC 2195 example challenge with the RFC's digest", () => {
  const mechanism = cramMd5("tim", "tanstaaftanstaaf");
  assert.is(mechanism.name, "CRAM-MD5");
  assert.is(mechanism.start(), "CRAM-MD5");
  const answer = mechanism.next(Buffer.from("<1896.697170952@postoffice.reston.mci.net>"));
  assert.is(Buffer.from(answer, "base64").toString(), "tim b913a602c7eda7a495b4e6e7334d3890");
});

test("answers one challenge only, then cancels", () => {
  const mechanism = cramMd5("tim", "tanstaaftanstaaf");
  mechanism.next(Buffer.from("<1@x>"));
  assert.is(mechanism.next(Buffer.from("<2@x>")), "*");
});

test("logs in with CRAM-MD5 against smtp-server, and the password is not on the wire", async () => {
  const server = await loginWith("CRAM-MD5");
  assert.not.ok(server.commands.some((c) => c.includes(b64("s3cret")) || c.includes("s3cret")));
});

test("fails with EAUTH carrying the server's 535 on a wrong password", async () => {
  await wrongPasswordFailure("CRAM-MD5");
});

leakCheckTest(test, unhandled);

test.run();
