/**
 * Order-preserving keys: a small tuple layer whose encodings sort, as
 * unsigned bytes (the store's order), exactly as the tuples do.
 *
 * A key is a sequence of elements, written by a {@link KeyWriter} and read
 * back by a {@link KeyReader} that knows the same layout (the elements carry
 * no type codes; the layout is fixed by the key's type tag):
 *
 * - `u8`: one byte, for type tags;
 * - `u32`, `u64`: unsigned integers, 4 and 8 bytes big-endian;
 * - `bytes`, `string`: the bytes (a string's UTF-8) with every 0x00 written
 *   as 0x00 0xFF, then 0x00 0x00. A string thus sorts before its extensions
 *   and zeros inside it cost nothing in order: end (00 00) < a zero
 *   (00 FF) < any other byte.
 *
 * Tuples of the same layout compare element by element, integers by value
 * and strings by bytes (for UTF-8, by code points). docs/FORMAT.md, "Keys",
 * specifies the bytes.
 *
 * Limits: a key is at most `MAX_KEY_BYTES` (4096) bytes and one string or
 * byte element at most {@link MAX_USER_KEY_BYTES} (1024) bytes before
 * escaping (2050 after, at worst), so a user key always fits next to a run
 * number, tags and integers. Anything over throws `RangeError` and yields no
 * key.
 *
 * @module
 */
import { CorruptionError } from "../errors.ts";
import { MAX_KEY_BYTES } from "./store.ts";
import { typeName } from "../_type_name.ts";
import { slabAlloc } from "../_slab.ts";

/**
 * Largest string or byte element of a key, in bytes before escaping (UTF-8
 * bytes for strings). At worst (all zeros) it escapes to 2 × 1024 + 2 bytes,
 * leaving 2046 of `MAX_KEY_BYTES` for the other elements.
 */
export const MAX_USER_KEY_BYTES = 1024;

// The writer's scratch holds a full key plus the worst case of one more
// string element (3 bytes per UTF-16 unit, terminator), so element loops
// write without bounds checks and the limits are checked once at the end.
const SCRATCH_BYTES = MAX_KEY_BYTES + 3 * MAX_USER_KEY_BYTES + 2;
const INITIAL_SCRATCH_BYTES = 64;
const TWO_32 = 4294967296;
const U64_MAX = (1n << 64n) - 1n;

/**
 * One full-size scratch buffer that writers share, one at a time: a writer
 * takes it when made (or when it must grow) and gives it back at `finish()`.
 * Building a key then allocates only the key itself; a writer made while
 * another holds the scratch gets a buffer of its own, as before.
 */
let spare: Uint8Array | undefined = new Uint8Array(SCRATCH_BYTES);
const NO_BYTES = new Uint8Array(0);

function takeScratch(): Uint8Array | undefined {
  const s = spare;
  spare = undefined;
  return s;
}

/**
 * Builds keys element by element into a reused scratch buffer: no
 * allocation besides the key {@link KeyWriter.finish} returns. Methods chain.
 * A method that throws leaves the writer empty, ready for the next key.
 *
 * @example A run's KV key, and the range of all of them
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyReader, KeyWriter, prefixEnd } from "./keys.ts";
 *
 * const w = new KeyWriter();
 * const key = w.u32(7).u8(0x01).string("notes/today").finish();
 * const all = w.u32(7).u8(0x01).finish(); // every KV key of run 7 starts so
 * assert.deepEqual(key.subarray(0, all.length), all);
 * assert.deepEqual(prefixEnd(all), new Uint8Array([0, 0, 0, 7, 0x02]));
 *
 * const r = new KeyReader(key);
 * assert.deepEqual([r.u32(), r.u8(), r.string(), r.done], [7, 1, "notes/today", true]);
 * ```
 */
