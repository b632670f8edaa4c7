// Runs: the lifecycle (every one of the 36 status pairs), tags and
// metadata, index-driven queries checked against a model over all runs,
// commit-time counters, cascading delete down to the last key (batched, and
// finished at open after a crash), and recovery of all of it.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Database } from "../../src/db/database.ts";
import {
  DELETE_BATCH_KEYS,
  type RunMetadata,
  type RunQuery,
  type Runs,
  type RunStats,
} from "../../src/db/runs.ts";
import { decodeRunRecord, runKey, type RunStatus } from "../../src/db/context.ts";
import { key, range, runRange, STATUS_CODES, SYS, SYSTEM, TAG } from "../../src/db/layout.ts";
import {
  AlreadyExistsError,
  InvalidTransitionError,
  RunClosedError,
  RunNotFoundError,
  StorageError,
} from "../../src/errors.ts";
import type { Transaction, TransactionOptions } from "../../src/engine/engine.ts";
import { openEngine } from "../../src/engine/open.ts";
import { expiryKey } from "../../src/engine/ttl.ts";
import { SIM_CRASH_MODES, SimFS } from "../../src/fs/sim.ts";

/** The negative controls' seed: each fails on the same case on every runtime, every time. */
const NEGATIVE_CONTROL_SEED = 1;

const STATUSES: readonly RunStatus[] = STATUS_CODES;

// The lifecycle of issue 4 (seed 002 `is_valid_transition`), written out
// pair by pair, independently of the implementation's table.
const ALLOWED = new Set([
  "active>completed",
  "active>failed",
  "active>cancelled",
  "active>paused",
  "active>archived",
  "paused>active",
  "paused>cancelled",
  "paused>archived",
  "completed>archived",
  "failed>archived",
  "cancelled>archived",
]);

/** The named method that asks for `to` (resume for active). */
function named(runs: Runs, id: string, to: RunStatus): Promise<RunMetadata> {
  switch (to) {
    case "active":
      return runs.resume(id);
    case "paused":
      return runs.pause(id);
    case "completed":
      return runs.complete(id);
    case "failed":
      return runs.fail(id, "named failure");
    case "cancelled":
      return runs.cancel(id);
    case "archived":
      return runs.archive(id);
  }
}

/** A valid path from active to `status`. */
async function reach(runs: Runs, id: string, status: RunStatus): Promise<void> {
  if (status === "active") return;
  if (status === "failed") await runs.fail(id, "reached failed");
  else await runs.setStatus(id, status);
}

type Counts = Record<RunStatus, number>;
const zero = (): Counts => ({
  active: 0,
  paused: 0,
  completed: 0,
  failed: 0,
  cancelled: 0,
  archived: 0,
});
function statsOf(c: Counts): RunStats {
  return { total: STATUSES.reduce((s, st) => s + c[st], 0), ...c };
}

const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Every key and value in the store, by hex key. */
function storeMap(db: Database): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of db.engine.store.entries({})) m.set(hex(k), hex(v));
  return m;
}

function rangeCount(db: Database, n: number): number {
  let count = 0;
  db.engine.store.scan(runRange(n), () => {
    count++;
  });
  return count;
}

function runNumber(db: Database, id: string): number {
  const bytes = db.engine.store.get(runKey(id));
  assert.ok(bytes !== undefined, `run ${id} has a record`);
  return decodeRunRecord(bytes, id).n;
}

/** Writes `count` raw keys (event-tagged, unique) into run number `n`'s range. */
async function fillRange(db: Database, n: number, count: number, from = 0): Promise<void> {
  for (let at = from; at < from + count; at += 50_000) {
    await db.engine.transaction((tx) => {
      for (let i = at; i < Math.min(at + 50_000, from + count); i++) {
        tx.put(key(n, TAG.EVENT).u64(i).finish(), new Uint8Array([i & 0xff]));
      }
    });
  }
}

const errorOf = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e) => e);

/** Wraps the engine's transactions to watch them (size, reads). */
function watchTransactions(
  db: Database,
  onTx: (tx: Transaction) => void,
  afterBody?: (tx: Transaction) => void,
): () => void {
  const engine = db.engine;
  const original = engine.transaction;
  engine.transaction = <T>(
    fn: (tx: Transaction) => Promise<T> | T,
    options?: TransactionOptions,
  ): Promise<T> =>
    original.call(engine, async (tx: Transaction) => {
      onTx(tx);
      const r = await fn(tx);
      afterBody?.(tx);
      return r;
    }, options) as Promise<T>;
  return () => {
    engine.transaction = original;
  };
}

// ---------------------------------------------------------------------------
// Status rules

test("status rules: all 36 (from, to) pairs via setStatus and the named methods", async () => {
  let now = 1_000;
  await using db = await Database.open(undefined, { clock: () => now });
  const counts = zero();
  const statusOf = new Map<string, RunStatus>();
  let allowed = 0;
  let refused = 0;
  for (const via of ["setStatus", "named"] as const) {
    for (const from of STATUSES) {
      for (const to of STATUSES) {
        now += 10;
        const run = await db.runs.create({ id: `${via}-${from}-${to}` });
        counts.active++;
        await reach(db.runs, run.id, from);
        counts.active--;
        counts[from]++;
        const before = await db.runs.get(run.id);
        assert.equal(before?.status, from);
        now += 10;
        const call = via === "setStatus"
          ? db.runs.setStatus(run.id, to)
          : named(db.runs, run.id, to);
        if (ALLOWED.has(`${from}>${to}`)) {
          allowed++;
          const m = await call;
          assert.equal(m.status, to);
          assert.deepEqual(await db.runs.get(run.id), m);
          assert.equal(m.updatedAt, now, "updatedAt is the clock at the change");
          if (to === "completed" || to === "failed" || to === "cancelled") {
            assert.equal(m.completedAt, now, `${from}>${to} stamps completedAt`);
          } else {
            assert.equal(m.completedAt, before!.completedAt, `${from}>${to} keeps completedAt`);
          }
          if (to === "failed" && via === "named") assert.equal(m.error, "named failure");
          else assert.equal(m.error, before!.error);
          counts[from]--;
          counts[to]++;
          statusOf.set(run.id, to);
        } else {
          refused++;
          const err = await errorOf(call);
          assert.ok(err instanceof InvalidTransitionError, `${from}>${to} must be refused`);
          assert.equal(err.from, from);
          assert.equal(err.to, to);
          assert.deepEqual(await db.runs.get(run.id), before, "a refused change writes nothing");
          statusOf.set(run.id, from);
        }
        assert.deepEqual(await db.runs.stats(), statsOf(counts));
      }
    }
  }
  assert.equal(allowed, 2 * ALLOWED.size);
  assert.equal(refused, 2 * (36 - ALLOWED.size));
  // The status index agrees with every record.
  for (const s of STATUSES) {
    const ids = (await db.runs.query({ status: s })).map((r) => r.id).sort();
    const want = [...statusOf].filter(([, st]) => st === s).map(([id]) => id).sort();
    assert.deepEqual(ids, want, `query({ status: ${s} })`);
  }
});

