/**
 * The package as users load it: `import { SMTPConnection } from "smtp-wire"`, the default
 * export, and `require("smtp-wire")`, each from a tiny consumer script in its own process.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = fileURLToPath(new URL("../..", import.meta.url));
const consumer = mkdtempSync(join(tmpdir(), "smtp-wire-consumer-"));
mkdirSync(join(consumer, "node_modules"));
symlinkSync(root, join(consumer, "node_modules", "smtp-wire"), "dir");

function run(file: string, source: string): string {
  writeFileSync(join(consumer, file), source);
  return execFileSync(process.execPath, [join(consumer, file)], { cwd: consumer, encoding: "utf8" }).trim();
}

test("ESM: named and default exports are the class, and the stages and SMTPError are exported", () => {
  const out = run(
    "esm.mjs",
    `import Default, { SMTPConnection, SMTPError, LineSplitter, ReplyDecoder, DataEncoder, SendStream } from "smtp-wire";
     console.log([Default === SMTPConnection, typeof SMTPConnection, new SMTPError("EAUTH", "x").code, typeof LineSplitter, typeof ReplyDecoder, typeof DataEncoder, typeof SendStream].join(","));`,
  );
  assert.is(out, "true,function,EAUTH,function,function,function,function");
});

test("CommonJS: require('smtp-wire').SMTPConnection works", () => {
  const major = Number(process.versions.node.split(".")[0]);
  const minor = Number(process.versions.node.split(".")[1]);
  if (major === 20 && minor < 19) return; // require(esm) arrived in 20.19
  const out = run("cjs.cjs", `const lib = require("smtp-wire"); console.log(typeof lib.SMTPConnection, lib.default === lib.SMTPConnection, typeof new lib.SMTPConnection({}).connect);`);
  assert.is(out, "function true function");
});

test("type declarations are emitted for the entry point", () => {
  const out = run("types.mjs", `import { readFileSync } from "node:fs"; const pkg = JSON.parse(readFileSync(new URL("./node_modules/smtp-wire/package.json", import.meta.url))); console.log(pkg.types, readFileSync(new URL("./node_modules/smtp-wire/" + pkg.types, import.meta.url), "utf8").includes("SMTPConnection"));`);
  assert.is(out, "./dist/lib/index.d.ts true");
});

test("CommonJS declarations: every public type of the ES module is under the class's name too", () => {
  const options = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, noEmit: true };
  const esm = join(root, "lib", "index.ts");
  const cjs = join(root, "lib", "index.cts");
  const program = ts.createProgram([esm, cjs], options);
  const checker = program.getTypeChecker();
  const resolve = (symbol: ts.Symbol) => (symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
  // Every export that is a type (classes included: their instances' type), not a function or the default.
  const wanted = checker
    .getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(esm)!)!)
    .filter((symbol) => symbol.name !== "default" && resolve(symbol).flags & (ts.SymbolFlags.Type | ts.SymbolFlags.Class))
    .map((symbol) => symbol.name)
    .sort();
  // `export =`: the class merged with the namespace of types; its members are the namespace's.
  const exported = checker.getSymbolAtLocation(program.getSourceFile(cjs)!)!.exports!.get("export=" as ts.__String)!;
  const members = [...(resolve(exported).exports?.keys() ?? [])].map(String).sort();
  assert.ok(wanted.length > 40, `${wanted.length} public types found`);
  assert.equal(wanted.filter((name) => !members.includes(name)), [], "types missing from the CommonJS namespace");
});

test.after(() => rmSync(consumer, { recursive: true, force: true }));
test.run();
