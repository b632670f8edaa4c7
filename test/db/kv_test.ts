// KV (`run.kv`, `tx.kv`): the seed's KVStore stories (002, #169–#173) as
// behaviours, commit-stamped versions, expiry, listing and paging against a
// model, run isolation, recovery after close and after a crash, and bad input.
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Database } from "../../src/db/database.ts";
import { kvRecordExpiresAt } from "../../src/db/kv.ts";
import { key, range, SYS, SYSTEM, TAG } from "../../src/db/layout.ts";
import { compareKeys } from "../../src/core/keys.ts";
import { RUNTIME } from "../../src/_runtime.ts";
import type { Value } from "../../src/core/codec.ts";
import { RunClosedError, RunNotFoundError, StorageError } from "../../src/errors.ts";
import { SIM_CRASH_MODES, type SimCrashMode, SimFS } from "../../src/fs/sim.ts";

/** The negative controls' seed: each fails on the same case on every runtime, every time. */
const NEGATIVE_CONTROL_SEED = 1;

const utf8 = new TextEncoder();
const byKey = (a: string, b: string): number => compareKeys(utf8.encode(a), utf8.encode(b));

/** Live records and expiry index entries the store holds for run number `n` / in total. */
function storeCounts(db: Database, n: number): { records: number; index: number } {
  const s = db.engine.store;
  return {
    records: [...s.entries(range(key(n, TAG.KV).finish()))].length,
    index: [...s.entries(range(key(SYSTEM, SYS.EXPIRY).finish()))].length,
  };
}

/** The internal number of a run (first key element of its data). */
async function runNumber(db: Database, id: string): Promise<number> {
  return await db.execute(async (ctx) => (await ctx.readableRun(id, "test")).n);
}

// ---------------------------------------------------------------------------
// Seed 002, story #170: single operations

test("put() stores a value that get() returns; get() of a missing key is undefined", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  assert.equal(await run.kv.get("k"), undefined);
  const value = { n: 1, s: "x", list: [1, 2.5, null, true], bytes: new Uint8Array([1, 0, 2]) };
  await run.kv.put("k", value);
  assert.deepEqual(await run.kv.get("k"), value);
  assert.equal(await run.kv.exists("k"), true);
  assert.equal(await run.kv.exists("other"), false);
  await run.kv.put("k", "replaced");
  assert.equal(await run.kv.get("k"), "replaced");
});

test("a value get() returned owns its bytes: later writes and memory growth leave it as it was", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.kv.put("k", { bytes: new Uint8Array([1, 2, 3]), s: "x".repeat(50) });
  const got = (await run.kv.get("k")) as { bytes: Uint8Array; s: string };
  const entry = (await run.kv.getEntry("k"))!.value as { bytes: Uint8Array };
  got.bytes[0] = 9; // changing a returned value changes nothing stored
  assert.deepEqual(
    ((await run.kv.get("k")) as { bytes: Uint8Array }).bytes,
    new Uint8Array([1, 2, 3]),
  );
  const before = db.engine.store.memory().reservedBytes;
  await run.kv.delete("k");
  for (let i = 0; db.engine.store.memory().reservedBytes === before; i++) {
    await run.kv.put(`filler/${i}`, new Uint8Array(50_000).fill(0xee));
  }
  assert.deepEqual(got.bytes, new Uint8Array([9, 2, 3]));
  assert.deepEqual(entry.bytes, new Uint8Array([1, 2, 3]));
  assert.equal(got.s, "x".repeat(50));
});

test("point reads keep no hold on a store's memory once its database is closed and dropped", {
  skip: RUNTIME === "node" ? false : "needs a forced, precise collection (Node's, through node:v8)",
}, async () => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  // The store's memory, reached through a view of it; only a WeakRef is kept here.
  const open = async (): Promise<WeakRef<ArrayBufferLike>> => {
    const db = await Database.open();
    const run = await db.runs.create();
    await run.kv.put("k", "v");
    await run.state.init("cell", 1);
    await run.events.append("e", 1);
    assert.equal(await run.kv.get("k"), "v");
    assert.equal((await run.kv.getEntry("k"))?.value, "v");
    assert.equal(await run.kv.exists("k"), true);
    assert.equal((await run.state.read("cell"))?.value, 1);
    assert.equal((await run.events.read(0))?.payload, 1);
    const n = await runNumber(db, run.id);
    const view = db.engine.store.getView(key(n, TAG.KV).string("k").finish());
    assert.ok(view !== undefined);
    const ref = new WeakRef(view.buffer);
    await db.close();
    return ref;
  };
  const ref = await open();
  // Never deref before the collections: a deref keeps its target alive to
  // the end of the job it ran in.
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0)); // WeakRefs clear between jobs
  }
  assert.equal(ref.deref(), undefined, "the closed database's memory is still reachable");
});

test("delete() removes a key and reports whether a live entry was there", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.kv.put("k", 1);
  assert.equal(await run.kv.delete("k"), true);
  assert.equal(await run.kv.get("k"), undefined);
  assert.equal(await run.kv.exists("k"), false);
  assert.equal(await run.kv.delete("k"), false);
  assert.equal(await run.kv.delete("never"), false);
});

test("put() with ttlMs stores the expiry; getEntry() returns key, value, version, expiresAt", async () => {
  let now = 10_000;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  await run.kv.put("t", "v", { ttlMs: 250 });
  await run.kv.put("p", "v");
  const t = await run.kv.getEntry("t");
  assert.equal(t?.key, "t");
  assert.equal(t?.value, "v");
  assert.equal(t?.expiresAt, 10_250);
  assert.ok(t!.version > 0, "stamped");
  const p = await run.kv.getEntry("p");
  assert.ok(p !== undefined && !("expiresAt" in p), "no expiresAt");
  assert.equal(await run.kv.getEntry("none"), undefined);
  // The stored record carries the same expiry (what the sweeper reads).
  const n = await runNumber(db, run.id);
  const rec = db.engine.store.get(key(n, TAG.KV).string("t").finish())!;
  assert.equal(kvRecordExpiresAt(rec), 10_250);
  const plain = db.engine.store.get(key(n, TAG.KV).string("p").finish())!;
  assert.equal(kvRecordExpiresAt(plain), undefined);
  now = 10_249;
  assert.equal(await run.kv.get("t"), "v");
});

