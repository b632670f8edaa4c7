// State cells (`run.state`, `tx.state`): the seed's StateCell stories (002,
// #180–#184) as behaviours, concurrency (64 transitions, 64 CAS loops),
// a model property, atomicity with KV, recovery, and bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Database } from "../../src/db/database.ts";
import { key, TAG } from "../../src/db/layout.ts";
import type { Value } from "../../src/core/codec.ts";
import {
  AlreadyExistsError,
  NotFoundError,
  RunClosedError,
  RunNotFoundError,
  StorageError,
  TransactionConflictError,
  VersionConflictError,
} from "../../src/errors.ts";
import { SIM_CRASH_MODES, type SimCrashMode, SimFS } from "../../src/fs/sim.ts";

/** The negative controls' seed: each fails on the same case on every runtime, every time. */
const NEGATIVE_CONTROL_SEED = 1;

/** The internal number of a run. */
async function runNumber(db: Database, id: string): Promise<number> {
  return await db.execute(async (ctx) => (await ctx.readableRun(id, "test")).n);
}

/**
 * Commits a write of cell `name` (its current bytes, rewritten) straight
 * through the engine, synchronously: a writer that lands between a
 * transaction's read and its commit.
 */
function interfere(db: Database, n: number, name: string): void {
  const k = key(n, TAG.STATE).string(name).finish();
  const bytes = db.engine.store.get(k)!.slice();
  void db.engine.transaction((tx) => tx.put(k, bytes));
}

const add = (s: { value: Value }): [Value, number] => {
  const next = (s.value as number) + 1;
  return [next, next];
};

// ---------------------------------------------------------------------------
// Seed 002, stories #180 and #181

test("init() creates a cell at version 1; read() returns value, version and updatedAt", async () => {
  let now = 1_000;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  assert.equal(await run.state.read("cell"), undefined);
  await run.state.init("cell", { phase: "plan", steps: [1, 2] });
  assert.deepEqual(await run.state.read("cell"), {
    value: { phase: "plan", steps: [1, 2] },
    version: 1,
    updatedAt: 1_000,
  });
  now = 2_000;
  assert.equal(await run.state.set("cell", "act"), 2);
  assert.deepEqual(await run.state.read("cell"), { value: "act", version: 2, updatedAt: 2_000 });
});

test("init() of an existing cell throws AlreadyExistsError and changes nothing", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.state.init("c", 1);
  await run.state.set("c", 2);
  await assert.rejects(run.state.init("c", 99), AlreadyExistsError);
  const s = await run.state.read("c");
  assert.equal(s?.value, 2);
  assert.equal(s?.version, 2);
});

test("delete() removes a cell and says whether it existed; exists() and list() follow", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  for (const name of ["b", "a", "é", "a/x"]) await run.state.init(name, name);
  assert.deepEqual(await run.state.list(), ["a", "a/x", "b", "é"]);
  assert.equal(await run.state.exists("a"), true);
  assert.equal(await run.state.delete("a"), true);
  assert.equal(await run.state.delete("a"), false);
  assert.equal(await run.state.exists("a"), false);
  assert.equal(await run.state.read("a"), undefined);
  assert.deepEqual(await run.state.list(), ["a/x", "b", "é"]);
  // Created again, a cell starts over at version 1 (documented).
  await run.state.set("b", 0);
  await run.state.delete("b");
  assert.equal(await run.state.set("b", 0), 1);
});

test("run isolation: cells of the same name in two runs are separate", async () => {
  await using db = await Database.open();
  const a = await db.runs.create();
  const b = await db.runs.create();
  await a.state.init("c", "a");
  assert.equal(await b.state.read("c"), undefined);
  await b.state.init("c", "b"); // no AlreadyExistsError: a's cell is not b's
  await a.state.set("c", "a2");
  assert.deepEqual([(await a.state.read("c"))?.version, (await b.state.read("c"))?.version], [
    2,
    1,
  ]);
  await a.state.init("only-a", 0);
  assert.deepEqual(await a.state.list(), ["c", "only-a"]);
  assert.deepEqual(await b.state.list(), ["c"]);
  assert.equal(await b.state.delete("only-a"), false);
  await assert.rejects(b.state.cas("only-a", 1, 0), NotFoundError);
  assert.equal(await a.kv.get("c"), undefined); // nor is a state cell a KV key
});