export class KeyWriter {
  // Starts small and grows to what an element may need (at most
  // SCRATCH_BYTES): most keys are a few dozen bytes, and a 7 KiB zeroed
  // buffer per writer was most of the cost of building one.
  #buf: Uint8Array = takeScratch() ?? new Uint8Array(INITIAL_SCRATCH_BYTES);
  #pos = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  /**
   * Appends one byte, typically a type tag.
   *
   * @param tag An integer in [0, 255].
   * @returns This writer.
   * @throws {TypeError} if `tag` is not a number.
   * @throws {RangeError} if `tag` is out of range or the key would exceed
   * `MAX_KEY_BYTES`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * assert.deepEqual(new KeyWriter().u8(5).finish(), new Uint8Array([5]));
   * ```
   */
  u8(tag: number): this {
    this.#uint(tag, 0xff, "u8");
    this.#room(1);
    this.#buf[this.#pos++] = tag;
    return this;
  }

  /**
   * Appends an unsigned 32-bit integer, 4 bytes big-endian.
   *
   * @param n An integer in [0, 2^32 − 1].
   * @returns This writer.
   * @throws {TypeError} if `n` is not a number.
   * @throws {RangeError} if `n` is out of range or the key would exceed
   * `MAX_KEY_BYTES`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * assert.deepEqual(new KeyWriter().u32(258).finish(), new Uint8Array([0, 0, 1, 2]));
   * ```
   */
  u32(n: number): this {
    this.#uint(n, 0xffffffff, "u32");
    this.#room(4);
    this.#word(n);
    return this;
  }

  /**
   * Appends an unsigned 64-bit integer, 8 bytes big-endian: a sequence
   * number, or a timestamp in milliseconds since the epoch.
   *
   * @param n A safe integer ≥ 0, or a bigint in [0, 2^64 − 1].
   * @returns This writer.
   * @throws {TypeError} if `n` is neither a number nor a bigint.
   * @throws {RangeError} if `n` is out of range or the key would exceed
   * `MAX_KEY_BYTES`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * const a = new KeyWriter().u64(2 ** 32).finish();
   * assert.deepEqual(a, new Uint8Array([0, 0, 0, 1, 0, 0, 0, 0]));
   * assert.deepEqual(new KeyWriter().u64(2n ** 32n).finish(), a);
   * ```
   */
  u64(n: number | bigint): this {
    let hi: number;
    let lo: number;
    if (typeof n === "bigint") {
      if (n < 0n || n > U64_MAX) {
        this.#abandon();
        throw new RangeError(`Cannot build key: u64 ${n} is outside [0, 2^64 - 1]`);
      }
      hi = Number(n >> 32n);
      lo = Number(n & 0xffffffffn);
    } else {
      this.#uint(n, Number.MAX_SAFE_INTEGER, "u64");
      hi = Math.floor(n / TWO_32);
      lo = n >>> 0;
    }
    this.#room(8);
    this.#word(hi);
    this.#word(lo);
    return this;
  }

  /**
   * Appends a byte string, escaped and terminated (see the module doc).
   *
   * @param b At most {@link MAX_USER_KEY_BYTES} bytes.
   * @returns This writer.
   * @throws {TypeError} if `b` is not a `Uint8Array`.
   * @throws {RangeError} if `b` is longer than {@link MAX_USER_KEY_BYTES} or
   * the key would exceed `MAX_KEY_BYTES`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * const key = new KeyWriter().bytes(new Uint8Array([1, 0, 2])).finish();
   * assert.deepEqual(key, new Uint8Array([1, 0, 0xff, 2, 0, 0]));
   * ```
   */
  bytes(b: Uint8Array): this {
    this.#bytes(b, true);
    return this;
  }