test("run isolation: the same key in two runs holds two values; lists do not mix", async () => {
  await using db = await Database.open();
  const a = await db.runs.create();
  const b = await db.runs.create();
  await a.kv.put("shared", "in a");
  await b.kv.put("shared", "in b");
  await a.kv.put("only-a", 1);
  assert.equal(await a.kv.get("shared"), "in a");
  assert.equal(await b.kv.get("shared"), "in b");
  assert.equal(await b.kv.get("only-a"), undefined);
  assert.deepEqual(await a.kv.list(), ["only-a", "shared"]);
  assert.deepEqual(await b.kv.list(), ["shared"]);
  assert.deepEqual(await b.kv.entries(), [["shared", "in b"]]);
  assert.equal(await b.kv.delete("only-a"), false);
  assert.equal(await a.kv.get("only-a"), 1);
  // A run created later (a higher run number) does not leak into a list either.
  const c = await db.runs.create();
  await c.kv.put("a", 0);
  assert.deepEqual(await a.kv.list("", { start: "a" }), ["only-a", "shared"]);
  assert.deepEqual(await b.kv.list("", { reverse: true }), ["shared"]);
});

test("handles hold no state: two handles on one run see the same entries", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const other = db.run(run.id);
  await run.kv.put("k", 1);
  assert.equal(await other.kv.get("k"), 1);
  await other.kv.put("k", 2);
  assert.equal(await run.kv.get("k"), 2);
});

test("a KV entry is stored at u32(run) · 01 · string(key) in the documented record format", async () => {
  await using db = await Database.open(undefined, { clock: () => 0x0102 });
  const run = await db.runs.create();
  const n = await runNumber(db, run.id);
  await run.kv.put("k", 5);
  await run.kv.put("t", null, { ttlMs: 0x0200 });
  const plain = db.engine.store.get(new Uint8Array([0, 0, 0, n, 0x01, 0x6b, 0, 0]))!;
  const v1 = (await run.kv.getEntry("k"))!.version;
  // format 1 · flags 0 · u64 version · MessagePack 5
  assert.deepEqual([...plain], [1, 0, 0, 0, 0, 0, 0, 0, 0, v1, 5]);
  const ttl = db.engine.store.get(key(n, TAG.KV).string("t").finish())!;
  const v2 = (await run.kv.getEntry("t"))!.version;
  // format 1 · flags 1 · u64 version · u64 expiresAt (0x0302) · MessagePack nil
  assert.deepEqual([...ttl], [1, 1, 0, 0, 0, 0, 0, 0, 0, v2, 0, 0, 0, 0, 0, 0, 3, 2, 0xc0]);
  // And its expiry index entry: u32(0) · 20 · u64 expiresAt · the KV key.
  const indexKey = [
    0,
    0,
    0,
    0,
    0x20,
    0,
    0,
    0,
    0,
    0,
    0,
    3,
    2,
    ...key(n, TAG.KV).string("t").finish(),
  ];
  assert.deepEqual(db.engine.store.get(new Uint8Array(indexKey)), new Uint8Array(0));
});

// ---------------------------------------------------------------------------
// Seed 002, story #172: listing

test("list() and entries() return keys in order, filtered by prefix, empty when none match", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  for (const k of ["b", "a/2", "a/1", "a", "ab", "a\0", "é", "z"]) await run.kv.put(k, k.length);
  assert.deepEqual(await run.kv.list(), ["a", "a\0", "a/1", "a/2", "ab", "b", "z", "é"]);
  assert.deepEqual(await run.kv.list("a/"), ["a/1", "a/2"]);
  assert.deepEqual(await run.kv.list("a"), ["a", "a\0", "a/1", "a/2", "ab"]);
  assert.deepEqual(await run.kv.entries("a/"), [["a/1", 3], ["a/2", 3]]);
  assert.deepEqual(await run.kv.list("q"), []);
  assert.deepEqual(await run.kv.entries("q"), []);
  assert.deepEqual(await run.kv.list("", { reverse: true, limit: 2 }), ["é", "z"]);
  assert.deepEqual(await run.kv.list("a", { start: "a/" }), ["a/1", "a/2", "ab"]);
  assert.deepEqual(await run.kv.list("a", { start: "a/1", reverse: true }), ["a/1", "a\0", "a"]);
  assert.deepEqual(await run.kv.list("a", { limit: 0 }), []);
});

test("page() walks every entry in pages and the cursor resumes after the last key", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const keys = Array.from({ length: 7 }, (_, i) => `k${i}`);
  for (const k of keys) await run.kv.put(k, k);
  const p1 = await run.kv.page("k", { limit: 3 });
  assert.deepEqual(p1.entries.map(([k]) => k), ["k0", "k1", "k2"]);
  assert.equal(typeof p1.cursor, "string");
  // Writes between pages: a key before the cursor is not revisited, one after it is seen.
  await run.kv.put("k00", "late");
  await run.kv.put("k5a", "late");
  const p2 = await run.kv.page("k", { limit: 3, cursor: p1.cursor! });
  assert.deepEqual(p2.entries.map(([k]) => k), ["k3", "k4", "k5"]);
  const p3 = await run.kv.page("k", { limit: 3, cursor: p2.cursor! });
  assert.deepEqual(p3.entries, [["k5a", "late"], ["k6", "k6"]]);
  assert.equal(p3.cursor, undefined);
  // Exactly full last page: no cursor, no empty extra page.
  const full = await run.kv.page("k", { limit: 9 });
  assert.equal(full.entries.length, 9);
  assert.equal(full.cursor, undefined);
  // The same cursor also works for list() and entries(), and in reverse.
  assert.deepEqual(await run.kv.list("k", { cursor: p1.cursor!, limit: 2 }), ["k3", "k4"]);
  const r1 = await run.kv.page("k", { limit: 2, reverse: true });
  assert.deepEqual(r1.entries.map(([k]) => k), ["k6", "k5a"]);
  assert.deepEqual(await run.kv.list("k", { cursor: r1.cursor!, reverse: true, limit: 2 }), [
    "k5",
    "k4",
  ]);
  assert.equal((await run.kv.page()).entries.length, 9); // default limit covers them
});

