/**
 * The command on a terminal, in a pseudo-terminal made by util-linux `script` (part of
 * every Debian install): the progress line appears there, and never in a pipe or with
 * --json; the password is asked for without echo and never shown.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { startServer } from "../helpers/server.js";
import { BIN, jsonLines, message, root, runCommand, scratch } from "./command.js";

const files = scratch();
const big = files.file("big.eml", message({ body: "a line of a large message, read in many chunks\r\n".repeat(100_000) }));
test.after(() => files.remove());

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

/**
 * Runs smtp-wire on a terminal; resolves with everything the terminal showed and the exit
 * code. `answer(shown, write)` is called as output arrives, to type into the terminal.
 */
function onTerminal(args: string[], answer?: (shown: string, type: (text: string) => void) => void): Promise<{ code: number; shown: string }> {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, BIN, ...args].map(quote).join(" ");
    const { SMTP_WIRE_PASSWORD: _, ...env } = process.env;
    const child = spawn("script", ["-qec", command, "/dev/null"], { cwd: root, env, stdio: ["pipe", "pipe", "pipe"] });
    let shown = "";
    const type = (text: string) => child.stdin.write(text);
    child.stdin.on("error", () => {});
    child.stdout.on("data", (chunk: Buffer) => {
      shown += chunk.toString();
      answer?.(shown, type);
    });
    child.stderr.on("data", (chunk: Buffer) => (shown += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      child.stdin.destroy();
      if (signal) reject(new Error(`killed: ${shown}`));
      else resolve({ code: code ?? -1, shown });
    });
  });
}

test("on a terminal a progress line (bytes, MB/s, ETA) is drawn and kept for each message", async () => {
  const server = await startServer();
  try {
    const { code, shown } = await onTerminal(["send", "-s", `127.0.0.1:${server.port}`, big, big]);
    assert.is(code, 0, shown);
    const kept = shown.split(/\r?\n/).filter((line) => /MB\/s {2}sent$/.test(line));
    assert.is(kept.length, 2, shown);
    assert.match(kept[0]!, /big\.eml {2}4\.\d MiB \/ 4\.\d MiB {2}\d+\.\d MB\/s {2}sent$/);
    assert.match(shown, /\x1b\[K/, "the line is redrawn in place");
    assert.is(server.messages.length, 2);
  } finally {
    await server.close();
  }
});

test("in a pipe there is no progress line, and with --json none on a terminal either", async () => {
  const server = await startServer();
  try {
    const piped = await runCommand(["send", "-s", `127.0.0.1:${server.port}`, big]);
    assert.is(piped.code, 0, piped.stderr);
    assert.is(piped.stderr, "");
    assert.not.match(piped.stdout, /MB\/s/);

    const { code, shown } = await onTerminal(["send", "-s", `127.0.0.1:${server.port}`, "--json", big]);
    assert.is(code, 0, shown);
    assert.not.match(shown, /MB\/s|\x1b\[K/);
    assert.is(jsonLines(shown.replaceAll("\r", ""))[0]!.sent, true, "only the JSON line");
  } finally {
    await server.close();
  }
});

test("the password is asked for on the terminal without echo, and never shown", async () => {
  const server = await startServer({ users: { me: "typed-Secret" } });
  try {
    let typed = false;
    const { code, shown } = await onTerminal(["send", "-s", `127.0.0.1:${server.port}`, "--user", "me", "-v", big], (shown, type) => {
      if (typed || !shown.includes("Password for me: ")) return;
      typed = true;
      type("typed-Secrex\x7ft\r");
    });
    assert.is(code, 0, shown);
    assert.equal(server.auths.map((a) => [a.username, a.ok]), [["me", true]], "the backspace was honoured");
    assert.not.ok(shown.includes("typed-Secre"), `nothing typed is shown:\n${shown}`);
    assert.match(shown, /C: AUTH CRAM-MD5 \*\*\*\*/);
  } finally {
    await server.close();
  }
});

test("Ctrl-C at the password prompt sends nothing (exit 2)", async () => {
  const server = await startServer({ users: { me: "pw" } });
  try {
    let typed = false;
    const { code, shown } = await onTerminal(["send", "-s", `127.0.0.1:${server.port}`, "--user", "me", big], (shown, type) => {
      if (typed || !shown.includes("Password for me: ")) return;
      typed = true;
      type("\x03");
    });
    assert.is(code, 2, shown);
    assert.match(shown, /No password given/);
    assert.is(server.auths.length, 0);
    assert.is(server.messages.length, 0);
  } finally {
    await server.close();
  }
});

test.run();
