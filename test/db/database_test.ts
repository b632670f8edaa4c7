// The whole database (issue 4 "Transactions across primitives and runs",
// "Errors and bad input", seed 002/003 "atomic together"): what no single
// primitive's test covers. Cross-primitive and cross-run atomicity and
// rollback (with a model-based property over random transactions, some of
// which throw, and a negative control); serializability across primitives
// (write skew through point and range reads, 64 read-modify-write
// counters); run isolation through every read API and runs.query;
// recovery of every primitive after a simulated crash (strict, every crash
// mode, concurrent transactions, a checkpoint racing them) and after a
// clean close in batched mode; the Database object's lifecycle (await
// using, DatabaseClosedError everywhere, LockedError, idempotent close,
// TransactionConflictError with its attempts); and bad input at the
// Database level.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import type { Value } from "../../src/core/codec.ts";
import { decodeRunRecord, runKey } from "../../src/db/context.ts";
import {
  Database,
  type DatabaseTransaction,
  type Run,
  type RunTransaction,
} from "../../src/db/database.ts";
import { TAG } from "../../src/db/layout.ts";
import type { Runs } from "../../src/db/runs.ts";
import type { Trace, TraceTree, TraceType } from "../../src/db/traces.ts";
import {
  DatabaseClosedError,
  LockedError,
  NotFoundError,
  OutOfMemoryError,
  RunClosedError,
  StorageError,
  TransactionConflictError,
  VersionConflictError,
} from "../../src/errors.ts";
import { SIM_CRASH_MODES, type SimCrashMode, SimFS } from "../../src/fs/sim.ts";

/** The negative controls' seed: each fails on the same case on every runtime, every time. */
const NEGATIVE_CONTROL_SEED = 1;

// ---------------------------------------------------------------------------
// Helpers: every read API of a run, checked against itself

/** The four primitives, on a run handle or inside a transaction. */
type Prims = Run | RunTransaction;

/** Names a view probes even when absent (so "absent" is read, too). */
interface Probe {
  kv: readonly string[];
  cells: readonly string[];
  types: readonly string[];
  kinds: readonly string[];
  tags: readonly string[];
}

const NO_PROBE: Probe = { kv: [], cells: [], types: [], kinds: [], tags: [] };

/** A run's data as records; every index and derived read was checked against them. */
interface RunView {
  kv: [string, Value][];
  events: [sequence: number, type: string, payload: Value][];
  state: [name: string, value: Value, version: number][];
  traces: [id: string, type: TraceType, tags: string[], parentId: string | null][];
}

const FAR_MS = 2 ** 50;

const byId = (ts: Trace[]): string[] => ts.map((t) => t.id).sort();

function treeSize(root: TraceTree): number {
  let n = 0;
  const stack = [root];
  for (let t = stack.pop(); t !== undefined; t = stack.pop()) {
    n++;
    stack.push(...t.children);
  }
  return n;
}

/**
 * Reads a run through every read API of every primitive, asserts that they
 * agree with each other (list/entries/page/get/getEntry/exists; length,
 * isEmpty, read, readRange, head, the iterator, readByType, verifyChain;
 * list/read/exists; list/count/get, the kind, tag, parent and time indices,
 * tree), and returns the records.
 */
async function view(p: Prims, probe: Probe = NO_PROBE): Promise<RunView> {
  // KV
  const kv = await p.kv.entries();
  const keys = kv.map(([k]) => k);
  assert.deepEqual(await p.kv.list(), keys, "kv.list() = the keys of entries()");
  assert.deepEqual(await p.kv.entries(undefined, { reverse: true }), [...kv].reverse());
  const paged: [string, Value][] = [];
  let cursor: string | undefined;
  do {
    const page = await p.kv.page(
      undefined,
      cursor === undefined ? { limit: 2 } : {
        limit: 2,
        cursor,
      },
    );
    paged.push(...page.entries);
    cursor = page.cursor;
  } while (cursor !== undefined);
  assert.deepEqual(paged, kv, "kv.page() walks entries()");
  const kvMap = new Map(kv);
  for (const k of new Set([...probe.kv, ...keys])) {
    const want = kvMap.get(k);
    assert.deepEqual(await p.kv.get(k), want, `kv.get(${k})`);
    const entry = await p.kv.getEntry(k);
    assert.deepEqual(
      entry === undefined ? undefined : [entry.key, entry.value],
      want === undefined ? undefined : [k, want],
    );
    assert.equal(await p.kv.exists(k), kvMap.has(k), `kv.exists(${k})`);
  }
  // Events
  const length = await p.events.length();
  assert.equal(await p.events.isEmpty(), length === 0);
  const all = await p.events.readRange(0, length + 3);
  assert.deepEqual(all.map((e) => e.sequence), Array.from({ length }, (_, i) => i));
  for (const e of all) assert.deepEqual(await p.events.read(e.sequence), e);
  assert.equal(await p.events.read(length), undefined);
  assert.deepEqual(await p.events.head(), all.at(-1));
  const iterated = [];
  for await (const e of p.events) iterated.push(e);
  assert.deepEqual(iterated, all, "the iterator yields readRange()");
  assert.deepEqual(await p.events.verifyChain(), { valid: true, length });
  for (const t of new Set([...probe.types, ...all.map((e) => e.type)])) {
    assert.deepEqual(await p.events.readByType(t), all.filter((e) => e.type === t));
  }
  // State cells
  const names = await p.state.list();
  const state: RunView["state"] = [];
  for (const n of new Set([...probe.cells, ...names])) {
    const s = await p.state.read(n);
    assert.equal(await p.state.exists(n), s !== undefined, `state.exists(${n})`);
    assert.equal(names.includes(n), s !== undefined, `state.list() has ${n}`);
    if (s !== undefined) state.push([n, s.value, s.version]);
  }
  state.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  // Traces
  const ids = await p.traces.list();
  assert.equal(await p.traces.count(), ids.length, "traces.count() = list().length");
  const recs: Trace[] = [];
  for (const id of ids) {
    const t = await p.traces.get(id);
    assert.ok(t !== undefined && t.id === id, `traces.get(${id})`);
    recs.push(t);
  }
  const sorted = (ts: Trace[]): string[] => ts.map((t) => t.id).sort();
  for (const kind of new Set([...probe.kinds, ...recs.map((t) => t.type.kind)])) {
    const want = sorted(recs.filter((t) => t.type.kind === kind));
    assert.deepEqual(byId(await p.traces.queryByType(kind)), want, `queryByType(${kind})`);
  }
  for (const tag of new Set([...probe.tags, ...recs.flatMap((t) => t.tags)])) {
    const want = sorted(recs.filter((t) => t.tags.includes(tag)));
    assert.deepEqual(byId(await p.traces.queryByTag(tag)), want, `queryByTag(${tag})`);
  }
  for (const id of ids) {
    const want = sorted(recs.filter((t) => t.parentId === id));
    assert.deepEqual(byId(await p.traces.children(id)), want, `children(${id})`);
  }
  assert.deepEqual(byId(await p.traces.queryByTime(0, FAR_MS)), [...ids].sort());
  let reachable = 0;
  for (const t of recs) {
    if (t.parentId !== undefined) continue;
    const tree = await p.traces.tree(t.id);
    assert.ok(tree !== undefined);
    reachable += treeSize(tree);
  }
  assert.equal(reachable, ids.length, "every trace is in the tree of a root");
  return {
    kv,
    events: all.map((e) => [e.sequence, e.type, e.payload]),
    state,
    traces: recs.map((t) => [t.id, t.type, t.tags, t.parentId ?? null]),
  };
}

/** Every key and value of the store, hex, in key order. */
function rawStore(db: Database): Map<string, string> {
  const hex = (b: Uint8Array): string =>
    Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const out = new Map<string, string>();
  for (const [k, v] of db.engine.store.entries()) out.set(hex(k), hex(v));
  return out;
}

/** The internal number of run `id` (the first element of its keys). */
function runNumber(db: Database, id: string): number {
  const bytes = db.engine.store.get(runKey(id));
  assert.ok(bytes !== undefined, `run ${id} has a record`);
  return decodeRunRecord(bytes, id).n;
}

/** A planned throw inside a transaction body. */
class Planned extends Error {
  override name = "Planned";
}

// ---------------------------------------------------------------------------
// 1. Cross-primitive atomicity and rollback

const thought = (content: string): TraceType => ({ kind: "thought", content });

