// The WAL under the simulated disk (RELIABILITY.md P1, P3, P4, P5 at the log
// level): random workloads are cut by a halt at a random operation and a
// power loss of every kind; recovery must return exactly a prefix of what was
// appended that holds every acknowledged strict record, must be idempotent
// (also when it is itself interrupted), must report damage to durable data
// with file and offset, and must refuse writes after a failed fsync.
// Negative controls (lyingFsync, noDirSync) must make these checks fail.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes, concat, pseudoRandomBytes } from "../_bytes.ts";
import { CorruptionError, StorageError } from "../../src/errors.ts";
import { SIM_CRASH_MODES, type SimCrashMode, SimFS, type SimFSOptions } from "../../src/fs/sim.ts";
import type { FileAdapter, FileHandle, OpenOptions } from "../../src/fs/types.ts";
import { crc32c, crc32cGap, Crc32cRanges } from "../../src/core/crc32c.ts";
import { OrderedStore } from "../../src/core/store.ts";
import { applyPayload, decodeWrites, encodeWrites, type Write } from "../../src/engine/payload.ts";
import {
  type BadFrame,
  decodeFrame,
  encodeFrame,
  encodeSegmentHeader,
  frameBytes,
  FrameDecoder,
  type GoodFrame,
  segmentName,
} from "../../src/wal/format.ts";
import { READ_WINDOW_BYTES, type Recovered, recoverWal } from "../../src/wal/recover.ts";
import { type Durability, WalWriter } from "../../src/wal/writer.ts";

const DIR = "db";

function payloadOf(i: number): Uint8Array {
  // Distinct, variable-length payloads (some empty-ish, some over a sector).
  const len = 1 + ((i * 37) % 700);
  const p = new Uint8Array(len);
  for (let j = 0; j < len; j++) p[j] = (i * 31 + j * 7) & 0xff;
  return p;
}

/** Recovers `fs`, returning the payloads in version order (seals left out). */
async function recoverAll(fs: SimFS): Promise<{ payloads: Uint8Array[]; last: number }> {
  const payloads: Uint8Array[] = [];
  const { lastVersion } = await recoverWal(fs, DIR, (v, p) => {
    assert.equal(v, payloads.length + 1, "versions in order, no gaps");
    payloads.push(p.slice());
  });
  // Seals (empty payloads) take versions too; leave them out of the result.
  return { payloads: payloads.filter((p) => p.length > 0), last: lastVersion };
}

const figures = {
  crashStates: {} as Record<string, number>,
  workloads: 0,
  acknowledged: 0,
  lost: 0,
};

interface Workload {
  groups: number[]; // sizes of concurrent append groups, awaited one after another
  haltAt: number; // SimFS operation after which the machine halts
  mode: SimCrashMode;
  seed: number;
  durability: Durability;
  maxSegmentBytes: number;
}

const workloadArb: fc.Arbitrary<Workload> = fc.record({
  groups: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 12 }),
  haltAt: fc.integer({ min: 0, max: 120 }),
  mode: fc.constantFrom(...SIM_CRASH_MODES),
  seed: fc.integer({ min: 1, max: 2 ** 31 }),
  durability: fc.constantFrom<Durability>("strict", "batched"),
  maxSegmentBytes: fc.constantFrom(4096, 16384, 1 << 20),
});

/**
 * Runs a workload until the machine halts, crashes it, recovers, and checks
 * P1: the recovered records are a prefix of those appended, and (strict)
 * include every acknowledged one.
 */
async function crashAndCheck(w: Workload, simOptions: SimFSOptions = {}): Promise<void> {
  const fs = new SimFS({ seed: w.seed, ...simOptions });
  fs.haltAfter(w.haltAt);
  const appended: Uint8Array[] = [];
  let acked = 0; // highest count of leading records acknowledged
  const ackedSet = new Set<number>();
  try {
    const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}), {
      durability: w.durability,
      maxSegmentBytes: w.maxSegmentBytes,
      randomSalt: () => BigInt(w.seed) * 2654435761n + BigInt(appended.length),
      now: () => 0,
    });
    for (const size of w.groups) {
      const group: Promise<void>[] = [];
      try {
        for (let i = 0; i < size; i++) {
          const index = appended.length;
          const p = payloadOf(index);
          appended.push(p);
          group.push(
            wal.append(p).durable.then(() => {
              ackedSet.add(index);
            }),
          );
        }
      } catch (err) {
        // append() throws once the WAL has failed, which a batched append
        // written in the caller's turn can make happen inside this loop:
        // settle the appends already made before going on.
        await Promise.allSettled(group);
        throw err;
      }
      await Promise.all(group);
    }
    await wal.close();
  } catch (err) {
    if (!(err instanceof StorageError)) throw err; // the halt surfaces as StorageError
  }
  while (ackedSet.has(acked)) acked++;
  const crashed = fs.crash(w.mode, w.seed);
  figures.crashStates[w.mode] = (figures.crashStates[w.mode] ?? 0) + 1;
  figures.workloads++;
  const { payloads } = await recoverAll(crashed);
  assert.ok(payloads.length <= appended.length, "recovered more records than were appended");
  for (let i = 0; i < payloads.length; i++) {
    assert.deepEqual(payloads[i], appended[i], `P1: record ${i + 1} is not the one appended`);
  }
  if (w.durability === "strict") {
    figures.acknowledged += acked;
    if (payloads.length < acked) figures.lost += acked - payloads.length;
    assert.ok(
      payloads.length >= acked,
      `P1: ${acked} records were acknowledged durable, ${payloads.length} recovered (${w.mode})`,
    );
  }
  // P3: recovering again changes nothing.
  const again = await recoverAll(crashed);
  assert.deepEqual(again.payloads, payloads, "P3: a second recovery differs from the first");
}

