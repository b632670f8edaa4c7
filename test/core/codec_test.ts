// The value codec: exact bytes for the documented examples, round trips over
// every supported kind of value, the canonical form (key order invariance,
// a checker written from docs/FORMAT.md alone, idempotence), byte-for-byte
// agreement with @msgpack/msgpack, every rejection with its path, the
// limits, and a decoder that meets damaged input with CorruptionError only.
// Negative controls show each property fails against a deliberately broken
// codec.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { compareBytes, concat } from "../_bytes.ts";
import { scalarString } from "../_unicode.ts";
import { decode as libDecode, encode as libEncode } from "@msgpack/msgpack";
import {
  decodeValue,
  decodeValueFrom,
  encodeCanonical,
  encodeValue,
  encodeValueCanonically,
  MapWriter,
  MAX_ENCODED_VALUE_BYTES,
  MAX_VALUE_DEPTH,
  type Value,
  ValueError,
} from "../../src/core/codec.ts";
import { sha256Hex } from "../../src/core/sha256.ts";
import { MAX_VALUE_BYTES } from "../../src/core/store.ts";
import { CorruptionError } from "../../src/errors.ts";

/** The negative controls' seed: each fails on the same case on every runtime, every time. */
const NEGATIVE_CONTROL_SEED = 1;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const hex = (b: Uint8Array): string => {
  let s = "";
  for (const x of b) s += HEX[x]!;
  return s;
};
const unhex = (s: string): Uint8Array => {
  const clean = s.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
};
const utf8 = new TextEncoder();

// ---------------------------------------------------------------------------
// Arbitraries

/** Units that make UTF-8 order and UTF-16 order disagree, plus zero and ASCII. */
const TRICKY_UNITS = [
  "a",
  "b",
  "z",
  "\0",
  " ",
  "_",
  "é",
  "\u07ff",
  "\u0800",
  "\ud7ff",
  "\ue000",
  "\uffff",
  "\u{10000}",
  "\u{10ffff}",
];
const NUMBERS = [
  0,
  -0,
  1,
  -1,
  127,
  128,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  -32,
  -33,
  -128,
  -129,
  -32768,
  -32769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  2 ** 53,
  -(2 ** 53),
  2 ** 63,
  2 ** 64,
  0.5,
  -1.5,
  Number.MIN_VALUE,
  Number.MAX_VALUE,
  Infinity,
  -Infinity,
  NaN,
];
const BIGINTS = [
  0n,
  1n,
  -1n,
  2n ** 31n,
  -(2n ** 31n) - 1n,
  2n ** 32n,
  2n ** 53n - 1n,
  2n ** 53n,
  -(2n ** 53n) + 1n,
  -(2n ** 53n),
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 64n - 1n,
  -(2n ** 63n),
];
const DATE_MS = [
  0,
  1,
  -1,
  999,
  1000,
  (2 ** 32 - 1) * 1000,
  2 ** 32 * 1000,
  2 ** 34 * 1000 - 1,
  2 ** 34 * 1000,
  8.64e15,
  -8.64e15,
];

interface ValueShape {
  /** Generate bigints (the library's default encode rejects them). */
  bigint: boolean;
  /** Generate -0 (the library writes it as 0). */
  negativeZero: boolean;
  /** Generate object properties holding undefined (left out on encode). */
  undefinedProps: boolean;
  /** Generate "__proto__" keys (the library's decoder refuses them). */
  protoKey: boolean;
}

const ALL: ValueShape = { bigint: true, negativeZero: true, undefinedProps: true, protoKey: true };

function valueArbitrary(shape: ValueShape): fc.Arbitrary<unknown> {
  // fc.string also produces "__proto__", "constructor" and the like on its own.
  const keys = fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: fc.constantFrom(...TRICKY_UNITS), maxLength: 3 }) },
    { weight: 2, arbitrary: scalarString({ maxLength: 12 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        ...(shape.protoKey ? ["__proto__"] : []),
        "constructor",
        "toString",
        "0",
        "1",
        "10",
        "01",
        "",
      ),
    },
  ).filter((k) => shape.protoKey || k !== "__proto__");
  const numbers = fc.oneof(
    fc.double(),
    fc.integer({ min: -70000, max: 70000 }),
    fc.maxSafeInteger(),
    fc.constantFrom(...NUMBERS),
  ).filter((n) => shape.negativeZero || !Object.is(n, -0));
  const strings = fc.oneof(
    { weight: 4, arbitrary: scalarString({ maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...TRICKY_UNITS), maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary-ascii", minLength: 250, maxLength: 300 }) },
    { weight: 1, arbitrary: scalarString({ minLength: 257, maxLength: 400 }) },
  );
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc.uint8Array({ minLength: 250, maxLength: 300 }),
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
  );
  const dates = fc.oneof(
    fc.date({ noInvalidDate: true }),
    fc.integer({ min: -8.64e15, max: 8.64e15 }).map((ms) => new Date(ms)),
    fc.constantFrom(...DATE_MS).map((ms) => new Date(ms)),
  );
  const scalars: fc.Arbitrary<unknown>[] = [
    fc.constant(null),
    fc.boolean(),
    numbers,
    strings,
    bytes,
    dates,
  ];
  if (shape.bigint) {
    scalars.push(
      fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), fc.constantFrom(...BIGINTS)),
    );
  }
  const { value, array, object } = fc.letrec<
    { value: unknown; array: unknown[]; object: unknown }
  >((tie) => ({
    value: fc.oneof(
      { depthSize: "small", maxDepth: 4 },
      ...scalars,
      tie("array"),
      tie("object"),
    ),
    array: fc.array(tie("value"), { maxLength: 20, size: "max" }),
    object: fc.dictionary(
      keys,
      shape.undefinedProps
        ? fc.oneof({ weight: 5, arbitrary: tie("value") }, {
          weight: 1,
          arbitrary: fc.constant(undefined),
        })
        : tie("value"),
      { maxKeys: 20, size: "max" },
    ),
  }));
  // Mostly containers at the top: the nesting is where codecs go wrong.
  return fc.oneof(
    { weight: 1, arbitrary: value },
    { weight: 2, arbitrary: array },
    { weight: 3, arbitrary: object },
  );
}