test("completedAt, error and updatedAt follow the engine clock through a lifecycle", async () => {
  let now = 1_000;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  let m = (await db.runs.get(run.id))!;
  assert.deepEqual([m.createdAt, m.updatedAt, m.completedAt, m.error], [
    1000,
    1000,
    undefined,
    undefined,
  ]);
  now = 2_000;
  m = await db.runs.pause(run.id);
  assert.deepEqual([m.updatedAt, m.completedAt], [2000, undefined]);
  now = 3_000;
  m = await db.runs.resume(run.id);
  assert.deepEqual([m.status, m.updatedAt, m.completedAt], ["active", 3000, undefined]);
  now = 4_000;
  m = await db.runs.fail(run.id, "tool timed out");
  assert.deepEqual([m.updatedAt, m.completedAt, m.error], [4000, 4000, "tool timed out"]);
  now = 5_000;
  m = await db.runs.archive(run.id);
  assert.deepEqual(
    [m.status, m.createdAt, m.updatedAt, m.completedAt, m.error],
    ["archived", 1000, 5000, 4000, "tool timed out"],
  );
  // Archived is terminal, whatever is asked.
  for (const to of STATUSES) {
    const err = await errorOf(db.runs.setStatus(run.id, to));
    assert.ok(err instanceof InvalidTransitionError);
  }
  // Unknown runs: RunNotFoundError from every lifecycle method.
  for (const to of STATUSES) {
    const err = await errorOf(named(db.runs, "missing", to));
    assert.ok(err instanceof RunNotFoundError);
    assert.equal(err.runId, "missing");
  }
});

test("status changes in db.transaction commit or roll back with it, counters too", async () => {
  await using db = await Database.open();
  const a = await db.runs.create({ id: "a" });
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.runs.complete(a.id);
      assert.equal((await tx.runs.get(a.id))?.status, "completed"); // read your writes
      throw new Error("abort");
    }),
    /abort/,
  );
  assert.equal((await db.runs.get(a.id))?.status, "active");
  assert.deepEqual(await db.runs.stats(), statsOf({ ...zero(), active: 1 }));
  await db.transaction(async (tx) => {
    await tx.runs.complete(a.id);
    await tx.runs.archive(a.id);
    await tx.runs.create({ id: "b" });
  });
  assert.equal((await db.runs.get(a.id))?.status, "archived");
  assert.deepEqual(await db.runs.stats(), statsOf({ ...zero(), active: 1, archived: 1 }));
  assert.deepEqual((await db.runs.query({ status: "archived" })).map((r) => r.id), ["a"]);
});

test("concurrent terminal changes of one run: one wins, the others are refused", async () => {
  await using db = await Database.open();
  const ids: string[] = [];
  for (let i = 0; i < 16; i++) ids.push((await db.runs.create()).id);
  const results = await Promise.allSettled(
    ids.flatMap((id) => [db.runs.complete(id), db.runs.cancel(id), db.runs.fail(id, "x")]),
  );
  for (let i = 0; i < ids.length; i++) {
    const mine = results.slice(3 * i, 3 * i + 3);
    assert.equal(mine.filter((r) => r.status === "fulfilled").length, 1);
    for (const r of mine) {
      if (r.status === "rejected") assert.ok(r.reason instanceof InvalidTransitionError);
    }
  }
  const s = await db.runs.stats();
  assert.equal(s.total, 16);
  assert.equal(s.completed + s.cancelled + s.failed, 16);
  assert.equal(s.active, 0);
  assert.ok((await db.stats()).conflicts > 0, "the changes really overlapped");
});

test("data writes need an active or paused run; reads work in every status", async () => {
  await using db = await Database.open();
  // Primitives check their run with ctx.runNumber (writable for a write), reads with
  // ctx.readableRun; KV's put is wired on top of them.
  const write = (id: string) =>
    db.execute((ctx) => {
      ctx.runNumber(id, true, `write into run ${id}`);
      return ctx.runSync(id)!;
    });
  const read = (id: string) => db.execute((ctx) => ctx.readableRun(id, `read run ${id}`));
  for (const status of STATUSES) {
    const run = await db.runs.create({ id: status });
    await reach(db.runs, run.id, status);
    assert.equal((await read(run.id)).status, status);
    if (status === "active" || status === "paused") {
      assert.equal((await write(run.id)).id, run.id);
      await run.kv.put("k", status);
    } else {
      const err = await errorOf(write(run.id));
      assert.ok(err instanceof RunClosedError, status);
      assert.equal(err.status, status);
      const kvErr = await errorOf(run.kv.put("k", status));
      assert.ok(kvErr instanceof RunClosedError, `kv.put into a ${status} run`);
    }
    assert.equal(
      await run.kv.get("k"),
      status === "active" || status === "paused" ? status : undefined,
    );
  }
  await assert.rejects(write("missing"), RunNotFoundError);
  await assert.rejects(db.run("missing").kv.put("k", 1), RunNotFoundError);
  await db.runs.delete("active");
  await assert.rejects(write("active"), RunNotFoundError);
  await assert.rejects(read("active"), RunNotFoundError);
});

// ---------------------------------------------------------------------------
// Tags and metadata