test("P1/P3: after a crash at any point, recovery returns a prefix holding every acknowledged record", async () => {
  await fc.assert(fc.asyncProperty(workloadArb, (w) => crashAndCheck(w)), { numRuns: 400 });
  assert.equal(figures.lost, 0);
  for (const mode of SIM_CRASH_MODES) {
    assert.ok((figures.crashStates[mode] ?? 0) > 20, JSON.stringify(figures));
  }
  assert.ok(figures.acknowledged > 1000, `only ${figures.acknowledged} records were acknowledged`);
});

test("negative control: with lyingFsync, acknowledged records are lost and P1 catches it", async () => {
  const r = await fc.check(
    fc.asyncProperty(
      workloadArb,
      (w) => crashAndCheck({ ...w, durability: "strict" }, { lyingFsync: true }),
    ),
    { endOnFailure: true, numRuns: 200, seed: 3 },
  );
  assert.equal(r.failed, true, "a disk whose fsync lies passed the durability check");
  // Lost acknowledged records, or a segment whose synced header vanished.
  assert.match(String(r.errorInstance), /P1|CorruptionError/);
});

test("negative control: with noDirSync, a lost directory entry loses acknowledged records", async () => {
  const r = await fc.check(
    fc.asyncProperty(
      workloadArb,
      (w) =>
        crashAndCheck({ ...w, durability: "strict", mode: "lostDirEntry" }, { noDirSync: true }),
    ),
    { endOnFailure: true, numRuns: 200, seed: 3 },
  );
  assert.equal(r.failed, true, "a file system without directory sync passed the durability check");
  assert.match(String(r.errorInstance), /P1/);
});

test("P3: recovery interrupted at any step and run again gives the same result", async () => {
  let interrupted = 0;
  // The same crashed disk, built twice (SimFS is deterministic for a seed).
  const crashedDisk = async (w: Workload): Promise<SimFS> => {
    const fs = new SimFS({ seed: w.seed });
    fs.haltAfter(w.haltAt);
    try {
      const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}), {
        durability: "strict",
        maxSegmentBytes: w.maxSegmentBytes,
        randomSalt: () => BigInt(w.seed),
        now: () => 0,
      });
      for (let i = 0; i < 30; i++) await wal.append(payloadOf(i)).durable;
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
    }
    return fs.crash(w.mode, w.seed);
  };
  await fc.assert(
    fc.asyncProperty(workloadArb, fc.integer({ min: 0, max: 3 }), async (w, stopAt) => {
      const reference = await recoverAll(await crashedDisk(w));
      const victim = await crashedDisk(w);
      victim.haltAfter(victim.opCount + stopAt);
      try {
        await recoverAll(victim);
      } catch (err) {
        if (!(err instanceof StorageError)) throw err;
        interrupted++;
      }
      // Power is lost in the middle of recovery; the next recovery must agree.
      const after = await recoverAll(victim.crash(w.mode, w.seed + 1));
      assert.deepEqual(
        after.payloads,
        reference.payloads,
        "P3: an interrupted recovery changed the outcome",
      );
    }),
    { numRuns: 800 },
  );
  // Only recoveries that repair something (a torn tail, a half-created
  // segment) can be interrupted; most crash states need no repair.
  assert.ok(interrupted >= 20, `only ${interrupted} recoveries were interrupted`);
});

test("P4: damage anywhere in a cleanly closed WAL is reported with file and offset", async () => {
  let reported = 0;
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 }), fc.nat(), async (seed, where) => {
      const fs = new SimFS({ seed });
      const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}), {
        maxSegmentBytes: 8192,
      });
      for (let i = 0; i < 40; i++) await wal.append(payloadOf(i)).durable;
      await wal.close();
      const files = [...fs.files()].filter(([p]) => p.endsWith(".wal"));
      const [path, bytes] = files[where % files.length]!;
      const offset = (where >>> 3) % bytes.length;
      fs.inject({ kind: "bitFlip", path, offset, bit: where & 7 });
      const sealFrameStart = bytes.length - 24; // the seal is the last, empty frame
      const isLastFile = path === files[files.length - 1]![0];
      try {
        const { payloads } = await recoverAll(fs);
        // Only the seal itself may be damaged silently: nothing is lost then.
        assert.ok(
          isLastFile && offset >= sealFrameStart,
          `P4: damage at ${path}:${offset} went unreported`,
        );
        assert.equal(payloads.length, 40);
      } catch (err) {
        assert.ok(err instanceof CorruptionError, `expected CorruptionError, got ${err}`);
        assert.ok(
          err.where.startsWith(path.replace(/^\//, "")) || err.where.includes(path),
          err.where,
        );
        const at = Number(err.where.split(":").at(-1));
        assert.ok(at <= offset, `reported offset ${at} is past the damage at ${offset}`);
        reported++;
      }
    }),
    { numRuns: 300 },
  );
  assert.ok(reported > 250, `only ${reported} of 300 damages were reported`);
});

