/**
 * Proves that JSR (deno.json, jsr.json) and npm (package.json) publish the
 * same entry points: every JSR export `./x.ts` must appear in package.json
 * `exports` as `./x` (or `.`), pointing at the built `dist/x.js` with types at
 * `dist/x.d.ts`, and both files must exist after `npm run build`.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const ROOT = new URL("..", import.meta.url).pathname;
const read = (f: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(ROOT, f), "utf8")) as Record<string, unknown>;

const deno = read("deno.json");
const jsr = read("jsr.json");
const pkg = read("package.json");
const problems: string[] = [];

for (const field of ["name", "version", "license"] as const) {
  if (deno[field] !== jsr[field] || jsr[field] !== pkg[field]) {
    problems.push(
      `${field} differs: deno.json ${String(deno[field])}, jsr.json ${
        String(jsr[field])
      }, package.json ${String(pkg[field])}`,
    );
  }
}

const jsrExports = jsr.exports as Record<string, string>;
if (JSON.stringify(deno.exports) !== JSON.stringify(jsrExports)) {
  problems.push("deno.json and jsr.json exports differ");
}
const npmExports = pkg.exports as Record<string, { types?: string; default?: string }>;
const expected = new Set<string>();
for (const [entry, source] of Object.entries(jsrExports)) {
  expected.add(entry);
  const built = source.replace(/^\.\//, "./dist/").replace(/\.ts$/, ".js");
  const npm = npmExports[entry];
  if (npm === undefined) {
    problems.push(`npm exports lack "${entry}" (JSR has it → ${source})`);
    continue;
  }
  if (npm.default !== built) problems.push(`npm "${entry}" → ${npm.default}, expected ${built}`);
  const types = built.replace(/\.js$/, ".d.ts");
  if (npm.types !== types) problems.push(`npm "${entry}" types → ${npm.types}, expected ${types}`);
  for (const f of [built, types]) {
    if (!existsSync(join(ROOT, f))) problems.push(`${f} missing: run npm run build`);
  }
}
for (const entry of Object.keys(npmExports)) {
  if (entry !== "./package.json" && !expected.has(entry)) {
    problems.push(`npm exports "${entry}", JSR does not`);
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(`exports: ${p}`);
  process.exit(1);
}
console.log(
  `exports: JSR and npm agree on ${expected.size} entry point(s): ${[...expected].join(", ")}`,
);