test("addTags() adds only new tags, indexes them, and works in any status", async () => {
  let now = 10;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create({ id: "r", tags: ["prod"] });
  now = 20;
  let m = await db.runs.addTags(run.id, ["eu", "prod", "eu", "gpu"]);
  assert.deepEqual(m.tags, ["prod", "eu", "gpu"]);
  assert.equal(m.updatedAt, 20);
  now = 30;
  const version = db.engine.version;
  m = await db.runs.addTags(run.id, ["gpu", "prod"]);
  assert.equal(m.updatedAt, 20, "nothing new: nothing written");
  assert.equal(db.engine.version, version);
  await db.runs.complete(run.id);
  await db.runs.archive(run.id);
  m = await db.runs.addTags(run.id, ["reviewed"]);
  assert.deepEqual(m.tags, ["prod", "eu", "gpu", "reviewed"]);
  for (const tag of m.tags) {
    const q = await db.runs.query({ tags: [tag], includeArchived: true });
    assert.deepEqual(q.map((r) => r.id), ["r"], tag);
  }
  await assert.rejects(db.runs.addTags("missing", ["a"]), RunNotFoundError);
});

test("updateMetadata() replaces the metadata (no merge) and keeps everything else", async () => {
  let now = 10;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create({ name: "n", tags: ["t"], metadata: { model: "a", step: 1 } });
  now = 20;
  const m = await db.runs.updateMetadata(run.id, { step: 2, nested: [1, { x: null }] });
  assert.deepEqual(m.metadata, { step: 2, nested: [1, { x: null }] });
  const got = await db.runs.get(run.id);
  assert.deepEqual(got, { ...m, name: "n", tags: ["t"], updatedAt: 20 });
  await db.runs.updateMetadata(run.id, "just a string");
  assert.equal((await db.runs.get(run.id))?.metadata, "just a string");
  await assert.rejects(db.runs.updateMetadata("missing", {}), RunNotFoundError);
});

// ---------------------------------------------------------------------------
// Queries

const TAGS = ["a", "b", "c"];

interface RunSpec {
  tags: string[];
  parent: number | undefined;
  createdAt: number;
  status: RunStatus;
  deleted: boolean;
}
interface QuerySpec {
  status: RunStatus | undefined;
  tags: string[] | undefined;
  parent: number | undefined;
  createdAfter: number | undefined;
  createdBefore: number | undefined;
  limit: number | undefined;
  includeArchived: boolean | undefined;
}
const runSpecArb: fc.Arbitrary<RunSpec> = fc.record({
  tags: fc.subarray(TAGS),
  parent: fc.option(fc.nat(40), { nil: undefined }),
  createdAt: fc.integer({ min: 0, max: 12 }),
  status: fc.constantFrom(...STATUSES),
  deleted: fc.integer({ min: 0, max: 7 }).map((x) => x === 0),
});
/** Absent twice as often as present: queries with one or two filters find something. */
const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: 2 }, { arbitrary: arb, weight: 1 });
const querySpecArb: fc.Arbitrary<QuerySpec> = fc.record({
  status: maybe(fc.constantFrom(...STATUSES)),
  tags: maybe(fc.subarray(TAGS, { maxLength: 2 })),
  parent: maybe(fc.nat(25)),
  createdAfter: maybe(fc.integer({ min: -1, max: 13 })),
  createdBefore: maybe(fc.integer({ min: -1, max: 14 })),
  limit: maybe(fc.nat(8)),
  includeArchived: maybe(fc.boolean()),
});

function toQuery(q: QuerySpec): RunQuery {
  const out: RunQuery = {};
  if (q.status !== undefined) out.status = q.status;
  if (q.tags !== undefined) out.tags = q.tags;
  if (q.parent !== undefined) out.parent = `r${q.parent}`;
  if (q.createdAfter !== undefined) out.createdAfter = q.createdAfter;
  if (q.createdBefore !== undefined) out.createdBefore = q.createdBefore;
  if (q.limit !== undefined) out.limit = q.limit;
  if (q.includeArchived !== undefined) out.includeArchived = q.includeArchived;
  return out;
}

interface ModelRun {
  id: string;
  tags: string[];
  parent: string | undefined;
  createdAt: number;
  status: RunStatus;
}
interface ModelFaults {
  /** The model forgets the default exclusion of archived runs. */
  ignoreArchived?: boolean;
  /** The model reads `tags` as "any of" instead of "all of". */
  anyTag?: boolean;
}
const byCreation = (a: ModelRun, b: ModelRun): number =>
  a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The model: a filter over all runs. */
function modelQuery(runs: ModelRun[], q: RunQuery, faults: ModelFaults = {}): string[] {
  const hit = runs.filter((r) =>
    (q.status === undefined || r.status === q.status) &&
    (q.tags === undefined || q.tags.length === 0 ||
      (faults.anyTag
        ? q.tags.some((t) => r.tags.includes(t))
        : q.tags.every((t) => r.tags.includes(t)))) &&
    (q.parent === undefined || r.parent === q.parent) &&
    (q.createdAfter === undefined || r.createdAt > q.createdAfter) &&
    (q.createdBefore === undefined || r.createdAt < q.createdBefore) &&
    (faults.ignoreArchived || q.includeArchived === true || q.status === "archived" ||
      r.status !== "archived")
  );
  return hit.sort(byCreation).slice(0, q.limit ?? Infinity).map((r) => r.id);
}

/** Builds the runs of `specs` (then deletes the marked ones) and returns the model. */
async function buildRuns(specs: RunSpec[]): Promise<{ db: Database; model: ModelRun[] }> {
  let now = 0;
  const db = await Database.open(undefined, { clock: () => now });
  const model: ModelRun[] = [];
  for (const [i, s] of specs.entries()) {
    now = s.createdAt;
    const parent = s.parent !== undefined && i > 0 ? `r${s.parent % i}` : undefined;
    await db.runs.create({
      id: `r${i}`,
      tags: s.tags,
      ...(parent === undefined ? {} : { parent }),
    });
    now = 100 + i;
    await reach(db.runs, `r${i}`, s.status);
    model.push({ id: `r${i}`, tags: s.tags, parent, createdAt: s.createdAt, status: s.status });
  }
  for (const [i, s] of specs.entries()) {
    if (!s.deleted) continue;
    await db.runs.delete(`r${i}`);
    const at = model.findIndex((r) => r.id === `r${i}`);
    model.splice(at, 1);
    for (const r of model) if (r.parent === `r${i}`) r.parent = undefined; // detached
  }
  return { db, model };
}

const queryFigures = { queries: 0, nonEmpty: 0 };