test("a cell is stored at u32(run) · 03 · string(name) in the documented record format", async () => {
  await using db = await Database.open(undefined, { clock: () => 0x0102 });
  const run = await db.runs.create();
  const n = await runNumber(db, run.id);
  await run.state.init("s", 5);
  await run.state.set("s", "x");
  const rec = db.engine.store.get(new Uint8Array([0, 0, 0, n, 0x03, 0x73, 0, 0]))!;
  // format 1 · u64 version 2 · u64 updatedAt 0x0102 · MessagePack "x"
  assert.deepEqual([...rec], [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 2, 0xa1, 0x78]);
  // Handles hold no state: another handle on the run sees the same cell.
  assert.equal((await db.run(run.id).state.read("s"))?.version, 2);
});

// ---------------------------------------------------------------------------
// Seed 002, story #182

test("cas() writes when the version matches and returns the next version", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.state.init("c", "v1");
  assert.equal(await run.state.cas("c", 1, "v2"), 2);
  assert.equal(await run.state.cas("c", 2, "v3"), 3);
  assert.deepEqual(
    await run.state.read("c").then((s) => [s?.value, s?.version]),
    ["v3", 3],
  );
});

test("cas() with a stale version throws VersionConflictError{expected, actual} and writes nothing", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.state.init("c", "v1");
  await run.state.cas("c", 1, "v2");
  for (const stale of [1, 3, 100]) {
    await assert.rejects(
      run.state.cas("c", stale, "lost"),
      (e: unknown) =>
        e instanceof VersionConflictError && e.expected === stale && e.actual === 2 &&
        e.name === "VersionConflictError",
    );
  }
  assert.equal((await run.state.read("c"))?.value, "v2");
  await assert.rejects(run.state.cas("missing", 1, 0), NotFoundError);
  assert.equal(await run.state.exists("missing"), false);
});

test("set() always succeeds, creates at 1, and increments the version", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  assert.equal(await run.state.set("c", "a"), 1);
  assert.equal(await run.state.set("c", "b"), 2);
  assert.equal(await run.state.cas("c", 2, "c"), 3);
  assert.equal(await run.state.set("c", "d"), 4);
  assert.deepEqual(await run.state.read("c").then((s) => s?.value), "d");
});

// ---------------------------------------------------------------------------
// Seed 002, story #183: transition

test("transition() applies fn once when uncontended and returns its result", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.state.init("c", 10);
  let calls = 0;
  const r = await run.state.transition("c", (s) => {
    calls++;
    assert.equal(s.version, 1);
    return [(s.value as number) * 2, `was ${s.value}`];
  });
  assert.equal(r, "was 10");
  assert.equal(calls, 1);
  assert.deepEqual(await run.state.read("c").then((s) => [s?.value, s?.version]), [20, 2]);
});

test("transition() re-runs fn on conflict, on the new state; only the last run counts", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const n = await runNumber(db, run.id);
  await run.state.init("c", 0);
  const seen: number[] = [];
  const r = await run.state.transition("c", (s) => {
    seen.push(s.version);
    if (seen.length === 1) interfere(db, n, "c"); // another writer commits meanwhile
    return [(s.value as number) + 1, seen.length];
  });
  assert.equal(r, 2);
  assert.deepEqual(seen, [1, 1]); // the interfering write kept the bytes, version 1
  assert.deepEqual(await run.state.read("c").then((s) => [s?.value, s?.version]), [1, 2]);
});

test("transition() throws TransactionConflictError after the retry budget, writing nothing", async () => {
  await using db = await Database.open(undefined, { maxRetries: 2 });
  const run = await db.runs.create();
  const n = await runNumber(db, run.id);
  await run.state.init("c", 0);
  let calls = 0;
  await assert.rejects(
    run.state.transition("c", (s) => {
      calls++;
      interfere(db, n, "c");
      return [(s.value as number) + 1, null];
    }),
    TransactionConflictError,
  );
  assert.equal(calls, 3); // the first attempt and 2 re-runs
  assert.deepEqual(await run.state.read("c").then((s) => [s?.value, s?.version]), [0, 1]);
});

