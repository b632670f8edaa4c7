/**
 * The value codec: the values in-mem stores (KV values, event payloads,
 * state cells, trace fields) and their MessagePack bytes.
 *
 * A value is `null`, a boolean, a number, a bigint, a string, a
 * `Uint8Array`, a `Date`, an array of values or a plain object of values
 * ({@link Value}). Anything else is rejected before a byte is produced, with
 * a {@link ValueError} (a `TypeError`) for a part of the wrong kind, or a
 * `RangeError` for one beyond a limit; both name the path to the part, as in
 * `$.steps[3].fn`.
 *
 * Two encoders share one set of rules (docs/FORMAT.md, "Values"):
 * {@link encodeValue} keeps the object keys in their own order, and
 * {@link encodeCanonical} sorts them by their UTF-8 bytes, so that every
 * value has exactly one canonical byte sequence — the event log's SHA-256
 * chain is computed over it. Every other choice (integers in their smallest
 * form, other numbers as float64, one NaN, the smallest timestamp form) is
 * the same in both, so the two differ only in key order.
 *
 * The encoder and decoder are written here rather than configured from
 * `@msgpack/msgpack`'s `Encoder`/`Decoder`, because those cannot give, without
 * a second pass over the value: `-0` and one NaN bit pattern, keys sorted by
 * UTF-8 bytes (its `sortKeys` sorts UTF-16 code units), bigints in their
 * smallest form, int64 in the safe range decoded as a number, binary values
 * that do not alias the input, and the strict checks on read (string keys
 * only, no duplicate keys, bounded depth). The bytes are standard
 * MessagePack: the tests check that `@msgpack/msgpack` reads what this writes
 * and the other way round, and decoding uses its timestamp decoder.
 *
 * @module
 */
import { decodeTimestampToTimeSpec, EXT_TIMESTAMP } from "@msgpack/msgpack";
import { slabAlloc } from "../_slab.ts";
import { CorruptionError } from "../errors.ts";
import { MAX_VALUE_BYTES } from "./store.ts";
import { RUNTIME } from "../_runtime.ts";

/**
 * A value in-mem can store. Integers are one domain: `5` and `5n` encode to
 * the same bytes, and decode as a `number` when within ±(2^53 − 1), as a
 * `bigint` beyond. Objects decode with `Object.prototype`; byte arrays
 * (a Node `Buffer` included) as plain `Uint8Array`s.
 */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Date
  | Value[]
  | { [key: string]: Value };

/**
 * Deepest nesting of arrays and objects in a value: a top-level array or
 * object is level 1. Bounds the encoder's and decoder's recursion.
 */
export const MAX_VALUE_DEPTH = 64;

/**
 * Largest encoded value, in bytes: the store's value limit (16 MiB) less
 * 64 KiB that the layers above keep for their own record fields (versions,
 * event metadata, timestamps) around an encoded value.
 */
export const MAX_ENCODED_VALUE_BYTES: number = MAX_VALUE_BYTES - 64 * 1024;

/**
 * A part of a value that in-mem cannot store: a function, symbol,
 * `undefined` (other than as an object property, which is left out), a class
 * instance other than `Date` and `Uint8Array`, a cycle, a hole in a sparse
 * array, a string with a lone surrogate, an invalid `Date`, or a bigint
 * outside the 64-bit range. A `TypeError`, as every argument of the wrong
 * kind; `path` says where the part is (`$` is the value itself).
 *
 * @example Find the offending part
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeValue, ValueError } from "./codec.ts";
 *
 * assert.throws(
 *   () => encodeValue({ steps: [1, 2, 3, { fn: () => 1 }] }),
 *   (e: unknown) => e instanceof ValueError && e.path === "$.steps[3].fn",
 * );
 * ```
 */