const values = valueArbitrary(ALL);

// ---------------------------------------------------------------------------
// Models

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
}

/** What decodeValue(encodeValue(v)) must give, from the documented normalizations. */
function expected(v: unknown): unknown {
  if (typeof v === "bigint") {
    return v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? Number(v) : v;
  }
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(expected);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) if (v[k] !== undefined) setOwn(out, k, expected(v[k]));
    return out;
  }
  return v;
}

/** The same value with every object's keys inserted in another order. */
function reorder(v: unknown, seed: number): unknown {
  if (Array.isArray(v)) return v.map((x, i) => reorder(x, seed + i));
  if (!isPlainObject(v)) return v;
  const keys = Object.keys(v);
  let s = seed | 1;
  for (let i = keys.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }
  const out: Record<string, unknown> = Object.getPrototypeOf(v) === null ? Object.create(null) : {};
  for (const k of keys) setOwn(out, k, reorder(v[k], seed * 31 + k.length));
  return out;
}

/**
 * An independent check of the canonical form, written from the rules in
 * docs/FORMAT.md ("Values") without the encoder's code: throws unless
 * `bytes` is exactly one value in canonical form.
 */
function checkCanonical(bytes: Uint8Array): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const strict = new TextDecoder("utf-8", { fatal: true });
  let p = 0;
  const fail = (why: string): never => {
    throw new Error(`not canonical at byte ${p}: ${why}`);
  };
  const take = (n: number): number => {
    if (p + n > bytes.length) fail("truncated");
    const at = p;
    p += n;
    return at;
  };
  const uint = (n: number): bigint => {
    const at = take(n);
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(bytes[at + i]!);
    return v;
  };
  const int = (n: number): bigint => {
    const u = uint(n);
    const bits = BigInt(8 * n);
    return u >= 1n << (bits - 1n) ? u - (1n << bits) : u;
  };
  const str = (n: number): Uint8Array => {
    const at = take(n);
    const s = bytes.subarray(at, at + n);
    try {
      strict.decode(s);
    } catch {
      fail("invalid UTF-8");
    }
    return s;
  };
  const key = (): Uint8Array => {
    const t = bytes[take(1)]!;
    if (t >= 0xa0 && t <= 0xbf) return str(t & 0x1f);
    if (t === 0xd9) {
      const n = Number(uint(1));
      if (n < 32) fail("str8 for a short string");
      return str(n);
    }
    if (t === 0xda) {
      const n = Number(uint(2));
      if (n < 256) fail("str16 for a short string");
      return str(n);
    }
    if (t === 0xdb) {
      const n = Number(uint(4));
      if (n < 65536) fail("str32 for a short string");
      return str(n);
    }
    return fail("map key is not a string");
  };
  const nsecOk = (nsec: bigint): void => {
    if (nsec >= 1_000_000_000n || nsec % 1_000_000n !== 0n) fail("nanoseconds not whole ms");
  };
  const item = (depth: number): void => {
    if (depth > MAX_VALUE_DEPTH) fail("too deep");
    const t = bytes[take(1)]!;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return;
    if (t >= 0x80 && t <= 0x8f) return map(t & 0x0f, depth);
    if (t >= 0x90 && t <= 0x9f) return array(t & 0x0f, depth);
    if (t >= 0xa0 && t <= 0xbf) return void str(t & 0x1f);
    switch (t) {
      case 0xcc:
        if (uint(1) < 0x80n) fail("uint8 for a fixint");
        return;
      case 0xcd:
        if (uint(2) < 0x100n) fail("uint16 for a smaller int");
        return;
      case 0xce:
        if (uint(4) < 0x10000n) fail("uint32 for a smaller int");
        return;
      case 0xcf:
        if (uint(8) < 0x100000000n) fail("uint64 for a smaller int");
        return;
      case 0xd0:
        if (int(1) >= -32n) fail("int8 for a fixint or a non-negative int");
        return;
      case 0xd1:
        if (int(2) >= -128n) fail("int16 for a smaller int");
        return;
      case 0xd2:
        if (int(4) >= -32768n) fail("int32 for a smaller int");
        return;
      case 0xd3:
        if (int(8) >= -(2n ** 31n)) fail("int64 for a smaller int");
        return;
      case 0xca:
        return fail("float32");
      case 0xcb: {
        const at = take(8);
        const f = dv.getFloat64(at);
        if (f !== f && (dv.getUint32(at) !== 0x7ff80000 || dv.getUint32(at + 4) !== 0)) {
          fail("NaN other than 7FF8000000000000");
        }
        if (Number.isSafeInteger(f) && !Object.is(f, -0)) fail("float64 for a safe integer");
        return;
      }
      case 0xc4:
        return void take(Number(uint(1)));
      case 0xc5: {
        const n = Number(uint(2));
        if (n < 0x100) fail("bin16 for short bytes");
        return void take(n);
      }
      case 0xc6: {
        const n = Number(uint(4));
        if (n < 0x10000) fail("bin32 for short bytes");
        return void take(n);
      }
      case 0xd9: {
        const n = Number(uint(1));
        if (n < 32) fail("str8 for a short string");
        return void str(n);
      }
      case 0xda: {
        const n = Number(uint(2));
        if (n < 0x100) fail("str16 for a short string");
        return void str(n);
      }
      case 0xdb: {
        const n = Number(uint(4));
        if (n < 0x10000) fail("str32 for a short string");
        return void str(n);
      }
      case 0xdc: {
        const n = Number(uint(2));
        if (n < 16) fail("array16 for a short array");
        return array(n, depth);
      }
      case 0xdd: {
        const n = Number(uint(4));
        if (n < 0x10000) fail("array32 for a short array");
        return array(n, depth);
      }
      case 0xde: {
        const n = Number(uint(2));
        if (n < 16) fail("map16 for a small map");
        return map(n, depth);
      }
      case 0xdf: {
        const n = Number(uint(4));
        if (n < 0x10000) fail("map32 for a small map");
        return map(n, depth);
      }
      case 0xd6: // timestamp 32
        if (int(1) !== -1n) fail("extension other than -1");
        uint(4);
        return;
      case 0xd7: { // timestamp 64
        if (int(1) !== -1n) fail("extension other than -1");
        const v = uint(8);
        const nsec = v >> 34n;
        const sec = v & ((1n << 34n) - 1n);
        nsecOk(nsec);
        if (nsec === 0n && sec < 2n ** 32n) fail("timestamp 64 where 32 fits");
        return;
      }
      case 0xc7: { // timestamp 96
        if (uint(1) !== 12n) fail("ext8 that is not a 12-byte timestamp");
        if (int(1) !== -1n) fail("extension other than -1");
        nsecOk(uint(4));
        const sec = int(8);
        if (sec >= 0n && sec < 2n ** 34n) fail("timestamp 96 where 64 fits");
        return;
      }
      default:
        return fail(`type byte 0x${t.toString(16)}`);
    }
  };
  const array = (n: number, depth: number): void => {
    for (let i = 0; i < n; i++) item(depth + 1);
  };
  const map = (n: number, depth: number): void => {
    let previous: Uint8Array | undefined;
    for (let i = 0; i < n; i++) {
      const k = key();
      if (previous !== undefined && compareBytes(previous, k) >= 0) fail("keys out of order");
      previous = k;
      item(depth + 1);
    }
  };
  item(0);
  if (p !== bytes.length) fail("bytes after the value");
}

