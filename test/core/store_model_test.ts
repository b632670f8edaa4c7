// Model-based test of the ordered store: random sequences of thousands of
// operations run against the store and against a plain sorted-array model;
// every read must agree, snapshots must keep the state they were taken at,
// and the tree's invariants must hold throughout. Negative controls prove the
// harness catches a store that loses a write, misreads a range, or whose
// snapshots are not isolated, or that overwrites a value in place while a
// snapshot shares it.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { OrderedStore, type RangeOptions } from "../../src/core/store.ts";
import { OutOfMemoryError } from "../../src/errors.ts";
import { decodeWrites, encodeWrites } from "../../src/engine/payload.ts";

type Key = Uint8Array;
type Bound = { key: Key; exclusive: boolean } | undefined;
type Op =
  | { t: "put"; k: Key; v: Uint8Array }
  | { t: "del"; k: Key }
  | { t: "get"; k: Key }
  | { t: "seek"; k: Key; rev: boolean }
  | { t: "range"; lo: Bound; hi: Bound; rev: boolean; limit: number | undefined; snap: number }
  | { t: "prefix"; p: Key; rev: boolean }
  | { t: "snap" }
  | { t: "snapGet"; i: number; k: Key }
  | { t: "release"; i: number }
  | { t: "bulk"; seed: number; n: number; sequential: boolean }
  | { t: "bulkDel"; mod: number; rem: number }
  | { t: "batch"; writes: { k: Key; v: Uint8Array | null }[] }
  | { t: "check" };

// Hex by table: Deno's Buffer polyfill is too slow for millions of calls.
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const hex = (b: Uint8Array): string => {
  let s = "";
  for (const x of b) s += HEX[x]!;
  return s;
};
const unhex = (s: string): Uint8Array => {
  const out = new Uint8Array(s.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
};

/** The reference: a map plus a sorted key list (hex order is byte order). */
class Model {
  map = new Map<string, Uint8Array>();
  sorted: string[] = [];

  clone(): Model {
    const m = new Model();
    m.map = new Map(this.map);
    m.sorted = [...this.sorted];
    return m;
  }

  #index(k: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  put(k: string, v: Uint8Array): boolean {
    const isNew = !this.map.has(k);
    if (isNew) this.sorted.splice(this.#index(k), 0, k);
    this.map.set(k, v);
    return isNew;
  }

  del(k: string): boolean {
    if (!this.map.delete(k)) return false;
    this.sorted.splice(this.#index(k), 1);
    return true;
  }

  range(lo: Bound, hi: Bound, rev: boolean, limit: number | undefined): string[] {
    let out = this.sorted.filter((k) => {
      if (lo !== undefined) {
        const l = hex(lo.key);
        if (lo.exclusive ? k <= l : k < l) return false;
      }
      if (hi !== undefined) {
        const h = hex(hi.key);
        if (hi.exclusive ? k >= h : k > h) return false;
      }
      return true;
    });
    if (rev) out = out.reverse();
    return limit === undefined ? out : out.slice(0, limit);
  }
}

// Keys that collide, share long prefixes (up to, across and beyond the
// store's 24-byte inline head), sit at 0x00/0xFF edges, or are empty.
const ALPHABET = [0x00, 0x01, 0x61, 0x62, 0xfe, 0xff];
const smallKey = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 3 }).map((a) =>
  new Uint8Array(a)
);
const LONG_PREFIXES = [
  new Uint8Array(16).fill(0x61),
  new Uint8Array(23),
  new Uint8Array(24).fill(0x61),
  new Uint8Array(28).fill(0xff),
];
const longKey = fc.tuple(fc.constantFrom(...LONG_PREFIXES), smallKey).map(([p, s]) => {
  const k = new Uint8Array(p.length + s.length);
  k.set(p);
  k.set(s, p.length);
  return k;
});
const anyKey = fc.uint8Array({ maxLength: 40 });
const keyArb = fc.oneof({ arbitrary: smallKey, weight: 3 }, { arbitrary: longKey, weight: 3 }, {
  arbitrary: anyKey,
  weight: 2,
});
const boundArb: fc.Arbitrary<Bound> = fc.option(
  fc.record({ key: keyArb, exclusive: fc.boolean() }),
  { nil: undefined },
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      t: fc.constant("put" as const),
      k: keyArb,
      // Often 8 bytes: overwrites of the same size, which the core makes in
      // place when no snapshot or cursor is open.
      v: fc.oneof(fc.uint8Array({ maxLength: 24 }), fc.uint8Array({ minLength: 8, maxLength: 8 })),
    }),
    weight: 30,
  },
  { arbitrary: fc.record({ t: fc.constant("del" as const), k: keyArb }), weight: 15 },
  { arbitrary: fc.record({ t: fc.constant("get" as const), k: keyArb }), weight: 10 },
  {
    arbitrary: fc.record({ t: fc.constant("seek" as const), k: keyArb, rev: fc.boolean() }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      t: fc.constant("range" as const),
      lo: boundArb,
      hi: boundArb,
      rev: fc.boolean(),
      limit: fc.option(fc.nat(50), { nil: undefined }),
      snap: fc.integer({ min: -1, max: 3 }),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({ t: fc.constant("prefix" as const), p: keyArb, rev: fc.boolean() }),
    weight: 3,
  },
  { arbitrary: fc.record({ t: fc.constant("snap" as const) }), weight: 2 },
  {
    arbitrary: fc.record({ t: fc.constant("snapGet" as const), i: fc.nat(3), k: keyArb }),
    weight: 4,
  },
  { arbitrary: fc.record({ t: fc.constant("release" as const), i: fc.nat(3) }), weight: 2 },
  {
    arbitrary: fc.record({
      t: fc.constant("bulk" as const),
      seed: fc.nat(),
      n: fc.integer({ min: 1, max: 3000 }),
      sequential: fc.boolean(),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      t: fc.constant("bulkDel" as const),
      mod: fc.integer({ min: 1, max: 5 }),
      rem: fc.nat(4),
    }),
    weight: 1,
  },
  {
    // A commit's payload applied in one call (OrderedStore.applyPayload).
    arbitrary: fc.record({
      t: fc.constant("batch" as const),
      writes: fc.array(
        fc.record({ k: keyArb, v: fc.option(fc.uint8Array({ maxLength: 24 }), { nil: null }) }),
        { maxLength: 40 },
      ),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ t: fc.constant("check" as const) }), weight: 1 },
);

