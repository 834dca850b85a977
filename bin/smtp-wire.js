#!/usr/bin/env node
// The smtp-wire command. Everything it does lives in lib/cli/ (built into dist/lib/cli/).
import { main } from "../dist/lib/cli/main.js";

process.exitCode = await main(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env });
