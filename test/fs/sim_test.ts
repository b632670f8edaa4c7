import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  createSimStats,
  SIM_CRASH_MODES,
  type SimCrashMode,
  type SimFate,
  SimFS,
  type SimFSOptions,
  SimRandom,
} from "../../src/fs/sim.ts";
import { FsError } from "../../src/fs/types.ts";
import { crashModeArb, faultPlanArb, seedArb } from "./_arbitraries.ts";

/** The negative controls' seed: each fails on the same case on every runtime, every time. */
const NEGATIVE_CONTROL_SEED = 1;

/** Seeds tried per crash-mode check: enough to see every outcome of a 2–3 op workload. */
const SEEDS = 300;
const SECTOR = 512;

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);
const filled = (length: number, byte: number): Uint8Array => new Uint8Array(length).fill(byte);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** A SimFS with a durable directory `db`. */
async function withDb(options: SimFSOptions = {}): Promise<SimFS> {
  const sim = new SimFS(options);
  await sim.mkdir("db");
  await sim.syncDir("");
  return sim;
}

/** Creates `path` with `data`, its data synced and its name durable. */
async function durableFile(sim: SimFS, path: string, data: Uint8Array): Promise<void> {
  const f = await sim.open(path, { create: true });
  await f.write(data, 0);
  await f.sync();
  await f.close();
  await sim.syncDir(path.slice(0, Math.max(0, path.lastIndexOf("/"))));
}

async function appendUnsynced(sim: SimFS, path: string, data: Uint8Array): Promise<void> {
  const f = await sim.open(path);
  await f.write(data, await f.size());
  await f.close();
}

// ---------------------------------------------------------------------------
// The adapter contract

test("SimFS round-trips writes, reads, sizes and truncates like a file system", async () => {
  const sim = await withDb();
  const f = await sim.open("db/a", { create: true });
  await f.write(enc("hello world"), 0);
  await f.write(enc("!"), 13);
  assert.equal(await f.size(), 14);
  const buf = new Uint8Array(20);
  assert.equal(await f.read(buf, 0), 14);
  assert.deepEqual([...buf.subarray(11, 14)], [0, 0, 33]);
  assert.equal(await f.read(buf, 14), 0);
  await f.truncate(5);
  assert.equal(await f.read(buf, 0), 5);
  assert.equal(dec(buf.subarray(0, 5)), "hello");
  await f.truncate(7);
  assert.equal(await f.read(buf, 0), 7);
  assert.deepEqual([...buf.subarray(5, 7)], [0, 0]);
  await f.close();
  await assert.rejects(f.read(buf, 0), { name: "FsError", code: "Closed" });
  await assert.rejects(f.close(), { code: "Closed" });
});

test("SimFS maps missing, existing and misplaced paths to the adapter's error codes", async () => {
  const sim = await withDb();
  await assert.rejects(sim.open("db/missing"), { name: "FsError", code: "NotFound" });
  await assert.rejects(sim.open("nodir/x", { create: true }), { code: "NotFound" });
  await sim.open("db/x", { create: true, exclusive: true });
  await assert.rejects(sim.open("db/x", { create: true, exclusive: true }), {
    code: "AlreadyExists",
  });
  await assert.rejects(sim.remove("db/missing"), { code: "NotFound" });
  await assert.rejects(sim.rename("db/missing", "db/y"), { code: "NotFound" });
  await assert.rejects(sim.list("nodir"), { code: "NotFound" });
  await assert.rejects(sim.list("db/x"), { code: "Other" });
  await assert.rejects(sim.open("db"), { code: "Other" });
  await assert.rejects(sim.mkdir("db/x"), { code: "AlreadyExists" });
  const ro = await sim.open("db/x", { readOnly: true });
  await assert.rejects(ro.write(enc("a"), 0), { code: "Permission" });
  await assert.rejects(ro.write("a" as unknown as Uint8Array, 0), TypeError);
  await assert.rejects(ro.read(new Uint8Array(1), -1), RangeError);
});

test("SimFS rename replaces, list sorts, exists and mkdir behave, paths normalize", async () => {
  const sim = await withDb();
  await durableFile(sim, "db/b", enc("old"));
  await durableFile(sim, "db/a", enc("new"));
  await sim.rename("/db/./a", "db/b");
  assert.equal(dec(sim.files().get("db/b")), "new");
  await sim.mkdir("db/sub/deeper");
  await sim.mkdir("db/sub");
  for (const n of ["c", "B", "a1"]) await sim.open(`db/${n}`, { create: true });
  assert.deepEqual(await sim.list("/db/"), ["B", "a1", "b", "c", "sub"]);
  assert.equal(await sim.exists("db/sub/deeper"), true);
  assert.equal(await sim.exists("db/a"), false);
  assert.equal(await sim.exists("/"), true);
  await sim.remove("db/b");
  assert.equal(await sim.exists("db/b"), false);
});

