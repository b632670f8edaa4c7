import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { pseudoRandomBytes } from "../_bytes.ts";
import { crc32c } from "../../src/core/crc32c.ts";
import { sharedCore } from "../../src/core/_wasm.ts";

/** Bit-at-a-time CRC32C, straight from the definition: the oracle. */
function referenceCrc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return ~c >>> 0;
}

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(
    { length: hex.length / 2 },
    (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16),
  );
}

test("crc32c() of '123456789' is the check value 0xE3069283", () => {
  assert.equal(crc32c(ascii("123456789")), 0xe3069283);
});

test("crc32c() of empty input is 0, and extending by nothing keeps the crc", () => {
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(0), 0xe3069283), 0xe3069283);
});

test("crc32c() matches the RFC 3720 B.4 vectors", () => {
  const incrementing = Uint8Array.from({ length: 32 }, (_, i) => i);
  const decrementing = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
  // An iSCSI SCSI Read (10) command PDU.
  const readPdu = fromHex(
    "01c00000000000000000000000000000" +
      "14000000000004000000001400000018" +
      "28000000000000000200000000000000",
  );
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(incrementing), 0x46dd794e);
  assert.equal(crc32c(decrementing), 0x113fdb5c);
  assert.equal(crc32c(readPdu), 0xd9963a56);
});

test("crc32c() returns an unsigned 32-bit integer", () => {
  // 0xE3069283 has the top bit set: the core's i32 result must not come back negative.
  const value = crc32c(ascii("123456789"));
  assert.ok(value > 0x7fffffff && Number.isInteger(value));
});

test("crc32c() over any chunking, chained through its second argument, equals one pass", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 4096, size: "max" }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (data, cuts) => {
        const points = cuts.map((n) => n % (data.length + 1)).sort((a, b) => a - b);
        let crc = 0;
        let start = 0;
        for (const end of [...points, data.length]) {
          crc = crc32c(data.subarray(start, end), crc);
          start = end;
        }
        assert.equal(crc, crc32c(data));
      },
    ),
  );
});

test("crc32c() agrees with a bitwise reference on inputs up to 1 KiB", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 1024, size: "max" }),
      fc.nat(0xffffffff),
      (data, prior) => {
        assert.equal(crc32c(data), referenceCrc32c(data));
        assert.equal(crc32c(data, prior), referenceCrc32c(data, prior));
      },
    ),
    { numRuns: 300 },
  );
});

test("crc32c() agrees with a bitwise reference on unaligned views and inputs past the 64 KiB scratch", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.integer({ min: 0, max: 1024 }),
        fc.integer({ min: 65536 - 40, max: 65536 + 40 }),
        fc.integer({ min: 65536 + 41, max: 3 * 65536 + 17 }),
      ),
      fc.integer({ min: 0, max: 15 }),
      fc.integer(),
      (length, offset, seed) => {
        const view = pseudoRandomBytes(offset + length, seed).subarray(offset);
        assert.equal(view.byteOffset, offset);
        assert.equal(crc32c(view), referenceCrc32c(view));
      },
    ),
    { numRuns: 40 },
  );
});

test("crc32c() accepts a Uint8Array subclass such as a Node Buffer", () => {
  assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
});

test("crc32c() stays correct after the shared core's memory grows", () => {
  const data = pseudoRandomBytes(70000, 7);
  const before = crc32c(data);
  const { exports, memory } = sharedCore();
  const pages = memory.buffer.byteLength / 65536;
  // A block as large as the whole memory cannot fit in it: the core must grow
  // the memory, which detaches every view of the old buffer.
  const ptr = exports.alloc(memory.buffer.byteLength) >>> 0;
  assert.notEqual(ptr, 0);
  try {
    assert.ok(memory.buffer.byteLength / 65536 > pages);
    assert.equal(crc32c(data), before);
    assert.equal(before, referenceCrc32c(data));
  } finally {
    exports.free(ptr);
  }
});

test("crc32c() throws a TypeError for data that is not a Uint8Array", () => {
  for (
    const bad of ["abc", null, undefined, 42, [1, 2, 3], new Uint16Array(2), new ArrayBuffer(4)]
  ) {
    assert.throws(
      () => crc32c(bad as unknown as Uint8Array),
      (e: unknown) =>
        e instanceof TypeError && /^Cannot compute CRC32C: data must be/.test(e.message),
    );
  }
});

test("crc32c() throws a RangeError for a crc outside [0, 2^32) or not an integer", () => {
  for (const bad of [-1, 2 ** 32, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => crc32c(new Uint8Array(1), bad), RangeError);
  }
});
