// The README's code is true: its first block is examples/quickstart.ts word
// for word (with the package name for the relative import), and every ```ts
// block runs (each is self-contained and asserts what it shows).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../", import.meta.url);
const readme = readFileSync(new URL("README.md", root), "utf8");
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

test("the README quickstart is examples/quickstart.ts", () => {
  const example = readFileSync(new URL("examples/quickstart.ts", root), "utf8");
  assert.equal(blocks[0], example.replace('"../mod.ts"', '"@in-mem/core"'));
});

test("every TypeScript block of the README runs", async () => {
  assert.ok(blocks.length >= 7, `only ${blocks.length} blocks found`);
  // Inside the project, so its tsconfig applies (tsx lowers `await using` for Node 20).
  const dir = mkdtempSync(join(new URL("test/", root).pathname, ".readme-"));
  const mod = new URL("mod.ts", root).href;
  try {
    for (const [i, block] of blocks.entries()) {
      const file = join(dir, `block_${i}.ts`);
      writeFileSync(file, block.replaceAll('"@in-mem/core"', JSON.stringify(mod)));
      try {
        await import(new URL(`file://${file}`).href);
      } catch (err) {
        throw new Error(`README block ${i} failed:\n${block}`, { cause: err });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