test("SimFS lock: a second lock fails Locked until released", async () => {
  const sim = await withDb();
  const lock = await sim.lock("db");
  await assert.rejects(sim.lock("db"), { code: "Locked" });
  await lock.release();
  await lock.release();
  await (await sim.lock("db")).release();
  await assert.rejects(sim.lock("nodir"), { code: "NotFound" });
});

// ---------------------------------------------------------------------------
// Crash modes

test("synced data and durable names survive every crash mode, for every seed", async () => {
  for (const mode of SIM_CRASH_MODES) {
    for (const seed of range(SEEDS / 3)) {
      const rng = new SimRandom(seed);
      const synced = rng.bytes(300);
      const sim = await withDb({ seed });
      await durableFile(sim, "db/a", synced);
      await durableFile(sim, "db/c", enc("c"));
      // Unsynced work of every kind around it.
      await appendUnsynced(sim, "db/a", rng.bytes(700));
      const b = await sim.open("db/b", { create: true });
      await b.write(rng.bytes(100), 0);
      await b.sync();
      await sim.rename("db/c", "db/d");
      const after = sim.crash(mode, seed);
      const a = after.files().get("db/a");
      assert.ok(a !== undefined, `${mode}/${seed}: db/a vanished`);
      assert.deepEqual(a.subarray(0, 300), synced, `${mode}/${seed}: synced bytes changed`);
    }
  }
});

test("dropUnsynced keeps exactly the synced bytes and the synced names", async () => {
  for (const seed of range(20)) {
    const sim = await withDb({ seed });
    await durableFile(sim, "db/a", enc("synced"));
    await appendUnsynced(sim, "db/a", enc("+unsynced"));
    const b = await sim.open("db/b", { create: true });
    await b.write(enc("b"), 0);
    await b.sync();
    const after = sim.crash("dropUnsynced");
    assert.deepEqual([...after.files().keys()], ["db/a"]);
    assert.equal(dec(after.files().get("db/a")), "synced");
  }
});

test("lostDirEntry: a create without syncDir vanishes though its data was synced", async () => {
  const sim = await withDb();
  const f = await sim.open("db/new", { create: true });
  await f.write(enc("data"), 0);
  await f.sync();
  const after = sim.crash("lostDirEntry");
  assert.deepEqual(await after.list("db"), []);
});

test("lostDirEntry: an unsynced rename reverts and an unsynced remove is undone", async () => {
  const sim = await withDb();
  await durableFile(sim, "db/tmp", enc("v1"));
  await durableFile(sim, "db/gone", enc("g"));
  await sim.rename("db/tmp", "db/final");
  await sim.remove("db/gone");
  assert.deepEqual(await sim.list("db"), ["final"]);
  const after = sim.crash("lostDirEntry");
  assert.deepEqual(await after.list("db"), ["gone", "tmp"]);
  assert.equal(dec(after.files().get("db/tmp")), "v1");
});

test("lostDirEntry keeps the unsynced data of files whose names are durable", async () => {
  const sim = await withDb();
  await durableFile(sim, "db/a", enc("x"));
  await appendUnsynced(sim, "db/a", enc("yz"));
  assert.equal(dec(sim.crash("lostDirEntry").files().get("db/a")), "xyz");
});

test("files under a directory whose own entry is not durable vanish with it", async () => {
  const sim = await withDb();
  await sim.mkdir("db/sub");
  await durableFile(sim, "db/sub/f", enc("f"));
  assert.deepEqual([...sim.crash("dropUnsynced").files().keys()], []);
  const sim2 = await withDb();
  await sim2.mkdir("db/sub");
  await sim2.syncDir("db");
  await durableFile(sim2, "db/sub/f", enc("f"));
  assert.deepEqual([...sim2.crash("dropUnsynced").files().keys()], ["db/sub/f"]);
});

/** Two durable empty files and one unsynced 1000-byte write to each, in order. */
async function twoWrites(seed: number): Promise<{ sim: SimFS; x: Uint8Array; y: Uint8Array }> {
  const sim = await withDb({ seed });
  await durableFile(sim, "db/a", new Uint8Array(0));
  await durableFile(sim, "db/b", new Uint8Array(0));
  const x = filled(1000, 0xaa);
  const y = filled(1000, 0xbb);
  const a = await sim.open("db/a");
  const b = await sim.open("db/b");
  await a.write(x, 0);
  await b.write(y, 0);
  return { sim, x, y };
}

