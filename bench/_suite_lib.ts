/**
 * What the peer suite (bench/suite.ts) measures and records: the workloads,
 * the shape of one runtime's results (the JSON that tools/bench.ts turns into
 * BENCHMARKS.md), and the one timing wrapper around mitata every row goes
 * through.
 *
 * @module
 */
import process from "node:process";
import { measure } from "mitata";

/** The runtimes the suite runs on. */
export type RuntimeName = "node" | "deno" | "bun";

/** The runtime this process is. */
export function runtimeName(): RuntimeName {
  return "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
}

/** This runtime's own version (not the Node version Deno and Bun emulate). */
export function runtimeVersion(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno !== undefined) return g.Deno.version.deno;
  if (g.Bun !== undefined) return g.Bun.version;
  return process.versions.node;
}

/**
 * One workload: a table in BENCHMARKS.md. `strict1` marks the rows a single
 * strict writer commits one at a time, where the raw write+fdatasync rate is
 * the physical limit and is shown beside them; `batched1` the rows a single
 * batched writer commits one at a time, each with one write to the OS, where
 * the raw write rate (no fsync) is.
 */
export interface Workload {
  id: string;
  title: string;
  strict1?: true;
  batched1?: true;
}

/** The workloads, in report order. */
export const WORKLOADS: readonly Workload[] = [
  { id: "put.strict1", title: "KV put, 100-byte value, strict, 1 writer", strict1: true },
  { id: "put.strict64", title: "KV put, 100-byte value, strict, 64 concurrent writers" },
  { id: "put.batched", title: "KV put, 100-byte value, batched, 1 writer", batched1: true },
  { id: "get", title: "KV get, random key among 100,000" },
  { id: "list", title: "KV list of 1,000 entries (key + value) by prefix" },
  { id: "append.strict1", title: "event append, strict, 1 writer", strict1: true },
  { id: "append.batched", title: "event append, batched, 1 writer", batched1: true },
  { id: "cas.strict1", title: "state-cell CAS, strict, 1 writer", strict1: true },
  { id: "cas.batched", title: "state-cell CAS, batched, 1 writer", batched1: true },
  {
    id: "trace.strict1",
    title: "trace record (2 tags, a parent), strict, 1 writer",
    strict1: true,
  },
  {
    id: "trace.batched",
    title: "trace record (2 tags, a parent), batched, 1 writer",
    batched1: true,
  },
  {
    id: "txn.strict1",
    title: "cross-primitive transaction (KV + event + CAS + trace), strict, 1 writer",
    strict1: true,
  },
  {
    id: "txn.batched",
    title: "cross-primitive transaction (KV + event + CAS + trace), batched, 1 writer",
    batched1: true,
  },
  { id: "append.strict64", title: "64 concurrent appenders to one run's event log, strict" },
];

/** The subject name of this library's rows. */
export const SELF = "in-mem";
/** The subject name of the physical reference row: appends that grow the file. */
export const RAW = "raw write+fdatasync 128 B";
/**
 * The second reference row: the same records written in place over a file
 * already zero-filled and synced, as the strict WAL does (it preallocates),
 * so no fdatasync has to make a new file size durable.
 */
export const RAW_PREALLOCATED = "raw write+fdatasync 128 B, preallocated";
/**
 * The reference row of a batched commit: a 128-byte write appended to a
 * growing file with no fsync — one system call, what a batched commit that
 * resolves after the OS write costs at least (the batched WAL appends).
 */
export const RAW_WRITE = "raw write 128 B, no fsync";
/** True for either raw write+fdatasync reference row. */
export const isRaw = (s: string): boolean => s === RAW || s === RAW_PREALLOCATED;