  /**
   * Appends elements another writer already encoded (a part of a key made
   * by {@link finish}, never raw user bytes), as they are: for keys that
   * share a suffix, encoded once.
   *
   * @param encoded Encoded key elements.
   * @returns This writer.
   * @throws {RangeError} if the key would exceed {@link MAX_KEY_BYTES}.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * const suffix = new KeyWriter().u64(7).string("id").finish();
   * assert.deepEqual(
   *   new KeyWriter().u8(1).raw(suffix).finish(),
   *   new KeyWriter().u8(1).u64(7).string("id").finish(),
   * );
   * ```
   */
  raw(encoded: Uint8Array): this {
    const n = encoded.length;
    this.#room(n);
    const buf = this.#buf;
    const at = this.#pos;
    if (n <= 64) { for (let i = 0; i < n; i++) buf[at + i] = encoded[i]!; }
    else buf.set(encoded, at);
    this.#pos = at + n;
    return this;
  }

  /**
   * Appends a byte string escaped but not terminated: with
   * {@link prefixEnd}, the range of every key whose element here starts
   * with `b`. Nothing can follow it in a key.
   *
   * @param b At most {@link MAX_USER_KEY_BYTES} bytes.
   * @returns This writer.
   * @throws {TypeError} if `b` is not a `Uint8Array`.
   * @throws {RangeError} if `b` is longer than {@link MAX_USER_KEY_BYTES} or
   * the key would exceed `MAX_KEY_BYTES`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * const p = new KeyWriter().bytesPrefix(new Uint8Array([1, 0])).finish();
   * assert.deepEqual(p, new Uint8Array([1, 0, 0xff]));
   * ```
   */
  bytesPrefix(b: Uint8Array): this {
    this.#bytes(b, false);
    return this;
  }

  /**
   * Appends a string as its UTF-8 bytes, escaped and terminated (see the
   * module doc).
   *
   * @param s At most {@link MAX_USER_KEY_BYTES} bytes of UTF-8.
   * @returns This writer.
   * @throws {TypeError} if `s` is not a string or holds a lone surrogate
   * (it has no UTF-8 form).
   * @throws {RangeError} if `s` is longer than {@link MAX_USER_KEY_BYTES}
   * bytes of UTF-8 or the key would exceed `MAX_KEY_BYTES`.
   *
   * @example Shorter strings first, zeros included
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * const w = new KeyWriter();
   * assert.deepEqual(w.string("a").finish(), new Uint8Array([0x61, 0, 0]));
   * assert.deepEqual(w.string("a\0").finish(), new Uint8Array([0x61, 0, 0xff, 0, 0]));
   * ```
   */
  string(s: string): this {
    this.#string(s, true);
    return this;
  }

  /**
   * Appends a string escaped but not terminated: with {@link prefixEnd},
   * the range of every key whose string element here starts with `s`.
   * Nothing can follow it in a key.
   *
   * @param s At most {@link MAX_USER_KEY_BYTES} bytes of UTF-8.
   * @returns This writer.
   * @throws {TypeError} if `s` is not a string or holds a lone surrogate.
   * @throws {RangeError} if `s` is longer than {@link MAX_USER_KEY_BYTES}
   * bytes of UTF-8 or the key would exceed `MAX_KEY_BYTES`.
   *
   * @example Every key under "notes/"
   * ```ts
   * import assert from "node:assert/strict";
   * import { compareKeys, KeyWriter, prefixEnd } from "./keys.ts";
   *
   * const w = new KeyWriter();
   * const gte = w.u8(1).stringPrefix("notes/").finish();
   * const lt = prefixEnd(gte)!;
   * const key = w.u8(1).string("notes/a").finish();
   * assert.ok(compareKeys(gte, key) <= 0 && compareKeys(key, lt) < 0);
   * ```
   */
  stringPrefix(s: string): this {
    this.#string(s, false);
    return this;
  }

