// Standalone reads (`run.kv.get`, `list`, …) run with no transaction, over the
// latest applied state in one synchronous step (Engine.latest). They must see
// exactly what a transaction started at the same moment sees, whatever is in
// flight: unacknowledged strict commits, run deletes, a run id re-created
// under a new run number, two databases with the same run ids.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Database } from "../../src/db/database.ts";
import { SimFS } from "../../src/fs/sim.ts";

/** The negative controls' seed: each fails on the same case on every runtime, every time. */
const NEGATIVE_CONTROL_SEED = 1;

type Op =
  | { kind: "put"; run: number; key: number; value: number }
  | { kind: "delete"; run: number; key: number }
  | { kind: "drop"; run: number }
  | { kind: "recreate"; run: number }
  | { kind: "complete"; run: number }
  | { kind: "append"; run: number; value: number }
  | { kind: "cell"; run: number; value: number }
  | { kind: "settle" }
  | { kind: "read"; run: number; key: number };

const RUNS = ["a", "b"];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("put" as const),
    run: fc.nat(1),
    key: fc.nat(3),
    value: fc.nat(1000),
  }),
  fc.record({ kind: fc.constant("delete" as const), run: fc.nat(1), key: fc.nat(3) }),
  fc.record({ kind: fc.constant("drop" as const), run: fc.nat(1) }),
  fc.record({ kind: fc.constant("recreate" as const), run: fc.nat(1) }),
  fc.record({ kind: fc.constant("complete" as const), run: fc.nat(1) }),
  fc.record({ kind: fc.constant("append" as const), run: fc.nat(1), value: fc.nat(1000) }),
  fc.record({ kind: fc.constant("cell" as const), run: fc.nat(1), value: fc.nat(1000) }),
  fc.constant({ kind: "settle" as const }),
  fc.record({ kind: fc.constant("read" as const), run: fc.nat(1), key: fc.nat(3) }),
);

/** What the property met, to show it exercised the cases that matter. */
const seen = { inFlight: 0, missingRun: 0 };

/** What a read returned, comparable: a value, or the error's name. */
async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await p };
  } catch (err) {
    return { error: (err as Error).name };
  }
}

/**
 * Runs the ops on a strict database over SimFS (commits wait for their
 * fsync, so reads meet commits in flight). At each read, a standalone read
 * and a transaction's read are issued in the same synchronous step, or —
 * `staleBy` > 0, the negative control — the standalone read that many
 * ops earlier. Returns the pairs that differed.
 */
