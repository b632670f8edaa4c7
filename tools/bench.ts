/**
 * Runs benchmark files on Node, Deno and Bun, one after another, so the same
 * workload is measured on each runtime on the same machine.
 *
 *   npm run bench:core [-- --quick] [-- --runtime node|deno|bun]
 *
 * The first argument names a group of files: `core` runs bench/core_*.ts.
 * Other arguments go to each benchmark file.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = join(ROOT, "node_modules/.bin");

const [groupName = "core", ...rest] = process.argv.slice(2);
const runtimeAt = rest.indexOf("--runtime");
const only = runtimeAt >= 0 ? rest[runtimeAt + 1] : undefined;
const passThrough = rest.filter((_, i) =>
  runtimeAt < 0 || (i !== runtimeAt && i !== runtimeAt + 1)
);
const files = readdirSync(join(ROOT, "bench"))
  .filter((f) => f.startsWith(`${groupName}_`) && f.endsWith(".ts"))
  .sort()
  .map((f) => join("bench", f));
if (files.length === 0) {
  console.error(`bench: no bench/${groupName}_*.ts files`);
  process.exit(1);
}

const runtimes: Record<string, (file: string) => [string, string[]]> = {
  node: (f) => [process.execPath, ["--import", "tsx", f, ...passThrough]],
  deno: (f) => [join(BIN, "deno"), ["run", "-A", f, ...passThrough]],
  bun: (f) => [join(BIN, "bun"), [f, ...passThrough]],
};

let failed = false;
for (const [name, command] of Object.entries(runtimes)) {
  if (only !== undefined && only !== name) continue;
  for (const file of files) {
    const [cmd, args] = command(file);
    console.log(`\n### ${file} on ${name}\n`);
    const r = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit" });
    if (r.status !== 0) {
      console.error(`bench: ${file} failed on ${name} (exit ${r.status ?? r.signal})`);
      failed = true;
    }
  }
}
process.exit(failed ? 1 : 0);