// ---------------------------------------------------------------------------
// Seed 002, stories #171 and #173: transactions

test("a transaction's puts and deletes are atomic; a throw writes nothing", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.kv.put("old", 0);
  await run.transaction(async (tx) => {
    await tx.kv.put("x", 1);
    await tx.kv.put("y", 2);
    assert.equal(await tx.kv.delete("old"), true);
  });
  assert.deepEqual(await run.kv.entries(), [["x", 1], ["y", 2]]);
  await assert.rejects(
    run.transaction(async (tx) => {
      await tx.kv.put("x", 100);
      await tx.kv.delete("y");
      await tx.kv.put("z", 3);
      throw new Error("abort");
    }),
    /abort/,
  );
  assert.deepEqual(await run.kv.entries(), [["x", 1], ["y", 2]]);
});

test("reads inside a transaction see its own writes; versions read 0 until commit", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.kv.put("b", "stored");
  await run.transaction(async (tx) => {
    await tx.kv.put("a", "mine");
    assert.equal(await tx.kv.get("a"), "mine");
    assert.equal((await tx.kv.getEntry("a"))?.version, 0);
    assert.ok((await tx.kv.getEntry("b"))!.version > 0, "committed key");
    await tx.kv.delete("b");
    assert.deepEqual(await tx.kv.entries(), [["a", "mine"]]);
    assert.equal(await tx.kv.exists("b"), false);
  });
  assert.ok((await run.kv.getEntry("a"))!.version > 0, "stamped at commit");
});

test("db.transaction() writes KV keys of two runs atomically", async () => {
  await using db = await Database.open();
  const a = await db.runs.create();
  const b = await db.runs.create();
  await db.transaction(async (tx) => {
    await tx.run(a.id).kv.put("k", "a");
    await tx.run(b.id).kv.put("k", "b");
  });
  assert.equal(await a.kv.get("k"), "a");
  assert.equal(await b.kv.get("k"), "b");
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.run(a.id).kv.put("k", "a2");
      await tx.run("no-such-run").kv.put("k", "x");
    }),
    RunNotFoundError,
  );
  assert.equal(await a.kv.get("k"), "a");
  const ea = await a.kv.getEntry("k");
  const eb = await b.kv.getEntry("k");
  assert.equal(ea!.version, eb!.version);
});

// ---------------------------------------------------------------------------
// Versions

test("versions strictly increase across commits and are equal within one transaction", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  let last = 0;
  for (let i = 0; i < 5; i++) {
    await run.kv.put(`k${i % 2}`, i);
    const v = (await run.kv.getEntry(`k${i % 2}`))!.version;
    assert.ok(v > last, `version ${v} after ${last}`);
    last = v;
  }
  await run.transaction(async (tx) => {
    await tx.kv.put("x", 1);
    await tx.kv.put("y", 1);
    await tx.kv.put("x", 2); // written twice: the last record must end stamped
    await tx.kv.put("gone", 1);
    await tx.kv.delete("gone");
  });
  const x = (await run.kv.getEntry("x"))!;
  const y = (await run.kv.getEntry("y"))!;
  assert.equal(x.value, 2);
  assert.equal(x.version, y.version);
  assert.ok(x.version > last, "later commit");
  assert.equal(await run.kv.get("gone"), undefined);
  // A read-only call takes no version; an unchanged key keeps its version.
  await run.kv.get("x");
  assert.equal((await run.kv.getEntry("x"))!.version, x.version);
  await run.kv.put("z", 0);
  assert.ok((await run.kv.getEntry("z"))!.version > x.version, "later commit");
  assert.equal((await run.kv.getEntry("x"))!.version, x.version);
});

test("64 concurrent blind puts to one key never conflict; the last commit's value stays", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const before = (await db.stats()).conflicts;
  await Promise.all(Array.from({ length: 64 }, (_, i) => run.kv.put("hot", i)));
  assert.equal((await db.stats()).conflicts, before);
  // Every put got its own commit; the one that committed last is what stays.
  const e = (await run.kv.getEntry("hot"))!;
  assert.equal(e.version, db.engine.version);
  assert.equal(typeof e.value, "number");
});

// ---------------------------------------------------------------------------
// Expiry

test("an entry is invisible from its expiry on, to every read, before any sweep", async () => {
  let now = 1_000;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  await run.kv.put("e/1", "short", { ttlMs: 10 });
  await run.kv.put("e/2", "long", { ttlMs: 20 });
  await run.kv.put("e/3", "forever");
  now = 1_009;
  assert.deepEqual(await run.kv.list("e/"), ["e/1", "e/2", "e/3"]);
  now = 1_010; // exactly the expiry of e/1
  assert.equal(await run.kv.get("e/1"), undefined);
  assert.equal(await run.kv.getEntry("e/1"), undefined);
  assert.equal(await run.kv.exists("e/1"), false);
  assert.deepEqual(await run.kv.list("e/"), ["e/2", "e/3"]);
  assert.deepEqual(await run.kv.entries("e/", { limit: 1 }), [["e/2", "long"]]);
  assert.deepEqual((await run.kv.page("e/", { limit: 1 })).entries, [["e/2", "long"]]);
  assert.deepEqual(await run.kv.list("e/", { reverse: true }), ["e/3", "e/2"]);
  assert.equal(await run.kv.delete("e/1"), false); // expired: not a live entry
  now = 1_020;
  assert.deepEqual(await run.kv.entries("e/"), [["e/3", "forever"]]);
  assert.equal(await run.kv.delete("e/2"), false);
  assert.equal(await run.kv.delete("e/3"), true);
});

