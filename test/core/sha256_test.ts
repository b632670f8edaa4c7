import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { pseudoRandomBytes } from "../_bytes.ts";
import { Sha256, sha256, sha256Concat, sha256Hex } from "../../src/core/sha256.ts";
import { sharedCore } from "../../src/core/_wasm.ts";

/** The reference a user would otherwise pick. */
function nodeSha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Splits `data` at the given cut points (taken modulo its length + 1). */
function chunks(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = cuts.map((n) => n % (data.length + 1)).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let start = 0;
  for (const end of [...points, data.length]) {
    out.push(data.subarray(start, end));
    start = end;
  }
  return out;
}

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

const NIST_VECTORS: ReadonlyArray<readonly [string, Uint8Array, string]> = [
  ["empty", new Uint8Array(0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
  ["abc", ascii("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
  [
    "448-bit",
    ascii("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  ],
  [
    "one million 'a'",
    new Uint8Array(1_000_000).fill(0x61),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
  ],
];

test("sha256() and sha256Hex() match the FIPS 180-4 / NIST example vectors", () => {
  for (const [name, data, expected] of NIST_VECTORS) {
    assert.equal(sha256Hex(data), expected, name);
    assert.equal(toHex(sha256(data)), expected, name);
  }
});

test("Sha256 fed the NIST vectors in 1000-byte pieces gives their digests", () => {
  for (const [name, data, expected] of NIST_VECTORS) {
    const hash = new Sha256();
    for (let i = 0; i < data.length; i += 1000) hash.update(data.subarray(i, i + 1000));
    assert.equal(hash.digestHex(), expected, name);
  }
});

test("sha256() matches node:crypto at the padding boundaries (55, 56, 63, 64, 65 bytes and kin)", () => {
  for (const length of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129]) {
    const data = pseudoRandomBytes(length, length + 1);
    const expected = nodeSha256Hex(data);
    assert.equal(sha256Hex(data), expected, `one-shot, ${length} bytes`);
    const hash = new Sha256();
    for (let i = 0; i < length; i++) hash.update(data.subarray(i, i + 1));
    assert.equal(toHex(hash.digest()), expected, `byte by byte, ${length} bytes`);
  }
});

test("sha256() and a two-piece Sha256 match node:crypto for every length from 0 to 300 bytes", () => {
  const data = pseudoRandomBytes(300, 3);
  for (let length = 0; length <= 300; length++) {
    const view = data.subarray(0, length);
    const expected = nodeSha256Hex(view);
    assert.equal(sha256Hex(view), expected, `one-shot, ${length} bytes`);
    const half = length >>> 1;
    const hash = new Sha256().update(view.subarray(0, half)).update(view.subarray(half));
    assert.equal(hash.digestHex(), expected, `two pieces, ${length} bytes`);
  }
});

test("sha256() returns a fresh 32-byte array each call", () => {
  const a = sha256(ascii("abc"));
  const b = sha256(ascii("abc"));
  assert.equal(a.length, 32);
  assert.notEqual(a.buffer, b.buffer);
  a[0] = 0;
  assert.equal(b[0], 0xba);
});

test("sha256() agrees with node:crypto on random inputs", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048, size: "max" }), (data) => {
      const expected = nodeSha256Hex(data);
      assert.equal(sha256Hex(data), expected);
      assert.equal(toHex(sha256(data)), expected);
    }),
  );
});

test("Sha256 over any chunking agrees with node:crypto", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 2048, size: "max" }),
      fc.array(fc.nat(), { maxLength: 16 }),
      (data, cuts) => {
        const hash = new Sha256();
        for (const piece of chunks(data, cuts)) assert.equal(hash.update(piece), hash);
        assert.equal(hash.digestHex(), nodeSha256Hex(data));
      },
    ),
  );
});

test("sha256() and Sha256 agree with node:crypto on unaligned views and inputs past the 64 KiB scratch", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.integer({ min: 65536 - 70, max: 65536 + 70 }),
        fc.integer({ min: 65536 + 71, max: 4 * 65536 + 33 }),
      ),
      fc.integer({ min: 0, max: 15 }),
      fc.integer(),
      fc.array(fc.nat(), { maxLength: 4 }),
      (length, offset, seed, cuts) => {
        const view = pseudoRandomBytes(offset + length, seed).subarray(offset);
        assert.equal(view.byteOffset, offset);
        const expected = nodeSha256Hex(view);
        assert.equal(sha256Hex(view), expected);
        const hash = new Sha256();
        for (const piece of chunks(view, cuts)) hash.update(piece);
        assert.equal(hash.digestHex(), expected);
      },
    ),
    { numRuns: 30 },
  );
});

