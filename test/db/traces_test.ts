// Traces (issue 4 "Traces", seed 002 TraceStore stories #185–#190): the
// six kinds and their validation, record/recordChild, the four indices
// written with the trace, queries through them, children and iterative
// trees (10,000 deep), the commit-time count under 64 concurrent writers,
// transactions, a model-based property over random trace forests (with
// negative controls), run isolation, and recovery after close/reopen and
// after simulated crashes with the indices checked entry by entry.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Value } from "../../src/core/codec.ts";
import { compareKeys, KeyReader, MAX_USER_KEY_BYTES } from "../../src/core/keys.ts";
import { decodeRunRecord, encodeRunRecord, runKey } from "../../src/db/context.ts";
import { Database, type Run } from "../../src/db/database.ts";
import { key, range, TAG } from "../../src/db/layout.ts";
import {
  MAX_TRACE_TAGS,
  type Trace,
  TRACE_KINDS,
  type TraceStore,
  type TraceTree,
  type TraceType,
} from "../../src/db/traces.ts";
import {
  AlreadyExistsError,
  NotFoundError,
  RunClosedError,
  RunNotFoundError,
  StorageError,
} from "../../src/errors.ts";
import { SIM_CRASH_MODES, SimFS } from "../../src/fs/sim.ts";

/** The negative controls' seed: each fails on the same case on every runtime, every time. */
const NEGATIVE_CONTROL_SEED = 1;

// ---- helpers

function runNumber(db: Database, id: string): number {
  const bytes = db.engine.store.get(runKey(id));
  assert.ok(bytes !== undefined, `run ${id} has a record`);
  return decodeRunRecord(bytes, id).n;
}

async function rawDelete(db: Database, k: Uint8Array): Promise<void> {
  await db.engine.transaction((tx) => tx.delete(k));
}

async function setStatus(db: Database, id: string, status: "completed" | "paused"): Promise<void> {
  const r = decodeRunRecord(db.engine.store.get(runKey(id))!, id);
  r.status = status;
  await db.engine.transaction((tx) => tx.put(runKey(id), encodeRunRecord(r)));
}

const thought = (content: string): TraceType => ({ kind: "thought", content });

const hex = (k: Uint8Array): string => Buffer.from(k).toString("hex");

/** The index keys a trace must have (docs/FORMAT.md "Traces"). */
function expectedIndexKeys(n: number, t: Trace): string[] {
  const kinds = t.type.kind === "custom" ? ["custom", t.type.name] : [t.type.kind];
  const out = kinds.map((k) =>
    key(n, TAG.TRACE_BY_KIND).string(k).u64(t.timestamp).string(t.id).finish()
  );
  for (const tag of t.tags) {
    out.push(key(n, TAG.TRACE_BY_TAG).string(tag).u64(t.timestamp).string(t.id).finish());
  }
  if (t.parentId !== undefined) {
    out.push(
      key(n, TAG.TRACE_BY_PARENT).string(t.parentId).u64(t.timestamp).string(t.id).finish(),
    );
  }
  out.push(key(n, TAG.TRACE_BY_TIME).u64(t.timestamp).string(t.id).finish());
  return out.map(hex);
}

/**
 * Checks the indices of run `id` entry by entry: every trace has all its
 * entries, and every entry belongs to a trace. Returns the traces.
 */
async function checkIndices(db: Database, id: string): Promise<Trace[]> {
  const n = runNumber(db, id);
  const run = db.run(id);
  const traces: Trace[] = [];
  for (const [k] of db.engine.store.entries(range(key(n, TAG.TRACE).finish()))) {
    const r = new KeyReader(k);
    r.u32();
    r.u8();
    const t = await run.traces.get(r.string());
    assert.ok(t !== undefined);
    traces.push(t);
  }
  const expected = new Set(traces.flatMap((t) => expectedIndexKeys(n, t)));
  const actual = new Set<string>();
  for (const tag of [TAG.TRACE_BY_KIND, TAG.TRACE_BY_TAG, TAG.TRACE_BY_PARENT, TAG.TRACE_BY_TIME]) {
    for (const [k, v] of db.engine.store.entries(range(key(n, tag).finish()))) {
      assert.equal(v.length, 0);
      actual.add(hex(k));
    }
  }
  for (const k of actual) assert.ok(expected.has(k), `index entry ${k} belongs to a trace`);
  for (const k of expected) assert.ok(actual.has(k), `trace index entry ${k} exists`);
  assert.equal(await run.traces.count(), traces.length);
  assert.equal((await run.traces.list()).length, traces.length);
  return traces;
}

// ---- the types (#185)