test("transition() of a missing cell throws NotFoundError without calling fn", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  let calls = 0;
  await assert.rejects(
    run.state.transition("missing", () => {
      calls++;
      return [1, 1];
    }),
    NotFoundError,
  );
  assert.equal(calls, 0);
  assert.equal(await run.state.exists("missing"), false);
});

test("transition(): a throwing fn, or a bad return, writes nothing", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.state.init("c", 0);
  await assert.rejects(
    run.state.transition("c", () => {
      throw new Error("refused");
    }),
    /refused/,
  );
  const bad = (v: unknown) => v as readonly [Value, unknown];
  await assert.rejects(run.state.transition("c", () => bad(5)), TypeError);
  await assert.rejects(run.state.transition("c", () => bad([1])), TypeError);
  await assert.rejects(run.state.transition("c", () => bad([() => 1, "r"])), TypeError);
  await assert.rejects(run.state.transition("c", bad("not a function") as never), TypeError);
  assert.deepEqual(await run.state.read("c").then((s) => [s?.value, s?.version]), [0, 1]);
});

// ---------------------------------------------------------------------------
// Concurrency

async function concurrentIncrements(db: Database): Promise<void> {
  const run = await db.runs.create();
  await run.state.init("t", 0);
  await run.state.init("c", 0);
  // 64 transitions at once: each returns the count it wrote.
  const results = await Promise.all(
    Array.from({ length: 64 }, () => run.state.transition("t", add)),
  );
  assert.deepEqual(results.sort((a, b) => a - b), Array.from({ length: 64 }, (_, i) => i + 1));
  assert.deepEqual(await run.state.read("t").then((s) => [s?.value, s?.version]), [64, 65]);
  // 64 read-cas loops at once.
  let conflicts = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    for (;;) {
      const s = (await run.state.read("c"))!;
      try {
        await run.state.cas("c", s.version, (s.value as number) + 1);
        return;
      } catch (e) {
        if (!(e instanceof VersionConflictError)) throw e;
        conflicts++;
      }
    }
  }));
  assert.deepEqual(await run.state.read("c").then((s) => [s?.value, s?.version]), [64, 65]);
  assert.ok(conflicts > 0, "the loops did contend");
  // 64 sets at once: serialized, each gets its own version.
  const versions = await Promise.all(Array.from({ length: 64 }, (_, i) => run.state.set("t", i)));
  assert.deepEqual(versions.sort((a, b) => a - b), Array.from({ length: 64 }, (_, i) => i + 66));
}

test("64 concurrent transition() increments end at exactly 64 (in memory)", async () => {
  await using db = await Database.open();
  await concurrentIncrements(db);
});

test("64 concurrent transition() increments end at exactly 64 (strict, simulated disk)", async () => {
  const fs = new SimFS({ seed: 64 });
  let id: string;
  {
    await using db = await Database.open("db", { fs, durability: "strict" });
    await concurrentIncrements(db);
    id = (await db.runs.list())[0]!;
  }
  // And the outcome is durable.
  await using db = await Database.open("db", {
    fs: fs.crash("dropUnsynced", 1),
    durability: "strict",
  });
  assert.equal((await db.run(id).state.read("c"))?.value, 64);
  assert.equal((await db.run(id).state.read("t"))?.version, 129);
});

// ---------------------------------------------------------------------------
// Seed 002, story #184: inside transactions, with other primitives

test("tx.state reads, cas and set inside a transaction and see their own writes", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.state.init("c", 0);
  const out = await run.transaction(async (tx) => {
    const s = (await tx.state.read("c"))!;
    const v2 = await tx.state.cas("c", s.version, 1);
    const v3 = await tx.state.set("c", 2);
    const r = await tx.state.transition("c", add);
    await tx.state.init("d", "new");
    return [v2, v3, r, (await tx.state.read("c"))?.version, await tx.state.list()];
  });
  assert.deepEqual(out, [2, 3, 3, 4, ["c", "d"]]);
  assert.deepEqual(await run.state.read("c").then((s) => [s?.value, s?.version]), [3, 4]);
});

