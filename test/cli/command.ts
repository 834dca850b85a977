/**
 * Runs the smtp-wire command as users do: `node bin/smtp-wire.js ...` in a child process,
 * standard input given or closed, and resolves with its exit code and both outputs. A
 * command that does not exit in time (a hang, a leaked handle) is killed and fails the
 * test. Also a scratch directory for message files and the test CA.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { getCerts } from "../helpers/certs.js";

/** The repository (dist/test/cli/ is three levels below it). */
export const root = fileURLToPath(new URL("../../..", import.meta.url));
export const BIN = join(root, "bin", "smtp-wire.js");

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to standard input, which is then closed (closed at once when absent). */
  input?: string | Buffer;
  /** Added to the environment. */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export function runCommand(args: string[], { input, env, timeoutMs = 60_000 }: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (signal) reject(new Error(`smtp-wire ${args.join(" ")} did not exit within ${timeoutMs} ms (killed)\nstdout: ${stdout}\nstderr: ${stderr}`));
      else resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  });
}

/** The JSON lines of standard output, parsed; fails on a line that is not JSON. */
export function jsonLines(stdout: string): Array<Record<string, any>> {
  return stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, any>);
}

/** A scratch directory with the test CA in `ca.pem`; `file(name, content)` writes a file there. */
export function scratch(): { dir: string; ca: string; file(name: string, content: string | Buffer): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "smtp-wire-cli-"));
  const ca = join(dir, "ca.pem");
  writeFileSync(ca, getCerts().ca);
  return {
    dir,
    ca,
    file(name, content) {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A small message whose header names a sender and recipients. */
export function message({ from = "Me <me@example.com>", to = "you@example.org", extra = "", body = "Hello from the command line.\r\n" } = {}): string {
  return `From: ${from}\r\nTo: ${to}\r\n${extra}Subject: test\r\n\r\n${body}`;
}