test("prefixTorn keeps pending ops in order up to a cut and tears the cut write at a byte", async () => {
  const tears = new Set<number>();
  for (const seed of range(SEEDS)) {
    const { sim, x, y } = await twoWrites(seed);
    const after = sim.crash("prefixTorn");
    const a = after.files().get("db/a")!;
    const b = after.files().get("db/b")!;
    assert.deepEqual(a, x.subarray(0, a.length), "db/a must be a prefix of its write");
    assert.deepEqual(b, y.subarray(0, b.length), "db/b must be a prefix of its write");
    if (b.length > 0) assert.equal(a.length, 1000, "the second write survived before the first");
    if (a.length > 0 && a.length < 1000) tears.add(a.length);
  }
  assert.ok(tears.size > 10, "the cut write tears at many points");
  assert.ok([...tears].some((n) => n % SECTOR !== 0), "tears are at byte, not sector, granularity");
});

test("reorderSubset keeps a later write while dropping or tearing an earlier one", async () => {
  let reordered = 0;
  let torn = 0;
  for (const seed of range(SEEDS)) {
    const { sim, x, y } = await twoWrites(seed);
    const after = sim.crash("reorderSubset");
    const a = after.files().get("db/a")!;
    const b = after.files().get("db/b")!;
    assert.deepEqual(a, x.subarray(0, a.length));
    assert.deepEqual(b, y.subarray(0, b.length));
    if (b.length === 1000 && a.length < 1000) reordered++;
    if (a.length > 0 && a.length < 1000) torn++;
  }
  assert.ok(reordered > 0, "a later write survived an earlier one that did not");
  assert.ok(torn > 0, "some writes were torn");
});

test("sectorTrash leaves each sector a torn write touched old, new or random, and others intact", async () => {
  const outcomes = new Set<string>();
  for (const seed of range(SEEDS)) {
    const sim = await withDb({ seed });
    await durableFile(sim, "db/a", filled(4 * SECTOR, 0x11));
    const f = await sim.open("db/a");
    await f.write(filled(2 * SECTOR, 0x22), SECTOR);
    const a = sim.crash("sectorTrash").files().get("db/a")!;
    assert.equal(a.length, 4 * SECTOR);
    assert.deepEqual(a.subarray(0, SECTOR), filled(SECTOR, 0x11));
    assert.deepEqual(a.subarray(3 * SECTOR), filled(SECTOR, 0x11));
    const kinds = [1, 2].map((s) => {
      const sector = a.subarray(s * SECTOR, (s + 1) * SECTOR);
      if (sector.every((v) => v === 0x11)) return "old";
      if (sector.every((v) => v === 0x22)) return "new";
      // Random, not a byte-granular mix of old and new.
      assert.ok(sector.filter((v) => v === 0x11 || v === 0x22).length < 32);
      return "trash";
    });
    outcomes.add(kinds.join("+"));
  }
  for (const o of ["old+old", "new+new", "trash+trash", "new+old", "old+trash"]) {
    assert.ok(outcomes.has(o), `outcome ${o} was never produced`);
  }
});

test("sectorTrash without powersafeOverwrite can destroy synced bytes sharing a sector", async () => {
  for (const [powersafe, sectorBytes] of [[true, 512], [false, 512], [false, 4096]] as const) {
    let lostSynced = 0;
    let reachedFar = false;
    for (const seed of range(SEEDS / 3)) {
      const sim = await withDb({ seed, powersafeOverwrite: powersafe, sectorBytes });
      await durableFile(sim, "db/a", filled(8192, 0x11));
      const f = await sim.open("db/a");
      await f.write(filled(50, 0x22), 100);
      const a = sim.crash("sectorTrash").files().get("db/a")!;
      const damaged = range(8192).filter((i) => (i >= 100 && i < 150 ? false : a[i] !== 0x11));
      if (damaged.length > 0) lostSynced++;
      // Damage never leaves the touched sector.
      assert.ok(damaged.every((i) => i < sectorBytes), `damage past sector 0 (${sectorBytes})`);
      if (damaged.some((i) => i >= 512)) reachedFar = true;
    }
    if (powersafe) assert.equal(lostSynced, 0);
    else assert.ok(lostSynced > 0, "synced bytes in the sector were never lost");
    assert.equal(reachedFar, sectorBytes === 4096);
  }
});

