/**
 * The DATA encoding of a window in WebAssembly with 128-bit SIMD (encode-window.wat): the
 * window is copied into the module's memory, encoded there in one pass 16 bytes at a time,
 * and the result copied out once, in place of many small span copies from JavaScript. A
 * window that needs no change is not copied out: the caller gets its own Buffer back.
 *
 * Undefined where the module cannot be loaded (a runtime without SIMD, or the .wasm not
 * built); the encoder then uses window-indexof.ts, which gives the same bytes.
 *
 * The module's memory is shared by every encoder in the process: a window is encoded
 * synchronously from its copy in to its copy out, so no two encodings use it at once.
 */
import { readFileSync } from "node:fs";
import { WINDOW, type Allocate, type WindowEncoder } from "./window-encoding.js";

interface EncodeModule {
  memory: WebAssembly.Memory;
  input: WebAssembly.Global;
  output: WebAssembly.Global;
  encode(length: number, stuff: number): number;
}

function load(): EncodeModule | undefined {
  try {
    const bytes = readFileSync(new URL("./encode-window.wasm", import.meta.url));
    return new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as EncodeModule;
  } catch {
    return undefined;
  }
}

function bind(module: EncodeModule): WindowEncoder {
  const input = module.input.value as number;
  const output = module.output.value as number;
  const memory = new Uint8Array(module.memory.buffer);
  // The window and, just before it, the byte that came before it.
  const window = memory.subarray(input, input + WINDOW);
  return (chunk, previous, dotStuffing, allocate: Allocate = Buffer.allocUnsafe) => {
    memory[input - 1] = previous;
    window.set(chunk);
    const length = module.encode(chunk.length, dotStuffing ? 1 : 0);
    if (length < 0) return chunk;
    const encoded = allocate(length);
    encoded.set(memory.subarray(output, output + length));
    return encoded;
  };
}

const module = load();

/** The SIMD window encoder, or undefined where WebAssembly SIMD is not available. */
export const encodeWindowWithSimd: WindowEncoder | undefined = module && bind(module);