export class ValueError extends TypeError {
  /** Where the part is: `$`, then `.key`, `["odd key"]` and `[index]` steps. */
  readonly path: string;
  /**
   * @param message What failed, as "Cannot …: detail".
   * @param options `path`: where the part is; `cause`: underlying error.
   */
  constructor(message: string, options: { path: string; cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.path = options.path;
  }
}

/**
 * Encodes a value as MessagePack, object keys in their own order.
 *
 * What changes on the way back through {@link decodeValue}: object
 * properties whose value is `undefined` are left out (as `JSON.stringify`
 * does); a bigint within ±(2^53 − 1) comes back as a number; a `Buffer` or
 * null-prototype object comes back as a plain `Uint8Array` or object; the
 * same object reached twice is encoded twice. Everything else — `-0`, NaN,
 * ±Infinity, integers up to 64 bits, strings, bytes, dates to the
 * millisecond — comes back as it went in.
 *
 * @param value The value to encode; any JavaScript value is accepted as the
 * argument and checked at run time.
 * @returns A new `Uint8Array` holding the encoding.
 * @throws {ValueError} if a part of `value` is of a kind in-mem cannot store.
 * @throws {RangeError} if `value` nests deeper than {@link MAX_VALUE_DEPTH}
 * or its encoding would exceed {@link MAX_ENCODED_VALUE_BYTES}.
 *
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeValue, encodeValue } from "./codec.ts";
 *
 * const value = { tool: "search", args: { q: "msgpack", k: 3 }, at: new Date(0) };
 * assert.deepEqual(decodeValue(encodeValue(value)), value);
 * assert.throws(() => encodeValue({ cache: new Map() }), /Map at \$\.cache/);
 * ```
 */
export function encodeValue(value: unknown): Uint8Array {
  return (shared.busy ? new Encoder() : shared).encode(value, false);
}

/**
 * {@link encodeValue} into a buffer that keeps `reserve` zero bytes in
 * front of the encoding, for a header the caller writes: one allocation and
 * one copy for a record of header and value.
 *
 * @param value The value to encode.
 * @param reserve Bytes before the encoding (zero-filled).
 * @returns `reserve` zeros, then the bytes of `encodeValue(value)`.
 * @throws {ValueError} if a part of `value` is of a kind in-mem cannot store.
 * @throws {RangeError} if `value` nests too deep or its encoding is too large.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeValue, encodeValueAfter } from "./codec.ts";
 *
 * const rec = encodeValueAfter({ a: 1 }, 3);
 * assert.deepEqual(rec.subarray(0, 3), new Uint8Array(3));
 * assert.deepEqual(rec.subarray(3), encodeValue({ a: 1 }));
 * ```
 */
export function encodeValueAfter(value: unknown, reserve: number): Uint8Array {
  return (shared.busy ? new Encoder() : shared).encode(value, false, reserve);
}

/**
 * {@link encodeValue}, telling also whether the bytes are the canonical
 * ones ({@link encodeCanonical}): they are when every object's keys are
 * already in canonical order (the only difference between the two), which
 * saves encoding a value twice when both are needed (an event's stored
 * payload and its hash input).
 *
 * @param value The value to encode.
 * @returns The bytes, and whether they equal `encodeCanonical(value)`.
 * @throws {ValueError} if a part of `value` is of a kind in-mem cannot store.
 * @throws {RangeError} if `value` nests too deep or its encoding is too large.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeCanonical, encodeValueCanonically } from "./codec.ts";
 *
 * const sorted = encodeValueCanonically({ a: 1, b: [{ c: 2, d: 3 }] });
 * assert.equal(sorted.canonical, true);
 * assert.deepEqual(sorted.bytes, encodeCanonical({ a: 1, b: [{ c: 2, d: 3 }] }));
 * assert.equal(encodeValueCanonically({ b: 1, a: 2 }).canonical, false);
 * ```
 */
export function encodeValueCanonically(value: unknown): { bytes: Uint8Array; canonical: boolean } {
  const e = shared.busy ? new Encoder() : shared;
  const bytes = e.encode(value, false);
  return { bytes, canonical: e.sorted };
}

/**
 * Encodes a value in its canonical form: the one byte sequence that
 * {@link encodeValue}'s rules give with every object's keys sorted by their
 * UTF-8 bytes. Two values that decode equal (with `-0` and `0` different,
 * and key order ignored) have the same canonical bytes, so hashes are
 * computed over it. docs/FORMAT.md specifies it byte by byte.
 *
 * @param value The value to encode.
 * @returns A new `Uint8Array` holding the canonical encoding.
 * @throws {ValueError} if a part of `value` is of a kind in-mem cannot store.
 * @throws {RangeError} if `value` nests deeper than {@link MAX_VALUE_DEPTH}
 * or its encoding would exceed {@link MAX_ENCODED_VALUE_BYTES}.
 *
 * @example Key order does not matter
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeCanonical } from "./codec.ts";
 *
 * const a = encodeCanonical({ b: 1, a: [true, null] });
 * const b = encodeCanonical({ a: [true, null], b: 1 });
 * assert.deepEqual(a, b);
 * assert.deepEqual([...a], [0x82, 0xa1, 0x61, 0x92, 0xc3, 0xc0, 0xa1, 0x62, 0x01]);
 * ```
 */
export function encodeCanonical(value: unknown): Uint8Array {
  return (shared.busy ? new Encoder() : shared).encode(value, true);
}

/**
 * Decodes the MessagePack encoding of one value. Accepts every encoding
 * MessagePack allows for the types of {@link Value} (not only the smallest
 * forms this module writes), and nothing else.
 *
 * Integers within ±(2^53 − 1) decode as numbers, larger int64/uint64 as
 * bigints; float32 and float64 as numbers; str as strings (strict UTF-8);
 * bin as a new `Uint8Array` with its own `ArrayBuffer` (never a view of
 * `bytes`); the timestamp extension (type −1) as a `Date`, whole
 * milliseconds (a sub-millisecond part is dropped, rounding down); maps as
 * plain objects (a `"__proto__"` key as an own property).
 *
 * @param bytes The encoding, exactly one value with nothing after it.
 * @returns The value.
 * @throws {TypeError} if `bytes` is not a `Uint8Array`.
 * @throws {CorruptionError} if `bytes` is not one well-formed value: truncated,
 * followed by more bytes, invalid UTF-8, a map key that is not a string or
 * comes twice, an extension other than the timestamp, a timestamp outside
 * the `Date` range, or nesting deeper than {@link MAX_VALUE_DEPTH}.
 *
 * @example Large integers come back as bigint
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeValue, encodeValue } from "./codec.ts";
 *
 * assert.equal(decodeValue(encodeValue(2 ** 40)), 2 ** 40);
 * assert.equal(decodeValue(encodeValue(2n ** 60n)), 2n ** 60n);
 * assert.equal(decodeValue(encodeValue(42n)), 42);
 * assert.equal(decodeValue(new Uint8Array([0xcf, 0, 0, 0, 0, 0, 0, 0, 7])), 7);
 * ```
 */
export function decodeValue(bytes: Uint8Array): Value {
  return decodeValueFrom(bytes, 0);
}

/**
 * {@link decodeValue} of `bytes.subarray(start, end)`, without making
 * that subarray when `end` is the end (a record's value after its header).
 *
 * @param bytes The bytes.
 * @param start Where the value starts.
 * @param end Where it ends (default: the end of `bytes`).
 * @returns The value.
 * @throws {TypeError} if `bytes` is not a `Uint8Array`.
 * @throws {CorruptionError} as {@link decodeValue}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeValueFrom } from "./codec.ts";
 *
 * assert.equal(decodeValueFrom(new Uint8Array([9, 9, 0xa1, 0x78]), 2), "x");
 * ```
 */
export function decodeValueFrom(
  bytes: Uint8Array,
  start: number,
  end: number = bytes.length,
): Value {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`Cannot decode value: bytes must be a Uint8Array, got ${describe(bytes)}`);
  }
  if (!(0 <= start && start <= end && end <= bytes.length)) {
    throw new RangeError(
      `Cannot decode value: need 0 <= start <= end <= ${bytes.length}, got ${start}, ${end}`,
    );
  }
  src = bytes;
  at = start;
  limit = end;
  view = undefined;
  try {
    const value = readValue(0);
    if (at !== limit) throw corrupt(`${limit - at} bytes follow the value`);
    return value;
  } finally {
    src = EMPTY;
    view = undefined;
  }
}