async function checkQueries(
  specs: RunSpec[],
  queries: QuerySpec[],
  faults: ModelFaults = {},
): Promise<void> {
  const { db, model } = await buildRuns(specs);
  try {
    for (const qs of queries) {
      const q = toQuery(qs);
      const got = await db.runs.query(q);
      queryFigures.queries++;
      if (got.length > 0) queryFigures.nonEmpty++;
      assert.deepEqual(got.map((r) => r.id), modelQuery(model, q, faults), JSON.stringify(q));
      for (const m of got) assert.deepEqual(m, await db.runs.get(m.id));
    }
    assert.deepEqual(await db.runs.list(), [...model].sort(byCreation).map((r) => r.id));
    for (const r of model) {
      const kids = (await db.runs.children(r.id)).map((c) => c.id);
      assert.deepEqual(kids, modelQuery(model, { parent: r.id, includeArchived: true }, faults));
      const m = await db.runs.get(r.id);
      assert.deepEqual([m?.status, m?.parent, m?.tags], [r.status, r.parent, r.tags]);
    }
  } finally {
    await db.close();
  }
}

const queryProperty = (faults: ModelFaults = {}) =>
  fc.asyncProperty(
    // Past 16 runs an index is read in more than one batch.
    fc.array(runSpecArb, { minLength: 4, maxLength: 40, size: "max" }),
    fc.array(querySpecArb, { minLength: 1, maxLength: 15 }),
    (specs, queries) => checkQueries(specs, queries, faults),
  );

test("query() equals a filter over all runs, in creation order (property)", async () => {
  await fc.assert(queryProperty(), { numRuns: 60 });
  // Not vacuous: a good share of the queries found runs.
  assert.ok(queryFigures.nonEmpty > queryFigures.queries / 4, JSON.stringify(queryFigures));
});

test("negative control: the query property catches a model that keeps archived runs", async () => {
  const r = await fc.check(queryProperty({ ignoreArchived: true }), {
    endOnFailure: true,
    seed: NEGATIVE_CONTROL_SEED,
    numRuns: 200,
  });
  assert.equal(r.failed, true, "a wrong includeArchived rule went unnoticed");
});

test("negative control: the query property catches a model that reads tags as any-of", async () => {
  const r = await fc.check(queryProperty({ anyTag: true }), {
    endOnFailure: true,
    seed: NEGATIVE_CONTROL_SEED,
    numRuns: 200,
  });
  assert.equal(r.failed, true, "an any-of tag filter went unnoticed");
});

test("query() reads the records of matching runs only (it is driven by the indices)", async () => {
  let now = 0;
  await using db = await Database.open(undefined, { clock: () => now });
  for (let i = 0; i < 200; i++) {
    now = i;
    await db.runs.create({
      id: `r${String(i).padStart(3, "0")}`,
      tags: [i % 2 === 0 ? "even" : "odd", ...(i % 50 === 7 ? ["rare"] : []), `t${i % 10}`],
      ...(i > 0 && i % 70 === 0 ? { parent: "r000" } : {}),
    });
  }
  await db.runs.fail("r100", "x");
  await db.runs.fail("r150", "y");
  const recordPrefix = key(SYSTEM, SYS.RUN).finish();
  let recordReads = 0;
  const unwatch = watchTransactions(db, (tx) => {
    const get = tx.get.bind(tx);
    tx.get = (k: Uint8Array) => {
      if (hex(k).startsWith(hex(recordPrefix))) recordReads++;
      return get(k);
    };
  });
  const reads = async (q: RunQuery, want: number): Promise<number> => {
    recordReads = 0;
    const got = await db.runs.query(q);
    assert.equal(got.length, want, JSON.stringify(q));
    return recordReads;
  };
  assert.ok(await reads({ status: "failed" }, 2) <= 2);
  assert.ok(await reads({ parent: "r000" }, 2) <= 3); // + the parent's own record
  assert.ok(await reads({ tags: ["odd", "rare"] }, 4) <= 4); // 7, 57, 107, 157
  assert.ok(await reads({ tags: ["even", "t3"] }, 0) === 0); // disjoint tags: nothing to read
  assert.ok(await reads({ createdAfter: 189 }, 10) <= 10);
  assert.ok(await reads({ limit: 3 }, 3) <= 3);
  assert.ok(await reads({ tags: ["rare"], createdBefore: 100, status: "active" }, 2) <= 2);
  unwatch();
  assert.equal(await reads({ limit: 3 }, 3), 0, "the watch is off");
});

test("list(), children() and get() on unknown and deleted runs", async () => {
  let now = 1;
  await using db = await Database.open(undefined, { clock: () => now++ });
  assert.deepEqual(await db.runs.list(), []);
  assert.deepEqual(await db.runs.query(), []);
  await assert.rejects(db.runs.children("missing"), RunNotFoundError);
  const p = await db.runs.create({ id: "p" });
  const c = await db.runs.create({ id: "c", parent: p.id });
  await db.runs.archive(c.id);
  assert.deepEqual((await db.runs.children("p")).map((r) => r.id), ["c"], "archived children too");
  assert.deepEqual(await db.runs.query({ parent: "p" }), []);
  assert.deepEqual(await db.runs.list(), ["p", "c"]);
  await assert.rejects(db.runs.create({ id: "x", parent: "missing" }), RunNotFoundError);
});

// ---------------------------------------------------------------------------
// Stats

type LifeOp =
  | { t: "create" }
  | { t: "set"; run: number; to: RunStatus }
  | { t: "delete"; run: number };
const lifeOpArb: fc.Arbitrary<LifeOp> = fc.oneof(
  { arbitrary: fc.constant({ t: "create" as const }), weight: 3 },
  {
    arbitrary: fc.record({
      t: fc.constant("set" as const),
      run: fc.nat(30),
      to: fc.constantFrom(...STATUSES),
    }),
    weight: 5,
  },
  { arbitrary: fc.record({ t: fc.constant("delete" as const), run: fc.nat(30) }), weight: 1 },
);

async function checkStats(ops: LifeOp[], forgetDeletes: boolean): Promise<void> {
  await using db = await Database.open();
  const model = new Map<string, RunStatus>();
  const counts = zero();
  let created = 0;
  for (const op of ops) {
    if (op.t === "create") {
      const id = `r${created++}`;
      await db.runs.create({ id });
      model.set(id, "active");
      counts.active++;
    } else if (created > 0) {
      const id = `r${op.run % created}`;
      const from = model.get(id);
      if (op.t === "set") {
        const err = await errorOf(db.runs.setStatus(id, op.to));
        if (from === undefined) assert.ok(err instanceof RunNotFoundError);
        else if (ALLOWED.has(`${from}>${op.to}`)) {
          assert.equal(err, undefined);
          model.set(id, op.to);
          counts[from]--;
          counts[op.to]++;
        } else assert.ok(err instanceof InvalidTransitionError);
      } else {
        const err = await errorOf(db.runs.delete(id));
        if (from === undefined) assert.ok(err instanceof RunNotFoundError);
        else {
          assert.equal(err, undefined);
          model.delete(id);
          if (!forgetDeletes) counts[from]--;
        }
      }
    }
    assert.deepEqual(await db.runs.stats(), statsOf(counts));
  }
  const all = await db.runs.query({ includeArchived: true });
  const byQuery = zero();
  for (const r of all) byQuery[r.status]++;
  assert.deepEqual(statsOf(byQuery), await db.runs.stats());
}

