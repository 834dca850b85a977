/**
 * The CommonJS entry (package.json `exports` "require"): `require("smtp-wire")` returns
 * the class itself, as `require("nodemailer/lib/smtp-connection")` does, with the named
 * exports on it (`const { SMTPError } = require("smtp-wire")` works too) and, as there,
 * itself as a non-enumerable `default`.
 *
 * It requires the ES module (require(esm), Node >= 20.19), so CommonJS and ESM users share
 * one copy of every class and `instanceof` holds across both.
 */
import esm = require("./index.js");

// Not `default` (the class is the export itself) and not the `__esModule` marker Node
// sets on a required ES module: on the class it would make an interop `import X from`
// look for `X.default`.
const named = Object.fromEntries(Object.entries(esm).filter(([name]) => name !== "default" && name !== "__esModule")) as unknown as Omit<typeof esm, "default">;
const SMTPConnection = Object.assign(esm.SMTPConnection, named);
// As Nodemailer's CommonJS modules: `default` is the class too, not enumerable, so either
// interop style of a default import finds it.
Object.defineProperty(SMTPConnection, "default", { value: SMTPConnection, enumerable: false, writable: true, configurable: true });

export = SMTPConnection;