test("P4: salvage keeps the records before the damage and sets the rest aside", async () => {
  const fs = new SimFS({ seed: 9 });
  const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}), {
    maxSegmentBytes: 8192,
  });
  for (let i = 0; i < 40; i++) await wal.append(payloadOf(i)).durable;
  await wal.close();
  const [path] = [...fs.files()].find(([p]) => p.endsWith(".wal"))!;
  fs.inject({ kind: "bitFlip", path, offset: 64 + 30, bit: 1 }); // inside the first record's payload
  await assert.rejects(recoverWal(fs, DIR, () => {}), CorruptionError);
  const seen: number[] = [];
  const { report } = await recoverWal(fs, DIR, (v) => seen.push(v), { salvage: true });
  assert.deepEqual(seen, []);
  assert.ok(report.salvaged !== undefined && report.salvaged.movedAside.length >= 1);
  // The WAL opens cleanly afterwards and takes new records after the kept ones.
  const again = await recoverWal(fs, DIR, () => {});
  assert.equal(again.lastVersion, 0);
});

test("P5: after a failed fsync the WAL rejects that commit and every later one", async () => {
  for (const keepView of [true, false]) {
    const fs = new SimFS({ seed: 5 });
    const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}));
    await wal.append(payloadOf(0)).durable;
    fs.inject({ kind: "syncError", keepView, path: "**/*.wal" });
    await assert.rejects(wal.append(payloadOf(1)).durable, StorageError);
    assert.throws(() => wal.append(payloadOf(2)), StorageError);
    await assert.rejects(wal.sync(), StorageError);
    await assert.rejects(wal.close(), StorageError);
    // Reopened after power loss, the acknowledged record is there and nothing else is required.
    const { payloads } = await recoverAll(fs.crash("dropUnsynced", 1));
    assert.deepEqual(payloads[0], payloadOf(0));
  }
});

test("P5: a write error or a full disk rejects the commit and poisons the writer", async () => {
  for (const kind of ["writeError", "noSpace"] as const) {
    const fs = new SimFS({ seed: 6 });
    const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}));
    await wal.append(payloadOf(0)).durable;
    fs.inject({ kind, path: "**/*.wal" });
    await assert.rejects(wal.append(payloadOf(1)).durable, StorageError);
    assert.throws(() => wal.append(payloadOf(2)), StorageError);
    const { payloads } = await recoverAll(fs.crash("prefixTorn", 2));
    assert.deepEqual(payloads[0], payloadOf(0));
    assert.ok(payloads.length <= 2);
  }
});

test("group commit: concurrent strict appends share fsyncs", async () => {
  const fs = new SimFS({ seed: 2 });
  const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}));
  const before = wal.stats.syncs;
  await Promise.all(Array.from({ length: 64 }, (_, i) => wal.append(payloadOf(i)).durable));
  const syncs = wal.stats.syncs - before;
  assert.ok(syncs >= 1 && syncs <= 2, `64 concurrent appends took ${syncs} fsyncs`);
  await wal.close();
  const { payloads } = await recoverAll(fs);
  assert.equal(payloads.length, 64);
});

test("batched: appends during a sync go out at once; what the sync counts survives power loss", async () => {
  let overtaken = 0; // syncs that finished with later records written while they ran
  for (const mode of SIM_CRASH_MODES) {
    for (let seed = 0; seed < 20; seed++) {
      const fs = new SimFS({ seed });
      const recovered = await recoverWal(fs, DIR, () => {});
      const wal = await WalWriter.open(fs, DIR, recovered, {
        durability: "batched",
        syncIntervalMs: 3_600_000,
      });
      assert.equal(wal.append(payloadOf(0)).done, true);
      const syncing = wal.sync();
      let last = 0;
      for (let i = 1; i <= 8; i++) {
        const a = wal.append(payloadOf(i));
        assert.equal(a.done, true, "written in the caller's turn, sync or no sync");
        last = a.version;
        for (let t = 0; t < (seed % 4) + 1; t++) await Promise.resolve();
      }
      await syncing;
      const synced = wal.syncedVersion;
      if (synced < last) overtaken++;
      const { payloads } = await recoverAll(fs.crash(mode, seed));
      assert.ok(payloads.length >= synced, `${mode}, seed ${seed}: lost a record the sync counted`);
      for (let i = 0; i < payloads.length; i++) assert.deepEqual(payloads[i], payloadOf(i));
      await wal.close().catch(() => {}); // its disk crashed: only the timer is stopped
    }
  }
  assert.ok(overtaken > 0, "no append ever overtook a sync in flight: the test proves nothing");
});

test("segments rotate and recovery reads across them in order", async () => {
  const fs = new SimFS({ seed: 4 });
  const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}), {
    maxSegmentBytes: 4096,
  });
  for (let i = 0; i < 100; i++) await wal.append(payloadOf(i)).durable;
  await wal.close();
  assert.ok(wal.stats.segments >= 5, `only ${wal.stats.segments} rotations`);
  const { payloads, last } = await recoverAll(fs);
  assert.equal(payloads.length, 100);
  assert.equal(last, 101); // 100 records and the seal
  // Appending after reopening continues the version sequence.
  const wal2 = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}));
  assert.equal(wal2.append(payloadOf(100)).version, 102);
  await wal2.close();
});

