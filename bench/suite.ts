/**
 * The peer suite: the agent workloads through the public Database API, next
 * to the stores a user would otherwise pick, in one run on one runtime —
 * Deno KV (Deno), lmdb-js (where it loads), better-sqlite3 (Node),
 * `bun:sqlite` (Bun) — and the raw write+fdatasync rate of this disk. Each
 * peer runs at the durability of the row it is on, stated on the row.
 *
 *   npm run bench [-- --quick]            all three runtimes, then BENCHMARKS.md
 *   node --import tsx bench/suite.ts [--quick] [--json out.json]
 *   deno run -A --unstable-kv bench/suite.ts [--quick] [--json out.json]
 *   bun bench/suite.ts [--quick] [--json out.json]
 *
 * `--quick` samples each row for less time and recovers a smaller database
 * (100,000 records instead of 1,000,000). `--json` writes the rows for the
 * report (bench/_suite_report.ts); the console gets a short summary.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  closeSync,
  fdatasyncSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Database, type Run, type TraceType, TransactionConflictError } from "../mod.ts";
import {
  type AppendersOutcome,
  fmtInt,
  FULL_BUDGET,
  INTERLEAVED_ROUNDS,
  type PeerInfo,
  QUICK_BUDGET,
  randomPicks,
  RAW,
  RAW_PREALLOCATED,
  RAW_WRITE,
  type RecoveryOutcome,
  type Row,
  type RowJob,
  type RowSpec,
  runtimeName,
  runtimeVersion,
  SELF,
  type SuiteResult,
  timeInterleaved,
  timeRow,
} from "./_suite_lib.ts";
import {
  type DenoKv,
  denoOpenKv,
  loadLmdb,
  loadSqlite,
  packageVersion,
  type SqlDatabase,
  sqliteModes,
  sqliteVersion,
} from "./_suite_peers.ts";

const QUICK = process.argv.includes("--quick");
const jsonAt = process.argv.indexOf("--json");
const JSON_PATH = jsonAt >= 0 ? process.argv[jsonAt + 1] : undefined;
const BUDGET = QUICK ? QUICK_BUDGET : FULL_BUDGET;
const RECOVERY_RECORDS = QUICK ? 100_000 : 1_000_000;
const RECOVERY_TXN_PUTS = 5_000;
/** Bytes zero-filled ahead for the preallocated raw row; it wraps around at the end. */
const RAW_PREALLOCATED_BYTES = 16 * 1024 * 1024;
/** The raw write row's file is cut back to empty when it reaches this size. */
const RAW_WRITE_MAX_BYTES = 64 * 1024 * 1024;

const started = performance.now();
const startedAt = new Date().toISOString();
const loadAvgStart = loadavg();

const dirs: string[] = [];
const newDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "in-mem-suite-"));
  dirs.push(d);
  return d;
};
/** Closed at the end, newest first; each peer adds its own. */
const closers: (() => unknown)[] = [];

// Keys and picks are made before timing starts: the rows measure the stores,
// not key building.
const GROUPS = 100;
const PER_GROUP = 1_000;
const STORED = GROUPS * PER_GROUP;
const group3 = (g: number): string => g.toString().padStart(3, "0");
const item4 = (i: number): string => i.toString().padStart(4, "0");
/** The 100,000 stored keys: 100 prefixes `g/NNN/` of 1,000 keys each. */
const GET_KEYS = Array.from(
  { length: STORED },
  (_, i) => `g/${group3(Math.floor(i / PER_GROUP))}/${item4(i % PER_GROUP)}`,
);
const PUT_POOL = 1 << 16;
const PUT_KEYS = Array.from({ length: PUT_POOL }, (_, i) => `p/${i.toString(36).padStart(6, "0")}`);
/** Random reads among the stored keys. */
const PICKS = randomPicks(STORED);
const VALUE = "v".repeat(100); // 100 bytes as UTF-8
const TAGS = ["bench", "tool"];
const toolCall = (i: number): TraceType => ({
  kind: "tool_call",
  toolName: "search",
  arguments: { q: "weather", i },
});

const STRICT = "strict: resolves after an fdatasync that covers it (group commit)";
const BATCHED = "batched: resolves after the OS write; fsync every 100 ms";
const READ = "read";