test("every kind records and reads back with its fields", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const types: TraceType[] = [
    {
      kind: "tool_call",
      toolName: "search",
      arguments: { q: "x" },
      result: [1, 2],
      durationMs: 12.5,
    },
    { kind: "tool_call", toolName: "noop", arguments: null },
    {
      kind: "decision",
      question: "which?",
      options: ["a", "b"],
      chosen: "b",
      reasoning: "b is better",
    },
    { kind: "decision", question: "q", options: [], chosen: "" },
    { kind: "query", queryType: "vector", query: "cats", resultsCount: 3 },
    { kind: "thought", content: "hmm", confidence: 0.75 },
    { kind: "thought", content: "" },
    { kind: "error", errorType: "Timeout", message: "slow", recoverable: true },
    { kind: "custom", name: "handoff", data: { to: "bob", at: new Date(3) } },
  ];
  for (const t of types) {
    const id = await run.traces.record(t);
    assert.deepEqual((await run.traces.get(id))?.type, t);
  }
  assert.deepEqual([...TRACE_KINDS], [
    "tool_call",
    "decision",
    "query",
    "thought",
    "error",
    "custom",
  ]);
});

test("undefined optional fields are left out, not stored", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const id = await run.traces.record({
    kind: "tool_call",
    toolName: "t",
    arguments: 1,
    result: undefined,
    durationMs: undefined,
  } as unknown as TraceType);
  const t = await run.traces.get(id);
  assert.deepEqual(Object.keys(t!.type), ["kind", "toolName", "arguments"]);
  assert.equal("metadata" in t!, false);
  assert.equal("parentId" in t!, false);
});

test("a variant missing a required field is refused with the field's name", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const cases: [unknown, RegExp, ErrorConstructor][] = [
    [{ kind: "tool_call", arguments: 1 }, /tool_call\.toolName/, TypeError],
    [{ kind: "tool_call", toolName: "", arguments: 1 }, /tool_call\.toolName/, TypeError],
    [{ kind: "tool_call", toolName: "t" }, /tool_call\.arguments/, TypeError],
    [{ kind: "tool_call", toolName: "t", arguments: 1, durationMs: "5" }, /durationMs/, TypeError],
    [{ kind: "tool_call", toolName: "t", arguments: 1, durationMs: -1 }, /durationMs/, RangeError],
    [{ kind: "decision", options: [], chosen: "a" }, /decision\.question/, TypeError],
    [{ kind: "decision", question: "q", options: [1], chosen: "a" }, /options/, TypeError],
    [{ kind: "decision", question: "q", options: "a", chosen: "a" }, /options/, TypeError],
    [{ kind: "decision", question: "q", options: [] }, /decision\.chosen/, TypeError],
    [
      { kind: "decision", question: "q", options: [], chosen: "a", reasoning: 1 },
      /reasoning/,
      TypeError,
    ],
    [{ kind: "query", query: "x", resultsCount: 1 }, /query\.queryType/, TypeError],
    [{ kind: "query", queryType: "v", resultsCount: 1 }, /query\.query /, TypeError],
    [{ kind: "query", queryType: "v", query: "x" }, /resultsCount/, TypeError],
    [{ kind: "query", queryType: "v", query: "x", resultsCount: -1 }, /resultsCount/, RangeError],
    [{ kind: "query", queryType: "v", query: "x", resultsCount: 1.5 }, /resultsCount/, RangeError],
    [{ kind: "thought" }, /thought\.content/, TypeError],
    [{ kind: "thought", content: "c", confidence: "high" }, /confidence/, TypeError],
    [{ kind: "thought", content: "c", confidence: NaN }, /confidence/, RangeError],
    [{ kind: "error", message: "m", recoverable: true }, /error\.errorType/, TypeError],
    [{ kind: "error", errorType: "E", recoverable: true }, /error\.message/, TypeError],
    [{ kind: "error", errorType: "E", message: "m" }, /error\.recoverable/, TypeError],
    [{ kind: "custom", data: 1 }, /custom\.name/, TypeError],
    [{ kind: "custom", name: "n" }, /custom\.data/, TypeError],
    [{ kind: "custom", name: "thought", data: 1 }, /built-in kind/, TypeError],
    [{ kind: "custom", name: "x".repeat(MAX_USER_KEY_BYTES + 1), data: 1 }, /MAX_USER/, RangeError],
    [{ kind: "custom", name: "n", data: () => 1 }, /Function|function/, TypeError],
    [{ kind: "thought", content: "c", extra: 1 }, /no field extra/, TypeError],
    [{ kind: "nope" }, /kind must be one of/, TypeError],
    [{ content: "c" }, /kind must be one of/, TypeError],
    [null, /type must be an object/, TypeError],
    ["thought", /type must be an object/, TypeError],
  ];
  const before = await db.stats();
  for (const [t, msg, E] of cases) {
    await assert.rejects(
      run.traces.record(t as TraceType),
      (e: unknown) => e instanceof E && msg.test((e as Error).message),
      `${JSON.stringify(t)} → ${msg}`,
    );
  }
  assert.equal((await db.stats()).keys, before.keys);
  assert.equal(await run.traces.count(), 0);
});

