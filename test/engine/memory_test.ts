// The store's memory cap under commits: a commit the memory cannot hold is
// refused with OutOfMemoryError before it is logged, so what was refused
// never comes back after a reopen and what was accepted is always applied.
// And if applying a logged commit fails anyway, the engine stops instead of
// accepting writes it cannot show.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { OutOfMemoryError } from "../../src/errors.ts";
import { SimFS } from "../../src/fs/sim.ts";
import { type OpenEngine, openEngine } from "../../src/engine/open.ts";
import type { OrderedStore } from "../../src/core/store.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** One transaction: puts of `size`-byte values (the key's id repeated) and deletes. */
type Txn = { writes: { k: number; size: number; del: boolean }[] };

const workload = fc.record({
  groups: fc.array(
    fc.array(
      fc.record({
        writes: fc.array(
          fc.record({
            k: fc.nat(150),
            size: fc.oneof(fc.nat(64), fc.integer({ min: 2000, max: 16000 })),
            del: fc.boolean(),
          }),
          { minLength: 1, maxLength: 12 },
        ),
      }),
      { minLength: 1, maxLength: 6 },
    ),
    { minLength: 20, maxLength: 60 },
  ),
  durability: fc.constantFrom("strict" as const, "batched" as const),
  seed: fc.integer({ min: 1, max: 2 ** 31 }),
});

const MAX_MEMORY = 512 * 1024;
const figures = { runs: 0, accepted: 0, refused: 0 };

function state(db: OpenEngine): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of db.engine.store.entries()) out.set(dec(k), dec(v));
  return out;
}

/**
 * Runs groups of concurrent transactions against a small memory cap; returns
 * what went wrong (empty when the engine kept its promises).
 */
type Workload = typeof workload extends fc.Arbitrary<infer T> ? T : never;

async function run(
  w: Workload,
  breakStore?: (store: OrderedStore) => void,
): Promise<string[]> {
  const problems: string[] = [];
  const fs = new SimFS({ seed: w.seed });
  const db = await openEngine({
    dir: "db",
    fs,
    durability: w.durability,
    maxMemoryBytes: MAX_MEMORY,
    checkpointAfterBytes: 0,
  });
  breakStore?.(db.engine.store);
  const model = new Map<string, string>();
  const txns: Txn[] = w.groups.flat();
  let txId = 0;
  for (const group of w.groups) {
    const order: number[] = []; // this group's transactions in commit order
    const accepted = new Set<number>();
    await Promise.all(group.map((t: Txn) => {
      const id = txId++;
      return db.engine.transaction((tx) => {
        for (const wr of t.writes) {
          if (wr.del) tx.delete(enc(`k${wr.k}`));
          else tx.put(enc(`k${wr.k}`), enc(`${id}:`.padEnd(wr.size, "x")));
        }
        tx.atCommit(() => order.push(id));
      }).then(
        () => {
          figures.accepted++;
          accepted.add(id);
        },
        (err) => {
          if (!(err instanceof OutOfMemoryError)) throw err;
          figures.refused++;
        },
      );
    }));
    for (const id of order) {
      if (!accepted.has(id)) continue;
      for (const wr of txns[id]!.writes) {
        if (wr.del) model.delete(`k${wr.k}`);
        else model.set(`k${wr.k}`, `${id}:`.padEnd(wr.size, "x"));
      }
    }
    // What every resolved commit wrote is visible, and nothing else.
    if (!sameMap(state(db), model)) {
      problems.push("the store does not hold exactly the accepted commits");
      break;
    }
  }
  await db.close().catch(() => {});
  // After a reopen (with room to spare), the same: no refused commit was logged.
  const again = await openEngine({ dir: "db", fs });
  if (!sameMap(state(again), model)) {
    problems.push("after reopening, the state is not the accepted commits");
  }
  await again.close();
  figures.runs++;
  return problems;
}

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

test("at the memory cap, a commit is refused before it is logged, or applied whole", async () => {
  await fc.assert(
    fc.asyncProperty(workload, async (w) => {
      const problems = await run(w);
      assert.deepEqual(problems, []);
    }),
    { numRuns: 25, seed: 7, endOnFailure: true },
  );
  // The runs must have met the cap often, and committed plenty.
  assert.ok(figures.refused >= 50, `only ${figures.refused} commits were refused`);
  assert.ok(figures.accepted >= 500, `only ${figures.accepted} commits were accepted`);
});

test("negative control: without the reservation, refused commits are in the log", async () => {
  const result = await fc.check(
    fc.asyncProperty(workload, async (w) => {
      const problems = await run(w, (store) => {
        // Nothing is set aside before logging: the payload is applied as is
        // when its turn comes, and may then not fit.
        const payloads = new Map<number, Uint8Array>();
        let next = 0;
        store.stageCommit = (payload) => {
          payloads.set(++next, payload.slice());
          return next;
        };
        store.applyStaged = (staged) => {
          const payload = payloads.get(staged)!;
          payloads.delete(staged);
          store.applyPayload(payload);
        };
        store.discardStaged = (staged) => payloads.delete(staged);
      });
      assert.deepEqual(problems, []);
    }),
    { numRuns: 10, seed: 7, endOnFailure: true },
  );
  assert.equal(result.failed, true, "the property missed commits logged but not applied");
});

test("a commit that cannot be applied stops the engine; reopening applies it", async () => {
  const fs = new SimFS({ seed: 3 });
  const db = await openEngine({ dir: "db", fs, durability: "strict" });
  await db.engine.transaction((tx) => tx.put(enc("a"), enc("1")));
  // The allocator fails although room was reserved (fragmentation, say).
  const store = db.engine.store;
  const apply = store.applyStaged.bind(store);
  let failures = 1;
  store.applyStaged = (staged) => {
    if (failures-- > 0) {
      store.discardStaged(staged);
      throw new OutOfMemoryError("simulated: the allocator found no block");
    }
    apply(staged);
  };
  const first = db.engine.transaction((tx) => tx.put(enc("b"), enc("2")));
  const second = db.engine.transaction((tx) => tx.put(enc("c"), enc("3")));
  await Promise.all([
    assert.rejects(first, (err: unknown) => {
      assert.ok(err instanceof OutOfMemoryError);
      assert.match(err.message, /Cannot apply commit 2 .* it is in the log/);
      return true;
    }),
    assert.rejects(second, OutOfMemoryError),
  ]);
  // Nothing is read or written any more: the store may hold part of a commit.
  assert.throws(() => db.engine.latest, OutOfMemoryError);
  await assert.rejects(db.engine.transaction((tx) => tx.put(enc("d"), enc("4"))), OutOfMemoryError);
  await db.close();
  const again = await openEngine({ dir: "db", fs });
  assert.deepEqual(
    [...state(again)],
    [["a", "1"], ["b", "2"], ["c", "3"]],
    "both logged commits are applied on reopen",
  );
  await again.close();
});
