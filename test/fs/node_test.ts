import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { RUNTIME } from "../../src/_runtime.ts";
import { LOCK_FILE_NAME, NodeFileAdapter, toFsError } from "../../src/fs/node.ts";
import { FsError, type FsErrorCode } from "../../src/fs/types.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ADAPTER_URL = new URL("../../src/fs/node.ts", import.meta.url).href;
/** A child runtime needs a few seconds to start and compile; more means it hangs. */
const CHILD_TIMEOUT_MS = 60_000;
const IS_LINUX = process.platform === "linux";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(join(os.tmpdir(), "in-mem-fs-test-"));
  try {
    await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function readAll(adapter: NodeFileAdapter, path: string): Promise<string> {
  const f = await adapter.open(path, { readOnly: true });
  try {
    const buf = new Uint8Array(await f.size());
    assert.equal(await f.read(buf, 0), buf.length);
    return dec(buf);
  } finally {
    await f.close();
  }
}

const fsa = new NodeFileAdapter();

test("write, sync, size and read round-trip, also after reopening", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "a.log");
    const f = await fsa.open(path, { create: true });
    await f.write(enc("hello "), 0);
    await f.write(enc("world"), 6);
    await f.sync();
    assert.equal(await f.size(), 11);
    const buf = new Uint8Array(11);
    assert.equal(await f.read(buf, 0), 11);
    assert.equal(dec(buf), "hello world");
    await f.close();
    assert.equal(await readAll(fsa, path), "hello world");
  });
});

test("read() returns fewer bytes only at end of file, and 0 past it", async () => {
  await withDir(async (dir) => {
    const f = await fsa.open(join(dir, "a"), { create: true });
    await f.write(enc("abcdef"), 0);
    const buf = new Uint8Array(10);
    assert.equal(await f.read(buf, 2), 4);
    assert.equal(dec(buf.subarray(0, 4)), "cdef");
    assert.equal(await f.read(buf, 6), 0);
    assert.equal(await f.read(buf, 100), 0);
    assert.equal(await f.read(new Uint8Array(0), 0), 0);
    await f.close();
  });
});

test("a write past the end extends the file with zeros", async () => {
  await withDir(async (dir) => {
    const f = await fsa.open(join(dir, "a"), { create: true });
    await f.write(enc("x"), 4);
    const buf = new Uint8Array(5);
    assert.equal(await f.read(buf, 0), 5);
    assert.deepEqual([...buf], [0, 0, 0, 0, 120]);
    await f.close();
  });
});

test("truncate() cuts and extends with zeros", async () => {
  await withDir(async (dir) => {
    const f = await fsa.open(join(dir, "a"), { create: true });
    await f.write(enc("abcdef"), 0);
    await f.truncate(3);
    assert.equal(await f.size(), 3);
    await f.truncate(5);
    const buf = new Uint8Array(5);
    assert.equal(await f.read(buf, 0), 5);
    assert.deepEqual([...buf], [97, 98, 99, 0, 0]);
    await f.sync();
    await f.close();
  });
});

test("a multi-megabyte write and read arrive whole", async () => {
  await withDir(async (dir) => {
    const data = new Uint8Array(5 * 1024 * 1024 + 7).map((_, i) => (i * 31) & 0xff);
    const f = await fsa.open(join(dir, "big"), { create: true });
    await f.write(data, 3);
    const back = new Uint8Array(data.length);
    assert.equal(await f.read(back, 3), data.length);
    assert.deepEqual(back, data);
    await f.close();
  });
});

test("open of a missing file fails NotFound, a second exclusive create AlreadyExists", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "x");
    await assert.rejects(fsa.open(path), { name: "FsError", code: "NotFound" });
    await (await fsa.open(path, { create: true, exclusive: true })).close();
    await assert.rejects(fsa.open(path, { create: true, exclusive: true }), {
      name: "FsError",
      code: "AlreadyExists",
    });
    // Without exclusive, create opens the existing file and keeps its bytes.
    const f = await fsa.open(path, { create: true });
    await f.write(enc("k"), 0);
    await f.close();
    await (await fsa.open(path, { create: true })).close();
    assert.equal(await readAll(fsa, path), "k");
  });
});

