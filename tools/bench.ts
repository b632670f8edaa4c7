/**
 * Runs benchmark files on Node, Deno and Bun, one after another, so the same
 * workload is measured on each runtime on the same machine.
 *
 *   npm run bench [-- --quick] [-- --runs N]   the peer suite, then BENCHMARKS.md
 *   npm run bench:core [-- --quick] [-- --runtime node|deno|bun]
 *
 * The first argument names a group of files: `core` runs bench/core_*.ts
 * (and bench/core.ts, if there is one). Other arguments go to each benchmark
 * file. The `suite` group (bench/suite.ts) also writes each runtime's rows as
 * JSON to a temporary directory and, when all three runtimes succeeded,
 * writes BENCHMARKS.md from them. A full suite run goes through the three
 * runtimes three times, in turn (`--runs N`: N times; `--quick`: once).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir, totalmem, type, version } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { mergeRuns, type SuiteResult } from "../bench/_suite_lib.ts";
import { renderReport } from "../bench/_suite_report.ts";

/** Runs of each runtime a full `npm run bench` makes (`--runs N` overrides). */
const DEFAULT_SUITE_RUNS = 3;

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = join(ROOT, "node_modules/.bin");
const started = performance.now();

const [groupName = "core", ...rest] = process.argv.slice(2);
const runtimeAt = rest.indexOf("--runtime");
const only = runtimeAt >= 0 ? rest[runtimeAt + 1] : undefined;
const runsAt = rest.indexOf("--runs");
const passThrough = rest.filter((_, i) =>
  (runtimeAt < 0 || (i !== runtimeAt && i !== runtimeAt + 1)) &&
  (runsAt < 0 || (i !== runsAt && i !== runsAt + 1))
);
const quick = passThrough.includes("--quick");
const files = readdirSync(join(ROOT, "bench"))
  .filter((f) => (f === `${groupName}.ts` || f.startsWith(`${groupName}_`)) && f.endsWith(".ts"))
  .sort()
  .map((f) => join("bench", f));
if (files.length === 0) {
  console.error(`bench: no bench/${groupName}.ts or bench/${groupName}_*.ts files`);
  process.exit(1);
}

// Deno KV, a peer of the suite, is behind a flag; the other benches ignore it.
// An exposed gc lets mitata collect before each row (without it, mitata
// allocates a 1 GiB buffer to provoke one).
const runtimes: Record<string, (file: string, extra: string[]) => [string, string[]]> = {
  node: (f, extra) => [
    process.execPath,
    ["--expose-gc", "--import", "tsx", f, ...passThrough, ...extra],
  ],
  deno: (f, extra) => [
    join(BIN, "deno"),
    ["run", "-A", "--unstable-kv", "--v8-flags=--expose-gc", f, ...passThrough, ...extra],
  ],
  bun: (f, extra) => [join(BIN, "bun"), [f, ...passThrough, ...extra]],
};

const suite = groupName === "suite";
// The suite runs the three runtimes in turn, `runs` times over (node, deno,
// bun, node, …): the machine is shared and its speed swings between runs
// minutes apart, so the report takes each row from the run where it was
// fastest (bench/_suite_lib.ts mergeRuns). Quick mode and the other groups: once.
const runs = runsAt >= 0 ? Number(rest[runsAt + 1]) : suite && !quick ? DEFAULT_SUITE_RUNS : 1;
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`bench: --runs takes a whole number >= 1, got ${rest[runsAt + 1]}`);
  process.exit(1);
}
const jsonDir = suite ? mkdtempSync(join(tmpdir(), "in-mem-suite-json-")) : undefined;
const jsonFiles = new Map<string, string[]>();

let failed = false;
for (let run = 1; run <= runs; run++) {
  for (const [name, command] of Object.entries(runtimes)) {
    if (only !== undefined && only !== name) continue;
    for (const file of files) {
      const json = jsonDir === undefined ? undefined : join(jsonDir, `${name}.${run}.json`);
      const [cmd, args] = command(file, json === undefined ? [] : ["--json", json]);
      console.log(`\n### ${file} on ${name}${runs > 1 ? `, run ${run} of ${runs}` : ""}\n`);
      const r = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit" });
      if (r.status !== 0) {
        console.error(`bench: ${file} failed on ${name} (exit ${r.status ?? r.signal})`);
        failed = true;
      } else if (json !== undefined) {
        jsonFiles.set(name, [...(jsonFiles.get(name) ?? []), json]);
      }
    }
  }
}

if (jsonDir !== undefined) {
  if (!failed && only === undefined) writeReport();
  else {console.error(
      "bench: BENCHMARKS.md not written (it needs a whole run on all three runtimes)",
    );}
  rmSync(jsonDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

function writeReport(): void {
  const results = [...jsonFiles.values()].map((files) =>
    mergeRuns(
      files.filter((f) => existsSync(f)).map((f) =>
        JSON.parse(readFileSync(f, "utf8")) as SuiteResult
      ),
    )
  );
  const cpuList = cpus();
  const report = renderReport(results, {
    machine: {
      cpu: cpuList[0]?.model ?? "unknown",
      cores: cpuList.length,
      memoryBytes: totalmem(),
      os: `${type()} ${release()} (${version()})`,
      tmpdir: tmpdir(),
    },
    command: `npm run bench${passThrough.length === 0 ? "" : ` -- ${passThrough.join(" ")}`}`,
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    wallMs: performance.now() - started,
  });
  writeFileSync(join(ROOT, "BENCHMARKS.md"), report);
  // In the repository's format (tables aligned), so `deno fmt --check` in CI passes as written.
  spawnSync(join(BIN, "deno"), ["fmt", "BENCHMARKS.md"], { cwd: ROOT, stdio: "ignore" });
  console.log(
    `\nbench: wrote BENCHMARKS.md (${((performance.now() - started) / 1000).toFixed(0)} s)`,
  );
}