/**
 * The workloads with a peer whose rates follow the disk's: their rows are
 * timed in turn with each other (bench/_suite_lib.ts timeInterleaved), after
 * every subject has set up, so each ratio compares the stores on the same
 * disk rather than the disk at different times.
 */
const INTERLEAVED = new Set(["put.strict1", "put.strict64", "cas.strict1"]);

const rows: Row[] = [];
const peers: PeerInfo[] = [];
/** Rows of the {@link INTERLEAVED} workloads, timed by {@link interleavedRows}. */
const deferred: RowJob[] = [];
async function row(spec: RowSpec, fn: () => unknown): Promise<void> {
  if (INTERLEAVED.has(spec.workload)) deferred.push({ spec, fn });
  else report(await timeRow(spec, fn, BUDGET));
}

function report(r: Row): void {
  rows.push(r);
  console.log(
    `${r.workload.padEnd(16)} ${r.subject.padEnd(40)} ${fmtInt(r.opsPerSec).padStart(11)} ops/s`,
  );
}

/** Times the deferred rows, one workload at a time, each workload's rows in turn. */
async function interleavedRows(): Promise<void> {
  for (const workload of INTERLEAVED) {
    const jobs = deferred.filter((j) => j.spec.workload === workload);
    for (const r of await timeInterleaved(jobs, BUDGET, INTERLEAVED_ROUNDS)) report(r);
  }
}