test("interleaved Sha256 objects and one-shot calls do not disturb each other", () => {
  const a = pseudoRandomBytes(150_000, 1);
  const b = pseudoRandomBytes(90_000, 2);
  const ha = new Sha256();
  const hb = new Sha256();
  for (let k = 0; k * 10_007 < a.length || k * 6_007 < b.length; k++) {
    ha.update(a.subarray(k * 10_007, (k + 1) * 10_007));
    hb.update(b.subarray(k * 6_007, (k + 1) * 6_007));
    // The one-shot path above 64 KiB uses the same scratch context.
    assert.equal(sha256Hex(b), nodeSha256Hex(b));
  }
  assert.equal(ha.digestHex(), nodeSha256Hex(a));
  assert.equal(hb.digestHex(), nodeSha256Hex(b));
});

test("Sha256 objects fed in any interleaving each give the digest of their own input", () => {
  const concat = (parts: readonly Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const step = fc.oneof(
    fc.record({ stream: fc.nat(3), bytes: fc.uint8Array({ maxLength: 200, size: "max" }) }),
    // Digest a stream mid-way, check it and start it again.
    fc.record({ stream: fc.nat(3), restart: fc.constant(true) }),
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
      const hashes = [new Sha256(), new Sha256(), new Sha256(), new Sha256()];
      const inputs: Uint8Array[][] = [[], [], [], []];
      for (const st of steps) {
        const hash = hashes[st.stream] as Sha256;
        const input = inputs[st.stream] as Uint8Array[];
        if ("bytes" in st) {
          hash.update(st.bytes);
          input.push(st.bytes);
        } else {
          assert.equal(hash.digestHex(), nodeSha256Hex(concat(input)));
          hashes[st.stream] = new Sha256();
          inputs[st.stream] = [];
        }
      }
      hashes.forEach((hash, i) => {
        assert.equal(hash.digestHex(), nodeSha256Hex(concat(inputs[i] as Uint8Array[])));
      });
    }),
  );
});

test("Sha256 rejects update() and a second digest after its digest was taken, with InvalidStateError", () => {
  const hash = new Sha256().update(ascii("abc"));
  assert.equal(toHex(hash.digest()), nodeSha256Hex(ascii("abc")));
  const finished = {
    name: "InvalidStateError",
    message: /^Cannot [^:]+: its digest was already taken/,
  };
  assert.throws(() => hash.digest(), finished);
  assert.throws(() => hash.digestHex(), finished);
  assert.throws(() => hash.update(ascii("d")), finished);
  assert.throws(() => hash.update(new Uint8Array(0)), finished);
});

test("a Sha256 with no input gives the digest of the empty string", () => {
  assert.equal(new Sha256().digestHex(), nodeSha256Hex(new Uint8Array(0)));
});

test("sha256() stays correct after the shared core's memory grows", () => {
  const data = pseudoRandomBytes(70_000, 9);
  const hash = new Sha256().update(data.subarray(0, 1000));
  const { exports, memory } = sharedCore();
  const pages = memory.buffer.byteLength / 65536;
  // A block as large as the whole memory cannot fit in it: the core must grow
  // the memory, which detaches every view of the old buffer.
  const ptr = exports.alloc(memory.buffer.byteLength) >>> 0;
  assert.notEqual(ptr, 0);
  try {
    assert.ok(memory.buffer.byteLength / 65536 > pages);
    assert.equal(sha256Hex(data), nodeSha256Hex(data));
    assert.equal(hash.update(data.subarray(1000)).digestHex(), nodeSha256Hex(data));
  } finally {
    exports.free(ptr);
  }
});

test("sha256(), sha256Hex() and Sha256.update() throw a TypeError for data that is not a Uint8Array", () => {
  const isTypeError = (e: unknown): boolean =>
    e instanceof TypeError && /^Cannot [^:]+: data must be a Uint8Array, got /.test(e.message);
  for (
    const bad of ["abc", null, undefined, 42, [1, 2, 3], new Uint16Array(2), new ArrayBuffer(4)]
  ) {
    const data = bad as unknown as Uint8Array;
    assert.throws(() => sha256(data), isTypeError);
    assert.throws(() => sha256Hex(data), isTypeError);
    assert.throws(() => new Sha256().update(data), isTypeError);
  }
});

test("sha256Concat(a, b) equals streaming a then b, below and above the one-call size", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.constantFrom(0, 65_536 - 10, 70_000),
      (a, b, pad) => {
        const big = new Uint8Array(a.length + pad);
        big.set(a);
        assert.deepEqual(sha256Concat(big, b), new Sha256().update(big).update(b).digest());
      },
    ),
    { numRuns: 60 },
  );
});