  /**
   * Returns the key written so far as a new `Uint8Array` and empties the
   * writer for the next key.
   *
   * @returns The key (a copy the caller owns).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * const w = new KeyWriter();
   * assert.equal(w.u32(1).finish().length, 4);
   * assert.equal(w.length, 0);
   * ```
   */
  finish(): Uint8Array {
    const n = this.#pos;
    const key = slabAlloc(n); // no ArrayBuffer of its own on V8 (src/_slab.ts)
    const buf = this.#buf;
    // A loop beats a subarray plus set() for the few dozen bytes of most keys.
    if (n <= 64) { for (let i = 0; i < n; i++) key[i] = buf[i]!; }
    else key.set(buf.subarray(0, n));
    this.#pos = 0;
    this.#giveBack();
    return key;
  }

  /**
   * Copies the key written so far into `target` at `at` and empties the
   * writer, like {@link KeyWriter.finish} without allocating: for a lookup
   * whose key goes straight into another buffer (the store's key scratch).
   *
   * @param target Where to copy it; it needs room for the key's
   *   {@link KeyWriter.length} bytes after `at` (at most `MAX_KEY_BYTES`).
   * @param at The offset in `target`.
   * @returns The key's length in bytes.
   * @throws {RangeError} If `target` has no room for the key after `at`
   *   (the writer is emptied all the same).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * const target = new Uint8Array(8);
   * const n = new KeyWriter().u8(1).u8(2).copyTo(target, 3);
   * assert.equal(n, 2);
   * assert.deepEqual([...target], [0, 0, 0, 1, 2, 0, 0, 0]);
   * ```
   */
  copyTo(target: Uint8Array, at: number): number {
    const n = this.#pos;
    this.#pos = 0;
    if (!(at >= 0 && at + n <= target.length)) {
      this.#giveBack();
      throw new RangeError(
        `Cannot copy key: ${n} bytes at ${at} do not fit a buffer of ${target.length}`,
      );
    }
    const buf = this.#buf;
    if (n <= 64) { for (let i = 0; i < n; i++) target[at + i] = buf[i]!; }
    else target.set(buf.subarray(0, n), at);
    this.#giveBack();
    return n;
  }

  /**
   * Returns the key written so far as a view of the writer's buffer, without
   * copying, and empties the writer. The view is valid until the writer is
   * next written: use it for a lookup, {@link KeyWriter.finish} to keep it.
   *
   * @returns A view of the key.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * const w = new KeyWriter();
   * assert.deepEqual([...w.u8(9).view()], [9]);
   * ```
   */
  view(): Uint8Array {
    const key = this.#buf.subarray(0, this.#pos);
    this.#pos = 0;
    return key;
  }

  /**
   * Empties the writer.
   *
   * @returns This writer.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyWriter } from "./keys.ts";
   *
   * assert.equal(new KeyWriter().u32(1).reset().length, 0);
   * ```
   */
  reset(): this {
    this.#pos = 0;
    return this;
  }

