// The key tuple layer: exact bytes for the documented examples; for random
// tuples, byte order equals tuple order, decoding inverts encoding, and a
// tuple's key is a prefix of its extensions' keys; prefix scans cover
// exactly the keys that start with the prefix; limits and malformed keys.
// Negative controls run the same properties against broken encoders
// (little-endian integers, unescaped zeros, missing or one-byte
// terminators) and show that they fail.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { scalarString } from "../_unicode.ts";
import {
  compareKeys,
  KeyReader,
  KeyWriter,
  MAX_USER_KEY_BYTES,
  prefixEnd,
} from "../../src/core/keys.ts";
import { MAX_KEY_BYTES } from "../../src/core/store.ts";
import { CorruptionError } from "../../src/errors.ts";

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const hex = (b: Uint8Array): string => {
  let s = "";
  for (const x of b) s += HEX[x]!;
  return s;
};
const bytesOf = (...xs: number[]): Uint8Array => new Uint8Array(xs);

// ---------------------------------------------------------------------------
// Tuples and their model order

type Element =
  | { kind: "u8"; value: number }
  | { kind: "u32"; value: number }
  | { kind: "u64"; value: bigint }
  | { kind: "bytes"; value: Uint8Array }
  | { kind: "string"; value: string };
type Kind = Element["kind"];
type Tuple = Element[];

const KINDS: Kind[] = ["u8", "u32", "u64", "bytes", "string"];
const STRING_UNITS = ["\0", "\x01", "a", "b", "\x7f", "é", "\uffff", "\u{10000}", "\u{10ffff}"];

function elementOf(kind: Kind): fc.Arbitrary<Element> {
  switch (kind) {
    case "u8":
      return fc.oneof(
        fc.constantFrom(0, 1, 0x7f, 0x80, 0xfe, 0xff),
        fc.integer({ min: 0, max: 255 }),
      )
        .map((value) => ({ kind, value }));
    case "u32":
      return fc.oneof(
        fc.constantFrom(0, 1, 0xff, 0x100, 0x01000000, 0xffffffff),
        fc.integer({ min: 0, max: 0xffffffff }),
      ).map((value) => ({ kind, value }));
    case "u64":
      return fc.oneof(
        fc.constantFrom(
          0n,
          1n,
          0xffn,
          0x100n,
          2n ** 32n,
          2n ** 53n - 1n,
          2n ** 53n,
          2n ** 64n - 1n,
        ),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      ).map((value) => ({ kind, value }));
    case "bytes":
      return fc.oneof(
        fc.array(fc.constantFrom(0, 1, 0x7f, 0x80, 0xff), { maxLength: 6 }).map((a) =>
          new Uint8Array(a)
        ),
        fc.uint8Array({ maxLength: 40 }),
      ).map((value) => ({ kind, value }));
    case "string":
      return fc.oneof(
        fc.string({ unit: fc.constantFrom(...STRING_UNITS), maxLength: 6 }),
        scalarString({ maxLength: 30 }),
      ).map((value) => ({ kind, value }));
  }
}

const layouts = fc.array(fc.constantFrom(...KINDS), { minLength: 1, maxLength: 6, size: "max" });
const tupleOf = (layout: Kind[]): fc.Arbitrary<Tuple> => fc.tuple(...layout.map(elementOf));
const tuples = layouts.chain(tupleOf);

/**
 * An element near `a`, so that pairs tie often and order is decided late:
 * `c` itself, `a` extended by `c`, by a zero and `c`, cut short, or one off.
 */
function near(a: Element, c: Element, mode: number): Element {
  if (mode === 0) return c;
  switch (a.kind) {
    case "string": {
      const other = c.value as string;
      const cut = Array.from(a.value).slice(0, -1).join("");
      const value = [a.value + other, a.value + "\0" + other, cut, cut][mode - 1]!;
      return { kind: a.kind, value };
    }
    case "bytes": {
      const other = c.value as Uint8Array;
      const value = [
        new Uint8Array([...a.value, ...other]),
        new Uint8Array([...a.value, 0, ...other]),
        a.value.slice(0, -1),
        a.value.slice(0, -1),
      ][mode - 1]!;
      return { kind: a.kind, value };
    }
    case "u64": {
      const value = a.value + (mode % 2 === 0 ? 1n : -1n);
      return { kind: a.kind, value: value < 0n || value >= 2n ** 64n ? a.value : value };
    }
    default: {
      const max = a.kind === "u8" ? 0xff : 0xffffffff;
      const value = a.value + (mode % 2 === 0 ? 1 : -1);
      return { kind: a.kind, value: value < 0 || value > max ? a.value : value };
    }
  }
}

