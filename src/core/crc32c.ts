/**
 * CRC32C (Castagnoli), computed by the WebAssembly core.
 *
 * Input is copied into one fixed scratch region of the shared core (allocated
 * on first use, never freed) and checksummed from there, in chunks of
 * 64 KiB when it is larger: a call allocates nothing in
 * the wasm memory.
 *
 * @module
 */
import { type CoreExports, sharedCore } from "./_wasm.ts";
import { typeName } from "../_type_name.ts";

/** Bytes checksummed per call into the core; larger inputs are streamed. */
const CHUNK_BYTES = 65536;

interface Scratch {
  readonly exports: CoreExports;
  readonly memory: WebAssembly.Memory;
  /** Start of the CHUNK_BYTES region in the core's memory. */
  readonly ptr: number;
  /** View of the whole memory; replaced when memory growth detaches it. */
  heap: Uint8Array;
}

let scratch: Scratch | undefined;

function openScratch(): Scratch {
  const { exports, memory } = sharedCore();
  // The shared core's memory is nearly empty: this first allocation cannot
  // run out (a trap here would be a bug, and is not caught).
  const ptr = exports.alloc(CHUNK_BYTES) >>> 0;
  scratch = { exports, memory, ptr, heap: new Uint8Array(memory.buffer) };
  return scratch;
}

/**
 * Computes the CRC32C (Castagnoli: reflected polynomial 0x82F63B78, initial
 * and final XOR 0xFFFFFFFF) of `data`, or extends a previous result:
 * `crc32c(b, crc32c(a))` equals `crc32c(a ‖ b)`.
 *
 * @param data The bytes to checksum (any `Uint8Array`, including a Node
 *   `Buffer` or a subarray).
 * @param crc The CRC32C of the bytes that precede `data`; 0 (the default)
 *   when `data` is the start.
 * @returns The CRC32C as an unsigned 32-bit integer.
 * @throws {TypeError} If `data` is not a `Uint8Array`.
 * @throws {RangeError} If `crc` is not an integer in [0, 2^32).
 *
 * @example Checksum bytes at once or in pieces
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32c } from "./crc32c.ts";
 *
 * const bytes = new TextEncoder().encode("123456789");
 * assert.equal(crc32c(bytes), 0xe3069283);
 * assert.equal(crc32c(bytes.subarray(4), crc32c(bytes.subarray(0, 4))), 0xe3069283);
 * assert.equal(crc32c(new Uint8Array(0)), 0);
 * ```
 */
export function crc32c(data: Uint8Array, crc: number = 0): number {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(`Cannot compute CRC32C: data must be a Uint8Array, got ${typeName(data)}`);
  }
  if (!(Number.isInteger(crc) && crc >= 0 && crc <= 0xffffffff)) {
    throw new RangeError(
      `Cannot compute CRC32C: crc must be an integer in [0, 2^32), got ${String(crc)}`,
    );
  }
  const s = scratch ?? openScratch();
  // Growing the memory (any allocation in the shared core) detaches old views.
  if (s.heap.byteLength === 0) s.heap = new Uint8Array(s.memory.buffer);
  const length = data.length;
  let c = crc;
  if (length <= CHUNK_BYTES) {
    s.heap.set(data, s.ptr);
    c = s.exports.crc32c_update(c, s.ptr, length);
  } else {
    for (let offset = 0; offset < length; offset += CHUNK_BYTES) {
      const chunk = data.subarray(offset, offset + CHUNK_BYTES);
      s.heap.set(chunk, s.ptr);
      c = s.exports.crc32c_update(c, s.ptr, chunk.length);
    }
  }
  return c >>> 0;
}