// --- Preallocation (strict mode writes zeros ahead of its records) --------

/** The bytes of every segment file in `fs`'s WAL, by name. */
function segmentFiles(fs: SimFS): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [path, bytes] of fs.files()) if (path.startsWith(`${DIR}/wal/`)) out.set(path, bytes);
  return out;
}

test("strict: zeros are preallocated ahead of the records, and trimmed at rotation and close", async () => {
  const fs = new SimFS({ seed: 11 });
  const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}), {
    maxSegmentBytes: 256 * 1024,
  });
  const writes = (): number => fs.ops().filter((op) => op.kind === "write").length;
  await wal.append(payloadOf(0)).durable;
  const [path, first] = [...segmentFiles(fs)][0]!;
  const end = 64 + frameBytes(payloadOf(0).length);
  // The first chunk is MIN_PREALLOCATE_BYTES past the record, all zeros.
  assert.equal(first.length, end + 64 * 1024);
  assert.ok(first.subarray(end).every((b) => b === 0), "the preallocated bytes are not zeros");
  // Later commits overwrite in place: one write each, the size unchanged.
  const before = writes();
  for (let i = 1; i <= 20; i++) await wal.append(payloadOf(i)).durable;
  assert.equal(writes() - before, 20);
  assert.equal(segmentFiles(fs).get(path)!.length, first.length);
  // Enough to fill several segments: every closed one holds its records only.
  for (let i = 21; i < 1500; i++) await wal.append(payloadOf(i)).durable;
  await wal.close();
  const files = segmentFiles(fs);
  assert.ok(files.size >= 3, `only ${files.size} segments`);
  let total = 0;
  for (const bytes of files.values()) total += bytes.length;
  assert.equal(total, 64 * files.size + wal.stats.bytes, "a segment kept preallocated zeros");
  const { report } = await recoverWal(fs, DIR, () => {});
  assert.equal(report.tornTail, undefined);
  const { payloads } = await recoverAll(fs);
  assert.equal(payloads.length, 1500);
});

test("batched mode and preallocateBytes 0 preallocate nothing", async () => {
  for (const options of [{ durability: "batched" as const }, { preallocateBytes: 0 }]) {
    const fs = new SimFS({ seed: 12 });
    const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}), options);
    for (let i = 0; i < 5; i++) await wal.append(payloadOf(i)).durable;
    await wal.sync();
    const [bytes] = [...segmentFiles(fs).values()];
    assert.equal(bytes!.length, 64 + wal.stats.bytes);
    await wal.close();
  }
  await assert.rejects(
    WalWriter.open(new SimFS(), DIR, { tail: undefined, lastVersion: 0 }, { preallocateBytes: -1 }),
    RangeError,
  );
});

test("strict: a full disk while preallocating rejects the commit before any of it is written", async () => {
  const fs = new SimFS({ seed: 13 });
  const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}));
  fs.inject({ kind: "noSpace", path: "**/*.wal" });
  await assert.rejects(wal.append(payloadOf(0)).durable, StorageError);
  const [bytes] = [...segmentFiles(fs).values()];
  assert.ok(bytes!.subarray(64).every((b) => b === 0), "record bytes reached the file");
  const { payloads } = await recoverAll(fs.crash("prefixTorn", 3));
  assert.equal(payloads.length, 0);
});