// ---------------------------------------------------------------------------
// Exact bytes (the examples of docs/FORMAT.md, "Values")

const EXAMPLES: [string, unknown, string][] = [
  ["null", null, "c0"],
  ["false", false, "c2"],
  ["true", true, "c3"],
  ["0", 0, "00"],
  ["127", 127, "7f"],
  ["128", 128, "cc 80"],
  ["256", 256, "cd 0100"],
  ["65536", 65536, "ce 00010000"],
  ["2^32", 2 ** 32, "cf 0000000100000000"],
  ["-1", -1, "ff"],
  ["-32", -32, "e0"],
  ["-33", -33, "d0 df"],
  ["-129", -129, "d1 ff7f"],
  ["-32769", -32769, "d2 ffff7fff"],
  ["-(2^31) - 1", -(2 ** 31) - 1, "d3 ffffffff7fffffff"],
  ["2^53 - 1", Number.MAX_SAFE_INTEGER, "cf 001fffffffffffff"],
  ["2^53 (a float: not a safe integer)", 2 ** 53, "cb 4340000000000000"],
  ["42n", 42n, "2a"],
  ["2n^63", 2n ** 63n, "cf 8000000000000000"],
  ["-(2n^63)", -(2n ** 63n), "d3 8000000000000000"],
  ["-0", -0, "cb 8000000000000000"],
  ["1.5", 1.5, "cb 3ff8000000000000"],
  ["NaN", NaN, "cb 7ff8000000000000"],
  ["Infinity", Infinity, "cb 7ff0000000000000"],
  ['""', "", "a0"],
  ['"a"', "a", "a1 61"],
  ['"é"', "é", "a2 c3a9"],
  ['"😀"', "😀", "a4 f09f9880"],
  ["32 × 'x'", "x".repeat(32), "d9 20" + "78".repeat(32)],
  ["bytes 01 02", new Uint8Array([1, 2]), "c4 02 0102"],
  ["Date(0)", new Date(0), "d6 ff 00000000"],
  ["Date(1 ms)", new Date(1), "d7 ff 003d0900 00000000"],
  ["Date(-1 ms)", new Date(-1), "c7 0c ff 3b8b87c0 ffffffffffffffff"],
  ["[1, [true]]", [1, [true]], "92 01 91 c3"],
  ["{ b: 1, a: null }", { b: 1, a: null }, "82 a1 61 c0 a1 62 01"],
  [
    '{ "\\uffff": 1, "\\u{10000}": 2 }',
    { "\uffff": 1, "\u{10000}": 2 },
    "82 a3 efbfbf 01 a4 f0908080 02",
  ],
  ["{ a: undefined, b: 2 }", { a: undefined, b: 2 }, "81 a1 62 02"],
];

for (const [name, value, bytes] of EXAMPLES) {
  test(`encodeCanonical(${name}) is ${bytes}`, () => {
    assert.equal(hex(encodeCanonical(value)), bytes.replace(/ /g, ""));
    checkCanonical(encodeCanonical(value));
  });
}

test("the worked example of docs/FORMAT.md has the documented canonical bytes and SHA-256", () => {
  const v = {
    type: "tool_call",
    step: 3,
    args: { q: "msgpack", k: 5 },
    ok: true,
    score: 0.5,
    at: new Date(1700000000123),
    id: 2n ** 60n,
    blob: new Uint8Array([0xde, 0xad]),
    tags: ["a", "é"],
    none: null,
    "": -0,
  };
  const bytes = encodeCanonical(v);
  assert.equal(
    hex(bytes),
    "8ba0cb8000000000000000a46172677382a16b05a171a76d73677061636ba26174d7ff1d5353006553f100" +
      "a4626c6f62c402deada26964cf1000000000000000a46e6f6e65c0a26f6bc3a573636f7265cb3fe00000" +
      "00000000a47374657003a47461677392a161a2c3a9a474797065a9746f6f6c5f63616c6c",
  );
  assert.equal(bytes.length, 121);
  assert.equal(
    sha256Hex(bytes),
    "5c259585c1e50a360cf3646a2901e7c50ad4408588bafa86a33760635dcb0f01",
  );
});

test("encodeValue keeps key order and encodeCanonical sorts by UTF-8 bytes, not UTF-16 units", () => {
  const v = { b: 1, a: null, "\u{10000}": 2, "\uffff": 3 };
  assert.equal(hex(encodeValue(v)), "84a16201a161c0a4f090808002a3efbfbf03");
  assert.equal(hex(encodeCanonical(v)), "84a161c0a16201a3efbfbf03a4f090808002");
  // JavaScript's default sort (UTF-16 units) puts the astral key before U+FFFF.
  assert.deepEqual(Object.keys(v).sort(), ["a", "b", "\u{10000}", "\uffff"]);
});

