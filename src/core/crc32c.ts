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
  /** Views of the whole memory; replaced when memory growth detaches them. */
  heap: Uint8Array;
  words: DataView;
}

let scratch: Scratch | undefined;
/**
 * The {@link Crc32cRanges} whose bytes the scratch region holds, if any.
 * Every other use of the region clears it.
 */
let owner: Crc32cRanges | undefined;

/** Renews the views of the memory after it grew. */
function renew(s: Scratch): void {
  s.heap = new Uint8Array(s.memory.buffer);
  s.words = new DataView(s.memory.buffer);
}

function openScratch(): Scratch {
  const { exports, memory } = sharedCore();
  // The shared core's memory is nearly empty: this first allocation cannot
  // run out (a trap here would be a bug, and is not caught).
  const ptr = exports.alloc(CHUNK_BYTES) >>> 0;
  scratch = {
    exports,
    memory,
    ptr,
    heap: new Uint8Array(memory.buffer),
    words: new DataView(memory.buffer),
  };
  return scratch;
}

function checkCrc(crc: number): void {
  if (!(Number.isInteger(crc) && crc >= 0 && crc <= 0xffffffff)) {
    throw new RangeError(
      `Cannot compute CRC32C: crc must be an integer in [0, 2^32), got ${String(crc)}`,
    );
  }
}

/** The scratch region for a one-shot computation (no Crc32cRanges owns its copy any more). */
function claimScratch(): Scratch {
  const s = scratch ?? openScratch();
  owner = undefined;
  // Growing the memory (any allocation in the shared core) detaches old views.
  if (s.heap.byteLength === 0) renew(s);
  return s;
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
  checkCrc(crc);
  const s = claimScratch();
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

/**
 * Computes the CRC32C of `data[start..end)` with the bytes `data[gapStart..gapEnd)`
 * left out, extending `crc`: the same value as
 * `crc32c(data.subarray(gapEnd, end), crc32c(data.subarray(start, gapStart), crc))`,
 * in one call into the core when the checksummed bytes fit one chunk (64 KiB).
 * A WAL frame's checksum is such a range: it skips the checksum field itself.
 *
 * @param data The bytes (any `Uint8Array`).
 * @param start Offset of the first byte checksummed.
 * @param gapStart Offset of the first byte left out.
 * @param gapEnd Offset just past the bytes left out.
 * @param end Offset just past the last byte checksummed.
 * @param crc The CRC32C of the bytes that precede; 0 (the default) for none.
 * @returns The CRC32C as an unsigned 32-bit integer.
 * @throws {TypeError} If `data` is not a `Uint8Array`.
 * @throws {RangeError} If the offsets are not integers with
 *   0 ≤ start ≤ gapStart ≤ gapEnd ≤ end ≤ data.length, or `crc` is not an
 *   integer in [0, 2^32).
 *
 * @example Checksum a range around a hole
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32c, crc32cGap } from "./crc32c.ts";
 *
 * const bytes = new TextEncoder().encode("1234__56789");
 * assert.equal(crc32cGap(bytes, 0, 4, 6, 11), crc32c(new TextEncoder().encode("123456789")));
 * ```
 */
export function crc32cGap(
  data: Uint8Array,
  start: number,
  gapStart: number,
  gapEnd: number,
  end: number,
  crc: number = 0,
): number {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(`Cannot compute CRC32C: data must be a Uint8Array, got ${typeName(data)}`);
  }
  if (
    !(Number.isInteger(start) && Number.isInteger(gapStart) && Number.isInteger(gapEnd) &&
      Number.isInteger(end) && 0 <= start && start <= gapStart && gapStart <= gapEnd &&
      gapEnd <= end && end <= data.length)
  ) {
    throw new RangeError(
      `Cannot compute CRC32C: need 0 <= start <= gapStart <= gapEnd <= end <= ${data.length}, ` +
        `got ${start}, ${gapStart}, ${gapEnd}, ${end}`,
    );
  }
  const head = gapStart - start;
  const length = head + end - gapEnd;
  if (length > CHUNK_BYTES) {
    return crc32c(data.subarray(gapEnd, end), crc32c(data.subarray(start, gapStart), crc));
  }
  checkCrc(crc);
  const s = claimScratch();
  const heap = s.heap;
  const ptr = s.ptr;
  // Short pieces (a frame's length field) are copied byte by byte: cheaper
  // than making a view to hand to set().
  if (head <= 16) { for (let i = 0; i < head; i++) heap[ptr + i] = data[start + i]!; }
  else heap.set(data.subarray(start, gapStart), ptr);
  heap.set(data.subarray(gapEnd, end), ptr + head);
  return s.exports.crc32c_update(crc, ptr, length) >>> 0;
}