/** A run with one of everything, for "unchanged" to mean something. */
async function seeded(db: Database): Promise<Run> {
  const run = await db.runs.create({ tags: ["seeded"] });
  await run.kv.put("task/status", "idle");
  await run.events.append("created", { by: "test" });
  await run.state.init("workflow", "start");
  await run.traces.record(thought("ready"), { id: "t0", tags: ["setup"] });
  return run;
}

test("run.transaction: kv.put + events.append + state.cas + traces.record all commit", async () => {
  await using db = await Database.open();
  const run = await seeded(db);
  const seedVersion = (await run.kv.getEntry("task/status"))!.version;
  const before = await db.stats();
  const out = await run.transaction(async (tx) => {
    await tx.kv.put("task/status", "running");
    const ev = await tx.events.append("task_started", { task: 1 });
    const version = await tx.state.cas("workflow", 1, "step1");
    const id = await tx.traces.record(thought("starting"), { tags: ["go"], parentId: "t0" });
    return { ev, version, id };
  });
  // KV: the new value, stamped with this commit's version (newer than the seed's).
  const entry = await run.kv.getEntry("task/status");
  assert.equal(entry?.value, "running");
  assert.ok(entry !== undefined && entry.version > seedVersion);
  // Events: appended after the seed's event, chained to it.
  assert.equal(out.ev.sequence, 1);
  const e = await run.events.read(1);
  assert.deepEqual([e?.type, e?.payload, e?.hash], ["task_started", { task: 1 }, out.ev.hash]);
  assert.equal(e?.prevHash, (await run.events.read(0))?.hash);
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 2 });
  // State: cas took version 1 to 2.
  assert.equal(out.version, 2);
  const s = await run.state.read("workflow");
  assert.deepEqual([s?.value, s?.version], ["step1", 2]);
  // Traces: the record and its indices.
  assert.deepEqual((await run.traces.get(out.id))?.type, thought("starting"));
  assert.deepEqual(byId(await run.traces.queryByTag("go")), [out.id]);
  assert.deepEqual(byId(await run.traces.children("t0")), [out.id]);
  assert.equal(await run.traces.count(), 2);
  // One commit wrote them all: the store grew, and exactly one commit was counted.
  const after = await db.stats();
  assert.ok(after.keys > before.keys);
  assert.equal(after.commits, before.commits + 1);
});

test("a run.transaction that throws or fails a state.cas writes none of the four", async () => {
  type Variant = {
    name: string;
    err: (e: unknown) => boolean;
    end: (tx: RunTransaction) => Promise<void>;
  };
  const variants: Variant[] = [
    {
      name: "a throw after the four writes",
      err: (e) => e instanceof Planned,
      end: () => Promise.reject(new Planned("boom")),
    },
    {
      name: "state.cas with a wrong version last",
      err: (e) => e instanceof VersionConflictError && e.expected === 7 && e.actual === 2,
      end: async (tx) => void await tx.state.cas("workflow", 7, "never"),
    },
    {
      name: "state.cas of a missing cell last",
      err: (e) => e instanceof NotFoundError,
      end: async (tx) => void await tx.state.cas("missing", 1, "never"),
    },
  ];
  for (const v of variants) {
    await using db = await Database.open();
    const run = await seeded(db);
    const stats = await db.stats();
    const raw = rawStore(db);
    const chain = await run.events.verifyChain();
    const headHash = (await run.events.head())?.hash;
    await assert.rejects(
      run.transaction(async (tx) => {
        await tx.kv.put("task/status", "running");
        await tx.kv.put("task/new", 1);
        await tx.events.append("task_started", { task: 1 });
        assert.equal(await tx.state.cas("workflow", 1, "step1"), 2);
        await tx.traces.record(thought("starting"), { id: "t1", tags: ["go"] });
        // The transaction sees its own writes up to the failure.
        assert.equal(await tx.kv.get("task/status"), "running");
        assert.equal(await tx.traces.count(), 2);
        await v.end(tx);
      }),
      v.err,
      v.name,
    );
    assert.equal(await run.kv.get("task/status"), "idle", v.name);
    assert.equal(await run.kv.exists("task/new"), false, v.name);
    assert.equal(await run.events.length(), 1, v.name);
    assert.deepEqual(await run.events.readByType("task_started"), [], v.name);
    assert.deepEqual(await run.events.verifyChain(), chain, v.name);
    assert.equal((await run.events.head())?.hash, headHash, v.name);
    const s = await run.state.read("workflow");
    assert.deepEqual([s?.value, s?.version], ["start", 1], v.name);
    assert.equal(await run.traces.count(), 1, v.name);
    assert.equal(await run.traces.get("t1"), undefined, v.name);
    assert.deepEqual(await run.traces.queryByTag("go"), [], v.name);
    const after = await db.stats();
    assert.equal(after.keys, stats.keys, v.name);
    assert.equal(after.bytes, stats.bytes, v.name);
    assert.equal(after.commits, stats.commits, v.name);
    assert.deepEqual(rawStore(db), raw, `${v.name}: not one byte of the store changed`);
    // The next writes continue from the committed state.
    assert.equal((await run.events.append("next", 0)).sequence, 1);
    assert.equal(await run.state.cas("workflow", 1, "step1"), 2);
    assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 2 });
  }
});

test("db.transaction across two runs and tx.runs: all of it commits, or none of it", async () => {
  await using db = await Database.open();
  const a = await db.runs.create({ name: "a" });
  const b = await db.runs.create({ name: "b" });
  await a.kv.put("k", "before");
  const stats = await db.stats();
  const raw = rawStore(db);
  const runStats = await db.runs.stats();
  type Fail = "no" | "throw" | "write after complete";
  const body = (fail: Fail) => async (tx: DatabaseTransaction): Promise<number> => {
    await tx.run(a.id).kv.put("k", "after");
    const ev = await tx.run(b.id).events.append("from-a", { a: a.id });
    const meta = await tx.runs.complete(a.id);
    assert.equal(meta.status, "completed");
    assert.equal((await tx.runs.get(a.id))?.status, "completed"); // read-your-writes
    if (fail === "throw") throw new Planned("boom");
    // The run this transaction completed refuses data writes inside it, too.
    if (fail === "write after complete") await tx.run(a.id).kv.put("k2", 1);
    return ev.sequence;
  };
  for (const fail of ["throw", "write after complete"] as const) {
    await assert.rejects(
      db.transaction(body(fail)),
      fail === "throw" ? Planned : RunClosedError,
    );
    assert.equal(await a.kv.get("k"), "before", fail);
    assert.equal(await a.kv.get("k2"), undefined, fail);
    assert.equal(await b.events.length(), 0, fail);
    const meta = await db.runs.get(a.id);
    assert.equal(meta?.status, "active", fail);
    assert.equal(meta?.completedAt, undefined, fail);
    assert.deepEqual(await db.runs.stats(), runStats, fail);
    assert.deepEqual((await db.runs.query({ status: "completed" })).map((r) => r.id), [], fail);
    assert.equal((await db.stats()).keys, stats.keys, fail);
    assert.deepEqual(rawStore(db), raw, `${fail}: not one byte of the store changed`);
  }
  assert.equal(await db.transaction(body("no")), 0);
  assert.equal(await a.kv.get("k"), "after");
  assert.deepEqual((await b.events.read(0))?.payload, { a: a.id });
  const meta = await db.runs.get(a.id);
  assert.equal(meta?.status, "completed");
  assert.equal(typeof meta?.completedAt, "number");
  assert.deepEqual((await db.runs.query({ status: "completed" })).map((r) => r.id), [a.id]);
  assert.deepEqual(await db.runs.stats(), {
    ...runStats,
    active: runStats.active - 1,
    completed: runStats.completed + 1,
  });
  // The KV entry carries the commit's version; a later write gets a higher one.
  const v1 = (await a.kv.getEntry("k"))!.version;
  await b.kv.put("later", 1);
  assert.ok((await b.kv.getEntry("later"))!.version > v1);
});

// ---- the property: random transactions, some thrown, against a model

const RUNS = 3;
const KV_KEYS = ["a", "b", "c"] as const;
const CELLS = ["x", "y"] as const;
const TYPES = ["e1", "e2"] as const;
const TAGS = ["t1", "t2"] as const;
const KINDS = ["thought", "tool_call"] as const;
const PROBE: Probe = { kv: KV_KEYS, cells: CELLS, types: TYPES, kinds: KINDS, tags: TAGS };

