// A real process commits in strict mode and reports each acknowledgement
// over a pipe; it is killed with SIGKILL at a random moment; the reopened
// database must hold every acknowledged commit, whole (RELIABILITY.md,
// "Real processes too").
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { RUNTIME } from "../../src/_runtime.ts";
import { NodeFileAdapter } from "../../src/fs/node.ts";
import { openEngine } from "../../src/engine/open.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CHILD = join(ROOT, "test/engine/_sigkill_child.ts");
const ROUNDS = 4;

function command(): [string, string[]] {
  if (RUNTIME === "deno") return [process.execPath, ["run", "-A", "--no-check", CHILD]];
  if (RUNTIME === "bun") return [process.execPath, [CHILD]];
  return [process.execPath, ["--import", "tsx", CHILD]];
}

/** Runs the child until it has acknowledged `killAfter` commits, then SIGKILLs it. */
function runAndKill(dir: string, killAfter: number): Promise<Set<number>> {
  const [cmd, args] = command();
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, IN_MEM_DB_DIR: dir, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const acked = new Set<number>();
  let buffer = "";
  let stderr = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the child acknowledged only ${acked.size} commits in 60 s: ${stderr}`));
    }, 60_000);
    child.stderr!.on("data", (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
    child.stdout!.on("data", (d: Uint8Array) => {
      buffer += new TextDecoder().decode(d);
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const m = /^ack (\d+)$/.exec(line);
        if (m !== null) acked.add(Number(m[1]));
        if (acked.size >= killAfter && child.exitCode === null && !child.killed) {
          child.kill("SIGKILL");
        }
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") resolve(acked);
      else reject(new Error(`the child exited with ${code ?? signal} before the kill: ${stderr}`));
    });
  });
}

test("a process killed with SIGKILL loses no acknowledged strict commit", async () => {
  const dec = (b: Uint8Array | undefined): string | undefined =>
    b === undefined ? undefined : new TextDecoder().decode(b);
  let checked = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const dir = mkdtempSync(join(tmpdir(), "in-mem-sigkill-"));
    try {
      const killAfter = 20 + Math.floor(Math.random() * 200);
      const acked = await runAndKill(dir, killAfter);
      assert.ok(acked.size >= killAfter, `only ${acked.size} acknowledgements arrived`);
      const db = await openEngine({ dir, fs: new NodeFileAdapter() });
      for (const i of acked) {
        assert.equal(
          dec(db.engine.store.get(`k${i}`)),
          `v${i}`,
          `acknowledged commit ${i} is missing`,
        );
        assert.equal(
          dec(db.engine.store.get(`pair${i}`)),
          `v${i}`,
          `commit ${i} is only partly there`,
        );
      }
      // Whatever else survived is whole too.
      for (const [k, v] of db.engine.store.prefix("k")) {
        assert.equal(
          dec(db.engine.store.get(`pair${dec(k)!.slice(1)}`)),
          dec(v),
          "a partial commit survived",
        );
      }
      checked += acked.size;
      await db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  assert.ok(checked >= ROUNDS * 20);
});