test("sizeBeforeData persists the appended length as zeros or garbage, without the data", async () => {
  const tails = new Set<string>();
  for (const seed of range(SEEDS / 3)) {
    const sim = await withDb({ seed });
    await durableFile(sim, "db/a", filled(100, 0x11));
    await appendUnsynced(sim, "db/a", filled(1000, 0x5a));
    const a = sim.crash("sizeBeforeData").files().get("db/a")!;
    assert.equal(a.length, 1100);
    assert.deepEqual(a.subarray(0, 100), filled(100, 0x11));
    const tail = a.subarray(100);
    assert.ok(tail.filter((v) => v === 0x5a).length < 50, "the data itself persisted");
    tails.add(tail.every((v) => v === 0) ? "zeros" : "garbage");
  }
  assert.deepEqual([...tails].sort(), ["garbage", "zeros"]);
});

test("crash() kills the old SimFS: its handles and methods throw Closed", async () => {
  const sim = await withDb();
  const f = await sim.open("db/a", { create: true });
  sim.crash("dropUnsynced");
  await assert.rejects(f.write(enc("x"), 0), { code: "Closed" });
  await assert.rejects(f.read(new Uint8Array(1), 0), { code: "Closed" });
  await assert.rejects(sim.open("db/a"), { code: "Closed" });
  await assert.rejects(sim.list("db"), { code: "Closed" });
  assert.throws(() => sim.crash("dropUnsynced"), { code: "Closed" });
  assert.throws(() => sim.crash("nope" as SimCrashMode), FsError);
});

test("crash() rejects an unknown mode and a bad seed with RangeError", async () => {
  const sim = await withDb();
  assert.throws(() => sim.crash("nope" as SimCrashMode), RangeError);
  assert.throws(() => sim.crash("prefixTorn", 1.5), RangeError);
});

test("crashWith() applies the given fate to each pending operation", async () => {
  const { sim } = await twoWrites(1);
  const pending = sim.pendingOps();
  assert.deepEqual(pending.map((p) => p.description), [
    "write db/a @0 +1000",
    "write db/b @0 +1000",
  ]);
  assert.throws(() => sim.crashWith(["keep"]), RangeError);
  assert.throws(() => sim.crashWith(["keep", { tornBytes: 1001 }]), RangeError);
  const after = sim.crashWith(["drop", { tornBytes: 7 }]);
  assert.equal(after.files().get("db/a")!.length, 0);
  assert.deepEqual(after.files().get("db/b"), filled(7, 0xbb));
  assert.equal(after.stats.crashes.explicit, 1);
});

test("the same seed and the same calls give the same bytes in every crash mode", async () => {
  const run = async (seed: number, mode: SimCrashMode): Promise<Map<string, Uint8Array>> => {
    const sim = await withDb({ seed });
    await durableFile(sim, "db/a", enc("base"));
    for (let i = 0; i < 5; i++) await appendUnsynced(sim, "db/a", filled(700, i));
    await sim.open("db/b", { create: true });
    return sim.crash(mode).files();
  };
  let differs = 0;
  for (const mode of SIM_CRASH_MODES) {
    for (const seed of [1, 2, 3]) assert.deepEqual(await run(seed, mode), await run(seed, mode));
    const a = await run(1, mode);
    for (const seed of [2, 3, 4, 5]) {
      if (JSON.stringify([...(await run(seed, mode))]) !== JSON.stringify([...a])) differs++;
    }
  }
  assert.ok(differs > 0, "different seeds never changed the outcome");
});

test("stats count crash states by mode across crash successors and shared counters", async () => {
  const stats = createSimStats();
  let sim = await withDb({ stats });
  for (const mode of SIM_CRASH_MODES) sim = sim.crash(mode);
  sim = sim.crash("prefixTorn");
  for (const mode of SIM_CRASH_MODES) {
    assert.equal(stats.crashes[mode], mode === "prefixTorn" ? 2 : 1);
  }
  assert.equal(sim.stats, stats);
});

// ---------------------------------------------------------------------------
// The operation log and crash-at-every-point

test("ops() numbers every mutating call, and haltAfter(k) freezes the machine at op k", async () => {
  const sim = new SimFS();
  await sim.mkdir("db");
  await sim.syncDir("");
  const f = await sim.open("db/a", { create: true });
  await f.write(enc("abc"), 0);
  const buf = new Uint8Array(3);
  await f.read(buf, 0);
  await f.sync();
  await f.truncate(1);
  await sim.rename("db/a", "db/b");
  await sim.remove("db/b");
  assert.deepEqual(
    sim.ops().map((o) => `${o.n}:${o.kind}:${o.path}`),
    [
      "1:mkdir:db",
      "2:syncDir:",
      "3:create:db/a",
      "4:write:db/a",
      "5:sync:db/a",
      "6:truncate:db/a",
      "7:rename:db/a",
      "8:remove:db/b",
    ],
  );
  assert.deepEqual(sim.ops()[3], { n: 4, kind: "write", path: "db/a", offset: 0, length: 3 });

  sim.haltAfter(sim.opCount + 1);
  await sim.mkdir("x");
  assert.equal(sim.halted, false);
  await assert.rejects(sim.mkdir("y"), { code: "IO", message: /halted after operation 9/ });
  assert.equal(sim.halted, true);
  assert.equal(await sim.exists("y"), false);
  assert.equal(sim.opCount, 9);
});