test("listing with a limit skips expired entries and still fills the limit", async () => {
  let now = 0;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  // 600 expired entries (more than one scan chunk) before 3 live ones.
  await run.transaction(async (tx) => {
    for (let i = 0; i < 600; i++) {
      await tx.kv.put(`a${String(i).padStart(4, "0")}`, i, { ttlMs: 5 });
    }
  });
  for (const k of ["b1", "b2", "b3"]) await run.kv.put(k, k);
  now = 5;
  assert.deepEqual(await run.kv.list("", { limit: 2 }), ["b1", "b2"]);
  const p = await run.kv.page("", { limit: 2 });
  assert.deepEqual(p.entries.map(([k]) => k), ["b1", "b2"]);
  assert.deepEqual((await run.kv.page("", { limit: 2, cursor: p.cursor! })).entries, [[
    "b3",
    "b3",
  ]]);
  assert.deepEqual(await run.kv.list("a"), []);
  // The same in reverse, with the expired entries after the live ones.
  await run.transaction(async (tx) => {
    for (let i = 0; i < 600; i++) {
      await tx.kv.put(`c${String(i).padStart(4, "0")}`, i, { ttlMs: 1 });
    }
  });
  now = 6;
  assert.deepEqual(await run.kv.list("", { reverse: true, limit: 2 }), ["b3", "b2"]);
  const r = await run.kv.page("", { reverse: true, limit: 2 });
  assert.deepEqual(
    (await run.kv.page("", { reverse: true, limit: 2, cursor: r.cursor! })).entries,
    [[
      "b1",
      "b1",
    ]],
  );
});

test("the sweeper purges expired records, and never an entry overwritten since", async () => {
  let now = 0;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  const n = await runNumber(db, run.id);
  await run.kv.put("gone", 1, { ttlMs: 10 });
  await run.kv.put("renewed", 1, { ttlMs: 10 });
  await run.kv.put("made-permanent", 1, { ttlMs: 10 });
  await run.kv.put("deleted", 1, { ttlMs: 10 });
  await run.kv.put("renewed", 2, { ttlMs: 100 });
  await run.kv.put("made-permanent", 2);
  assert.equal(await run.kv.delete("deleted"), true);
  // delete removed its index entry, and each overwrite its predecessor's:
  // one entry per expiring record ("gone" at 10, "renewed" at 100).
  assert.deepEqual(storeCounts(db, n), { records: 3, index: 2 });
  now = 10;
  assert.equal(await db.sweepExpired(), 1);
  assert.deepEqual(storeCounts(db, n), { records: 2, index: 1 });
  assert.deepEqual(await run.kv.entries(), [["made-permanent", 2], ["renewed", 2]]);
  assert.equal((await run.kv.getEntry("renewed"))?.expiresAt, 100);
  now = 100;
  assert.equal(await db.sweepExpired(), 1);
  assert.deepEqual(storeCounts(db, n), { records: 1, index: 0 });
});

test("after reopen, overwriting an expiring key still removes its expiry index entry", async () => {
  const fs = new SimFS();
  {
    await using db = await Database.open("db", { fs });
    const run = await db.runs.create({ id: "r" });
    await run.kv.put("session", "token", { ttlMs: 60_000 });
    await run.kv.put("plain", 1);
  }
  await using db = await Database.open("db", { fs });
  const n = await runNumber(db, "r");
  assert.deepEqual(storeCounts(db, n), { records: 2, index: 1 });
  await db.run("r").kv.put("session", "permanent now"); // the first write since open
  assert.deepEqual(storeCounts(db, n), { records: 2, index: 0 });
});

test("a put buffered before the run's first expiring put commits still keeps the expiry index exact", async () => {
  for (const last of ["plain", "ttl"] as const) {
    await using db = await Database.open("db", { fs: new SimFS(), durability: "strict" });
    const run = await db.runs.create();
    const n = await runNumber(db, run.id);
    // The transaction buffers its put first (the run has no expiring record
    // yet), then another put of the key commits, then the transaction does.
    await db.transaction(async (tx) => {
      if (last === "plain") await tx.run(run.id).kv.put("k", "plain");
      else await tx.run(run.id).kv.put("k", "ttl", { ttlMs: 60_000 });
      if (last === "plain") await run.kv.put("k", "ttl", { ttlMs: 60_000 });
      else await run.kv.put("k", "plain");
    });
    const entry = await run.kv.getEntry("k");
    assert.equal(entry?.value, last);
    const index = last === "ttl" ? 1 : 0;
    assert.deepEqual(storeCounts(db, n), { records: 1, index }, `${last} committed last`);
  }
});

// ---------------------------------------------------------------------------
// Model property

const KEYS = ["a", "a/b", "a/c", "ab", "a\0", "b", "é", "z"];
const PREFIXES = ["", "a", "a/", "b", "é", "q"];
const STARTS = [...KEYS, "a/", "aa", "0", "zz"];

type Op =
  | { t: "put"; k: string; v: number; ttl: number | undefined }
  | { t: "del"; k: string }
  | { t: "tick"; ms: number }
  | { t: "sweep" }
  | {
    t: "query";
    prefix: string;
    limit: number | undefined;
    start: string | undefined;
    reverse: boolean;
    pageLimit: number;
  };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant("put" as const),
      k: fc.constantFrom(...KEYS),
      v: fc.integer({ min: 0, max: 99 }),
      ttl: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant("del" as const), k: fc.constantFrom(...KEYS) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 20 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ t: "sweep" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("query" as const),
      prefix: fc.constantFrom(...PREFIXES),
      limit: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
      start: fc.option(fc.constantFrom(...STARTS), { nil: undefined }),
      reverse: fc.boolean(),
      pageLimit: fc.integer({ min: 1, max: 4 }),
    }),
  },
);