// ---------------------------------------------------------------------------
// Encoding

const TWO_32 = 4294967296;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE_BIG = -MAX_SAFE_BIG;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
/**
 * Strings up to this many UTF-16 units are encoded by a JS loop, longer ones
 * by TextEncoder.encodeInto (faster past about 40 units on V8, JSC and Deno
 * alike, measured with a 100-unit value: 2–4× faster).
 */
const SHORT_STRING = 48;
/**
 * Encodings up to this many bytes are copied out of the scratch buffer by a
 * loop, longer ones by subarray + set. With that and no clearing of the
 * nesting stacks when the value had no nesting, encoding the int 42 took
 * ~37 ns against ~95 (Node and Deno; Bun 17 against 73), a 100-character
 * string ~145 against ~172 on Node (a loop over all its bytes: ~225).
 */
const SHORT_COPY = 32;
/** Views of the encoding buffer from each of the first offsets, for encodeInto (a subarray costs as much as a short string). */
const CACHED_VIEWS = 16;
/**
 * Room the encoder may reserve past the limit for worst-case sizes (a short
 * string reserves 3 bytes per unit); the exact limit is checked at the end.
 */
const RESERVE_SLACK = 1024;
const INITIAL_BUFFER_BYTES = 4096;
/** A scratch buffer that grew past this is dropped after use, not kept. */
const KEEP_BUFFER_BYTES = 1 << 20;
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const textEncoder = new TextEncoder();
const getTime = Date.prototype.getTime;

const isWellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === "function"
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (s) => !LONE_SURROGATE.test(s);

/** MessagePack header size for a str of `n` bytes. */
function strHeaderBytes(n: number): number {
  return n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/** MessagePack header size for a map or array of `n` entries. */
function containerHeaderBytes(n: number): number {
  return n < 16 ? 1 : n < 0x10000 ? 3 : 5;
}

/** UTF-8 length of `s`, or -1 if it holds a lone surrogate. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c < 0xd800 || c >= 0xe000) n += 3;
    else if (c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else return -1;
  }
  return n;
}

/** Writes the UTF-8 of a well-formed `s` at `p`; returns the end. */
function writeUtf8(s: string, buf: Uint8Array, p: number): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[p++] = c;
    } else if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c >= 0xe000) {
      buf[p++] = 0xe0 | (c >> 12);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    } else {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      buf[p++] = 0xf0 | (c >> 18);
      buf[p++] = 0x80 | ((c >> 12) & 0x3f);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p;
}

/**
 * Orders well-formed strings by their UTF-8 bytes (= by code points).
 * UTF-16 unit order agrees except that the surrogates (D800–DFFF, the units
 * of U+10000 and above) sort below E000–FFFF; lifting them above fixes that.
 */
function compareUtf8(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x += x < 0xe000 ? 0x2000 : -0x800;
        y += y < 0xe000 ? 0x2000 : -0x800;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v !== "object" && typeof v !== "function") return typeof v;
  const ctor = (v as { constructor?: unknown }).constructor;
  const name = typeof ctor === "function" ? ctor.name : "";
  return name !== "" ? name : "object without a plain prototype";
}

function pathStep(key: string | number): string {
  if (typeof key === "number") return `[${key}]`;
  if (IDENTIFIER.test(key)) return `.${key}`;
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return `[${JSON.stringify(shown)}]`;
}

class Encoder {
  busy = false;
  canonical = false;
  buf: Uint8Array = new Uint8Array(INITIAL_BUFFER_BYTES);
  view: DataView = new DataView(this.buf.buffer);
  /** views[i]: `buf.subarray(i)`, made on first use (see CACHED_VIEWS); emptied when `buf` changes. */
  views: (Uint8Array | undefined)[] = [];
  pos = 0;
  /** open[d]: the array or object at nesting depth d being encoded (cycle check). */
  readonly open: unknown[] = new Array(MAX_VALUE_DEPTH).fill(null);
  /** keys[d]: the key or index leading from open[d] to the part being encoded. */
  readonly keys: (string | number)[] = new Array(MAX_VALUE_DEPTH).fill(0);
  deepest = 0;
  /** Cleared when a map's own key order is not the canonical one (canonical bytes differ then). */
  sorted = true;

  encode(value: unknown, canonical: boolean, reserve = 0): Uint8Array {
    this.busy = true;
    this.canonical = canonical;
    this.sorted = true;
    this.pos = 0;
    this.deepest = 0;
    try {
      this.value(value, 0);
      if (this.pos > MAX_ENCODED_VALUE_BYTES) throw this.tooLarge(0, this.pos);
      // Small encodings are carved from a shared slab on V8 (src/_slab.ts):
      // a fresh ArrayBuffer per value cost about a microsecond.
      const n = this.pos;
      const out = slabAlloc(reserve + n);
      const buf = this.buf;
      // A loop beats a subarray plus set() for the bytes of most values.
      if (n <= SHORT_COPY) { for (let i = 0; i < n; i++) out[reserve + i] = buf[i]!; }
      else out.set(buf.subarray(0, n), reserve);
      return out;
    } finally {
      // Drop references to the caller's objects, and an outsized buffer.
      if (this.deepest > 0) {
        this.open.fill(null, 0, this.deepest);
        this.keys.fill(0, 0, this.deepest);
      }
      if (this.buf.length > KEEP_BUFFER_BYTES) {
        this.buf = new Uint8Array(INITIAL_BUFFER_BYTES);
        this.view = new DataView(this.buf.buffer);
        this.views = [];
      }
      this.busy = false;
    }
  }