test("cross-primitive atomicity: a kv.put and a failing state.cas write neither", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.state.init("workflow", "start");
  const keysBefore = (await db.stats()).keys;
  await assert.rejects(
    run.transaction(async (tx) => {
      await tx.kv.put("task/status", "running");
      await tx.state.cas("workflow", 7, "step1"); // wrong version
    }),
    VersionConflictError,
  );
  assert.equal(await run.kv.get("task/status"), undefined);
  assert.deepEqual(await run.state.read("workflow").then((s) => [s?.value, s?.version]), [
    "start",
    1,
  ]);
  assert.equal((await db.stats()).keys, keysBefore);
  // With the right version both land, with one commit version for the KV entry.
  await run.transaction(async (tx) => {
    await tx.kv.put("task/status", "running");
    await tx.state.cas("workflow", 1, "step1");
  });
  assert.equal(await run.kv.get("task/status"), "running");
  assert.equal((await run.state.read("workflow"))?.version, 2);
});

// ---------------------------------------------------------------------------
// Model property

const NAMES = ["a", "b", "a/c"];

type Op =
  | { t: "init"; name: string; v: number }
  | { t: "cas"; name: string; stale: boolean; v: number }
  | { t: "set"; name: string; v: number }
  | { t: "del"; name: string }
  | { t: "transition"; name: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant("init" as const), name: fc.constantFrom(...NAMES), v: fc.nat(99) }),
  fc.record({
    t: fc.constant("cas" as const),
    name: fc.constantFrom(...NAMES),
    stale: fc.boolean(),
    v: fc.nat(99),
  }),
  fc.record({ t: fc.constant("set" as const), name: fc.constantFrom(...NAMES), v: fc.nat(99) }),
  fc.record({ t: fc.constant("del" as const), name: fc.constantFrom(...NAMES) }),
  fc.record({ t: fc.constant("transition" as const), name: fc.constantFrom(...NAMES) }),
);

/**
 * Runs `ops` on a database and on a Map of {value, version}, comparing
 * outcomes and every cell after each step. `keepVersionsOnDelete` breaks
 * the model (the negative control): a cell created again would continue
 * its old version.
 */
async function checkAgainstModel(ops: Op[], keepVersionsOnDelete = false): Promise<void> {
  await using db = await Database.open();
  const run = await db.runs.create();
  const model = new Map<string, { value: number; version: number }>();
  const graveyard = new Map<string, number>();
  const fresh = (name: string): number => keepVersionsOnDelete ? (graveyard.get(name) ?? 0) + 1 : 1;
  for (const op of ops) {
    const cur = model.get(op.name);
    switch (op.t) {
      case "init":
        if (cur !== undefined) {
          await assert.rejects(run.state.init(op.name, op.v), AlreadyExistsError);
        } else {
          await run.state.init(op.name, op.v);
          model.set(op.name, { value: op.v, version: fresh(op.name) });
        }
        break;
      case "cas": {
        const expected = cur === undefined ? 1 : op.stale ? cur.version + 1 : cur.version;
        if (cur === undefined) {
          await assert.rejects(run.state.cas(op.name, expected, op.v), NotFoundError);
        } else if (op.stale) {
          await assert.rejects(run.state.cas(op.name, expected, op.v), {
            expected,
            actual: cur.version,
          });
        } else {
          assert.equal(await run.state.cas(op.name, expected, op.v), cur.version + 1);
          model.set(op.name, { value: op.v, version: cur.version + 1 });
        }
        break;
      }
      case "set": {
        const version = cur === undefined ? fresh(op.name) : cur.version + 1;
        assert.equal(await run.state.set(op.name, op.v), version);
        model.set(op.name, { value: op.v, version });
        break;
      }
      case "del":
        assert.equal(await run.state.delete(op.name), cur !== undefined);
        if (cur !== undefined) graveyard.set(op.name, cur.version);
        model.delete(op.name);
        break;
      case "transition":
        if (cur === undefined) {
          await assert.rejects(run.state.transition(op.name, add), NotFoundError);
        } else {
          assert.equal(await run.state.transition(op.name, add), cur.value + 1);
          model.set(op.name, { value: cur.value + 1, version: cur.version + 1 });
        }
        break;
    }
    for (const name of NAMES) {
      const s = await run.state.read(name);
      const m = model.get(name);
      assert.deepEqual(s === undefined ? undefined : { value: s.value, version: s.version }, m);
      assert.equal(await run.state.exists(name), m !== undefined);
    }
    assert.deepEqual(await run.state.list(), [...model.keys()].sort());
  }
}