test("remove, rename and list of missing paths fail NotFound", async () => {
  await withDir(async (dir) => {
    await assert.rejects(fsa.remove(join(dir, "nope")), { code: "NotFound" });
    await assert.rejects(fsa.rename(join(dir, "nope"), join(dir, "b")), { code: "NotFound" });
    await assert.rejects(fsa.list(join(dir, "nope")), { code: "NotFound" });
    await assert.rejects(fsa.syncDir(join(dir, "nope")), { code: "NotFound" });
  });
});

test("writes through a read-only handle fail Permission", async () => {
  await withDir(async (dir) => {
    await (await fsa.open(join(dir, "a"), { create: true })).close();
    const f = await fsa.open(join(dir, "a"), { readOnly: true });
    await assert.rejects(f.write(enc("x"), 0), { code: "Permission" });
    await assert.rejects(f.truncate(0), { code: "Permission" });
    await f.close();
  });
});

test("rename() replaces an existing target", async () => {
  await withDir(async (dir) => {
    for (const [name, text] of [["a", "new"], ["b", "old"]]) {
      const f = await fsa.open(join(dir, name!), { create: true });
      await f.write(enc(text!), 0);
      await f.close();
    }
    await fsa.rename(join(dir, "a"), join(dir, "b"));
    assert.deepEqual(await fsa.list(dir), ["b"]);
    assert.equal(await readAll(fsa, join(dir, "b")), "new");
  });
});

test("list() returns names sorted, files and directories, without . and ..", async () => {
  await withDir(async (dir) => {
    for (const name of ["c", "a", "B", "b10", "b2"]) {
      await (await fsa.open(join(dir, name), { create: true })).close();
    }
    await fsa.mkdir(join(dir, "sub"));
    assert.deepEqual(await fsa.list(dir), ["B", "a", "b10", "b2", "c", "sub"]);
  });
});

test("mkdir() creates parents, tolerates an existing directory, refuses a file", async () => {
  await withDir(async (dir) => {
    await fsa.mkdir(join(dir, "x/y/z"));
    await fsa.mkdir(join(dir, "x/y/z"));
    assert.equal(await fsa.exists(join(dir, "x/y/z")), true);
    await (await fsa.open(join(dir, "f"), { create: true })).close();
    await assert.rejects(fsa.mkdir(join(dir, "f")), { code: "AlreadyExists" });
  });
});

test("exists() is true for files and directories, false for missing paths", async () => {
  await withDir(async (dir) => {
    await (await fsa.open(join(dir, "f"), { create: true })).close();
    assert.equal(await fsa.exists(join(dir, "f")), true);
    assert.equal(await fsa.exists(dir), true);
    assert.equal(await fsa.exists(join(dir, "nope")), false);
    assert.equal(await fsa.exists(join(dir, "f", "under-a-file")), false);
  });
});

test("syncDir() succeeds on a directory after creates and renames", async () => {
  await withDir(async (dir) => {
    const f = await fsa.open(join(dir, "tmp"), { create: true });
    await f.write(enc("v"), 0);
    await f.sync();
    await f.close();
    await fsa.rename(join(dir, "tmp"), join(dir, "final"));
    await fsa.syncDir(dir);
    assert.deepEqual(await fsa.list(dir), ["final"]);
  });
});

test("a closed handle throws Closed, also on a second close", async () => {
  await withDir(async (dir) => {
    const f = await fsa.open(join(dir, "a"), { create: true });
    await f.close();
    await assert.rejects(f.read(new Uint8Array(1), 0), { code: "Closed" });
    await assert.rejects(f.write(enc("x"), 0), { code: "Closed" });
    await assert.rejects(f.size(), { code: "Closed" });
    await assert.rejects(f.sync(), { code: "Closed" });
    await assert.rejects(f.close(), { code: "Closed" });
  });
});

test("close() waits for writes in flight, which complete", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "a");
    const f = await fsa.open(path, { create: true });
    // 1 MiB writes go through the thread pool: they are still running when close() is called.
    const chunk = 1 << 20;
    const writes = range(8).map((i) => f.write(new Uint8Array(chunk).fill(i + 1), i * chunk));
    const closed = f.close();
    await Promise.all(writes);
    await closed;
    const back = fs.readFileSync(path);
    assert.equal(back.length, 8 * chunk);
    for (const i of range(8)) assert.equal(back[i * chunk + chunk - 1], i + 1);
  });
});

