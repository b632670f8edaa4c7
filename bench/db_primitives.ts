/**
 * The seed's benchmark table through the public Database API, on a real
 * directory: KV put/get, event append, state-cell CAS, trace record and a
 * cross-primitive transaction, each in `strict` and `batched` durability
 * with one sequential writer; 64 concurrent appenders to one event log
 * (strict); and a raw 128-byte write + fdatasync as the physical reference.
 *
 *   node --import tsx bench/db_primitives.ts [--quick]
 *   deno run -A bench/db_primitives.ts [--quick]
 *   bun bench/db_primitives.ts [--quick]
 *
 * Every row is sampled the same way in both modes (mitata's defaults: at
 * least 12 samples and ~0.7 s per row; the file takes ~20 s per runtime).
 * `--quick` prints only this file's summary; without it, mitata's own report
 * (percentiles, histograms, allocation per call) comes first.
 *
 * @module
 */
import assert from "node:assert/strict";
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { bench, group, run, summary } from "mitata";
import type { Value } from "../src/core/codec.ts";
import { Database, type Run } from "../src/db/database.ts";
import type { TraceType } from "../src/db/traces.ts";
import { randomPicks } from "./_suite_lib.ts";

const QUICK = process.argv.includes("--quick");
type Mode = "strict" | "batched";
const MODES: readonly Mode[] = ["strict", "batched"];

const dirs: string[] = [];
const dbs: Database[] = [];
const newDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "in-mem-bench-db-"));
  dirs.push(d);
  return d;
};
const open = async (durability: Mode): Promise<Database> => {
  const db = await Database.open(newDir(), { durability });
  dbs.push(db);
  return db;
};

// Keys are made before timing starts, as slices of one list: the rows
// measure operations, not key building.
const STORED = 10_000;
const PUT_POOL = 1 << 16;
const KEYS = Array.from(
  { length: STORED + PUT_POOL },
  (_, i) => `key/${i.toString(36).padStart(8, "0")}`,
);
const GET_KEYS = KEYS.slice(0, STORED);
const PUT_KEYS = KEYS.slice(STORED);
// Random reads among the stored keys (the peer suite's fixed-seed picks).
const PICKS = randomPicks(STORED);
const VALUE = "v".repeat(100); // a 100-byte string value
const TAGS = ["bench", "tool"];
const toolCall = (i: number): TraceType => ({
  kind: "tool_call",
  toolName: "search",
  arguments: { q: "weather", i },
});

/** Operations per benchmark call, by row name (the concurrent row does 64 per call). */
const PER_CALL = new Map<string, number>();
function b(name: string, per: number, fn: () => unknown): void {
  PER_CALL.set(name, per);
  bench(name, fn);
}

/** One database per durability mode, with a run and the fixtures each row needs. */
interface Fixture {
  mode: Mode;
  db: Database;
  run: Run;
  parent: string;
  /** The state cells' versions, read once after init; the CAS rows move them on. */
  cellVersion: number;
  txCellVersion: number;
}

async function fixture(mode: Mode): Promise<Fixture> {
  const db = await open(mode);
  const r = await db.runs.create({ name: `bench-${mode}` });
  // The 10,000 keys the get row reads: 10 transactions of 1,000 puts.
  for (let at = 0; at < STORED; at += 1_000) {
    await r.transaction(async (tx) => {
      for (const k of GET_KEYS.slice(at, at + 1_000)) await tx.kv.put(k, VALUE);
    });
  }
  const parent = await r.traces.record({ kind: "thought", content: "root of the bench traces" });
  await r.state.init("cell", 0);
  await r.state.init("txCell", 0);
  const cellVersion = (await r.state.read("cell"))!.version;
  const txCellVersion = (await r.state.read("txCell"))!.version;
  return { mode, db, run: r, parent, cellVersion, txCellVersion };
}

function rows(f: Fixture): void {
  const { mode, run: r, parent } = f;
  let put = 0;
  let pick = 0;
  let event = 0;
  let trace = 0;
  b(`${mode}: KV put`, 1, () => r.kv.put(PUT_KEYS[put++ & (PUT_POOL - 1)]!, VALUE));
  b(`${mode}: KV get`, 1, () => r.kv.get(GET_KEYS[PICKS[pick++ & 0xffff]!]!));
  b(`${mode}: event append`, 1, () => r.events.append("tick", { i: event++ }));
  // CAS: the version was read once; each call moves it on by one.
  let version = f.cellVersion;
  b(`${mode}: state-cell CAS`, 1, async () => {
    version = await r.state.cas("cell", version, version);
  });
  b(
    `${mode}: trace record`,
    1,
    () => r.traces.record(toolCall(trace++), { parentId: parent, tags: TAGS }),
  );
  let txVersion = f.txCellVersion;
  b(`${mode}: cross-primitive txn`, 1, async () => {
    const i = event++;
    txVersion = await r.transaction(async (tx) => {
      await tx.kv.put(PUT_KEYS[put++ & (PUT_POOL - 1)]!, VALUE);
      await tx.events.append("tick", { i });
      const v = await tx.state.cas("txCell", txVersion, i as Value);
      await tx.traces.record(toolCall(i), { parentId: parent, tags: TAGS });
      return v;
    });
  });
}

