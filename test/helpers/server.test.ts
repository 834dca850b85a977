/**
 * Self-test of the smtp-server helper's TLS and auth options, driven by Nodemailer's
 * SMTPConnection (an independent client) and by a raw socket.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "node:net";
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import { startServer, type TestServer } from "./server.js";
import { getCerts } from "./certs.js";
import { assertNoLeaks, trackUnhandled } from "./leak-check.js";
import { settlesWithin } from "./callbacks.js";

trackUnhandled();

type Auth = { user: string; pass: string; method?: string };

/** Connects Nodemailer's client (verification on, trusting the test CA), logs in if asked, sends one message, quits. */
async function deliver(server: TestServer, options: { secure?: boolean; requireTLS?: boolean; auth?: Auth }): Promise<string | undefined> {
  const conn = new SMTPConnection({
    host: "localhost",
    port: server.port,
    secure: options.secure ?? false,
    requireTLS: options.requireTLS,
    tls: { ca: getCerts().ca },
  });
  const run = async (): Promise<string | undefined> => {
    await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
    if (options.auth) await new Promise<void>((resolve, reject) => conn.login(options.auth as SMTPConnection.Credentials, (err) => (err ? reject(err) : resolve())));
    const info = await new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) =>
      conn.send({ from: "a@example.test", to: ["b@example.test"] }, "Subject: t\r\n\r\nhi\r\n", (err, result) => (err ? reject(err) : resolve(result))),
    );
    return info.response;
  };
  conn.on("error", () => {
    /* reported through the callbacks */
  });
  const ended = new Promise<void>((resolve) => conn.once("end", () => resolve()));
  try {
    return await settlesWithin(run(), 5000, "the Nodemailer session");
  } finally {
    conn.quit();
    await settlesWithin(ended, 5000, "the end of the Nodemailer session");
  }
}

test("starttls: true offers STARTTLS with a certificate the test CA verifies; commands after TLS are recorded", async () => {
  const server = await startServer({ starttls: true, users: { me: "secret" } });
  try {
    const response = await deliver(server, { requireTLS: true, auth: { user: "me", pass: "secret" } });
    assert.match(response ?? "", /^250 /);
    const names = server.commands.map((line) => line.split(" ")[0]);
    assert.equal(names, ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]);
    assert.equal(server.auths, [{ method: "PLAIN", username: "me", ok: true, secure: true }]);
    assert.is(server.messages.length, 1);
  } finally {
    await server.close();
  }
});

test("secure: true without key or cert serves the CA-signed certificate (implicit TLS)", async () => {
  const server = await startServer({ secure: true });
  try {
    assert.match((await deliver(server, { secure: true })) ?? "", /^250 /);
    assert.equal(
      server.commands.map((line) => line.split(" ")[0]),
      ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"],
    );
  } finally {
    await server.close();
  }
});

test("users accepts the right password over PLAIN, LOGIN and CRAM-MD5 and refuses a wrong one with 535", async () => {
  const server = await startServer({ users: { me: "secret" } });
  try {
    for (const method of ["PLAIN", "LOGIN", "CRAM-MD5"]) {
      await deliver(server, { auth: { user: "me", pass: "secret", method } });
    }
    const refused = await deliver(server, { auth: { user: "me", pass: "wrong" } }).then(
      () => undefined,
      (err: Error & { responseCode?: number }) => err,
    );
    assert.is(refused?.responseCode, 535);
    assert.equal(
      server.auths.map((a) => `${a.method} ${a.ok}`),
      ["PLAIN true", "LOGIN true", "CRAM-MD5 true", "PLAIN false"],
    );
    assert.ok(server.auths.every((a) => a.username === "me" && a.secure === false));
  } finally {
    await server.close();
  }
});

test("users takes the access token for XOAUTH2 and fails a wrong one with a 334 challenge, then 535", async () => {
  const server = await startServer({ users: { me: "token-1" } });
  const socket = connect(server.port, "127.0.0.1");
  let text = "";
  const waitFor = (pattern: RegExp): Promise<void> =>
    settlesWithin(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (pattern.test(text)) {
            text = "";
            socket.off("data", onData);
            resolve();
          }
        };
        const onData = (): void => check();
        socket.on("data", onData);
        check();
      }),
      5000,
      `waiting for ${pattern}`,
    );
  socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
  const xoauth2 = (token: string): string => Buffer.from(`user=me\x01auth=Bearer ${token}\x01\x01`).toString("base64");
  try {
    await waitFor(/^220 /m);
    socket.write("EHLO client.example.test\r\n");
    await waitFor(/^250 /m);
    socket.write(`AUTH XOAUTH2 ${xoauth2("token-2")}\r\n`);
    await waitFor(/^334 /m);
    socket.write("\r\n");
    await waitFor(/^535 /m);
    socket.write(`AUTH XOAUTH2 ${xoauth2("token-1")}\r\n`);
    await waitFor(/^235 /m);
    socket.write("QUIT\r\n");
    await waitFor(/^221 /m);
  } finally {
    socket.destroy();
    await server.close();
  }
  assert.equal(
    server.auths.map((a) => `${a.method} ${a.ok}`),
    ["XOAUTH2 false", "XOAUTH2 true"],
  );
});

test("a test's own onAuth still runs, and its answers are recorded", async () => {
  const server = await startServer({
    allowInsecureAuth: true,
    onAuth(auth, _session, callback) {
      callback(null, { user: `custom:${auth.username}` });
    },
  });
  try {
    await deliver(server, { auth: { user: "anyone", pass: "x" } });
    assert.equal(server.auths, [{ method: "PLAIN", username: "anyone", ok: true, secure: false }]);
  } finally {
    await server.close();
  }
});

test("leaves no socket, timer or rejection behind", () => assertNoLeaks());

test.run();