/** A file system whose `truncate` does nothing: a writer that never trims its zeros. */
function ignoringTruncate(fs: SimFS): FileAdapter {
  return new Proxy(fs, {
    get(target, prop) {
      if (prop === "open") {
        return async (path: string, options?: OpenOptions): Promise<FileHandle> => {
          const file = await target.open(path, options);
          return {
            read: (b, at) => file.read(b, at),
            write: (b, at) => file.write(b, at),
            size: () => file.size(),
            truncate: () => Promise.resolve(),
            sync: () => file.sync(),
            close: () => file.close(),
          };
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  }) as FileAdapter;
}

const lifeArb = fc.record({
  groups: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 10 }),
  haltAt: fc.integer({ min: 0, max: 80 }),
  mode: fc.constantFrom(...SIM_CRASH_MODES),
});

/**
 * Two lives of a strict WAL with preallocation: each appends groups until a
 * halt and a power loss. After each, recovery must return the records every
 * earlier life kept, then a prefix of this life's holding every one it
 * acknowledged — a stale byte past the end of the log would surface here.
 */
async function twoLives(
  lives: { groups: number[]; haltAt: number; mode: SimCrashMode }[],
  seed: number,
  walOptions: { maxSegmentBytes: number; preallocateBytes: number },
  wrap: (fs: SimFS) => FileAdapter = (fs) => fs,
  seen: { zeroTails: number } = { zeroTails: 0 },
): Promise<void> {
  let fs = new SimFS({ seed });
  let kept: Uint8Array[] = [];
  for (const [n, life] of lives.entries()) {
    fs.haltAfter(fs.opCount + life.haltAt);
    const appended: Uint8Array[] = [];
    const acked = new Set<number>();
    try {
      const adapter = wrap(fs);
      const wal = await WalWriter.open(adapter, DIR, await recoverWal(adapter, DIR, () => {}), {
        ...walOptions,
        randomSalt: () => BigInt(seed) * 7919n + BigInt(n),
        now: () => 0,
      });
      for (const size of life.groups) {
        const group: Promise<void>[] = [];
        for (let i = 0; i < size; i++) {
          const index = appended.length;
          // The length a record of this version had in every life, the
          // bytes of this life: a stale frame would fit exactly.
          const p = payloadOf(kept.length + index).map((b) => b ^ (0x5b * (n + 1)));
          appended.push(p);
          group.push(wal.append(p).durable.then(() => void acked.add(index)));
        }
        await Promise.all(group);
      }
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
    }
    let ackedCount = 0;
    while (acked.has(ackedCount)) ackedCount++;
    fs = fs.crash(life.mode, seed + n);
    const wrapped = wrap(fs);
    const payloads: Uint8Array[] = [];
    const { report } = await recoverWal(wrapped, DIR, (_v, p) => void payloads.push(p.slice()));
    if (report.tornTail !== undefined && report.tornTail.bytes >= 4096) seen.zeroTails++;
    const expected = [...kept, ...appended];
    assert.ok(payloads.length >= kept.length + ackedCount, `life ${n}: acknowledged records lost`);
    assert.ok(payloads.length <= expected.length, `life ${n}: more records than appended`);
    for (let i = 0; i < payloads.length; i++) {
      assert.deepEqual(
        payloads[i],
        expected[i],
        `life ${n}: record ${i + 1} is not the one appended`,
      );
    }
    kept = payloads;
  }
}

test("preallocation: across two lives and crashes, recovery returns exactly what each life kept", async () => {
  const seen = { zeroTails: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.array(lifeArb, { minLength: 2, maxLength: 2 }),
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.constantFrom(4096, 16384, 1 << 20),
      fc.constantFrom(4096, 65536),
      (lives, seed, maxSegmentBytes, preallocateBytes) =>
        twoLives(lives, seed, { maxSegmentBytes, preallocateBytes }, undefined, seen),
    ),
    { numRuns: 300 },
  );
  // Crash states that left a preallocated tail for recovery to cut.
  assert.ok(seen.zeroTails >= 30, `only ${seen.zeroTails} recoveries met a preallocated tail`);
});

test("negative control: with torn tails left in place and no zeros, the two-lives check fails", async () => {
  // Recovery's cut ignored and nothing preallocated: the frames a torn
  // group left past the cut are still there when the next life appends.
  const r = await fc.check(
    fc.asyncProperty(
      fc.array(lifeArb, { minLength: 2, maxLength: 2 }),
      fc.integer({ min: 1, max: 2 ** 31 }),
      (lives, seed) =>
        twoLives(
          lives.map((l) => ({ ...l, mode: "sectorTrash" as const })),
          seed,
          { maxSegmentBytes: 1 << 20, preallocateBytes: 0 },
          ignoringTruncate,
        ),
    ),
    { endOnFailure: true, numRuns: 2000, seed: 5 },
  );
  assert.equal(r.failed, true, "stale frames past the end of the log went unnoticed");
  assert.match(String(r.errorInstance), /not the one appended|more records/);
});

test("an all-zero or garbage tail never decodes as a record", async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const fs = new SimFS({ seed });
    const wal = await WalWriter.open(fs, DIR, await recoverWal(fs, DIR, () => {}), {
      durability: "batched",
      syncIntervalMs: 1_000_000,
    });
    for (let i = 0; i < 3; i++) await wal.append(payloadOf(i)).durable;
    await wal.sync();
    // Written but never synced: after the crash their size persists, their data does not.
    for (let i = 3; i < 8; i++) await wal.append(payloadOf(i)).durable;
    const crashed = fs.crash("sizeBeforeData", seed);
    const { report } = await recoverWal(crashed, DIR, () => {});
    const { payloads } = await recoverAll(crashed);
    assert.equal(payloads.length, 3, `seed ${seed}: the zero/garbage tail decoded as records`);
    assert.ok(
      report.tornTail !== undefined && report.tornTail.bytes > 0,
      `seed ${seed}: no tail was cut`,
    );
  }
});

// --- Replay fast paths, each checked against a plain reference ------------

/** `length` bytes counting up from `seed`. */
function patterned(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed + i) & 0xff;
  return out;
}

