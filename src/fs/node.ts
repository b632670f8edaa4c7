/**
 * The {@link FileAdapter} on `node:fs`, unchanged on Node, Deno and Bun.
 *
 * It works on raw file descriptors and picks the API per call, as measured
 * on Node, Deno and Bun: reads and writes of up to 256 KiB use the sync API
 * (a 128-byte write costs 2–5 µs that way against 50–150 µs through the
 * thread pool on Node and Bun; warm 64 KiB reads run 3–9× faster), so one
 * call blocks the event loop for at most one 256 KiB copy. `fdatasync`, `ftruncate`,
 * `close` and larger reads and writes use the callback API, so a commit
 * waiting for the disk never stalls the event loop and the next group of
 * commits can be written meanwhile (that costs about 100 µs per fsync on a
 * 2-vCPU VM against a blocking `fdatasyncSync`). The promise API's
 * `FileHandle` adds an object and a promise per call for nothing the engine
 * needs. Every runtime error becomes an {@link FsError} in one place,
 * {@link toFsError}.
 *
 * ## Durability on each platform
 *
 * - `sync()` is `fdatasync(2)`: data and the file size, not other metadata.
 *   On macOS `fdatasync` (and `fsync`) reach the drive but not its volatile
 *   cache — only `F_FULLFSYNC` would, and `node:fs` does not expose it — so
 *   a power cut can lose acknowledged writes there. Linux and Windows
 *   (`FlushFileBuffers`) flush the cache.
 * - `syncDir()` opens the directory read-only and fsyncs it (Linux, macOS,
 *   the BSDs). On Windows a directory cannot be opened that way and NTFS
 *   journals its entries, so it is a no-op there. Where a file system
 *   refuses to fsync a directory (EINVAL or EBADF, as on some network and
 *   FUSE file systems) the call succeeds, as PostgreSQL does.
 *
 * ## The directory lock
 *
 * `lock(dir)` creates `<dir>/LOCK` holding one line of JSON that names its
 * owner: pid, the kernel's boot id and the process's start time (both read
 * from `/proc` on Linux; empty elsewhere) and a random nonce. The file is
 * written under a temporary name and hard-linked into place, so `LOCK`
 * appears with its content complete and the link fails with EEXIST when it
 * is taken (on a file system without hard links, an exclusive create and a
 * write are used instead; an empty `LOCK` is then briefly visible). A
 * registry on `globalThis` (shared by every copy of this module in one
 * realm) makes a second lock of the same directory in this process fail with
 * "Locked" before the file is even looked at.
 *
 * When `LOCK` exists its owner is **dead** if: the boot id differs (the
 * machine rebooted); or the pid is ours but the start time is not (a
 * container restarted and we got the old pid); or `process.kill(pid, 0)`
 * fails with ESRCH; or the pid's start time differs (pid reused); or the
 * content is unreadable as an owner (only a crash leaves that, since the
 * file appears complete). A dead owner's lock is taken over under a second
 * lock, `LOCK.break`, taken the same way: the breaker re-reads `LOCK`,
 * removes it only if it is byte-for-byte the stale one it judged (the nonce
 * makes every lock file unique), and then competes for `LOCK` like anyone
 * else. So two processes that find the same stale lock cannot both take it,
 * and a breaker never removes a lock that a live process took meanwhile.
 *
 * Races not handled: a breaker that dies while holding `LOCK.break` leaves it
 * stale; the next breaker removes it after the same owner check, but two
 * processes doing that at the same moment could both remove and re-create
 * it and then both take `LOCK`. That needs a process to die inside a
 * window of a few system calls and two others to race inside it. Without
 * `/proc` (macOS, Windows) a reused pid makes a stale lock look alive
 * ("Locked" until the file is removed by hand), and a lock held by this
 * process in another realm (a worker) is "Locked" rather than taken over.
 * Like every lock file, it binds only processes that use it, and not across
 * hosts sharing a network file system. On Deno, judging an owner needs
 * `--allow-run` (for `process.kill(pid, 0)`) and, on Linux, read access to
 * `/proc`; without them a stale lock stays "Locked", with a message that
 * says so and names the file to remove.
 *
 * @example Lock a directory, write, sync, read back
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { NodeFileAdapter } from "./node.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
 * const fs = new NodeFileAdapter();
 * const lock = await fs.lock(dir);
 * const f = await fs.open(join(dir, "a.log"), { create: true });
 * await f.write(new TextEncoder().encode("hello"), 0);
 * await f.sync();
 * await fs.syncDir(dir);
 * const buf = new Uint8Array(16);
 * assert.equal(await f.read(buf, 0), 5);
 * await f.close();
 * assert.deepEqual(await fs.list(dir), ["LOCK", "a.log"]);
 * await lock.release();
 * rmSync(dir, { recursive: true });
 * ```
 *
 * @module
 */