test("a map of 20 keys with 10 undefined shrinks to a fixmap header", () => {
  const v: Record<string, unknown> = {};
  for (let i = 0; i < 20; i++) v[`k${String(i).padStart(2, "0")}`] = i % 2 === 0 ? i : undefined;
  for (const encode of [encodeValue, encodeCanonical]) {
    const bytes = encode(v);
    assert.equal(bytes[0], 0x8a);
    assert.deepEqual(decodeValue(bytes), expected(v));
  }
  checkCanonical(encodeCanonical(v));
});

test("containers of 16 and 65536 entries use the 16- and 32-bit headers", () => {
  const small = Array.from({ length: 16 }, (_, i) => i);
  assert.equal(hex(encodeValue(small).subarray(0, 3)), "dc0010");
  const big = new Array(65536).fill(0);
  assert.equal(hex(encodeValue(big).subarray(0, 5)), "dd00010000");
  assert.deepEqual(decodeValue(encodeValue(big)), big);
  const obj: Record<string, number> = {};
  for (let i = 0; i < 65536; i++) obj[`k${i}`] = i;
  const bytes = encodeCanonical(obj);
  assert.equal(hex(bytes.subarray(0, 5)), "df00010000");
  checkCanonical(bytes);
  assert.deepEqual(decodeValue(bytes), obj);
});

test("strings and bytes of 256 and 65536 bytes use the 16- and 32-bit headers", () => {
  for (
    const [n, head] of [[255, "d9ff"], [256, "da0100"], [65535, "daffff"], [
      65536,
      "db00010000",
    ]] as const
  ) {
    const s = "y".repeat(n);
    assert.equal(hex(encodeValue(s).subarray(0, head.length / 2)), head);
    assert.equal(decodeValue(encodeValue(s)), s);
  }
  // A long string whose worst case needs a str32 header but fits str16.
  const s = "é".repeat(30000);
  assert.equal(hex(encodeValue(s).subarray(0, 3)), "daea60");
  assert.equal(decodeValue(encodeValue(s)), s);
  for (const [n, head] of [[255, "c4ff"], [256, "c50100"], [65536, "c600010000"]] as const) {
    const b = new Uint8Array(n).fill(7);
    assert.equal(hex(encodeValue(b).subarray(0, head.length / 2)), head);
    assert.deepEqual(decodeValue(encodeValue(b)), b);
  }
});

test("every NaN encodes as 7FF8000000000000, whatever its payload", () => {
  const bits = new Uint8Array(8);
  const f = new Float64Array(bits.buffer);
  new DataView(bits.buffer).setBigUint64(0, 0xfff0000000000abcn, true);
  const odd = f[0]!;
  assert.ok(Number.isNaN(odd));
  assert.equal(hex(encodeCanonical(odd)), "cb7ff8000000000000");
  assert.equal(hex(encodeValue([odd])), "91cb7ff8000000000000");
});

// ---------------------------------------------------------------------------
// Round trips and the canonical form

test("decodeValue(encodeValue(v)) equals v after the documented normalizations", () => {
  fc.assert(
    fc.property(values, (v) => {
      assert.deepStrictEqual(decodeValue(encodeValue(v)), expected(v));
    }),
    { numRuns: 400 },
  );
});

test("encodeCanonical does not depend on the order keys were inserted in", () => {
  fc.assert(
    fc.property(values, fc.integer(), (v, seed) => {
      assert.deepEqual(encodeCanonical(reorder(v, seed)), encodeCanonical(v));
    }),
    { numRuns: 400 },
  );
});

test("canonical bytes decode to the same value as encodeValue's bytes", () => {
  fc.assert(
    fc.property(values, (v) => {
      assert.deepStrictEqual(decodeValue(encodeCanonical(v)), decodeValue(encodeValue(v)));
    }),
    { numRuns: 300 },
  );
});

test("canonical bytes pass the checker written from the spec, and re-encode to themselves", () => {
  fc.assert(
    fc.property(values, (v) => {
      const bytes = encodeCanonical(v);
      checkCanonical(bytes);
      assert.deepEqual(encodeCanonical(decodeValue(bytes)), bytes);
    }),
    { numRuns: 400 },
  );
});

test("two values have the same canonical bytes only if they decode equal", () => {
  fc.assert(
    fc.property(values, values, (a, b) => {
      const same = compareBytes(encodeCanonical(a), encodeCanonical(b)) === 0;
      let equal = true;
      try {
        assert.deepStrictEqual(expected(a), expected(b));
      } catch {
        equal = false;
      }
      assert.equal(same, equal);
    }),
    { numRuns: 300 },
  );
  // The pairs a random search rarely meets.
  const pairs: [unknown, unknown, boolean][] = [
    [5, 5n, true],
    [2 ** 53, 2n ** 53n, false],
    [0, -0, false],
    [{ a: 1, b: undefined }, { a: 1 }, true],
    [new Uint8Array([1]), Buffer.from([1]), true],
    ["a", new Uint8Array([0x61]), false],
    [new Date(5), 5, false],
  ];
  for (const [a, b, same] of pairs) {
    assert.equal(compareBytes(encodeCanonical(a), encodeCanonical(b)) === 0, same);
  }
});

// ---------------------------------------------------------------------------
// Interoperability with @msgpack/msgpack

test("encodeValue writes the same bytes as @msgpack/msgpack for values both treat alike", () => {
  const alike = valueArbitrary({
    bigint: false,
    negativeZero: false,
    undefinedProps: false,
    protoKey: true,
  });
  fc.assert(
    fc.property(alike, (v) => {
      assert.equal(hex(encodeValue(v)), hex(libEncode(v)));
    }),
    { numRuns: 400 },
  );
});

