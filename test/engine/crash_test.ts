// Crash safety of whole transactions (RELIABILITY.md P1, P2) through the
// engine, the WAL and the simulated disk: concurrent multi-key transactions
// are cut by a halt at a random file operation and a power loss of every
// kind. After recovery the state must equal the serial model after the first
// j commits, for some j at least the number acknowledged in strict mode
// (batched: some prefix) — so no transaction is ever partly visible.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { StorageError } from "../../src/errors.ts";
import { SIM_CRASH_MODES, type SimCrashMode, SimFS } from "../../src/fs/sim.ts";
import { openEngine } from "../../src/engine/open.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const KEYS = ["a", "b", "c", "d", "e", "f", "g", "h"];

interface Txn {
  writes: [key: string, del: boolean][];
}
interface Workload {
  groups: Txn[][];
  haltAt: number;
  mode: SimCrashMode;
  seed: number;
  durability: "strict" | "batched";
  /** Checkpoint (concurrently with the group's commits) when this group starts. */
  checkpointAt: number;
}

const txnArb: fc.Arbitrary<Txn> = fc.record({
  writes: fc.array(fc.tuple(fc.constantFrom(...KEYS), fc.boolean()), {
    minLength: 1,
    maxLength: 5,
  }),
});
const workloadArb: fc.Arbitrary<Workload> = fc.record({
  groups: fc.array(fc.array(txnArb, { minLength: 1, maxLength: 6 }), {
    minLength: 1,
    maxLength: 8,
  }),
  haltAt: fc.integer({ min: 0, max: 150 }),
  mode: fc.constantFrom(...SIM_CRASH_MODES),
  seed: fc.integer({ min: 1, max: 2 ** 31 }),
  durability: fc.constantFrom("strict" as const, "batched" as const),
  checkpointAt: fc.integer({ min: 0, max: 10 }),
});

const figures = { runs: 0, commits: 0, acknowledged: 0, checkpoints: 0 };

async function run(w: Workload): Promise<void> {
  const fs = new SimFS({ seed: w.seed });
  fs.haltAfter(w.haltAt);
  const order: number[] = []; // transaction ids in commit order
  const acked = new Set<number>();
  const txns = w.groups.flat();
  try {
    const db = await openEngine({
      dir: "db",
      fs,
      durability: w.durability,
      maxSegmentBytes: 4096,
      checkpointAfterBytes: 0,
    });
    let id = 0;
    for (const [g, group] of w.groups.entries()) {
      const ckpt = g === w.checkpointAt
        ? db.checkpoint().then(() => figures.checkpoints++)
        : undefined;
      await Promise.all([
        ckpt,
        ...group.map((t) => {
          const me = id++;
          return db.engine.transaction((tx) => {
            // Every key a transaction writes gets its id: a partial commit
            // would show a mix that matches no prefix of the history.
            for (const [k, del] of t.writes) {
              if (del) tx.delete(enc(k));
              else tx.put(enc(k), enc(String(me)));
            }
            tx.atCommit(() => order.push(me));
          }).then(() => acked.add(me));
        }),
      ]);
    }
    await db.close();
  } catch (err) {
    if (!(err instanceof StorageError)) throw err;
  }
  const crashed = fs.crash(w.mode, w.seed);
  const db = await openEngine({ dir: "db", fs: crashed });
  const state = new Map<string, string>();
  for (const [k, v] of db.engine.store.entries()) state.set(dec(k), dec(v));
  await db.close();
  // Serial model after each prefix of the commit order.
  const model = new Map<string, string>();
  const prefixes = [new Map(model)];
  for (const me of order) {
    for (const [k, del] of txns[me]!.writes) {
      if (del) model.delete(k);
      else model.set(k, String(me));
    }
    prefixes.push(new Map(model));
  }
  let ackedPrefix = 0;
  while (ackedPrefix < order.length && acked.has(order[ackedPrefix]!)) ackedPrefix++;
  const matches = prefixes.map((p, j) => ({ j, ok: equal(p, state) })).filter((m) => m.ok);
  figures.runs++;
  figures.commits += order.length;
  if (w.durability === "strict") figures.acknowledged += acked.size;
  assert.ok(
    matches.length > 0,
    `P2: the recovered state matches no prefix of the history (${w.mode})`,
  );
  if (w.durability === "strict") {
    const best = Math.max(...matches.map((m) => m.j));
    assert.ok(
      best >= ackedPrefix,
      `P1: ${ackedPrefix} commits acknowledged, state is after ${best} (${w.mode})`,
    );
  }
}