import fs from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import {
  type FileAdapter,
  type FileHandle,
  type FileLock,
  FsError,
  type FsErrorCode,
  type OpenOptions,
} from "./types.ts";
import { typeName } from "../_type_name.ts";

/**
 * Largest single read or write handed to the runtime: Node refuses more
 * than 2^31 − 1 bytes per call, so larger buffers go in chunks.
 */
const MAX_IO_CHUNK_BYTES = 1 << 30;
/**
 * Reads and writes up to this size run synchronously: copying 256 KiB to or
 * from the page cache takes tens of microseconds, less than the thread-pool
 * round trip of the async API. Larger ones (checkpoints) go async so they
 * never hold the event loop for long.
 */
const MAX_INLINE_IO_BYTES = 256 * 1024;
/**
 * A write that makes no progress this many calls in a row is an I/O error,
 * not something to retry forever. Same rule as SimFS.
 */
const MAX_WRITE_STALLS = 8;
/** Name of the lock file inside a locked directory. */
export const LOCK_FILE_NAME = "LOCK";
const BREAK_FILE_NAME = "LOCK.break";
/** Rounds of create / judge / break before giving up on a lock file that keeps changing. */
const MAX_LOCK_ATTEMPTS = 4;
/** A lock file is one short JSON line; anything longer is not ours. */
const MAX_LOCK_FILE_BYTES = 4096;
const NONCE_BYTES = 12;
const LOCK_REGISTRY = Symbol.for("in-mem.fs.node.locks");

const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL } = fs.constants;

// ---------------------------------------------------------------------------
// Errors

const ERRNO_CODES: Readonly<Record<string, FsErrorCode>> = {
  ENOENT: "NotFound",
  EEXIST: "AlreadyExists",
  ENOTEMPTY: "NotEmpty",
  ENOSPC: "NoSpace",
  EDQUOT: "NoSpace",
  EIO: "IO",
  EACCES: "Permission",
  EPERM: "Permission",
  // A read-only mount refuses writes just as permissions do.
  EROFS: "Permission",
  EBADF: "Closed",
};

/** Deno's own error classes, if one leaks past its node:fs layer (matched by `name`). */
const DENO_ERROR_NAMES: Readonly<Record<string, FsErrorCode>> = {
  NotFound: "NotFound",
  AlreadyExists: "AlreadyExists",
  PermissionDenied: "Permission",
  NotCapable: "Permission",
  WriteZero: "IO",
  UnexpectedEof: "IO",
  BadResource: "Closed",
};

/**
 * Maps an error thrown by a runtime's file API to an {@link FsError}: errno
 * codes (`ENOENT` → "NotFound", `EEXIST` → "AlreadyExists", `ENOTEMPTY` →
 * "NotEmpty", `ENOSPC`/`EDQUOT` → "NoSpace", `EIO` → "IO",
 * `EACCES`/`EPERM`/`EROFS` → "Permission", `EBADF` → "Closed"), Deno's error
 * classes by name, anything else → "Other". An `FsError` passes through.
 *
 * @param err What the runtime threw.
 * @param action The verb for the message ("open", "write", …).
 * @param path The path involved.
 * @returns An `FsError` "Cannot <action> <path>: <detail>" with `cause` = `err`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toFsError } from "./node.ts";
 *
 * const enospc = Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
 * const err = toFsError(enospc, "write", "wal/000001.log");
 * assert.equal(err.code, "NoSpace");
 * assert.equal(err.cause, enospc);
 * assert.match(err.message, /^Cannot write wal\/000001\.log: ENOSPC/);
 * ```
 */