test("stats() matches the counts after random lifecycle ops and deletes (property)", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(lifeOpArb, { maxLength: 40 }), (ops) => checkStats(ops, false)),
    { numRuns: 60 },
  );
});

test("negative control: the stats property catches a model that ignores deletes", async () => {
  const r = await fc.check(
    fc.asyncProperty(fc.array(lifeOpArb, { maxLength: 40 }), (ops) => checkStats(ops, true)),
    { endOnFailure: true, seed: NEGATIVE_CONTROL_SEED, numRuns: 200 },
  );
  assert.equal(r.failed, true);
});

// ---------------------------------------------------------------------------
// Cascading delete

test("delete() removes exactly the run's keys: its data range and its system entries", async () => {
  let now = 500;
  await using db = await Database.open(undefined, { clock: () => now });
  await db.runs.create({ id: "keep" }); // another active run: the active counter stays
  await db.runs.create({ id: "p" });
  now = 600;
  await db.runs.create({
    id: "t",
    tags: ["x", "y"],
    parent: "p",
    metadata: { big: "v".repeat(500) },
  });
  await db.runs.create({ id: "o", tags: ["x"] });
  const n = runNumber(db, "t");
  const other = runNumber(db, "o");
  await db.engine.transaction((tx) => {
    for (let i = 0; i < 60; i++) {
      for (const r of [n, other]) {
        tx.put(key(r, TAG.EVENT).u64(i).finish(), new Uint8Array([1, 2, 3]));
        tx.put(key(r, TAG.STATE).string(`cell${i}`).finish(), new Uint8Array([4]));
        tx.put(key(r, TAG.TRACE).string(`trace${i}`).finish(), new Uint8Array([5]));
      }
    }
  });
  const before = storeMap(db);
  // The run's keys, by the documented layout (docs/FORMAT.md "Runs").
  const expected = new Set<string>();
  for (const [k] of db.engine.store.entries(runRange(n))) expected.add(hex(k));
  assert.equal(expected.size, 180);
  expected.add(hex(runKey("t")));
  expected.add(hex(key(SYSTEM, SYS.RUN_NUMBER).u32(n).finish()));
  expected.add(hex(key(SYSTEM, SYS.BY_STATUS).u8(0).u64(600).string("t").finish()));
  expected.add(hex(key(SYSTEM, SYS.BY_TAG).string("x").u64(600).string("t").finish()));
  expected.add(hex(key(SYSTEM, SYS.BY_TAG).string("y").u64(600).string("t").finish()));
  expected.add(hex(key(SYSTEM, SYS.BY_PARENT).string("p").u64(600).string("t").finish()));
  expected.add(hex(key(SYSTEM, SYS.BY_CREATED).u64(600).string("t").finish()));
  for (const k of expected) assert.ok(before.has(k), `expected key ${k} exists before`);
  const keysBefore = (await db.stats()).keys;

  await db.runs.delete("t");

  const after = storeMap(db);
  const removed = [...before.keys()].filter((k) => !after.has(k)).sort();
  const added = [...after.keys()].filter((k) => !before.has(k));
  assert.deepEqual(removed, [...expected].sort());
  assert.deepEqual(added, []);
  assert.equal((await db.stats()).keys, keysBefore - expected.size);
  assert.equal(rangeCount(db, n), 0);
  assert.equal(rangeCount(db, other), 180, "other runs keep their data");
  // Every surviving key keeps its value, except the active counter (4 → 3).
  const changed = [...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k);
  assert.deepEqual(changed, [hex(key(SYSTEM, SYS.RUN_COUNT).u8(0).finish())]);
  assert.equal(await db.runs.get("t"), undefined);
  assert.deepEqual(await db.runs.list(), ["keep", "p", "o"]);
  assert.deepEqual(await db.runs.children("p"), []);
  assert.deepEqual((await db.runs.query({ tags: ["x"] })).map((r) => r.id), ["o"]);
  assert.deepEqual(await db.runs.stats(), statsOf({ ...zero(), active: 3 }));
  for (const call of [db.runs.delete("t"), db.runs.complete("t"), db.runs.addTags("t", ["z"])]) {
    await assert.rejects(call, RunNotFoundError);
  }
});

test("delete() removes every primitive's data, and the expiry entries of its KV keys", async () => {
  const now = 10_000;
  await using db = await Database.open(undefined, { clock: () => now });
  await db.runs.create({ id: "keep" });
  const other = await db.runs.create({ id: "other" });
  await other.kv.put("k", 1, { ttlMs: 5_000 });
  const run = await db.runs.create({ id: "t", tags: ["x"] });
  for (let i = 0; i < 5; i++) {
    await run.kv.put(`plain${i}`, { i });
    await run.kv.put(`ttl${i}`, i, { ttlMs: 1_000 * (i + 1) });
    await run.events.append("step", { i });
    await run.state.set(`cell${i}`, i);
    await run.traces.record({ kind: "thought", content: `t${i}` }, { tags: ["a"] });
  }
  const n = runNumber(db, "t");
  const before = storeMap(db);
  const expected = new Set<string>();
  for (const [k] of db.engine.store.entries(runRange(n))) expected.add(hex(k));
  const expiry = key(SYSTEM, SYS.EXPIRY).finish();
  for (let i = 0; i < 5; i++) {
    const kvKey = key(n, TAG.KV).string(`ttl${i}`).finish();
    expected.add(hex(expiryKey(expiry, now + 1_000 * (i + 1), kvKey)));
  }
  expected.add(hex(runKey("t")));
  expected.add(hex(key(SYSTEM, SYS.RUN_NUMBER).u32(n).finish()));
  expected.add(hex(key(SYSTEM, SYS.BY_STATUS).u8(0).u64(now).string("t").finish()));
  expected.add(hex(key(SYSTEM, SYS.BY_TAG).string("x").u64(now).string("t").finish()));
  expected.add(hex(key(SYSTEM, SYS.BY_CREATED).u64(now).string("t").finish()));
  for (const k of expected) assert.ok(before.has(k), `expected key ${k} exists before`);
  const keysBefore = (await db.stats()).keys;
  await db.runs.delete("t");
  const after = storeMap(db);
  assert.deepEqual([...before.keys()].filter((k) => !after.has(k)).sort(), [...expected].sort());
  assert.equal((await db.stats()).keys, keysBefore - expected.size);
  assert.equal(rangeCount(db, n), 0);
  assert.equal(await other.kv.get("k"), 1, "other runs keep their entries");
  await assert.rejects(run.kv.get("plain0"), RunNotFoundError);
  await assert.rejects(run.events.append("late", {}), RunNotFoundError);
});