type Op =
  | { k: "put"; run: number; key: string; v: number }
  | { k: "del"; run: number; key: string }
  | { k: "append"; run: number; type: string; v: number }
  | { k: "set"; run: number; name: string; v: number }
  | { k: "cas"; run: number; name: string; v: number } // read, then cas (or init if absent)
  | { k: "sdel"; run: number; name: string }
  | { k: "trace"; run: number; kind: "thought" | "tool_call"; tag: string; parent: number | null }
  | { k: "tag"; run: number; tag: string } // tx.runs.addTags
  | { k: "meta"; run: number; v: number }; // tx.runs.updateMetadata

interface PTx {
  /** null: db.transaction across runs; a run index: run.transaction on that run. */
  single: number | null;
  ops: Op[];
  /** Throw before op i (ops.length: after the last); null: commit. */
  throwAt: number | null;
  /** How: a plain throw, or a state.cas with a wrong version (or of a missing cell). */
  throwKind: "error" | "cas";
}

const runArb = fc.integer({ min: 0, max: RUNS - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    k: fc.constant("put" as const),
    run: runArb,
    key: fc.constantFrom(...KV_KEYS),
    v: fc.nat(99),
  }),
  fc.record({ k: fc.constant("del" as const), run: runArb, key: fc.constantFrom(...KV_KEYS) }),
  fc.record({
    k: fc.constant("append" as const),
    run: runArb,
    type: fc.constantFrom(...TYPES),
    v: fc.nat(99),
  }),
  fc.record({
    k: fc.constant("set" as const),
    run: runArb,
    name: fc.constantFrom(...CELLS),
    v: fc.nat(99),
  }),
  fc.record({
    k: fc.constant("cas" as const),
    run: runArb,
    name: fc.constantFrom(...CELLS),
    v: fc.nat(99),
  }),
  fc.record({ k: fc.constant("sdel" as const), run: runArb, name: fc.constantFrom(...CELLS) }),
  fc.record({
    k: fc.constant("trace" as const),
    run: runArb,
    kind: fc.constantFrom(...KINDS),
    tag: fc.constantFrom(...TAGS),
    parent: fc.option(fc.nat(9), { nil: null }),
  }),
  fc.record({ k: fc.constant("tag" as const), run: runArb, tag: fc.constantFrom(...TAGS) }),
  fc.record({ k: fc.constant("meta" as const), run: runArb, v: fc.nat(99) }),
);
const txArb: fc.Arbitrary<PTx> = fc.record({
  single: fc.option(runArb, { nil: null }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 6 }),
  throwAt: fc.option(fc.nat(6), { nil: null, freq: 2 }),
  throwKind: fc.constantFrom("error" as const, "cas" as const),
}).map((t) => {
  const throwAt = t.throwAt === null ? null : Math.min(t.throwAt, t.ops.length);
  if (t.single === null) return { ...t, throwAt };
  const run = t.single;
  // A run's transaction has no tx.runs, and addresses its own run only.
  const ops = t.ops.filter((o) => o.k !== "tag" && o.k !== "meta").map((o) => ({ ...o, run }));
  return ops.length === 0
    ? { ...t, single: null, throwAt }
    : { ...t, ops, throwAt: throwAt === null ? null : Math.min(throwAt, ops.length) };
});

interface RunModel {
  kv: Map<string, { value: Value; writer: number }>;
  events: [type: string, payload: Value][];
  state: Map<string, [value: Value, version: number]>;
  traces: Map<string, { type: TraceType; tags: string[]; parentId?: string }>;
  tags: string[];
  metadata: Value;
}

function modelView(m: RunModel): RunView {
  const byKey = <T>(a: [string, T], b: [string, T]): number => (a[0] < b[0] ? -1 : 1);
  return {
    kv: [...m.kv].map(([k, e]): [string, Value] => [k, e.value]).sort(byKey),
    events: m.events.map(([type, payload], i) => [i, type, payload]),
    state: [...m.state].map(([n, [v, ver]]): [string, Value, number] => [n, v, ver]).sort((a, b) =>
      a[0] < b[0] ? -1 : 1
    ),
    traces: [...m.traces].sort(byKey).map(([id, t]) => [id, t.type, t.tags, t.parentId ?? null]),
  };
}

function traceType(kind: "thought" | "tool_call", n: string): TraceType {
  return kind === "thought"
    ? { kind, content: `c${n}` }
    : { kind, toolName: "search", arguments: { n } };
}

/** Runs `op` on the database and on the model in lockstep, comparing what each returns. */
async function step(
  h: RunTransaction,
  runs: Runs | undefined,
  runId: string,
  m: RunModel,
  op: Op,
  name: string,
  writer: number,
): Promise<void> {
  switch (op.k) {
    case "put":
      await h.kv.put(op.key, op.v);
      m.kv.set(op.key, { value: op.v, writer });
      break;
    case "del":
      assert.equal(await h.kv.delete(op.key), m.kv.delete(op.key), "kv.delete() result");
      break;
    case "append":
      assert.equal((await h.events.append(op.type, op.v)).sequence, m.events.length);
      m.events.push([op.type, op.v]);
      break;
    case "set": {
      const version = (m.state.get(op.name)?.[1] ?? 0) + 1;
      assert.equal(await h.state.set(op.name, op.v), version, "state.set() version");
      m.state.set(op.name, [op.v, version]);
      break;
    }
    case "cas": {
      const cur = await h.state.read(op.name);
      const want = m.state.get(op.name);
      assert.deepEqual(cur === undefined ? undefined : [cur.value, cur.version], want);
      if (want === undefined) await h.state.init(op.name, op.v);
      else assert.equal(await h.state.cas(op.name, want[1], op.v), want[1] + 1);
      m.state.set(op.name, [op.v, (want?.[1] ?? 0) + 1]);
      break;
    }
    case "sdel":
      assert.equal(await h.state.delete(op.name), m.state.delete(op.name), "state.delete()");
      break;
    case "trace": {
      const ids = [...m.traces.keys()].sort();
      const parentId = op.parent === null || ids.length === 0
        ? undefined
        : ids[op.parent % ids.length]!;
      const type = traceType(op.kind, name);
      const opts = { id: name, tags: [op.tag] };
      const got = parentId === undefined
        ? await h.traces.record(type, opts)
        : await h.traces.recordChild(parentId, type, opts);
      assert.equal(got, name);
      m.traces.set(name, { type, tags: [op.tag], ...(parentId === undefined ? {} : { parentId }) });
      break;
    }
    case "tag": {
      const meta = await runs!.addTags(runId, [op.tag]);
      if (!m.tags.includes(op.tag)) m.tags.push(op.tag);
      assert.deepEqual(meta.tags, m.tags);
      break;
    }
    case "meta":
      await runs!.updateMetadata(runId, { v: op.v });
      m.metadata = { v: op.v };
      break;
  }
}

const atomicityFigures = { committedDb: 0, committedRun: 0, threw: 0, failedCas: 0 };

/**
 * Runs transaction `t` (number `index`) and returns the model after it: the
 * draft if it committed, the old model if it threw — or, with
 * `applyThrown` (the negative control), the draft either way.
 */
async function runPTx(
  db: Database,
  ids: string[],
  model: RunModel[],
  t: PTx,
  index: number,
  applyThrown: boolean,
): Promise<RunModel[]> {
  let draft = model;
  let planned = false;
  const body = async (at: (r: number) => RunTransaction, runs: Runs | undefined): Promise<void> => {
    draft = structuredClone(model); // afresh on every attempt
    for (let j = 0; j <= t.ops.length; j++) {
      if (t.throwAt === j) {
        planned = true;
        if (t.throwKind === "error") throw new Planned(`planned throw in transaction ${index}`);
        const r = t.single ?? 0;
        const cell = draft[r]!.state.get("x");
        await assert.rejects(
          at(r).state.cas("x", 1000, "never"),
          (e) =>
            cell === undefined
              ? e instanceof NotFoundError
              : e instanceof VersionConflictError && e.expected === 1000 && e.actual === cell[1],
        );
        throw new Planned("after the failed cas");
      }
      if (j === t.ops.length) break;
      const op = t.ops[j]!;
      await step(at(op.run), runs, ids[op.run]!, draft[op.run]!, op, `p${index}.${j}`, index);
    }
  };
  try {
    if (t.single === null) {
      await db.transaction((tx) => body((r) => tx.run(ids[r]!), tx.runs));
    } else {
      await db.run(ids[t.single]!).transaction((tx) => body(() => tx, undefined));
    }
    assert.equal(planned, false);
    atomicityFigures[t.single === null ? "committedDb" : "committedRun"]++;
    return draft;
  } catch (err) {
    if (!(planned && err instanceof Planned)) throw err;
    atomicityFigures[t.throwKind === "error" ? "threw" : "failedCas"]++;
    return applyThrown ? draft : model;
  }
}