async function differences(ops: Op[], staleBy: number): Promise<string[]> {
  const fs = new SimFS();
  await using db = await Database.open("db", { fs, durability: "strict" });
  // A second database with the same run ids: its records must never leak in.
  await using other = await Database.open();
  for (const id of RUNS) {
    await db.runs.create({ id });
    await (await other.runs.create({ id })).kv.put("k0", "other database");
  }
  const pending: Promise<unknown>[] = [];
  let unsettled = 0; // writes issued and not yet resolved or rejected
  const issue = (p: Promise<unknown>): void => {
    unsettled++;
    pending.push(outcome(p).finally(() => unsettled--));
  };
  const early: Promise<unknown>[] = [];
  const diffs: string[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const id = RUNS[op.kind === "settle" ? 0 : op.run]!;
    const run = db.run(id);
    if (staleBy > 0) early.push(outcome(run.kv.get("k0")));
    switch (op.kind) {
      case "put":
        issue(run.kv.put(`k${op.key}`, op.value));
        break;
      case "delete":
        issue(run.kv.delete(`k${op.key}`));
        break;
      case "recreate":
        issue(db.runs.create({ id })); // AlreadyExistsError unless dropped
        break;
      case "drop":
        issue(db.runs.delete(id)); // a cascading delete; the id may be created again
        break;
      case "complete":
        issue(db.runs.complete(id));
        break;
      case "append":
        issue(run.events.append("e", op.value));
        break;
      case "cell":
        issue(run.state.set("c", op.value));
        break;
      case "settle":
        await Promise.all(pending.splice(0));
        break;
      case "read": {
        const k = staleBy > 0 ? "k0" : `k${op.key}`;
        if (unsettled > 0) seen.inFlight++;
        const alone = staleBy > 0 && i >= staleBy ? early[i - staleBy]! : outcome(run.kv.get(k));
        const inTx = outcome(db.transaction((tx) => tx.run(id).kv.get(k)));
        const listed = outcome(run.kv.entries());
        const listedInTx = outcome(db.transaction((tx) => tx.run(id).kv.entries()));
        // The event log (length, head) and a state cell, alone and in a transaction.
        const others = outcome(
          Promise.all([run.events.length(), run.events.head(), run.state.read("c")]),
        );
        const othersInTx = outcome(db.transaction((tx) => {
          const r = tx.run(id);
          return Promise.all([r.events.length(), r.events.head(), r.state.read("c")]);
        }));
        const [a, b, c, d, e, f] = await Promise.all([
          alone,
          inTx,
          listed,
          listedInTx,
          others,
          othersInTx,
        ]);
        if (staleBy === 0 && JSON.stringify(e) !== JSON.stringify(f)) {
          diffs.push(`events/state ${id}: ${JSON.stringify(e)} vs ${JSON.stringify(f)}`);
        }
        if (JSON.stringify(b).includes("RunNotFoundError")) seen.missingRun++;
        if (JSON.stringify(a) !== JSON.stringify(b)) {
          diffs.push(`get ${id}/${k}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
        }
        if (staleBy === 0 && JSON.stringify(c) !== JSON.stringify(d)) {
          diffs.push(`entries ${id}: ${JSON.stringify(c)} vs ${JSON.stringify(d)}`);
        }
        break;
      }
    }
  }
  await Promise.all(pending);
  return diffs;
}

test("a standalone read sees what a transaction started in the same step sees", async () => {
  let reads = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 40 }), async (ops) => {
      reads += ops.filter((o) => o.kind === "read").length;
      assert.deepEqual(await differences(ops, 0), []);
    }),
    { numRuns: 300 },
  );
  assert.ok(reads > 400, `the property compared only ${reads} reads`);
  assert.ok(seen.inFlight > 50, `only ${seen.inFlight} reads met a commit in flight`);
  assert.ok(seen.missingRun > 30, `only ${seen.missingRun} reads met a deleted run`);
});

test("negative control: a standalone read taken a few ops earlier is caught", async () => {
  const result = await fc.check(
    fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 40 }), async (ops) => {
      assert.deepEqual(await differences(ops, 3), []);
    }),
    { seed: NEGATIVE_CONTROL_SEED, numRuns: 150, endOnFailure: true },
  );
  assert.ok(result.failed, "stale reads went unnoticed: the property cannot fail");
});

test("reads of a run id re-created under a new run number never return the old run's data", async () => {
  await using db = await Database.open();
  const run = await db.runs.create({ id: "r" });
  await run.kv.put("k", "first");
  assert.equal(await run.kv.get("k"), "first"); // caches run r's number
  await db.runs.delete("r");
  await assert.rejects(run.kv.get("k"), { name: "RunNotFoundError" });
  await db.runs.create({ id: "r" });
  assert.equal(await run.kv.get("k"), undefined);
  await run.kv.put("k", "second");
  assert.equal(await run.kv.get("k"), "second");
});

test("standalone reads after close reject with DatabaseClosedError", async () => {
  const db = await Database.open();
  const run = await db.runs.create();
  await run.kv.put("k", 1);
  await db.close();
  await assert.rejects(run.kv.get("k"), { name: "DatabaseClosedError" });
  await assert.rejects(run.kv.list(), { name: "DatabaseClosedError" });
});

// ---------------------------------------------------------------------------
// The run record cache (DbCore.runRecords): a put or read reuses the record
// last decoded for its run while the engine saw no write of the run's key.
// Differential: the same schedule on a database whose cache never hits
// (lastWriteOf says "just written") must give the same outcomes.

type CacheOp =
  | { kind: "put"; run: number; key: number }
  | { kind: "txPut"; run: number; key: number; mid: "complete" | "drop" | "recreate" | "none" }
  | { kind: "get"; run: number; key: number }
  | { kind: "complete" | "drop" | "recreate" | "resume"; run: number };

const cacheOpArb: fc.Arbitrary<CacheOp> = fc.oneof(
  fc.record({ kind: fc.constant("put" as const), run: fc.nat(1), key: fc.nat(2) }),
  fc.record({
    kind: fc.constant("txPut" as const),
    run: fc.nat(1),
    key: fc.nat(2),
    mid: fc.constantFrom(
      "complete" as const,
      "drop" as const,
      "recreate" as const,
      "none" as const,
    ),
  }),
  fc.record({ kind: fc.constant("get" as const), run: fc.nat(1), key: fc.nat(2) }),
  fc.record({
    kind: fc.constantFrom(
      "complete" as const,
      "drop" as const,
      "recreate" as const,
      "resume" as const,
    ),
    run: fc.nat(1),
  }),
);

/** Runs the schedule; returns every outcome and the final state, as JSON. */
async function cacheSchedule(
  ops: CacheOp[],
  lastWriteOf: ((id: string) => number) | undefined,
): Promise<string> {
  await using db = await Database.open("db", {
    fs: new SimFS(),
    durability: "strict",
    clock: () => 1_000_000, // timestamps alike in both runs
  });
  if (lastWriteOf !== undefined) db.engine.lastWriteOf = lastWriteOf;
  for (const id of RUNS) await db.runs.create({ id });
  const out: unknown[] = [];
  const lifecycle = (kind: string, id: string): Promise<unknown> =>
    kind === "complete"
      ? db.runs.complete(id)
      : kind === "resume"
      ? db.runs.resume(id)
      : kind === "drop"
      ? db.runs.delete(id)
      : db.runs.create({ id });
  let i = 0;
  for (const op of ops) {
    const id = RUNS[op.run]!;
    const run = db.run(id);
    const v = i++;
    switch (op.kind) {
      case "put":
        out.push(await outcome(run.kv.put(`k${op.key}`, v)));
        break;
      case "get":
        out.push(await outcome(run.kv.get(`k${op.key}`)));
        break;
      case "txPut": {
        let attempts = 0;
        out.push(
          await outcome(db.transaction(async (tx) => {
            await tx.run(id).kv.put(`k${op.key}`, v);
            // The run changes under the transaction (first attempt only).
            if (attempts++ === 0 && op.mid !== "none") await outcome(lifecycle(op.mid, id));
          })),
          attempts,
        );
        break;
      }
      default:
        out.push(await outcome(lifecycle(op.kind, id)));
    }
  }
  for (const id of RUNS) {
    out.push(await outcome(db.runs.get(id).then((r) => r?.status)));
    out.push(await outcome(db.run(id).kv.entries()));
  }
  return JSON.stringify(out);
}

test("the run record cache changes no outcome: same results as with no cache", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(cacheOpArb, { minLength: 5, maxLength: 30 }), async (ops) => {
      assert.equal(await cacheSchedule(ops, undefined), await cacheSchedule(ops, () => Infinity));
    }),
    { numRuns: 150 },
  );
});

test("negative control: a cache that ignores writes of run records is caught", async () => {
  const result = await fc.check(
    fc.asyncProperty(fc.array(cacheOpArb, { minLength: 5, maxLength: 30 }), async (ops) => {
      assert.equal(await cacheSchedule(ops, () => 0), await cacheSchedule(ops, () => Infinity));
    }),
    { seed: NEGATIVE_CONTROL_SEED, numRuns: 150, endOnFailure: true },
  );
  assert.ok(result.failed, "a stale run record cache went unnoticed");
});