/** One measured row: a subject doing a workload. */
export interface Row {
  workload: string;
  subject: string;
  /** What a resolved operation guarantees, in words. */
  durability: string;
  /** Operations per second from the median sample. */
  opsPerSec: number;
  /** Operations per second from the mean sample. */
  meanOpsPerSec: number;
  /** Per-call latency percentiles, ns; null if mitata timed the calls in batches. */
  p50Ns: number | null;
  p99Ns: number | null;
  /** Operations one timed call performs (64 for the concurrent rows). */
  opsPerCall: number;
  /** Calls timed. */
  calls: number;
  /**
   * Minor page faults of the process while the row was sampled (warm-up
   * calls included), per operation: memory touched for the first time,
   * which on this project's machines costs ~12–18 µs a page. Absent in
   * results written before it was counted.
   */
  faultsPerOp?: number;
  note?: string;
  /**
   * Set when the row is the fastest of several runs ({@link mergeRuns}):
   * every run's `opsPerSec`, in run order.
   */
  runs?: number[];
  /**
   * Set when the row was timed in this many slices, in turn with the other
   * rows of its workload ({@link timeInterleaved}).
   */
  rounds?: number;
}

/** The 64 concurrent appenders' outcome, checked after timing. */
export interface AppendersOutcome {
  appends: number;
  /** Appends that failed after exhausting their retries. */
  exhausted: number;
  /** Conflicts seen (each one a re-run). */
  conflicts: number;
  chainValid: boolean;
  chainLength: number;
}

/** Opening a database of `records` KV entries, and the memory they take. */
export interface RecoveryOutcome {
  records: number;
  valueBytes: number;
  /** The files as the writer left them (default checkpoint settings), bytes. */
  walBytes: number;
  checkpointBytes: number;
  /** The first open in this process. */
  firstOpenMs: number;
  /** The median of the next opens. */
  reopenMedianMs: number;
  reopens: number;
  /** An open after an explicit checkpoint (the WAL then holds nothing to replay). */
  fromCheckpointMs: number;
  /** Sum of the user keys' UTF-8 bytes and the values' bytes. */
  rawBytes: number;
  /** The store's live memory after recovery (`stats().memoryBytes`). */
  storeBytes: number;
  /** The store's encoded keys + values (`stats().bytes`). */
  encodedBytes: number;
  storeKeys: number;
}

/** A peer that took part, or one that could not load here and why. */
export interface PeerInfo {
  name: string;
  version?: string;
  unavailable?: string;
}

/** One runtime's run of the suite. */
export interface SuiteResult {
  runtime: RuntimeName;
  runtimeVersion: string;
  quick: boolean;
  startedAt: string;
  durationMs: number;
  loadAvgStart: number[];
  loadAvgEnd: number[];
  peers: PeerInfo[];
  rows: Row[];
  appenders: AppendersOutcome;
  recovery: RecoveryOutcome;
  /** Runs merged into this result ({@link mergeRuns}); absent for one run. */
  runs?: number;
}

/**
 * One runtime's runs of the suite (taken in turn with the other runtimes',
 * minutes apart) as one result. On a shared machine whose speed swings
 * between runs, each workload's rows — this library's, the raw rows and the
 * peers' alike — are taken together from the run where that workload was
 * fastest (the highest geometric mean of the rates of the subjects every
 * run measured), so every ratio between them is one run's; each row lists
 * every run's figure. Recovery comes from the run whose first open was
 * fastest; the appenders' outcome is the worst run's (most retries
 * exhausted, the chain valid only if it was valid in every run).
 *
 * @param runs The runs, in order; all of one runtime, each with the same rows.
 * @returns The merged result.
 * @throws {RangeError} If `runs` is empty or mixes runtimes.
 */