  #uint(n: number, max: number, what: string): void {
    if (typeof n !== "number") {
      this.#abandon();
      throw new TypeError(`Cannot build key: ${what} must be a number, got ${typeName(n)}`);
    }
    if (!Number.isInteger(n) || n < 0 || n > max) {
      this.#abandon();
      throw new RangeError(`Cannot build key: ${what} ${n} is not an integer in [0, ${max}]`);
    }
  }

  #room(n: number): void {
    if (this.#pos + n > MAX_KEY_BYTES) this.#tooLong(this.#pos + n);
    this.#grow(this.#pos + n);
  }

  /** Makes the scratch buffer at least `size` bytes (≤ SCRATCH_BYTES). */
  #grow(size: number): void {
    if (size <= this.#buf.length) return;
    const next = takeScratch() ??
      new Uint8Array(
        Math.min(SCRATCH_BYTES, Math.max(size, 2 * this.#buf.length, INITIAL_SCRATCH_BYTES)),
      );
    if (this.#pos > 0) next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
  }

  /** Returns the shared scratch buffer, if this writer holds it, for the next writer. */
  #giveBack(): void {
    if (this.#buf.length === SCRATCH_BYTES && spare === undefined) {
      spare = this.#buf;
      this.#buf = NO_BYTES;
    }
  }

  /** Drops the key being built (before a throw) and gives back the shared scratch. */
  #abandon(): void {
    this.#pos = 0;
    this.#giveBack();
  }

  #tooLong(bytes: number): never {
    this.#abandon();
    throw new RangeError(
      `Cannot build key: it would be ${bytes} bytes, more than MAX_KEY_BYTES (${MAX_KEY_BYTES})`,
    );
  }

  #word(v: number): void {
    const buf = this.#buf;
    const p = this.#pos;
    buf[p] = v >>> 24;
    buf[p + 1] = v >>> 16;
    buf[p + 2] = v >>> 8;
    buf[p + 3] = v;
    this.#pos = p + 4;
  }

  #bytes(b: Uint8Array, terminate: boolean): void {
    if (!(b instanceof Uint8Array)) {
      this.#abandon();
      throw new TypeError(`Cannot build key: bytes must be a Uint8Array, got ${typeName(b)}`);
    }
    const n = b.length;
    if (n > MAX_USER_KEY_BYTES) this.#elementTooLong(n);
    this.#grow(this.#pos + 2 * n + 2); // every byte escaped, plus the terminator
    const buf = this.#buf;
    let p = this.#pos;
    for (let i = 0; i < n; i++) {
      const x = b[i]!;
      buf[p++] = x;
      if (x === 0) buf[p++] = 0xff;
    }
    this.#end(p, terminate);
  }

  #string(s: string, terminate: boolean): void {
    if (typeof s !== "string") {
      this.#abandon();
      throw new TypeError(`Cannot build key: string must be a string, got ${typeName(s)}`);
    }
    const len = s.length;
    // Every UTF-16 unit is at least one UTF-8 byte.
    if (len > MAX_USER_KEY_BYTES) this.#elementTooLong(len);
    this.#grow(this.#pos + 3 * len + 2); // ≤ 3 UTF-8 bytes per UTF-16 unit, plus the terminator
    const buf = this.#buf;
    const start = this.#pos;
    let p = start;
    let zeros = 0;
    for (let i = 0; i < len; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        buf[p++] = c;
        if (c === 0) {
          buf[p++] = 0xff;
          zeros++;
        }
      } else if (c < 0x800) {
        buf[p++] = 0xc0 | (c >> 6);
        buf[p++] = 0x80 | (c & 0x3f);
      } else if (c < 0xd800 || c >= 0xe000) {
        buf[p++] = 0xe0 | (c >> 12);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      } else {
        const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
        if (c >= 0xdc00 || (d & 0xfc00) !== 0xdc00) {
          this.#abandon();
          throw new TypeError(
            `Cannot build key: the string has a lone surrogate at index ${i} (no UTF-8 form)`,
          );
        }
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        buf[p++] = 0xf0 | (c >> 18);
        buf[p++] = 0x80 | ((c >> 12) & 0x3f);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      }
    }
    const utf8 = p - start - zeros;
    if (utf8 > MAX_USER_KEY_BYTES) this.#elementTooLong(utf8);
    this.#end(p, terminate);
  }

  #elementTooLong(bytes: number): never {
    this.#abandon();
    throw new RangeError(
      `Cannot build key: an element of ${bytes} bytes is longer than MAX_USER_KEY_BYTES (${MAX_USER_KEY_BYTES})`,
    );
  }

  #end(p: number, terminate: boolean): void {
    if (terminate) {
      this.#buf[p++] = 0;
      this.#buf[p++] = 0;
    }
    if (p > MAX_KEY_BYTES) this.#tooLong(p);
    this.#pos = p;
  }
}

