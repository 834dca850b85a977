/**
 * Assembles lib/stages/*.wat into dist/lib/stages/*.wasm (part of `npm run build`). The
 * text form is the source kept in git; the binary is built, never committed.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import initWabt from "wabt";

const root = fileURLToPath(new URL("..", import.meta.url));
const source = join(root, "lib", "stages");
const target = join(root, "dist", "lib", "stages");
mkdirSync(target, { recursive: true });
const wabt = await initWabt();
for (const name of readdirSync(source).filter((file) => file.endsWith(".wat"))) {
  const module = wabt.parseWat(name, readFileSync(join(source, name), "utf8"), { simd: true });
  module.validate();
  const { buffer } = module.toBinary({});
  writeFileSync(join(target, name.replace(/\.wat$/, ".wasm")), buffer);
  module.destroy();
}