test("bad options are refused before anything is written", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const t = thought("x");
  const tooMany = Array.from({ length: MAX_TRACE_TAGS + 1 }, (_, i) => `t${i}`);
  const before = await db.stats();
  const rec = (o: unknown) => run.traces.record(t, o as object);
  await assert.rejects(rec({ id: "" }), TypeError);
  await assert.rejects(rec({ id: 5 }), TypeError);
  await assert.rejects(rec({ id: "x".repeat(MAX_USER_KEY_BYTES + 1) }), RangeError);
  await assert.rejects(rec({ parentId: "" }), TypeError);
  await assert.rejects(rec({ tags: "a" }), TypeError);
  await assert.rejects(rec({ tags: ["a", ""] }), TypeError);
  await assert.rejects(rec({ tags: ["a", 1] }), TypeError);
  await assert.rejects(rec({ tags: tooMany }), RangeError);
  await assert.rejects(rec({ metadata: { f: () => 1 } }), { name: "ValueError" });
  await assert.rejects(rec({ metadata: Symbol("s") }), TypeError);
  await assert.rejects(rec(null), TypeError);
  await assert.rejects(run.traces.get(""), TypeError);
  await assert.rejects(run.traces.children(""), TypeError);
  await assert.rejects(run.traces.tree(""), TypeError);
  await assert.rejects(run.traces.queryByType(""), TypeError);
  await assert.rejects(run.traces.queryByTag(""), TypeError);
  await assert.rejects(run.traces.queryByTime("0" as unknown as number, 5), TypeError);
  await assert.rejects(run.traces.queryByTime(0, NaN), RangeError);
  await assert.rejects(run.traces.recordChild(undefined as unknown as string, t), TypeError);
  assert.equal((await db.stats()).keys, before.keys);
  // Exactly MAX_TRACE_TAGS distinct tags (duplicates collapse) is allowed.
  const id = await rec({ tags: [...tooMany.slice(1), "t1"] });
  assert.equal((await run.traces.get(id))?.tags.length, MAX_TRACE_TAGS);
});

// ---- record (#186)

test("record() creates a trace with a generated UUIDv7 id and the clock's timestamp", async () => {
  let now = 1_700_000_000_000;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  now += 5;
  const id = await run.traces.record(thought("a"), { tags: ["x", "y", "x"], metadata: { k: 1 } });
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(await run.traces.get(id), {
    id,
    type: thought("a"),
    timestamp: 1_700_000_000_005,
    tags: ["x", "y"],
    metadata: { k: 1 },
  });
  now += 0.7; // whole milliseconds are stored
  const id2 = await run.traces.record(thought("b"));
  assert.equal((await run.traces.get(id2))?.timestamp, 1_700_000_000_005);
  assert.notEqual(id, id2);
});

test("record() with an explicit id uses it; a duplicate is AlreadyExistsError", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  assert.equal(await run.traces.record(thought("a"), { id: "step-1" }), "step-1");
  const before = await db.stats();
  await assert.rejects(
    run.traces.record(thought("b"), { id: "step-1", tags: ["t"] }),
    AlreadyExistsError,
  );
  assert.equal((await db.stats()).keys, before.keys);
  assert.deepEqual((await run.traces.get("step-1"))?.type, thought("a"));
  assert.equal(await run.traces.count(), 1);
});

test("recordChild() links to its parent; a missing parent is NotFoundError", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const root = await run.traces.record(thought("root"));
  const child = await run.traces.recordChild(root, thought("child"), { tags: ["c"] });
  const t = await run.traces.get(child);
  assert.equal(t?.parentId, root);
  assert.deepEqual(t?.tags, ["c"]);
  // A parent in another run does not count.
  const other = await db.runs.create();
  const before = await db.stats();
  await assert.rejects(run.traces.recordChild("missing", thought("x")), NotFoundError);
  await assert.rejects(run.traces.record(thought("x"), { parentId: "missing" }), NotFoundError);
  await assert.rejects(other.traces.recordChild(root, thought("x")), NotFoundError);
  assert.equal((await db.stats()).keys, before.keys);
});

// ---- indices (#187)