/** Replaces db/state by writing db/state.tmp and renaming it, the classic atomic update. */
async function replaceState(sim: SimFS, text: string, syncBeforeRename: boolean): Promise<void> {
  const f = await sim.open("db/state.tmp", { create: true });
  await f.write(enc(text), 0);
  if (syncBeforeRename) await f.sync();
  await f.close();
  await sim.rename("db/state.tmp", "db/state");
  await sim.syncDir("db");
}

/**
 * Crashes an atomic replace at every operation k and in every mode (and,
 * where few ops are pending, in every keep/drop/tear combination); returns
 * the contents of db/state seen after recovery.
 */
async function exploreReplace(
  syncBeforeRename: boolean,
  options: SimFSOptions = {},
): Promise<Set<string>> {
  const setup = async (seed: number): Promise<SimFS> => {
    const sim = await withDb({ ...options, seed });
    await durableFile(sim, "db/state", enc("old"));
    return sim;
  };
  const probe = await setup(0);
  const start = probe.opCount;
  await replaceState(probe, "new", syncBeforeRename);
  const total = probe.opCount - start;
  const seen = new Set<string>();
  for (let k = 0; k <= total; k++) {
    const stopped = async (seed: number): Promise<SimFS> => {
      const sim = await setup(seed);
      sim.haltAfter(start + k);
      await replaceState(sim, "new", syncBeforeRename).catch(() => {});
      return sim;
    };
    for (const mode of SIM_CRASH_MODES) {
      for (const seed of range(8)) {
        seen.add(dec((await stopped(seed)).crash(mode).files().get("db/state")) ?? "<missing>");
      }
    }
    const pending = (await stopped(0)).pendingOps();
    if (pending.length > 4) continue;
    // Exhaustive: each pending op kept, dropped, or (a write) torn after one byte.
    const choices = pending.map((p): SimFate[] =>
      p.kind === "write" ? ["keep", "drop", { tornBytes: 1 }] : ["keep", "drop"]
    );
    let combos: SimFate[][] = [[]];
    for (const c of choices) {
      combos = combos.flatMap((prefix) => c.map((fate) => [...prefix, fate]));
    }
    for (const fates of combos) {
      seen.add(dec((await stopped(0)).crashWith(fates).files().get("db/state")) ?? "<missing>");
    }
  }
  return seen;
}

test("crash at every operation: write, fsync, rename, syncDir replaces atomically", async () => {
  assert.deepEqual([...(await exploreReplace(true))].sort(), ["new", "old"]);
});

test("crash at every operation catches a rename without fsync of the new file", async () => {
  const seen = await exploreReplace(false);
  assert.ok(seen.has(""), `expected an empty file after recovery, saw ${[...seen]}`);
});

// ---------------------------------------------------------------------------
// Faults

test("readError fires on the planned read of the targeted file, and only then", async () => {
  const sim = await withDb({ faults: [{ kind: "readError", path: "db/a", skip: 2 }] });
  await durableFile(sim, "db/a", enc("aaaa"));
  await durableFile(sim, "db/b", enc("bbbb"));
  const a = await sim.open("db/a");
  const b = await sim.open("db/b");
  const buf = new Uint8Array(4);
  assert.equal(await a.read(buf, 0), 4);
  assert.equal(await b.read(buf, 0), 4);
  assert.equal(await a.read(buf, 0), 4);
  await assert.rejects(a.read(buf, 0), { name: "FsError", code: "IO" });
  assert.equal(await a.read(buf, 0), 4);
  assert.equal(sim.stats.faults.readError.once, 1);
});

test("a persistent fault fires on every matching operation after skip", async () => {
  const sim = await withDb();
  await durableFile(sim, "db/a", enc("aaaa"));
  sim.inject({ kind: "readError", skip: 1, persistent: true });
  const a = await sim.open("db/a");
  const buf = new Uint8Array(4);
  assert.equal(await a.read(buf, 0), 4);
  for (let i = 0; i < 3; i++) await assert.rejects(a.read(buf, 0), { code: "IO" });
  assert.equal(sim.stats.faults.readError.persistent, 3);
  sim.clearFaults();
  assert.equal(await a.read(buf, 0), 4);
});