  path(depth: number): string {
    let s = "$";
    for (let d = 0; d < depth; d++) s += pathStep(this.keys[d]!);
    return s;
  }

  fault(depth: number, detail: string): ValueError {
    const path = this.path(depth);
    return new ValueError(`Cannot encode value: ${detail} at ${path}`, { path });
  }

  tooLarge(depth: number, bytes: number): RangeError {
    return new RangeError(
      `Cannot encode value: the encoding needs ${bytes} bytes, more than the limit of ${MAX_ENCODED_VALUE_BYTES} (MAX_ENCODED_VALUE_BYTES), at ${
        this.path(depth)
      }`,
    );
  }

  resize(bytes: number): void {
    const next = new Uint8Array(bytes);
    next.set(this.buf.subarray(0, Math.min(this.pos, bytes)));
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.views = [];
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number, depth: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    if (need > MAX_ENCODED_VALUE_BYTES + RESERVE_SLACK) throw this.tooLarge(depth, need);
    this.resize(
      Math.min(Math.max(need, this.buf.length * 2), MAX_ENCODED_VALUE_BYTES + RESERVE_SLACK),
    );
  }

  value(v: unknown, depth: number): void {
    switch (typeof v) {
      case "string":
        this.string(v, depth, "a string");
        return;
      case "number":
        // -0 is not a safe integer here: it keeps its sign as a float64.
        if (Number.isSafeInteger(v) && (v !== 0 || 1 / v > 0)) this.int(v, depth);
        else this.float(v, depth);
        return;
      case "boolean":
        this.ensure(1, depth);
        this.buf[this.pos++] = v ? 0xc3 : 0xc2;
        return;
      case "bigint":
        this.bigint(v, depth);
        return;
      case "object":
        if (v === null) {
          this.ensure(1, depth);
          this.buf[this.pos++] = 0xc0;
        } else this.object(v, depth);
        return;
      case "undefined":
        throw this.fault(depth, "undefined is not a value (use null)");
      default:
        throw this.fault(depth, `a ${typeof v} is not a value`);
    }
  }

  /** A safe integer, in its smallest MessagePack form. */
  int(x: number, depth: number): void {
    this.ensure(9, depth);
    const buf = this.buf;
    const p = this.pos;
    if (x >= 0) {
      if (x < 0x80) {
        buf[p] = x;
        this.pos = p + 1;
      } else if (x < 0x100) {
        buf[p] = 0xcc;
        buf[p + 1] = x;
        this.pos = p + 2;
      } else if (x < 0x10000) {
        buf[p] = 0xcd;
        buf[p + 1] = x >>> 8;
        buf[p + 2] = x;
        this.pos = p + 3;
      } else if (x < TWO_32) {
        buf[p] = 0xce;
        writeU32(buf, p + 1, x);
        this.pos = p + 5;
      } else {
        buf[p] = 0xcf;
        writeU32(buf, p + 1, Math.floor(x / TWO_32));
        writeU32(buf, p + 5, x >>> 0);
        this.pos = p + 9;
      }
    } else if (x >= -0x20) {
      buf[p] = x; // 0xe0..0xff: the byte is the two's complement
      this.pos = p + 1;
    } else if (x >= -0x80) {
      buf[p] = 0xd0;
      buf[p + 1] = x;
      this.pos = p + 2;
    } else if (x >= -0x8000) {
      buf[p] = 0xd1;
      buf[p + 1] = x >> 8;
      buf[p + 2] = x;
      this.pos = p + 3;
    } else if (x >= -0x80000000) {
      buf[p] = 0xd2;
      writeU32(buf, p + 1, x >>> 0);
      this.pos = p + 5;
    } else {
      buf[p] = 0xd3;
      writeU32(buf, p + 1, Math.floor(x / TWO_32) >>> 0);
      writeU32(buf, p + 5, x >>> 0); // ToUint32 is x mod 2^32: the low word
      this.pos = p + 9;
    }
  }

  float(x: number, depth: number): void {
    this.ensure(9, depth);
    const p = this.pos;
    this.buf[p] = 0xcb;
    if (x !== x) {
      // One NaN: 0x7FF8000000000000, whatever payload the NaN carried.
      this.view.setUint32(p + 1, 0x7ff80000);
      this.view.setUint32(p + 5, 0);
    } else this.view.setFloat64(p + 1, x);
    this.pos = p + 9;
  }

  bigint(b: bigint, depth: number): void {
    if (b >= MIN_SAFE_BIG && b <= MAX_SAFE_BIG) {
      this.int(Number(b), depth);
      return;
    }
    if (b > U64_MAX || b < I64_MIN) {
      throw this.fault(depth, "a bigint outside the 64-bit range [-2^63, 2^64 - 1]");
    }
    this.ensure(9, depth);
    const p = this.pos;
    if (b > 0n) {
      this.buf[p] = 0xcf;
      this.view.setBigUint64(p + 1, b);
    } else {
      this.buf[p] = 0xd3;
      this.view.setBigInt64(p + 1, b);
    }
    this.pos = p + 9;
  }