/** Every read of every run equals the model; KV versions follow the commit order. */
async function checkAgainstModel(db: Database, ids: string[], model: RunModel[]): Promise<void> {
  const versions: [writer: number, version: number][] = [];
  for (const [r, id] of ids.entries()) {
    const m = model[r]!;
    const run = db.run(id);
    assert.deepEqual(await view(run, PROBE), modelView(m), `run ${r}`);
    const meta = await db.runs.get(id);
    assert.deepEqual([meta?.status, meta?.tags, meta?.metadata], ["active", m.tags, m.metadata]);
    for (const [k, e] of m.kv) versions.push([e.writer, (await run.kv.getEntry(k))!.version]);
  }
  for (const tag of TAGS) {
    const want = ids.filter((_, r) => model[r]!.tags.includes(tag)).sort();
    const got = (await db.runs.query({ tags: [tag] })).map((x) => x.id).sort();
    assert.deepEqual(got, want, `runs.query({ tags: [${tag}] })`);
  }
  // Keys one transaction wrote share its version; later transactions have higher ones.
  versions.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < versions.length; i++) {
    const [w0, v0] = versions[i - 1]!;
    const [w1, v1] = versions[i]!;
    if (w0 === w1) assert.equal(v1, v0, "one transaction, one version");
    else assert.ok(v1 > v0, `transaction ${w1} after ${w0}: version ${v1} > ${v0}`);
  }
}

function atomicityProperty(applyThrown: boolean) {
  return fc.asyncProperty(fc.array(txArb, { minLength: 1, maxLength: 7 }), async (txs) => {
    await using db = await Database.open();
    const ids: string[] = [];
    let model: RunModel[] = [];
    for (let r = 0; r < RUNS; r++) {
      ids.push((await db.runs.create({ id: `run${r}` })).id);
      model.push({
        kv: new Map(),
        events: [],
        state: new Map(),
        traces: new Map(),
        tags: [],
        metadata: {},
      });
    }
    for (const [i, t] of txs.entries()) {
      model = await runPTx(db, ids, model, t, i, applyThrown);
      await checkAgainstModel(db, ids, model);
    }
  });
}

test("property: random transactions, some thrown, leave just the committed ones", async () => {
  await fc.assert(atomicityProperty(false), { numRuns: 30 });
  // Both kinds of transaction committed, and both kinds of failure rolled back.
  for (const [k, n] of Object.entries(atomicityFigures)) assert.ok(n > 0, `${k}: ${n}`);
});

test("negative control: a model that also applies the thrown transactions is caught", async () => {
  const r = await fc.check(atomicityProperty(true), {
    seed: NEGATIVE_CONTROL_SEED,
    numRuns: 30,
    endOnFailure: true,
  });
  assert.equal(r.failed, true, "the property must fail when thrown transactions count");
});

// ---------------------------------------------------------------------------
// 2. Serializability across primitives

/**
 * Write skew across primitives: T0 and T1 each read a state cell and a KV
 * key (by `read`), wait until both have read, and — if the invariant
 * allows — each write a different one of them. Snapshot isolation would
 * commit both; serializable must re-run one, which then sees the other's
 * write.
 */
async function writeSkew(shape: "run" | "db", read: "point" | "range"): Promise<void> {
  await using db = await Database.open();
  const a = await db.runs.create();
  const b = shape === "db" ? await db.runs.create() : a;
  if (read === "point") {
    await a.state.init("on-call/x", 1);
    await b.kv.put("on-call/y", 1);
  }
  const conflicts = (await db.stats()).conflicts;
  let arrived = 0;
  let release!: () => void;
  const bothRead = new Promise<void>((r) => (release = r));
  const attempts = [0, 0];
  const exec = <T>(fn: (s: RunTransaction, k: RunTransaction) => Promise<T>): Promise<T> =>
    shape === "run"
      ? a.transaction((tx) => fn(tx, tx))
      : db.transaction((tx) => fn(tx.run(a.id), tx.run(b.id)));
  const t = (who: 0 | 1) =>
    exec(async (s, k) => {
      attempts[who]!++;
      let allowed: boolean;
      if (read === "point") {
        // Invariant: x + y >= 1. Each may take itself off call if both are on.
        const x = (await s.state.read("on-call/x"))!.value as number;
        const y = (await k.kv.get("on-call/y")) as number;
        allowed = x + y === 2;
      } else {
        // Invariant: at most one of (cells, keys) is non-empty (a phantom).
        allowed = (await s.state.list()).length === 0 && (await k.kv.list()).length === 0;
      }
      if (++arrived === 2) release();
      await bothRead;
      if (!allowed) return "declined";
      if (read === "point") {
        if (who === 0) await s.state.set("on-call/x", 0);
        else await k.kv.put("on-call/y", 0);
      } else if (who === 0) await s.state.init("c", 0);
      else await k.kv.put("k", 0);
      return "took";
    });
  const results = await Promise.all([t(0), t(1)]);
  const label = `${shape}/${read}`;
  assert.deepEqual([...attempts].sort(), [1, 2], `${label}: exactly one re-ran`);
  assert.equal((await db.stats()).conflicts, conflicts + 1, label);
  // The outcome of one of the two serial orders.
  const first = attempts[0] === 1 ? 0 : 1;
  assert.deepEqual(results, first === 0 ? ["took", "declined"] : ["declined", "took"], label);
  if (read === "point") {
    const x = (await a.state.read("on-call/x"))!;
    const y = (await b.kv.get("on-call/y")) as number;
    assert.deepEqual([x.value, y], first === 0 ? [0, 1] : [1, 0], label);
    assert.equal(x.version, first === 0 ? 2 : 1, label);
  } else {
    assert.deepEqual(await a.state.list(), first === 0 ? ["c"] : [], label);
    assert.deepEqual(await b.kv.list(), first === 0 ? [] : ["k"], label);
  }
}

test("write skew across a state cell and a KV key: one re-runs, outcome serial", async () => {
  await writeSkew("run", "point");
  await writeSkew("db", "point");
});

test("write skew through state.list() and kv.list() (phantoms): one re-runs, serial", async () => {
  await writeSkew("run", "range");
  await writeSkew("db", "range");
});

test("64 concurrent run.transactions incrementing a KV counter end at exactly 64", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.kv.put("counter", 0);
  const conflicts = (await db.stats()).conflicts;
  let bodies = 0;
  const results = await Promise.allSettled(
    Array.from({ length: 64 }, (_, i) =>
      run.transaction(async (tx) => {
        bodies++;
        const n = (await tx.kv.get("counter")) as number;
        await tx.kv.put("counter", n + 1);
        await tx.events.append("inc", { i, saw: n });
        return n;
      })),
  );
  const failed = results.filter((r) => r.status === "rejected");
  assert.deepEqual(failed, [], `with the default budget none gave up (${bodies} bodies ran)`);
  assert.equal(await run.kv.get("counter"), 64);
  // Each saw a distinct count: the increments are serial, in the event log's order.
  const saw = results.map((r) => (r as PromiseFulfilledResult<number>).value).sort((x, y) => x - y);
  assert.deepEqual(saw, Array.from({ length: 64 }, (_, i) => i));
  const events = await run.events.readRange(0, 64);
  assert.deepEqual(events.map((e) => (e.payload as { saw: number }).saw), saw);
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 64 });
  // Retries happened (a read-modify-write cannot avoid them) and were counted.
  const retries = (await db.stats()).conflicts - conflicts;
  assert.equal(bodies, 64 + retries);
  assert.ok(retries > 0);
});

// ---------------------------------------------------------------------------
// 3. Run isolation

/** The same names in every primitive, in run `label`. */
async function fill(run: Run, label: string, n: number): Promise<void> {
  await run.kv.put("k", label);
  await run.kv.put(`only-${label}`, n);
  for (let i = 0; i < n; i++) await run.events.append("e", { label, i });
  await run.state.init("c", label);
  for (let i = 1; i < n; i++) await run.state.set("c", `${label}${i}`);
  await run.traces.record(thought(label), { id: "t1", tags: ["tag"] });
  for (let i = 0; i < n; i++) {
    await run.traces.recordChild("t1", thought(`${label}${i}`), { id: `t1.${i}`, tags: ["tag"] });
  }
}

const ISO_PROBE: Probe = {
  kv: ["k", "only-a", "only-b"],
  cells: ["c", "d"],
  types: ["e", "f"],
  kinds: ["thought", "tool_call"],
  tags: ["tag", "other"],
};

