// The bench report's merge of one runtime's several suite runs
// (bench/_suite_lib.ts mergeRuns): each workload's rows from the run where
// it was fastest, with every run's figure listed, recovery from the fastest
// first open, the appenders' outcome from the worst run; the rows timed in
// turn (timeInterleaved); and the report naming a peer that slowed too, and
// the page faults of a slow row beside Node's.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  mergeRuns,
  RAW_WRITE,
  type Row,
  type SuiteResult,
  timeInterleaved,
} from "../bench/_suite_lib.ts";
import { faultsBeside, fmtRatio, slowPeer } from "../bench/_suite_report.ts";

function row(workload: string, subject: string, opsPerSec: number): Row {
  return {
    workload,
    subject,
    durability: "d",
    opsPerSec,
    meanOpsPerSec: opsPerSec / 2,
    p50Ns: 1e9 / opsPerSec,
    p99Ns: 2e9 / opsPerSec,
    opsPerCall: 1,
    calls: 100,
  };
}

function run(
  runtime: SuiteResult["runtime"],
  rows: Row[],
  firstOpenMs: number,
  exhausted: number,
  chainValid = true,
): SuiteResult {
  return {
    runtime,
    runtimeVersion: "1",
    quick: false,
    startedAt: "t",
    durationMs: 1000,
    loadAvgStart: [1, 1, 1],
    loadAvgEnd: [firstOpenMs, 0, 0],
    peers: [],
    rows,
    appenders: { appends: 100 - exhausted, exhausted, conflicts: 0, chainValid, chainLength: 100 },
    recovery: {
      records: 10,
      valueBytes: 1,
      walBytes: 1,
      checkpointBytes: 1,
      firstOpenMs,
      reopenMedianMs: 1,
      reopens: 1,
      fromCheckpointMs: 1,
      rawBytes: 1,
      storeBytes: 2,
      encodedBytes: 1,
      storeKeys: 10,
    },
  };
}

test("mergeRuns takes each workload's rows from the run where it was fastest, listing every run's rate", () => {
  const a = run(
    "node",
    [row("put", "in-mem", 100), row("put", "peer", 300), row("get", "in-mem", 9)],
    50,
    0,
  );
  const b = run(
    "node",
    [row("put", "in-mem", 200), row("put", "peer", 250), row("get", "in-mem", 5)],
    40,
    2,
  );
  const c = run(
    "node",
    [row("put", "in-mem", 150), row("put", "peer", 100), row("get", "in-mem", 7)],
    60,
    1,
    false,
  );
  const m = mergeRuns([a, b, c]);
  assert.equal(m.runs, 3);
  // put: run b (geometric mean √(200·250) ≈ 224, against 173 and 122), both
  // rows from it — not in-mem's 200 beside the peer's 300 of run a, a ratio
  // no run measured. get: run a.
  assert.deepEqual(
    m.rows.map((r) => [r.workload, r.subject, r.opsPerSec, r.p50Ns, r.runs]),
    [
      ["put", "in-mem", 200, 1e9 / 200, [100, 200, 150]],
      ["put", "peer", 250, 1e9 / 250, [300, 250, 100]],
      ["get", "in-mem", 9, 1e9 / 9, [9, 5, 7]],
    ],
  );
  assert.equal(m.recovery.firstOpenMs, 40);
  assert.equal(m.appenders.exhausted, 2); // the worst run
  assert.equal(m.appenders.chainValid, false); // invalid in one run: invalid
  assert.equal(m.durationMs, 3000);
  assert.deepEqual(m.loadAvgStart, [1, 1, 1]);
  assert.deepEqual(m.loadAvgEnd, [60, 0, 0]); // the last run's
});

test("mergeRuns judges a workload by the subjects every run measured", () => {
  // The peer is missing from run b: the workload is judged on in-mem alone
  // (run b; with the peer, run a's mean √(100·400) = 200 would beat 150),
  // and the peer's row, absent there, comes from its own best run.
  const a = run("node", [row("put", "in-mem", 100), row("put", "peer", 400)], 1, 0);
  const b = run("node", [row("put", "in-mem", 150)], 1, 0);
  assert.deepEqual(
    mergeRuns([a, b]).rows.map((r) => [r.subject, r.opsPerSec, r.runs]),
    [["in-mem", 150, [100, 150]], ["peer", 400, [400]]],
  );
  // A workload only the first run has keeps that run's rows.
  const c = run("node", [row("get", "in-mem", 7)], 1, 0);
  assert.deepEqual(mergeRuns([a, c]).rows.map((r) => [r.subject, r.opsPerSec]), [
    ["in-mem", 100],
    ["peer", 400],
  ]);
});