interface ModelEntry {
  v: number;
  expiresAt: number | undefined;
  version: number;
}

/**
 * Runs `ops` on a database and on a Map, comparing every read API after each
 * step. `ignoreTtl` breaks the model (the negative control).
 */
async function checkAgainstModel(ops: Op[], ignoreTtl = false): Promise<void> {
  let now = 1_000;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  const n = await runNumber(db, run.id);
  const model = new Map<string, ModelEntry>();
  let lastVersion = 0;
  const live = (e: ModelEntry | undefined): e is ModelEntry =>
    e !== undefined && (ignoreTtl || e.expiresAt === undefined || e.expiresAt > now);
  const liveKeys = (): string[] => [...model.keys()].filter((k) => live(model.get(k))).sort(byKey);

  for (const op of ops) {
    switch (op.t) {
      case "put": {
        await run.kv.put(op.k, op.v, op.ttl === undefined ? {} : { ttlMs: op.ttl });
        const e = await run.kv.getEntry(op.k);
        assert.ok(e !== undefined && e.version > lastVersion, "a put gets a higher version");
        lastVersion = e.version;
        model.set(op.k, {
          v: op.v,
          expiresAt: op.ttl === undefined ? undefined : now + op.ttl,
          version: e.version,
        });
        break;
      }
      case "del": {
        const had = live(model.get(op.k));
        assert.equal(await run.kv.delete(op.k), had, `delete(${JSON.stringify(op.k)})`);
        model.delete(op.k);
        break;
      }
      case "tick":
        now += op.ms;
        break;
      case "sweep": {
        await db.sweepExpired();
        // Every record due by now is gone from the store; every other stays.
        for (const [k, e] of model) {
          if (e.expiresAt !== undefined && e.expiresAt <= now) model.delete(k);
        }
        if (!ignoreTtl) assert.equal(storeCounts(db, n).records, model.size);
        break;
      }
      case "query": {
        let want = liveKeys().filter((k) => k.startsWith(op.prefix));
        if (op.reverse) want.reverse();
        if (op.start !== undefined) {
          const s = op.start;
          want = want.filter((k) => op.reverse ? byKey(k, s) <= 0 : byKey(k, s) >= 0);
        }
        const base = {
          reverse: op.reverse,
          ...(op.start === undefined ? {} : { start: op.start }),
        };
        const limited = op.limit === undefined ? want : want.slice(0, op.limit);
        const opts = { ...base, ...(op.limit === undefined ? {} : { limit: op.limit }) };
        assert.deepEqual(await run.kv.list(op.prefix, opts), limited);
        assert.deepEqual(
          await run.kv.entries(op.prefix, opts),
          limited.map((k) => [k, model.get(k)!.v]),
        );
        // Page through everything.
        const paged: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await run.kv.page(op.prefix, {
            ...base,
            limit: op.pageLimit,
            ...(cursor === undefined ? {} : { cursor }),
          });
          pages++;
          cursor = page.cursor;
          if (cursor !== undefined) assert.equal(page.entries.length, op.pageLimit);
          else assert.ok(page.entries.length > 0 || paged.length === 0, "no empty last page");
          for (const [k, v] of page.entries) {
            assert.equal(v, model.get(k)?.v);
            paged.push(k);
          }
          assert.ok(pages <= KEYS.length + 1, "paging terminates");
        } while (cursor !== undefined);
        assert.deepEqual(paged, want);
        break;
      }
    }
    // The expiry index holds exactly one entry per stored record that expires.
    if (!ignoreTtl) {
      const stored = [...model.values()].filter((e) => e.expiresAt !== undefined).length;
      assert.equal(storeCounts(db, n).index, stored, "expiry index entries per expiring record");
    }
    // Point reads of every key after every step.
    for (const k of KEYS) {
      const e = model.get(k);
      const got = await run.kv.getEntry(k);
      if (!live(e)) {
        assert.equal(got, undefined, `getEntry(${JSON.stringify(k)}) at ${now}`);
        assert.equal(await run.kv.exists(k), false);
      } else {
        const want: Record<string, Value> = { key: k, value: e.v, version: e.version };
        if (e.expiresAt !== undefined) want.expiresAt = e.expiresAt;
        assert.deepEqual(got, want);
        assert.equal(await run.kv.get(k), e.v);
      }
    }
  }
}

test("property: every read API agrees with a model under puts, TTLs, deletes, time and sweeps", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), (ops) => checkAgainstModel(ops)),
    { numRuns: 60 },
  );
});

test("negative control: a model that ignores expiry is caught by the same checks", async () => {
  const r = await fc.check(
    fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), (ops) => checkAgainstModel(ops, true)),
    { numRuns: 200, endOnFailure: true, seed: NEGATIVE_CONTROL_SEED },
  );
  assert.equal(r.failed, true);
});

// ---------------------------------------------------------------------------
// Recovery