test("run isolation: one key, cell, event type, trace id and tag in two runs", async () => {
  await using db = await Database.open();
  const a = await db.runs.create({ tags: ["shared", "only-a"] });
  const b = await db.runs.create({ tags: ["shared", "only-b"] });
  const c = await db.runs.create(); // never written: stays empty throughout
  await fill(a, "a", 2);
  await fill(b, "b", 3);
  const va = await view(a, ISO_PROBE);
  const vb = await view(b, ISO_PROBE);
  const vc = await view(c, ISO_PROBE);
  assert.deepEqual(va.kv, [["k", "a"], ["only-a", 2]]);
  assert.deepEqual(vb.kv, [["k", "b"], ["only-b", 3]]);
  assert.deepEqual(va.events.map(([s, t, p]) => [s, t, p]), [[0, "e", { label: "a", i: 0 }], [
    1,
    "e",
    { label: "a", i: 1 },
  ]]);
  assert.deepEqual(vb.events.map(([, , p]) => (p as { label: string }).label), ["b", "b", "b"]);
  assert.deepEqual(va.state, [["c", "a1", 2]]);
  assert.deepEqual(vb.state, [["c", "b2", 3]]);
  assert.deepEqual(va.traces.map(([id]) => id), ["t1", "t1.0", "t1.1"]);
  assert.deepEqual(vb.traces.map(([id]) => id), ["t1", "t1.0", "t1.1", "t1.2"]);
  assert.deepEqual(va.traces[0]![1], thought("a"));
  assert.deepEqual(vb.traces[0]![1], thought("b"));
  assert.deepEqual(vc, { kv: [], events: [], state: [], traces: [] });
  // The chains are separate: each run's first event starts from zeros.
  assert.equal((await a.events.read(0))?.prevHash, "0".repeat(64));
  assert.equal((await b.events.read(0))?.prevHash, "0".repeat(64));
  assert.notEqual((await a.events.head())?.hash, (await b.events.head())?.hash);
  // Trees and time queries stay inside the run.
  assert.equal(treeSize((await a.traces.tree("t1"))!), 3);
  assert.equal(treeSize((await b.traces.tree("t1"))!), 4);
  assert.equal((await c.traces.queryByTime(0, FAR_MS)).length, 0);
  // KV paging with a prefix, and the other run's only-key, are invisible.
  assert.deepEqual(await a.kv.list("only-"), ["only-a"]);
  assert.equal(await a.kv.getEntry("only-b"), undefined);
  // runs.query by tag.
  const q = async (tags: string[]) => (await db.runs.query({ tags })).map((r) => r.id).sort();
  assert.deepEqual(await q(["only-a"]), [a.id]);
  assert.deepEqual(await q(["only-b"]), [b.id]);
  assert.deepEqual(await q(["shared"]), [a.id, b.id].sort());
  assert.deepEqual(await q(["shared", "only-a"]), [a.id]);
  assert.deepEqual(await q(["tag"]), [], "trace tags are not run tags");
  // Deletes and status changes in one run leave the other's every read as it was.
  await a.kv.delete("k");
  await a.state.delete("c");
  await a.events.append("f", "only in a");
  await db.runs.complete(a.id);
  assert.deepEqual(await view(b, ISO_PROBE), vb);
  await b.kv.put("still", "writable"); // b's status is its own
  await b.kv.delete("still");
  await db.runs.delete(a.id);
  assert.deepEqual(await view(b, ISO_PROBE), vb);
  assert.deepEqual(await view(c, ISO_PROBE), vc);
  // A run created after the delete starts empty, whatever number it got.
  const d = await db.runs.create();
  assert.deepEqual(await view(d, ISO_PROBE), { kv: [], events: [], state: [], traces: [] });
});

test("run isolation inside one db.transaction writing the same names into two runs", async () => {
  await using db = await Database.open();
  const a = await db.runs.create();
  const b = await db.runs.create();
  await db.transaction(async (tx) => {
    for (const [run, label] of [[a, "a"], [b, "b"]] as const) {
      const p = tx.run(run.id);
      await p.kv.put("k", label);
      await p.events.append("e", label);
      await p.state.init("c", label);
      await p.traces.record(thought(label), { id: "t1", tags: ["tag"] });
    }
    // Inside the transaction each handle already reads only its own run
    // (traces.count() aside: see the next test).
    const p = tx.run(a.id);
    assert.deepEqual(await p.kv.entries(), [["k", "a"]]);
    assert.deepEqual((await p.events.readRange(0, 9)).map((e) => e.payload), ["a"]);
    assert.deepEqual(await p.events.readByType("e").then((es) => es.length), 1);
    assert.equal(await p.events.length(), 1);
    assert.deepEqual(await p.state.read("c").then((s) => [s?.value, s?.version]), ["a", 1]);
    assert.deepEqual(await p.traces.list(), ["t1"]);
    assert.deepEqual((await p.traces.queryByTag("tag")).map((t) => t.type), [thought("a")]);
  });
  for (const [run, label] of [[a, "a"], [b, "b"]] as const) {
    assert.deepEqual(await view(run, ISO_PROBE), {
      kv: [["k", label]],
      events: [[0, "e", label]],
      state: [["c", label, 1]],
      traces: [["t1", thought(label), ["tag"], null]],
    });
  }
});

test(
  "inside a db.transaction, traces.count() of a run counts only that run's new traces",
  {},
  async () => {
    await using db = await Database.open();
    const a = await db.runs.create();
    const b = await db.runs.create();
    await db.transaction(async (tx) => {
      await tx.run(a.id).traces.record(thought("a"));
      await tx.run(b.id).traces.record(thought("b"));
      await tx.run(b.id).traces.record(thought("b"));
      assert.equal(await tx.run(a.id).traces.count(), 1);
      assert.equal(await tx.run(b.id).traces.count(), 2);
      // And every other read inside the transaction agrees with itself.
      await view(tx.run(a.id), ISO_PROBE);
    });
    assert.deepEqual([await a.traces.count(), await b.traces.count()], [1, 2]);
  },
);

// ---------------------------------------------------------------------------
// 4. Recovery after a crash and after a clean close

/** Keys of a run that the crash workload writes once and never changes. */
const MUTABLE_TAGS: ReadonlySet<number> = new Set([TAG.STATE, TAG.EVENT_HEAD, TAG.TRACE_COUNT]);

interface Workload {
  /** Sizes of groups of concurrent transactions. */
  groups: number[];
  haltAt: number;
  mode: SimCrashMode;
  seed: number;
  /** The group that a checkpoint races (none if past the end). */
  checkpointAt: number;
}

const workloadArb: fc.Arbitrary<Workload> = fc.record({
  groups: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 4 }),
  haltAt: fc.integer({ min: 0, max: 45 }),
  mode: fc.constantFrom(...SIM_CRASH_MODES),
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  checkpointAt: fc.integer({ min: 0, max: 5 }),
});

/** Transaction `i` completes run C; even ones tag run A with `tx<i>`. */
const COMPLETER = 1;

/**
 * Transaction `i` of group `g`: across runs A and B, every primitive, and
 * sometimes the run lifecycle. Everything it writes carries `i`, so a
 * partial transaction after recovery would show.
 */
function workTx(db: Database, ids: { a: string; b: string; c: string }, i: number, g: number) {
  return db.transaction(async (tx) => {
    const a = tx.run(ids.a);
    const b = tx.run(ids.b);
    await a.kv.put(`tx/${i}`, { i, g });
    await a.events.append("tx", i);
    await b.state.set(`cell${i % 3}`, i);
    await b.traces.record(
      { kind: "tool_call", toolName: "work", arguments: { i } },
      { id: `tr${i}`, parentId: "root", tags: [`g${g}`] },
    );
    await b.events.append(`g${g}`, i);
    await b.kv.put(`tx/${i}`, i);
    if (i % 2 === 0) await tx.runs.addTags(ids.a, [`tx${i}`]);
    if (i === COMPLETER) await tx.runs.complete(ids.c);
  });
}

async function setUpWorkload(db: Database): Promise<{ a: string; b: string; c: string }> {
  const a = await db.runs.create({ tags: ["A"] });
  const b = await db.runs.create({ tags: ["B"] });
  const c = await db.runs.create({ tags: ["C"] });
  await a.events.append("setup", null);
  await b.traces.record(thought("root"), { id: "root" });
  for (let cell = 0; cell < 3; cell++) await b.state.init(`cell${cell}`, -1);
  return { a: a.id, b: b.id, c: c.id };
}

/**
 * Checks a database against the workload's transactions `S` (in commit
 * order) out of `started`: every one in S whole, every other one absent.
 */
