// `npm run demo` works, and its data survives: the second run of the demo
// finds both runs on disk, with a valid event chain each time. Runs the demo
// as a child process of the runtime under test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const root = new URL("../", import.meta.url).pathname;
const demo = join(root, "examples/agent_run.ts");

function command(dir: string): [string, string[]] {
  if ("Deno" in globalThis) return [process.execPath, ["run", "-A", demo, dir]];
  if ("Bun" in globalThis) return [process.execPath, [demo, dir]];
  return [process.execPath, ["--import", "tsx", demo, dir]];
}

test("the agent demo runs, and a second run finds the first one's data on disk", () => {
  const dir = mkdtempSync(join(tmpdir(), "in-mem-demo-"));
  try {
    for (const expected of [1, 2]) {
      const [cmd, args] = command(join(dir, "agent-db"));
      const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", timeout: 120_000 });
      assert.equal(r.status, 0, `demo exited ${r.status}: ${r.stderr}`);
      assert.match(r.stdout, /tasks: worker-a \d+, worker-b \d+/);
      const [, a, b] = /tasks: worker-a (\d+), worker-b (\d+)/.exec(r.stdout)!;
      assert.equal(Number(a) + Number(b), 6, "the workers split the 6 tasks exactly");
      assert.match(r.stdout, /events: 8, chain valid/);
      assert.match(r.stdout, new RegExp(`runs on disk in .*: ${expected} \\(`));
      assert.equal((r.stdout.match(/- tool_call/g) ?? []).length, 6);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