/**
 * Checksums many ranges of one byte array, as {@link crc32cGap} would, but
 * copies the array into the core only once per 64 KiB it covers instead of
 * once per call: for checking thousands of small records read into one
 * buffer. The array must not change while this object is in use (make a new
 * one for new contents).
 *
 * @example Two records of one buffer
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32c, crc32cGap, Crc32cRanges } from "./crc32c.ts";
 *
 * const bytes = new TextEncoder().encode("ab__cdefg__h");
 * const ranges = new Crc32cRanges(bytes);
 * assert.equal(ranges.gap(0, 2, 4, 6), crc32c(new TextEncoder().encode("abcd")));
 * assert.equal(ranges.gap(6, 9, 11, 12, 7), crc32cGap(bytes, 6, 9, 11, 12, 7));
 * ```
 */
export class Crc32cRanges {
  readonly #data: Uint8Array;
  readonly #view: DataView;
  /** The part of the data the scratch region holds while this is {@link owner}. */
  #from = 0;
  #to = 0;

  /**
   * @param data The bytes to checksum ranges of; they must not change
   *   while this object is used.
   * @throws {TypeError} If `data` is not a `Uint8Array`.
   */
  constructor(data: Uint8Array) {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot compute CRC32C: data must be a Uint8Array, got ${typeName(data)}`,
      );
    }
    this.#data = data;
    this.#view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  /**
   * The CRC32C of `data[start..end)` with `data[gapStart..gapEnd)` left out,
   * extending `crc`: equal to `crc32cGap(data, start, gapStart, gapEnd, end, crc)`.
   *
   * @param start Offset of the first byte checksummed.
   * @param gapStart Offset of the first byte left out.
   * @param gapEnd Offset just past the bytes left out.
   * @param end Offset just past the last byte checksummed.
   * @param crc The CRC32C of the bytes that precede; 0 (the default) for none.
   * @returns The CRC32C as an unsigned 32-bit integer.
   * @throws {RangeError} As {@link crc32cGap}.
   */
  gap(start: number, gapStart: number, gapEnd: number, end: number, crc: number = 0): number {
    const data = this.#data;
    const head = gapStart - start;
    // The fast path moves the head up against the tail, over the last `head`
    // bytes of the gap, in the scratch copy: it needs a gap at least as long
    // as the head, and all of it in one chunk. Anything else (including bad
    // arguments, which crc32cGap rejects) takes the general path.
    if (
      !(Number.isInteger(start) && Number.isInteger(gapStart) && Number.isInteger(gapEnd) &&
        Number.isInteger(end) && 0 <= start && start <= gapStart && gapStart <= gapEnd &&
        gapEnd <= end && end <= data.length && head <= gapEnd - gapStart &&
        end - start <= CHUNK_BYTES && Number.isInteger(crc) && crc >= 0 && crc <= 0xffffffff)
    ) {
      return crc32cGap(data, start, gapStart, gapEnd, end, crc);
    }
    const s = scratch ?? openScratch();
    if (s.heap.byteLength === 0) renew(s);
    const heap = s.heap;
    if (owner !== this || start < this.#from || end > this.#to) {
      const to = Math.min(data.length, start + CHUNK_BYTES);
      heap.set(data.subarray(start, to), s.ptr);
      this.#from = start;
      this.#to = to;
      owner = this;
    }
    const moved = s.ptr + (gapEnd - this.#from) - head;
    let c: number;
    if (head === 4) { // a WAL frame's length field: one word each way
      const words = s.words;
      const view = this.#view;
      words.setUint32(moved, view.getUint32(start, true), true);
      c = s.exports.crc32c_update(crc, moved, head + end - gapEnd);
      // Put back the gap's bytes: the copy must keep mirroring the data.
      words.setUint32(moved, view.getUint32(gapEnd - 4, true), true);
    } else {
      for (let i = 0; i < head; i++) heap[moved + i] = data[start + i]!;
      c = s.exports.crc32c_update(crc, moved, head + end - gapEnd);
      for (let i = 0; i < head; i++) heap[moved + i] = data[gapEnd - head + i]!;
    }
    return c >>> 0;
  }
}
