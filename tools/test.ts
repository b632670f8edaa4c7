/**
 * The project's test command (`npm test`). In order, stopping at the first
 * failure:
 *
 * 1. rebuild the wasm core and fail if the committed generated module differs;
 * 2. typecheck (tsc, strict settings of tsconfig.json);
 * 3. lint and format check (deno lint, deno fmt --check);
 * 4. package checks: npm build to dist/, JSR/npm entry points agree,
 *    docs/API.md current and every export with an `@example`, `deno doc
 *    --lint`, publint, `deno publish --dry-run`;
 * 5. the JSDoc examples of every export, run as tests (`deno test --doc`);
 * 6. the test suite (test/**\/*_test.ts) under Node, then Deno, then Bun.
 *
 * Each runtime writes a JUnit report that this script counts, so the three
 * runtimes are counted the same way; the last line printed is
 * `N passed, N failed` summed over the runtimes.
 *
 * Flags: `--only doc|node|deno|bun` runs just that suite (skips 1–4);
 * further arguments are test files to run instead of the whole suite.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import process from "node:process";

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = join(ROOT, "node_modules/.bin");

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

function run(
  label: string,
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): boolean {
  const started = performance.now();
  console.log(`\n== ${label}: ${[cmd.replace(BIN + "/", ""), ...args].join(" ")}`);
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const ok = r.status === 0;
  console.log(
    `== ${label}: ${ok ? "ok" : `FAILED (exit ${r.status ?? r.signal})`} in ${seconds} s`,
  );
  return ok;
}

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith("_test.ts")) out.push(relative(ROOT, path));
  }
  return out;
}

/** Counts leaf test cases in a JUnit report. */
export function countJunit(xml: string, runtime: string): Counts {
  const cases: { name: string; failed: boolean; skipped: boolean }[] = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const name = /\bname="([^"]*)"/.exec(m[1] ?? "")?.[1] ?? "";
    const body = m[3] ?? "";
    cases.push({
      name,
      failed: /<(failure|error)\b/.test(body) || /\bfailure="/.test(m[1] ?? ""),
      skipped: /<skipped\b/.test(body),
    });
  }
  // Deno reports a node:test `describe` block as a test case of its own and
  // its `it` blocks as steps named "group > test": count only the steps.
  const groups = new Set<string>();
  if (runtime === "deno") {
    for (const c of cases) {
      const parts = c.name.split(" &gt; ");
      for (let i = 1; i < parts.length; i++) groups.add(parts.slice(0, i).join(" &gt; "));
    }
  }
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const c of cases) {
    if (groups.has(c.name)) continue;
    if (c.failed) counts.failed++;
    else if (c.skipped) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

type Runtime = "node" | "deno" | "bun" | "doc";

function suite(
  runtime: Runtime,
  files: string[],
  report: string,
): Counts & { ok: boolean } {
  const byRuntime = {
    node: [
      process.execPath,
      [
        "--import",
        "tsx",
        "--test",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        "--test-reporter=junit",
        `--test-reporter-destination=${report}`,
        ...files,
      ],
    ],
    deno: [
      join(BIN, "deno"),
      ["test", "-A", "--no-check", "--reporter=dot", `--junit-path=${report}`, ...files],
    ],
    doc: [
      join(BIN, "deno"),
      ["test", "--doc", "-A", "--reporter=dot", `--junit-path=${report}`, "mod.ts", "src/"],
    ],
    bun: [
      join(BIN, "bun"),
      [
        "test",
        // bun's default per-test timeout is 5 s; the property suites run longer.
        "--timeout=600000",
        "--reporter=junit",
        `--reporter-outfile=${report}`,
        ...files.map((f) => `./${f}`),
      ],
    ],
  } as const;
  const [cmd, args] = byRuntime[runtime];
  const ok = run(`test:${runtime}`, cmd, [...args]);
  let counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  try {
    counts = countJunit(readFileSync(report, "utf8"), runtime === "doc" ? "deno" : runtime);
  } catch {
    counts.failed = 1; // no report: the runner itself failed
  }
  if (!ok && counts.failed === 0) counts.failed = 1; // a crash outside any test
  return { ...counts, ok };
}

function main(): number {
  let only: string | undefined;
  const named: string[] = [];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--only") only = argv[++i];
    else named.push(argv[i]!);
  }
  const files = named.length > 0 ? named : testFiles(join(ROOT, "test"));

  if (only === undefined) {
    const tsx = join(BIN, "tsx");
    const steps: [string, string, string[]][] = [
      ["wasm", tsx, ["tools/build_wasm.ts", "--check"]],
      ["typecheck", join(BIN, "tsc"), ["-p", "tsconfig.json"]],
      ["lint", join(BIN, "deno"), ["lint"]],
      ["fmt", join(BIN, "deno"), ["fmt", "--check"]],
      ["build", join(BIN, "tsc"), ["-p", "tsconfig.build.json"]],
      ["exports", tsx, ["tools/check_exports.ts"]],
      ["api-doc", tsx, ["tools/api_doc.ts", "--check"]],
      ["doc-lint", join(BIN, "deno"), ["doc", "--lint", "mod.ts"]],
      ["publint", join(BIN, "publint"), ["--strict"]],
      ["publish-dry-run", join(BIN, "deno"), ["publish", "--dry-run", "--allow-dirty"]],
    ];
    for (const [label, cmd, args] of steps) {
      if (!run(label, cmd, args)) {
        console.log(`\n${label} failed: the test suites did not run`);
        console.log("0 passed, 1 failed");
        return 1;
      }
    }
  }

  const dir = mkdtempSync(join(tmpdir(), "in-mem-test-"));
  const totals: Counts = { passed: 0, failed: 0, skipped: 0 };
  const lines: string[] = [];
  let ok = true;
  try {
    const runtimes: Runtime[] = only === undefined
      ? ["doc", "node", "deno", "bun"]
      : [only as Runtime];
    for (const runtime of runtimes) {
      const r = suite(runtime, files, join(dir, `${runtime}.xml`));
      totals.passed += r.passed;
      totals.failed += r.failed;
      totals.skipped += r.skipped;
      lines.push(
        `${runtime.padEnd(5)} ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`,
      );
      if (!r.ok || r.failed > 0) {
        ok = false;
        break;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log("\n== summary (test files: " + files.length + ")");
  for (const l of lines) console.log(l);
  console.log(`${totals.passed} passed, ${totals.failed} failed`);
  return ok ? 0 : 1;
}

process.exit(main());