test("record() writes the kind, tag, parent and time index entries", async () => {
  await using db = await Database.open(undefined, { clock: () => 777 });
  const run = await db.runs.create();
  const n = runNumber(db, run.id);
  const root = await run.traces.record(thought("r"), { id: "root" });
  await run.traces.recordChild(root, { kind: "custom", name: "plan", data: 1 }, {
    id: "kid",
    tags: ["t1", "t2"],
  });
  const has = (k: Uint8Array) => db.engine.store.get(k) !== undefined;
  assert.ok(has(key(n, TAG.TRACE_BY_KIND).string("thought").u64(777).string("root").finish()));
  assert.ok(has(key(n, TAG.TRACE_BY_KIND).string("custom").u64(777).string("kid").finish()));
  assert.ok(has(key(n, TAG.TRACE_BY_KIND).string("plan").u64(777).string("kid").finish()));
  assert.ok(has(key(n, TAG.TRACE_BY_TAG).string("t1").u64(777).string("kid").finish()));
  assert.ok(has(key(n, TAG.TRACE_BY_TAG).string("t2").u64(777).string("kid").finish()));
  assert.ok(has(key(n, TAG.TRACE_BY_PARENT).string("root").u64(777).string("kid").finish()));
  assert.ok(has(key(n, TAG.TRACE_BY_TIME).u64(777).string("root").finish()));
  assert.ok(has(key(n, TAG.TRACE_BY_TIME).u64(777).string("kid").finish()));
  await checkIndices(db, run.id);
});