test("entries, versions and expiries survive close and reopen; later versions are higher", async () => {
  const fs = new SimFS({ seed: 7 });
  let now = 5_000;
  const clock = () => now;
  let id: string;
  const before: Record<string, unknown> = {};
  {
    await using db = await Database.open("db", { fs, durability: "strict", clock });
    const run = await db.runs.create();
    id = run.id;
    await run.kv.put("a", { x: 1 });
    await run.kv.put("b", "ttl", { ttlMs: 1_000 });
    await run.kv.put("c", "short", { ttlMs: 10 });
    await run.transaction(async (tx) => {
      await tx.kv.put("d", 1);
      await tx.kv.put("e", 2);
    });
    for (const k of ["a", "b", "d", "e"]) before[k] = await run.kv.getEntry(k);
  }
  now = 5_010;
  await using db = await Database.open("db", { fs, durability: "strict", clock });
  const run = db.run(id);
  for (const k of ["a", "b", "d", "e"]) assert.deepEqual(await run.kv.getEntry(k), before[k]);
  assert.equal(await run.kv.get("c"), undefined);
  assert.equal(await db.sweepExpired(), 1); // the expiry index survived too
  await run.kv.put("f", 0);
  const top = Math.max(
    ...["a", "b", "d", "e"].map((k) => (before[k] as { version: number }).version),
  );
  assert.ok((await run.kv.getEntry("f"))!.version > top, "versions go on");
});

interface CrashCase {
  puts: { k: string; v: number; ttl: number | undefined }[];
  haltAt: number;
  mode: SimCrashMode;
  seed: number;
}

const crashArb: fc.Arbitrary<CrashCase> = fc.record({
  puts: fc.array(
    fc.record({
      k: fc.constantFrom("a", "b", "c", "d"),
      v: fc.integer({ min: 0, max: 999 }),
      ttl: fc.option(fc.integer({ min: 1, max: 1_000_000 }), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 12 },
  ),
  haltAt: fc.integer({ min: 0, max: 60 }),
  mode: fc.constantFrom(...SIM_CRASH_MODES),
  seed: fc.integer({ min: 1, max: 2 ** 31 }),
});

test("property: after a crash (strict) every acknowledged put is there with its value, version and expiry", async () => {
  const clock = () => 1_000;
  let crashedMidway = 0;
  await fc.assert(
    fc.asyncProperty(crashArb, async (c) => {
      const fs = new SimFS({ seed: c.seed });
      const db = await Database.open("db", { fs, durability: "strict", clock });
      const run = await db.runs.create();
      fs.haltAfter(fs.opCount + c.haltAt);
      const acked = new Map<
        string,
        { value: number; version: number | undefined; expiresAt?: number }
      >();
      let pending: { k: string; v: number; expiresAt?: number } | undefined;
      for (const p of c.puts) {
        const expiry = p.ttl === undefined ? {} : { expiresAt: 1_000 + p.ttl };
        try {
          await run.kv.put(p.k, p.v, p.ttl === undefined ? {} : { ttlMs: p.ttl });
        } catch (err) {
          assert.ok(err instanceof StorageError, String(err));
          pending = { k: p.k, v: p.v, ...expiry };
          crashedMidway++;
          break;
        }
        // The version, read while the engine still accepts transactions.
        const version = await run.kv.getEntry(p.k).then((e) => e?.version, () => undefined);
        acked.set(p.k, { value: p.v, version, ...expiry });
      }
      const after = fs.crash(c.mode, c.seed);
      await db.close().catch(() => {});
      await using db2 = await Database.open("db", { fs: after, durability: "strict", clock });
      const r2 = db2.run(run.id);
      for (const k of ["a", "b", "c", "d"]) {
        const got = await r2.kv.getEntry(k);
        const want = acked.get(k);
        if (
          pending !== undefined && pending.k === k && got?.value === pending.v &&
          got.expiresAt === pending.expiresAt
        ) {
          // The put that failed may or may not have reached the disk: this is
          // it (or an acknowledged record equal to it).
          continue;
        }
        if (want === undefined) {
          assert.equal(got, undefined);
          continue;
        }
        assert.equal(got?.value, want.value, `value of ${k}`);
        assert.ok(got!.version > 0, `version of ${k} stamped`);
        assert.equal(got?.expiresAt, want.expiresAt, `expiry of ${k}`);
        if (want.version !== undefined) assert.equal(got?.version, want.version, `version of ${k}`);
      }
    }),
    { numRuns: 40 },
  );
  assert.ok(crashedMidway > 0, "some cases crashed in the middle of the puts");
});

/** Concurrent standalone writes, one turn per group, until the disk halts. */
interface GroupCrashCase {
  sizes: number[];
  haltAt: number;
  mode: SimCrashMode;
  seed: number;
}

const groupCrashArb: fc.Arbitrary<GroupCrashCase> = fc.record({
  sizes: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 8 }),
  haltAt: fc.integer({ min: 0, max: 40 }),
  mode: fc.constantFrom(...SIM_CRASH_MODES),
  seed: fc.integer({ min: 1, max: 2 ** 31 }),
});

/**
 * Runs one case: in group g, `sizes[g]` puts (every third with a TTL) and
 * one event append, all issued in one turn and awaited together. After the
 * crash every acknowledged write must be there, each group whole or absent,
 * the groups present a prefix, the event chain valid. `control` breaks the
 * check on purpose: `allAcked` expects unacknowledged groups too,
 * `splitGroups` puts a turn boundary inside every group of two or more.
 * Returns whether the case crashed in the middle of the groups.
 */