test("crc32cGap and Crc32cRanges equal crc32c of the bytes around the gap", () => {
  // Either anywhere, or shaped like frames (a short head, then a gap at least
  // as long), often close to earlier calls, so cached copies get reused.
  const cut = fc.oneof(
    fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.nat()).map((points) => ({ points })),
    fc.record({
      start: fc.nat(),
      head: fc.oneof(fc.constant(4), fc.nat({ max: 20 })),
      more: fc.nat({ max: 8 }),
      tail: fc.oneof(fc.nat({ max: 300 }), fc.nat({ max: 70_000 })),
    }),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 200_000 }),
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.array(fc.tuple(cut, fc.nat({ max: 0xffffffff }), fc.boolean()), {
        maxLength: 40,
      }),
      (length, seed, calls) => {
        const data = pseudoRandomBytes(length, seed);
        let near = 0;
        const cuts = calls.map(([c]) => {
          if ("points" in c) {
            const sorted = c.points.map((p) => p % (length + 1)).sort((x, y) => x - y);
            return sorted as [number, number, number, number];
          }
          const start = Math.min(length, (near + c.start % 600) % (length + 1));
          near = start;
          const gapStart = Math.min(length, start + c.head);
          const gapEnd = Math.min(length, gapStart + c.head + c.more);
          return [start, gapStart, gapEnd, Math.min(length, gapEnd + c.tail)] as [
            number,
            number,
            number,
            number,
          ];
        });
        // Expected values first: every crc32c call uses the core's scratch
        // region, which would make the ranges below copy afresh each time.
        const expected = cuts.map(([start, gapStart, gapEnd, end], i) =>
          crc32c(concat(data.subarray(start, gapStart), data.subarray(gapEnd, end)), calls[i]![1])
        );
        cuts.forEach(([start, gapStart, gapEnd, end], i) => {
          assert.equal(crc32cGap(data, start, gapStart, gapEnd, end, calls[i]![1]), expected[i]);
        });
        const ranges = new Crc32cRanges(data);
        cuts.forEach(([start, gapStart, gapEnd, end], i) => {
          const [, crc, clobber] = calls[i]!;
          assert.equal(ranges.gap(start, gapStart, gapEnd, end, crc), expected[i]);
          // Another use of the scratch region must not confuse the ranges.
          if (clobber) crc32c(data.subarray(end));
        });
      },
    ),
    { numRuns: 200 },
  );
  const data = pseudoRandomBytes(100, 1);
  for (const args of [[5, 4, 6, 7], [0, 1, 2, 101], [-1, 0, 0, 0], [0.5, 1, 2, 3]]) {
    const [a, b, c, d] = args as [number, number, number, number];
    assert.throws(() => crc32cGap(data, a, b, c, d), RangeError);
    assert.throws(() => new Crc32cRanges(data).gap(a, b, c, d), RangeError);
  }
  assert.throws(() => new Crc32cRanges(data).gap(0, 4, 8, 12, -1), RangeError);
});

/** decodeFrame as first written: DataView, bigint fields, the checksum over a copy. */
function referenceDecode(
  buf: Uint8Array,
  at: number,
  salt: bigint,
  expected: number | undefined,
): GoodFrame | BadFrame {
  if (at + 24 > buf.length) return { ok: false, reason: "truncated" };
  const view = new DataView(buf.buffer, buf.byteOffset + at, 24);
  const length = view.getUint32(0, true);
  if (length > 64 * 1024 * 1024) return { ok: false, reason: "length" };
  if (at + 24 + length > buf.length) return { ok: false, reason: "truncated" };
  const saltBytes = new Uint8Array(8);
  new DataView(saltBytes.buffer).setBigUint64(0, salt, true);
  const covered = concat(
    saltBytes,
    buf.subarray(at, at + 4),
    buf.subarray(at + 8, at + 24 + length),
  );
  if (view.getUint32(4, true) !== crc32c(covered)) return { ok: false, reason: "checksum" };
  const version = Number(view.getBigUint64(8, true));
  const synced = Number(view.getBigUint64(16, true));
  if (expected !== undefined && version !== expected) return { ok: false, reason: "version" };
  if (!Number.isSafeInteger(version) || version < 1 || !Number.isSafeInteger(synced)) {
    return { ok: false, reason: "version" };
  }
  const end = at + frameBytes(length);
  for (let i = at + 24 + length; i < end && i < buf.length; i++) {
    if (buf[i] !== 0) return { ok: false, reason: "checksum" };
  }
  return { ok: true, version, synced, payload: buf.subarray(at + 24, at + 24 + length), end };
}

/** A frame with any u64 version and synced (encodeFrame takes safe integers only). */
function rawFrame(salt: bigint, version: bigint, synced: bigint, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(frameBytes(payload.length));
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length, true);
  view.setBigUint64(8, version, true);
  view.setBigUint64(16, synced, true);
  out.set(payload, 24);
  const saltBytes = new Uint8Array(8);
  new DataView(saltBytes.buffer).setBigUint64(0, salt, true);
  view.setUint32(4, crc32c(concat(saltBytes, out.subarray(0, 4), out.subarray(8))), true);
  return out;
}