  /** A str; `what` names it in the lone-surrogate error. */
  string(s: string, depth: number, what: string): void {
    const len = s.length;
    if (len <= SHORT_STRING) {
      this.ensure(5 + 3 * len, depth);
      const buf = this.buf;
      // Most strings are ASCII: bet on it, so the byte length is the length.
      const hdr = strHeaderBytes(len);
      let p = this.pos + hdr;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p++] = c;
      }
      if (i === len) {
        this.strHeader(len, hdr);
        this.pos = p;
        return;
      }
      const n = utf8Length(s);
      if (n < 0) throw this.fault(depth, `${what} with a lone surrogate`);
      const hdr2 = strHeaderBytes(n);
      this.strHeader(n, hdr2);
      this.pos = writeUtf8(s, buf, this.pos + hdr2);
      return;
    }
    if (!isWellFormed(s)) throw this.fault(depth, `${what} with a lone surrogate`);
    let max = 3 * len;
    // Near the limit, the worst case must not reject a string that fits.
    if (this.pos + 5 + max > MAX_ENCODED_VALUE_BYTES) max = utf8Length(s);
    const hdr = strHeaderBytes(max);
    this.ensure(hdr + max, depth);
    const start = this.pos + hdr;
    const into = start < CACHED_VIEWS
      ? (this.views[start] ??= this.buf.subarray(start))
      : this.buf.subarray(start, start + max);
    const n = textEncoder.encodeInto(s, into).written;
    const hdr2 = strHeaderBytes(n);
    if (hdr2 < hdr) this.buf.copyWithin(this.pos + hdr2, start, start + n);
    this.strHeader(n, hdr2);
    this.pos += hdr2 + n;
  }

  strHeader(n: number, size: number): void {
    const buf = this.buf;
    const p = this.pos;
    if (size === 1) buf[p] = 0xa0 | n;
    else if (size === 2) {
      buf[p] = 0xd9;
      buf[p + 1] = n;
    } else if (size === 3) {
      buf[p] = 0xda;
      buf[p + 1] = n >>> 8;
      buf[p + 2] = n;
    } else {
      buf[p] = 0xdb;
      writeU32(buf, p + 1, n);
    }
  }

  /** An array or map header of `size` bytes at `p`. */
  containerHeader(p: number, n: number, size: number, fix: number, code16: number): void {
    const buf = this.buf;
    if (size === 1) buf[p] = fix | n;
    else if (size === 3) {
      buf[p] = code16;
      buf[p + 1] = n >>> 8;
      buf[p + 2] = n;
    } else {
      buf[p] = code16 + 1;
      writeU32(buf, p + 1, n);
    }
  }

  object(v: object, depth: number): void {
    if (Array.isArray(v)) {
      if (Object.getPrototypeOf(v) !== Array.prototype) {
        throw this.fault(
          depth,
          `unsupported type ${describe(v)} (an array whose prototype is not Array.prototype)`,
        );
      }
      this.array(v, depth);
      return;
    }
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) this.map(v, depth);
    else if (v instanceof Uint8Array && ArrayBuffer.isView(v)) this.binary(v, depth);
    else if (v instanceof Date) this.date(v, depth);
    else throw this.fault(depth, `unsupported type ${describe(v)}`);
  }

  /** Checks nesting and cycles before entering container `v` at `depth`. */
  enter(v: object, depth: number): void {
    if (depth >= MAX_VALUE_DEPTH) {
      throw new RangeError(
        `Cannot encode value: nested deeper than ${MAX_VALUE_DEPTH} levels (MAX_VALUE_DEPTH) at ${
          this.path(depth)
        }`,
      );
    }
    const open = this.open;
    for (let d = 0; d < depth; d++) {
      if (open[d] === v) {
        throw this.fault(depth, `a cycle (the value at ${this.path(d)} contains itself)`);
      }
    }
    open[depth] = v;
    if (depth >= this.deepest) this.deepest = depth + 1;
  }

  array(a: unknown[], depth: number): void {
    this.enter(a, depth);
    const n = a.length;
    const size = containerHeaderBytes(n);
    this.ensure(size, depth);
    this.containerHeader(this.pos, n, size, 0x90, 0xdc);
    this.pos += size;
    const keys = this.keys;
    for (let i = 0; i < n; i++) {
      const item = a[i];
      keys[depth] = i;
      if (item === undefined) {
        throw this.fault(
          depth + 1,
          i in a ? "undefined is not a value (use null)" : "a hole in a sparse array",
        );
      }
      this.value(item, depth + 1);
    }
  }

  map(o: object, depth: number): void {
    this.enter(o, depth);
    const names = Object.keys(o);
    if (names.length > 1) {
      if (this.canonical) names.sort(compareUtf8);
      else if (this.sorted) {
        for (let i = 1; i < names.length; i++) {
          if (compareUtf8(names[i - 1]!, names[i]!) > 0) {
            this.sorted = false;
            break;
          }
        }
      }
    }
    const n = names.length;
    // Properties holding undefined are left out, so the count is known only
    // at the end: reserve the header for n and shrink it if fewer were kept.
    const reserved = containerHeaderBytes(n);
    this.ensure(reserved, depth);
    const start = this.pos;
    this.pos += reserved;
    const keys = this.keys;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const name = names[i]!;
      const item = (o as Record<string, unknown>)[name];
      if (item === undefined) continue;
      keys[depth] = name;
      this.string(name, depth + 1, "a key");
      this.value(item, depth + 1);
      count++;
    }
    const size = containerHeaderBytes(count);
    if (size < reserved) {
      this.buf.copyWithin(start + size, start + reserved, this.pos);
      this.pos -= reserved - size;
    }
    this.containerHeader(start, count, size, 0x80, 0xde);
  }

  binary(u: Uint8Array, depth: number): void {
    const n = u.byteLength;
    const size = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    this.ensure(size + n, depth);
    const buf = this.buf;
    const p = this.pos;
    if (size === 2) {
      buf[p] = 0xc4;
      buf[p + 1] = n;
    } else if (size === 3) {
      buf[p] = 0xc5;
      buf[p + 1] = n >>> 8;
      buf[p + 2] = n;
    } else {
      buf[p] = 0xc6;
      writeU32(buf, p + 1, n);
    }
    buf.set(u, p + size);
    this.pos = p + size + n;
  }

  /** The timestamp extension (type -1) in its smallest form. */
  date(d: Date, depth: number): void {
    let ms: number;
    try {
      ms = getTime.call(d); // not d.getTime(): a subclass may override it
    } catch (cause) {
      throw new ValueError(
        `Cannot encode value: an object posing as a Date at ${this.path(depth)}`,
        {
          path: this.path(depth),
          cause,
        },
      );
    }
    if (ms !== ms) throw this.fault(depth, "an invalid Date");
    const sec = Math.floor(ms / 1000);
    const nsec = (ms - sec * 1000) * 1e6;
    this.ensure(15, depth);
    const buf = this.buf;
    const p = this.pos;
    if (sec >= 0 && sec < 0x400000000) {
      if (nsec === 0 && sec < TWO_32) {
        buf[p] = 0xd6; // fixext 4: timestamp 32
        buf[p + 1] = 0xff;
        writeU32(buf, p + 2, sec);
        this.pos = p + 6;
      } else {
        buf[p] = 0xd7; // fixext 8: timestamp 64, nsec in the high 30 bits
        buf[p + 1] = 0xff;
        writeU32(buf, p + 2, nsec * 4 + Math.floor(sec / TWO_32));
        writeU32(buf, p + 6, sec >>> 0);
        this.pos = p + 10;
      }
    } else {
      buf[p] = 0xc7; // ext 8, 12 bytes: timestamp 96
      buf[p + 1] = 12;
      buf[p + 2] = 0xff;
      writeU32(buf, p + 3, nsec);
      writeU32(buf, p + 7, Math.floor(sec / TWO_32) >>> 0);
      writeU32(buf, p + 11, sec >>> 0);
      this.pos = p + 15;
    }
  }
}