async function groupCrashCase(
  c: GroupCrashCase,
  control: { allAcked?: boolean; splitGroups?: boolean } = {},
): Promise<boolean> {
  const clock = () => 1_000;
  const fs = new SimFS({ seed: c.seed });
  const db = await Database.open("db", { fs, durability: "strict", clock });
  const run = await db.runs.create({ id: "r" });
  fs.haltAfter(fs.opCount + c.haltAt);
  const acked: boolean[] = [];
  let midway = false;
  for (const [g, size] of c.sizes.entries()) {
    const writes: Promise<unknown>[] = [];
    for (let j = 0; j < size; j++) {
      if (control.splitGroups === true && j === 1) await Promise.resolve();
      writes.push(run.kv.put(`g${g}/${j}`, j, j % 3 === 2 ? { ttlMs: 1_000_000 } : {}));
    }
    writes.push(run.events.append("group", g));
    const outcomes = await Promise.allSettled(writes);
    for (const o of outcomes) {
      if (o.status === "rejected") assert.ok(o.reason instanceof StorageError, String(o.reason));
    }
    const all = outcomes.every((o) => o.status === "fulfilled");
    // One commit: its writes are acknowledged together or not at all.
    assert.ok(all || outcomes.every((o) => o.status === "rejected"), "a group settles as one");
    acked.push(all);
    if (!all) {
      midway = true;
      break;
    }
  }
  const after = fs.crash(c.mode, c.seed);
  await db.close().catch(() => {});
  await using db2 = await Database.open("db", { fs: after, durability: "strict", clock });
  const r2 = db2.run("r");
  const events = await r2.events.readRange(0, 1000);
  assert.deepEqual(await r2.events.verifyChain(), { valid: true, length: events.length });
  const present: boolean[] = [];
  for (const [g, size] of c.sizes.entries()) {
    let found = 0;
    for (let j = 0; j < size; j++) {
      const e = await r2.kv.getEntry(`g${g}/${j}`);
      if (e !== undefined) {
        found++;
        assert.equal(e.value, j);
        assert.equal(e.expiresAt, j % 3 === 2 ? 1_001_000 : undefined);
      }
    }
    const event = events.some((e) => e.payload === g);
    assert.ok(found === 0 || found === size, `group ${g}: ${found} of ${size} puts survived`);
    assert.equal(event, found > 0, `group ${g}: its event survives with its puts`);
    present.push(found > 0);
    if (acked[g] === true || (control.allAcked === true && g < acked.length)) {
      assert.ok(found > 0, `acknowledged group ${g} survived`);
    }
  }
  const firstAbsent = present.indexOf(false);
  assert.ok(
    firstAbsent < 0 || present.slice(firstAbsent).every((p) => !p),
    "present groups are a prefix",
  );
  return midway;
}

test("property: after a crash (strict) grouped standalone writes survive whole, acknowledged or not at all", async () => {
  let midway = 0;
  await fc.assert(
    fc.asyncProperty(groupCrashArb, async (c) => {
      if (await groupCrashCase(c)) midway++;
    }),
    { numRuns: 40 },
  );
  assert.ok(midway > 0, "some cases crashed in the middle of the groups");
});

test("negative controls: the grouped-crash check catches lost acknowledgements and split groups", async () => {
  const failure = async (control: { allAcked?: boolean; splitGroups?: boolean }) => {
    const r = await fc.check(
      fc.asyncProperty(groupCrashArb, (c) => groupCrashCase(c, control).then(() => {})),
      { numRuns: 200, endOnFailure: true, seed: NEGATIVE_CONTROL_SEED },
    );
    assert.equal(r.failed, true);
    return String((r.errorInstance as Error | null)?.message);
  };
  // Expecting the failed group to survive too: some crash drops it.
  assert.match(await failure({ allAcked: true }), /acknowledged group/);
  // A turn boundary inside a group makes two commits: the group then settles
  // in parts, or a crash between them leaves part of it.
  assert.match(
    await failure({ splitGroups: true }),
    /settles as one|puts survived|survives with its puts/,
  );
});

// ---------------------------------------------------------------------------
// Run status and bad input

test("writes into a completed run throw RunClosedError, into an unknown run RunNotFoundError; reads still work", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.kv.put("k", 1);
  await db.runs.complete(run.id);
  await assert.rejects(run.kv.put("k", 2), RunClosedError);
  await assert.rejects(run.kv.put("new", 2), RunClosedError);
  await assert.rejects(run.kv.delete("k"), RunClosedError);
  assert.equal(await run.kv.get("k"), 1);
  assert.deepEqual(await run.kv.list(), ["k"]);
  const ghost = db.run("no-such-run");
  await assert.rejects(ghost.kv.put("k", 1), RunNotFoundError);
  await assert.rejects(ghost.kv.get("k"), RunNotFoundError);
  await assert.rejects(ghost.kv.list(), RunNotFoundError);
  await assert.rejects(ghost.kv.page(), RunNotFoundError);
});

test("a paused run accepts writes", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await db.runs.pause(run.id);
  await run.kv.put("k", 1);
  assert.equal(await run.kv.delete("k"), true);
});

class Point {
  x = 1;
}

test("bad input throws TypeError or RangeError and writes nothing", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.kv.put("keep", 1);
  const keysBefore = (await db.stats()).keys;
  const kv = run.kv as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const bad = (v: unknown) => v as Value;
  // Keys.
  for (const k of ["", 5, undefined, null, {}]) {
    await assert.rejects(kv.put!(k, 1), TypeError, `key ${String(k)}`);
    await assert.rejects(kv.get!(k), TypeError);
    await assert.rejects(kv.delete!(k), TypeError);
    await assert.rejects(kv.getEntry!(k), TypeError);
    await assert.rejects(kv.exists!(k), TypeError);
  }
  const long = "é".repeat(513); // 513 characters, 1026 UTF-8 bytes
  await assert.rejects(run.kv.put(long, 1), RangeError);
  await assert.rejects(run.kv.get(long), RangeError);
  await run.kv.put("x".repeat(1024), 1); // exactly the limit is fine
  assert.equal(await run.kv.delete("x".repeat(1024)), true);
  await assert.rejects(run.kv.put("\ud800", 1), TypeError); // no UTF-8 form
  // Values.
  for (const v of [() => 1, Symbol("s"), new Point(), new Map(), undefined, { f: () => 1 }]) {
    await assert.rejects(run.kv.put("k", bad(v)), TypeError);
  }
  // TTLs.
  for (const ttlMs of [0, -1, 1.5, NaN, Infinity]) {
    await assert.rejects(run.kv.put("k", 1, { ttlMs }), RangeError, `ttlMs ${ttlMs}`);
  }
  await assert.rejects(run.kv.put("k", 1, { ttlMs: bad("5") as number }), TypeError);
  await assert.rejects(run.kv.put("k", 1, bad(null) as object), TypeError);
  await assert.rejects(run.kv.put("k", 1, { ttlMs: Number.MAX_SAFE_INTEGER }), RangeError);
  // Listing options.
  await assert.rejects(run.kv.list(bad(5) as string), TypeError);
  await assert.rejects(run.kv.list("é".repeat(513)), RangeError);
  await assert.rejects(run.kv.list("", { limit: -1 }), RangeError);
  await assert.rejects(run.kv.list("", { limit: 1.5 }), RangeError);
  await assert.rejects(run.kv.list("", { limit: bad("1") as number }), TypeError);
  await assert.rejects(run.kv.page("", { limit: 0 }), RangeError);
  await assert.rejects(run.kv.list("", { start: "" }), TypeError);
  await assert.rejects(run.kv.list("", { reverse: bad(1) as boolean }), TypeError);
  for (const cursor of ["", "***", "a", "_w", bad(7) as string]) {
    await assert.rejects(run.kv.page("", { cursor }), TypeError, `cursor ${String(cursor)}`);
  }
  // Nothing was written by any of it.
  assert.equal((await db.stats()).keys, keysBefore);
  assert.deepEqual(await run.kv.entries(), [["keep", 1]]);
});