test("@msgpack/msgpack decodes what encodeValue writes", () => {
  // The library decodes every uint64/int64 as a bigint.
  const asLibrary = (v: unknown): unknown => {
    if (typeof v === "number" && Number.isSafeInteger(v) && !Object.is(v, -0)) {
      return v >= 2 ** 32 || v < -(2 ** 31) ? BigInt(v) : v;
    }
    if (Array.isArray(v)) return v.map(asLibrary);
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v)) out[k] = asLibrary(v[k]);
      return out;
    }
    return v;
  };
  fc.assert(
    fc.property(valueArbitrary({ ...ALL, protoKey: false }), (v) => {
      const decoded = libDecode(encodeValue(v), { useBigInt64: true });
      assert.deepStrictEqual(decoded, asLibrary(expected(v)));
    }),
    { numRuns: 300 },
  );
});

test("decodeValue reads what @msgpack/msgpack writes, bigints included", () => {
  fc.assert(
    fc.property(valueArbitrary({ ...ALL, negativeZero: false }), (v) => {
      const bytes = libEncode(v, { useBigInt64: true, ignoreUndefined: true });
      assert.deepStrictEqual(decodeValue(bytes), expected(v));
    }),
    { numRuns: 300 },
  );
});

test("integers in non-smallest forms and float32 decode to their values", () => {
  const cases: [string, Value][] = [
    ["d3 0000000000000007", 7],
    ["cf 0000000000000007", 7],
    ["d1 0005", 5],
    ["d0 05", 5],
    ["cf 0020000000000000", 2n ** 53n],
    ["d3 ffe0000000000000", -(2n ** 53n)],
    ["d3 ffe0000000000001", -Number.MAX_SAFE_INTEGER],
    ["ca 3fc00000", 1.5],
    ["d9 01 61", "a"],
    ["c7 04 ff 00000000", new Date(0)],
    ["d7 ff 00000004 00000000", new Date(0)], // 1 ns: sub-millisecond dropped
    ["c7 0c ff 000f4240 ffffffffffffffff", new Date(-999)],
    ["c7 0c ff 000f4241 ffffffffffffffff", new Date(-999)], // rounds down, not toward 0
  ];
  for (const [bytes, value] of cases) assert.deepStrictEqual(decodeValue(unhex(bytes)), value);
});

test("decoded bytes and strings do not alias the input", () => {
  const input = encodeValue({ b: new Uint8Array([1, 2, 3]) });
  const out = decodeValue(input) as { b: Uint8Array };
  assert.equal(out.b.byteOffset, 0);
  assert.equal(out.b.buffer.byteLength, 3);
  input.fill(0);
  assert.deepEqual(out.b, new Uint8Array([1, 2, 3]));
  // Negative control: the library's decoder returns views of the input.
  const again = encodeValue({ b: new Uint8Array([1, 2, 3]) });
  const viewed = libDecode(again) as { b: Uint8Array };
  again.fill(0);
  assert.deepEqual(viewed.b, new Uint8Array([0, 0, 0]));
});

test("many distinct short keys decode right through the key cache, collisions included", () => {
  const objects = Array.from({ length: 3000 }, (_, i) => ({ [`k${i}`]: i, [`${i}`]: -i, x: i }));
  for (let round = 0; round < 2; round++) {
    for (const o of objects) assert.deepEqual(decodeValue(encodeValue(o)), o);
  }
  // A cached key never hides invalid UTF-8 in a key of the same length.
  assert.deepEqual(decodeValue(unhex("81 a2 6869 01")), { hi: 1 });
  assert.throws(() => decodeValue(unhex("81 a2 68ff 01")), CorruptionError);
});

test('a "__proto__" key round-trips as an own property, not as the prototype', () => {
  const v = JSON.parse('{"__proto__": {"x": 1}, "y": 2}') as Record<string, unknown>;
  const out = decodeValue(encodeValue(v)) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.ok(Object.hasOwn(out, "__proto__"));
  assert.deepEqual(Object.getOwnPropertyDescriptor(out, "__proto__")?.value, { x: 1 });
  assert.equal((out as { x?: unknown }).x, undefined);
});

// ---------------------------------------------------------------------------
// Rejections

const REJECTED: [string, () => unknown, string, string][] = [
  ["a function", () => ({ steps: [1, 2, 3, { fn: () => 1 }] }), "$.steps[3].fn", "function"],
  ["a symbol", () => ({ s: Symbol("x") }), "$.s", "symbol"],
  ["undefined at the top", () => undefined, "$", "undefined"],
  ["undefined in an array", () => ({ a: [1, undefined] }), "$.a[1]", "undefined"],
  ["a sparse array hole", () => ({ a: [1, , 3] }), "$.a[1]", "hole"],
  ["a Map", () => ({ m: new Map() }), "$.m", "Map"],
  ["a Set", () => [new Set()], "$[0]", "Set"],
  ["a RegExp", () => ({ "odd key": /x/ }), '$["odd key"]', "RegExp"],
  ["an Int8Array", () => ({ t: new Int8Array(1) }), "$.t", "Int8Array"],
  ["a Uint8ClampedArray", () => ({ t: new Uint8ClampedArray(1) }), "$.t", "Uint8ClampedArray"],
  ["an ArrayBuffer", () => ({ t: new ArrayBuffer(1) }), "$.t", "ArrayBuffer"],
  ["a DataView", () => ({ t: new DataView(new ArrayBuffer(1)) }), "$.t", "DataView"],
  ["a class instance", () => ({ p: new (class Point {})() }), "$.p", "Point"],
  ["an Error", () => ({ e: new Error("x") }), "$.e", "Error"],
  ["a boxed string", () => ({ s: new String("x") }), "$.s", "String"],
  ["an Array subclass", () => ({ a: new (class Steps extends Array {})() }), "$.a", "Steps"],
  [
    "a cycle",
    () => {
      const v: { self?: unknown } = {};
      v.self = { again: [v] };
      return v;
    },
    "$.self.again[0]",
    "cycle",
  ],
  ["a lone surrogate", () => ({ s: "ok\ud800" }), "$.s", "lone surrogate"],
  [
    "a long string with a lone surrogate",
    () => ({ s: "x".repeat(300) + "\udc00" }),
    "$.s",
    "lone surrogate",
  ],
  ["a key with a lone surrogate", () => ({ "\udfff": 1 }), '$["\\udfff"]', "lone surrogate"],
  ["an invalid Date", () => ({ d: new Date(NaN) }), "$.d", "invalid Date"],
  ["an object posing as a Date", () => ({ d: Object.create(Date.prototype) }), "$.d", "Date"],
  ["a bigint past 2^64 - 1", () => ({ n: 2n ** 64n }), "$.n", "64-bit"],
  ["a bigint below -2^63", () => ({ n: -(2n ** 63n) - 1n }), "$.n", "64-bit"],
];