test("property: init/cas/set/delete/transition agree with a model", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), (ops) => checkAgainstModel(ops)),
    { numRuns: 100 },
  );
});

test("negative control: a model that keeps versions across delete is caught", async () => {
  const r = await fc.check(
    fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), (ops) => checkAgainstModel(ops, true)),
    { numRuns: 200, endOnFailure: true, seed: NEGATIVE_CONTROL_SEED },
  );
  assert.equal(r.failed, true);
});

// ---------------------------------------------------------------------------
// Recovery

test("cells, versions and updatedAt survive close and reopen", async () => {
  const fs = new SimFS({ seed: 3 });
  let now = 100;
  const clock = () => now;
  let id: string;
  {
    await using db = await Database.open("db", { fs, durability: "strict", clock });
    const run = await db.runs.create();
    id = run.id;
    await run.state.init("a", { n: 1 });
    now = 200;
    await run.state.cas("a", 1, { n: 2 });
    await run.state.set("b", "x");
    await run.state.set("gone", 0);
    await run.state.delete("gone");
  }
  await using db = await Database.open("db", { fs, durability: "strict", clock });
  const run = db.run(id);
  assert.deepEqual(await run.state.read("a"), { value: { n: 2 }, version: 2, updatedAt: 200 });
  assert.deepEqual(await run.state.read("b"), { value: "x", version: 1, updatedAt: 200 });
  assert.deepEqual(await run.state.list(), ["a", "b"]);
  assert.equal(await run.state.cas("a", 2, { n: 3 }), 3); // versions go on from there
});

interface CrashCase {
  ops: { name: string; kind: "set" | "cas" | "del"; v: number }[];
  haltAt: number;
  mode: SimCrashMode;
  seed: number;
}

const crashArb: fc.Arbitrary<CrashCase> = fc.record({
  ops: fc.array(
    fc.record({
      name: fc.constantFrom("x", "y"),
      kind: fc.constantFrom("set" as const, "cas" as const, "del" as const),
      v: fc.nat(999),
    }),
    { minLength: 1, maxLength: 12 },
  ),
  haltAt: fc.integer({ min: 0, max: 50 }),
  mode: fc.constantFrom(...SIM_CRASH_MODES),
  seed: fc.integer({ min: 1, max: 2 ** 31 }),
});

test("property: after a crash (strict) every acknowledged write is there with its version", async () => {
  let crashedMidway = 0;
  await fc.assert(
    fc.asyncProperty(crashArb, async (c) => {
      const fs = new SimFS({ seed: c.seed });
      const db = await Database.open("db", { fs, durability: "strict" });
      const run = await db.runs.create();
      fs.haltAfter(fs.opCount + c.haltAt);
      type Cells = Map<string, { value: number; version: number }>;
      const acked: Cells = new Map();
      let pending: Cells | undefined; // the state if the failed write did land
      for (const op of c.ops) {
        const next: Cells = new Map(acked);
        const cur = acked.get(op.name);
        const write = { value: op.v, version: (cur?.version ?? 0) + 1 };
        try {
          if (op.kind === "del") {
            await run.state.delete(op.name);
            next.delete(op.name);
          } else if (op.kind === "cas" && cur !== undefined) {
            await run.state.cas(op.name, cur.version, op.v);
            next.set(op.name, write);
          } else {
            await run.state.set(op.name, op.v);
            next.set(op.name, write);
          }
        } catch (err) {
          assert.ok(err instanceof StorageError, String(err));
          if (op.kind === "del") next.delete(op.name);
          else next.set(op.name, write);
          pending = next;
          crashedMidway++;
          break;
        }
        acked.clear();
        for (const [k, v] of next) acked.set(k, v);
      }
      const after = fs.crash(c.mode, c.seed);
      await db.close().catch(() => {});
      await using db2 = await Database.open("db", { fs: after, durability: "strict" });
      const r2 = db2.run(run.id);
      const got: Cells = new Map();
      for (const name of await r2.state.list()) {
        const s = (await r2.state.read(name))!;
        got.set(name, { value: s.value as number, version: s.version });
      }
      const matches = (want: Cells) =>
        assert.deepEqual([...got].sort(), [...want].sort(), "recovered cells");
      if (pending === undefined) matches(acked);
      else {
        try {
          matches(acked);
        } catch {
          matches(pending);
        }
      }
    }),
    { numRuns: 40 },
  );
  assert.ok(crashedMidway > 0, "some cases crashed in the middle of the writes");
});

