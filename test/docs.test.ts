/**
 * The API reference (`npm run docs`, typedoc over the TSDoc comments of lib/) builds
 * without a warning: a public type left out of the exports, a broken {@link}, a comment
 * that names a missing parameter all fail here, so CI catches them. Nothing is written.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = fileURLToPath(new URL("../..", import.meta.url));

test("typedoc builds the API reference without a warning", async () => {
  const typedoc = join(root, "node_modules", "typedoc", "bin", "typedoc");
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [typedoc, "--emit", "none", "--treatWarningsAsErrors"], { cwd: root, timeout: 180_000 }).catch(
    (err: { stdout?: string; stderr?: string; code?: number }) => {
      throw new Error(`typedoc failed (exit ${err.code}):\n${err.stdout}${err.stderr}`);
    },
  );
  assert.not.match(stdout + stderr, /warning|error/i, stdout + stderr);
});

test.run();