test("a bad put inside a transaction throws before writing; the rest of the transaction commits", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.transaction(async (tx) => {
    await tx.kv.put("a", 1);
    await assert.rejects(tx.kv.put("b", (() => 1) as unknown as Value), TypeError);
    await assert.rejects(tx.kv.put("c", 1, { ttlMs: 0 }), RangeError);
  });
  assert.deepEqual(await run.kv.list(), ["a"]);
});

test("a damaged KV record is CorruptionError for every read, point and listing alike", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const n = await runNumber(db, run.id);
  const k = key(n, TAG.KV).string("bad").finish();
  const damaged = [
    new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0]), // unknown format
    new Uint8Array([1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0]), // unknown flag
    new Uint8Array([1, 0, 0, 0]), // header cut short
    new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0]), // expiring, no room for the time
    new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xc1]), // a byte that is no value
  ];
  for (const bytes of damaged) {
    await db.engine.transaction((tx) => tx.put(k, bytes));
    for (
      const read of [
        () => run.kv.get("bad"),
        () => run.kv.getEntry("bad"),
        () => run.kv.entries(),
        () => run.kv.page(),
        () => db.transaction((tx) => tx.run(run.id).kv.entries()),
      ]
    ) {
      await assert.rejects(read(), { name: "CorruptionError" }, `[${bytes.join(",")}]`);
    }
  }
});

test("strict: the standalone puts of one turn share one commit, durable across a crash", async () => {
  const fs = new SimFS();
  const db = await Database.open("db", { fs }); // strict by default
  const run = await db.runs.create({ id: "r" });
  const before = (await db.stats()).commits;
  const puts = Array.from({ length: 64 }, (_, i) => run.kv.put(`k${i}`, i));
  // A put to a missing run fails alone; the group's other puts commit.
  const missing = db.run("nobody").kv.put("k", 1);
  const more = Array.from({ length: 8 }, (_, i) => run.kv.put(`m${i}`, i));
  await assert.rejects(missing, RunNotFoundError);
  await Promise.all([...puts, ...more]);
  assert.equal((await db.stats()).commits, before + 1);
  const versions = new Set<number>();
  for (let i = 0; i < 64; i++) versions.add((await run.kv.getEntry(`k${i}`))!.version);
  assert.equal(versions.size, 1); // one commit, one version
  const after = fs.crash("dropUnsynced"); // every resolved put was fsynced
  const again = await Database.open("db", { fs: after });
  assert.equal((await again.run("r").kv.list()).length, 72);
  assert.equal(await again.runs.get("nobody"), undefined);
  await again.close();
});

test("strict: a put made just before close is committed by close", async () => {
  const fs = new SimFS();
  const db = await Database.open("db", { fs });
  const run = await db.runs.create({ id: "r" });
  const put = run.kv.put("k", "v"); // not awaited before close
  await db.close();
  await put;
  const again = await Database.open("db", { fs: fs.crash("dropUnsynced") });
  assert.equal(await again.run("r").kv.get("k"), "v");
  await again.close();
});

test("strict: the standalone writes of one turn read the clock once, like one transaction", async () => {
  let now = 1_000;
  const db = await Database.open("db", { fs: new SimFS(), clock: () => now });
  const run = await db.runs.create();
  const a = run.kv.put("a", 1, { ttlMs: 10_000 });
  now = 5_000; // within the same turn: the group already read the clock
  const b = run.kv.put("b", 1, { ttlMs: 10_000 });
  await Promise.all([a, b]);
  assert.equal((await run.kv.getEntry("a"))?.expiresAt, 11_000);
  assert.equal((await run.kv.getEntry("b"))?.expiresAt, 11_000);
  // The next turn is the next commit, and reads the clock anew.
  await run.kv.put("c", 1, { ttlMs: 10_000 });
  assert.equal((await run.kv.getEntry("c"))?.expiresAt, 15_000);
  await db.close();
});

test("strict: a standalone delete shares its turn's commit and sees the puts before it", async () => {
  const db = await Database.open("db", { fs: new SimFS() });
  const run = await db.runs.create();
  await run.kv.put("old", 0);
  const before = (await db.stats()).commits;
  const [, removedNew, removedOld, removedNone] = await Promise.all([
    run.kv.put("new", 1),
    run.kv.delete("new"), // after the put in call order: it removes it
    run.kv.delete("old"),
    run.kv.delete("never"),
  ]);
  assert.deepEqual([removedNew, removedOld, removedNone], [true, true, false]);
  assert.equal((await db.stats()).commits, before + 1);
  assert.deepEqual(await run.kv.list(), []);
  await assert.rejects(db.run("nobody").kv.delete("k"), RunNotFoundError);
  await db.close();
});