export function mergeRuns(runs: readonly SuiteResult[]): SuiteResult {
  const first = runs[0];
  if (first === undefined) throw new RangeError("Cannot merge suite runs: there are none");
  if (runs.some((r) => r.runtime !== first.runtime)) {
    throw new RangeError("Cannot merge suite runs of different runtimes");
  }
  if (runs.length === 1) return first;
  const chosen = new Map<string, number>();
  const rows = first.rows.map((row) => {
    const each = runs.map((r) =>
      r.rows.find((x) => x.workload === row.workload && x.subject === row.subject)
    );
    const same = each.filter((x): x is Row => x !== undefined);
    let at = chosen.get(row.workload);
    if (at === undefined) chosen.set(row.workload, at = fastestRun(runs, row.workload));
    const best = each[at] ?? same.reduce((a, b) => (b.opsPerSec > a.opsPerSec ? b : a));
    return { ...best, runs: same.map((x) => x.opsPerSec) };
  });
  const recovery = runs.map((r) => r.recovery)
    .reduce((a, b) => (b.firstOpenMs < a.firstOpenMs ? b : a));
  const worst = runs.map((r) => r.appenders)
    .reduce((a, b) => (b.exhausted > a.exhausted ? b : a));
  return {
    ...first,
    durationMs: runs.reduce((sum, r) => sum + r.durationMs, 0),
    loadAvgEnd: runs[runs.length - 1]!.loadAvgEnd,
    rows,
    appenders: { ...worst, chainValid: runs.every((r) => r.appenders.chainValid) },
    recovery,
    runs: runs.length,
  };
}

/**
 * The index of the run where `workload` was fastest: the highest geometric
 * mean of the rates of its subjects that every run measured.
 */
function fastestRun(runs: readonly SuiteResult[], workload: string): number {
  const groups = runs.map((r) => r.rows.filter((x) => x.workload === workload));
  const common = groups[0]!.map((x) => x.subject)
    .filter((s) => groups.every((g) => g.some((x) => x.subject === s)));
  let best = 0;
  let bestScore = -Infinity;
  groups.forEach((rows, i) => {
    const group = rows.filter((x) => common.includes(x.subject));
    if (group.length === 0) return;
    const score = group.reduce((sum, x) => sum + Math.log(x.opsPerSec), 0) / group.length;
    if (score > bestScore) {
      best = i;
      bestScore = score;
    }
  });
  return best;
}

/** How long mitata samples each row. */
export interface Budget {
  minCpuTimeNs: number;
  minSamples: number;
}

/** `--quick`: a quarter of a second per row. */
export const QUICK_BUDGET: Budget = { minCpuTimeNs: 250e6, minSamples: 12 };
/** Full: a second per row, and at least 100 calls. */
export const FULL_BUDGET: Budget = { minCpuTimeNs: 1000e6, minSamples: 100 };

/** Row fields other than the timing. */
export interface RowSpec {
  workload: string;
  subject: string;
  durability: string;
  opsPerCall?: number;
  note?: string;
}

/** A row to time: what it is, and the call to time. */
export interface RowJob {
  spec: RowSpec;
  fn: () => unknown;
}

/**
 * Rounds {@link timeInterleaved} samples each row in: its budget is split
 * into this many slices, taken in turn with the other rows of its workload.
 */
export const INTERLEAVED_ROUNDS = 5;

/**
 * Times `fn` with mitata and returns the row. Every call is timed on its
 * own (mitata's batching is off), so p50 and p99 are per-call latencies and
 * every row is sampled the same way; the fastest call in the suite takes a
 * few microseconds, far above the timer's cost.
 */
export async function timeRow(
  spec: RowSpec,
  fn: () => unknown,
  budget: Budget,
): Promise<Row> {
  const s = new Sampled();
  await s.slice(fn, budget);
  return s.row(spec);
}

/**
 * Times the rows of one workload in turn, `rounds` times over: each row
 * gets `budget` in all, as `rounds` slices, and each round starts one row
 * further on (a, b, c; b, c, a; …). A row's figures come from all its
 * slices together. The rows whose rate follows the disk's (strict commits
 * wait on an fdatasync) are measured this way: this machine's fsync time
 * drifts over minutes, and rows measured one after another would compare
 * the disk at different times rather than the stores.
 *
 * @param jobs The rows, in report order.
 * @param budget Each row's whole budget.
 * @param rounds Slices per row (≥ 1).
 * @param onSlice Called after each slice (for tests: the order they ran in).
 * @returns One row per job, in the jobs' order, each with `rounds` set.
 * @throws {RangeError} If `rounds` is not a whole number ≥ 1.
 */
