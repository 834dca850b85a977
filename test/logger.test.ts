/**
 * Logging: `logger: true` prints readable lines, a Bunyan/pino-style object gets
 * (meta, message) calls, `debug` adds the transcript, and nothing is logged by default.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SMTPConnection } from "../lib/index.js";
import { startServer } from "./helpers/server.js";

type Entry = { level: string; meta: Record<string, unknown>; message: string };

function recordingLogger(entries: Entry[]) {
  const at = (level: string) => (meta: Record<string, unknown>, message: string) => entries.push({ level, meta, message });
  return { debug: at("debug"), info: at("info"), error: at("error") };
}

async function session(options: ConstructorParameters<typeof SMTPConnection>[0]): Promise<void> {
  const server = await startServer();
  const conn = new SMTPConnection({ host: "127.0.0.1", port: server.port, ...options });
  await conn.connect();
  await conn.send({ from: "a@example.test", to: "b@example.test" }, "Subject: secret body\r\n\r\nbody text\r\n");
  await conn.quit();
  await server.close();
}

test("a logger object gets the transcript with debug, tagged with the connection id", async () => {
  const entries: Entry[] = [];
  await session({ logger: recordingLogger(entries), debug: true });
  const lines = entries.map((e) => e.message);
  assert.ok(lines.some((l) => /^C: EHLO /.test(l)));
  assert.ok(lines.some((l) => /^S: 220 /.test(l)));
  assert.ok(lines.some((l) => l === "C: MAIL FROM:<a@example.test>"));
  assert.ok(entries.every((e) => typeof e.meta.sid === "string"));
  assert.not.ok(lines.some((l) => l.includes("body text")), "message bodies are never logged");
});

test("without debug only connection events are logged", async () => {
  const entries: Entry[] = [];
  await session({ logger: recordingLogger(entries) });
  assert.ok(entries.length > 0);
  assert.not.ok(entries.some((e) => /^[CS]: /.test(e.message)));
});

test("logger: true prints readable lines to the console; no logger prints nothing", async () => {
  const printed: string[] = [];
  const original = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    await session({ logger: true, debug: true });
    const withLogger = printed.length;
    await session({});
    assert.is(printed.length, withLogger, "nothing printed without a logger");
  } finally {
    console.log = original;
  }
  assert.ok(printed.some((l) => /^\[\d{4}-\d\d-\d\dT[^\]]+\] DEBUG \[[^\]]+\] \[client\] C: EHLO /.test(l)), printed.join("\n"));
});

test.run();