// The reader unescapes into one shared scratch: reading runs no user code,
// so nothing can interleave. A key's unescaped element is never longer than
// the key.
let unescaped = new Uint8Array(MAX_KEY_BYTES);
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Reads a key's elements in the order they were written; the caller knows
 * the layout. Malformed bytes throw {@link CorruptionError}: keys come from
 * the store, so they were written by a {@link KeyWriter}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyReader, KeyWriter } from "./keys.ts";
 *
 * const key = new KeyWriter().u8(2).u64(41n).bytes(new Uint8Array([0])).finish();
 * const r = new KeyReader(key);
 * assert.equal(r.u8(), 2);
 * assert.equal(r.u64(), 41);
 * assert.deepEqual(r.bytes(), new Uint8Array([0]));
 * assert.ok(r.done);
 * ```
 */
export class KeyReader {
  #key: Uint8Array;
  #pos = 0;

  /**
   * @param key The key to read; it is not copied, so do not change it while
   * reading.
   * @throws {TypeError} if `key` is not a `Uint8Array`.
   */
  constructor(key: Uint8Array) {
    if (!(key instanceof Uint8Array)) {
      throw new TypeError(`Cannot read key: key must be a Uint8Array, got ${typeName(key)}`);
    }
    this.#key = key;
  }

  /** Bytes read so far. */
  get offset(): number {
    return this.#pos;
  }

  /** Whether every byte of the key has been read. */
  get done(): boolean {
    return this.#pos === this.#key.length;
  }

  /**
   * Reads one byte.
   *
   * @returns The byte.
   * @throws {CorruptionError} if the key has no byte left.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyReader } from "./keys.ts";
   *
   * assert.equal(new KeyReader(new Uint8Array([7])).u8(), 7);
   * ```
   */
  u8(): number {
    this.#need(1, "u8");
    return this.#key[this.#pos++]!;
  }

  /**
   * Reads an unsigned 32-bit big-endian integer.
   *
   * @returns The integer.
   * @throws {CorruptionError} if fewer than 4 bytes are left.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyReader } from "./keys.ts";
   *
   * assert.equal(new KeyReader(new Uint8Array([0, 0, 1, 2])).u32(), 258);
   * ```
   */
  u32(): number {
    this.#need(4, "u32");
    return this.#word();
  }

  /**
   * Reads an unsigned 64-bit big-endian integer as a number.
   *
   * @returns The integer.
   * @throws {CorruptionError} if fewer than 8 bytes are left.
   * @throws {RangeError} if it exceeds 2^53 − 1 (use
   * {@link KeyReader.u64BigInt}); nothing is consumed then.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyReader } from "./keys.ts";
   *
   * assert.equal(new KeyReader(new Uint8Array([0, 0, 0, 1, 0, 0, 0, 2])).u64(), 2 ** 32 + 2);
   * ```
   */
  u64(): number {
    this.#need(8, "u64");
    const hi = this.#word();
    const lo = this.#word();
    if (hi >= 0x200000) {
      this.#pos -= 8;
      throw new RangeError(
        "Cannot read key: u64 is above 2^53 - 1, the largest safe number; use u64BigInt()",
      );
    }
    return hi * TWO_32 + lo;
  }

  /**
   * Reads an unsigned 64-bit big-endian integer as a bigint.
   *
   * @returns The integer.
   * @throws {CorruptionError} if fewer than 8 bytes are left.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyReader } from "./keys.ts";
   *
   * assert.equal(new KeyReader(new Uint8Array(8).fill(0xff)).u64BigInt(), 2n ** 64n - 1n);
   * ```
   */
  u64BigInt(): bigint {
    this.#need(8, "u64");
    const hi = this.#word();
    const lo = this.#word();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /**
   * Reads an escaped, terminated byte string.
   *
   * @returns The bytes (a copy).
   * @throws {CorruptionError} if the element is unterminated or badly escaped.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyReader } from "./keys.ts";
   *
   * const r = new KeyReader(new Uint8Array([1, 0, 0xff, 0, 0]));
   * assert.deepEqual(r.bytes(), new Uint8Array([1, 0]));
   * ```
   */
  bytes(): Uint8Array {
    return unescaped.slice(0, this.#unescape("bytes"));
  }

  /**
   * Reads an escaped, terminated UTF-8 string.
   *
   * @returns The string.
   * @throws {CorruptionError} if the element is unterminated, badly escaped
   * or not valid UTF-8.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KeyReader } from "./keys.ts";
   *
   * assert.equal(new KeyReader(new Uint8Array([0x68, 0x69, 0, 0])).string(), "hi");
   * ```
   */
  string(): string {
    const start = this.#pos;
    const n = this.#unescape("string");
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (unescaped[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii && n <= 256) {
      return String.fromCharCode.apply(null, unescaped.subarray(0, n) as unknown as number[]);
    }
    try {
      return textDecoder.decode(unescaped.subarray(0, n));
    } catch (cause) {
      throw new CorruptionError("Cannot read key: a string element is not valid UTF-8", {
        where: `key byte ${start}`,
        cause,
      });
    }
  }

  #need(n: number, what: string): void {
    if (this.#key.length - this.#pos < n) {
      throw new CorruptionError(`Cannot read key: truncated ${what}`, {
        where: `key byte ${this.#pos}`,
      });
    }
  }

  #word(): number {
    const key = this.#key;
    const p = this.#pos;
    this.#pos = p + 4;
    return key[p]! * 0x1000000 + ((key[p + 1]! << 16) | (key[p + 2]! << 8) | key[p + 3]!);
  }

  /** Unescapes the element at the read position into `unescaped`; returns its length. */
  #unescape(what: string): number {
    const key = this.#key;
    const end = key.length;
    if (unescaped.length < end) unescaped = new Uint8Array(end);
    const out = unescaped;
    let i = this.#pos;
    let n = 0;
    for (;;) {
      if (i >= end) {
        throw new CorruptionError(`Cannot read key: unterminated ${what}`, {
          where: `key byte ${this.#pos}`,
        });
      }
      const b = key[i++]!;
      if (b !== 0) {
        out[n++] = b;
        continue;
      }
      if (i >= end) {
        throw new CorruptionError(`Cannot read key: unterminated ${what}`, {
          where: `key byte ${this.#pos}`,
        });
      }
      const e = key[i++];
      if (e === 0) break;
      if (e !== 0xff) {
        throw new CorruptionError(`Cannot read key: bad escape in ${what}`, {
          where: `key byte ${i - 1}`,
        });
      }
      out[n++] = 0;
    }
    this.#pos = i;
    return n;
  }
}