// ---------------------------------------------------------------------------
// Run status and bad input

test("writes into a completed run throw RunClosedError, into an unknown run RunNotFoundError", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.state.init("c", 1);
  await db.runs.complete(run.id);
  await assert.rejects(run.state.init("d", 1), RunClosedError);
  await assert.rejects(run.state.set("c", 2), RunClosedError);
  await assert.rejects(run.state.cas("c", 1, 2), RunClosedError);
  await assert.rejects(run.state.transition("c", add), RunClosedError);
  await assert.rejects(run.state.delete("c"), RunClosedError);
  assert.deepEqual(await run.state.read("c").then((s) => [s?.value, s?.version]), [1, 1]);
  assert.deepEqual(await run.state.list(), ["c"]);
  const ghost = db.run("no-such-run");
  await assert.rejects(ghost.state.init("c", 1), RunNotFoundError);
  await assert.rejects(ghost.state.read("c"), RunNotFoundError);
  await assert.rejects(ghost.state.list(), RunNotFoundError);
});

class Point {
  x = 1;
}

test("bad input throws TypeError or RangeError and writes nothing", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.state.init("c", 1);
  const keysBefore = (await db.stats()).keys;
  const st = run.state as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const long = "é".repeat(513); // 1026 UTF-8 bytes
  for (const name of ["", 5, undefined, null]) {
    await assert.rejects(st.init!(name, 1), TypeError);
    await assert.rejects(st.read!(name), TypeError);
    await assert.rejects(st.cas!(name, 1, 1), TypeError);
    await assert.rejects(st.set!(name, 1), TypeError);
    await assert.rejects(st.delete!(name), TypeError);
    await assert.rejects(st.exists!(name), TypeError);
    await assert.rejects(st.transition!(name, add), TypeError);
  }
  for (const m of ["init", "read", "cas", "set", "delete", "exists", "transition"]) {
    const args = m === "cas" ? [long, 1, 1] : m === "transition" ? [long, add] : [long, 1];
    await assert.rejects(st[m]!(...args), RangeError, m);
  }
  for (const v of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    await assert.rejects(run.state.cas("c", v, 2), RangeError, `version ${v}`);
  }
  await assert.rejects(st.cas!("c", "1", 2), TypeError);
  await assert.rejects(st.cas!("c", 1n, 2), TypeError);
  for (const v of [() => 1, Symbol("s"), new Point(), undefined, { f: () => 1 }]) {
    await assert.rejects(st.init!("new", v), TypeError);
    await assert.rejects(st.set!("c", v), TypeError);
    await assert.rejects(st.cas!("c", 1, v), TypeError);
  }
  assert.equal((await db.stats()).keys, keysBefore);
  assert.deepEqual(await run.state.read("c").then((s) => [s?.value, s?.version]), [1, 1]);
  assert.deepEqual(await run.state.list(), ["c"]);
});

test("strict: standalone init, set, cas and delete of one turn share one commit, in call order", async () => {
  const db = await Database.open("db", { fs: new SimFS() }); // strict by default
  const run = await db.runs.create();
  await run.state.init("gone", 0);
  const before = (await db.stats()).commits;
  const results = await Promise.all([
    run.state.init("phase", "plan"), // version 1
    run.state.set("phase", "act"), // sees the init: version 2
    run.state.cas("phase", 2, "done"), // sees the set: version 3
    run.state.delete("gone"),
    run.state.set("counter", 1),
  ]);
  assert.deepEqual(results, [undefined, 2, 3, true, 1]);
  // A failing write fails alone: the cell exists already.
  const [dup, ok] = await Promise.allSettled([
    run.state.init("phase", "again"),
    run.state.set("counter", 2),
  ]);
  assert.ok(dup.status === "rejected" && dup.reason instanceof AlreadyExistsError);
  assert.deepEqual(ok, { status: "fulfilled", value: 2 });
  assert.equal((await db.stats()).commits, before + 2);
  assert.equal((await run.state.read("phase"))?.value, "done");
  assert.equal(await run.state.exists("gone"), false);
  await db.close();
});
