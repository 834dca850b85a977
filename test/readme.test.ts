/**
 * Every JavaScript example in README.md runs, against a real smtp-server on loopback:
 * the host and port are pointed at it and "big.eml" at a generated file, nothing else
 * changes. An example that throws or exits non-zero fails its test.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startServer } from "./helpers/server.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const readme = readFileSync(join(root, "README.md"), "utf8");
const examples = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
const scratch = mkdtempSync(join(tmpdir(), "smtp-wire-readme-"));
const eml = join(scratch, "big.eml");
writeFileSync(eml, "Subject: from the README\r\n\r\n" + "a line of the message body\r\n".repeat(40000));

test("README has runnable examples", () => {
  assert.ok(examples.length >= 2, `found ${examples.length}`);
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

test.after(() => rmSync(scratch, { recursive: true, force: true }));
test.run();