async function checkWorkload(
  db: Database,
  ids: { a: string; b: string; c: string },
  started: { i: number; g: number }[],
  S: number[],
): Promise<void> {
  const a = db.run(ids.a);
  const b = db.run(ids.b);
  const inS = new Set(S);
  // Chains valid, indices consistent with the records (view() checks both).
  const va = await view(a);
  const vb = await view(b);
  await view(db.run(ids.c));
  assert.deepEqual(va.events.slice(1).map(([, t]) => t), S.map(() => "tx"));
  // B's log holds the same transactions in the same (commit) order.
  assert.deepEqual(vb.events.map(([, , p]) => p), S);
  for (const { i, g } of started) {
    const has = inS.has(i);
    const what = `transaction ${i} ${has ? "present" : "absent"}`;
    assert.deepEqual(await a.kv.get(`tx/${i}`), has ? { i, g } : undefined, what);
    assert.equal(await b.kv.get(`tx/${i}`), has ? i : undefined, what);
    const trace = await b.traces.get(`tr${i}`);
    assert.deepEqual(
      trace === undefined ? undefined : [trace.parentId, trace.tags],
      has ? ["root", [`g${g}`]] : undefined,
      what,
    );
    assert.equal(vb.events.some(([, t, p]) => t === `g${g}` && p === i), has, what);
    if (i % 2 === 0) {
      const tagged = (await db.runs.query({ tags: [`tx${i}`] })).map((r) => r.id);
      assert.deepEqual(tagged, has ? [ids.a] : [], what);
    }
    if (has) {
      // One transaction, one KV version across both runs.
      const va2 = (await a.kv.getEntry(`tx/${i}`))!.version;
      assert.equal((await b.kv.getEntry(`tx/${i}`))!.version, va2, what);
    }
  }
  // KV versions increase in commit order.
  const versions = [];
  for (const i of S) versions.push((await a.kv.getEntry(`tx/${i}`))!.version);
  for (let k = 1; k < versions.length; k++) assert.ok(versions[k]! > versions[k - 1]!);
  // State cells: the last writer's value, a version per write.
  for (let cell = 0; cell < 3; cell++) {
    const writers = S.filter((i) => i % 3 === cell);
    const s = await b.state.read(`cell${cell}`);
    assert.deepEqual([s?.value, s?.version], [writers.at(-1) ?? -1, 1 + writers.length]);
  }
  // Trace indices per group, children of the root, the count.
  assert.equal(await b.traces.count(), 1 + S.length);
  assert.deepEqual(byId(await b.traces.children("root")), S.map((i) => `tr${i}`).sort());
  for (const g of new Set(started.map((s) => s.g))) {
    const want = started.filter((s) => s.g === g && inS.has(s.i)).map((s) => `tr${s.i}`).sort();
    assert.deepEqual(byId(await b.traces.queryByTag(`g${g}`)), want);
  }
  assert.equal((await b.traces.queryByType("tool_call")).length, S.length);
  // Statuses and the counters behind runs.stats().
  const completed = inS.has(COMPLETER);
  assert.equal((await db.runs.get(ids.c))?.status, completed ? "completed" : "active");
  const stats = await db.runs.stats();
  assert.deepEqual([stats.total, stats.active, stats.completed], [
    3,
    completed ? 2 : 3,
    completed ? 1 : 0,
  ]);
  assert.deepEqual(
    (await db.runs.query({ status: "completed" })).map((r) => r.id),
    completed ? [ids.c] : [],
  );
}

/** After recovery every primitive keeps going from where it was. */
async function checkContinues(
  db: Database,
  ids: { a: string; b: string; c: string },
): Promise<void> {
  const a = db.run(ids.a);
  const b = db.run(ids.b);
  const length = await a.events.length();
  const head = await a.events.head();
  const next = await a.events.append("after", null);
  assert.equal(next.sequence, length);
  assert.equal((await a.events.read(length))?.prevHash, head?.hash);
  assert.deepEqual(await a.events.verifyChain(), { valid: true, length: length + 1 });
  let maxVersion = 0;
  for (const k of await a.kv.list()) {
    maxVersion = Math.max(maxVersion, (await a.kv.getEntry(k))!.version);
  }
  await a.kv.put("after", 1);
  assert.ok((await a.kv.getEntry("after"))!.version > maxVersion, "KV versions keep increasing");
  const cell = (await b.state.read("cell0"))!;
  assert.equal(await b.state.cas("cell0", cell.version, "after"), cell.version + 1);
  const count = await b.traces.count();
  await b.traces.recordChild("root", thought("after"), { id: "after" });
  assert.equal(await b.traces.count(), count + 1);
  // A new run gets a fresh number: it sees none of the old runs' data.
  const before = await db.runs.list();
  const fresh = await db.runs.create();
  assert.deepEqual(await view(fresh), { kv: [], events: [], state: [], traces: [] });
  assert.deepEqual((await db.runs.list()).sort(), [...before, fresh.id].sort());
  for (const id of [ids.a, ids.b, ids.c]) {
    assert.notEqual(runNumber(db, fresh.id), runNumber(db, id));
  }
}

const crashFigures = { cases: 0, midway: 0, acked: 0, unackedSurvived: 0, checkpoints: 0 };

/** Negative controls of the crash check. */
interface CrashControl {
  /** Expect every started transaction to survive, acknowledged or not. */
  allAcked?: boolean;
  /** After recovery, delete one key of the first surviving transaction. */
  makePartial?: boolean;
}

async function crashCase(w: Workload, control: CrashControl = {}): Promise<void> {
  const fs = new SimFS({ seed: w.seed });
  const db = await Database.open("db", { fs, durability: "strict" });
  const ids = await setUpWorkload(db);
  fs.haltAfter(fs.opCount + w.haltAt);
  const started: { i: number; g: number }[] = [];
  const acked = new Set<number>();
  const storageOnly = (err: unknown): void => {
    if (!(err instanceof StorageError)) throw err;
  };
  let failed = 0;
  for (const [g, size] of w.groups.entries()) {
    const ckpt = g === w.checkpointAt
      ? db.checkpoint().then(() => void crashFigures.checkpoints++, storageOnly)
      : undefined;
    const batch = Array.from({ length: size }, () => {
      const i = started.length;
      started.push({ i, g });
      return workTx(db, ids, i, g).then(() => void acked.add(i), (err) => {
        failed++;
        storageOnly(err);
      });
    });
    await Promise.all([ckpt, ...batch]);
  }
  const pre = rawStore(db); // every acknowledged commit is applied here
  const preA = runNumber(db, ids.a);
  const preB = runNumber(db, ids.b);
  const after = fs.crash(w.mode, w.seed);
  await db.close().catch(() => {});
  await using db2 = await Database.open("db", { fs: after, durability: "strict" });
  for (const id of [ids.a, ids.b, ids.c]) {
    assert.ok(await db2.runs.get(id) !== undefined, `acknowledged run ${id} survived`);
  }
  const S = (await db2.run(ids.a).events.readRange(1, 1000)).map((e) => e.payload as number);
  const label = `${w.mode} seed ${w.seed} halt ${w.haltAt}`;
  if (control.allAcked === true) { for (const { i } of started) acked.add(i); }
  for (const i of acked) {
    assert.ok(S.includes(i), `${label}: acknowledged transaction ${i} survived`);
  }
  assert.equal(new Set(S).size, S.length);
  for (const i of S) assert.ok(i >= 0 && i < started.length);
  if (control.makePartial === true && S.length > 0) {
    assert.equal(await db2.run(ids.b).kv.delete(`tx/${S[0]}`), true);
  }
  await checkWorkload(db2, ids, started, S);
  // Acknowledged data is back byte for byte: KV records with their versions,
  // events with their hashes and timestamps, traces and every index entry.
  const post = rawStore(db2);
  let compared = 0;
  for (const [k, v] of pre) {
    const run = parseInt(k.slice(0, 8), 16);
    const tag = parseInt(k.slice(8, 10), 16);
    if ((run !== preA && run !== preB) || MUTABLE_TAGS.has(tag)) continue;
    assert.equal(post.get(k), v, `${label}: key ${k} kept its bytes`);
    compared++;
  }
  assert.ok(compared > 0);
  await checkContinues(db2, ids);
  crashFigures.cases++;
  crashFigures.acked += acked.size;
  crashFigures.unackedSurvived += S.length - acked.size;
  if (failed > 0 && acked.size > 0) crashFigures.midway++;
}

