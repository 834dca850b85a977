/**
 * Issue 11, item 11: Nodemailer-style code (test/typecheck/) compiles with `tsc --strict`
 * against smtp-wire's emitted declarations, as a user's project would see them (the
 * package resolved by its name, through package.json `exports`). The fixture's
 * `@ts-expect-error` lines make the check two-sided: too loose a type fails it as well.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");

function typecheck(file: string): { status: number | null; output: string } {
  const args = [tsc, "--noEmit", "--strict", "--exactOptionalPropertyTypes", "false", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext", "--types", "node", file];
  const run = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8" });
  return { status: run.status, output: run.stdout + run.stderr };
}

test("Nodemailer-style code compiles with --strict against the declarations", () => {
  const { status, output } = typecheck("test/typecheck/nodemailer-style.ts");
  assert.is(output.trim(), "", output);
  assert.is(status, 0);
});

test.run();