test("delete() keeps child runs, detached: no parent, no parent index entries left", async () => {
  let now = 1;
  await using db = await Database.open(undefined, { clock: () => now });
  await db.runs.create({ id: "p" });
  now = 2;
  await db.runs.create({ id: "c1", parent: "p" });
  await db.runs.create({ id: "c2", parent: "p", tags: ["t"] });
  await db.runs.create({ id: "g", parent: "c1" });
  await db.runs.complete("c2");
  await db.runs.archive("c2");
  now = 9;
  await db.runs.delete("p");
  for (const id of ["c1", "c2"]) {
    const m = await db.runs.get(id);
    assert.equal(m?.parent, undefined, id);
    assert.equal(m?.updatedAt, 9);
  }
  assert.equal((await db.runs.get("c2"))?.status, "archived");
  assert.equal((await db.runs.get("g"))?.parent, "c1", "grandchildren keep their parent");
  assert.deepEqual((await db.runs.children("c1")).map((r) => r.id), ["g"]);
  const parentEntries = [
    ...db.engine.store.entries(range(key(SYSTEM, SYS.BY_PARENT).string("p").finish())),
  ];
  assert.equal(parentEntries.length, 0);
  // A new run under the old id has no children.
  await db.runs.create({ id: "p" });
  assert.deepEqual(await db.runs.children("p"), []);
  assert.deepEqual(await db.runs.query({ parent: "p", includeArchived: true }), []);
  assert.deepEqual(await db.runs.stats(), statsOf({ ...zero(), active: 3, archived: 1 }));
});

test("delete() of a run over DELETE_BATCH_KEYS keys runs in batches, removes all", async () => {
  await using db = await Database.open();
  await db.runs.create({ id: "keep" });
  const big = await db.runs.create({ id: "big", tags: ["t"] });
  const n = runNumber(db, big.id);
  const total = 2 * DELETE_BATCH_KEYS + 777;
  await fillRange(db, n, total);
  const keysBefore = (await db.stats()).keys;
  let transactions = 0;
  let maxWrites = 0;
  const unwatch = watchTransactions(db, () => transactions++, (tx) => {
    maxWrites = Math.max(maxWrites, tx.writes.size);
  });
  await db.runs.delete(big.id);
  unwatch();
  assert.ok(transactions >= 3, `${transactions} transactions`);
  assert.ok(maxWrites <= DELETE_BATCH_KEYS + 10, `a transaction wrote ${maxWrites} keys`);
  assert.equal(rangeCount(db, n), 0);
  // record, number, status, tag, created entries
  assert.equal((await db.stats()).keys, keysBefore - total - 5);
  assert.equal(db.engine.store.get(key(SYSTEM, SYS.DELETING).string("big").finish()), undefined);
  assert.equal(db.engine.store.get(key(SYSTEM, SYS.RUN_NUMBER).u32(n).finish()), undefined);
  assert.deepEqual(await db.runs.list(), ["keep"]);
});

test("tx.runs.delete() is atomic with its transaction; refuses a run too large", async () => {
  await using db = await Database.open();
  await db.runs.create({ id: "small" });
  await db.runs.create({ id: "big" });
  await fillRange(db, runNumber(db, "small"), 100);
  const nBig = runNumber(db, "big");
  await fillRange(db, nBig, DELETE_BATCH_KEYS + 1);
  const before = storeMap(db);
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.runs.delete("small");
      assert.equal(await tx.runs.get("small"), undefined);
      throw new Error("abort");
    }),
    /abort/,
  );
  assert.deepEqual(storeMap(db), before, "a rolled back delete leaves every key");
  // Too large: RangeError before anything is buffered; the caller may go on and commit.
  await db.transaction(async (tx) => {
    const err = await errorOf(tx.runs.delete("big"));
    assert.ok(err instanceof RangeError);
    await tx.runs.addTags("big", ["still-here"]);
  });
  assert.equal(rangeCount(db, nBig), DELETE_BATCH_KEYS + 1);
  assert.deepEqual((await db.runs.get("big"))?.tags, ["still-here"]);
  await db.transaction((tx) => tx.runs.delete("small"));
  assert.equal(await db.runs.get("small"), undefined);
  assert.deepEqual(await db.runs.list(), ["big"]);
  await db.runs.delete("big"); // db.runs has no size limit
  assert.deepEqual(await db.runs.stats(), statsOf(zero()));
});

test("tx.runs.delete() takes a run of exactly DELETE_BATCH_KEYS keys in one go", async () => {
  await using db = await Database.open();
  await db.runs.create({ id: "edge" });
  const n = runNumber(db, "edge");
  await fillRange(db, n, DELETE_BATCH_KEYS);
  await db.transaction((tx) => tx.runs.delete("edge"));
  assert.equal(rangeCount(db, n), 0);
  assert.equal(await db.runs.get("edge"), undefined);
});

test("create() refuses an id whose delete is still in progress", async () => {
  await using db = await Database.open();
  await db.engine.transaction((tx) => {
    tx.put(key(SYSTEM, SYS.DELETING).string("ghost").finish(), new Uint8Array([0x7f]));
  });
  await assert.rejects(db.runs.create({ id: "ghost" }), AlreadyExistsError);
  assert.equal(await db.runs.get("ghost"), undefined);
});