try {
  await rawRows();
  await selfRows();
  const appenders = await appendersRow();
  await denoKvRows();
  await lmdbRows();
  await sqliteRows();
  await interleavedRows();
  const recovery = await recoveryFigures();
  const result: SuiteResult = {
    runtime: runtimeName(),
    runtimeVersion: runtimeVersion(),
    quick: QUICK,
    startedAt,
    durationMs: performance.now() - started,
    loadAvgStart,
    loadAvgEnd: loadavg(),
    peers,
    rows,
    appenders,
    recovery,
  };
  if (JSON_PATH !== undefined) writeFileSync(JSON_PATH, JSON.stringify(result, null, 2));
  console.log(
    `\n${result.runtime} ${result.runtimeVersion}: ${rows.length} rows in ${
      (result.durationMs / 1000).toFixed(1)
    } s; recovery of ${fmtInt(recovery.records)} records: ${recovery.firstOpenMs.toFixed(0)} ms; ` +
      `64 appenders: ${fmtInt(appenders.appends)} appends, ${appenders.exhausted} exhausted`,
  );
} finally {
  for (const close of closers.reverse()) await close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/**
 * The physical limits: one 128-byte write + fdatasync, as a strict commit
 * needs at least — appended (the file grows each time), and in place over a
 * preallocated file (what the WAL does; the cheaper of the two on ext4) —
 * and one 128-byte write with no fsync, appended, as a batched commit needs
 * at least (one write to the OS per awaited commit).
 */
async function rawRows(): Promise<void> {
  const record = new Uint8Array(128).fill(7);
  /** A new file for one raw row, closed when the suite ends. */
  const rawFile = (name: string): number => {
    const fd = openSync(join(newDir(), name), "w");
    closers.push(() => closeSync(fd));
    return fd;
  };
  const fd = rawFile("raw");
  let at = 0;
  await row(
    { workload: "put.strict1", subject: RAW, durability: "fdatasync after each append" },
    () => {
      writeSync(fd, record, 0, record.length, at);
      at += record.length;
      fdatasyncSync(fd);
    },
  );
  const pre = rawFile("raw-preallocated");
  writeSync(pre, new Uint8Array(RAW_PREALLOCATED_BYTES), 0, RAW_PREALLOCATED_BYTES, 0);
  fdatasyncSync(pre);
  let over = 0;
  await row(
    {
      workload: "put.strict1",
      subject: RAW_PREALLOCATED,
      durability: "fdatasync after each write in place",
    },
    () => {
      writeSync(pre, record, 0, record.length, over);
      over = (over + record.length) % RAW_PREALLOCATED_BYTES;
      fdatasyncSync(pre);
    },
  );
  const grow = rawFile("raw-write");
  let end = 0;
  await row(
    { workload: "put.batched", subject: RAW_WRITE, durability: "the OS write only, appended" },
    () => {
      writeSync(grow, record, 0, record.length, end);
      end += record.length;
      if (end >= RAW_WRITE_MAX_BYTES) {
        ftruncateSync(grow, 0);
        end = 0;
      }
    },
  );
}

async function openSelf(durability: "strict" | "batched"): Promise<Database> {
  const db = await Database.open(newDir(), { durability });
  closers.push(() => db.close());
  return db;
}

/** This library's rows: every workload in strict and batched durability. */
async function selfRows(): Promise<void> {
  const strict = await (await openSelf("strict")).runs.create({ name: "strict" });
  const batched = await (await openSelf("batched")).runs.create({ name: "batched" });
  // The stored keys the get and list rows read: transactions of 1,000 puts.
  for (let at = 0; at < STORED; at += PER_GROUP) {
    await batched.transaction(async (tx) => {
      for (let i = at; i < at + PER_GROUP; i++) await tx.kv.put(GET_KEYS[i]!, VALUE);
    });
  }
  let put = 0;
  const nextPut = (): string => PUT_KEYS[put++ & (PUT_POOL - 1)]!;
  const self = (workload: string, durability: string, opsPerCall = 1): RowSpec => ({
    workload,
    subject: SELF,
    durability,
    opsPerCall,
  });

  await row(self("put.strict1", STRICT), () => strict.kv.put(nextPut(), VALUE));
  await row(
    self("put.strict64", STRICT, 64),
    () => Promise.all(Array.from({ length: 64 }, () => strict.kv.put(nextPut(), VALUE))),
  );
  await row(self("put.batched", BATCHED), () => batched.kv.put(nextPut(), VALUE));
  let pick = 0;
  await row(self("get", READ), () => batched.kv.get(GET_KEYS[PICKS[pick++ & 0xffff]!]!));
  assert.equal((await batched.kv.entries("g/007/")).length, PER_GROUP);
  let listed = 0;
  await row(self("list", READ), () => batched.kv.entries(`g/${group3(listed++ % GROUPS)}/`));

  await primitiveRows("strict1", strict, STRICT);
  await primitiveRows("batched", batched, BATCHED);
}

/** Event append, state-cell CAS, trace record and the cross-primitive transaction on one run. */
async function primitiveRows(mode: string, r: Run, durability: string): Promise<void> {
  const spec = (workload: string): RowSpec => ({
    workload: `${workload}.${mode}`,
    subject: SELF,
    durability,
  });
  let event = 0;
  let put = 0;
  await row(spec("append"), () => r.events.append("tick", { i: event++ }));
  await r.state.init("cell", 0);
  // The version is read once; each call moves it on by one.
  let version = (await r.state.read("cell"))!.version;
  await row(spec("cas"), async () => {
    version = await r.state.cas("cell", version, version);
  });
  const parent = await r.traces.record({ kind: "thought", content: "root of the bench traces" });
  let trace = 0;
  await row(
    spec("trace"),
    () => r.traces.record(toolCall(trace++), { parentId: parent, tags: TAGS }),
  );
  await r.state.init("txCell", 0);
  let txVersion = (await r.state.read("txCell"))!.version;
  await row(spec("txn"), async () => {
    const i = event++;
    txVersion = await r.transaction(async (tx) => {
      await tx.kv.put(`t/${(put++ & 0xffff).toString(36)}`, VALUE);
      await tx.events.append("tick", { i });
      const v = await tx.state.cas("txCell", txVersion, i);
      await tx.traces.record(toolCall(i), { parentId: parent, tags: TAGS });
      return v;
    });
  });
}

/**
 * 64 concurrent appenders to one run's log, strict, in a database of their
 * own so its conflict count is theirs alone; afterwards the chain must be
 * whole and every append accounted for.
 */
async function appendersRow(): Promise<AppendersOutcome> {
  const db = await openSelf("strict");
  const r = await db.runs.create({ name: "appenders" });
  const conflictsBefore = (await db.stats()).conflicts;
  let appends = 0;
  let exhausted = 0;
  await row(
    { workload: "append.strict64", subject: SELF, durability: STRICT, opsPerCall: 64 },
    async () => {
      const settled = await Promise.allSettled(
        Array.from({ length: 64 }, () => r.events.append("tick", { i: appends++ })),
      );
      for (const s of settled) {
        if (s.status === "fulfilled") continue;
        if (!(s.reason instanceof TransactionConflictError)) throw s.reason;
        exhausted++;
      }
    },
  );
  const chain = await r.events.verifyChain();
  return {
    appends,
    exhausted,
    conflicts: (await db.stats()).conflicts - conflictsBefore,
    chainValid: chain.valid && chain.length === appends - exhausted,
    chainLength: chain.length,
  };
}

/** Deno KV on a file (Deno only): set, get, list, atomic check+set. */
async function denoKvRows(): Promise<void> {
  const openKv = denoOpenKv();
  if (typeof openKv === "string") {
    peers.push({ name: "Deno KV", unavailable: openKv });
    return;
  }
  const kv: DenoKv = await openKv(join(newDir(), "kv.sqlite3"));
  closers.push(() => kv.close());
  peers.push({ name: "Deno KV", version: `Deno ${runtimeVersion()}` });
  const subject = "Deno KV";
  const durable = "Deno KV default: resolves after its SQLite commit (fsync)";
  const key = (k: string): string[] => k.split("/");
  for (let at = 0; at < STORED; at += 500) {
    let op = kv.atomic();
    for (let i = at; i < at + 500; i++) op = op.set(key(GET_KEYS[i]!), VALUE);
    assert.ok((await op.commit()).ok);
  }
  let put = 0;
  const nextPut = (): string[] => key(PUT_KEYS[put++ & (PUT_POOL - 1)]!);
  await row(
    { workload: "put.strict1", subject, durability: durable },
    () => kv.set(nextPut(), VALUE),
  );
  await row(
    { workload: "put.strict64", subject, durability: durable, opsPerCall: 64 },
    () => Promise.all(Array.from({ length: 64 }, () => kv.set(nextPut(), VALUE))),
  );
  let pick = 0;
  await row(
    { workload: "get", subject, durability: READ },
    () => kv.get(key(GET_KEYS[PICKS[pick++ & 0xffff]!]!)),
  );
  const list = async (prefix: string[]): Promise<number> => {
    let n = 0;
    for await (const _ of kv.list({ prefix })) n++;
    return n;
  };
  assert.equal(await list(["g", "007"]), PER_GROUP);
  let listed = 0;
  await row(
    { workload: "list", subject, durability: READ },
    () => list(["g", group3(listed++ % GROUPS)]),
  );
  let stamp = (await kv.set(["cell"], 0)).versionstamp;
  let n = 0;
  await row(
    { workload: "cas.strict1", subject: `${subject} check+set`, durability: durable },
    async () => {
      const r = await kv.atomic().check({ key: ["cell"], versionstamp: stamp }).set(["cell"], n++)
        .commit();
      if (!r.ok || r.versionstamp === undefined) throw new Error("Deno KV check+set lost");
      stamp = r.versionstamp;
    },
  );
}

/** lmdb-js: durable (overlappingSync off), its default, and noSync. */
async function lmdbRows(): Promise<void> {
  const lmdb = await loadLmdb();
  if (typeof lmdb === "string") {
    peers.push({ name: "lmdb-js", unavailable: lmdb });
    return;
  }
  peers.push({ name: "lmdb-js", version: packageVersion("lmdb") });
  const openAt = (options: { overlappingSync?: boolean; noSync?: boolean }) => {
    const db = lmdb.open<string, string>({ path: join(newDir(), "data.mdb"), ...options });
    closers.push(() => db.close());
    return db;
  };
  const durable = openAt({ overlappingSync: false });
  const overlapping = openAt({});
  const noSync = openAt({ noSync: true });
  const DURABLE = "overlappingSync off: resolves after the commit's fdatasync";
  const OVERLAPPING = "lmdb-js default (overlappingSync): resolves at commit, fdatasync follows";
  const NO_SYNC = "noSync: never fsyncs";
  const S = "lmdb-js";

  durable.transactionSync(() => {
    for (const k of GET_KEYS) durable.putSync(k, VALUE);
  });
  let put = 0;
  const nextPut = (): string => PUT_KEYS[put++ & (PUT_POOL - 1)]!;
  await row(
    { workload: "put.strict1", subject: S, durability: DURABLE },
    () => durable.put(nextPut(), VALUE),
  );
  await row(
    { workload: "put.strict64", subject: S, durability: DURABLE, opsPerCall: 64 },
    () => Promise.all(Array.from({ length: 64 }, () => durable.put(nextPut(), VALUE))),
  );
  await row(
    { workload: "put.batched", subject: `${S} default`, durability: OVERLAPPING },
    () => overlapping.put(nextPut(), VALUE),
  );
  await row(
    { workload: "put.batched", subject: `${S} noSync`, durability: NO_SYNC },
    () => noSync.put(nextPut(), VALUE),
  );
  let pick = 0;
  await row(
    { workload: "get", subject: S, durability: READ },
    () => durable.get(GET_KEYS[PICKS[pick++ & 0xffff]!]!),
  );
  const list = (prefix: string): number => {
    let n = 0;
    for (const _ of durable.getRange({ start: prefix, end: `${prefix}\uffff` })) n++;
    return n;
  };
  assert.equal(list("g/007/"), PER_GROUP);
  let listed = 0;
  await row(
    { workload: "list", subject: S, durability: READ },
    () => list(`g/${group3(listed++ % GROUPS)}/`),
  );
  // CAS: a write transaction that reads the cell and writes it only if unchanged.
  for (
    const [workload, db, subject, durability] of [
      ["cas.strict1", durable, `${S} txn check+put`, DURABLE],
      ["cas.batched", overlapping, `${S} default, txn check+put`, OVERLAPPING],
    ] as const
  ) {
    await db.put("cell", "0");
    let expected = 0;
    await row({ workload, subject, durability }, async () => {
      const ok = await db.transaction(() => {
        if (db.get("cell") !== String(expected)) return false;
        db.putSync("cell", String(expected + 1));
        return true;
      });
      if (!ok) throw new Error("lmdb-js check+put lost");
      expected++;
    });
  }
}

/** SQLite in WAL mode at synchronous=FULL and NORMAL: better-sqlite3 (Node) or bun:sqlite (Bun). */
async function sqliteRows(): Promise<void> {
  const driver = await loadSqlite();
  if (typeof driver === "string") {
    peers.push({ name: "SQLite", unavailable: driver });
    return;
  }
  const openAt = (synchronous: "FULL" | "NORMAL") => {
    const db = driver.open(join(newDir(), "db.sqlite"));
    closers.push(() => db.close());
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${synchronous}`);
    db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID");
    db.exec("CREATE TABLE cell (name TEXT PRIMARY KEY, version INTEGER NOT NULL, v TEXT NOT NULL)");
    db.exec("INSERT INTO cell VALUES ('cell', 0, '0')");
    const modes = sqliteModes(db);
    assert.equal(modes.journal, "WAL");
    assert.equal(modes.synchronous, synchronous);
    return { db, subject: `${driver.name} ${synchronous}`, modes };
  };
  const full = openAt("FULL");
  const normal = openAt("NORMAL");
  peers.push({
    name: driver.name,
    version: `${driver.version === "" ? "" : `${driver.version}, `}SQLite ${
      sqliteVersion(full.db)
    }`,
  });
  const FULL = `WAL, synchronous=${full.modes.synchronous}: each commit fsyncs the WAL`;
  const NORMAL = `WAL, synchronous=${normal.modes.synchronous}: no fsync at commit`;
  const stmts = (db: SqlDatabase) => ({
    put: db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)"),
    get: db.prepare("SELECT v FROM kv WHERE k = ?"),
    list: db.prepare("SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k"),
    cas: db.prepare(
      "UPDATE cell SET version = version + 1, v = ? WHERE name = 'cell' AND version = ?",
    ),
  });
  const f = stmts(full.db);
  const nm = stmts(normal.db);
  full.db.transaction(() => {
    for (const k of GET_KEYS) f.put.run(k, VALUE);
  })();
  let put = 0;
  const nextPut = (): string => PUT_KEYS[put++ & (PUT_POOL - 1)]!;
  await row(
    { workload: "put.strict1", subject: full.subject, durability: FULL },
    () => f.put.run(nextPut(), VALUE),
  );
  await row(
    {
      workload: "put.strict64",
      subject: full.subject,
      durability: FULL,
      opsPerCall: 64,
      note: "a synchronous API: the 64 commits run one after another",
    },
    () => {
      for (let i = 0; i < 64; i++) f.put.run(nextPut(), VALUE);
    },
  );
  await row(
    { workload: "put.batched", subject: normal.subject, durability: NORMAL },
    () => nm.put.run(nextPut(), VALUE),
  );
  let pick = 0;
  await row(
    { workload: "get", subject: full.subject, durability: READ },
    () => f.get.get(GET_KEYS[PICKS[pick++ & 0xffff]!]!),
  );
  // `0` follows `/`: [prefix, prefix with its last `/` raised) holds exactly the prefix's keys.
  const list = (g: string) => f.list.all(`g/${g}/`, `g/${g}0`);
  assert.equal(list("007").length, PER_GROUP);
  let listed = 0;
  await row(
    { workload: "list", subject: full.subject, durability: READ },
    () => list(group3(listed++ % GROUPS)),
  );
  for (
    const [workload, s, subject, durability] of [
      ["cas.strict1", f, full.subject, FULL],
      ["cas.batched", nm, normal.subject, NORMAL],
    ] as const
  ) {
    let version = 0;
    await row({ workload, subject: `${subject} UPDATE … WHERE version`, durability }, () => {
      if (Number(s.cas.run(String(version + 1), version).changes) !== 1) {
        throw new Error("SQLite compare-and-set lost");
      }
      version++;
    });
  }
}

/**
 * A database of RECOVERY_RECORDS KV entries of 100 bytes, written with the
 * default checkpoint settings and closed: how long opening it takes (first
 * open in this process, then the median of reopens, then after an explicit
 * checkpoint), and the store's memory for the entries against their raw bytes.
 */
async function recoveryFigures(): Promise<RecoveryOutcome> {
  const dir = newDir();
  const recKey = (i: number): string => `rec/${i.toString().padStart(7, "0")}`;
  let rawBytes = 0;
  {
    const db = await Database.open(dir, { durability: "batched" });
    const r = await db.runs.create({ name: "recovery" });
    for (let at = 0; at < RECOVERY_RECORDS; at += RECOVERY_TXN_PUTS) {
      await r.transaction(async (tx) => {
        for (let i = at; i < Math.min(at + RECOVERY_TXN_PUTS, RECOVERY_RECORDS); i++) {
          const k = recKey(i);
          rawBytes += k.length + VALUE.length; // ASCII: characters are bytes
          await tx.kv.put(k, VALUE);
        }
      });
    }
    await db.close();
  }
  const timedOpen = async (): Promise<[number, Database]> => {
    const t0 = performance.now();
    const db = await Database.open(dir);
    return [performance.now() - t0, db];
  };
  const [firstOpenMs, first] = await timedOpen();
  const stats = await first.stats();
  assert.equal((await first.runs.query({})).length, 1); // the run came back too
  await first.close();
  const reopenMs: number[] = [];
  for (let i = 0; i < (QUICK ? 3 : 5); i++) {
    const [ms, db] = await timedOpen();
    reopenMs.push(ms);
    await db.close();
  }
  reopenMs.sort((a, b) => a - b);
  {
    const db = await Database.open(dir);
    await db.checkpoint();
    await db.close();
  }
  const [fromCheckpointMs, last] = await timedOpen();
  await last.close();
  return {
    records: RECOVERY_RECORDS,
    valueBytes: VALUE.length,
    walBytes: stats.walBytes,
    checkpointBytes: stats.checkpointBytes,
    firstOpenMs,
    reopenMedianMs: reopenMs[reopenMs.length >> 1]!,
    reopens: reopenMs.length,
    fromCheckpointMs,
    rawBytes,
    storeBytes: stats.memoryBytes,
    encodedBytes: stats.bytes,
    storeKeys: stats.keys,
  };
}