test("bad arguments throw TypeError or RangeError before any I/O", async () => {
  await withDir(async (dir) => {
    await assert.rejects(fsa.open(""), TypeError);
    await assert.rejects(fsa.open(42 as unknown as string), TypeError);
    const f = await fsa.open(join(dir, "a"), { create: true });
    await assert.rejects(f.write("text" as unknown as Uint8Array, 0), TypeError);
    await assert.rejects(f.write(enc("x"), -1), RangeError);
    await assert.rejects(f.read(new Uint8Array(1), 1.5), RangeError);
    await assert.rejects(f.truncate(Number.NaN), RangeError);
    await f.close();
  });
});

test("toFsError() maps errno codes, Deno error classes and unknowns", () => {
  const cases: [unknown, FsErrorCode][] = [
    [{ code: "ENOENT", message: "x" }, "NotFound"],
    [{ code: "EEXIST", message: "x" }, "AlreadyExists"],
    [{ code: "ENOTEMPTY", message: "x" }, "NotEmpty"],
    [{ code: "ENOSPC", message: "x" }, "NoSpace"],
    [{ code: "EDQUOT", message: "x" }, "NoSpace"],
    [{ code: "EIO", message: "x" }, "IO"],
    [{ code: "EACCES", message: "x" }, "Permission"],
    [{ code: "EPERM", message: "x" }, "Permission"],
    [{ code: "EROFS", message: "x" }, "Permission"],
    [{ code: "EBADF", message: "x" }, "Closed"],
    [{ code: "EISDIR", message: "x" }, "Other"],
    [Object.assign(new Error("gone"), { name: "NotFound" }), "NotFound"],
    [Object.assign(new Error("taken"), { name: "AlreadyExists" }), "AlreadyExists"],
    [Object.assign(new Error("no"), { name: "PermissionDenied" }), "Permission"],
    [new Error("plain"), "Other"],
    ["a string", "Other"],
    [null, "Other"],
  ];
  for (const [raw, code] of cases) {
    const err = toFsError(raw, "open", "p");
    assert.equal(err.code, code, JSON.stringify(raw));
    assert.equal(err.cause, raw);
    assert.match(err.message, /^Cannot open p: /);
  }
  const already = new FsError("IO", "Cannot write p: x");
  assert.equal(toFsError(already, "read", "q"), already);
});

test("real runtime errors arrive mapped on this runtime", async () => {
  await withDir(async (dir) => {
    const err = await fsa.open(join(dir, "missing")).catch((e: unknown) => e);
    assert.ok(err instanceof FsError);
    assert.equal(err.code, "NotFound");
    assert.ok(err.cause instanceof Error);
    assert.match(err.message, /^Cannot open .*missing: /);
  });
});

// ---------------------------------------------------------------------------
// Locks

test("a second lock of the same directory in this process fails Locked", async () => {
  await withDir(async (dir) => {
    const lock = await fsa.lock(dir);
    await assert.rejects(fsa.lock(dir), { code: "Locked" });
    // Another adapter instance and another spelling of the path share the registry.
    await assert.rejects(new NodeFileAdapter().lock(join(dir, ".")), { code: "Locked" });
    assert.deepEqual(await fsa.list(dir), [LOCK_FILE_NAME]);
    await lock.release();
    await lock.release();
    assert.deepEqual(await fsa.list(dir), []);
    const again = await fsa.lock(dir);
    await again.release();
  });
});

test("two concurrent lock() calls in one process: exactly one wins", async () => {
  await withDir(async (dir) => {
    const results = await Promise.allSettled([fsa.lock(dir), fsa.lock(dir), fsa.lock(dir)]);
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1);
    for (const r of results) {
      if (r.status === "rejected") assert.equal((r.reason as FsError).code, "Locked");
    }
    await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
  });
});

test("lock() of a missing directory fails NotFound and holds nothing", async () => {
  await withDir(async (dir) => {
    await assert.rejects(fsa.lock(join(dir, "nope")), { code: "NotFound" });
    await fs.promises.mkdir(join(dir, "nope"));
    await (await fsa.lock(join(dir, "nope"))).release();
  });
});

test("the lock file names this process, and release() leaves a foreign lock file alone", async () => {
  await withDir(async (dir) => {
    const lock = await fsa.lock(dir);
    const owner = JSON.parse(fs.readFileSync(join(dir, LOCK_FILE_NAME), "utf8")) as { pid: number };
    assert.equal(owner.pid, process.pid);
    // Someone replaced our lock file: releasing must not delete theirs.
    fs.writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify({ pid: 1, nonce: "theirs" }));
    await lock.release();
    assert.equal(fs.existsSync(join(dir, LOCK_FILE_NAME)), true);
  });
});

