/**
 * The `smtp-wire` command: reads the command line, gets the password if one is needed,
 * and runs `send` or `probe`; resolves with the exit code. The bin entry (bin/smtp-wire.js)
 * only calls this, so tests can run the command as users do, in a child process.
 *
 * Deliberately left out: process.exit (the bin sets process.exitCode, so output is
 * flushed), and any protocol work (send.ts, probe.ts).
 */
import { readFileSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import type { AuthCredentials } from "../types.js";
import { PASSWORD_VARIABLE, readCommandLine, UsageError, type CommandLine } from "./arguments.js";
import { EXIT, type ExitCode } from "./exit-codes.js";
import { HELP } from "./help.js";
import { promptPassword, type TerminalInput } from "./password.js";
import { probe } from "./probe.js";
import { send } from "./send.js";
import { Terminal, transcriptLogger } from "./terminal.js";

export interface CommandIO {
  stdin: Readable & TerminalInput;
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export async function main(argv: readonly string[], io: CommandIO): Promise<ExitCode> {
  let args: CommandLine;
  try {
    args = readCommandLine(argv, io.env);
  } catch (err) {
    io.stderr.write(`smtp-wire: ${(err as Error).message}\nRun smtp-wire --help for the options.\n`);
    return EXIT.USAGE;
  }
  if (args.command === "help") {
    io.stdout.write(HELP);
    return EXIT.OK;
  }
  if (args.command === "version") {
    io.stdout.write(`${version()}\n`);
    return EXIT.OK;
  }
  const terminal = new Terminal(io.stderr, { quiet: args.json });
  const logging = args.verbose ? { logger: transcriptLogger(terminal, { withIds: args.connections > 1 }), debug: true } : { logger: false };
  try {
    if (args.command === "probe") return await probe({ ...args, connection: { ...args.connection, ...logging } }, io.stdout, terminal);
    return await send(args, await credentials(args, io), { stdin: io.stdin, stdout: io.stdout, terminal, logging });
  } catch (err) {
    if (err instanceof UsageError) {
      terminal.line(`smtp-wire: ${err.message}`);
      return EXIT.USAGE;
    }
    // A fault of the command itself: said plainly, with the stack to report it by.
    terminal.line(`smtp-wire: unexpected failure: ${(err as Error)?.stack ?? err}`);
    return EXIT.OTHER;
  }
}

/** The credentials for login(): the password from --password, the environment, or the terminal. */
async function credentials(args: CommandLine, io: CommandIO): Promise<AuthCredentials | undefined> {
  if (!args.auth) return undefined;
  let pass = args.auth.password;
  if (pass === undefined) {
    if (!io.stdin.isTTY) throw new UsageError(`No password: give --password, set ${PASSWORD_VARIABLE}, or run on a terminal to be asked`);
    pass = await promptPassword(io.stdin, io.stderr, `Password for ${args.auth.user}: `).catch((err: Error) => {
      throw new UsageError(err.message);
    });
  }
  return { user: args.auth.user, pass, method: args.auth.method };
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}