/**
 * Writes a MessagePack map of known shape field by field, by the same rules
 * (and the same code) as {@link encodeValue}: for records whose fields are
 * fixed, so the generic walk (Object.keys, per-field dispatch, cycle checks)
 * is skipped. The caller writes the fields in the order the bytes must have
 * — for canonical bytes, sorted by UTF-8 — and every key and value as it
 * would appear in the value. Reusable: {@link begin} starts over.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeValue, MapWriter } from "./codec.ts";
 *
 * const w = new MapWriter();
 * const bytes = w.begin(2).key("n").int(300).key("id").bytes(new Uint8Array([1, 2])).finish();
 * assert.deepEqual(bytes, encodeValue({ n: 300, id: new Uint8Array([1, 2]) }));
 * ```
 */
export class MapWriter {
  readonly #e = new Encoder();

  /**
   * Starts a map of `n` entries.
   *
   * @param n The number of entries that will follow.
   * @returns This writer.
   */
  begin(n: number): this {
    const e = this.#e;
    e.pos = 0;
    const size = containerHeaderBytes(n);
    e.ensure(size, 0);
    e.containerHeader(0, n, size, 0x80, 0xde);
    e.pos = size;
    return this;
  }

  /**
   * A key, or any string value.
   *
   * @param s The string.
   * @returns This writer.
   */
  key(s: string): this {
    this.#e.string(s, 0, "a key");
    return this;
  }

  /**
   * A string value (the same encoding as a key).
   *
   * @param s The string.
   * @returns This writer.
   */
  str(s: string): this {
    this.#e.string(s, 0, "a string");
    return this;
  }

  /**
   * A safe integer in its smallest form.
   *
   * @param x The integer.
   * @returns This writer.
   */
  int(x: number): this {
    this.#e.int(x, 0);
    return this;
  }

  /**
   * A binary value.
   *
   * @param u The bytes.
   * @returns This writer.
   */
  bytes(u: Uint8Array): this {
    this.#e.binary(u, 0);
    return this;
  }

  /**
   * A string value: the lowercase hex digits of `u` (what
   * `str(hex of u)` writes, without making the string).
   *
   * @param u The bytes.
   * @returns This writer.
   */
  hex(u: Uint8Array): this {
    const e = this.#e;
    const n = 2 * u.length;
    const hdr = strHeaderBytes(n);
    e.ensure(hdr + n, 0);
    e.strHeader(n, hdr);
    const buf = e.buf;
    let p = e.pos + hdr;
    for (let i = 0; i < u.length; i++) {
      const b = u[i]!;
      buf[p++] = HEX_DIGITS[b >>> 4]!;
      buf[p++] = HEX_DIGITS[b & 15]!;
    }
    e.pos = p;
    return this;
  }

  /**
   * Bytes that are already MessagePack (an encoded value), as they are.
   *
   * @param u The bytes.
   * @returns This writer.
   */
  raw(u: Uint8Array): this {
    const e = this.#e;
    e.ensure(u.length, 0);
    e.buf.set(u, e.pos);
    e.pos += u.length;
    return this;
  }

  /**
   * The map so far, as a new array the caller owns (see {@link encodeValue}).
   *
   * @returns The bytes.
   */
  finish(): Uint8Array {
    const e = this.#e;
    if (e.pos > MAX_ENCODED_VALUE_BYTES) throw e.tooLarge(0, e.pos);
    const out = slabAlloc(e.pos);
    out.set(e.buf.subarray(0, e.pos));
    if (e.buf.length > KEEP_BUFFER_BYTES) {
      e.buf = new Uint8Array(INITIAL_BUFFER_BYTES);
      e.view = new DataView(e.buf.buffer);
      e.views = [];
    }
    return out;
  }

  /**
   * The map so far, as a view of the writer's buffer, valid until its next
   * use (hash it at once).
   *
   * @returns The bytes.
   */
  view(): Uint8Array {
    const e = this.#e;
    return e.buf.subarray(0, e.pos);
  }
}

/** ASCII of the 16 lowercase hex digits. */
const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");

/** Writes the low 32 bits of integer `v` big-endian at `p`. */
function writeU32(buf: Uint8Array, p: number, v: number): void {
  // Uint8Array stores keep the low 8 bits of each value.
  buf[p] = v >>> 24;
  buf[p + 1] = v >>> 16;
  buf[p + 2] = v >>> 8;
  buf[p + 3] = v;
}