/** Deterministic keys for bulk inserts: big-endian counters or hashed-looking bytes. */
function bulkKeys(seed: number, n: number, sequential: boolean): Uint8Array[] {
  const keys: Uint8Array[] = [];
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    if (sequential) {
      const k = new Uint8Array(6);
      k[0] = 0x62; // 'b'
      new DataView(k.buffer).setUint32(1, (seed % 1000) * 10000 + i);
      keys.push(k);
    } else {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const len = 1 + (x >>> 0) % 24;
      const k = new Uint8Array(len);
      let y = x >>> 0;
      for (let j = 0; j < len; j++) {
        k[j] = y & 0xff;
        y = (Math.imul(y, 1103515245) + 12345) >>> 0;
      }
      keys.push(k);
    }
  }
  return keys;
}

function toOptions(lo: Bound, hi: Bound, rev: boolean, limit: number | undefined): RangeOptions {
  const o: RangeOptions = { reverse: rev };
  if (lo !== undefined) {
    if (lo.exclusive) o.gt = lo.key;
    else o.gte = lo.key;
  }
  if (hi !== undefined) {
    if (hi.exclusive) o.lt = hi.key;
    else o.lte = hi.key;
  }
  if (limit !== undefined) o.limit = limit;
  return o;
}

/** What the random runs reached, so the test can assert its own coverage. */
const reached = {
  maxHeight: 0,
  maxKeys: 0,
  ops: 0,
  outOfMemory: 0,
  batches: 0,
  batchesCutShort: 0,
  /** Values the core overwrote in place (OrderedStore.inPlaceWrites). */
  inPlace: 0,
};

/**
 * Runs a store write; with `tolerateOom`, an OutOfMemoryError skips the
 * model's side (the store must then be unchanged, which the following reads
 * check) and returns `undefined`.
 */
function write<T>(tolerateOom: boolean, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!tolerateOom || !(err instanceof OutOfMemoryError)) throw err;
    reached.outOfMemory++;
    return undefined;
  }
}

