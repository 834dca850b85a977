/**
 * allowInternalNetworkInterfaces (Nodemailer's option): addresses of a family this
 * machine reaches only through internal interfaces are tried after the others, never
 * dropped, so a loopback-only machine (a container, a CI sandbox) still connects by name,
 * with the option on or off. The interface table is replaced for these tests.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import os from "node:os";
import { SMTPConnection } from "../../lib/index.js";
import { startServer } from "../helpers/server.js";
import { leakCheckTest, trackUnhandled } from "../helpers/leak-check.js";

const unhandled = trackUnhandled();
const original = os.networkInterfaces;

/** Only the loopback interface, as in a network-less container. */
function loopbackOnly(): void {
  os.networkInterfaces = () => ({
    lo: [
      { address: "127.0.0.1", netmask: "255.0.0.0", family: "IPv4", mac: "00:00:00:00:00:00", internal: true, cidr: "127.0.0.1/8" },
      { address: "::1", netmask: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", family: "IPv6", mac: "00:00:00:00:00:00", internal: true, cidr: "::1/128", scopeid: 0 },
    ],
  });
}

test.after.each(() => {
  os.networkInterfaces = original;
});

for (const allowInternalNetworkInterfaces of [false, true]) {
  test(`a loopback-only machine connects to localhost by name with allowInternalNetworkInterfaces: ${allowInternalNetworkInterfaces}`, async () => {
    loopbackOnly();
    const server = await startServer();
    const conn = new SMTPConnection({ host: "localhost", port: server.port, allowInternalNetworkInterfaces });
    await conn.connect();
    await conn.send({ from: "a@example.test", to: "b@example.test" }, "Subject: x\r\n\r\ny\r\n");
    await conn.quit();
    assert.is(server.messages.length, 1);
    await server.close();
  });
}

test("an interface table that cannot be read does not stop the connection", async () => {
  os.networkInterfaces = () => {
    throw new Error("not permitted in this sandbox");
  };
  const server = await startServer();
  const conn = new SMTPConnection({ host: "localhost", port: server.port });
  await conn.connect();
  await conn.quit();
  await server.close();
});

leakCheckTest(test, unhandled);

test.run();