for (const [name, make, path, detail] of REJECTED) {
  test(`encodeValue and encodeCanonical reject ${name} with a ValueError at ${path}`, () => {
    for (const encode of [encodeValue, encodeCanonical]) {
      assert.throws(
        () => encode(make()),
        (e: unknown) => {
          assert.ok(e instanceof ValueError, String(e));
          assert.ok(e instanceof TypeError);
          assert.equal(e.name, "ValueError");
          assert.equal(e.path, path);
          assert.match(e.message, /^Cannot encode value: /);
          assert.ok(e.message.includes(detail), e.message);
          assert.ok(e.message.endsWith(` at ${path}`), e.message);
          return true;
        },
      );
    }
  });
}

test("a shared (acyclic) object encodes once per place and decodes as copies", () => {
  const shared = { x: 1 };
  const out = decodeValue(encodeValue({ a: shared, b: [shared, shared] })) as Value;
  assert.deepEqual(out, { a: { x: 1 }, b: [{ x: 1 }, { x: 1 }] });
});

test(`nesting of ${MAX_VALUE_DEPTH} levels encodes and one more throws RangeError`, () => {
  let v: unknown = "leaf";
  for (let i = 0; i < MAX_VALUE_DEPTH; i++) v = i % 2 === 0 ? [v] : { k: v };
  assert.deepEqual(decodeValue(encodeValue(v)), v);
  assert.throws(() => encodeValue([v]), (e: unknown) => {
    assert.ok(e instanceof RangeError);
    assert.match(e.message, /^Cannot encode value: nested deeper than 64 levels/);
    return true;
  });
});

test("a 10,000-deep nesting throws RangeError, not a stack overflow", () => {
  let v: unknown = 0;
  for (let i = 0; i < 10000; i++) v = [v];
  assert.throws(() => encodeValue(v), RangeError);
  assert.throws(() => encodeCanonical(v), RangeError);
});

test("an encoding of exactly MAX_ENCODED_VALUE_BYTES fits and one byte more throws RangeError", () => {
  assert.equal(MAX_ENCODED_VALUE_BYTES, MAX_VALUE_BYTES - 65536);
  const fits = new Uint8Array(MAX_ENCODED_VALUE_BYTES - 5);
  assert.equal(encodeValue(fits).length, MAX_ENCODED_VALUE_BYTES);
  assert.throws(() => encodeValue(new Uint8Array(MAX_ENCODED_VALUE_BYTES - 4)), RangeError);
  const text = "t".repeat(MAX_ENCODED_VALUE_BYTES - 5);
  assert.equal(encodeValue(text).length, MAX_ENCODED_VALUE_BYTES);
  assert.throws(() => encodeValue(text + "t"), RangeError);
  // Many small parts: the error names the part where the limit was crossed.
  const parts = Array.from({ length: 40 }, () => new Uint8Array(1 << 19));
  assert.throws(() => encodeValue({ parts }), (e: unknown) => {
    assert.ok(e instanceof RangeError);
    assert.match(
      e.message,
      /more than the limit of 16711680 \(MAX_ENCODED_VALUE_BYTES\), at \$\.parts\[31\]$/,
    );
    return true;
  });
  // The encoder is still usable and keeps no oversized buffer.
  assert.deepEqual(decodeValue(encodeValue({ ok: 1 })), { ok: 1 });
});

test("a getter that encodes while being encoded gets its own encoder", () => {
  const v = {
    get inner(): Value {
      return decodeValue(encodeValue({ nested: [1, 2] }));
    },
    after: "x",
  };
  assert.deepEqual(decodeValue(encodeValue(v)), { inner: { nested: [1, 2] }, after: "x" });
  assert.deepEqual(decodeValue(encodeCanonical(v)), { inner: { nested: [1, 2] }, after: "x" });
});

test("an encoder that threw is clean for the next value", () => {
  assert.throws(() => encodeValue({ a: [1, 2, { b: () => 0 }] }), ValueError);
  assert.equal(hex(encodeValue({ a: 1 })), "81a16101");
});

// ---------------------------------------------------------------------------
// The decoder against damaged input

const CORRUPT: [string, string, RegExp][] = [
  ["an empty input", "", /truncated/],
  ["trailing bytes", "c0 c0", /1 bytes follow the value/],
  ["the never-used type byte 0xc1", "c1", /0xc1/],
  ["a truncated uint32", "ce 0000", /truncated/],
  ["a truncated string", "a3 6162", /truncated/],
  ["an array announcing more items than bytes", "dd ffffffff 00", /truncated: 4294967295/],
  ["a map announcing more entries than bytes", "df ffffffff", /truncated/],
  ["a bin announcing more bytes than there are", "c6 7fffffff 00", /truncated/],
  ["an integer map key", "81 01 02", /map key that is not a string/],
  ["a duplicate map key", "82 a161 01 a161 02", /"a" appears twice/],
  ["an extension of type 5", "d4 05 00", /extension type 5/],
  ["a timestamp of 2 bytes", "d5 ff 0000", /timestamp of 2 bytes/],
  ["a timestamp with nanoseconds past 10^9", "c7 0c ff 3b9aca00 0000000000000000", /nanoseconds/],
  [
    "a timestamp past the Date range",
    "c7 0c ff 00000000 7fffffffffffffff",
    /outside the range of Date/,
  ],
  ["an overlong UTF-8 sequence", "a2 c0af", /not valid UTF-8/],
  ["a UTF-8 surrogate", "a3 eda080", /not valid UTF-8/],
  ["a code point past U+10FFFF", "a4 f4908080", /not valid UTF-8/],
  ["a lone continuation byte", "a1 80", /not valid UTF-8/],
  ["a cut multi-byte sequence", "a2 61e2", /not valid UTF-8/],
  ["invalid UTF-8 in a long string", "d9 48" + "61".repeat(71) + "ff", /not valid UTF-8/],
  // Past every runtime's JS-loop length: TextDecoder's check on all three.
  ["invalid UTF-8 in a 200-byte string", "d9 c8" + "61".repeat(199) + "ff", /not valid UTF-8/],
  ["a surrogate in a 200-byte string", "d9 c8" + "61".repeat(197) + "eda080", /not valid UTF-8/],
];