test("the trace and its index entries are written atomically (rolled back together)", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.traces.record(thought("kept"), { id: "kept" });
  const before = await db.stats();
  await assert.rejects(
    run.transaction(async (tx) => {
      await tx.traces.record(thought("lost"), { id: "lost", tags: ["a"] });
      await tx.traces.recordChild("lost", thought("lost child"), { id: "lost2" });
      assert.equal(await tx.traces.count(), 3);
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal((await db.stats()).keys, before.keys);
  assert.equal(await run.traces.get("lost"), undefined);
  assert.deepEqual(await run.traces.queryByTag("a"), []);
  assert.equal(await run.traces.count(), 1);
  await checkIndices(db, run.id);
});

test("queries read their index, not the records", async () => {
  await using db = await Database.open(undefined, { clock: () => 50 });
  const run = await db.runs.create();
  const n = runNumber(db, run.id);
  await run.traces.record(thought("a"), { id: "a", tags: ["t"] });
  await run.traces.record(thought("b"), { id: "b", tags: ["t"] });
  await rawDelete(db, key(n, TAG.TRACE_BY_TIME).u64(50).string("a").finish());
  await rawDelete(db, key(n, TAG.TRACE_BY_TAG).string("t").u64(50).string("b").finish());
  await rawDelete(db, key(n, TAG.TRACE_BY_KIND).string("thought").u64(50).string("b").finish());
  assert.deepEqual((await run.traces.queryByTime(0, 100)).map((t) => t.id), ["b"]);
  assert.deepEqual((await run.traces.queryByTag("t")).map((t) => t.id), ["a"]);
  assert.deepEqual((await run.traces.queryByType("thought")).map((t) => t.id), ["a"]);
  assert.equal((await run.traces.get("a"))?.id, "a");
});

// ---- queries (#188)

test("queryByType(), queryByTag(), queryByTime(), list() and count()", async () => {
  let now = 1000;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  const rec = async (at: number, id: string, type: TraceType, tags: string[] = []) => {
    now = at;
    await run.traces.record(type, { id, tags });
  };
  await rec(1000, "c", thought("1"), ["x"]);
  await rec(1000, "b", { kind: "tool_call", toolName: "s", arguments: 1 }, ["x", "y"]);
  await rec(2000, "a", thought("2"), ["y"]);
  await rec(3000, "d", { kind: "custom", name: "plan", data: 0 });
  await rec(3000, "e", { kind: "custom", name: "handoff", data: 0 }, ["x"]);
  const ids = (ts: Trace[]) => ts.map((t) => t.id);
  // (timestamp, id) order.
  assert.deepEqual(ids(await run.traces.queryByType("thought")), ["c", "a"]);
  assert.deepEqual(ids(await run.traces.queryByType("tool_call")), ["b"]);
  assert.deepEqual(ids(await run.traces.queryByType("decision")), []);
  assert.deepEqual(ids(await run.traces.queryByType("plan")), ["d"]);
  assert.deepEqual(ids(await run.traces.queryByType("custom")), ["d", "e"]);
  assert.deepEqual(ids(await run.traces.queryByType("pla")), []);
  assert.deepEqual(ids(await run.traces.queryByTag("x")), ["b", "c", "e"]);
  assert.deepEqual(ids(await run.traces.queryByTag("y")), ["b", "a"]);
  assert.deepEqual(ids(await run.traces.queryByTag("z")), []);
  assert.deepEqual(ids(await run.traces.queryByTime(1000, 2000)), ["b", "c"]);
  assert.deepEqual(ids(await run.traces.queryByTime(1001, 3000)), ["a"]);
  assert.deepEqual(ids(await run.traces.queryByTime(1999.5, 3000.5)), ["a", "d", "e"]);
  assert.deepEqual(ids(await run.traces.queryByTime(-Infinity, Infinity)), [
    "b",
    "c",
    "a",
    "d",
    "e",
  ]);
  assert.deepEqual(ids(await run.traces.queryByTime(3001, 2 ** 60)), []);
  assert.deepEqual(ids(await run.traces.queryByTime(2000, 2000)), []);
  assert.deepEqual(ids(await run.traces.queryByTime(3000, 1000)), []);
  assert.deepEqual(await run.traces.list(), ["a", "b", "c", "d", "e"]);
  assert.equal(await run.traces.count(), 5);
});

// ---- children and trees (#189)

test("children() returns direct children only; [] for a leaf or an unknown id", async () => {
  let now = 0;
  await using db = await Database.open(undefined, { clock: () => ++now });
  const run = await db.runs.create();
  const root = await run.traces.record(thought("root"), { id: "root" });
  const a = await run.traces.recordChild(root, thought("a"), { id: "a" });
  await run.traces.recordChild(root, thought("b"), { id: "b" });
  await run.traces.recordChild(a, thought("a1"), { id: "a1" });
  assert.deepEqual((await run.traces.children(root)).map((t) => t.id), ["a", "b"]);
  assert.deepEqual((await run.traces.children(a)).map((t) => t.id), ["a1"]);
  assert.deepEqual(await run.traces.children("b"), []);
  assert.deepEqual(await run.traces.children("nobody"), []);
});

test("tree() builds the hierarchy; undefined for a missing root", async () => {
  let now = 0;
  await using db = await Database.open(undefined, { clock: () => ++now });
  const run = await db.runs.create();
  await run.traces.record(thought("r"), { id: "r" });
  await run.traces.recordChild("r", thought("a"), { id: "a" });
  await run.traces.recordChild("r", thought("b"), { id: "b" });
  await run.traces.recordChild("a", thought("a1"), { id: "a1" });
  await run.traces.recordChild("a", thought("a2"), { id: "a2" });
  await run.traces.recordChild("a2", thought("a2x"), { id: "a2x" });
  const shape = (t: TraceTree): unknown => [t.trace.id, t.children.map(shape)];
  const tree = await run.traces.tree("r");
  assert.deepEqual(shape(tree!), [
    "r",
    [["a", [["a1", []], ["a2", [["a2x", []]]]]], ["b", []]],
  ]);
  assert.deepEqual(tree!.trace, await run.traces.get("r"));
  assert.deepEqual(shape((await run.traces.tree("a2"))!), ["a2", [["a2x", []]]]);
  assert.equal(await run.traces.tree("missing"), undefined);
});

test("tree() handles a chain 10,000 deep (iterative, no recursion)", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const depth = 10_000;
  await run.traces.record(thought("0"), { id: "d0" });
  for (let start = 1; start < depth; start += 1000) {
    await run.transaction(async (tx) => {
      for (let i = start; i < Math.min(start + 1000, depth); i++) {
        await tx.traces.recordChild(`d${i - 1}`, thought(String(i)), { id: `d${i}` });
      }
    });
  }
  const tree = await run.traces.tree("d0");
  let node: TraceTree | undefined = tree;
  let levels = 0;
  while (node !== undefined) {
    assert.equal(node.trace.id, `d${levels}`);
    assert.ok(node.children.length <= 1);
    levels++;
    node = node.children[0];
  }
  assert.equal(levels, depth);
  assert.equal(await run.traces.count(), depth);
});

test("tree() reports a parent cycle in damaged data as CorruptionError", async () => {
  await using db = await Database.open(undefined, { clock: () => 9 });
  const run = await db.runs.create();
  const n = runNumber(db, run.id);
  await run.traces.record(thought("a"), { id: "a" });
  await run.traces.recordChild("a", thought("b"), { id: "b" });
  // Forge an entry saying a is a child of b.
  await db.engine.transaction((tx) =>
    tx.put(key(n, TAG.TRACE_BY_PARENT).string("b").u64(9).string("a").finish(), new Uint8Array(0))
  );
  await assert.rejects(run.traces.tree("a"), { name: "CorruptionError" });
});

// ---- transactions (#190) and concurrency

test("tx.traces works in a transaction with events, and count() sees its own records", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.traces.record(thought("before"));
  const ids = await run.transaction(async (tx) => {
    const a = await tx.traces.record(thought("a"), { id: "a" });
    const b = await tx.traces.recordChild(a, thought("b"), { id: "b" });
    await tx.events.append("traced", { a, b });
    assert.equal(await tx.traces.count(), 3);
    assert.deepEqual((await tx.traces.children(a)).map((t) => t.id), ["b"]);
    return [a, b];
  });
  assert.deepEqual(ids, ["a", "b"]);
  assert.equal(await run.traces.count(), 3);
  assert.deepEqual((await run.events.read(0))?.payload, { a: "a", b: "b" });
});

