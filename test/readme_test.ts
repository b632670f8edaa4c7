// The README's example is examples/quickstart.ts, word for word (with the
// package name for the relative import); this runs it and checks the two
// have not drifted apart.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const root = new URL("../", import.meta.url);

test("the README quickstart is examples/quickstart.ts and it runs", async () => {
  const readme = readFileSync(new URL("README.md", root), "utf8");
  const example = readFileSync(new URL("examples/quickstart.ts", root), "utf8");
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.equal(block, example.replace('"../mod.ts"', '"@in-mem/core"'));
  await import("../examples/quickstart.ts"); // throws if any of its assertions fails
});