/** Runs `ops` on a fresh store from `make` and on the model; throws on any disagreement. */
function runOps(ops: Op[], make: () => OrderedStore, tolerateOom = false): void {
  const store = make();
  const model = new Model();
  const snaps: { snap: ReturnType<OrderedStore["snapshot"]>; model: Model }[] = [];
  const baseline = store.memory().usedBytes;
  try {
    for (const op of ops) {
      switch (op.t) {
        case "put": {
          const r = write(tolerateOom, () => store.put(op.k, op.v));
          if (r !== undefined) assert.equal(r, model.put(hex(op.k), op.v), "put: new-key flag");
          break;
        }
        case "del": {
          const r = write(tolerateOom, () => store.delete(op.k));
          if (r !== undefined) assert.equal(r, model.del(hex(op.k)), "delete: result");
          break;
        }
        case "get":
          assert.deepEqual(store.get(op.k), model.map.get(hex(op.k)), "get");
          assert.equal(store.has(op.k), model.map.has(hex(op.k)), "has");
          break;
        case "seek": {
          const got = write(tolerateOom, () => store.seek(op.k, op.rev) ?? null);
          if (got === undefined) break; // the cursor did not fit
          const want = op.rev
            ? model.range(undefined, { key: op.k, exclusive: false }, true, 1)[0]
            : model.range({ key: op.k, exclusive: false }, undefined, false, 1)[0];
          assert.equal(got === null ? undefined : hex(got[0]), want, "seek");
          break;
        }
        case "range": {
          const target = op.snap >= 0 && op.snap < snaps.length ? snaps[op.snap]! : undefined;
          const reader = target?.snap ?? store;
          const m = target?.model ?? model;
          const got = write(
            tolerateOom,
            () => [...reader.entries(toOptions(op.lo, op.hi, op.rev, op.limit))],
          );
          if (got === undefined) break;
          const want = m.range(op.lo, op.hi, op.rev, op.limit);
          assert.deepEqual(got.map(([k]) => hex(k)), want, "range keys");
          for (const [k, v] of got) assert.deepEqual(v, m.map.get(hex(k)), "range value");
          break;
        }
        case "prefix": {
          const got = write(
            tolerateOom,
            () => [...store.prefix(op.p, { reverse: op.rev })].map(([k]) => hex(k)),
          );
          if (got === undefined) break;
          const p = hex(op.p);
          let want = model.sorted.filter((k) => k.startsWith(p));
          if (op.rev) want = want.reverse();
          assert.deepEqual(got, want, "prefix");
          break;
        }
        case "snap": {
          if (snaps.length >= 4) break;
          const snap = write(tolerateOom, () => store.snapshot());
          if (snap !== undefined) snaps.push({ snap, model: model.clone() });
          break;
        }
        case "snapGet": {
          const s = snaps[op.i];
          if (s === undefined) break;
          assert.deepEqual(s.snap.get(op.k), s.model.map.get(hex(op.k)), "snapshot get");
          assert.equal(s.snap.count(), s.model.map.size, "snapshot count");
          break;
        }
        case "release": {
          const s = snaps[op.i];
          if (s === undefined) break;
          s.snap.checkInvariants();
          s.snap.release();
          snaps.splice(op.i, 1);
          break;
        }
        case "bulk":
          for (const k of bulkKeys(op.seed, op.n, op.sequential)) {
            const v = k.slice(0, 4);
            const r = write(tolerateOom, () => store.put(k, v));
            if (r === undefined) break;
            assert.equal(r, model.put(hex(k), v), "bulk put");
          }
          break;
        case "bulkDel":
          for (const [i, k] of [...model.sorted].entries()) {
            if (i % op.mod === op.rem % op.mod) {
              const r = write(tolerateOom, () => store.delete(unhex(k)));
              if (r === undefined) break;
              assert.equal(r, model.del(k), "bulk delete");
            }
          }
          break;
        case "batch": {
          const writes = op.writes.map((w) => ({ key: w.k, value: w.v }));
          let applied = writes.length;
          try {
            store.applyPayload(encodeWrites(writes));
          } catch (err) {
            if (!tolerateOom || !(err instanceof OutOfMemoryError)) throw err;
            reached.outOfMemory++;
            // The writes before the one that did not fit are in; the message says how many.
            const m = /after (\d+) of its (\d+) writes/.exec(err.message);
            assert.ok(m !== null && Number(m[2]) === writes.length, err.message);
            applied = Number(m[1]);
            if (applied > 0) reached.batchesCutShort++;
          }
          for (const w of writes.slice(0, applied)) {
            if (w.value === null) model.del(hex(w.key));
            else model.put(hex(w.key), w.value);
          }
          reached.batches++;
          break;
        }
        case "check":
          store.checkInvariants();
          break;
      }
      assert.equal(store.count(), model.map.size, "count");
      reached.maxKeys = Math.max(reached.maxKeys, model.map.size);
    }
    reached.ops += ops.length;
    reached.maxHeight = Math.max(reached.maxHeight, store.height());
    store.checkInvariants();
    for (const s of snaps) s.snap.checkInvariants();
    // Everything comes back: release every snapshot, delete every key (with
    // no snapshot left a delete allocates nothing, so it cannot run out).
    for (const s of snaps) s.snap.release();
    for (const k of [...model.sorted]) assert.equal(store.delete(unhex(k)), true);
    assert.equal(store.count(), 0);
    assert.equal(store.bytes(), 0);
    assert.equal(store.memory().usedBytes, baseline, "memory returns to its starting level");
    reached.inPlace += store.inPlaceWrites;
  } finally {
    store.close();
  }
}