test("decodeFrame and FrameDecoder decode exactly as the reference decoder", () => {
  const u64 = fc.oneof(
    fc.bigInt({ min: 0n, max: 100n }),
    fc.constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 32n, 2n ** 64n - 1n),
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  );
  const frameArb = fc.record({
    version: u64,
    synced: u64,
    // Now and then one over the 64 KiB the core checksums per call.
    length: fc.oneof(
      { weight: 12, arbitrary: fc.integer({ min: 0, max: 300 }) },
      { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 70_000 }) },
    ),
    seed: fc.integer({ min: 1, max: 2 ** 31 }),
  });
  const damageArb = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
    maxLength: 3,
  });
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.array(frameArb, { minLength: 1, maxLength: 8 }),
      damageArb,
      fc.nat(),
      (salt, frames, damage, cut) => {
        const buf = concat(
          ...frames.map((f) =>
            rawFrame(salt, f.version, f.synced, pseudoRandomBytes(f.length, f.seed))
          ),
        );
        for (const [where, value] of damage) buf[where % buf.length] = value;
        const bytes = buf.subarray(0, buf.length - (cut % 9)); // sometimes cut short
        // Reference results first: they use the core's scratch region, which
        // would make the decoder copy afresh for every frame.
        const wanted: [number, number | undefined, GoodFrame | BadFrame][] = [];
        for (let at = 0; at < bytes.length; at += 8) {
          for (const expected of [undefined, Number(frames[0]!.version)]) {
            wanted.push([at, expected, referenceDecode(bytes, at, salt, expected)]);
          }
        }
        const decoder = new FrameDecoder(bytes, salt);
        for (const [at, expected, want] of wanted) {
          assert.deepEqual(decoder.decode(at, expected), want);
        }
        for (const [at, expected, want] of wanted.toReversed()) {
          assert.deepEqual(decoder.decode(at, expected), want);
        }
        for (const [at, expected, want] of wanted) {
          assert.deepEqual(decodeFrame(bytes, at, salt, expected), want);
        }
      },
    ),
    { numRuns: 100 },
  );
});

const writesArb: fc.Arbitrary<Write[]> = fc
  .uniqueArray(
    fc.record({
      key: fc.uint8Array({ maxLength: 40 }),
      value: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
    }),
    { selector: (w) => w.key.join(","), maxLength: 12 },
  );

test("applyPayload applies the writes decodeWrites decodes, and nothing if malformed", () => {
  const dump = (store: OrderedStore): string[] =>
    [...store.entries()].map(([k, v]) => `${k.join(",")}=${v.join(",")}`);
  // The model: the decoded writes applied one by one to a Map, dumped in
  // key byte order. One store serves every case, emptied first: on Bun,
  // making a store (a WebAssembly.Memory) late in the full suite took
  // 20-70 ms, and the 1,000 stores this test made took over a minute.
  const model = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  const dumpModel = (): string[] =>
    [...model.values()].sort((a, b) => compareBytes(a.key, b.key))
      .map(({ key, value }) => `${key.join(",")}=${value.join(",")}`);
  const fast = new OrderedStore();
  try {
    fc.assert(
      fc.property(
        writesArb,
        writesArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }),
        fc.integer({ min: -6, max: 6 }),
        (before, writes, damage, resize) => {
          const payload = encodeWrites(writes);
          for (const [where, value] of damage) {
            if (payload.length > 0) payload[where % payload.length] = value;
          }
          const bytes = resize <= 0
            ? payload.subarray(0, Math.max(0, payload.length + resize))
            : concat(payload, new Uint8Array(resize));
          for (const [k] of [...fast.entries()]) fast.delete(k);
          model.clear();
          for (const w of before) {
            if (w.value === null) continue;
            fast.put(w.key, w.value);
            model.set(w.key.join(","), { key: w.key, value: w.value });
          }
          const start = dump(fast);
          assert.deepEqual(start, dumpModel());
          let decoded: Write[] | undefined;
          try {
            decoded = decodeWrites(bytes);
          } catch (err) {
            assert.ok(err instanceof RangeError);
          }
          if (decoded === undefined) {
            assert.throws(() => applyPayload(fast, bytes), RangeError);
            assert.deepEqual(dump(fast), start, "a malformed payload changed the store");
            return;
          }
          for (const w of decoded) {
            const id = w.key.join(",");
            if (w.value === null) model.delete(id);
            else model.set(id, { key: w.key, value: w.value });
          }
          applyPayload(fast, bytes);
          assert.deepEqual(dump(fast), dumpModel());
          if (damage.length === 0 && resize === 0) {
            const plain = (ws: Write[]) =>
              ws.map((w) => ({ key: [...w.key], value: w.value && [...w.value] }));
            assert.deepEqual(plain(decoded), plain(writes));
          }
        },
      ),
      { numRuns: 500 },
    );
  } finally {
    fast.close();
  }
});

/**
 * Recovery of one segment by the rules of docs/FORMAT.md, from the whole file
 * at once: the reference for the windowed reader.
 */
function referenceRecovery(bytes: Uint8Array, salt: bigint, first: number): {
  versions: number[];
  payloads: Uint8Array[];
  end: number;
  bad?: { at: number; durable: boolean };
} {
  const versions: number[] = [];
  const payloads: Uint8Array[] = [];
  let at = 64;
  let expected = first;
  let synced = 0;
  while (at < bytes.length) {
    const f = decodeFrame(bytes, at, salt, expected);
    if (!f.ok) {
      let durable = expected <= synced;
      for (let p = at + 8; !durable && p + 24 <= bytes.length; p += 8) {
        const g = decodeFrame(bytes, p, salt, undefined);
        if (g.ok && g.synced >= expected) durable = true;
      }
      return { versions, payloads, end: at, bad: { at, durable } };
    }
    versions.push(f.version);
    payloads.push(f.payload);
    if (f.synced > synced) synced = f.synced;
    expected++;
    at = f.end;
  }
  return { versions, payloads, end: at };
}