/** The command that runs a TypeScript file with this same runtime. */
function runtimeCommand(script: string): [string, string[]] {
  if (RUNTIME === "deno") return [process.execPath, ["run", "-A", "--no-check", script]];
  if (RUNTIME === "bun") return [process.execPath, [script]];
  return [process.execPath, ["--import", "tsx", script]];
}

/** Writes the child script: it tries to lock $IN_MEM_LOCK_DIR, says how it went, and holds a lock it got. */
function writeLockerScript(scriptDir: string): string {
  // .mts: the temp dir has no package.json saying "module", and the script awaits at top level.
  const script = join(scriptDir, "locker.mts");
  fs.writeFileSync(
    script,
    [
      `import process from "node:process";`,
      `import { NodeFileAdapter } from ${JSON.stringify(ADAPTER_URL)};`,
      `try {`,
      `  await new NodeFileAdapter().lock(process.env.IN_MEM_LOCK_DIR ?? "");`,
      `  process.stdout.write("locked\\n");`,
      `  setInterval(() => {}, 1000);`,
      `} catch (err) {`,
      `  process.stdout.write("refused " + (err as { code?: string }).code + "\\n");`,
      `}`,
    ].join("\n"),
  );
  return script;
}

/** Starts a locker child; resolves with its first line of output ("locked" or "refused <code>"). */
function startLocker(script: string, dir: string): { child: ChildProcess; said: Promise<string> } {
  const [cmd, args] = runtimeCommand(script);
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, IN_MEM_LOCK_DIR: dir, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const said = new Promise<string>((ok, fail) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`child said nothing within ${CHILD_TIMEOUT_MS} ms: ${err}`));
    }, CHILD_TIMEOUT_MS);
    child.stdout!.on("data", (d: Uint8Array) => {
      out += dec(d);
      if (out.includes("\n")) {
        clearTimeout(timer);
        ok(out.split("\n")[0]!);
      }
    });
    child.stderr!.on("data", (d: Uint8Array) => (err += dec(d)));
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (!out.includes("\n")) fail(new Error(`child exited with ${code} before saying: ${err}`));
    });
  });
  return { child, said };
}

/** Starts a child process of this runtime that locks `dir` and holds the lock until killed. */
async function spawnLocker(dir: string, scriptDir: string): Promise<ChildProcess> {
  const { child, said } = startLocker(writeLockerScript(scriptDir), dir);
  assert.equal(await said, "locked");
  return child;
}

function killAndWait(child: ChildProcess): Promise<void> {
  return new Promise<void>((ok) => {
    if (child.exitCode !== null || child.signalCode !== null) return ok();
    child.on("exit", () => ok());
    child.kill("SIGKILL");
  });
}

test("a lock held by another process fails Locked; once that process is killed it is taken over", async () => {
  await withDir(async (dir) => {
    const dbDir = join(dir, "db");
    fs.mkdirSync(dbDir);
    const child = await spawnLocker(dbDir, dir);
    try {
      const err = await fsa.lock(dbDir).catch((e: unknown) => e);
      assert.ok(err instanceof FsError);
      assert.equal(err.code, "Locked");
      assert.match(err.message, new RegExp(`process ${child.pid}`));
    } finally {
      await killAndWait(child);
    }
    // SIGKILL left the lock file behind, naming a dead pid: stale, taken over.
    assert.equal(fs.existsSync(join(dbDir, LOCK_FILE_NAME)), true);
    const lock = await fsa.lock(dbDir);
    const owner = JSON.parse(fs.readFileSync(join(dbDir, LOCK_FILE_NAME), "utf8")) as {
      pid: number;
    };
    assert.equal(owner.pid, process.pid);
    await lock.release();
    assert.deepEqual(await fsa.list(dbDir), []);
  });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const args = RUNTIME === "deno" ? ["eval", "0"] : ["-e", "0"];
  const r = spawnSync(process.execPath, args, { stdio: "ignore" });
  assert.equal(r.status, 0);
  assert.ok(r.pid !== undefined && r.pid > 0);
  return r.pid;
}

test("a stale lock file naming a dead pid is taken over", async () => {
  await withDir(async (dir) => {
    fs.writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify({ pid: deadPid() }) + "\n");
    const lock = await fsa.lock(dir);
    const owner = JSON.parse(fs.readFileSync(join(dir, LOCK_FILE_NAME), "utf8")) as { pid: number };
    assert.equal(owner.pid, process.pid);
    await lock.release();
  });
});