/** Two tuples of one layout that share a random number of leading elements. */
const pairs: fc.Arbitrary<[Tuple, Tuple]> = layouts.chain((layout) =>
  fc.tuple(tupleOf(layout), tupleOf(layout), fc.nat(layout.length), fc.nat(4)).map((
    [a, c, k, mode],
  ): [Tuple, Tuple] => {
    if (k === layout.length) return [a, a];
    return [a, [...a.slice(0, k), near(a[k]!, c[k]!, mode), ...c.slice(k + 1)]];
  })
);

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

function compareSeq(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const codePoints = (s: string): number[] => Array.from(s, (c) => c.codePointAt(0)!);

/** The order tuples are meant to have: element by element, a prefix first. */
function compareTuples(a: Tuple, b: Tuple): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    assert.equal(x.kind, y.kind, "tuples of one layout");
    let c: number;
    if (x.kind === "u64") {
      const yv = y.value as bigint;
      c = x.value < yv ? -1 : x.value > yv ? 1 : 0;
    } else if (x.kind === "bytes") c = compareSeq(x.value, y.value as Uint8Array);
    else if (x.kind === "string") {
      c = compareSeq(codePoints(x.value), codePoints(y.value as string));
    } else c = x.value - (y.value as number);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

function writeElement(w: KeyWriter, e: Element): void {
  switch (e.kind) {
    case "u8":
      w.u8(e.value);
      break;
    case "u32":
      w.u32(e.value);
      break;
    case "u64":
      // Both argument types: numbers where they are safe and even.
      if (e.value <= BigInt(Number.MAX_SAFE_INTEGER) && e.value % 2n === 0n) w.u64(Number(e.value));
      else w.u64(e.value);
      break;
    case "bytes":
      w.bytes(e.value);
      break;
    case "string":
      w.string(e.value);
      break;
  }
}

const writer = new KeyWriter();
function encode(t: Tuple): Uint8Array {
  for (const e of t) writeElement(writer, e);
  return writer.finish();
}

function decode(layout: Kind[], key: Uint8Array): Tuple {
  const r = new KeyReader(key);
  const out: Tuple = [];
  for (const kind of layout) {
    switch (kind) {
      case "u8":
        out.push({ kind, value: r.u8() });
        break;
      case "u32":
        out.push({ kind, value: r.u32() });
        break;
      case "u64": {
        const at = r.offset;
        const value = r.u64BigInt();
        if (value <= BigInt(Number.MAX_SAFE_INTEGER)) {
          const again = new KeyReader(key.subarray(at));
          assert.equal(again.u64(), Number(value));
        }
        out.push({ kind, value });
        break;
      }
      case "bytes":
        out.push({ kind, value: r.bytes() });
        break;
      case "string":
        out.push({ kind, value: r.string() });
        break;
    }
  }
  assert.ok(r.done, "bytes left after the last element");
  return out;
}

// The properties, parameterized by the encoder and decoder under test so that
// the negative controls can run them against broken ones.
type Encode = (t: Tuple) => Uint8Array;
type Decode = (layout: Kind[], key: Uint8Array) => Tuple;

const orderProperty = (enc: Encode) =>
  fc.property(pairs, ([a, b]) => {
    assert.equal(sign(compareKeys(enc(a), enc(b))), sign(compareTuples(a, b)));
  });

const roundTripProperty = (enc: Encode, dec: Decode) =>
  fc.property(tuples, (t) => {
    assert.deepStrictEqual(dec(t.map((e) => e.kind), enc(t)), t);
  });

const prefixProperty = (enc: Encode) =>
  fc.property(tuples, tuples, (t, more) => {
    const short = enc(t);
    const long = enc([...t, ...more]);
    assert.deepEqual(long.subarray(0, short.length), short);
  });

// ---------------------------------------------------------------------------
// Exact bytes (the examples of docs/FORMAT.md, "Keys")

const EXAMPLES: [string, (w: KeyWriter) => KeyWriter, string][] = [
  ["u8(0x01)", (w) => w.u8(1), "01"],
  ["u32(7)", (w) => w.u32(7), "00000007"],
  ["u32(2^32 - 1)", (w) => w.u32(0xffffffff), "ffffffff"],
  ["u64(2^32 + 1)", (w) => w.u64(2 ** 32 + 1), "0000000100000001"],
  ["u64(2n^64n - 1n)", (w) => w.u64(2n ** 64n - 1n), "ffffffffffffffff"],
  ['string("")', (w) => w.string(""), "0000"],
  ['string("a")', (w) => w.string("a"), "610000"],
  ['string("a\\0b")', (w) => w.string("a\0b"), "6100ff620000"],
  ['string("é")', (w) => w.string("é"), "c3a90000"],
  ['string("😀")', (w) => w.string("😀"), "f09f98800000"],
  ["bytes(00 ff)", (w) => w.bytes(bytesOf(0, 0xff)), "00ffff0000"],
  ['stringPrefix("a\\0")', (w) => w.stringPrefix("a\0"), "6100ff"],
  [
    'a KV key: u32(7) u8(0x01) string("notes/today")',
    (w) => w.u32(7).u8(1).string("notes/today"),
    "00000007016e6f7465732f746f6461790000",
  ],
  [
    "an event key: u32(7) u8(0x02) u64(42)",
    (w) => w.u32(7).u8(2).u64(42),
    "0000000702000000000000002a",
  ],
];

for (const [name, build, bytes] of EXAMPLES) {
  test(`KeyWriter ${name} is ${bytes}`, () => {
    assert.equal(hex(build(new KeyWriter()).finish()), bytes);
  });
}

test("strings order: end < embedded zero < other bytes, shorter before longer", () => {
  const keys = ["a", "a\0", "a\0\0", "a\0b", "a\x01", "ab", "b", "é", "\uffff", "\u{10000}"]
    .map((s) => new KeyWriter().string(s).u8(0xff).finish());
  for (let i = 1; i < keys.length; i++) {
    assert.ok(compareKeys(keys[i - 1]!, keys[i]!) < 0, `at ${i}`);
  }
});

// ---------------------------------------------------------------------------
// Properties

test("byte order of encoded keys equals the order of the tuples", () => {
  fc.assert(orderProperty(encode), { numRuns: 3000 });
});

test("decoding a key gives back its tuple", () => {
  fc.assert(roundTripProperty(encode, decode), { numRuns: 2000 });
});

test("a tuple's key is a prefix of the key of every extension of it", () => {
  fc.assert(prefixProperty(encode), { numRuns: 1000 });
});

test("a stringPrefix scan holds exactly the keys whose string starts with the prefix", () => {
  const strings = fc.oneof(
    fc.string({ unit: fc.constantFrom(...STRING_UNITS), maxLength: 5 }),
    scalarString({ maxLength: 8 }),
  );
  fc.assert(
    fc.property(fc.nat(), strings, strings, fc.nat(), (run, p, s, tail) => {
      const w = new KeyWriter();
      const gte = w.u32(run >>> 0).u8(1).stringPrefix(p).finish();
      const lt = prefixEnd(gte);
      const key = w.u32(run >>> 0).u8(1).string(s).u32(tail >>> 0).finish();
      const inside = compareKeys(gte, key) <= 0 && (lt === undefined || compareKeys(key, lt) < 0);
      assert.equal(inside, s.startsWith(p));
    }),
    { numRuns: 3000 },
  );
});

test("a bytesPrefix scan holds exactly the keys whose bytes start with the prefix", () => {
  const small = fc.array(fc.constantFrom(0, 1, 0xfe, 0xff), { maxLength: 5 }).map((a) =>
    new Uint8Array(a)
  );
  fc.assert(
    fc.property(small, small, (p, b) => {
      const w = new KeyWriter();
      const gte = w.u8(9).bytesPrefix(p).finish();
      const lt = prefixEnd(gte);
      const key = w.u8(9).bytes(b).u8(0xff).finish();
      const inside = compareKeys(gte, key) <= 0 && (lt === undefined || compareKeys(key, lt) < 0);
      const starts = p.length <= b.length && p.every((x, i) => b[i] === x);
      assert.equal(inside, starts);
    }),
    { numRuns: 3000 },
  );
});

test("prefixEnd bounds exactly the keys that start with the prefix", () => {
  const small = fc.array(fc.constantFrom(0, 1, 0xfe, 0xff), { maxLength: 5 }).map((a) =>
    new Uint8Array(a)
  );
  fc.assert(
    fc.property(small, small, (p, k) => {
      const end = prefixEnd(p);
      const starts = p.length <= k.length && p.every((x, i) => k[i] === x);
      const inside = compareKeys(p, k) <= 0 && (end === undefined || compareKeys(k, end) < 0);
      assert.equal(inside, starts);
      if (end !== undefined) {
        assert.ok(compareKeys(p, end) < 0);
        assert.ok(!(p.length <= end.length && p.every((x, i) => end[i] === x)));
      } else assert.ok(p.every((x) => x === 0xff));
    }),
    { numRuns: 3000 },
  );
  assert.deepEqual(prefixEnd(bytesOf(1, 0xff, 0xff)), bytesOf(2));
  assert.equal(prefixEnd(new Uint8Array(0)), undefined);
  const p = bytesOf(5);
  prefixEnd(p);
  assert.deepEqual(p, bytesOf(5), "prefixEnd changed its argument");
});

// ---------------------------------------------------------------------------
// Limits and errors

const tooLong = (e: unknown): boolean => {
  assert.ok(e instanceof RangeError, String(e));
  assert.match(e.message, /^Cannot build key: /);
  return true;
};

test(`a string element of ${MAX_USER_KEY_BYTES} UTF-8 bytes fits and one byte more throws RangeError`, () => {
  const w = new KeyWriter();
  assert.equal(w.string("x".repeat(MAX_USER_KEY_BYTES)).finish().length, MAX_USER_KEY_BYTES + 2);
  assert.throws(() => w.string("x".repeat(MAX_USER_KEY_BYTES + 1)), tooLong);
  assert.throws(() => w.string("€".repeat(342)), /1026 bytes is longer than MAX_USER_KEY_BYTES/);
  assert.equal(w.string("€".repeat(341) + "x").finish().length, 1026);
  assert.throws(() => w.bytes(new Uint8Array(MAX_USER_KEY_BYTES + 1)), tooLong);
  // The worst case escapes to 2 × 1024 + 2 bytes.
  assert.equal(
    w.string("\0".repeat(MAX_USER_KEY_BYTES)).finish().length,
    2 * MAX_USER_KEY_BYTES + 2,
  );
  assert.equal(
    w.bytes(new Uint8Array(MAX_USER_KEY_BYTES)).finish().length,
    2 * MAX_USER_KEY_BYTES + 2,
  );
});

test("a worst-case user key always fits beside a run number, tags and integers", () => {
  const w = new KeyWriter();
  const key = w.u32(0xffffffff).u8(1).u8(2).u64(2n ** 64n - 1n).u64(0).bytes(
    new Uint8Array(MAX_USER_KEY_BYTES),
  )
    .finish();
  assert.equal(key.length, 4 + 1 + 1 + 8 + 8 + 2 * MAX_USER_KEY_BYTES + 2);
  assert.ok(key.length <= MAX_KEY_BYTES);
});

test(`a key of exactly ${MAX_KEY_BYTES} bytes is built and one byte more throws RangeError, leaving the writer empty`, () => {
  const w = new KeyWriter();
  for (let i = 0; i < MAX_KEY_BYTES; i++) w.u8(i & 0xff);
  assert.equal(w.length, MAX_KEY_BYTES);
  assert.throws(() => w.u8(0), /would be 4097 bytes, more than MAX_KEY_BYTES \(4096\)/);
  assert.equal(w.length, 0);
  w.u32(1).string("\0".repeat(MAX_USER_KEY_BYTES));
  assert.throws(() => w.string("\0".repeat(MAX_USER_KEY_BYTES)), tooLong);
  assert.equal(w.length, 0);
  for (let i = 0; i < MAX_KEY_BYTES - 8; i++) w.u8(0);
  assert.throws(() => w.u64(1).u8(1), tooLong);
  assert.equal(hex(w.u8(3).finish()), "03");
});

test("out-of-range integers throw RangeError and wrong types TypeError", () => {
  const w = new KeyWriter();
  for (const bad of [() => w.u8(256), () => w.u8(-1), () => w.u8(1.5), () => w.u8(NaN)]) {
    assert.throws(bad, RangeError);
  }
  for (const bad of [() => w.u32(2 ** 32), () => w.u32(-1), () => w.u32(Infinity)]) {
    assert.throws(bad, RangeError);
  }
  for (
    const bad of [() => w.u64(2 ** 53), () => w.u64(-1), () => w.u64(-1n), () => w.u64(2n ** 64n)]
  ) {
    assert.throws(bad, RangeError);
  }
  const loose = w as unknown as Record<string, (x: unknown) => unknown>;
  for (
    const [method, arg] of [["u8", "1"], ["u32", null], ["u64", "5"], ["bytes", "x"], ["bytes", [
      1,
    ]], ["string", 5]] as const
  ) {
    assert.throws(() => loose[method]!.call(w, arg), TypeError, `${method}(${String(arg)})`);
  }
  assert.throws(() => new KeyReader("x" as unknown as Uint8Array), TypeError);
  assert.throws(() => prefixEnd([1] as unknown as Uint8Array), TypeError);
  assert.equal(w.length, 0);
});

test("a string with a lone surrogate throws TypeError: it has no UTF-8 form", () => {
  const w = new KeyWriter();
  for (const s of ["\ud800", "a\udc00", "\ud800a", "\udbff\udbff", "x\ud83d"]) {
    assert.throws(() => w.string(s), /lone surrogate/);
    assert.equal(w.length, 0);
  }
});

test("view() returns the key without copying, valid until the next write", () => {
  const w = new KeyWriter();
  const v = w.u32(0x01020304).view();
  assert.equal(hex(v), "01020304");
  w.u32(0x0a0b0c0d);
  assert.equal(hex(v), "0a0b0c0d");
  assert.equal(hex(w.finish()), "0a0b0c0d");
});

test("copyTo() copies the key and empties the writer; with no room it throws RangeError and copies nothing", () => {
  const w = new KeyWriter();
  const target = new Uint8Array(6);
  assert.equal(w.u32(7).u8(1).copyTo(target, 1), 5);
  assert.equal(hex(target), "000000000701");
  assert.equal(w.length, 0);
  for (const at of [2, -1, 7]) {
    w.u32(9).u8(2);
    assert.throws(() => w.copyTo(target, at), RangeError);
    assert.equal(w.length, 0);
    assert.equal(hex(target), "000000000701");
  }
  assert.equal(hex(w.u8(3).finish()), "03");
});

const MALFORMED: [string, Uint8Array, (r: KeyReader) => unknown, RegExp][] = [
  ["a truncated u32", bytesOf(0, 0, 1), (r) => r.u32(), /truncated u32/],
  ["a truncated u64", bytesOf(0, 0, 0, 0, 0, 0, 1), (r) => r.u64BigInt(), /truncated u64/],
  ["an empty u8", bytesOf(), (r) => r.u8(), /truncated u8/],
  ["an unterminated string", bytesOf(0x61), (r) => r.string(), /unterminated string/],
  ["a string ending in a lone zero", bytesOf(0x61, 0), (r) => r.string(), /unterminated string/],
  ["a bad escape", bytesOf(0x61, 0, 5), (r) => r.bytes(), /bad escape in bytes/],
  ["invalid UTF-8", bytesOf(0xff, 0, 0), (r) => r.string(), /not valid UTF-8/],
  ["an escaped surrogate", bytesOf(0xed, 0xa0, 0x80, 0, 0), (r) => r.string(), /not valid UTF-8/],
];

for (const [name, key, read, message] of MALFORMED) {
  test(`KeyReader throws CorruptionError for ${name}`, () => {
    assert.throws(() => read(new KeyReader(key)), (e: unknown) => {
      assert.ok(e instanceof CorruptionError, String(e));
      assert.match(e.message, message);
      assert.match(e.where, /^key byte \d+$/);
      return true;
    });
  });
}

test("u64() throws RangeError above 2^53 - 1 without consuming, and u64BigInt() reads it", () => {
  const key = new KeyWriter().u64(2n ** 53n).finish();
  const r = new KeyReader(key);
  assert.throws(() => r.u64(), /use u64BigInt/);
  assert.equal(r.offset, 0);
  assert.equal(r.u64BigInt(), 2n ** 53n);
  assert.equal(new KeyReader(new KeyWriter().u64(2 ** 53 - 1).finish()).u64(), 2 ** 53 - 1);
});

test("long and non-ASCII string elements decode", () => {
  for (const s of ["x".repeat(1024), "é".repeat(512), "\0".repeat(1024), "a\0é\u{10000}"]) {
    const r = new KeyReader(new KeyWriter().string(s).u8(7).finish());
    assert.equal(r.string(), s);
    assert.equal(r.u8(), 7);
    assert.ok(r.done);
  }
});

// ---------------------------------------------------------------------------
// Negative controls: each property fails against a broken encoder.

/** Encodes element by element, with `broken` replacing some kinds' encodings. */
function assembled(broken: Partial<Record<Kind, (e: Element) => number[]>>): Encode {
  return (t) => {
    const parts: number[] = [];
    for (const e of t) {
      const fault = broken[e.kind];
      if (fault !== undefined) parts.push(...fault(e));
      else {
        writeElement(writer, e);
        parts.push(...writer.finish());
      }
    }
    return new Uint8Array(parts);
  };
}

const utf8 = new TextEncoder();
const rawOf = (e: Element): Uint8Array =>
  e.kind === "string" ? utf8.encode(e.value) : e.value as Uint8Array;
const escaped = (raw: Uint8Array): number[] =>
  Array.from(raw).flatMap((x) => (x === 0 ? [0, 0xff] : [x]));

test("negative control: the assembled encoder with no fault passes every property", () => {
  const faithful = assembled({});
  fc.assert(orderProperty(faithful), { numRuns: 300 });
  fc.assert(roundTripProperty(faithful, decode), { numRuns: 300 });
  fc.assert(prefixProperty(faithful), { numRuns: 300 });
});

test("negative control: the order property catches little-endian u32", () => {
  const littleEndian = assembled({
    u32: (e) => {
      const v = e.value as number;
      return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
    },
  });
  const result = fc.check(orderProperty(littleEndian), {
    endOnFailure: true,
    numRuns: 1000,
    seed: 42,
  });
  assert.equal(result.failed, true, "little-endian u32 passed the order property");
});

test("negative control: the order property catches unescaped zeros", () => {
  const unescaped = assembled({
    bytes: (e) => [...rawOf(e), 0, 0],
    string: (e) => [...rawOf(e), 0, 0],
  });
  const result = fc.check(orderProperty(unescaped), {
    endOnFailure: true,
    numRuns: 1000,
    seed: 42,
  });
  assert.equal(result.failed, true, "unescaped zeros passed the order property");
});

test("negative control: the order property catches strings without a terminator", () => {
  const unterminated = assembled({
    bytes: (e) => escaped(rawOf(e)),
    string: (e) => escaped(rawOf(e)),
  });
  const result = fc.check(orderProperty(unterminated), {
    endOnFailure: true,
    numRuns: 1000,
    seed: 42,
  });
  assert.equal(result.failed, true, "unterminated strings passed the order property");
});

test("negative control: the round trip catches a one-byte terminator (a 0xFF after it reads as an escape)", () => {
  const oneByte = assembled({
    bytes: (e) => [...escaped(rawOf(e)), 0],
    string: (e) => [...escaped(rawOf(e)), 0],
  });
  const decodeOneByte: Decode = (layout, key) => {
    // A reader for the same one-byte scheme: 00 FF is a zero, 00 then
    // anything else ends the element (without consuming that byte).
    const out: Tuple = [];
    let p = 0;
    const word = (n: number): bigint => {
      let v = 0n;
      for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(key[p++] ?? 0);
      return v;
    };
    for (const kind of layout) {
      if (kind === "u8") out.push({ kind, value: Number(word(1)) });
      else if (kind === "u32") out.push({ kind, value: Number(word(4)) });
      else if (kind === "u64") out.push({ kind, value: word(8) });
      else {
        const raw: number[] = [];
        while (p < key.length) {
          const b = key[p++]!;
          if (b !== 0) raw.push(b);
          else if (key[p] === 0xff) {
            raw.push(0);
            p++;
          } else break;
        }
        const bytes = new Uint8Array(raw);
        out.push(
          kind === "string"
            ? { kind, value: new TextDecoder().decode(bytes) }
            : { kind, value: bytes },
        );
      }
    }
    return out;
  };
  const result = fc.check(roundTripProperty(oneByte, decodeOneByte), {
    endOnFailure: true,
    numRuns: 2000,
    seed: 42,
  });
  assert.equal(result.failed, true, "a one-byte terminator passed the round trip");
});

test("negative control: the prefix property catches keys that end with their element count", () => {
  const trailerLength: Encode = (t) => {
    const body = encode(t);
    return new Uint8Array([...body, t.length]);
  };
  const result = fc.check(prefixProperty(trailerLength), {
    endOnFailure: true,
    numRuns: 500,
    seed: 42,
  });
  assert.equal(result.failed, true, "a trailing element count passed the prefix property");
});

// Writers share one scratch buffer, one writer at a time (src/core/keys.ts):
// writers built interleaved, nested, and abandoned by a throw mid-key must
// each produce the key a writer built alone produces (checked by decoding),
// and no key may change after it was returned.
test("interleaved, nested and abandoned writers build the same keys", () => {
  const schedule = fc.array(
    fc.record({ tuple: tuples, abandonAt: fc.option(fc.nat({ max: 6 }), { nil: undefined }) }),
    { minLength: 1, maxLength: 6 },
  ).chain((jobs) =>
    fc.tuple(
      fc.constant(jobs),
      // The order in which the jobs' steps run: each job's element writes, then its finish.
      fc.shuffledSubarray(
        jobs.flatMap((j, i) => Array.from({ length: j.tuple.length + 1 }, () => i)),
        { minLength: jobs.reduce((n, j) => n + j.tuple.length + 1, 0) },
      ),
    )
  );
  fc.assert(
    fc.property(schedule, ([jobs, order]) => {
      const writers = jobs.map(() => new KeyWriter());
      const next = jobs.map(() => 0);
      const dead = jobs.map(() => false);
      const built: { job: number; key: Uint8Array; copy: Uint8Array }[] = [];
      for (const i of order) {
        if (dead[i]) continue;
        const { tuple, abandonAt } = jobs[i]!;
        const w = writers[i]!;
        const at = next[i]!++;
        if (abandonAt !== undefined && abandonAt === at) {
          assert.throws(() => w.u8(256), RangeError); // drops the key being built
          dead[i] = true;
          continue;
        }
        if (at < tuple.length) writeElement(w, tuple[at]!);
        else if (i % 2 === 0) {
          const key = w.finish();
          built.push({ job: i, key, copy: key.slice() });
        } else {
          // Odd jobs end with copyTo, which gives the shared scratch back too.
          const target = new Uint8Array(w.length + 5).fill(0xee);
          const n = w.copyTo(target, 3);
          assert.equal(w.length, 0);
          assert.deepEqual([...target.subarray(0, 3), ...target.subarray(3 + n)], [
            0xee,
            0xee,
            0xee,
            0xee,
            0xee,
          ]);
          const key = target.slice(3, 3 + n);
          built.push({ job: i, key, copy: key.slice() });
        }
      }
      for (const { job, key, copy } of built) {
        const t = jobs[job]!.tuple;
        assert.deepEqual(decode(t.map((e) => e.kind), key), t);
        assert.equal(hex(key), hex(copy), "a key changed after it was returned");
        assert.equal(hex(key), hex(encode(t)));
      }
      // A writer used again after finish (or after a throw) starts empty.
      const again = writers[0]!;
      const t = jobs[0]!.tuple;
      for (const e of t) writeElement(again, e);
      assert.equal(hex(again.finish()), hex(encode(t)));
    }),
    { numRuns: 300 },
  );
});