for (const [name, bytes, message] of CORRUPT) {
  test(`decodeValue throws CorruptionError for ${name}`, () => {
    assert.throws(() => decodeValue(unhex(bytes)), (e: unknown) => {
      assert.ok(e instanceof CorruptionError, String(e));
      assert.match(e.message, /^Cannot decode value: /);
      assert.match(e.message, message);
      assert.match(e.where, /^value byte \d+$/);
      return true;
    });
  });
}

test("long strings holding U+FFFD or a leading U+FEFF decode as written", () => {
  // 200 bytes and more: TextDecoder's path on every runtime (on Deno the
  // replacing decoder first, then the strict one when it meets a U+FFFD).
  const pad = "a".repeat(200);
  for (
    const s of [
      `\uFFFD${pad}`,
      `${pad}\uFFFD`,
      `\uFEFF${pad}`,
      `\uFEFF\uFFFD${pad}\u00e9\u{1F600}`,
    ]
  ) {
    assert.equal(decodeValue(encodeValue(s)), s);
    assert.deepEqual(decodeValue(encodeValue({ k: s, list: [s, 1] })), { k: s, list: [s, 1] });
  }
  // The bytes of a real U+FFFD (ef bf bd) next to invalid ones are still refused.
  assert.throws(
    () => decodeValue(unhex("d9 c8" + "efbfbd" + "61".repeat(196) + "ff")),
    CorruptionError,
  );
});

test(`decodeValue rejects nesting past ${MAX_VALUE_DEPTH} levels without deep recursion`, () => {
  const ok = new Uint8Array(MAX_VALUE_DEPTH + 1).fill(0x91);
  ok[MAX_VALUE_DEPTH] = 0xc0;
  assert.ok(Array.isArray(decodeValue(ok)));
  const deep = new Uint8Array(100000).fill(0x91);
  assert.throws(() => decodeValue(deep), /nested deeper than 64 levels/);
});

test("decodeValue rejects a non-Uint8Array with TypeError", () => {
  assert.throws(() => decodeValue("c0" as unknown as Uint8Array), TypeError);
  assert.throws(() => decodeValue(new ArrayBuffer(1) as unknown as Uint8Array), TypeError);
});

test("every truncation of a valid encoding throws CorruptionError", () => {
  fc.assert(
    fc.property(values, fc.nat(), (v, n) => {
      const bytes = encodeValue(v);
      const cut = n % bytes.length;
      assert.throws(() => decodeValue(bytes.subarray(0, cut)), CorruptionError);
    }),
    { numRuns: 300 },
  );
});

test("random and mutated bytes decode or throw CorruptionError, nothing else", () => {
  const check = (bytes: Uint8Array): void => {
    try {
      decodeValue(bytes);
    } catch (e) {
      if (!(e instanceof CorruptionError)) throw e;
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), check), { numRuns: 2000 });
  fc.assert(
    fc.property(values, fc.nat(), fc.integer({ min: 0, max: 255 }), (v, i, x) => {
      const bytes = encodeValue(v);
      bytes[i % bytes.length] = x;
      check(bytes);
    }),
    { numRuns: 1000 },
  );
});

// ---------------------------------------------------------------------------
// Negative controls: each property above fails against a broken codec.

/**
 * Canonical-looking encoders, each with one fault, assembled from the real
 * encoder's parts: maps are written here with their keys in `order`.
 */
function withKeyOrder(order: (keys: string[]) => string[]): (v: unknown) => Uint8Array {
  const encode = (v: unknown): Uint8Array => {
    if (Array.isArray(v)) return concat(header(0x90, 0xdc, v.length), ...v.map(encode));
    if (!isPlainObject(v)) return encodeCanonical(v);
    const keys = order(Object.keys(v).filter((k) => v[k] !== undefined));
    const parts: Uint8Array[] = [];
    for (const k of keys) parts.push(encodeCanonical(k), encode(v[k]));
    return concat(header(0x80, 0xde, keys.length), ...parts);
  };
  return encode;
}
/** An array or map header for up to 65535 entries. */
function header(fix: number, code16: number, n: number): Uint8Array {
  return n < 16 ? new Uint8Array([fix | n]) : new Uint8Array([code16, n >> 8, n & 0xff]);
}
test("negative control: the assembled encoder is faithful when its key order is right", () => {
  const sorted = withKeyOrder((keys) =>
    keys.sort((a, b) => compareBytes(utf8.encode(a), utf8.encode(b)))
  );
  fc.assert(fc.property(values, (v) => assert.deepEqual(sorted(v), encodeCanonical(v))), {
    numRuns: 200,
  });
});

test("negative control: key-order invariance catches an encoder that keeps insertion order", () => {
  const result = fc.check(
    fc.property(values, fc.integer(), (v, seed) => {
      assert.deepEqual(encodeValue(reorder(v, seed)), encodeValue(v));
    }),
    { numRuns: 400, seed: 42 },
  );
  assert.equal(result.failed, true, "the insertion-order encoder passed");
});

test("negative control: the spec checker catches keys sorted by UTF-16 units", () => {
  const utf16 = withKeyOrder((keys) => keys.sort());
  const result = fc.check(
    fc.property(values, (v) => checkCanonical(utf16(v))),
    { numRuns: 1000, seed: 42 },
  );
  assert.equal(result.failed, true, "the UTF-16 order passed the checker");
});