async function sixtyFourRecorders(db: Database): Promise<void> {
  const run = await db.runs.create();
  const root = await run.traces.record(thought("root"));
  const conflicts = (await db.stats()).conflicts;
  const ids = await Promise.all(
    Array.from(
      { length: 64 },
      (_, i) =>
        i % 2 === 0
          ? run.traces.record(thought(String(i)), { tags: ["w"] })
          : run.traces.recordChild(root, thought(String(i)), { tags: ["w"] }),
    ),
  );
  assert.equal(new Set(ids).size, 64);
  assert.equal(await run.traces.count(), 65);
  assert.equal((await db.stats()).conflicts, conflicts, "no recorder conflicted");
  assert.equal((await run.traces.queryByTag("w")).length, 64);
  assert.equal((await run.traces.children(root)).length, 32);
  await checkIndices(db, run.id);
}

test("64 concurrent record() calls: count() is 64 more, no conflicts", async () => {
  await using db = await Database.open();
  await sixtyFourRecorders(db);
});

test("64 concurrent record() calls in strict mode on SimFS", async () => {
  await using db = await Database.open("db", { fs: new SimFS({ seed: 5 }), durability: "strict" });
  await sixtyFourRecorders(db);
});

// ---- property: random trace forests against a model

interface Node {
  parent: number | undefined; // index of an earlier node
  type: TraceType;
  tags: string[];
  dt: number; // clock advance before recording
  metadata: Value | undefined;
}