const shared = new Encoder();

// ---------------------------------------------------------------------------
// Decoding: one value from `src`, reading at `at`. Module state, not an
// object: decoding runs no user code, so it cannot be re-entered.

const EMPTY = new Uint8Array(0);
let src: Uint8Array = EMPTY;
let at = 0;
/** Where the value being decoded ends in `src` (reads never pass it). */
let limit = 0;
let view: DataView | undefined;
/**
 * Strings up to this many bytes are decoded by a JS loop, longer ones by
 * TextDecoder. Where the two cross differs by runtime: Deno's TextDecoder
 * is a call into Rust (~125 ns even for 8 bytes, replacing; see
 * DECODE_REPLACING_FIRST), V8's and JSC's are cheap. Measured here (ASCII,
 * best of 4–5 × 200,000 calls, ns per string, TextDecoder / loop): Node 16 B
 * 96/77, 24 B 98/99, 32 B 99/121; Bun 16 B 78/79, 24 B 82/114; Deno
 * (replacing decoder) 32 B 128/108, 48 B 127/152, 96 B 136/299.
 */
const SHORT_DECODE = RUNTIME === "deno" ? 32 : 20;
const units: number[] = [];
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/**
 * On Deno a fatal TextDecoder takes the generic decoding path, and one that
 * replaces invalid input with U+FFFD a fast UTF-8 path (measured here, ns
 * per ASCII string, fatal / replacing with the U+FFFD check: 64 B 310/127,
 * 200 B 401/134, 1000 B 1,018/256): there strings are decoded replacing
 * first, and strictly only when the result holds a U+FFFD. Node's and Bun's
 * fatal decoders are as fast as their replacing ones.
 */
const DECODE_REPLACING_FIRST = RUNTIME === "deno";
const replacingDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const MAX_DATE_MS = 8.64e15;

function corrupt(detail: string, cause?: unknown): CorruptionError {
  return new CorruptionError(`Cannot decode value: ${detail}`, {
    where: `value byte ${at}`,
    cause,
  });
}

function need(n: number): void {
  if (n > limit - at) throw corrupt(`truncated: ${n} bytes needed, ${limit - at} left`);
}

function dataView(): DataView {
  return view ??= new DataView(src.buffer, src.byteOffset, src.byteLength);
}

function readU16(): number {
  need(2);
  const v = (src[at]! << 8) | src[at + 1]!;
  at += 2;
  return v;
}

function readU32(): number {
  need(4);
  const v = src[at]! * 0x1000000 + ((src[at + 1]! << 16) | (src[at + 2]! << 8) | src[at + 3]!);
  at += 4;
  return v;
}

function readValue(depth: number): Value {
  if (at >= limit) throw corrupt("truncated: a value is missing");
  const b = src[at++]!;
  if (b < 0x80) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b < 0x90) return readMap(b & 0x0f, depth);
  if (b < 0xa0) return readArray(b & 0x0f, depth);
  if (b < 0xc0) return readString(b & 0x1f);
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      need(1);
      return readBinary(src[at++]!);
    case 0xc5:
      return readBinary(readU16());
    case 0xc6:
      return readBinary(readU32());
    case 0xc7:
      need(1);
      return readExt(src[at++]!);
    case 0xc8:
      return readExt(readU16());
    case 0xc9:
      return readExt(readU32());
    case 0xca: {
      need(4);
      const v = dataView().getFloat32(at);
      at += 4;
      return v;
    }
    case 0xcb: {
      need(8);
      const v = dataView().getFloat64(at);
      at += 8;
      return v;
    }
    case 0xcc:
      need(1);
      return src[at++]!;
    case 0xcd:
      return readU16();
    case 0xce:
      return readU32();
    case 0xcf: {
      need(8);
      const v = dataView().getUint32(at) * TWO_32 + dataView().getUint32(at + 4);
      // Rounding is monotonic and ±2^53 are exact, so an unsafe true value
      // never rounds into the safe range: the check is exact.
      const out = v <= Number.MAX_SAFE_INTEGER ? v : dataView().getBigUint64(at);
      at += 8;
      return out;
    }
    case 0xd0:
      need(1);
      return (src[at++]! << 24) >> 24;
    case 0xd1:
      return (readU16() << 16) >> 16;
    case 0xd2:
      return readU32() | 0;
    case 0xd3: {
      need(8);
      const v = dataView().getInt32(at) * TWO_32 + dataView().getUint32(at + 4);
      const out = Number.isSafeInteger(v) ? v : dataView().getBigInt64(at);
      at += 8;
      return out;
    }
    case 0xd4:
      return readExt(1);
    case 0xd5:
      return readExt(2);
    case 0xd6:
      return readExt(4);
    case 0xd7:
      return readExt(8);
    case 0xd8:
      return readExt(16);
    case 0xd9:
      need(1);
      return readString(src[at++]!);
    case 0xda:
      return readString(readU16());
    case 0xdb:
      return readString(readU32());
    case 0xdc:
      return readArray(readU16(), depth);
    case 0xdd:
      return readArray(readU32(), depth);
    case 0xde:
      return readMap(readU16(), depth);
    case 0xdf:
      return readMap(readU32(), depth);
    default:
      at--;
      throw corrupt("0xc1 is not a MessagePack type");
  }
}

function readBinary(n: number): Uint8Array {
  need(n);
  const out = src.slice(at, at + n);
  at += n;
  return out;
}