export async function timeInterleaved(
  jobs: readonly RowJob[],
  budget: Budget,
  rounds: number,
  onSlice?: (job: number) => void,
): Promise<Row[]> {
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new RangeError(
      `Cannot interleave rows: rounds must be a whole number >= 1, got ${rounds}`,
    );
  }
  const slice: Budget = {
    minCpuTimeNs: budget.minCpuTimeNs / rounds,
    minSamples: Math.ceil(budget.minSamples / rounds),
  };
  const sampled = jobs.map(() => new Sampled());
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < jobs.length; i++) {
      const at = (i + round) % jobs.length;
      await sampled[at]!.slice(jobs[at]!.fn, slice);
      onSlice?.(at);
    }
  }
  return jobs.map((job, i) => ({ ...sampled[i]!.row(job.spec), rounds }));
}

/** The samples of a row, gathered over one or more slices of mitata's sampling. */
class Sampled {
  #samples: number[] = [];
  #ticks = 0;
  #faults = 0;
  #batched = false;

  /**
   * Samples `fn` for `budget`. mitata collects garbage before it samples:
   * here only before a row's first slice, as before a row timed at once.
   * (Collecting before every slice cost the CPU-bound rows a third in quick
   * runs: a batched put timed in turn ran at 80–85k/s, 113k/s collecting
   * once.)
   */
  async slice(fn: () => unknown, budget: Budget): Promise<void> {
    const faultsBefore = process.resourceUsage().minorPageFault;
    const stats = await measure(fn, {
      min_cpu_time: budget.minCpuTimeNs,
      min_samples: budget.minSamples,
      batch_threshold: -1,
      // The extremes are dropped once, from all the slices' samples (row()).
      samples_threshold: Infinity,
      ...(this.#ticks === 0 ? {} : { gc: false }),
    });
    this.#faults += process.resourceUsage().minorPageFault - faultsBefore;
    this.#ticks += stats.ticks;
    if (stats.ticks !== stats.samples.length) this.#batched = true;
    for (const x of stats.samples) this.#samples.push(x);
  }

  row(spec: RowSpec): Row {
    // As mitata does for one measurement: past 12 samples, drop the two
    // lowest and the two highest.
    let samples = this.#samples.sort((a, b) => a - b);
    if (samples.length > 12) samples = samples.slice(2, -2);
    const at = (q: number): number => samples[(q * (samples.length - 1)) | 0]!;
    const avg = samples.reduce((sum, x) => sum + x, 0) / samples.length;
    const per = spec.opsPerCall ?? 1;
    const row: Row = {
      workload: spec.workload,
      subject: spec.subject,
      durability: spec.durability,
      opsPerSec: (1e9 / at(0.5)) * per,
      meanOpsPerSec: (1e9 / avg) * per,
      p50Ns: this.#batched ? null : at(0.5),
      p99Ns: this.#batched ? null : at(0.99),
      opsPerCall: per,
      calls: this.#ticks,
      faultsPerOp: this.#faults / (this.#ticks * per),
    };
    if (spec.note !== undefined) row.note = spec.note;
    return row;
  }
}

/** A whole number with thousands separators. */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/**
 * 65,536 indices below `below` from a fixed-seed xorshift32: the random
 * reads of the get rows, the same in every run and on every runtime.
 */
export function randomPicks(below: number): Uint32Array {
  const picks = new Uint32Array(1 << 16);
  let x = 0x9e3779b9;
  for (let i = 0; i < picks.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    picks[i] = (x >>> 0) % below;
  }
  return picks;
}