const TAGS = ["a", "b", "c"];
const CUSTOM = ["plan", "handoff"];
const typeArb: fc.Arbitrary<TraceType> = fc.oneof(
  fc.record({
    kind: fc.constant("tool_call" as const),
    toolName: fc.constantFrom("search", "fetch"),
    arguments: fc.integer(),
  }),
  fc.record({
    kind: fc.constant("decision" as const),
    question: fc.string({ maxLength: 3 }),
    options: fc.array(fc.string({ maxLength: 2 }), { maxLength: 2 }),
    chosen: fc.string({ maxLength: 2 }),
  }),
  fc.record({
    kind: fc.constant("query" as const),
    queryType: fc.constant("v"),
    query: fc.string({ maxLength: 3 }),
    resultsCount: fc.nat(5),
  }),
  fc.record({ kind: fc.constant("thought" as const), content: fc.string({ maxLength: 3 }) }),
  fc.record({
    kind: fc.constant("error" as const),
    errorType: fc.constant("E"),
    message: fc.string({ maxLength: 3 }),
    recoverable: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant("custom" as const),
    name: fc.constantFrom(...CUSTOM),
    data: fc.integer(),
  }),
).map((t) => ({ ...t })); // fc.record makes null-prototype objects; stored ones come back plain
const forestArb: fc.Arbitrary<Node[]> = fc
  .array(
    fc.record({
      parentPick: fc.option(fc.nat(), { nil: undefined }),
      type: typeArb,
      tags: fc.subarray(TAGS),
      dt: fc.nat(3),
      metadata: fc.option(fc.integer(), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 25 },
  )
  .map((xs) =>
    xs.map((x, i) => ({
      parent: x.parentPick === undefined || i === 0 ? undefined : x.parentPick % i,
      type: x.type,
      tags: x.tags,
      dt: x.dt,
      metadata: x.metadata,
    }))
  );
const queriesArb = fc.array(
  fc.tuple(fc.integer({ min: -2, max: 40 }), fc.integer({ min: -2, max: 40 })),
  {
    minLength: 1,
    maxLength: 5,
  },
);

type Store = Pick<
  TraceStore,
  "queryByType" | "queryByTag" | "queryByTime" | "children" | "tree" | "list" | "count" | "get"
>;

const enc = (s: string) => new TextEncoder().encode(s);
const byTimeId = (x: Trace, y: Trace) =>
  x.timestamp - y.timestamp || compareKeys(enc(x.id), enc(y.id));

async function checkForest(
  nodes: Node[],
  ranges: [number, number][],
  subject: (traces: TraceStore) => Store,
): Promise<void> {
  let now = 0;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  const model: Trace[] = [];
  // Ids whose byte order differs from creation order.
  const idOf = (i: number) => `${String.fromCharCode(97 + (i * 7) % 26)}${i}`;
  for (const [i, nd] of nodes.entries()) {
    now += nd.dt;
    const t: Trace = { id: idOf(i), type: nd.type, timestamp: now, tags: nd.tags };
    if (nd.parent !== undefined) t.parentId = idOf(nd.parent);
    if (nd.metadata !== undefined) t.metadata = nd.metadata;
    const opts = {
      id: t.id,
      tags: nd.tags,
      ...(nd.metadata === undefined ? {} : { metadata: nd.metadata }),
    };
    if (t.parentId === undefined) await run.traces.record(nd.type, opts);
    else await run.traces.recordChild(t.parentId, nd.type, opts);
    model.push(t);
  }
  const s = subject(run.traces);
  const sorted = [...model].sort(byTimeId);
  for (const kind of [...TRACE_KINDS, ...CUSTOM]) {
    const want = sorted.filter((t) =>
      t.type.kind === kind || (t.type.kind === "custom" && t.type.name === kind)
    );
    assert.deepEqual(await s.queryByType(kind), want, `queryByType(${kind})`);
  }
  for (const tag of TAGS) {
    assert.deepEqual(await s.queryByTag(tag), sorted.filter((t) => t.tags.includes(tag)));
  }
  for (const [lo, hi] of ranges) {
    const want = sorted.filter((t) => t.timestamp >= lo && t.timestamp < hi);
    assert.deepEqual(await s.queryByTime(lo, hi), want, `queryByTime(${lo}, ${hi})`);
  }
  const childrenOf = (id: string) => sorted.filter((t) => t.parentId === id);
  for (const t of model) {
    assert.deepEqual(await s.get(t.id), t);
    assert.deepEqual(await s.children(t.id), childrenOf(t.id));
  }
  const modelTree = (root: Trace): TraceTree => {
    const top: TraceTree = { trace: root, children: [] };
    const stack = [top];
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      for (const c of childrenOf(node.trace.id)) {
        const sub = { trace: c, children: [] };
        node.children.push(sub);
        stack.push(sub);
      }
    }
    return top;
  };
  for (const root of model.filter((t) => t.parentId === undefined)) {
    assert.deepEqual(await s.tree(root.id), modelTree(root));
  }
  assert.deepEqual(
    await s.list(),
    model.map((t) => t.id).sort((x, y) => compareKeys(enc(x), enc(y))),
  );
  assert.equal(await s.count(), model.length);
}

const identity = (t: TraceStore): Store => t;

test("property: every query and tree() agree with a model of random trace forests", async () => {
  await fc.assert(
    fc.asyncProperty(
      forestArb,
      queriesArb,
      (nodes, ranges) => checkForest(nodes, ranges, identity),
    ),
    { numRuns: 40 },
  );
});

test("negative control: the property catches a queryByTime that includes its end", async () => {
  const r = await fc.check(
    fc.asyncProperty(forestArb, queriesArb, (nodes, ranges) =>
      checkForest(nodes, ranges, (t) => ({
        ...bind(t),
        queryByTime: (s, e) => t.queryByTime(s, e + 1),
      }))),
    { numRuns: 200, endOnFailure: true, seed: NEGATIVE_CONTROL_SEED },
  );
  assert.equal(r.failed, true);
});

test("negative control: the property catches a tree() that loses grandchildren", async () => {
  const r = await fc.check(
    fc.asyncProperty(forestArb, queriesArb, (nodes, ranges) =>
      checkForest(nodes, ranges, (t) => ({
        ...bind(t),
        tree: async (id) => {
          const tree = await t.tree(id);
          for (const c of tree?.children ?? []) c.children = [];
          return tree;
        },
      }))),
    { numRuns: 200, endOnFailure: true, seed: NEGATIVE_CONTROL_SEED },
  );
  assert.equal(r.failed, true);
});

function bind(t: TraceStore): Store {
  return {
    queryByType: (k) => t.queryByType(k),
    queryByTag: (g) => t.queryByTag(g),
    queryByTime: (s, e) => t.queryByTime(s, e),
    children: (id) => t.children(id),
    tree: (id) => t.tree(id),
    list: () => t.list(),
    count: () => t.count(),
    get: (id) => t.get(id),
  };
}

// ---- run isolation

test("runs have separate traces: ids, queries, children, trees and counts", async () => {
  await using db = await Database.open(undefined, { clock: () => 10 });
  const a = await db.runs.create();
  const b = await db.runs.create();
  await a.traces.record(thought("a"), { id: "same", tags: ["t"] });
  await a.traces.recordChild("same", thought("a-kid"), { id: "kid" });
  // The same id in another run is another trace.
  await b.traces.record({ kind: "custom", name: "plan", data: 1 }, { id: "same", tags: ["t"] });
  assert.equal((await a.traces.get("same"))?.type.kind, "thought");
  assert.equal((await b.traces.get("same"))?.type.kind, "custom");
  assert.equal(await b.traces.get("kid"), undefined);
  assert.equal((await a.traces.queryByTag("t")).length, 1);
  assert.equal((await b.traces.queryByTag("t")).length, 1);
  assert.equal((await b.traces.queryByType("thought")).length, 0);
  assert.equal((await a.traces.queryByType("plan")).length, 0);
  assert.equal((await a.traces.queryByTime(0, 100)).length, 2);
  assert.equal((await b.traces.queryByTime(0, 100)).length, 1);
  assert.deepEqual(await b.traces.children("same"), []);
  assert.equal((await b.traces.tree("same"))?.children.length, 0);
  assert.deepEqual(await a.traces.list(), ["kid", "same"]);
  assert.deepEqual(await b.traces.list(), ["same"]);
  assert.equal(await a.traces.count(), 2);
  assert.equal(await b.traces.count(), 1);
});

test("a run that does not exist: RunNotFoundError; a closed run: reads only", async () => {
  await using db = await Database.open();
  const ghost = db.run("no-such-run");
  await assert.rejects(ghost.traces.record(thought("x")), RunNotFoundError);
  await assert.rejects(ghost.traces.get("x"), RunNotFoundError);
  await assert.rejects(ghost.traces.count(), RunNotFoundError);
  const run = await db.runs.create();
  await run.traces.record(thought("x"), { id: "x" });
  await setStatus(db, run.id, "paused");
  await run.traces.record(thought("y"), { id: "y" });
  await setStatus(db, run.id, "completed");
  await assert.rejects(run.traces.record(thought("z")), RunClosedError);
  await assert.rejects(run.traces.recordChild("x", thought("z")), RunClosedError);
  assert.deepEqual(await run.traces.list(), ["x", "y"]);
  assert.equal(await run.traces.count(), 2);
});

// ---- recovery

async function recordSome(run: Run, prefix: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const parentId = i === 0 ? undefined : ids[Math.floor((i - 1) / 2)];
    const type: TraceType = i % 3 === 0
      ? { kind: "custom", name: "plan", data: i }
      : { kind: "tool_call", toolName: "t", arguments: i };
    const opts = { id: `${prefix}${i}`, tags: i % 2 ? ["odd"] : ["even", "all"] };
    ids.push(
      parentId === undefined
        ? await run.traces.record(type, opts)
        : await run.traces.recordChild(parentId, type, opts),
    );
  }
  return ids;
}