test("recovery read in windows equals a whole-file scan, across window ends too", async () => {
  const windowFigures = { multiWindow: 0, huge: 0, clean: 0, torn: 0, corrupt: 0 };
  const sizeArb = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 400 }) },
    { weight: 2, arbitrary: fc.integer({ min: 20_000, max: 300_000 }) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: READ_WINDOW_BYTES - 64, max: 5 * READ_WINDOW_BYTES }),
    },
  );
  const damageArb = fc.oneof(
    fc.constant({ kind: "none" as const }),
    fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
    fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("zeros" as const), length: fc.integer({ min: 1, max: 5000 }) }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 2 ** 31 }),
      // A first frame that ends k bytes before the first window's end, so the
      // next frame's header or payload straddles it.
      fc.option(fc.constantFrom(0, 8, 16, 24, 32, 200), { nil: undefined }),
      fc.array(sizeArb, { maxLength: 60 }),
      fc.array(fc.nat({ max: 3 }), { maxLength: 60 }),
      damageArb,
      async (seed, lead, sizes, syncLags, damage) => {
        const salt = BigInt(seed) * 7919n;
        const first = 1 + (seed % 1000);
        if (lead !== undefined) sizes.unshift(READ_WINDOW_BYTES - 64 - lead - 24);
        let file: Uint8Array = new Uint8Array(sizes.reduce((n, size) => n + frameBytes(size), 64));
        file.set(encodeSegmentHeader({ firstVersion: first, salt, createdAtMs: 0 }), 0);
        let at = 64;
        let synced = 0;
        sizes.forEach((size, i) => {
          const version = first + i;
          // `synced` trails the version by a little and never falls back.
          synced = Math.max(synced, version - 1 - (syncLags[i] ?? 0));
          // Big payloads get a cheap pattern: their bytes matter less than their size.
          const payload = size <= 65536
            ? pseudoRandomBytes(size, seed + i)
            : patterned(size, seed + i);
          at = encodeFrame(file, at, salt, version, synced, payload);
        });
        if (damage.kind === "flip") {
          const where = damage.at % file.length;
          file[where] = file[where]! ^ (1 << damage.bit);
        } else if (damage.kind === "cut") {
          file = file.subarray(0, damage.at % (file.length + 1));
        } else if (damage.kind === "zeros") {
          file = concat(file, new Uint8Array(damage.length));
        }
        const fs = new SimFS({ seed });
        const path = `${DIR}/wal/${segmentName(first)}`;
        await fs.mkdir(`${DIR}/wal`);
        const handle = await fs.open(path, { create: true });
        await handle.write(file, 0);
        await handle.sync();
        await handle.close();
        await fs.syncDir(`${DIR}/wal`);

        const seen: number[] = [];
        const got: Uint8Array[] = [];
        let outcome: unknown;
        try {
          outcome = await recoverWal(fs, DIR, (v, p) => {
            seen.push(v);
            got.push(p.slice());
          }, { afterVersion: first - 1 }); // as after a checkpoint at first - 1
        } catch (err) {
          outcome = err;
        }
        const badHeader = file.length < 64 ||
          (damage.kind === "flip" && damage.at % file.length < 64);
        if (badHeader && file.length <= 64) { // a creation cut short: the segment goes
          assert.deepEqual(seen, []);
          assert.equal((outcome as Recovered).report.removedSegment, path);
          return;
        }
        if (badHeader) {
          assert.deepEqual(seen, []);
          assert.ok(outcome instanceof CorruptionError, `expected CorruptionError, got ${outcome}`);
          assert.equal(outcome.where, `${path}:0`);
          return;
        }
        const reference = referenceRecovery(file, salt, first);
        if (file.length > READ_WINDOW_BYTES) windowFigures.multiWindow++;
        if (sizes.some((size) => frameBytes(size) > 4 * READ_WINDOW_BYTES)) windowFigures.huge++;
        if (reference.bad === undefined) windowFigures.clean++;
        else if (reference.bad.durable) windowFigures.corrupt++;
        else windowFigures.torn++;
        assert.deepEqual(seen, reference.versions);
        assert.deepEqual(got, reference.payloads.map((p) => p.slice()));
        if (reference.bad?.durable === true) {
          assert.ok(outcome instanceof CorruptionError, `expected CorruptionError, got ${outcome}`);
          assert.equal(outcome.where, `${path}:${reference.bad.at}`);
          return;
        }
        assert.ok(!(outcome instanceof Error), `unexpected ${outcome}`);
        const { tail, report } = outcome as Recovered;
        assert.equal(tail?.size, reference.end);
        if (reference.bad === undefined) {
          assert.equal(report.tornTail, undefined);
        } else {
          assert.deepEqual(report.tornTail, {
            path,
            offset: reference.bad.at,
            bytes: file.length - reference.bad.at,
          });
          assert.equal(fs.files().get(path)?.length, reference.bad.at, "the tail was not cut");
        }
      },
    ),
    { numRuns: 100 },
  );
  const { multiWindow, huge, clean, torn, corrupt } = windowFigures;
  assert.ok(multiWindow >= 25 && huge >= 1, JSON.stringify(windowFigures));
  assert.ok(clean >= 3 && torn >= 3 && corrupt >= 3, JSON.stringify(windowFigures));
});