export function toFsError(err: unknown, action: string, path: string): FsError {
  if (err instanceof FsError) return err;
  const e = (typeof err === "object" && err !== null ? err : {}) as {
    code?: unknown;
    name?: unknown;
    message?: unknown;
  };
  let code: FsErrorCode = "Other";
  if (typeof e.code === "string" && e.code in ERRNO_CODES) code = ERRNO_CODES[e.code]!;
  else if (typeof e.name === "string" && e.name in DENO_ERROR_NAMES) {
    code = DENO_ERROR_NAMES[e.name]!;
  }
  const detail = typeof e.message === "string" && e.message !== "" ? e.message : String(err);
  return new FsError(code, `Cannot ${action} ${path}: ${detail}`, { cause: err });
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

// ---------------------------------------------------------------------------
// Promise wrappers over the callback API (one closure per call, no more)

type Callback<T> = (err: Error | null, value: T) => void;

function call<T>(action: string, path: string, fn: (cb: Callback<T>) => void): Promise<T> {
  return new Promise<T>((ok, fail) => {
    fn((err, value) => (err ? fail(toFsError(err, action, path)) : ok(value)));
  });
}

function callVoid(
  action: string,
  path: string,
  fn: (cb: (err: Error | null) => void) => void,
): Promise<void> {
  return new Promise<void>((ok, fail) => {
    fn((err) => (err ? fail(toFsError(err, action, path)) : ok()));
  });
}

function checkPath(path: unknown, action: string): asserts path is string {
  if (typeof path !== "string" || path === "") {
    throw new TypeError(
      `Cannot ${action}: path must be a non-empty string, got ${
        typeof path === "string" ? '""' : typeName(path)
      }`,
    );
  }
}

function checkOffset(value: unknown, what: string, action: string, path: string): void {
  if (!(typeof value === "number" && Number.isSafeInteger(value) && value >= 0)) {
    throw new RangeError(
      `Cannot ${action} ${path}: ${what} must be a non-negative safe integer, got ${String(value)}`,
    );
  }
}

function checkBuffer(value: unknown, action: string, path: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${action} ${path}: expected a Uint8Array, got ${typeName(value)}`);
  }
}

// ---------------------------------------------------------------------------
// File handle

class NodeHandle implements FileHandle {
  readonly #fd: number;
  readonly #path: string;
  readonly #readOnly: boolean;
  #closed = false;
  /** Calls in flight; close waits for them so the fd is never reused under one. */
  #inflight = 0;
  #drained: (() => void) | undefined;

  constructor(fd: number, path: string, readOnly: boolean) {
    this.#fd = fd;
    this.#path = path;
    this.#readOnly = readOnly;
  }

  #enter(action: string, writes: boolean): void {
    if (this.#closed) throw new FsError("Closed", `Cannot ${action} ${this.#path}: file is closed`);
    if (writes && this.#readOnly) {
      throw new FsError("Permission", `Cannot ${action} ${this.#path}: opened read-only`);
    }
    this.#inflight++;
  }

  #leave(): void {
    if (--this.#inflight === 0 && this.#drained !== undefined) this.#drained();
  }

  async read(buffer: Uint8Array, position: number): Promise<number> {
    checkBuffer(buffer, "read", this.#path);
    checkOffset(position, "position", "read", this.#path);
    this.#enter("read", false);
    try {
      let done = 0;
      // Loops until the buffer is full or a read returns 0 (end of file):
      // each turn either makes progress or ends the loop.
      while (done < buffer.length) {
        const want = Math.min(buffer.length - done, MAX_IO_CHUNK_BYTES);
        const at = position + done;
        const n = want <= MAX_INLINE_IO_BYTES
          ? this.#inline("read", () => fs.readSync(this.#fd, buffer, done, want, at))
          : await call<number>(
            "read",
            this.#path,
            (cb) => fs.read(this.#fd, buffer, done, want, at, cb),
          );
        if (n === 0) break;
        done += n;
      }
      return done;
    } finally {
      this.#leave();
    }
  }

  /** The argument checks `write` and `writeBlocking` share. */
  #checkWrite(data: Uint8Array, position: number): void {
    checkBuffer(data, "write", this.#path);
    checkOffset(position, "position", "write", this.#path);
    if (position + data.length > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`Cannot write ${this.#path}: position + length exceeds 2^53 - 1`);
    }
  }

  /** The error of a device that keeps accepting no bytes. */
  #stalled(): FsError {
    return new FsError(
      "IO",
      `Cannot write ${this.#path}: the device accepted no bytes ${MAX_WRITE_STALLS} times in a row`,
    );
  }

  writeBlocking(data: Uint8Array, position: number): void {
    this.#checkWrite(data, position);
    this.#enter("write", true);
    try {
      let done = 0;
      let stalls = 0;
      while (done < data.length) {
        const want = Math.min(data.length - done, MAX_IO_CHUNK_BYTES);
        const n = this.#inline(
          "write",
          () => fs.writeSync(this.#fd, data, done, want, position + done),
        );
        if (n > 0) {
          done += n;
          stalls = 0;
        } else if (++stalls >= MAX_WRITE_STALLS) {
          throw this.#stalled();
        }
      }
    } finally {
      this.#leave();
    }
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    this.#checkWrite(data, position);
    this.#enter("write", true);
    try {
      let done = 0;
      let stalls = 0;
      while (done < data.length) {
        const want = Math.min(data.length - done, MAX_IO_CHUNK_BYTES);
        const at = position + done;
        const n = want <= MAX_INLINE_IO_BYTES
          ? this.#inline("write", () => fs.writeSync(this.#fd, data, done, want, at))
          : await call<number>(
            "write",
            this.#path,
            (cb) => fs.write(this.#fd, data, done, want, at, cb),
          );
        if (n > 0) {
          done += n;
          stalls = 0;
        } else if (++stalls >= MAX_WRITE_STALLS) {
          throw this.#stalled();
        }
      }
    } finally {
      this.#leave();
    }
  }

  #inline<T>(action: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw toFsError(err, action, this.#path);
    }
  }

  size(): Promise<number> {
    try {
      this.#enter("stat", false);
    } catch (err) {
      return Promise.reject(err);
    }
    try {
      // fstat reads the inode from memory: cheaper inline than through the thread pool.
      return Promise.resolve(this.#inline("stat", () => fs.fstatSync(this.#fd).size));
    } catch (err) {
      return Promise.reject(err);
    } finally {
      this.#leave();
    }
  }

  async truncate(size: number): Promise<void> {
    checkOffset(size, "size", "truncate", this.#path);
    this.#enter("truncate", true);
    try {
      await callVoid("truncate", this.#path, (cb) => fs.ftruncate(this.#fd, size, cb));
    } finally {
      this.#leave();
    }
  }

  async sync(): Promise<void> {
    this.#enter("sync", false);
    try {
      await callVoid("sync", this.#path, (cb) => fs.fdatasync(this.#fd, cb));
    } finally {
      this.#leave();
    }
  }

  syncBlocking(): void {
    this.#enter("sync", false);
    try {
      fs.fdatasyncSync(this.#fd);
    } catch (err) {
      throw toFsError(err, "sync", this.#path);
    } finally {
      this.#leave();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) throw new FsError("Closed", `Cannot close ${this.#path}: file is closed`);
    this.#closed = true;
    if (this.#inflight > 0) {
      await new Promise<void>((done) => (this.#drained = done));
    }
    await callVoid("close", this.#path, (cb) => fs.close(this.#fd, cb));
  }
}

// ---------------------------------------------------------------------------
// Lock helpers

interface LockOwner {
  readonly pid: number;
  readonly boot: string;
  readonly start: string;
  readonly nonce: string;
}

function heldLocks(): Set<string> {
  const g = globalThis as unknown as Record<symbol, unknown>;
  let held = g[LOCK_REGISTRY];
  if (!(held instanceof Set)) {
    held = new Set<string>();
    g[LOCK_REGISTRY] = held;
  }
  return held as Set<string>;
}

function readProc(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or "". */
function startTimeOf(pid: number | "self"): string {
  const stat = readProc(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces and parentheses: count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return stat === "" ? "" : fields[19] ?? "";
}

let self: Omit<LockOwner, "nonce"> | undefined;

function selfOwner(): LockOwner {
  self ??= {
    pid: process.pid,
    boot: readProc("/proc/sys/kernel/random/boot_id").trim(),
    start: startTimeOf("self"),
  };
  const nonce = Array.from(
    globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return { ...self, nonce };
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<Record<keyof LockOwner, unknown>>;
    if (typeof v !== "object" || v === null) return undefined;
    if (!(typeof v.pid === "number" && Number.isSafeInteger(v.pid) && v.pid > 0)) return undefined;
    const str = (x: unknown): string => (typeof x === "string" ? x : "");
    return { pid: v.pid, boot: str(v.boot), start: str(v.start), nonce: str(v.nonce) };
  } catch {
    return undefined;
  }
}

type Liveness = "alive" | "dead" | { readonly unknown: string };

function liveness(pid: number): Liveness {
  try {
    process.kill(pid, 0);
    return "alive";
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === "ESRCH" || (err as { name?: unknown } | null)?.name === "NotFound") return "dead";
    // EPERM: it exists but belongs to someone else.
    if (errno === "EPERM") return "alive";
    // Deno without --allow-run, or anything unexpected: wrongly judging a live
    // owner dead would let two processes write one database, so say we cannot tell.
    return { unknown: err instanceof Error ? err.message : String(err) };
  }
}

type OwnerState = "alive" | "self" | "dead" | { readonly unknown: string };

function ownerState(owner: LockOwner): OwnerState {
  const me = selfOwner();
  if (owner.boot !== "" && me.boot !== "" && owner.boot !== me.boot) return "dead";
  if (owner.pid === me.pid) {
    return owner.start !== "" && me.start !== "" && owner.start !== me.start ? "dead" : "self";
  }
  const alive = liveness(owner.pid);
  if (alive !== "alive") return alive;
  if (owner.start !== "") {
    const start = startTimeOf(owner.pid);
    if (start !== "" && start !== owner.start) return "dead";
  }
  return "alive";
}

/** The content of a small file, or undefined if it does not exist. */
async function readSmall(path: string): Promise<string | undefined> {
  try {
    const fd = await call<number>("open", path, (cb) => fs.open(path, O_RDONLY, cb));
    try {
      const buf = new Uint8Array(MAX_LOCK_FILE_BYTES);
      const n = await call<number>("read", path, (cb) => fs.read(fd, buf, 0, buf.length, 0, cb));
      return new TextDecoder().decode(buf.subarray(0, n));
    } finally {
      await callVoid("close", path, (cb) => fs.close(fd, cb));
    }
  } catch (err) {
    if (err instanceof FsError && err.code === "NotFound") return undefined;
    throw err;
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await callVoid("remove", path, (cb) => fs.unlink(path, cb));
  } catch (err) {
    if (!(err instanceof FsError && err.code === "NotFound")) throw err;
  }
}

/**
 * Creates `target` holding `content`, atomically: false if it already exists.
 */
async function createWith(
  dir: string,
  target: string,
  content: string,
  nonce: string,
): Promise<boolean> {
  const temp = join(dir, `${LOCK_FILE_NAME}.${process.pid}.${nonce}.tmp`);
  await callVoid("create", temp, (cb) => fs.writeFile(temp, content, { flag: "wx" }, cb));
  try {
    await callVoid("lock", target, (cb) => fs.link(temp, target, cb));
    return true;
  } catch (err) {
    if (err instanceof FsError && err.code === "AlreadyExists") return false;
    const errno = errnoOf(err instanceof FsError ? err.cause : err);
    if (errno !== "EPERM" && errno !== "ENOTSUP" && errno !== "EOPNOTSUPP" && errno !== "ENOSYS") {
      throw err;
    }
    // No hard links here (FAT, some FUSE): exclusive create, then write.
    try {
      await callVoid("lock", target, (cb) => fs.writeFile(target, content, { flag: "wx" }, cb));
      return true;
    } catch (err2) {
      if (err2 instanceof FsError && err2.code === "AlreadyExists") return false;
      throw err2;
    }
  } finally {
    await unlinkIfPresent(temp);
  }
}

function lockedError(dir: string, owner: LockOwner | undefined, state: OwnerState): FsError {
  let detail = `held by process ${owner?.pid ?? "?"}`;
  if (state === "self") detail = "held by this process (another realm, or a lock never released)";
  else if (typeof state === "object") {
    detail += `, which may have died, but this process cannot check (${state.unknown}); ` +
      `remove ${join(dir, LOCK_FILE_NAME)} if no process uses it`;
  }
  return new FsError("Locked", `Cannot lock ${dir}: ${detail}`);
}

/**
 * Removes `LOCK` if it still holds `stale`, under `LOCK.break` so that two
 * processes judging the same stale lock cannot both remove it.
 */
async function breakStale(dir: string, lockPath: string, stale: string): Promise<void> {
  const breakPath = join(dir, BREAK_FILE_NAME);
  const me = selfOwner();
  const mine = JSON.stringify(me) + "\n";
  if (!(await createWith(dir, breakPath, mine, me.nonce))) {
    const other = await readSmall(breakPath);
    if (other === undefined) return; // the other breaker finished: judge LOCK again
    const owner = parseOwner(other);
    const state = owner === undefined ? "dead" : ownerState(owner);
    if (state !== "dead") {
      throw new FsError(
        "Locked",
        `Cannot lock ${dir}: another process is taking over a stale lock`,
      );
    }
    // A breaker died mid-takeover. This check-then-remove is the race documented above.
    if ((await readSmall(breakPath)) === other) await unlinkIfPresent(breakPath);
    return;
  }
  try {
    if ((await readSmall(lockPath)) === stale) await unlinkIfPresent(lockPath);
  } finally {
    await unlinkIfPresent(breakPath);
  }
}

async function acquire(dir: string): Promise<string> {
  const lockPath = join(dir, LOCK_FILE_NAME);
  for (let attempt = 0; attempt < MAX_LOCK_ATTEMPTS; attempt++) {
    const me = selfOwner();
    const content = JSON.stringify(me) + "\n";
    if (await createWith(dir, lockPath, content, me.nonce)) return content;
    const existing = await readSmall(lockPath);
    if (existing === undefined) continue; // released meanwhile
    const owner = parseOwner(existing);
    const state = owner === undefined ? "dead" : ownerState(owner);
    if (state !== "dead") throw lockedError(dir, owner, state);
    await breakStale(dir, lockPath, existing);
  }
  throw new FsError("Locked", `Cannot lock ${dir}: the lock file kept changing`);
}

class NodeLock implements FileLock {
  readonly #key: string;
  readonly #content: string;
  #released = false;

  constructor(key: string, content: string) {
    this.#key = key;
    this.#content = content;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    try {
      const lockPath = join(this.#key, LOCK_FILE_NAME);
      // Never remove a lock file that is not ours (ours was wrongly broken).
      if ((await readSmall(lockPath)) === this.#content) await unlinkIfPresent(lockPath);
    } finally {
      heldLocks().delete(this.#key);
    }
  }
}

// ---------------------------------------------------------------------------
// Adapter

/**
 * The file adapter on `node:fs`, for Node, Deno and Bun. See the module doc
 * for durability per platform and how the directory lock works.
 *
 * @example Error codes are the same on every runtime
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { NodeFileAdapter } from "@in-mem/core";
 *
 * const dir = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
 * const fs = new NodeFileAdapter();
 * await assert.rejects(fs.open(join(dir, "missing")), { code: "NotFound" });
 * await (await fs.open(join(dir, "x"), { create: true, exclusive: true })).close();
 * await assert.rejects(fs.open(join(dir, "x"), { create: true, exclusive: true }), {
 *   code: "AlreadyExists",
 * });
 * rmSync(dir, { recursive: true });
 * ```
 */
export class NodeFileAdapter implements FileAdapter {
  /**
   * Opens (or creates) a file for positional reads and writes.
   *
   * @param path The file.
   * @param options `create`, `exclusive` (with create), `readOnly`.
   * @returns The handle.
   * @throws {TypeError} If `path` is not a non-empty string.
   * @throws {FsError} "NotFound", "AlreadyExists", "Permission", "Other" (e.g. a directory).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { NodeFileAdapter } from "@in-mem/core";
   *
   * const dir = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
   * const fs = new NodeFileAdapter();
   * const file = await fs.open(join(dir, "data"), { create: true });
   * await file.write(new TextEncoder().encode("hello"), 0);
   * await file.sync();
   * assert.equal(await file.size(), 5);
   * await file.close();
   * const ro = await fs.open(join(dir, "data"), { readOnly: true });
   * const buf = new Uint8Array(8);
   * assert.equal(await ro.read(buf, 0), 5); // fewer than asked: end of file
   * assert.equal(new TextDecoder().decode(buf.subarray(0, 5)), "hello");
   * await assert.rejects(ro.write(buf, 0), { name: "FsError", code: "Permission" });
   * await ro.close();
   * rmSync(dir, { recursive: true });
   * ```
   */
  async open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    checkPath(path, "open");
    const readOnly = options.readOnly === true;
    let flags = readOnly ? O_RDONLY : O_RDWR;
    if (options.create === true) flags |= O_CREAT | (options.exclusive === true ? O_EXCL : 0);
    const fd = await call<number>("open", path, (cb) => fs.open(path, flags, 0o666, cb));
    return new NodeHandle(fd, path, readOnly);
  }

  /**
   * Names in a directory, sorted.
   *
   * @param dir The directory.
   * @returns The names (no `.` or `..`).
   * @throws {FsError} "NotFound", "Permission", "Other" (not a directory).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { NodeFileAdapter } from "@in-mem/core";
   *
   * const dir = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
   * const fs = new NodeFileAdapter();
   * for (const name of ["b.log", "a.log"]) {
   *   await (await fs.open(join(dir, name), { create: true })).close();
   * }
   * await fs.mkdir(join(dir, "sub"));
   * assert.deepEqual(await fs.list(dir), ["a.log", "b.log", "sub"]);
   * await assert.rejects(fs.list(join(dir, "missing")), { code: "NotFound" });
   * rmSync(dir, { recursive: true });
   * ```
   */
  async list(dir: string): Promise<string[]> {
    checkPath(dir, "list");
    const names = await call<string[]>("list", dir, (cb) => fs.readdir(dir, cb));
    return names.sort();
  }

  /**
   * Removes a file.
   *
   * @param path The file.
   * @returns Nothing.
   * @throws {FsError} "NotFound", "Permission", "Other".
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { NodeFileAdapter } from "@in-mem/core";
   *
   * const dir = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
   * const fs = new NodeFileAdapter();
   * const path = join(dir, "old.log");
   * await (await fs.open(path, { create: true })).close();
   * await fs.remove(path);
   * assert.equal(await fs.exists(path), false);
   * await assert.rejects(fs.remove(path), { name: "FsError", code: "NotFound" });
   * rmSync(dir, { recursive: true });
   * ```
   */
  remove(path: string): Promise<void> {
    checkPath(path, "remove");
    return callVoid("remove", path, (cb) => fs.unlink(path, cb));
  }

  /**
   * Renames a file atomically, replacing `to`.
   *
   * @param from The file.
   * @param to The new path.
   * @returns Nothing.
   * @throws {FsError} "NotFound", "Permission", "Other".
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { NodeFileAdapter } from "@in-mem/core";
   *
   * const dir = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
   * const fs = new NodeFileAdapter();
   * const put = async (name: string, text: string) => {
   *   const f = await fs.open(join(dir, name), { create: true });
   *   await f.write(new TextEncoder().encode(text), 0);
   *   await f.close();
   * };
   * await put("state", "old");
   * await put("state.tmp", "new");
   * await fs.rename(join(dir, "state.tmp"), join(dir, "state")); // replaces "state"
   * await fs.syncDir(dir); // makes the rename durable
   * assert.deepEqual(await fs.list(dir), ["state"]);
   * const f = await fs.open(join(dir, "state"), { readOnly: true });
   * const buf = new Uint8Array(3);
   * await f.read(buf, 0);
   * await f.close();
   * assert.equal(new TextDecoder().decode(buf), "new");
   * rmSync(dir, { recursive: true });
   * ```
   */
  rename(from: string, to: string): Promise<void> {
    checkPath(from, "rename");
    checkPath(to, "rename");
    return callVoid("rename", `${from} to ${to}`, (cb) => fs.rename(from, to, cb));
  }

  /**
   * Creates a directory and its missing parents.
   *
   * @param path The directory.
   * @returns Nothing.
   * @throws {FsError} "AlreadyExists" (a file is there), "Permission", "Other".
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { NodeFileAdapter } from "@in-mem/core";
   *
   * const dir = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
   * const fs = new NodeFileAdapter();
   * await fs.mkdir(join(dir, "db/wal")); // missing parents too
   * await fs.mkdir(join(dir, "db/wal")); // exists: no error
   * assert.deepEqual(await fs.list(join(dir, "db")), ["wal"]);
   * await (await fs.open(join(dir, "file"), { create: true })).close();
   * await assert.rejects(fs.mkdir(join(dir, "file")), { code: "AlreadyExists" });
   * rmSync(dir, { recursive: true });
   * ```
   */
  mkdir(path: string): Promise<void> {
    checkPath(path, "create directory");
    return call<string | undefined>(
      "create directory",
      path,
      (cb) => fs.mkdir(path, { recursive: true }, cb),
    ).then(() => {});
  }

  /**
   * Makes the directory's entries durable: opens it read-only and fsyncs it;
   * a no-op on Windows (see the module doc).
   *
   * @param path The directory.
   * @returns Nothing.
   * @throws {FsError} "NotFound", "IO", "Permission".
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { NodeFileAdapter } from "@in-mem/core";
   *
   * const dir = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
   * const fs = new NodeFileAdapter();
   * const f = await fs.open(join(dir, "wal.log"), { create: true });
   * await f.write(new Uint8Array([1, 2, 3]), 0);
   * await f.sync(); // the file's bytes
   * await f.close();
   * await fs.syncDir(dir); // its name in the directory
   * await assert.rejects(fs.syncDir(join(dir, "missing")), { code: "NotFound" });
   * rmSync(dir, { recursive: true });
   * ```
   */
  async syncDir(path: string): Promise<void> {
    checkPath(path, "sync directory");
    if (process.platform === "win32") return;
    const fd = await call<number>("sync directory", path, (cb) => fs.open(path, O_RDONLY, cb));
    try {
      await callVoid("sync directory", path, (cb) => fs.fsync(fd, cb));
    } catch (err) {
      const errno = errnoOf((err as FsError).cause);
      if (errno !== "EINVAL" && errno !== "EBADF") throw err;
    } finally {
      await callVoid("close", path, (cb) => fs.close(fd, cb));
    }
  }

  /**
   * Whether a file or directory exists.
   *
   * @param path The path.
   * @returns True if it exists.
   * @throws {FsError} "Permission" and other failures to look.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { NodeFileAdapter } from "@in-mem/core";
   *
   * const dir = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
   * const fs = new NodeFileAdapter();
   * assert.equal(await fs.exists(dir), true); // directories count
   * assert.equal(await fs.exists(join(dir, "LOCK")), false);
   * await (await fs.open(join(dir, "LOCK"), { create: true })).close();
   * assert.equal(await fs.exists(join(dir, "LOCK")), true);
   * assert.equal(await fs.exists(join(dir, "LOCK", "below-a-file")), false);
   * rmSync(dir, { recursive: true });
   * ```
   */
  async exists(path: string): Promise<boolean> {
    checkPath(path, "check");
    try {
      await call<fs.Stats>("check", path, (cb) => fs.stat(path, cb));
      return true;
    } catch (err) {
      const errno = errnoOf((err as FsError).cause);
      if (errno === "ENOENT" || errno === "ENOTDIR") return false;
      throw err;
    }
  }

  /**
   * Takes the exclusive lock of directory `dir` for this process, against
   * other processes and other locks in this one (see the module doc).
   *
   * @param dir An existing directory.
   * @returns The lock; `release()` removes the lock file.
   * @throws {FsError} "Locked" if another holder has it, "NotFound" if `dir` is missing.
   *
   * @example A second lock fails until the first is released
   * ```ts
   * import assert from "node:assert/strict";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { NodeFileAdapter } from "@in-mem/core";
   *
   * const dir = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
   * const fs = new NodeFileAdapter();
   * const lock = await fs.lock(dir);
   * await assert.rejects(fs.lock(dir), { name: "FsError", code: "Locked" });
   * await lock.release();
   * await (await fs.lock(dir)).release();
   * rmSync(dir, { recursive: true });
   * ```
   */
  async lock(dir: string): Promise<FileLock> {
    checkPath(dir, "lock");
    const key = await call<string>("lock", dir, (cb) => fs.realpath(resolve(dir), cb));
    const held = heldLocks();
    // Checked and claimed with no await in between: two lock() calls in this
    // process cannot both pass.
    if (held.has(key)) {
      throw new FsError("Locked", `Cannot lock ${dir}: already locked by this process`);
    }
    held.add(key);
    try {
      return new NodeLock(key, await acquire(key));
    } catch (err) {
      held.delete(key);
      throw err;
    }
  }
}
