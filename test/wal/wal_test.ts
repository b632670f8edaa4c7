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
import { CorruptionError, StorageError } from "../../src/errors.ts";
import { SIM_CRASH_MODES, type SimCrashMode, SimFS, type SimFSOptions } from "../../src/fs/sim.ts";
import { recoverWal } from "../../src/wal/recover.ts";
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