test("an unreadable (crash-truncated) lock file is stale; a live owner's is not", async () => {
  await withDir(async (dir) => {
    fs.writeFileSync(join(dir, LOCK_FILE_NAME), "");
    await (await fsa.lock(dir)).release();
    fs.writeFileSync(join(dir, LOCK_FILE_NAME), "\0\0\0garbage");
    await (await fsa.lock(dir)).release();
    // The parent of this test process is alive.
    fs.writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify({ pid: process.ppid }));
    await assert.rejects(fsa.lock(dir), { code: "Locked" });
  });
});

test("a dead breaker's LOCK.break does not block taking over a stale lock", async () => {
  await withDir(async (dir) => {
    const pid = deadPid();
    fs.writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify({ pid }));
    fs.writeFileSync(join(dir, "LOCK.break"), JSON.stringify({ pid }));
    const lock = await fsa.lock(dir);
    assert.deepEqual(await fsa.list(dir), [LOCK_FILE_NAME]);
    await lock.release();
  });
});

test("several processes racing for a stale lock: exactly one gets it", async () => {
  await withDir(async (dir) => {
    const dbDir = join(dir, "db");
    fs.mkdirSync(dbDir);
    fs.writeFileSync(join(dbDir, LOCK_FILE_NAME), JSON.stringify({ pid: deadPid() }));
    const script = writeLockerScript(dir);
    const lockers = range(4).map(() => startLocker(script, dbDir));
    try {
      const said = await Promise.all(lockers.map((l) => l.said));
      assert.equal(said.filter((s) => s === "locked").length, 1, said.join(", "));
      assert.deepEqual(said.filter((s) => s !== "locked"), [
        "refused Locked",
        "refused Locked",
        "refused Locked",
      ]);
    } finally {
      await Promise.all(lockers.map((l) => killAndWait(l.child)));
    }
  });
});

test("a live breaker's LOCK.break makes lock() fail Locked", async () => {
  await withDir(async (dir) => {
    fs.writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify({ pid: deadPid() }));
    fs.writeFileSync(join(dir, "LOCK.break"), JSON.stringify({ pid: process.ppid }));
    await assert.rejects(fsa.lock(dir), { code: "Locked" });
  });
});

test("Linux: a lock from before a reboot, or from an earlier process with our pid, is stale", {
  skip: IS_LINUX ? false : "boot id and process start times come from /proc (Linux only)",
}, async () => {
  await withDir(async (dir) => {
    // Another boot: even a pid that is alive now is not the owner.
    fs.writeFileSync(
      join(dir, LOCK_FILE_NAME),
      JSON.stringify({ pid: process.ppid, boot: "00000000-0000-0000-0000-000000000000" }),
    );
    await (await fsa.lock(dir)).release();
    // Our own pid but another start time: a container restart handed us the old pid.
    fs.writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify({ pid: process.pid, start: "1" }));
    await (await fsa.lock(dir)).release();
    // Our own pid and start time, yet not in our registry: held elsewhere in this process.
    const lock = await fsa.lock(dir);
    const mine = fs.readFileSync(join(dir, LOCK_FILE_NAME), "utf8");
    await lock.release();
    fs.writeFileSync(join(dir, LOCK_FILE_NAME), mine);
    await assert.rejects(fsa.lock(dir), /held by this process/);
  });
});

test("syncBlocking() makes a write durable like sync() and refuses a closed file", async () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), "in-mem-sync-blocking-"));
  try {
    const adapter = new NodeFileAdapter();
    const file = await adapter.open(join(dir, "f"), { create: true });
    await file.write(new Uint8Array([1, 2, 3]), 0);
    assert.equal(typeof file.syncBlocking, "function");
    file.syncBlocking!();
    const back = new Uint8Array(3);
    assert.equal(await file.read(back, 0), 3);
    assert.deepEqual(back, new Uint8Array([1, 2, 3]));
    await file.close();
    assert.throws(
      () => file.syncBlocking!(),
      (err: unknown) => err instanceof FsError && err.code === "Closed",
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