const ops = fc.array(opArb, { minLength: 500, maxLength: 3000, size: "max" });

// Shrinking sequences of thousands of operations can take long: bound it, and
// print the seed and path so a failure replays (fc.assert with { seed, path }).
const LIMITS = { interruptAfterTimeLimit: 120_000, markInterruptAsFailure: true } as const;

test("the store agrees with a sorted-array model over random operation sequences", () => {
  fc.assert(fc.property(ops, (o) => runOps(o, () => new OrderedStore())), {
    ...LIMITS,
    numRuns: 40,
  });
  // The runs must have built trees deep enough for splits and merges at
  // inner levels (height 3 needs more than 64 x 64 keys).
  assert.ok(reached.maxHeight >= 3, `tallest tree was ${reached.maxHeight} levels`);
  assert.ok(reached.ops >= 20_000, `only ${reached.ops} operations ran`);
  // Same-size overwrites made in place, between snapshots taken and released.
  assert.ok(reached.inPlace >= 1_000, `only ${reached.inPlace} values overwritten in place`);
});

test("out of memory at any write leaves the store equal to the model", () => {
  const before = reached.outOfMemory;
  fc.assert(
    fc.property(
      ops,
      (o) => runOps(o, () => new OrderedStore({ maxMemoryBytes: 512 * 1024 }), true),
    ),
    { ...LIMITS, numRuns: 25 },
  );
  assert.ok(
    reached.outOfMemory - before >= 25,
    `only ${reached.outOfMemory - before} writes ran out of memory`,
  );
  // Some commit payloads must have run out after applying part of their writes.
  assert.ok(reached.batchesCutShort > 0, "no payload ran out of memory part way");
});

// ---- negative controls: each broken store must be caught

class LosesEvery97thInsert extends OrderedStore {
  #n = 0;
  override put(key: Uint8Array | string, value: Uint8Array | string): boolean {
    if (!this.has(key) && ++this.#n % 97 === 0) return true;
    return super.put(key, value);
  }
}

class ReverseDropsLast extends OrderedStore {
  override *entries(options: RangeOptions = {}): IterableIterator<[Uint8Array, Uint8Array]> {
    const all = [...super.entries(options)];
    if (options.reverse === true && all.length > 2) all.pop();
    yield* all;
  }
}

class ApplyDropsLastWrite extends OrderedStore {
  override applyPayload(payload: Uint8Array): void {
    const writes = decodeWrites(payload);
    super.applyPayload(encodeWrites(writes.slice(0, -1)));
  }
}

/** Overwrites a value of the same size in place even while snapshots share it. */
class InPlaceUnderSnapshots extends OrderedStore {
  override put(key: Uint8Array | string, value: Uint8Array | string): boolean {
    const v = typeof value === "string" ? new TextEncoder().encode(value) : value;
    const held = this.getView(key);
    if (held !== undefined && held.length === v.length && v.length > 0) {
      held.set(v);
      return false;
    }
    return super.put(key, value);
  }
}

class SnapshotIsLive extends OrderedStore {
  override snapshot(): ReturnType<OrderedStore["snapshot"]> {
    const live = this as OrderedStore;
    return Object.assign(Object.create(live) as OrderedStore, {
      release() {},
      checkInvariants() {},
    }) as unknown as ReturnType<OrderedStore["snapshot"]>;
  }
}

for (
  const [name, make] of [
    ["loses every 97th insert", () => new LosesEvery97thInsert()],
    ["drops the last entry of reverse ranges", () => new ReverseDropsLast()],
    ["has snapshots that see later writes", () => new SnapshotIsLive()],
    ["overwrites values in place under open snapshots", () => new InPlaceUnderSnapshots()],
    ["applies a commit payload without its last write", () => new ApplyDropsLastWrite()],
  ] as const
) {
  test(`negative control: the model test catches a store that ${name}`, () => {
    const result = fc.check(fc.property(ops, (o) => runOps(o, make)), {
      numRuns: 40,
      seed: 42,
      endOnFailure: true,
    });
    assert.equal(result.failed, true, "the broken store passed the model test");
  });
}
