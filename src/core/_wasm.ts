/**
 * Loads the WebAssembly core synchronously from the generated module: no file
 * reads and no fetch, so it works the same in Node, Deno, Bun and browsers.
 *
 * The module is compiled once per process; each {@link createCore} call makes
 * a fresh instance with its own linear memory, so two stores never share an
 * allocator and a store's memory can be capped on its own.
 *
 * @module
 */
import { WASM_BASE64 } from "./_wasm_binary.generated.ts";

/** Bytes in one WebAssembly page. */
export const WASM_PAGE_BYTES = 65536;
/** The wasm32 ceiling: 65,536 pages of 64 KiB = 4 GiB of linear memory. */
export const WASM_MAX_MEMORY_BYTES: number = 65536 * WASM_PAGE_BYTES;

/** The functions the core exports (pointers are unsigned: read them `>>> 0`). */
export interface CoreExports {
  alloc(size: number): number;
  alloc_failed(): number;
  free(ptr: number): void;
  used_bytes(): number;
  memory_bytes(): number;
  // crc32c.ts
  crc32c_update(crc: number, ptr: number, len: number): number;
  // sha256.ts
  sha256_ctx_size(): number;
  sha256_init(ctx: number): void;
  sha256_update(ctx: number, ptr: number, len: number): void;
  sha256_final(ctx: number, out: number): void;
  sha256_digest(ptr: number, len: number, out: number): void;
  // store.ts
  [name: string]: unknown;
}

/** One instance of the core with its memory. */
export interface Core {
  readonly exports: CoreExports;
  readonly memory: WebAssembly.Memory;
  /** The memory's maximum, in bytes. */
  readonly maxMemoryBytes: number;
}

/** Raised when the core aborts (a failed assertion inside the wasm). */
export class WasmAbortError extends Error {
  override name = "WasmAbortError";
}

let compiled: WebAssembly.Module | undefined;

function module(): WebAssembly.Module {
  if (compiled === undefined) {
    const text = atob(WASM_BASE64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    compiled = new WebAssembly.Module(bytes);
  }
  return compiled;
}

function readAsString(memory: WebAssembly.Memory, ptr: number): string {
  // AssemblyScript strings are UTF-16 with their byte length 4 bytes before.
  if (ptr === 0) return "";
  const p = ptr >>> 0;
  const len = new Uint32Array(memory.buffer, p - 4, 1)[0] ?? 0;
  return String.fromCharCode(...new Uint16Array(memory.buffer, p, len >>> 1));
}

/**
 * Makes a new core instance.
 *
 * @param maxMemoryBytes Upper bound of its linear memory, rounded down to whole
 *   pages; at most {@link WASM_MAX_MEMORY_BYTES} (the default).
 * @returns The instance, its exports and its memory.
 * @throws {RangeError} If `maxMemoryBytes` is below two pages or above 4 GiB.
 */
export function createCore(maxMemoryBytes: number = WASM_MAX_MEMORY_BYTES): Core {
  if (!(maxMemoryBytes >= 2 * WASM_PAGE_BYTES && maxMemoryBytes <= WASM_MAX_MEMORY_BYTES)) {
    throw new RangeError(
      `Cannot create the core: maxMemoryBytes must be in [${
        2 * WASM_PAGE_BYTES
      }, ${WASM_MAX_MEMORY_BYTES}], got ${maxMemoryBytes}`,
    );
  }
  const maxPages = Math.floor(maxMemoryBytes / WASM_PAGE_BYTES);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: maxPages });
  const instance = new WebAssembly.Instance(module(), {
    env: {
      memory,
      abort(msg: number, file: number, line: number, col: number): never {
        throw new WasmAbortError(
          `wasm core aborted: ${readAsString(memory, msg)} at ${
            readAsString(memory, file)
          }:${line}:${col}`,
        );
      },
    },
  });
  const exports = instance.exports as unknown as CoreExports;
  return { exports, memory, maxMemoryBytes: maxPages * WASM_PAGE_BYTES };
}

let shared: Core | undefined;

/**
 * Runs `fn`, which calls into the core; when the core traps because its
 * allocator ran out of memory, returns `undefined` after `cleanup` instead of
 * throwing. The core allocates everything an operation needs before it
 * changes anything, so nothing is half-done then. Other traps and errors are
 * rethrown.
 *
 * @param core The instance `fn` calls.
 * @param fn The calls.
 * @param cleanup Undoes what `fn` allocated before the trap.
 * @returns What `fn` returned, or `undefined` when memory ran out.
 */
export function unlessOutOfMemory<T>(core: Core, fn: () => T, cleanup?: () => void): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof WebAssembly.RuntimeError) || core.exports.alloc_failed() === 0) throw err;
    cleanup?.();
    return undefined;
  }
}

/** The process-wide instance used by the stateless functions (CRC32C, SHA-256). */
export function sharedCore(): Core {
  shared ??= createCore(256 * WASM_PAGE_BYTES);
  return shared;
}