/**
 * The smallest key greater than every key that starts with `prefix`: the
 * exclusive upper bound of a prefix scan. Trailing 0xFF bytes are dropped
 * and the last remaining byte incremented.
 *
 * @param prefix The key prefix.
 * @returns The bound (a new array), or `undefined` when there is none
 * (`prefix` is empty or all 0xFF: every key above it shares it).
 * @throws {TypeError} if `prefix` is not a `Uint8Array`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prefixEnd } from "./keys.ts";
 *
 * assert.deepEqual(prefixEnd(new Uint8Array([1, 2, 0xff])), new Uint8Array([1, 3]));
 * assert.equal(prefixEnd(new Uint8Array([0xff])), undefined);
 * ```
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  if (!(prefix instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot bound prefix: prefix must be a Uint8Array, got ${typeName(prefix)}`,
    );
  }
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] !== 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i]!++;
      return end;
    }
  }
  return undefined;
}

/**
 * Compares two keys as the store orders them: unsigned bytes, a proper
 * prefix first.
 *
 * @param a A key.
 * @param b A key.
 * @returns A negative number, zero or a positive number as `a` sorts before,
 * equal to or after `b`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareKeys, KeyWriter } from "./keys.ts";
 *
 * const w = new KeyWriter();
 * assert.ok(compareKeys(w.string("a").finish(), w.string("a\0").finish()) < 0);
 * assert.ok(compareKeys(w.u32(256).finish(), w.u32(255).finish()) > 0);
 * ```
 */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