test("writeError writes nothing; globs and predicates select the files", async () => {
  const sim = await withDb();
  await sim.mkdir("db/sub");
  for (const p of ["db/x.log", "db/x.tmp", "db/sub/y.log"]) await durableFile(sim, p, enc("-"));
  const attempt = async (path: string): Promise<boolean> => {
    const f = await sim.open(path);
    const before = sim.pendingOps().length;
    const content = dec(sim.files().get(path));
    try {
      await f.write(enc("new"), 0);
      return true;
    } catch (err) {
      assert.equal((err as FsError).code, "IO");
      assert.equal(sim.pendingOps().length, before);
      assert.equal(dec(sim.files().get(path)), content);
      return false;
    }
  };
  sim.inject({ kind: "writeError", path: "db/*.log", persistent: true });
  assert.deepEqual(
    [await attempt("db/x.log"), await attempt("db/x.tmp"), await attempt("db/sub/y.log")],
    [false, true, true],
  );
  sim.clearFaults();
  sim.inject({ kind: "writeError", path: "**/*.log", persistent: true });
  assert.deepEqual([await attempt("db/x.log"), await attempt("db/sub/y.log")], [false, false]);
  sim.clearFaults();
  sim.inject({ kind: "writeError", path: (p) => p.endsWith(".tmp") });
  assert.deepEqual([await attempt("db/x.log"), await attempt("db/x.tmp")], [true, false]);
});

test("shortWrite: the device takes fewer bytes per call and write() loops until all landed", async () => {
  const sim = await withDb({ faults: [{ kind: "shortWrite", bytes: 3, persistent: true }] });
  await durableFile(sim, "db/a", new Uint8Array(0));
  const f = await sim.open("db/a");
  await f.write(enc("0123456789"), 0);
  assert.equal(dec(sim.files().get("db/a")), "0123456789");
  assert.deepEqual(sim.pendingOps().map((p) => p.length), [3, 3, 3, 1]);
  assert.equal(sim.stats.faults.shortWrite.persistent, 3);
  // A torn crash can now stop between device calls.
  const after = sim.crashWith(["keep", "keep", "drop", "drop"]);
  assert.equal(dec(after.files().get("db/a")), "012345");
});

test("a device that accepts no bytes makes write() fail IO instead of looping forever", async () => {
  const sim = await withDb({ faults: [{ kind: "shortWrite", bytes: 0, persistent: true }] });
  await durableFile(sim, "db/a", new Uint8Array(0));
  const f = await sim.open("db/a");
  await assert.rejects(f.write(enc("abc"), 0), { code: "IO", message: /accepted no bytes/ });
});

test("noSpace lands part of the write, then fails NoSpace", async () => {
  const sim = await withDb({ faults: [{ kind: "noSpace", bytes: 4 }] });
  await durableFile(sim, "db/a", new Uint8Array(0));
  const f = await sim.open("db/a");
  await assert.rejects(f.write(enc("0123456789"), 0), {
    code: "NoSpace",
    message: /after 4 of 10 bytes/,
  });
  assert.equal(dec(sim.files().get("db/a")), "0123");
  await f.write(enc("0123456789"), 0);
  assert.equal(sim.stats.faults.noSpace.once, 1);
});

test("a full disk fails NoSpace after writing what fits", async () => {
  const sim = await withDb({ capacityBytes: 100 });
  await durableFile(sim, "db/a", filled(60, 1));
  const f = await sim.open("db/b", { create: true });
  await assert.rejects(f.write(filled(50, 2), 0), { code: "NoSpace" });
  assert.equal(await f.size(), 40);
  await sim.remove("db/a");
  await f.write(filled(50, 2), 0);
});

test("syncError with the view kept: reads return the data, a retry succeeds, a crash loses it", async () => {
  const sim = await withDb();
  await durableFile(sim, "db/a", enc("old"));
  sim.inject({ kind: "syncError", keepView: true, path: "db/a" });
  const f = await sim.open("db/a");
  await f.write(enc("NEW"), 0);
  await assert.rejects(f.sync(), { code: "IO" });
  const buf = new Uint8Array(3);
  await f.read(buf, 0);
  assert.equal(dec(buf), "NEW");
  await f.sync(); // the trap: "succeeds" with nothing left to write
  assert.equal(dec(sim.crash("dropUnsynced").files().get("db/a")), "old");
});

test("syncError without the view kept: reads revert to the durable bytes", async () => {
  const sim = await withDb();
  await durableFile(sim, "db/a", enc("old"));
  sim.inject({ kind: "syncError", keepView: false });
  const f = await sim.open("db/a");
  await f.write(enc("NEW!"), 0);
  await assert.rejects(f.sync(), { code: "IO" });
  assert.equal(dec(sim.files().get("db/a")), "old");
  assert.equal(await f.size(), 3);
  assert.equal(sim.stats.faults.syncError.once, 1);
});

