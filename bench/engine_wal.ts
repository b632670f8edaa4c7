/**
 * The engine on a real directory: commit throughput in each durability mode
 * next to the physical limit of this disk (a raw 128-byte write + fdatasync),
 * read-only transactions, recovery replay speed and checkpoint write speed.
 *
 *   node --import tsx bench/engine_wal.ts [--quick]
 *   deno run -A bench/engine_wal.ts [--quick]
 *   bun bench/engine_wal.ts [--quick]
 *
 * @module
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { bench, group, run, summary } from "mitata";
import { NodeFileAdapter } from "../src/fs/node.ts";
import { type OpenEngine, openEngine } from "../src/engine/open.ts";

const QUICK = process.argv.includes("--quick");
const RECOVERY_RECORDS = QUICK ? 50_000 : 200_000;
const VALUE = new Uint8Array(100).fill(0x61);
const fs = new NodeFileAdapter();
const dirs: string[] = [];
const opened: OpenEngine[] = [];
const newDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "in-mem-bench-"));
  dirs.push(d);
  return d;
};
// Keys are made before timing starts (the rows measure commits, not key
// building), as views into one buffer: a million separate ArrayBuffers would
// make the garbage collector part of every row.
const KEY_POOL = 1 << 20;
const KEY_BYTES = 12;
const keyBytes = new Uint8Array(KEY_POOL * KEY_BYTES);
const keys = Array.from({ length: KEY_POOL }, (_, i) => {
  const k = keyBytes.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES);
  k.set(new TextEncoder().encode(`key/${i.toString(36).padStart(8, "0")}`));
  return k;
});
let seq = 0;
const key = (): Uint8Array => keys[seq++ & (KEY_POOL - 1)]!;

/** Operations per benchmark call, by name (a concurrent row commits many per call). */
const PER_CALL = new Map<string, number>();
function b(name: string, per: number, fn: () => unknown): void {
  PER_CALL.set(name, per);
  bench(name, fn);
}

// The physical limit: one 128-byte append + fdatasync, as a strict commit needs at least.
const rawPath = join(newDir(), "raw");
const rawFd = openSync(rawPath, "w");
const record = new Uint8Array(128).fill(7);
let rawPos = 0;

const strict = await openEngine({ dir: newDir(), fs, durability: "strict" });
const batched = await openEngine({ dir: newDir(), fs, durability: "batched" });
const none = await openEngine({});
opened.push(strict, batched, none);
const put = (db: OpenEngine) => () => db.engine.transaction((tx) => tx.put(key(), VALUE));

group("commit of one 100-byte put", () => {
  summary(() => {
    b("raw write+fdatasync 128 B", 1, () => {
      writeSync(rawFd, record, 0, record.length, rawPos);
      rawPos += record.length;
      fdatasyncSync(rawFd);
    });
    b("strict, 1 writer", 1, put(strict));
    b(
      "strict, 64 concurrent writers",
      64,
      () => Promise.all(Array.from({ length: 64 }, put(strict))),
    );
    b("batched, 1 writer", 1, put(batched));
    b("none, 1 writer", 1, put(none));
  });
});

{
  const k = new TextEncoder().encode("hot");
  await none.engine.transaction((tx) => tx.put(k, VALUE));
  group("read-only transaction", () => {
    b("read-only txn, one get", 1, () => none.engine.transaction((tx) => tx.get(k)));
  });
}

const { benchmarks } = await run();
const rows: string[] = [];
for (const trial of benchmarks) {
  for (const r of trial.runs) {
    const per = PER_CALL.get(r.name);
    if (r.stats === undefined || per === undefined) continue;
    const rate = (ns: number): string =>
      Math.round((1e9 / ns) * per).toLocaleString("en-US").padStart(11);
    rows.push(`${r.name.padEnd(32)} median ${rate(r.stats.p50)} ops/s | mean ${rate(r.stats.avg)}`);
  }
}

// Recovery: replay a WAL of RECOVERY_RECORDS single-put commits.
const recDir = newDir();
{
  const db = await openEngine({ dir: recDir, fs, durability: "batched", checkpointAfterBytes: 0 });
  const batch: Promise<void>[] = [];
  for (let i = 0; i < RECOVERY_RECORDS; i++) {
    batch.push(db.engine.transaction((tx) => tx.put(key(), VALUE)));
    if (batch.length === 1000) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  await db.close();
}
// The first open in this process runs cold (the replay code is not compiled
// yet); later ones show the steady rate. Both are reported.
const replayMs: number[] = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  const db = await openEngine({ dir: recDir, fs, checkpointAfterBytes: 0 });
  replayMs.push(performance.now() - t0);
  await db.close();
}
const rate = (ms: number): string =>
  Math.round(RECOVERY_RECORDS / (ms / 1000)).toLocaleString("en-US");
const warm = replayMs.slice(1).sort((a, b) => a - b);
const warmMedian = (warm[1]! + warm[2]!) / 2;
rows.push(
  `${"recovery replay, first open".padEnd(32)} ${
    rate(replayMs[0]!)
  } records/s (${RECOVERY_RECORDS} records in ${replayMs[0]!.toFixed(0)} ms)`,
  `${"recovery replay, median of 4".padEnd(32)} ${rate(warmMedian)} records/s (${
    warmMedian.toFixed(0)
  } ms)`,
);
const recovered = await openEngine({ dir: recDir, fs, checkpointAfterBytes: 0 });
let t = performance.now();
const info = (await recovered.checkpoint())!;
const ckptMs = performance.now() - t;
rows.push(
  `${"checkpoint write".padEnd(32)} ${
    (info.bytes / 1e6 / (ckptMs / 1000)).toFixed(0)
  } MB/s (${info.entries} entries, ${(info.bytes / 1e6).toFixed(1)} MB in ${ckptMs.toFixed(0)} ms)`,
);
await recovered.close();
t = performance.now();
const fromCheckpoint = await openEngine({ dir: recDir, fs, checkpointAfterBytes: 0 });
const loadMs = performance.now() - t;
rows.push(
  `${"recovery from checkpoint".padEnd(32)} ${
    Math.round(info.entries / (loadMs / 1000)).toLocaleString("en-US")
  } entries/s (${loadMs.toFixed(0)} ms)`,
);
await fromCheckpoint.close();

closeSync(rawFd);
for (const db of opened) await db.close();
for (const d of dirs) rmSync(d, { recursive: true, force: true });
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
console.log(`\nthroughput (${runtime})\n${rows.join("\n")}`);