// The physical reference: one 128-byte append + fdatasync, as a strict commit needs at least.
const rawFd = openSync(join(newDir(), "raw"), "w");
const record = new Uint8Array(128).fill(7);
let rawPos = 0;

const RAW = "raw write+fdatasync 128 B";
const CONCURRENT = "strict: 64 concurrent appenders";
let output = "";
try {
  const fixtures: Fixture[] = [];
  for (const mode of MODES) fixtures.push(await fixture(mode));
  // The concurrent appenders get a database of their own, so its conflict
  // count is theirs alone.
  const concDb = await open("strict");
  const concRun = await concDb.runs.create({ name: "bench-concurrent" });
  let concAppends = 0;
  const conflictsBefore = (await concDb.stats()).conflicts;

  group("database primitives, single sequential writer", () => {
    summary(() => {
      b(RAW, 1, () => {
        writeSync(rawFd, record, 0, record.length, rawPos);
        rawPos += record.length;
        fdatasyncSync(rawFd);
      });
      for (const f of fixtures) rows(f);
    });
  });
  group("concurrency", () => {
    b(CONCURRENT, 64, () =>
      Promise.all(
        Array.from({ length: 64 }, () => {
          const i = concAppends++;
          return concRun.events.append("tick", { i });
        }),
      ));
  });

  const result = await run(QUICK ? { print: () => {} } : {});

  // Outside timing: the 64 appenders left one valid chain with no gaps, and never conflicted.
  const chain = await concRun.events.verifyChain();
  assert.equal(chain.valid, true, `the concurrent appenders broke the chain: ${chain.error}`);
  assert.equal(chain.length, concAppends, "the chain is not as long as the appends made");
  const conflicts = (await concDb.stats()).conflicts - conflictsBefore;
  assert.equal(conflicts, 0, `the concurrent appenders conflicted ${conflicts} times`);
  const singleConflicts: string[] = [];
  for (const f of fixtures) {
    singleConflicts.push(`${f.mode} ${(await f.db.stats()).conflicts}`);
  }

  // ops/s per row: from the median and the mean of mitata's samples.
  const median = new Map<string, number>();
  const lines: string[] = [];
  for (const trial of result.benchmarks) {
    for (const r of trial.runs) {
      const per = PER_CALL.get(r.name);
      if (r.stats === undefined || per === undefined) {
        if (r.error !== undefined) throw r.error;
        continue;
      }
      const med = (1e9 / r.stats.p50) * per;
      const mean = (1e9 / r.stats.avg) * per;
      median.set(r.name, med);
      lines.push(`${r.name.padEnd(34)} median ${fmt(med)} ops/s | mean ${fmt(mean)}`);
    }
  }

  const raw = median.get(RAW)!;
  const table = [
    `${"row".padEnd(24)} ${"strict ops/s".padStart(13)} ${"batched ops/s".padStart(13)} ${
      "strict/raw".padStart(10)
    }`,
    `${"raw write+fdatasync 128B".padEnd(24)} ${fmt(raw).padStart(13)} ${"-".padStart(13)} ${
      "1.00".padStart(10)
    }`,
  ];
  const ROWS = [
    "KV put",
    "KV get",
    "event append",
    "state-cell CAS",
    "trace record",
    "cross-primitive txn",
  ];
  for (const name of ROWS) {
    const s = median.get(`strict: ${name}`)!;
    const bt = median.get(`batched: ${name}`)!;
    table.push(
      `${name.padEnd(24)} ${fmt(s).padStart(13)} ${fmt(bt).padStart(13)} ${
        (s / raw).toFixed(2).padStart(10)
      }`,
    );
  }
  const c = median.get(CONCURRENT)!;
  table.push(
    `${"64 concurrent appends".padEnd(24)} ${fmt(c).padStart(13)} ${"-".padStart(13)} ${
      (c / raw).toFixed(2).padStart(10)
    }`,
  );
  const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
  output = [
    `\ndatabase primitives (${runtime}${QUICK ? ", --quick" : ""}), ops/s from the median`,
    ...table,
    ``,
    `per row, median and mean:`,
    ...lines,
    ``,
    `64 concurrent appenders: ${concAppends} appends, chain valid, 0 conflicts; ` +
    `conflicts in the single-writer databases: ${singleConflicts.join(", ")}`,
  ].join("\n");
} finally {
  closeSync(rawFd);
  for (const db of dbs) await db.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
console.log(output);

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