test("property: after a crash (strict) acked transactions are whole, none partial", async () => {
  await fc.assert(fc.asyncProperty(workloadArb, (w) => crashCase(w)), { numRuns: 40 });
  // The halts fell inside the workload, not only before or after it.
  assert.ok(crashFigures.midway > 0, JSON.stringify(crashFigures));
  assert.ok(crashFigures.acked > 0, JSON.stringify(crashFigures));
});

test("negative controls: the crash check catches a lost and a partial transaction", async () => {
  for (const control of [{ allAcked: true }, { makePartial: true }]) {
    const r = await fc.check(fc.asyncProperty(workloadArb, (w) => crashCase(w, control)), {
      seed: NEGATIVE_CONTROL_SEED,
      numRuns: 20,
      endOnFailure: true,
    });
    assert.equal(r.failed, true, JSON.stringify(control));
    assert.ok(r.errorInstance instanceof assert.AssertionError, String(r.errorInstance));
  }
});

test("every crash mode, halted inside concurrent transactions: recovery holds", async () => {
  for (const mode of SIM_CRASH_MODES) {
    for (const haltAt of [3, 7]) {
      await crashCase({ groups: [3, 3, 3], haltAt, mode, seed: 11 + haltAt, checkpointAt: 1 });
    }
  }
});

/** The crash workload with batched durability, no halt; closed cleanly. */
async function batchedWorkload(fs: SimFS) {
  const options = { fs, durability: "batched" as const, syncIntervalMs: 60_000 };
  const db = await Database.open("db", options);
  const ids = await setUpWorkload(db);
  const started: { i: number; g: number }[] = [];
  for (const [g, size] of [4, 3, 4].entries()) {
    const batch = [];
    for (let k = 0; k < size; k++) {
      const i = started.length;
      started.push({ i, g });
      batch.push(workTx(db, ids, i, g));
    }
    await Promise.all(batch);
  }
  await db.checkpoint();
  started.push({ i: started.length, g: 3 });
  await workTx(db, ids, started.length - 1, 3); // after the checkpoint: in the WAL only
  const S = (await db.run(ids.a).events.readRange(1, 1000)).map((e) => e.payload as number);
  assert.equal(S.length, started.length);
  const raw = rawStore(db);
  const views = [];
  for (const id of [ids.a, ids.b, ids.c]) views.push(await view(db.run(id)));
  await db.close();
  return { options, ids, started, S, raw, views };
}

test("batched: after a clean close and reopen every byte is back and work continues", async () => {
  const fs = new SimFS({ seed: 99 });
  const w = await batchedWorkload(fs);
  await using db = await Database.open("db", w.options);
  assert.deepEqual(rawStore(db), w.raw, "every key and value byte is back");
  for (const [n, id] of [w.ids.a, w.ids.b, w.ids.c].entries()) {
    assert.deepEqual(await view(db.run(id)), w.views[n]);
  }
  await checkWorkload(db, w.ids, w.started, w.S);
  await checkContinues(db, w.ids);
});

test("batched: close() syncs, so a power loss right after it loses nothing", async () => {
  for (const mode of SIM_CRASH_MODES) {
    const fs = new SimFS({ seed: 98 });
    const w = await batchedWorkload(fs);
    // The sync interval never fired: only close() can have made the tail durable.
    await using db = await Database.open("db", { ...w.options, fs: fs.crash(mode, 5) });
    assert.deepEqual(rawStore(db), w.raw, `${mode}: every key and value byte is back`);
    await checkWorkload(db, w.ids, w.started, w.S);
    await checkContinues(db, w.ids);
  }
});

// ---------------------------------------------------------------------------
// 5. Lifecycle of the Database object

/** Every operation of the API, on the handles given; each returns a Promise. */
function everyOperation(db: Database, run: Run): [string, () => Promise<unknown>][] {
  const t = thought("x");
  return [
    ["kv.get", () => run.kv.get("k")],
    ["kv.getEntry", () => run.kv.getEntry("k")],
    ["kv.exists", () => run.kv.exists("k")],
    ["kv.put", () => run.kv.put("k", 2)],
    ["kv.delete", () => run.kv.delete("k")],
    ["kv.list", () => run.kv.list()],
    ["kv.entries", () => run.kv.entries()],
    ["kv.page", () => run.kv.page()],
    ["events.append", () => run.events.append("e", 1)],
    ["events.read", () => run.events.read(0)],
    ["events.readRange", () => run.events.readRange(0, 1)],
    ["events.head", () => run.events.head()],
    ["events.length", () => run.events.length()],
    ["events.isEmpty", () => run.events.isEmpty()],
    ["events.readByType", () => run.events.readByType("e")],
    ["events.verifyChain", () => run.events.verifyChain()],
    ["events[Symbol.asyncIterator]", () => run.events[Symbol.asyncIterator]().next()],
    ["state.init", () => run.state.init("new", 1)],
    ["state.read", () => run.state.read("c")],
    ["state.cas", () => run.state.cas("c", 1, 2)],
    ["state.set", () => run.state.set("c", 3)],
    ["state.delete", () => run.state.delete("c")],
    ["state.exists", () => run.state.exists("c")],
    ["state.list", () => run.state.list()],
    ["state.transition", () => run.state.transition("c", (s) => [s.value, 0])],
    ["traces.record", () => run.traces.record(t)],
    ["traces.recordChild", () => run.traces.recordChild("t", t)],
    ["traces.get", () => run.traces.get("t")],
    ["traces.queryByType", () => run.traces.queryByType("thought")],
    ["traces.queryByTag", () => run.traces.queryByTag("x")],
    ["traces.queryByTime", () => run.traces.queryByTime(0, 1)],
    ["traces.children", () => run.traces.children("t")],
    ["traces.tree", () => run.traces.tree("t")],
    ["traces.list", () => run.traces.list()],
    ["traces.count", () => run.traces.count()],
    ["runs.create", () => db.runs.create()],
    ["runs.get", () => db.runs.get(run.id)],
    ["runs.setStatus", () => db.runs.setStatus(run.id, "paused")],
    ["runs.complete", () => db.runs.complete(run.id)],
    ["runs.fail", () => db.runs.fail(run.id, "x")],
    ["runs.cancel", () => db.runs.cancel(run.id)],
    ["runs.pause", () => db.runs.pause(run.id)],
    ["runs.resume", () => db.runs.resume(run.id)],
    ["runs.archive", () => db.runs.archive(run.id)],
    ["runs.addTags", () => db.runs.addTags(run.id, ["x"])],
    ["runs.updateMetadata", () => db.runs.updateMetadata(run.id, {})],
    ["runs.query", () => db.runs.query()],
    ["runs.list", () => db.runs.list()],
    ["runs.children", () => db.runs.children(run.id)],
    ["runs.stats", () => db.runs.stats()],
    ["runs.delete", () => db.runs.delete(run.id)],
    ["db.transaction", () => db.transaction(() => 1)],
    ["run.transaction", () => run.transaction(() => 1)],
    ["db.checkpoint", () => db.checkpoint()],
    ["db.stats", () => db.stats()],
    ["db.sweepExpired", () => db.sweepExpired()],
  ];
}

/** Names of the operations that do not fail with DatabaseClosedError (sync throws allowed). */
async function notClosedErrors(ops: [string, () => Promise<unknown>][]): Promise<string[]> {
  const wrong: string[] = [];
  for (const [name, op] of ops) {
    try {
      await op();
      wrong.push(`${name}: resolved`);
    } catch (err) {
      if (!(err instanceof DatabaseClosedError)) wrong.push(`${name}: ${String(err)}`);
    }
  }
  return wrong;
}

test("after close() every operation and transaction fails with DatabaseClosedError", async () => {
  for (const durable of [false, true]) {
    const db = durable
      ? await Database.open("db", { fs: new SimFS({ seed: 3 }), durability: "strict" })
      : await Database.open();
    const run = await db.runs.create();
    await run.kv.put("k", 1);
    await run.state.init("c", 1);
    await run.traces.record(thought("t"), { id: "t" });
    const tx = db.run(run.id); // handles made before close
    await db.close();
    const ops = everyOperation(db, tx);
    assert.equal(ops.length, 56);
    assert.deepEqual(await notClosedErrors(ops), [], durable ? "strict" : "in memory");
    // A handle made after close fails the same way.
    assert.deepEqual(await notClosedErrors(everyOperation(db, db.run(run.id))), []);
  }
});

test(
  "after close() every operation returns a rejected Promise (none throws synchronously)",
  {},
  async () => {
    const db = await Database.open();
    const run = await db.runs.create();
    await db.close();
    const sync: string[] = [];
    for (const [name, op] of everyOperation(db, run)) {
      let p: Promise<unknown>;
      try {
        p = op();
      } catch {
        sync.push(name);
        continue;
      }
      await assert.rejects(p, DatabaseClosedError, name);
    }
    assert.deepEqual(sync, [], "threw synchronously instead of rejecting");
  },
);