test("negative control: the spec checker catches integers written as floats, -0 as 0 and float32", () => {
  const asFloats = fc.check(
    fc.property(
      values,
      (v) => checkCanonical(libEncode(v, { forceIntegerToFloat: true, useBigInt64: true })),
    ),
    { numRuns: 200, seed: 42 },
  );
  assert.equal(asFloats.failed, true);
  assert.throws(() => checkCanonical(unhex("cb 0000000000000000")), /float64 for a safe integer/);
  assert.throws(() => checkCanonical(unhex("ca 3fc00000")), /float32/);
  assert.throws(() => checkCanonical(unhex("cb fff8000000000000")), /NaN/);
  assert.throws(() => checkCanonical(unhex("d0 05")), /int8/);
  assert.throws(
    () => checkCanonical(unhex("d7 ff 00000000 00000001")),
    /timestamp 64 where 32 fits/,
  );
});

test("negative control: the round trip catches @msgpack/msgpack's defaults (int64 as imprecise numbers)", () => {
  const result = fc.check(
    fc.property(valueArbitrary({ ...ALL, protoKey: false }), (v) => {
      assert.deepStrictEqual(libDecode(encodeValue(v)), expected(v));
    }),
    { numRuns: 400, seed: 42 },
  );
  assert.equal(result.failed, true, "the library's default decoder passed the round trip");
});

test("negative control: the round trip catches an encoder that writes -0 as 0", () => {
  const result = fc.check(
    fc.property(values, (v) => {
      const bytes = libEncode(v, { useBigInt64: true, ignoreUndefined: true });
      assert.deepStrictEqual(decodeValue(bytes), expected(v));
    }),
    { numRuns: 1000, seed: 42 },
  );
  assert.equal(result.failed, true, "the -0-dropping encoder passed the round trip");
});

// ---------------------------------------------------------------------------
// encodeValueCanonically and MapWriter: fast paths the event log takes. Each
// must give exactly the bytes of the generic encoders.

/** encodeValueCanonically's contract; `trust` replaces its flag (for the negative control). */
function canonicalFlagHolds(v: unknown, trust?: boolean): void {
  const { bytes, canonical } = encodeValueCanonically(v);
  assert.deepEqual(bytes, encodeValue(v));
  if (trust ?? canonical) assert.deepEqual(bytes, encodeCanonical(v));
}

test("encodeValueCanonically gives encodeValue's bytes, flagged canonical only when they are", () => {
  let flagged = 0;
  let unflagged = 0;
  fc.assert(
    fc.property(values, (v) => {
      canonicalFlagHolds(v);
      if (encodeValueCanonically(v).canonical) flagged++;
      else unflagged++;
    }),
    { numRuns: 400 },
  );
  assert.ok(flagged > 20 && unflagged > 20, `flagged ${flagged}, unflagged ${unflagged}`);
});

test("negative control: a flag that always claims canonical bytes is caught", () => {
  const result = fc.check(fc.property(values, (v) => canonicalFlagHolds(v, true)), {
    seed: NEGATIVE_CONTROL_SEED,
    numRuns: 400,
    endOnFailure: true,
  });
  assert.ok(result.failed, "the property cannot tell canonical bytes from others");
});

test("MapWriter writes the bytes encodeValue writes for the same map", () => {
  const ints = fc.oneof(
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
    fc.maxSafeInteger(),
    fc.maxSafeNat(),
    fc.constantFrom(0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -32, -33),
  );
  const field = fc.oneof(
    fc.record({ kind: fc.constant("int" as const), v: ints }),
    fc.record({
      kind: fc.constant("str" as const),
      v: fc.string({ unit: "grapheme", maxLength: 300 }),
    }),
    fc.record({ kind: fc.constant("bytes" as const), v: fc.uint8Array({ maxLength: 300 }) }),
    fc.record({ kind: fc.constant("hex" as const), v: fc.uint8Array({ maxLength: 140 }) }),
    fc.record({ kind: fc.constant("raw" as const), v: values }),
  );
  const w = new MapWriter();
  fc.assert(
    fc.property(
      // "k"-prefixed: integer-like keys would move to the front of a JS object.
      fc.uniqueArray(fc.tuple(fc.string({ maxLength: 20 }).map((k) => `k${k}`), field), {
        selector: ([k]) => k,
        maxLength: 20,
      }),
      (fields) => {
        const o: Record<string, unknown> = {};
        w.begin(fields.length);
        for (const [k, f] of fields) {
          w.key(k);
          if (f.kind === "int") w.int(f.v);
          else if (f.kind === "str") w.str(f.v);
          else if (f.kind === "bytes") w.bytes(f.v);
          else if (f.kind === "hex") w.hex(f.v);
          else w.raw(encodeValue(f.v));
          o[k] = f.kind === "hex"
            ? Array.from(f.v, (b) => b.toString(16).padStart(2, "0")).join("")
            : f.v;
        }
        const view = w.view().slice();
        const bytes = w.finish();
        assert.deepEqual(bytes, view);
        // Raw fields hold values whose undefined properties are left out, as encodeValue does.
        assert.deepEqual(bytes, encodeValue(o));
      },
    ),
    { numRuns: 300 },
  );
});

test("decodeValueFrom decodes exactly bytes[start, end) and never reads past end", () => {
  fc.assert(
    fc.property(
      values,
      fc.uint8Array({ maxLength: 8 }),
      fc.uint8Array({ maxLength: 8 }),
      (v, before, after) => {
        const enc = encodeValue(v);
        const bytes = new Uint8Array([...before, ...enc, ...after]);
        const end = before.length + enc.length;
        assert.deepStrictEqual(decodeValueFrom(bytes, before.length, end), expected(v));
        // One byte short of the value: truncated, whatever follows in `bytes`.
        if (enc.length > 0) {
          assert.throws(() => decodeValueFrom(bytes, before.length, end - 1), CorruptionError);
        }
      },
    ),
    { numRuns: 300 },
  );
  assert.throws(() => decodeValueFrom(new Uint8Array(4), 3, 2), RangeError);
  assert.throws(() => decodeValueFrom(new Uint8Array(4), 0, 5), RangeError);
});