test("syncDirError leaves the directory's changes pending until a successful syncDir", async () => {
  const sim = await withDb({ faults: [{ kind: "syncDirError", path: "db" }] });
  await sim.open("db/a", { create: true });
  await assert.rejects(sim.syncDir("db"), { code: "IO" });
  assert.equal(sim.pendingOps().length, 1);
  await sim.syncDir("db");
  assert.deepEqual([...sim.crash("dropUnsynced").files().keys()], ["db/a"]);
});

test("misdirectedWrite: reads are right, but the medium gets the bytes at a wrong offset", async () => {
  const sim = await withDb();
  await durableFile(sim, "db/a", filled(1024, 0x11));
  sim.inject({ kind: "misdirectedWrite", shiftBytes: 512 });
  const f = await sim.open("db/a");
  await f.write(enc("abc"), 0);
  await f.sync();
  assert.equal(dec(sim.files().get("db/a")!.subarray(0, 3)), "abc");
  const a = sim.crash("dropUnsynced").files().get("db/a")!;
  assert.deepEqual(a.subarray(0, 3), filled(3, 0x11));
  assert.equal(dec(a.subarray(512, 515)), "abc");
  assert.equal(sim.stats.faults.misdirectedWrite.once, 1);
});

test("bitFlip flips the planned bit of durable bytes, and it survives a crash", async () => {
  const sim = await withDb();
  await durableFile(sim, "db/a", filled(16, 0));
  await durableFile(sim, "db/b", filled(16, 0));
  sim.inject({ kind: "bitFlip", path: "db/a", offset: 5, bit: 3 });
  const expected = filled(16, 0);
  expected[5] = 8;
  assert.deepEqual(sim.files().get("db/a"), expected);
  const after = sim.crash("dropUnsynced");
  assert.deepEqual(after.files().get("db/a"), expected);
  assert.deepEqual(after.files().get("db/b"), filled(16, 0));
  assert.equal(after.stats.faults.bitFlip.once, 1);
});

test("latentSectorError makes reads of that sector fail until it is rewritten, across crashes", async () => {
  const sim = await withDb();
  await durableFile(sim, "db/a", filled(2048, 7));
  sim.inject({ kind: "latentSectorError", path: "db/a", offset: 700 });
  const after = sim.crash("dropUnsynced");
  const f = await after.open("db/a");
  const buf = new Uint8Array(512);
  assert.equal(await f.read(buf, 0), 512);
  assert.equal(await f.read(buf, 1024), 512);
  await assert.rejects(f.read(buf, 300), { code: "IO", message: /offset 512/ });
  await f.write(enc("z"), 600);
  assert.equal(await f.read(buf, 512), 512);
});

test("with no faults planned none fire, and the counters stay at zero", async () => {
  const sim = await withDb();
  await durableFile(sim, "db/a", filled(5000, 1));
  const f = await sim.open("db/a");
  for (let i = 0; i < 50; i++) {
    await f.write(filled(100, i), i * 100);
    await f.read(new Uint8Array(100), i * 50);
    if (i % 10 === 0) await f.sync();
  }
  for (const count of Object.values(sim.stats.faults)) {
    assert.deepEqual(count, { once: 0, persistent: 0 });
  }
});

test("malformed faults and options are rejected", () => {
  const sim = new SimFS();
  assert.throws(() => sim.inject({ kind: "nope" } as never), RangeError);
  assert.throws(() => sim.inject({ kind: "readError", skip: -1 }), RangeError);
  assert.throws(() => sim.inject({ kind: "syncError" } as never), TypeError);
  assert.throws(() => sim.inject({ kind: "bitFlip", bit: 8 }), RangeError);
  assert.throws(() => new SimFS({ sectorBytes: 1024 as 512 }), RangeError);
  assert.throws(() => new SimFS({ seed: 0.5 }), RangeError);
  assert.throws(() => sim.haltAfter(-1), RangeError);
});

// ---------------------------------------------------------------------------
// Negative controls: the simulator can show the bugs the engine tests must catch

test("negative control lyingFsync: a synced write is lost in a crash", async () => {
  const sim = await withDb({ lyingFsync: true });
  await durableFile(sim, "db/a", enc("acknowledged"));
  assert.equal(dec(sim.crash("dropUnsynced").files().get("db/a")), "");
  let lost = 0;
  for (const mode of SIM_CRASH_MODES) {
    for (const seed of range(10)) {
      const s = await withDb({ seed, lyingFsync: true });
      await durableFile(s, "db/a", enc("acknowledged"));
      if (dec(s.crash(mode).files().get("db/a")) !== "acknowledged") lost++;
    }
  }
  assert.ok(lost > 0);
  // The atomic replace that is correct on an honest disk fails on this one.
  assert.ok((await exploreReplace(true, { lyingFsync: true })).has(""));
});

