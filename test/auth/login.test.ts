/**
 * LOGIN: the user name and the password, each answering a 334, whatever the prompts say;
 * then login() with it against smtp-server and against a server with unusual prompts.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { login } from "../../lib/auth/login.js";
import { startFaultServer, greetAndEhlo } from "../helpers/fault-server.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";
import { b64, connectTo, failure, loginWith, withFaultServer, wrongPasswordFailure } from "./support.js";

const unhandled = trackUnhandled();

test("answers the first challenge with the user name and the second with the password, then cancels", () => {
  const mechanism = login("me", "s3cret");
  assert.is(mechanism.name, "LOGIN");
  assert.is(mechanism.start(), "LOGIN");
  assert.is(mechanism.next(Buffer.from("Username:")), b64("me"));
  assert.is(mechanism.next(Buffer.from("Password:")), b64("s3cret"));
  assert.is(mechanism.next(Buffer.from("again?")), "*");
});

test("goes by order, not by prompt text: a server asking 'Password:' first still gets the user name first", () => {
  const mechanism = login("me", "s3cret");
  assert.is(mechanism.next(Buffer.from("Password:")), b64("me"));
  assert.is(mechanism.next(Buffer.from("Username:")), b64("s3cret"));
});

test("logs in with LOGIN against smtp-server", async () => {
  await loginWith("LOGIN");
});

test("sends exactly AUTH LOGIN, the user and the password lines, each after a 334", async () => {
  const script = [
    ...greetAndEhlo(["AUTH LOGIN"]),
    { expect: "AUTH LOGIN" },
    { send: "334 VXNlciBOYW1lAA==\r\n" },
    { expect: b64("me") },
    { send: "334 UGFzc3dvcmQA\r\n" },
    { expect: b64("s3cret") },
    { send: "235 2.7.0 Accepted\r\n" },
    { expect: "QUIT" },
    { send: "221 bye\r\n" },
  ];
  await withFaultServer(script, async (conn) => {
    await conn.login({ user: "me", pass: "s3cret" });
    assert.is(conn.authenticated, true);
  });
});

test("fails with EAUTH carrying the server's 535 on a wrong password", async () => {
  await wrongPasswordFailure("LOGIN");
});

test("a server that keeps challenging is cut off with EAUTH instead of looping forever", async () => {
  const steps = [...greetAndEhlo(["AUTH LOGIN"]), { expect: "AUTH LOGIN" }];
  for (let i = 0; i < 12; i++) steps.push({ send: "334 VXNlcm5hbWU6\r\n" }, { expect: () => true });
  const fault = await startFaultServer([...steps, { stall: true }]);
  const conn = await connectTo(fault.port);
  const err = await failure(conn.login({ user: "me", pass: "s3cret" }));
  assert.is(err.code, "EAUTH");
  assert.is(err.responseCode, 334);
  assert.is(conn.authenticated, false);
  conn.close();
  await fault.close();
});

leakCheckTest(test, unhandled);

test.run();