// A run with 1.5 batches of data: `delete` commits twice. The machine halts
// after every possible number of file operations of the delete; after the
// crash the state is the run whole, or mid-delete (marker, record gone),
// or gone — and opening the database always finishes the delete.
test("a crash at any point of a batched delete: open finishes the delete", async () => {
  const total = DELETE_BATCH_KEYS + DELETE_BATCH_KEYS / 2;
  const marker = key(SYSTEM, SYS.DELETING).string("big").finish();
  const build = async (seed: number) => {
    const fs = new SimFS({ seed });
    const db = await Database.open("db", { fs, durability: "strict" });
    await db.runs.create({ id: "keep", tags: ["t"] });
    await db.runs.create({ id: "big", tags: ["t"], parent: "keep" });
    await db.runs.create({ id: "kid", parent: "big" });
    const n = runNumber(db, "big");
    await fillRange(db, n, total);
    return { fs, db, n };
  };
  const dry = await build(1);
  const start = dry.fs.opCount;
  await dry.db.runs.delete("big");
  const opsOfDelete = dry.fs.opCount - start;
  await dry.db.close();
  assert.ok(opsOfDelete >= 2, `the delete took ${opsOfDelete} file operations`);
  const seen = { whole: 0, middle: 0, gone: 0 };
  for (let k = 0; k <= opsOfDelete; k++) {
    const { fs, db, n } = await build(k + 2);
    fs.haltAfter(fs.opCount + k);
    const err = await errorOf(db.runs.delete("big"));
    if (k < opsOfDelete) assert.ok(err instanceof StorageError, `halt after ${k}: ${err}`);
    await db.close().catch(() => {});
    const crashed = fs.crash(SIM_CRASH_MODES[k % SIM_CRASH_MODES.length]!, k);
    // What survived, before the database resumes anything.
    const raw = await openEngine({ dir: "db", fs: crashed });
    const hasRecord = raw.engine.store.get(runKey("big")) !== undefined;
    const hasMarker = raw.engine.store.get(marker) !== undefined;
    let left = 0;
    raw.engine.store.scan(runRange(n), () => {
      left++;
    });
    await raw.close();
    let state: keyof typeof seen;
    if (hasRecord && !hasMarker && left === total) state = "whole";
    else if (!hasRecord && hasMarker && left > 0 && left < total) state = "middle";
    else if (!hasRecord && !hasMarker && left === 0) state = "gone";
    else assert.fail(`halt after ${k}: record ${hasRecord}, marker ${hasMarker}, ${left} keys`);
    seen[state]++;
    const again = await Database.open("db", { fs: crashed, durability: "strict" });
    try {
      if (state === "whole") {
        assert.equal((await again.runs.get("big"))?.parent, "keep");
        assert.equal(rangeCount(again, n), total);
        assert.equal((await again.runs.stats()).total, 3);
      } else {
        assert.equal(await again.runs.get("big"), undefined);
        assert.equal(rangeCount(again, n), 0);
        assert.equal(again.engine.store.get(marker), undefined);
        assert.equal(
          again.engine.store.get(key(SYSTEM, SYS.RUN_NUMBER).u32(n).finish()),
          undefined,
        );
        assert.equal((await again.runs.get("kid"))?.parent, undefined);
        assert.deepEqual(await again.runs.list(), ["keep", "kid"]);
        assert.deepEqual((await again.runs.query({ tags: ["t"] })).map((r) => r.id), ["keep"]);
        assert.deepEqual(await again.runs.stats(), statsOf({ ...zero(), active: 2 }));
      }
    } finally {
      await again.close();
    }
  }
  assert.ok(seen.middle > 0, `no crash fell inside the delete: ${JSON.stringify(seen)}`);
  assert.ok(seen.whole > 0 && seen.gone > 0, JSON.stringify(seen));
});

// ---------------------------------------------------------------------------
// Recovery

/** Everything the run API shows. */
async function snapshot(db: Database): Promise<unknown> {
  const ids = await db.runs.list();
  const queries: RunQuery[] = [
    {},
    { includeArchived: true },
    { status: "failed" },
    { status: "archived" },
    { tags: ["prod"] },
    { tags: ["prod", "eu"], includeArchived: true },
    { parent: "root" },
    { createdAfter: 1_002, createdBefore: 1_006 },
    { limit: 2 },
  ];
  return {
    ids,
    runs: await Promise.all([...ids, "gone"].map((id) => db.runs.get(id))),
    children: await Promise.all(ids.map((id) => db.runs.children(id))),
    queries: await Promise.all(queries.map((q) => db.runs.query(q))),
    stats: await db.runs.stats(),
  };
}

async function lifecycle(db: Database, clock: { now: number }): Promise<void> {
  const at = (t: number) => (clock.now = t);
  at(1_000);
  await db.runs.create({ id: "root", tags: ["prod"], metadata: { owner: "me" } });
  at(1_001);
  await db.runs.create({ id: "gone", parent: "root", tags: ["prod"] });
  for (let i = 0; i < 6; i++) {
    at(1_002 + i);
    await db.runs.create({ id: `c${i}`, parent: i % 2 === 0 ? "root" : "gone", tags: ["prod"] });
  }
  at(1_010);
  await db.runs.addTags("c0", ["eu"]);
  await db.runs.updateMetadata("c1", { step: 3 });
  await db.runs.fail("c2", "tool timed out");
  await db.runs.pause("c3");
  await db.runs.complete("c4");
  await db.runs.archive("c4");
  await db.runs.cancel("c5");
  await db.transaction(async (tx) => {
    await tx.runs.addTags("c4", ["eu"]);
    await tx.runs.complete("c0");
  });
  at(1_020);
  await db.runs.delete("gone");
}

test("statuses, tags, metadata, parents, queries, stats survive reopen and crash", async () => {
  for (const [i, mode] of SIM_CRASH_MODES.entries()) {
    const clock = { now: 0 };
    const options = { durability: "strict" as const, clock: () => clock.now };
    const fs = new SimFS({ seed: 100 + i });
    const db = await Database.open("db", { fs, ...options });
    await lifecycle(db, clock);
    const expected = await snapshot(db);
    await db.close();
    const reopened = await Database.open("db", { fs, ...options });
    assert.deepEqual(await snapshot(reopened), expected, "after close/reopen");
    // More acknowledged changes, then power loss without a close.
    clock.now = 2_000;
    await reopened.runs.archive("c2");
    await reopened.runs.addTags("c3", ["late"]);
    const expectedAfter = await snapshot(reopened);
    assert.notDeepEqual(expectedAfter, expected);
    const crashed = fs.crash(mode, i);
    await reopened.close().catch(() => {});
    const recovered = await Database.open("db", { fs: crashed, ...options });
    assert.deepEqual(await snapshot(recovered), expectedAfter, `after a ${mode} crash`);
    await recovered.close();
  }
});