function equal(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

test("P1/P2: after a crash, the database holds a prefix of whole transactions with every acknowledged one", async () => {
  await fc.assert(fc.asyncProperty(workloadArb, run), { numRuns: 300 });
  assert.ok(figures.acknowledged > 500, JSON.stringify(figures));
  assert.ok(figures.checkpoints > 30, `only ${figures.checkpoints} checkpoints completed`);
});

// Failing cases found while building the engine, kept as regressions.
const REGRESSIONS: [string, Workload][] = [
  [
    // The WAL directory's entry was never synced into its parent: a crash
    // lost the whole log although commits had been acknowledged.
    "wal/ created without syncing its parent directory",
    {
      groups: [[{ writes: [["a", false]] }]],
      haltAt: 9,
      mode: "dropUnsynced",
      seed: 1,
      durability: "strict",
      checkpointAt: 1,
    },
  ],
  [
    // A checkpoint cut short by the halt threw a raw FsError instead of StorageError.
    "a checkpoint interrupted by a crash",
    {
      groups: [[{ writes: [["a", false]] }], [{ writes: [["a", false]] }], [{
        writes: [["a", false]],
      }]],
      haltAt: 13,
      mode: "dropUnsynced",
      seed: 1,
      durability: "strict",
      checkpointAt: 2,
    },
  ],
];
for (const [name, w] of REGRESSIONS) {
  test(`regression: ${name}`, () => run(w));
}

test("negative control: with lyingFsync the transaction-level check fails", async () => {
  const r = await fc.check(
    fc.asyncProperty(workloadArb, (w) => runLying({ ...w, durability: "strict" })),
    { endOnFailure: true, numRuns: 200, seed: 11 },
  );
  assert.equal(r.failed, true, "a lying fsync went unnoticed");
});

async function runLying(w: Workload): Promise<void> {
  const fs = new SimFS({ seed: w.seed, lyingFsync: true });
  const acked: number[] = [];
  const db = await openEngine({ dir: "db", fs, durability: "strict" });
  for (let i = 0; i < 10; i++) {
    await db.engine.transaction((tx) => tx.put(enc(`k${i}`), enc("v")));
    acked.push(i);
  }
  const crashed = fs.crash(w.mode === "lostDirEntry" ? "dropUnsynced" : w.mode, w.seed);
  let count = -1;
  try {
    const again = await openEngine({ dir: "db", fs: crashed });
    count = again.engine.store.count();
    await again.close();
  } catch {
    count = -1; // damage reported: also a failure of durability
  }
  assert.equal(count, acked.length, `P1: ${acked.length} acknowledged, ${count} recovered`);
}

test("a second open of the same directory fails while the first holds it", async () => {
  const fs = new SimFS({ seed: 1 });
  const db = await openEngine({ dir: "db", fs });
  await assert.rejects(openEngine({ dir: "db", fs }), StorageError);
  await db.close();
  const again = await openEngine({ dir: "db", fs });
  await again.close();
});

test("committed data survives close and reopen, in strict and batched mode", async () => {
  for (const durability of ["strict", "batched"] as const) {
    const fs = new SimFS({ seed: 2 });
    const db = await openEngine({ dir: "db", fs, durability });
    for (let i = 0; i < 50; i++) {
      await db.engine.transaction((tx) => {
        tx.put(enc(`k${i}`), enc(`v${i}`));
        if (i % 5 === 0) tx.delete(enc(`k${i - 1}`));
      });
    }
    await db.close();
    const again = await openEngine({ dir: "db", fs: fs.crash("dropUnsynced", 3) });
    assert.equal(again.engine.store.count(), 50 - 9);
    assert.equal(dec(again.engine.store.get("k49")!), "v49");
    assert.equal(again.engine.store.has("k4"), false);
    await again.close();
  }
});

test("after an fsync failure writes are refused until reopen, and reads go on", async () => {
  const fs = new SimFS({ seed: 5 });
  const db = await openEngine({ dir: "db", fs, durability: "strict" });
  const k = new TextEncoder().encode("k");
  await db.engine.transaction((tx) => tx.put(k, new Uint8Array([1])));
  fs.inject({ kind: "syncError", keepView: false, path: "**/*.wal" });
  await assert.rejects(db.engine.transaction((tx) => tx.put(k, new Uint8Array([2]))), StorageError);
  // Reads see the last durable state; every further write is refused.
  assert.deepEqual(await db.engine.transaction((tx) => tx.get(k)), new Uint8Array([1]));
  await assert.rejects(db.engine.transaction((tx) => tx.put(k, new Uint8Array([3]))), StorageError);
  await db.close().catch(() => {});
  const again = await openEngine({
    dir: "db",
    fs: fs.crash("dropUnsynced", 5),
    durability: "strict",
  });
  assert.deepEqual(again.engine.store.get(k), new Uint8Array([1]));
  await again.close();
});
