/**
 * Every example in README.md runs, against a real smtp-server on loopback.
 *
 * JavaScript examples: the host and port are pointed at the server and "big.eml" at a
 * generated file, nothing else changes. Shell examples: every line that runs the
 * `smtp-wire` command runs as it is written, in a directory holding message.eml (and
 * another .eml), with `smtp.example.com:587` pointed at a server that offers STARTTLS
 * with a certificate from the test CA (trusted through NODE_EXTRA_CA_CERTS) and accepts
 * AUTH from "me" with the password in SMTP_WIRE_PASSWORD. Lines that install or build
 * (npm) are not run. An example that throws or exits non-zero fails its test.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startServer } from "./helpers/server.js";
import { getCerts } from "./helpers/certs.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const readme = readFileSync(join(root, "README.md"), "utf8");
const examples = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
const commands = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split("\n").filter((line) => /^(\w+=\S+ )*smtp-wire /.test(line)));
const scratch = mkdtempSync(join(tmpdir(), "smtp-wire-readme-"));
const eml = join(scratch, "big.eml");
writeFileSync(eml, "Subject: from the README\r\n\r\n" + "a line of the message body\r\n".repeat(40000));

test("README has runnable examples", () => {
  assert.ok(examples.length >= 2, `found ${examples.length}`);
  assert.ok(commands.length >= 4, `found ${commands.length} smtp-wire command lines`);
});

examples.forEach((source, i) => {
  test(`README example ${i + 1} runs against a real server`, async () => {
    const server = await startServer({
      onAuth(auth, _session, callback) {
        callback(null, { user: auth.username });
      },
    });
    try {
      const code = source
        .replaceAll('"smtp.example.com"', '"127.0.0.1"')
        .replace(/port: 587/g, `port: ${server.port}`)
        .replaceAll('"big.eml"', JSON.stringify(eml));
      // Inside the package directory, so `import "smtp-wire"` resolves to this package.
      const file = join(root, "dist", `readme-example-${i + 1}.mjs`);
      writeFileSync(file, code);
      const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: root, timeout: 60_000 });
      assert.ok(server.messages.length >= 1, "the example delivered a message");
      assert.match(stdout, /you@example\.org/);
    } finally {
      await server.close();
    }
  });
});

// The command as a user has it on PATH, and the files the shell examples name.
const bin = join(scratch, "bin");
mkdirSync(bin);
writeFileSync(join(bin, "smtp-wire"), `#!/bin/sh\nexec "${process.execPath}" "${join(root, "bin", "smtp-wire.js")}" "$@"\n`, { mode: 0o755 });
const messages = join(scratch, "messages");
mkdirSync(messages);
const message = "From: Me <me@example.com>\r\nTo: You <you@example.org>\r\nSubject: from the README\r\n\r\nHello.\r\n";
writeFileSync(join(messages, "message.eml"), message);
writeFileSync(join(messages, "another.eml"), message);
const ca = join(scratch, "ca.pem");
writeFileSync(ca, getCerts().ca);

commands.forEach((line, i) => {
  test(`README command ${i + 1} runs: ${line}`, async () => {
    const server = await startServer({ starttls: true, users: { me: "secret" } });
    try {
      const command = line.replaceAll("smtp.example.com:587", `localhost:${server.port}`);
      const run = await promisify(execFile)("sh", ["-c", command], {
        cwd: messages,
        timeout: 60_000,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, NODE_EXTRA_CA_CERTS: ca, SMTP_WIRE_PASSWORD: "secret" },
      }).catch((err: { code?: number; stdout?: string; stderr?: string }) => {
        throw new Error(`exit ${err.code}\n${err.stdout}\n${err.stderr}`);
      });
      assert.ok(server.commands.at(-1) === "QUIT", `the command talked to the server and said QUIT:\n${run.stdout}${run.stderr}`);
      if (/\bsend\b/.test(line) && !line.includes("--quit-after")) assert.ok(server.messages.length >= 1, "a message was delivered");
    } finally {
      await server.close();
    }
  });
});

test.after(() => rmSync(scratch, { recursive: true, force: true }));
test.run();