// ---------------------------------------------------------------------------
// Bad input

test("bad input is refused with TypeError/RangeError before anything is written", async () => {
  await using db = await Database.open();
  await db.runs.create({ id: "r" });
  const u = undefined as unknown as string;
  const cases: [string, () => Promise<unknown>, typeof TypeError | typeof RangeError][] = [
    ["get(1)", () => db.runs.get(1 as unknown as string), TypeError],
    ["get('')", () => db.runs.get(""), TypeError],
    ["get(long)", () => db.runs.get("x".repeat(1025)), RangeError],
    ["complete(undefined)", () => db.runs.complete(u), TypeError],
    ["pause('')", () => db.runs.pause(""), TypeError],
    ["resume(null)", () => db.runs.resume(null as unknown as string), TypeError],
    ["cancel({})", () => db.runs.cancel({} as unknown as string), TypeError],
    ["archive(long)", () => db.runs.archive("é".repeat(600)), RangeError],
    ["fail(r, 1)", () => db.runs.fail("r", 1 as unknown as string), TypeError],
    ["setStatus(r, 'done')", () => db.runs.setStatus("r", "done" as RunStatus), TypeError],
    ["setStatus(r, 1)", () => db.runs.setStatus("r", 1 as unknown as RunStatus), TypeError],
    ["setStatus('', active)", () => db.runs.setStatus("", "active"), TypeError],
    ["addTags(r, 'a')", () => db.runs.addTags("r", "a" as unknown as string[]), TypeError],
    ["addTags(r, [''])", () => db.runs.addTags("r", ["ok", ""]), TypeError],
    ["addTags(r, [1])", () => db.runs.addTags("r", [1 as unknown as string]), TypeError],
    ["addTags(r, [long])", () => db.runs.addTags("r", ["x".repeat(2000)]), RangeError],
    ["updateMetadata(r, fn)", () => db.runs.updateMetadata("r", (() => 1) as never), TypeError],
    ["updateMetadata(r, undefined)", () => db.runs.updateMetadata("r", u), TypeError],
    ["updateMetadata('', {})", () => db.runs.updateMetadata("", {}), TypeError],
    ["children(1)", () => db.runs.children(1 as unknown as string), TypeError],
    ["delete('')", () => db.runs.delete(""), TypeError],
    ["delete(1)", () => db.runs.delete(1 as unknown as string), TypeError],
    ["query(null)", () => db.runs.query(null as unknown as RunQuery), TypeError],
    ["query(limit -1)", () => db.runs.query({ limit: -1 }), RangeError],
    ["query(limit 1.5)", () => db.runs.query({ limit: 1.5 }), RangeError],
    ["query(limit '3')", () => db.runs.query({ limit: "3" as unknown as number }), TypeError],
    ["query(limit NaN)", () => db.runs.query({ limit: NaN }), RangeError],
    ["query(status x)", () => db.runs.query({ status: "x" as RunStatus }), TypeError],
    ["query(tags 'a')", () => db.runs.query({ tags: "a" as unknown as string[] }), TypeError],
    ["query(tags [''])", () => db.runs.query({ tags: [""] }), TypeError],
    ["query(parent '')", () => db.runs.query({ parent: "" }), TypeError],
    ["query(createdAfter 'x')", () => db.runs.query({ createdAfter: "x" as never }), TypeError],
    ["query(createdBefore NaN)", () => db.runs.query({ createdBefore: NaN }), RangeError],
    ["query(includeArchived 1)", () => db.runs.query({ includeArchived: 1 as never }), TypeError],
    ["create(id '')", () => db.runs.create({ id: "" }), TypeError],
    ["create(tags 'a')", () => db.runs.create({ tags: "a" as unknown as string[] }), TypeError],
    ["create(parent 1)", () => db.runs.create({ parent: 1 as unknown as string }), TypeError],
    ["create(name 1)", () => db.runs.create({ name: 1 as unknown as string }), TypeError],
    ["create(metadata fn)", () => db.runs.create({ metadata: (() => 1) as never }), TypeError],
  ];
  const keys = (await db.stats()).keys;
  const version = db.engine.version;
  for (const [name, call, type] of cases) {
    let p: Promise<unknown> | undefined;
    assert.doesNotThrow(() => {
      p = call();
    }, `${name} returns a rejected promise rather than throwing`);
    const err = await errorOf(p!);
    assert.ok(err instanceof type, `${name}: ${err}`);
    assert.match((err as Error).message, /^Cannot /, name);
  }
  assert.equal(db.engine.version, version, "nothing was committed");
  assert.equal((await db.stats()).keys, keys);
  const r = await db.runs.get("r");
  assert.deepEqual([r?.status, r?.tags, r?.metadata], ["active", [], {}]);
});

test("the handle tx.runs.create() returns joins the transaction, and rolls back with it", async () => {
  await using db = await Database.open();
  const id = await db.transaction(async (tx) => {
    const run = await tx.runs.create({ name: "t" });
    await run.kv.put("k", 1); // the run exists only inside this transaction so far
    await run.transaction(async (rtx) => {
      await rtx.events.append("e", 1);
    });
    return run.id;
  });
  assert.equal(await db.run(id).kv.get("k"), 1);
  assert.equal(await db.run(id).events.length(), 1);
  await assert.rejects(
    db.transaction(async (tx) => {
      const run = await tx.runs.create();
      await run.kv.put("x", 1);
      throw new Error("rolled back");
    }),
    /rolled back/,
  );
  assert.deepEqual(await db.runs.list(), [id]);
});

test("metadata and tags handed out are copies: changing them changes nothing stored", async () => {
  await using db = await Database.open();
  const r = await db.runs.create({ metadata: { a: { b: 1 }, d: new Date(5) }, tags: ["x"] });
  for (let i = 0; i < 2; i++) { // the second read comes from the decoded-record cache
    const m = (await db.runs.get(r.id))!;
    assert.deepEqual(m.metadata, { a: { b: 1 }, d: new Date(5) });
    assert.deepEqual(m.tags, ["x"]);
    (m.metadata as { a: { b: number } }).a.b = 99;
    m.tags.push("y");
  }
});
