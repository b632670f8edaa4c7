// Expiry (TTL): records carry their expiry, reads hide expired records at
// once by the engine's clock, and the sweeper purges exactly the records
// that are due — never one that was overwritten since it was indexed.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Engine, type Transaction } from "../../src/engine/engine.ts";
import { decodeExpiryKey, expiryKey, Sweeper } from "../../src/engine/ttl.ts";

/** The negative controls' seed: each fails on the same case on every runtime, every time. */
const NEGATIVE_CONTROL_SEED = 1;

// A toy record format: byte 0 = 1 if the record expires, bytes 1..8 the
// expiry time (big-endian), byte 9 the payload.
const PREFIX = new Uint8Array([0xff, 0x01]);
const KEYS = ["a", "b", "c", "d"];
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function record(payload: number, expiresAt: number | undefined): Uint8Array {
  const r = new Uint8Array(10);
  if (expiresAt !== undefined) {
    r[0] = 1;
    new DataView(r.buffer).setBigUint64(1, BigInt(expiresAt));
  }
  r[9] = payload;
  return r;
}

function expiresAtOf(_key: Uint8Array, value: Uint8Array): number | undefined {
  return value[0] === 1
    ? Number(new DataView(value.buffer, value.byteOffset).getBigUint64(1))
    : undefined;
}

/** What a reader sees: the payload, or undefined if absent or expired at `now`. */
function visible(value: Uint8Array | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const at = expiresAtOf(new Uint8Array(0), value);
  return at !== undefined && at <= now ? undefined : value[9];
}

/** Writes a record (and its index entry when it expires), as the KV layer does. */
function put(tx: Transaction, key: string, payload: number, expiresAt: number | undefined): void {
  tx.put(enc(key), record(payload, expiresAt));
  if (expiresAt !== undefined) tx.put(expiryKey(PREFIX, expiresAt, enc(key)), new Uint8Array(0));
}

type Op =
  | { t: "put"; k: string; ttl: number | undefined }
  | { t: "del"; k: string }
  | { t: "tick"; ms: number }
  | { t: "sweep" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      t: fc.constant("put" as const),
      k: fc.constantFrom(...KEYS),
      ttl: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({ t: fc.constant("del" as const), k: fc.constantFrom(...KEYS) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ t: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 30 }) }),
    weight: 3,
  },
  { arbitrary: fc.constant({ t: "sweep" as const }), weight: 2 },
);

const stats = { programs: 0, purged: 0, stale: 0, hiddenBeforeSweep: 0 };

type Variant = "correct" | "unfilteredReads" | "sweeperTrustsIndex";

/** Runs ops against the engine and a model; asserts visibility and sweep results. */
async function check(ops: Op[], variant: Variant = "correct"): Promise<void> {
  let now = 1_000;
  const engine = new Engine({ clock: () => now });
  // The broken sweeper believes the last index entry written for a key,
  // not the record (an overwrite without expiry leaves the entry behind).
  const lastIndexed = new Map<string, number>();
  const sweeper = new Sweeper(engine, {
    prefix: PREFIX,
    batch: 2,
    expiresAtOf: variant === "sweeperTrustsIndex"
      ? (key) => lastIndexed.get(new TextDecoder().decode(key))
      : expiresAtOf,
  });
  const read = variant === "unfilteredReads"
    ? (v: Uint8Array | undefined) => v?.[9]
    : (v: Uint8Array | undefined) => visible(v, now);
  const model = new Map<string, { payload: number; expiresAt: number | undefined }>();
  let payload = 0;
  stats.programs++;
  try {
    for (const op of ops) {
      if (op.t === "put") {
        const expiresAt = op.ttl === undefined ? undefined : engine.now() + op.ttl;
        const p = payload++ & 0xff;
        await engine.transaction((tx) => put(tx, op.k, p, expiresAt));
        if (expiresAt !== undefined) lastIndexed.set(op.k, expiresAt);
        model.set(op.k, { payload: p, expiresAt });
      } else if (op.t === "del") {
        await engine.transaction((tx) => tx.delete(enc(op.k)));
        model.delete(op.k);
      } else if (op.t === "tick") {
        now += op.ms;
      } else {
        const purged = await sweeper.sweep();
        if (variant === "correct") stats.purged += purged;
        // Every due record is gone from the store, and so is every due index entry.
        for (const [k, v] of engine.store.entries()) {
          if (k[0] === 0xff) {
            const at = decodeExpiryKey(PREFIX.length, k).expiresAt;
            assert.ok(at > now, "a due index entry was left");
          } else {
            const at = expiresAtOf(k, v);
            assert.ok(at === undefined || at > now, "the sweep left a due record");
          }
        }
        for (const [k, m] of model) {
          if (m.expiresAt !== undefined && m.expiresAt <= now) model.delete(k);
        }
      }
      // Reads see exactly the model's unexpired records, swept or not.
      for (const k of KEYS) {
        const m = model.get(k);
        const want = m === undefined || (m.expiresAt !== undefined && m.expiresAt <= now)
          ? undefined
          : m.payload;
        const stored = engine.store.get(enc(k));
        if (want === undefined && stored !== undefined && variant === "correct") {
          stats.hiddenBeforeSweep++;
        }
        assert.equal(read(stored), want, `read of ${k} at ${now}`);
      }
      // Every record that expires has its index entry (else it would never be purged).
      for (const [k, m] of model) {
        if (m.expiresAt === undefined) continue;
        assert.ok(engine.store.has(expiryKey(PREFIX, m.expiresAt, enc(k))), `index entry of ${k}`);
      }
    }
    if (variant === "correct") stats.stale += sweeper.stats.staleIndexEntries;
  } finally {
    await engine.close();
    engine.store.close();
  }
}