test("close() is idempotent; interrupted work is durable if resolved, else rejected", async () => {
  const fs = new SimFS({ seed: 21 });
  const db = await Database.open("db", { fs, durability: "strict" });
  const run = await db.runs.create();
  const puts = Array.from({ length: 12 }, (_, i) => run.kv.put(`put${i}`, i));
  const txs = Array.from({ length: 4 }, (_, i) =>
    run.transaction(async (tx) => {
      await new Promise((r) => setTimeout(r, 5)); // still running when close() starts
      await tx.kv.put(`tx${i}`, i);
      await tx.events.append("tx", i);
    }));
  const closing = [db.close(), db.close()];
  const results = await Promise.allSettled([...puts, ...txs]);
  await Promise.all(closing);
  await db.close(); // a third time, after it finished
  const resolved = new Set<string>();
  for (const [n, r] of results.entries()) {
    const name = n < 12 ? `put${n}` : `tx${n - 12}`;
    if (r.status === "fulfilled") resolved.add(name);
    else assert.ok(r.reason instanceof DatabaseClosedError, `${name}: ${String(r.reason)}`);
  }
  assert.ok(resolved.size > 0, "some work finished");
  // Nothing lost, nothing extra — even if the machine loses power right after.
  await using db2 = await Database.open("db", {
    fs: fs.crash("dropUnsynced", 1),
    durability: "strict",
  });
  const keys = await db2.run(run.id).kv.list();
  assert.deepEqual(keys.sort(), [...resolved].sort());
  const txsDone = [...resolved].filter((k) => k.startsWith("tx")).length;
  assert.equal(await db2.run(run.id).events.length(), txsDone);
});

test("await using closes: handles reject afterwards, the directory reopens", async () => {
  const fs = new SimFS({ seed: 4 });
  let run: Run;
  let kept: Database;
  {
    await using db = await Database.open("db", { fs, durability: "strict" });
    kept = db;
    run = await db.runs.create();
    await run.kv.put("k", "v");
  }
  await assert.rejects(run.kv.get("k"), DatabaseClosedError);
  await assert.rejects(kept.transaction(() => 1), DatabaseClosedError);
  // The lock was released: the same SimFS machine opens it again, with the data.
  await using db2 = await Database.open("db", { fs, durability: "strict" });
  assert.equal(await db2.run(run.id).kv.get("k"), "v");
});

test("a second open of an open directory throws LockedError; after close it opens", async () => {
  const dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "in-mem-database-test-"));
  try {
    const db = await Database.open(dir);
    const run = await db.runs.create();
    await run.kv.put("k", 1);
    await assert.rejects(Database.open(dir), LockedError);
    await assert.rejects(Database.open(dir, { durability: "batched" }), LockedError);
    // The failed opens changed nothing for the holder.
    assert.equal(await run.kv.get("k"), 1);
    await run.kv.put("k", 2);
    await db.close();
    await db.close(); // idempotent
    {
      await using again = await Database.open(dir);
      assert.equal(await again.run(run.id).kv.get("k"), 2);
      await assert.rejects(Database.open(dir), LockedError);
    }
    await using third = await Database.open(dir);
    assert.equal(await third.run(run.id).kv.get("k"), 2);
  } finally {
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
});

test("TransactionConflictError carries attempts when every read is overwritten", async () => {
  for (
    const [maxRetries, shape] of [[0, "run"], [0, "db"], [2, "run"], [undefined, "db"]] as const
  ) {
    await using db = await Database.open(undefined, maxRetries === undefined ? {} : { maxRetries });
    const run = await db.runs.create();
    await run.kv.put("k", 0);
    let bodies = 0;
    const body = async (p: RunTransaction): Promise<void> => {
      bodies++;
      const v = (await p.kv.get("k")) as number;
      await run.kv.put("k", 100 + bodies); // a concurrent commit overwrites what was read
      await p.kv.put("copy", v);
      await p.events.append("copied", v);
    };
    const attempts = (maxRetries ?? 10) + 1;
    await assert.rejects(
      shape === "run" ? run.transaction(body) : db.transaction((tx) => body(tx.run(run.id))),
      (e) => e instanceof TransactionConflictError && e.attempts === attempts,
      `maxRetries ${maxRetries}`,
    );
    assert.equal(bodies, attempts);
    // None of the attempts wrote anything; the concurrent commits did.
    assert.equal(await run.kv.get("copy"), undefined);
    assert.equal(await run.events.length(), 0);
    assert.equal(await run.kv.get("k"), 100 + attempts);
  }
});

// ---------------------------------------------------------------------------
// 6. Bad input at the Database level

test("Database.open('') and a non-string path throw TypeError and create nothing", async () => {
  const fs = new SimFS({ seed: 1 });
  for (const p of ["", 42, null, {}]) {
    await assert.rejects(
      Database.open(p as unknown as string, { fs, durability: "strict" }),
      TypeError,
    );
  }
  assert.equal(fs.opCount, 0, "no file operation");
  // A durable mode without a path is refused, too.
  await assert.rejects(Database.open(undefined, { durability: "strict" }), TypeError);
});

test("db.run() with an empty or non-string id throws TypeError, writes nothing", async () => {
  await using db = await Database.open();
  const before = await db.stats();
  for (const id of ["", 42, undefined, null, {}]) {
    assert.throws(() => db.run(id as unknown as string), TypeError, String(id));
  }
  assert.deepEqual(await db.stats(), before);
});

test("an unknown durability without a path is refused", async () => {
  await assert.rejects(
    Database.open(undefined, { durability: "fast" as unknown as "strict" }),
    TypeError,
  );
});

test("an unknown durability with a path is refused before anything is created", async () => {
  for (const durability of ["fast", "STRICT", "", 1]) {
    const fs = new SimFS({ seed: 1 });
    await assert.rejects(
      Database.open("db", { fs, durability: durability as unknown as "strict" }),
      TypeError,
      String(durability),
    );
    assert.equal(fs.opCount, 0, `${String(durability)}: no file operation`);
  }
});

test("tx.run() with an empty or non-string id throws TypeError like db.run()", async () => {
  await using db = await Database.open();
  await db.transaction((tx) => {
    for (const id of ["", 42, undefined]) {
      assert.throws(() => tx.run(id as unknown as string), TypeError, String(id));
    }
  });
});

test("stats() reports the WAL and checkpoint sizes on disk", async () => {
  const fs = new SimFS({ seed: 3 });
  await using db = await Database.open("db", { fs, durability: "strict" });
  const empty = await db.stats();
  assert.equal(empty.checkpointBytes, 0);
  const run = await db.runs.create();
  for (let i = 0; i < 20; i++) await run.kv.put(`k${i}`, "x".repeat(100));
  const written = await db.stats();
  assert.ok(written.walBytes > 20 * 100, `walBytes ${written.walBytes}`);
  await db.checkpoint();
  const after = await db.stats();
  assert.ok(after.checkpointBytes > 20 * 100, `checkpointBytes ${after.checkpointBytes}`);
  assert.equal(after.keys, written.keys);
});

test("at the memory cap a refused put is not logged, and the database goes on", async () => {
  const fs = new SimFS({ seed: 11 });
  const db = await Database.open("db", { fs, maxMemoryBytes: 1024 * 1024 });
  const run = await db.runs.create();
  const value = "v".repeat(2000);
  let accepted = 0;
  let refused: unknown;
  for (; accepted < 10_000; accepted++) {
    try {
      await run.kv.put(`k${accepted}`, value);
    } catch (err) {
      refused = err;
      break;
    }
  }
  assert.ok(refused instanceof OutOfMemoryError, `no OutOfMemoryError after ${accepted} puts`);
  assert.equal(await run.kv.get(`k${accepted}`), undefined);
  // Deleting makes room: writes go on and are visible.
  for (let i = 0; i < 50; i++) await run.kv.delete(`k${i}`);
  await run.kv.put("after", value);
  assert.equal(await run.kv.get("after"), value);
  await db.close();
  await using again = await Database.open("db", { fs });
  const r = again.run(run.id);
  assert.equal(await r.kv.get(`k${accepted}`), undefined, "the refused put came back");
  assert.equal(await r.kv.get(`k${accepted - 1}`), value);
  assert.equal(await r.kv.get("k0"), undefined);
  assert.equal(await r.kv.get("after"), value);
});