function readExt(n: number): Date {
  need(1 + n);
  const type = (src[at]! << 24) >> 24;
  if (type !== EXT_TIMESTAMP) throw corrupt(`extension type ${type} is not supported`);
  if (n !== 4 && n !== 8 && n !== 12) throw corrupt(`a timestamp of ${n} bytes`);
  const { sec, nsec } = decodeTimestampToTimeSpec(src.subarray(at + 1, at + 1 + n));
  if (nsec >= 1e9) throw corrupt(`a timestamp with ${nsec} nanoseconds`);
  const ms = sec * 1000 + Math.floor(nsec / 1e6);
  if (!(ms >= -MAX_DATE_MS && ms <= MAX_DATE_MS)) {
    throw corrupt(`timestamp ${sec} s is outside the range of Date`);
  }
  at += 1 + n;
  return new Date(ms);
}

function readString(n: number): string {
  need(n);
  const start = at;
  at += n;
  if (n > SHORT_DECODE) {
    const bytes = src.subarray(start, start + n);
    if (DECODE_REPLACING_FIRST) {
      // Invalid input always decodes to at least one U+FFFD: a string
      // without one was valid UTF-8. One with it is decoded again strictly.
      const s = replacingDecoder.decode(bytes);
      if (s.indexOf("\uFFFD") < 0) return s;
    }
    try {
      return textDecoder.decode(bytes);
    } catch (cause) {
      at = start;
      throw corrupt("a string that is not valid UTF-8", cause);
    }
  }
  // Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
  // into UTF-16 units; n bytes never make more than n units.
  let k = 0;
  for (let i = start, end = start + n; i < end;) {
    const b = src[i++]!;
    if (b < 0x80) {
      units[k++] = b;
      continue;
    }
    let cp: number;
    let min: number;
    let more: number;
    if ((b & 0xe0) === 0xc0) {
      cp = b & 0x1f;
      min = 0x80;
      more = 1;
    } else if ((b & 0xf0) === 0xe0) {
      cp = b & 0x0f;
      min = 0x800;
      more = 2;
    } else if ((b & 0xf8) === 0xf0) {
      cp = b & 0x07;
      min = 0x10000;
      more = 3;
    } else {
      at = start;
      throw corrupt("a string that is not valid UTF-8");
    }
    if (i + more > end) {
      at = start;
      throw corrupt("a string that is not valid UTF-8");
    }
    for (; more > 0; more--) {
      const c = src[i++]!;
      if ((c & 0xc0) !== 0x80) {
        at = start;
        throw corrupt("a string that is not valid UTF-8");
      }
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
      at = start;
      throw corrupt("a string that is not valid UTF-8");
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units[k++] = 0xd800 | (cp >> 10);
      units[k++] = 0xdc00 | (cp & 0x3ff);
    } else units[k++] = cp;
  }
  units.length = k;
  return String.fromCharCode.apply(null, units);
}

// Map keys repeat from record to record: short ones are looked up in a
// direct-mapped cache of (bytes, string) before being decoded, which also
// hands the engine the same string for the same key. 64 KiB of key bytes.
const KEY_CACHE_SLOTS = 4096;
const KEY_CACHE_MAX_BYTES = 16;
const cachedKeyBytes = new Uint8Array(KEY_CACHE_SLOTS * KEY_CACHE_MAX_BYTES);
/** Length of each slot's key plus one; 0 marks an empty slot. */
const cachedKeyLengths = new Uint8Array(KEY_CACHE_SLOTS);
const cachedKeys: string[] = new Array<string>(KEY_CACHE_SLOTS).fill("");

function readKey(n: number): string {
  if (n > KEY_CACHE_MAX_BYTES) return readString(n);
  need(n);
  const start = at;
  let h = n;
  for (let i = start; i < start + n; i++) h = Math.imul(h ^ src[i]!, 0x01000193);
  const slot = (h >>> 0) % KEY_CACHE_SLOTS;
  const base = slot * KEY_CACHE_MAX_BYTES;
  if (cachedKeyLengths[slot] === n + 1) {
    let i = 0;
    while (i < n && cachedKeyBytes[base + i] === src[start + i]) i++;
    if (i === n) {
      at = start + n;
      return cachedKeys[slot]!;
    }
  }
  const key = readString(n);
  cachedKeyBytes.set(src.subarray(start, start + n), base);
  cachedKeyLengths[slot] = n + 1;
  cachedKeys[slot] = key;
  return key;
}

function checkDepth(n: number, depth: number, perEntry: number): void {
  if (depth >= MAX_VALUE_DEPTH) {
    throw corrupt(`nested deeper than ${MAX_VALUE_DEPTH} levels (MAX_VALUE_DEPTH)`);
  }
  // Every entry takes at least a byte per item: a larger count is a lie,
  // caught before it sizes anything.
  if (n * perEntry > limit - at) throw corrupt(`truncated: ${n} entries announced`);
}

function readArray(n: number, depth: number): Value[] {
  checkDepth(n, depth, 1);
  const out: Value[] = [];
  for (let i = 0; i < n; i++) out.push(readValue(depth + 1));
  return out;
}

function readMap(n: number, depth: number): { [key: string]: Value } {
  checkDepth(n, depth, 2);
  const out: { [key: string]: Value } = {};
  for (let i = 0; i < n; i++) {
    if (at >= limit) throw corrupt("truncated: a key is missing");
    const b = src[at]!;
    let key: string;
    if (b >= 0xa0 && b < 0xc0) {
      at++;
      key = readKey(b & 0x1f);
    } else if (b === 0xd9) {
      at++;
      need(1);
      key = readString(src[at++]!);
    } else if (b === 0xda) {
      at++;
      key = readString(readU16());
    } else if (b === 0xdb) {
      at++;
      key = readString(readU32());
    } else throw corrupt(`a map key that is not a string (type byte 0x${b.toString(16)})`);
    if (Object.hasOwn(out, key)) throw corrupt(`key ${JSON.stringify(key)} appears twice`);
    const item = readValue(depth + 1);
    if (key === "__proto__") {
      // Assigning would set the prototype; the data means an own property.
      Object.defineProperty(out, key, {
        value: item,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    } else out[key] = item;
  }
  return out;
}