const programArb = fc.array(opArb, { minLength: 1, maxLength: 60, size: "max" });

test("TTL: expired records are invisible at once and the sweeper purges exactly the due ones", async () => {
  await fc.assert(fc.asyncProperty(programArb, (ops) => check(ops)), { numRuns: 200 });
  console.log(`TTL: ${JSON.stringify(stats)}`);
  // The runs exercised what they claim to.
  assert.ok(stats.purged > 50, `only ${stats.purged} records purged`);
  assert.ok(stats.stale > 10, `only ${stats.stale} stale index entries met`);
  assert.ok(stats.hiddenBeforeSweep > 20, `only ${stats.hiddenBeforeSweep} expired-unswept reads`);
});

for (const variant of ["unfilteredReads", "sweeperTrustsIndex"] as const) {
  test(`negative control: the TTL property catches ${variant}`, async () => {
    const r = await fc.check(
      fc.asyncProperty(programArb, (ops) => check(ops, variant)),
      { seed: NEGATIVE_CONTROL_SEED, numRuns: 300, endOnFailure: true },
    );
    assert.equal(r.failed, true, `${variant} went unnoticed`);
  });
}

test("a sweep racing an overwrite re-runs and keeps the fresh record", async () => {
  let now = 1_000;
  const engine = new Engine({ clock: () => now });
  await engine.transaction((tx) => put(tx, "k", 1, 1_005));
  now = 1_010;
  let raced = false;
  const sweeper = new Sweeper(engine, {
    prefix: PREFIX,
    expiresAtOf: (key, value) => {
      if (!raced) {
        raced = true;
        // Commits (synchronously, no log) between the sweep's read and its commit.
        void engine.transaction((tx) => put(tx, "k", 2, undefined));
      }
      return expiresAtOf(key, value);
    },
  });
  assert.equal(await sweeper.sweep(), 0);
  assert.ok(raced);
  assert.equal(visible(engine.store.get(enc("k")), now), 2);
  assert.ok(engine.stats.conflicts >= 1, "the sweep did not conflict");
  await engine.close();
  engine.store.close();
});

test("Sweeper rejects bad options and start/stop sweep in the background", async () => {
  const engine = new Engine();
  assert.throws(() => new Sweeper(engine, { prefix: PREFIX, expiresAtOf, batch: 0 }), RangeError);
  assert.throws(
    () => new Sweeper(engine, { prefix: PREFIX, expiresAtOf, intervalMs: 0.5 }),
    RangeError,
  );
  assert.throws(() => expiryKey(PREFIX, -1, new Uint8Array(0)), RangeError);
  assert.throws(() => decodeExpiryKey(2, new Uint8Array(5)), RangeError);
  let now = 0;
  const timed = new Engine({ clock: () => now });
  await timed.transaction((tx) => put(tx, "x", 1, 5));
  now = 10;
  const sweeper = new Sweeper(timed, { prefix: PREFIX, expiresAtOf, intervalMs: 5 });
  sweeper.start();
  for (let i = 0; i < 200 && timed.store.count() > 0; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  await sweeper.stop();
  assert.equal(timed.store.count(), 0);
  assert.equal(sweeper.stats.purged, 1);
  await timed.close();
  timed.store.close();
  await engine.close();
  engine.store.close();
});
