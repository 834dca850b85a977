/**
 * The package's version, read from its package.json (two levels above the compiled
 * dist/lib/), for `conn.version` as Nodemailer exposes its own.
 */
import { createRequire } from "node:module";

export const VERSION: string = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;