test("timeInterleaved takes the rows in turn, one further on each round, and counts every slice's calls", async () => {
  const calls: string[] = [];
  const slices: number[] = [];
  const job = (name: string, opsPerCall = 1) => ({
    spec: { workload: "w", subject: name, durability: "d", opsPerCall },
    fn: () => {
      calls.push(name);
    },
  });
  const budget = { minCpuTimeNs: 1e5, minSamples: 6 };
  const rows = await timeInterleaved(
    [job("a"), job("b", 64), job("c")],
    budget,
    3,
    (i) => slices.push(i),
  );
  assert.deepEqual(slices, [0, 1, 2, 1, 2, 0, 2, 0, 1]);
  // Each slice is one unbroken stretch of one row's calls: 9 stretches.
  const stretches = calls.filter((name, i) => i === 0 || calls[i - 1] !== name);
  assert.deepEqual(stretches, ["a", "b", "c", "b", "c", "a", "c", "a", "b"]);
  assert.deepEqual(rows.map((r) => [r.subject, r.rounds, r.opsPerCall]), [
    ["a", 3, 1],
    ["b", 3, 64],
    ["c", 3, 1],
  ]);
  for (const r of rows) {
    const made = calls.filter((name) => name === r.subject).length;
    // Every slice times at least its share of the samples; warm-up calls are not timed.
    assert.ok(r.calls >= 3 * Math.ceil(budget.minSamples / 3) && r.calls <= made, `${r.calls}`);
    assert.equal(r.opsPerSec, (1e9 / r.p50Ns!) * r.opsPerCall);
    assert.ok(r.p99Ns! >= r.p50Ns!);
    assert.ok(r.faultsPerOp !== undefined && r.faultsPerOp >= 0);
  }
  await assert.rejects(timeInterleaved([job("a")], budget, 0), RangeError);
});

test("mergeRuns returns a single run as it is; refuses none and mixed runtimes", () => {
  const a = run("deno", [row("get", "in-mem", 10)], 5, 0);
  assert.equal(mergeRuns([a]), a);
  assert.throws(() => mergeRuns([]), RangeError);
  assert.throws(() => mergeRuns([a, run("bun", [], 5, 0)]), RangeError);
});

test("slowPeer names a peer slower than Node by more than 1.5× on the same runtime", () => {
  const node = run(
    "node",
    [
      row("list", "in-mem", 4000),
      row("list", "lmdb-js", 3500),
      row("list", "bun:sqlite FULL", 1000),
    ],
    1,
    0,
  );
  const slowToo = run(
    "bun",
    [
      row("list", "in-mem", 1000),
      row("list", "lmdb-js", 850),
      row("list", "bun:sqlite FULL", 990),
    ],
    1,
    0,
  );
  assert.deepEqual(slowPeer("list", slowToo, node), { subject: "lmdb-js", ratio: 850 / 3500 });
  // A peer that kept its Node rate, or one Node did not run, names nothing.
  const fastPeers = run("bun", [row("list", "in-mem", 1000), row("list", "lmdb-js", 3000)], 1, 0);
  assert.equal(slowPeer("list", fastPeers, node), undefined);
  const onlyHere = run("bun", [row("list", "in-mem", 1000), row("list", "other", 10)], 1, 0);
  assert.equal(slowPeer("list", onlyHere, node), undefined);
  // The raw reference rows are the disk's and the write call's, never a peer.
  const raw = run("bun", [row("put.batched", RAW_WRITE, 10)], 1, 0);
  const rawNode = run("node", [row("put.batched", RAW_WRITE, 1000)], 1, 0);
  assert.equal(slowPeer("put.batched", raw, rawNode), undefined);
});

test("faultsBeside gives a slow row's page faults beside Node's only when they are higher", () => {
  const at = (faultsPerOp: number | undefined): Row => {
    const r = row("list", "in-mem", 1000);
    if (faultsPerOp !== undefined) r.faultsPerOp = faultsPerOp;
    return r;
  };
  assert.equal(
    faultsBeside(at(1.337), at(0.2), "bun"),
    " [page faults per op: bun 1.34, node 0.20]",
  );
  assert.equal(faultsBeside(at(150), at(0), "bun"), " [page faults per op: bun 150, node 0.00]");
  assert.equal(faultsBeside(at(0.24), at(0.2), "bun"), ""); // within 0.05: no figure
  assert.equal(faultsBeside(at(0.1), at(0.2), "deno"), "");
  assert.equal(faultsBeside(at(undefined), at(0.2), "bun"), ""); // a result from before the count
  assert.equal(faultsBeside(at(1), at(undefined), "bun"), "");
  // mergeRuns keeps the fastest run's count with its row.
  const fast = at(0.5);
  fast.opsPerSec = 2000;
  const m = mergeRuns([run("bun", [at(3)], 1, 0), run("bun", [fast], 1, 0)]);
  assert.equal(m.rows[0]!.faultsPerOp, 0.5);
});

test("fmtRatio never rounds a ratio onto the other side of its target", () => {
  assert.equal(fmtRatio(102_170 / 51_170, 2), "1.997"); // 2.00 would read as met
  assert.equal(fmtRatio(1.9999, 2), "1.9999");
  assert.equal(fmtRatio(2, 2), "2.00");
  assert.equal(fmtRatio(2.004, 2), "2.00"); // met, and reads as met
  assert.equal(fmtRatio(1.41, 1), "1.41");
  assert.equal(fmtRatio(3.004, 3, true), "3.004"); // a ceiling: 3.00 would read as within it
  assert.equal(fmtRatio(2.996, 3, true), "3.00");
  assert.equal(fmtRatio(1.99, 3, true), "1.99");
  assert.equal(fmtRatio(0.6665, 1 / 1.5), "0.666"); // 0.67 would read as ≥ 0.6667
  assert.equal(fmtRatio(0.67, 1 / 1.5), "0.67");
});