test("close and reopen: traces, indices, trees and the count survive", async () => {
  const fs = new SimFS({ seed: 11 });
  let id: string;
  let tree: TraceTree | undefined;
  {
    await using db = await Database.open("db", { fs, durability: "strict" });
    const run = await db.runs.create();
    id = run.id;
    await recordSome(run, "p", 20);
    tree = await run.traces.tree("p0");
  }
  await using db = await Database.open("db", { fs, durability: "strict" });
  const run = db.run(id);
  assert.equal((await checkIndices(db, id)).length, 20);
  assert.deepEqual(await run.traces.tree("p0"), tree);
  assert.equal((await run.traces.queryByType("plan")).length, 7);
  await run.traces.recordChild("p19", thought("after"), { id: "after" });
  assert.equal(await run.traces.count(), 21);
  await checkIndices(db, id);
});

test("after a crash (strict, all crash modes): acked traces survive, indices agree", async () => {
  const figures = { acked: 0, failed: 0 };
  for (const [m, mode] of SIM_CRASH_MODES.entries()) {
    for (const seed of [1, 2]) {
      const fs = new SimFS({ seed: seed * 17 + m });
      const acked: string[] = [];
      let id = "";
      const db = await Database.open("db", { fs, durability: "strict" });
      try {
        const run = await db.runs.create();
        id = run.id;
        acked.push(...await recordSome(run, "s", 5));
        fs.haltAfter(fs.ops().length + 2 * seed + 1);
        for (let g = 0; g < 4; g++) {
          const group = await Promise.allSettled(
            Array.from(
              { length: 3 },
              (_, i) => run.traces.recordChild("s0", thought(`${g}.${i}`), { tags: ["burst"] }),
            ),
          );
          for (const r of group) {
            if (r.status === "fulfilled") {
              acked.push(r.value);
              figures.acked++;
            } else {
              assert.ok(r.reason instanceof StorageError, String(r.reason));
              figures.failed++;
            }
          }
        }
      } catch (err) {
        if (!(err instanceof StorageError)) throw err;
      }
      const after = fs.crash(mode, seed);
      await db.close().catch(() => {});
      await using db2 = await Database.open("db", { fs: after, durability: "strict" });
      const traces = await checkIndices(db2, id);
      const present = new Set(traces.map((t) => t.id));
      for (const a of acked) assert.ok(present.has(a), `${mode}/${seed}: trace ${a} survives`);
      const run = db2.run(id);
      await run.traces.recordChild("s0", thought("after"), { id: "after" });
      assert.equal(await run.traces.count(), traces.length + 1);
    }
  }
  assert.ok(figures.acked > 0 && figures.failed > 0, JSON.stringify(figures));
});