test("negative control noDirSync: a create followed by syncDir vanishes in a crash", async () => {
  const sim = await withDb({ noDirSync: true });
  await durableFile(sim, "db/a", enc("x"));
  assert.equal(sim.crash("dropUnsynced").files().has("db/a"), false);
  const honest = await withDb();
  await durableFile(honest, "db/a", enc("x"));
  assert.equal(honest.crash("dropUnsynced").files().has("db/a"), true);
  const seen = await exploreReplace(true, { noDirSync: true });
  assert.ok(seen.has("<missing>") || seen.has("old"), [...seen].join());
  assert.ok(seen.has("<missing>"), "the replaced file vanished in some crash");
});

// ---------------------------------------------------------------------------
// Properties

interface Step {
  readonly length: number;
  readonly sync: boolean;
}
const stepsArb = fc.array(
  fc.record({ length: fc.integer({ min: 1, max: 700 }), sync: fc.boolean() }),
  { maxLength: 12 },
);
const durabilityFaults = faultPlanArb({
  kinds: ["readError", "writeError", "shortWrite", "noSpace", "syncError", "syncDirError"],
  paths: ["db/*.log", "db", "db/other"],
});

/** Appends with some syncs until the first error; returns the sim, the bytes and the acknowledged length. */
async function appendWorkload(
  seed: number,
  plan: SimFSOptions["faults"],
  steps: readonly Step[],
  options: SimFSOptions = {},
): Promise<{ sim: SimFS; model: Uint8Array; acked: number; named: boolean }> {
  const sim = new SimFS({ ...options, seed, ...(plan === undefined ? {} : { faults: plan }) });
  const rng = new SimRandom(seed);
  const model = rng.bytes(steps.reduce((n, s) => n + s.length, 0));
  let acked = 0;
  let named = false;
  let written = 0;
  try {
    await sim.mkdir("db");
    await sim.syncDir("");
    const f = await sim.open("db/wal.log", { create: true });
    await sim.syncDir("db");
    named = true;
    for (const step of steps) {
      await f.write(model.subarray(written, written + step.length), written);
      written += step.length;
      if (step.sync) {
        await f.sync();
        acked = written;
      }
    }
  } catch (err) {
    // Stop at the first error, as the engine does (P5).
    assert.ok(err instanceof FsError, String(err));
  }
  return { sim, model, acked, named };
}

/** P1 for the simulator itself: what a successful sync acknowledged survives the crash. */
function durabilityProperty(options: SimFSOptions = {}) {
  return fc.asyncProperty(
    seedArb,
    durabilityFaults,
    stepsArb,
    crashModeArb,
    seedArb,
    async (seed, plan, steps, mode, crashSeed) => {
      const { sim, model, acked, named } = await appendWorkload(seed, plan, steps, options);
      const after = sim.crash(mode, crashSeed);
      if (!named) return;
      const wal = after.files().get("db/wal.log");
      assert.ok(wal !== undefined, "the durable file vanished");
      assert.ok(wal.length >= acked, `${wal.length} bytes survived, ${acked} were acknowledged`);
      // A first-difference check: assert's diff of large arrays is quadratic, too slow to shrink with.
      const bad = wal.subarray(0, acked).findIndex((v, i) => v !== model[i]);
      assert.equal(bad, -1, `acknowledged byte ${bad} changed`);
    },
  );
}

test("property: acknowledged synced appends survive any fault plan and any crash mode", async () => {
  await fc.assert(durabilityProperty());
});

test("property negative controls: lyingFsync and noDirSync make the durability property fail", async () => {
  for (const control of [{ lyingFsync: true }, { noDirSync: true }]) {
    const out = await fc.check(durabilityProperty(control), {
      endOnFailure: true,
      seed: NEGATIVE_CONTROL_SEED,
      numRuns: 300,
    });
    assert.equal(out.failed, true, `${JSON.stringify(control)} went unnoticed`);
  }
});

test("property: the same seed, fault plan and calls give the same bytes after a crash", async () => {
  await fc.assert(
    fc.asyncProperty(
      seedArb,
      durabilityFaults,
      stepsArb,
      crashModeArb,
      async (seed, plan, steps, mode) => {
        const one = await appendWorkload(seed, plan, steps);
        const two = await appendWorkload(seed, plan, steps);
        assert.deepEqual(one.sim.ops(), two.sim.ops());
        assert.deepEqual(one.sim.crash(mode).files(), two.sim.crash(mode).files());
        assert.deepEqual(one.sim.stats, two.sim.stats);
      },
    ),
  );
});
