/**
 * SimFS: a deterministic, seeded, in-memory {@link FileAdapter} that models
 * power loss and disk faults as `shared/RELIABILITY.md` describes. The crash
 * and fault tests of the WAL and the engine run on it.
 *
 * ## Model
 *
 * - **Files.** Each file (inode) has its **durable** bytes (what survives
 *   power loss), and its **view** (what reads return). Every write or
 *   truncate is also appended to one global, ordered list of **pending**
 *   operations. `sync()` applies the file's pending operations to its
 *   durable bytes, in order, and removes them from the list.
 * - **Directories.** Each directory has durable entries and view entries.
 *   Creating, renaming and removing a file (and `mkdir`) change the view at
 *   once and append a pending directory operation; `syncDir(dir)` makes the
 *   pending operations of that directory durable. A rename within one
 *   directory is one operation (atomic); a rename across directories is two
 *   (the new name first, then the removal of the old one), so a crash
 *   between them can leave both names. A directory's own name is an entry of
 *   its parent: files under a directory whose creation was never made
 *   durable vanish with it.
 * - **Crash.** {@link SimFS.crash} decides the fate of every pending
 *   operation (kept, dropped, torn) by the mode, applies the kept ones to the
 *   durable state in their original order, and returns a new SimFS holding
 *   only what is reachable from the root. The old SimFS is dead: every call
 *   on it or on its handles throws `FsError` "Closed".
 *
 * | mode | file data | directory entries |
 * |---|---|---|
 * | `dropUnsynced` | durable only | durable only |
 * | `prefixTorn` | pending ops in order up to a random cut; a write at the cut keeps a random byte prefix | the same prefix |
 * | `reorderSubset` | each op kept, dropped or (a write) torn to a random byte prefix | each kept or dropped |
 * | `sectorTrash` | each op kept, dropped or torn: every sector a torn write touched is left old, new or random | all kept |
 * | `sizeBeforeData` | the size the pending ops give persists; bytes past the durable size are zeros or garbage | all kept |
 * | `lostDirEntry` | all kept | durable only |
 *
 * With `powersafeOverwrite` (the default, SQLite's term) a torn write never
 * damages bytes outside its own range. Turned off, a sector trashed by
 * `sectorTrash` loses its other bytes too, including synced ones: the
 * engine survives that only if it never rewrites a sector that holds
 * acknowledged data.
 *
 * **Faults without a crash** are armed with {@link SimFS.inject} or the
 * `faults` option and target files by glob or predicate and by the count of
 * matching operations (`skip`), once or `persistent`: EIO on read, write and
 * directory sync; short writes (the device accepts fewer bytes per call and
 * `write` loops, as the real adapter does); ENOSPC after a partial write;
 * fsync EIO that either keeps the view (the kernel dropped the dirty pages
 * but reads still return them, so a retried `sync` "succeeds") or reverts it
 * to the durable bytes; misdirected writes (the view is right, the bytes
 * reach the medium at a wrong offset). **Faults at rest** are applied when
 * injected: bit flips in durable bytes and latent sector errors (reads of
 * the sector throw IO until a write touches it; they survive crashes).
 *
 * **Negative controls**: `lyingFsync` (sync makes nothing durable) and
 * `noDirSync` (syncDir makes nothing durable) exist so a test can prove the
 * crash checks would catch a missing fsync.
 *
 * All randomness comes from {@link SimRandom} seeded by the `seed` option
 * (and the `seed` argument of `crash`): the same seed and the same calls give
 * the same bytes. Every method does its work synchronously when called (the
 * returned promise is already settled), so the order of effects is the order
 * of calls. Every mutating call is numbered in {@link SimFS.ops}, and
 * {@link SimFS.haltAfter} stops the machine after exactly k of them, for
 * crash-at-every-point tests. {@link SimFS.stats} counts the faults fired by
 * kind and the crash states produced by mode.
 *
 * Paths use `/`; leading `/`, empty and `.` segments are ignored and `..`
 * goes up, so `/db/x`, `db/x` and `db/./x` name the same file. Directories
 * cannot be removed or renamed.
 *
 * @example Synced data survives power loss; unsynced data may not
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimFS } from "./sim.ts";
 *
 * const sim = new SimFS({ seed: 42 });
 * await sim.mkdir("db");
 * await sim.syncDir("");
 * const f = await sim.open("db/wal.log", { create: true });
 * await sim.syncDir("db");
 * await f.write(new TextEncoder().encode("committed"), 0);
 * await f.sync();
 * await f.write(new TextEncoder().encode(" pending"), 9);
 *
 * const after = sim.crash("dropUnsynced");
 * const text = new TextDecoder().decode(after.files().get("db/wal.log"));
 * assert.equal(text, "committed");
 * await assert.rejects(f.size(), { name: "FsError", code: "Closed" });
 * ```
 *
 * @module
 */
import {
  type FileAdapter,
  type FileHandle,
  type FileLock,
  FsError,
  type OpenOptions,
} from "./types.ts";
import { typeName } from "../_type_name.ts";

// ---------------------------------------------------------------------------
// Limits and defaults

/** Sector sizes SimFS models: classic disks, and 4Kn disks and most SSDs. */
export type SimSectorBytes = 512 | 4096;

const DEFAULT_SECTOR_BYTES: SimSectorBytes = 512;
/**
 * Large enough for any test workload, small enough that a runaway test meets
 * ENOSPC instead of exhausting the test process's memory.
 */
const DEFAULT_CAPACITY_BYTES = 1 << 30;
/**
 * A device that accepts no bytes this many calls in a row is treated as
 * broken (`write` throws IO) instead of being retried forever. Same rule as
 * the node adapter.
 */
const MAX_WRITE_STALLS = 8;
/** Operation log entries kept; later operations are still counted. */
const DEFAULT_OP_LOG_LIMIT = 1_000_000;
/** A misdirected write lands at most this many sectors away. */
const MISDIRECT_MAX_SECTORS = 8;
/** Rounds discarded after seeding, so nearby seeds give unrelated streams. */
const RANDOM_WARMUP_ROUNDS = 16;
const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

// ---------------------------------------------------------------------------
// Public types

/**
 * The power-loss models of {@link SimFS.crash}: what survives of the
 * operations not yet synced ("durable" = synced data, or a directory entry
 * whose directory was synced).
 *
 * | mode | file data | directory entries |
 * |---|---|---|
 * | `dropUnsynced` | durable only | durable only |
 * | `prefixTorn` | pending ops in order up to a random cut; a write at the cut keeps a random byte prefix | the same prefix |
 * | `reorderSubset` | each op kept, dropped or (a write) torn to a random byte prefix | each kept or dropped |
 * | `sectorTrash` | each op kept, dropped or torn: every sector a torn write touched is left old, new or random | all kept |
 * | `sizeBeforeData` | the size the pending ops give persists; bytes past the durable size are zeros or garbage | all kept |
 * | `lostDirEntry` | all kept | durable only |
 */
export type SimCrashMode =
  | "dropUnsynced"
  | "prefixTorn"
  | "reorderSubset"
  | "sectorTrash"
  | "sizeBeforeData"
  | "lostDirEntry";

/** Every {@link SimCrashMode}, in a fixed order (for loops and arbitraries). */
export const SIM_CRASH_MODES: readonly SimCrashMode[] = Object.freeze([
  "dropUnsynced",
  "prefixTorn",
  "reorderSubset",
  "sectorTrash",
  "sizeBeforeData",
  "lostDirEntry",
]);

/** The kinds of {@link SimFault}. */
export type SimFaultKind =
  | "readError"
  | "writeError"
  | "shortWrite"
  | "noSpace"
  | "syncError"
  | "syncDirError"
  | "misdirectedWrite"
  | "bitFlip"
  | "latentSectorError";

/** Every {@link SimFaultKind}, in a fixed order. */
export const SIM_FAULT_KINDS: readonly SimFaultKind[] = Object.freeze([
  "readError",
  "writeError",
  "shortWrite",
  "noSpace",
  "syncError",
  "syncDirError",
  "misdirectedWrite",
  "bitFlip",
  "latentSectorError",
]);

/**
 * Selects the paths a fault applies to: a glob (`*` and `?` within one path
 * segment, `**` across segments) or a predicate, matched against the
 * normalized path (no leading `/`, e.g. `db/wal/000001.log`).
 */
export type SimPathMatcher = string | ((path: string) => boolean);

/** Where and when an operation fault fires. */
export interface SimFaultTiming {
  /** The files (directories for `syncDirError`) it applies to. Default: all. */
  readonly path?: SimPathMatcher;
  /**
   * Matching operations that pass unharmed before it fires. Default 0.
   * `shortWrite` counts device calls (one `write` may make several).
   */
  readonly skip?: number;
  /** Fire on every matching operation after `skip`, not just once. Default false. */
  readonly persistent?: boolean;
}

/** EIO: `read` or `write` throws (nothing written), or `syncDir` throws (nothing made durable). */
export interface SimIoFault extends SimFaultTiming {
  /** Which operation fails. */
  readonly kind: "readError" | "writeError" | "syncDirError";
}

/** The device accepts fewer bytes than asked in one call; `write` loops. */
export interface SimShortWriteFault extends SimFaultTiming {
  /** Always "shortWrite". */
  readonly kind: "shortWrite";
  /** Bytes the device accepts in the call (0 stalls it). Default: random, at least 1, fewer than asked. */
  readonly bytes?: number;
}

/** ENOSPC after a partial write: some bytes land (pending, in the view), then `write` throws "NoSpace". */
export interface SimNoSpaceFault extends SimFaultTiming {
  /** Always "noSpace". */
  readonly kind: "noSpace";
  /** Bytes that land first (capped at the write's length − 1). Default: random. */
  readonly bytes?: number;
}

/**
 * `sync` throws IO and the file's pending operations are lost. With
 * `keepView` reads still return them and a retried `sync` succeeds (ext4 and
 * XFS behave so: the dirty pages were marked clean); without it the view
 * reverts to the durable bytes.
 */
export interface SimSyncFault extends SimFaultTiming {
  /** Always "syncError". */
  readonly kind: "syncError";
  /** Whether reads still return the lost writes. */
  readonly keepView: boolean;
}

/** `write` succeeds and reads return the right bytes, but the medium gets them at a wrong offset. */
export interface SimMisdirectedWriteFault extends SimFaultTiming {
  /** Always "misdirectedWrite". */
  readonly kind: "misdirectedWrite";
  /** Distance from the intended offset (the result is clamped at 0). Default: ±1..8 sectors. */
  readonly shiftBytes?: number;
}

/** At rest, applied when injected: flips one bit of every matching non-empty file. */
export interface SimBitFlipFault {
  /** Always "bitFlip". */
  readonly kind: "bitFlip";
  /** The files. Default: all. */
  readonly path?: SimPathMatcher;
  /** Byte to flip (files too short for it are left alone). Default: random per file. */
  readonly offset?: number;
  /** Bit 0..7 of that byte. Default: random. */
  readonly bit?: number;
}

/**
 * At rest, applied when injected: the sector holding `offset` of every
 * matching non-empty file becomes unreadable (reads touching it throw IO)
 * until a write touches it (the drive remaps it); it survives crashes.
 */
export interface SimLatentSectorFault {
  /** Always "latentSectorError". */
  readonly kind: "latentSectorError";
  /** The files. Default: all. */
  readonly path?: SimPathMatcher;
  /** A byte in the sector. Default: random per file. */
  readonly offset?: number;
}

/** One planned fault. */
export type SimFault =
  | SimIoFault
  | SimShortWriteFault
  | SimNoSpaceFault
  | SimSyncFault
  | SimMisdirectedWriteFault
  | SimBitFlipFault
  | SimLatentSectorFault;

/** How often a fault kind fired. */
export interface SimFaultCount {
  /** Firings of once-only faults (and at-rest faults). */
  once: number;
  /** Firings of persistent faults. */
  persistent: number;
}

/** Figures the reliability report needs; share one object across many SimFS with the `stats` option. */
export interface SimStats {
  /** Faults fired (in-flight) or applied (at rest), by kind. */
  readonly faults: Record<SimFaultKind, SimFaultCount>;
  /** Crash states produced, by mode; `explicit` counts {@link SimFS.crashWith}. */
  readonly crashes: Record<SimCrashMode | "explicit", number>;
}

/** A numbered mutating call, as {@link SimFS.ops} lists it. */
export interface SimOp {
  /** 1-based position among all mutating calls of this SimFS. */
  readonly n: number;
  /** The call. */
  readonly kind:
    | "create"
    | "write"
    | "truncate"
    | "sync"
    | "syncDir"
    | "rename"
    | "remove"
    | "mkdir";
  /** Normalized path (the source of a rename). */
  readonly path: string;
  /** Rename target. */
  readonly to?: string;
  /** Write position. */
  readonly offset?: number;
  /** Write length. */
  readonly length?: number;
  /** Truncate size. */
  readonly size?: number;
}

/** A pending (not yet durable) operation, as {@link SimFS.pendingOps} lists it. */
export interface SimPendingOp {
  /** A file's data write or truncate, or a directory entry change. */
  readonly kind: "write" | "truncate" | "dir";
  /** The file, or for "dir" the directory. */
  readonly path: string;
  /** Write: where it lands on the medium. Truncate: the new size. Dir: 0. */
  readonly offset: number;
  /** Write: its length. Otherwise 0. */
  readonly length: number;
  /** Human-readable, e.g. `rename a -> b`. */
  readonly description: string;
}

/**
 * What {@link SimFS.crashWith} does with one pending operation: keep it,
 * drop it, or (writes only) keep the first `tornBytes` bytes.
 */
export type SimFate = "keep" | "drop" | { readonly tornBytes: number };

/** Options of {@link SimFS}. */
export interface SimFSOptions {
  /** Seed of all randomness (a safe integer). Default 1. */
  readonly seed?: number;
  /** Sector size for `sectorTrash`, misdirected writes and latent errors. Default 512. */
  readonly sectorBytes?: SimSectorBytes;
  /** Total bytes of all files; writes past it fail with "NoSpace" after a partial write. Default 1 GiB. */
  readonly capacityBytes?: number;
  /** Torn writes never damage bytes outside their own range. Default true. */
  readonly powersafeOverwrite?: boolean;
  /** Negative control: `sync` makes nothing durable. Default false. */
  readonly lyingFsync?: boolean;
  /** Negative control: `syncDir` makes nothing durable. Default false. */
  readonly noDirSync?: boolean;
  /** Faults armed from the start. */
  readonly faults?: readonly SimFault[];
  /** Counters to add to (shared with the SimFS that `crash` returns). Default: new. */
  readonly stats?: SimStats;
  /** Operation log entries kept. Default 1 000 000. */
  readonly opLogLimit?: number;
}

// ---------------------------------------------------------------------------
// Randomness

/**
 * A small, fast, seeded pseudo-random generator (sfc32, seeded through
 * splitmix32). SimFS draws all its randomness from one; nothing uses
 * `Math.random`.
 *
 * @example Same seed, same stream
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimRandom } from "./sim.ts";
 *
 * const a = new SimRandom(7);
 * const b = new SimRandom(7);
 * assert.deepEqual(a.bytes(8), b.bytes(8));
 * const n = a.int(10);
 * assert.ok(n >= 0 && n < 10);
 * ```
 */
export class SimRandom {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /**
   * @param seed Any safe integer.
   * @throws {RangeError} If `seed` is not a safe integer.
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Cannot seed SimRandom: seed must be a safe integer, got ${seed}`);
    }
    let x = ((seed >>> 0) ^ Math.imul(Math.floor(seed / TWO_POW_32) >>> 0, 0x9e3779b9)) | 0;
    const splitmix = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) | 0;
    };
    this.#a = splitmix();
    this.#b = splitmix();
    this.#c = splitmix();
    this.#d = splitmix();
    for (let i = 0; i < RANDOM_WARMUP_ROUNDS; i++) this.u32();
  }

  /**
   * The next value.
   *
   * @returns An integer in [0, 2^32).
   */
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /**
   * A uniform integer below `bound`.
   *
   * @param bound A positive safe integer.
   * @returns An integer in [0, bound).
   * @throws {RangeError} If `bound` is not a positive safe integer.
   */
  int(bound: number): number {
    if (!(Number.isSafeInteger(bound) && bound > 0)) {
      throw new RangeError(
        `Cannot draw an integer: bound must be a positive safe integer, got ${bound}`,
      );
    }
    const unit = ((this.u32() >>> 5) * 67108864 + (this.u32() >>> 6)) / TWO_POW_53;
    return Math.min(bound - 1, Math.floor(unit * bound));
  }

  /**
   * Random bytes.
   *
   * @param length How many.
   * @returns A new array of `length` random bytes.
   */
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      let v = this.u32();
      for (let j = i; j < Math.min(length, i + 4); j++) {
        out[j] = v & 0xff;
        v >>>= 8;
      }
    }
    return out;
  }

  /**
   * A seed for another generator, drawn from this one.
   *
   * @returns A non-negative safe integer.
   */
  seed(): number {
    return (this.u32() >>> 0) * 2097152 + (this.u32() >>> 11);
  }
}

/**
 * New, zeroed counters for the `stats` option.
 *
 * @returns Counters with every fault kind and crash mode at 0.
 *
 * @example Share counters across simulated disks
 * ```ts
 * import assert from "node:assert/strict";
 * import { createSimStats, SimFS } from "./sim.ts";
 *
 * const stats = createSimStats();
 * new SimFS({ seed: 1, stats }).crash("prefixTorn");
 * new SimFS({ seed: 2, stats }).crash("prefixTorn");
 * assert.equal(stats.crashes.prefixTorn, 2);
 * assert.equal(stats.faults.syncError.once, 0);
 * ```
 */
export function createSimStats(): SimStats {
  const faults = {} as Record<SimFaultKind, SimFaultCount>;
  for (const kind of SIM_FAULT_KINDS) faults[kind] = { once: 0, persistent: 0 };
  const crashes = { explicit: 0 } as Record<SimCrashMode | "explicit", number>;
  for (const mode of SIM_CRASH_MODES) crashes[mode] = 0;
  return { faults, crashes };
}

// ---------------------------------------------------------------------------
// Internal state

/** A growable byte array. Bytes of `buf` past `size` are always zero. */
class Bytes {
  buf: Uint8Array;
  size: number;

  constructor(buf: Uint8Array = new Uint8Array(0), size: number = buf.length) {
    this.buf = buf;
    this.size = size;
  }

  clone(): Bytes {
    return new Bytes(this.buf.slice(0, this.size), this.size);
  }

  resize(size: number): void {
    if (size > this.buf.length) {
      const grown = new Uint8Array(Math.max(size, this.buf.length * 2, 64));
      grown.set(this.buf.subarray(0, this.size));
      this.buf = grown;
    } else if (size < this.size) {
      this.buf.fill(0, size, this.size);
    }
    this.size = size;
  }

  write(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    if (end > this.size) this.resize(end);
    this.buf.set(data, offset);
  }

  copy(): Uint8Array {
    return this.buf.slice(0, this.size);
  }
}

class Inode {
  durable: Bytes = new Bytes();
  view: Bytes = new Bytes();
  /** Names in the view namespace; at 0 the bytes no longer count against capacity. */
  links = 0;
  /** Indexes of unreadable sectors. */
  readonly badSectors: Set<number> = new Set();
}

type Entry = Inode | "dir";
/** Directory path → name → entry. Root is "". */
type Namespace = Map<string, Map<string, Entry>>;
type DirChange = readonly [name: string, entry: Entry | null];

type Pending =
  | {
    readonly kind: "write";
    readonly inode: Inode;
    readonly path: string;
    readonly offset: number;
    readonly data: Uint8Array;
  }
  | {
    readonly kind: "truncate";
    readonly inode: Inode;
    readonly path: string;
    readonly size: number;
  }
  | {
    readonly kind: "dir";
    readonly dir: string;
    readonly changes: readonly DirChange[];
    readonly description: string;
  };

type InternalFate = "keep" | "drop" | "trash" | number;

interface Armed {
  readonly fault: SimFault;
  readonly match: (path: string) => boolean;
  seen: number;
  spent: boolean;
}

interface Config {
  readonly sectorBytes: SimSectorBytes;
  readonly capacityBytes: number;
  readonly powersafeOverwrite: boolean;
  readonly lyingFsync: boolean;
  readonly noDirSync: boolean;
  readonly opLogLimit: number;
}

// ---------------------------------------------------------------------------
// Helpers

function checkPathArg(path: unknown, action: string): asserts path is string {
  if (typeof path !== "string") {
    throw new TypeError(`Cannot ${action}: path must be a string, got ${typeName(path)}`);
  }
}

/** `/db/./x/../y` → `db/y`; the root is "". */
function normalizePath(path: string): string {
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  return out.join("/");
}

function splitPath(path: string): [dir: string, name: string] {
  const i = path.lastIndexOf("/");
  return i < 0 ? ["", path] : [path.slice(0, i), path.slice(i + 1)];
}

function joinPath(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

function checkPosition(value: unknown, what: string, action: string, path: string): number {
  if (!(typeof value === "number" && Number.isSafeInteger(value) && value >= 0)) {
    throw new RangeError(
      `Cannot ${action} ${path}: ${what} must be a non-negative safe integer, got ${String(value)}`,
    );
  }
  return value;
}

function checkBytes(value: unknown, action: string, path: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${action} ${path}: expected a Uint8Array, got ${typeName(value)}`);
  }
  return value;
}

function compileMatcher(matcher: SimPathMatcher | undefined): (path: string) => boolean {
  if (matcher === undefined) return () => true;
  if (typeof matcher === "function") return matcher;
  if (typeof matcher !== "string") {
    throw new TypeError(
      `Cannot plan fault: path must be a glob string or a predicate, got ${typeName(matcher)}`,
    );
  }
  const glob = normalizePath(matcher);
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      // `**/` also matches no directory at all, so `**/x` matches `x`.
      if (glob[i + 2] === "/") {
        source += "(?:.*/)?";
        i += 2;
      } else {
        source += ".*";
        i += 1;
      }
    } else if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  const re = new RegExp(`^${source}$`);
  return (path) => re.test(path);
}

function checkCount(value: unknown, what: string): void {
  if (
    value !== undefined && !(typeof value === "number" && Number.isSafeInteger(value) && value >= 0)
  ) {
    throw new RangeError(
      `Cannot plan fault: ${what} must be a non-negative safe integer, got ${String(value)}`,
    );
  }
}

function checkFault(fault: SimFault): void {
  if (typeof fault !== "object" || fault === null) {
    throw new TypeError(`Cannot plan fault: expected an object, got ${typeName(fault)}`);
  }
  if (!SIM_FAULT_KINDS.includes(fault.kind)) {
    throw new RangeError(`Cannot plan fault: unknown kind ${String(fault.kind)}`);
  }
  const f = fault as unknown as Partial<Record<string, unknown>>;
  checkCount(f.skip, "skip");
  checkCount(f.bytes, "bytes");
  checkCount(f.offset, "offset");
  if (
    f.bit !== undefined &&
    !(Number.isInteger(f.bit) && (f.bit as number) >= 0 && (f.bit as number) < 8)
  ) {
    throw new RangeError(`Cannot plan fault: bit must be an integer in 0..7, got ${String(f.bit)}`);
  }
  if (f.shiftBytes !== undefined && !Number.isSafeInteger(f.shiftBytes)) {
    throw new RangeError(
      `Cannot plan fault: shiftBytes must be a safe integer, got ${String(f.shiftBytes)}`,
    );
  }
  if (fault.kind === "syncError" && typeof fault.keepView !== "boolean") {
    throw new TypeError("Cannot plan fault: syncError needs keepView: boolean");
  }
}

function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

function cloneNamespace(ns: Namespace): Namespace {
  const out: Namespace = new Map();
  for (const [dir, entries] of ns) out.set(dir, new Map(entries));
  return out;
}

function applyDirChanges(ns: Namespace, op: Extract<Pending, { kind: "dir" }>): void {
  let entries = ns.get(op.dir);
  if (entries === undefined) {
    entries = new Map();
    ns.set(op.dir, entries);
  }
  for (const [name, entry] of op.changes) {
    if (entry === null) entries.delete(name);
    else entries.set(name, entry);
  }
}

// ---------------------------------------------------------------------------
// The simulator

class SimCore {
  readonly config: Config;
  readonly rng: SimRandom;
  readonly stats: SimStats;
  readonly view: Namespace;
  readonly durable: Namespace;
  pending: Pending[] = [];
  faults: Armed[] = [];
  readonly log: SimOp[] = [];
  opCount = 0;
  haltAt = Infinity;
  halted = false;
  usedBytes = 0;
  readonly locks: Set<string> = new Set();
  dead = false;

  constructor(config: Config, seed: number, stats: SimStats, view: Namespace) {
    this.config = config;
    this.rng = new SimRandom(seed);
    this.stats = stats;
    this.view = view;
    this.durable = cloneNamespace(view);
    for (const entries of view.values()) {
      for (const entry of entries.values()) {
        if (entry === "dir") continue;
        entry.links++;
        if (entry.links === 1) this.usedBytes += entry.view.size;
      }
    }
  }

  // -- bookkeeping ----------------------------------------------------------

  alive(action: string, path: string): void {
    if (this.dead) {
      const what = path === "" ? action : `${action} ${path}`;
      throw new FsError(
        "Closed",
        `Cannot ${what}: this SimFS crashed; use the SimFS that crash() returned`,
      );
    }
  }

  record(op: Omit<SimOp, "n">): void {
    if (this.opCount >= this.haltAt) {
      this.halted = true;
      throw new FsError(
        "IO",
        `Cannot ${op.kind} ${op.path}: the simulated machine halted after operation ${this.haltAt}`,
      );
    }
    this.opCount++;
    if (this.log.length < this.config.opLogLimit) this.log.push({ n: this.opCount, ...op });
  }

  /** The first armed fault of `kind` that fires for an operation on `path`, if any. */
  fire(kind: SimFaultKind, path: string): SimFault | undefined {
    let fired: SimFault | undefined;
    for (const armed of this.faults) {
      if (armed.spent || armed.fault.kind !== kind || !armed.match(path)) continue;
      armed.seen++;
      if (fired !== undefined) continue;
      const timing = armed.fault as SimFaultTiming;
      if (armed.seen <= (timing.skip ?? 0)) continue;
      const persistent = timing.persistent === true;
      if (!persistent) armed.spent = true;
      this.stats.faults[kind][persistent ? "persistent" : "once"]++;
      fired = armed.fault;
    }
    return fired;
  }

  /** Sets or clears a view entry, keeping link counts and used bytes right. */
  setEntry(dir: string, name: string, entry: Entry | null): void {
    const entries = this.view.get(dir)!;
    const old = entries.get(name);
    if (old !== undefined && old !== "dir") {
      old.links--;
      if (old.links === 0) this.usedBytes -= old.view.size;
    }
    if (entry === null) entries.delete(name);
    else {
      entries.set(name, entry);
      if (entry === "dir") {
        if (!this.view.has(joinPath(dir, name))) this.view.set(joinPath(dir, name), new Map());
      } else {
        entry.links++;
        if (entry.links === 1) this.usedBytes += entry.view.size;
      }
    }
  }

  resizeView(inode: Inode, size: number): void {
    if (inode.links > 0) this.usedBytes += size - inode.view.size;
    inode.view.resize(size);
  }

  /** The entries of an existing view directory, or the error an OS would give. */
  dirEntries(dir: string, action: string, shown: string): Map<string, Entry> {
    const entries = this.view.get(dir);
    if (entries !== undefined) return entries;
    // Find the first missing or non-directory ancestor to choose the error.
    let cur = "";
    for (const segment of dir.split("/")) {
      const entry = this.view.get(cur)?.get(segment);
      if (entry === undefined) break;
      if (entry !== "dir") {
        throw new FsError(
          "Other",
          `Cannot ${action} ${shown}: ${joinPath(cur, segment)} is not a directory`,
        );
      }
      cur = joinPath(cur, segment);
    }
    throw new FsError("NotFound", `Cannot ${action} ${shown}: no such directory ${dir}`);
  }

  // -- adapter operations ---------------------------------------------------

  open(rawPath: string, options: OpenOptions): SimHandle {
    checkPathArg(rawPath, "open");
    this.alive("open", rawPath);
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Cannot open ${rawPath}: options must be an object, got ${typeName(options)}`,
      );
    }
    const path = normalizePath(rawPath);
    if (path === "") throw new FsError("Other", `Cannot open ${rawPath}: is a directory`);
    const [dir, name] = splitPath(path);
    const entries = this.dirEntries(dir, "open", rawPath);
    let entry = entries.get(name);
    if (entry === "dir") throw new FsError("Other", `Cannot open ${rawPath}: is a directory`);
    if (entry !== undefined) {
      if (options.create === true && options.exclusive === true) {
        throw new FsError("AlreadyExists", `Cannot create ${rawPath}: file exists`);
      }
    } else {
      if (options.create !== true) {
        throw new FsError("NotFound", `Cannot open ${rawPath}: no such file`);
      }
      this.record({ kind: "create", path });
      entry = new Inode();
      this.setEntry(dir, name, entry);
      this.pending.push({
        kind: "dir",
        dir,
        changes: [[name, entry]],
        description: `create ${path}`,
      });
    }
    return new SimHandle(this, entry, path, options.readOnly === true);
  }

  read(inode: Inode, path: string, buffer: Uint8Array, position: number): number {
    checkBytes(buffer, "read", path);
    checkPosition(position, "position", "read", path);
    if (this.fire("readError", path) !== undefined) {
      throw new FsError("IO", `Cannot read ${path}: input/output error (injected)`);
    }
    const size = inode.view.size;
    if (position >= size || buffer.length === 0) return 0;
    const n = Math.min(buffer.length, size - position);
    if (inode.badSectors.size > 0) {
      const s = this.config.sectorBytes;
      for (let sector = Math.floor(position / s); sector * s < position + n; sector++) {
        if (inode.badSectors.has(sector)) {
          throw new FsError(
            "IO",
            `Cannot read ${path}: unreadable sector at offset ${sector * s} (latent sector error)`,
          );
        }
      }
    }
    buffer.set(inode.view.buf.subarray(position, position + n));
    return n;
  }

  write(inode: Inode, path: string, data: Uint8Array, position: number): void {
    checkBytes(data, "write", path);
    checkPosition(position, "position", "write", path);
    if (position + data.length > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`Cannot write ${path}: position + length exceeds 2^53 - 1`);
    }
    this.record({ kind: "write", path, offset: position, length: data.length });
    if (data.length === 0) return;
    if (this.fire("writeError", path) !== undefined) {
      throw new FsError("IO", `Cannot write ${path}: input/output error (injected)`);
    }
    const noSpace = this.fire("noSpace", path) as SimNoSpaceFault | undefined;
    let landBeforeNoSpace = Infinity;
    if (noSpace !== undefined) {
      landBeforeNoSpace = Math.min(noSpace.bytes ?? this.rng.int(data.length), data.length - 1);
    }
    const misdirected = this.fire("misdirectedWrite", path) as SimMisdirectedWriteFault | undefined;
    let shift = 0;
    if (misdirected !== undefined) {
      shift = misdirected.shiftBytes ??
        (this.rng.int(2) === 0 ? 1 : -1) * this.config.sectorBytes *
          (1 + this.rng.int(MISDIRECT_MAX_SECTORS));
    }
    // The device loop: like a real adapter, keep writing what the device did not take.
    let done = 0;
    let stalls = 0;
    while (done < data.length) {
      let chunk = data.length - done;
      if (chunk >= 2) {
        const short = this.fire("shortWrite", path) as SimShortWriteFault | undefined;
        if (short !== undefined) {
          chunk = Math.min(chunk - 1, short.bytes ?? 1 + this.rng.int(chunk - 1));
        }
      }
      chunk = Math.min(chunk, landBeforeNoSpace - done);
      const at = position + done;
      const room = inode.links > 0 ? this.config.capacityBytes - this.usedBytes : Infinity;
      const fits = Math.max(0, inode.view.size + room - at);
      const outOfSpace = chunk > fits || done >= landBeforeNoSpace;
      chunk = Math.max(0, Math.min(chunk, fits));
      if (chunk > 0) {
        this.deviceWrite(inode, path, data.subarray(done, done + chunk), at, shift);
        done += chunk;
        stalls = 0;
      } else if (outOfSpace) {
        throw new FsError(
          "NoSpace",
          `Cannot write ${path}: no space left on device after ${done} of ${data.length} bytes`,
        );
      } else if (++stalls >= MAX_WRITE_STALLS) {
        throw new FsError(
          "IO",
          `Cannot write ${path}: the device accepted no bytes ${MAX_WRITE_STALLS} times in a row`,
        );
      }
    }
  }

  deviceWrite(inode: Inode, path: string, bytes: Uint8Array, at: number, shift: number): void {
    const data = bytes.slice();
    this.pending.push({ kind: "write", inode, path, offset: Math.max(0, at + shift), data });
    if (at + data.length > inode.view.size) this.resizeView(inode, at + data.length);
    inode.view.write(at, data);
    if (inode.badSectors.size > 0) {
      const s = this.config.sectorBytes;
      for (let sector = Math.floor(at / s); sector * s < at + data.length; sector++) {
        inode.badSectors.delete(sector);
      }
    }
  }

  truncate(inode: Inode, path: string, size: number): void {
    checkPosition(size, "size", "truncate", path);
    const room = inode.links > 0 ? this.config.capacityBytes - this.usedBytes : Infinity;
    if (size > inode.view.size + room) {
      throw new FsError("NoSpace", `Cannot truncate ${path}: no space left for ${size} bytes`);
    }
    this.record({ kind: "truncate", path, size });
    this.pending.push({ kind: "truncate", inode, path, size });
    this.resizeView(inode, size);
    const s = this.config.sectorBytes;
    for (const sector of inode.badSectors) if (sector * s >= size) inode.badSectors.delete(sector);
  }

  sync(inode: Inode, path: string): void {
    this.record({ kind: "sync", path });
    const fault = this.fire("syncError", path) as SimSyncFault | undefined;
    if (fault !== undefined) {
      this.pending = this.pending.filter((op) => op.kind === "dir" || op.inode !== inode);
      if (!fault.keepView) this.resizeViewTo(inode, inode.durable.clone());
      throw new FsError("IO", `Cannot sync ${path}: input/output error (injected)`);
    }
    if (this.config.lyingFsync) return;
    const rest: Pending[] = [];
    for (const op of this.pending) {
      if (op.kind === "dir" || op.inode !== inode) rest.push(op);
      else if (op.kind === "write") inode.durable.write(op.offset, op.data);
      else inode.durable.resize(op.size);
    }
    this.pending = rest;
  }

  resizeViewTo(inode: Inode, bytes: Bytes): void {
    if (inode.links > 0) this.usedBytes += bytes.size - inode.view.size;
    inode.view = bytes;
  }

  syncDir(rawPath: string): void {
    checkPathArg(rawPath, "sync directory");
    this.alive("sync directory", rawPath);
    const dir = normalizePath(rawPath);
    this.dirEntries(dir, "sync directory", rawPath);
    this.record({ kind: "syncDir", path: dir });
    if (this.fire("syncDirError", dir) !== undefined) {
      throw new FsError("IO", `Cannot sync directory ${rawPath}: input/output error (injected)`);
    }
    if (this.config.noDirSync) return;
    const rest: Pending[] = [];
    for (const op of this.pending) {
      if (op.kind === "dir" && op.dir === dir) applyDirChanges(this.durable, op);
      else rest.push(op);
    }
    this.pending = rest;
  }

  remove(rawPath: string): void {
    checkPathArg(rawPath, "remove");
    this.alive("remove", rawPath);
    const path = normalizePath(rawPath);
    const [dir, name] = splitPath(path);
    const entry = path === "" ? "dir" : this.dirEntries(dir, "remove", rawPath).get(name);
    if (entry === undefined) {
      throw new FsError("NotFound", `Cannot remove ${rawPath}: no such file`);
    }
    if (entry === "dir") {
      throw new FsError(
        "Other",
        `Cannot remove ${rawPath}: is a directory (SimFS removes files only)`,
      );
    }
    this.record({ kind: "remove", path });
    this.setEntry(dir, name, null);
    this.pending.push({ kind: "dir", dir, changes: [[name, null]], description: `remove ${path}` });
  }

  rename(rawFrom: string, rawTo: string): void {
    checkPathArg(rawFrom, "rename");
    checkPathArg(rawTo, "rename");
    this.alive("rename", rawFrom);
    const from = normalizePath(rawFrom);
    const to = normalizePath(rawTo);
    const shown = `${rawFrom} to ${rawTo}`;
    const [fromDir, fromName] = splitPath(from);
    const [toDir, toName] = splitPath(to);
    const entry = from === "" ? "dir" : this.dirEntries(fromDir, "rename", shown).get(fromName);
    if (entry === undefined) throw new FsError("NotFound", `Cannot rename ${shown}: no such file`);
    if (entry === "dir") {
      throw new FsError("Other", `Cannot rename ${shown}: SimFS renames files only`);
    }
    const target = to === "" ? "dir" : this.dirEntries(toDir, "rename", shown).get(toName);
    if (target === "dir") {
      throw new FsError("Other", `Cannot rename ${shown}: target is a directory`);
    }
    if (from === to) return;
    this.record({ kind: "rename", path: from, to });
    this.setEntry(toDir, toName, entry);
    this.setEntry(fromDir, fromName, null);
    const description = `rename ${from} -> ${to}`;
    if (fromDir === toDir) {
      this.pending.push({
        kind: "dir",
        dir: toDir,
        changes: [[fromName, null], [toName, entry]],
        description,
      });
    } else {
      this.pending.push({ kind: "dir", dir: toDir, changes: [[toName, entry]], description });
      this.pending.push({ kind: "dir", dir: fromDir, changes: [[fromName, null]], description });
    }
  }

  mkdir(rawPath: string): void {
    checkPathArg(rawPath, "create directory");
    this.alive("create directory", rawPath);
    const path = normalizePath(rawPath);
    if (path === "") return;
    const segments = path.split("/");
    let missingFrom = -1;
    let cur = "";
    for (let i = 0; i < segments.length; i++) {
      const entry = this.view.get(cur)?.get(segments[i]!);
      const next = joinPath(cur, segments[i]!);
      if (entry === undefined) {
        missingFrom = i;
        break;
      }
      if (entry !== "dir") {
        throw i === segments.length - 1
          ? new FsError("AlreadyExists", `Cannot create directory ${rawPath}: a file exists there`)
          : new FsError("Other", `Cannot create directory ${rawPath}: ${next} is not a directory`);
      }
      cur = next;
    }
    if (missingFrom < 0) return;
    this.record({ kind: "mkdir", path });
    for (let i = missingFrom; i < segments.length; i++) {
      const name = segments[i]!;
      this.setEntry(cur, name, "dir");
      this.pending.push({
        kind: "dir",
        dir: cur,
        changes: [[name, "dir"]],
        description: `mkdir ${joinPath(cur, name)}`,
      });
      cur = joinPath(cur, name);
    }
  }

  list(rawPath: string): string[] {
    checkPathArg(rawPath, "list");
    this.alive("list", rawPath);
    const dir = normalizePath(rawPath);
    return [...this.dirEntries(dir, "list", rawPath).keys()].sort();
  }

  exists(rawPath: string): boolean {
    checkPathArg(rawPath, "check");
    this.alive("check", rawPath);
    const path = normalizePath(rawPath);
    if (path === "") return true;
    const [dir, name] = splitPath(path);
    return this.view.get(dir)?.has(name) ?? false;
  }

  lock(rawPath: string): FileLock {
    checkPathArg(rawPath, "lock");
    this.alive("lock", rawPath);
    const dir = normalizePath(rawPath);
    this.dirEntries(dir, "lock", rawPath);
    if (this.locks.has(dir)) throw new FsError("Locked", `Cannot lock ${rawPath}: already locked`);
    this.locks.add(dir);
    let released = false;
    return {
      release: (): Promise<void> => {
        if (!released) {
          released = true;
          this.locks.delete(dir);
        }
        return Promise.resolve();
      },
    };
  }

  // -- faults ---------------------------------------------------------------

  inject(fault: SimFault): void {
    checkFault(fault);
    const match = compileMatcher(fault.path);
    if (fault.kind === "bitFlip" || fault.kind === "latentSectorError") {
      this.injectAtRest(fault, match);
      return;
    }
    this.faults.push({ fault, match, seen: 0, spent: false });
  }

  injectAtRest(fault: SimBitFlipFault | SimLatentSectorFault, match: (p: string) => boolean): void {
    for (const [path, inode] of this.fileEntries()) {
      if (!match(path)) continue;
      if (fault.kind === "bitFlip") {
        const size = inode.durable.size;
        const offset = fault.offset ?? (size > 0 ? this.rng.int(size) : 0);
        if (offset >= size) continue;
        const mask = 1 << (fault.bit ?? this.rng.int(8));
        inode.durable.buf[offset]! ^= mask;
        if (offset < inode.view.size) inode.view.buf[offset]! ^= mask;
      } else {
        const size = Math.max(inode.durable.size, inode.view.size);
        const offset = fault.offset ?? (size > 0 ? this.rng.int(size) : 0);
        if (offset >= size) continue;
        inode.badSectors.add(Math.floor(offset / this.config.sectorBytes));
      }
      this.stats.faults[fault.kind].once++;
    }
  }

  /** Every file reachable in the view, by path, sorted. */
  fileEntries(): [string, Inode][] {
    const out: [string, Inode][] = [];
    const stack = [""];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      for (const [name, entry] of this.view.get(dir) ?? []) {
        const path = joinPath(dir, name);
        if (entry === "dir") stack.push(path);
        else out.push([path, entry]);
      }
    }
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  // -- crash ----------------------------------------------------------------

  fatesFor(mode: SimCrashMode, rng: SimRandom): InternalFate[] {
    const ops = this.pending;
    switch (mode) {
      case "dropUnsynced":
        return ops.map(() => "drop");
      case "lostDirEntry":
        return ops.map((op) => (op.kind === "dir" ? "drop" : "keep"));
      case "sizeBeforeData":
        return ops.map((op) => (op.kind === "dir" ? "keep" : "drop"));
      case "prefixTorn": {
        const cut = rng.int(ops.length + 1);
        return ops.map((op, i): InternalFate => {
          if (i < cut) return "keep";
          if (i > cut || op.kind !== "write") return "drop";
          return rng.int(op.data.length);
        });
      }
      case "reorderSubset":
        return ops.map((op): InternalFate => {
          const pick = rng.int(3);
          if (pick === 0) return "keep";
          if (pick === 1) return "drop";
          return op.kind === "write" ? rng.int(op.data.length) : rng.int(2) === 0 ? "keep" : "drop";
        });
      case "sectorTrash":
        return ops.map((op): InternalFate => {
          if (op.kind === "dir") return "keep";
          const pick = rng.int(3);
          if (pick === 0) return "keep";
          if (pick === 1) return "drop";
          return op.kind === "write" ? "trash" : rng.int(2) === 0 ? "keep" : "drop";
        });
    }
  }

  crash(fates: readonly InternalFate[], rng: SimRandom, sizeBeforeData: boolean): SimCore {
    const ns = cloneNamespace(this.durable);
    const data = new Map<Inode, Bytes>();
    const bytesOf = (inode: Inode): Bytes => {
      let b = data.get(inode);
      if (b === undefined) {
        b = inode.durable.clone();
        data.set(inode, b);
      }
      return b;
    };
    const sizes = new Map<Inode, number>();
    this.pending.forEach((op, i) => {
      const fate = fates[i]!;
      if (op.kind === "dir") {
        if (fate === "keep") applyDirChanges(ns, op);
        return;
      }
      const before = sizes.get(op.inode) ?? op.inode.durable.size;
      sizes.set(
        op.inode,
        op.kind === "write" ? Math.max(before, op.offset + op.data.length) : op.size,
      );
      if (fate === "drop") return;
      if (op.kind === "truncate") {
        if (fate === "keep") bytesOf(op.inode).resize(op.size);
      } else if (fate === "keep") bytesOf(op.inode).write(op.offset, op.data);
      else if (fate === "trash") this.trash(bytesOf(op.inode), op.offset, op.data, rng);
      else if (fate > 0) bytesOf(op.inode).write(op.offset, op.data.subarray(0, fate));
    });
    if (sizeBeforeData) {
      for (const [inode, size] of sizes) {
        const b = bytesOf(inode);
        const durableSize = b.size;
        b.resize(size);
        if (size > durableSize && rng.int(2) === 1) {
          b.buf.set(rng.bytes(size - durableSize), durableSize);
        }
      }
    }
    // Keep only what is reachable from the root; directories are a tree, so
    // the walk is bounded by their number.
    const view: Namespace = new Map();
    const renew = new Map<Inode, Inode>();
    const stack = [""];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      const entries = new Map<string, Entry>();
      view.set(dir, entries);
      for (const [name, entry] of ns.get(dir) ?? []) {
        if (entry === "dir") {
          stack.push(joinPath(dir, name));
          entries.set(name, "dir");
          continue;
        }
        let fresh = renew.get(entry);
        if (fresh === undefined) {
          fresh = new Inode();
          fresh.durable = data.get(entry) ?? entry.durable.clone();
          fresh.view = fresh.durable.clone();
          for (const sector of entry.badSectors) fresh.badSectors.add(sector);
          renew.set(entry, fresh);
        }
        entries.set(name, fresh);
      }
    }
    this.dead = true;
    return new SimCore(this.config, rng.seed(), this.stats, view);
  }

  /** A write torn at sector granularity: each sector it touched ends old, new or random. */
  trash(target: Bytes, offset: number, data: Uint8Array, rng: SimRandom): void {
    const s = this.config.sectorBytes;
    const end = offset + data.length;
    if (end > target.size) target.resize(end);
    for (let lo = Math.floor(offset / s) * s; lo < end; lo += s) {
      const from = Math.max(lo, offset);
      const to = Math.min(lo + s, end);
      const pick = rng.int(3);
      if (pick === 0) target.write(from, data.subarray(from - offset, to - offset));
      else if (pick === 2) {
        const gLo = this.config.powersafeOverwrite ? from : lo;
        const gHi = this.config.powersafeOverwrite ? to : Math.min(lo + s, target.size);
        target.buf.set(rng.bytes(gHi - gLo), gLo);
      }
    }
  }
}

class SimHandle implements FileHandle {
  readonly #core: SimCore;
  readonly #inode: Inode;
  readonly #path: string;
  readonly #readOnly: boolean;
  #closed = false;

  constructor(core: SimCore, inode: Inode, path: string, readOnly: boolean) {
    this.#core = core;
    this.#inode = inode;
    this.#path = path;
    this.#readOnly = readOnly;
  }

  #check(action: string, writes: boolean): void {
    this.#core.alive(action, this.#path);
    if (this.#closed) throw new FsError("Closed", `Cannot ${action} ${this.#path}: file is closed`);
    if (writes && this.#readOnly) {
      throw new FsError("Permission", `Cannot ${action} ${this.#path}: opened read-only`);
    }
  }

  read(buffer: Uint8Array, position: number): Promise<number> {
    return settle(() => {
      checkBytes(buffer, "read", this.#path);
      checkPosition(position, "position", "read", this.#path);
      this.#check("read", false);
      return this.#core.read(this.#inode, this.#path, buffer, position);
    });
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return settle(() => {
      checkBytes(data, "write", this.#path);
      checkPosition(position, "position", "write", this.#path);
      this.#check("write", true);
      this.#core.write(this.#inode, this.#path, data, position);
    });
  }

  writeBlocking(data: Uint8Array, position: number): void {
    checkBytes(data, "write", this.#path);
    checkPosition(position, "position", "write", this.#path);
    this.#check("write", true);
    this.#core.write(this.#inode, this.#path, data, position);
  }

  size(): Promise<number> {
    return settle(() => {
      this.#check("stat", false);
      return this.#inode.view.size;
    });
  }

  truncate(size: number): Promise<void> {
    return settle(() => {
      checkPosition(size, "size", "truncate", this.#path);
      this.#check("truncate", true);
      this.#core.truncate(this.#inode, this.#path, size);
    });
  }

  sync(): Promise<void> {
    return settle(() => {
      this.#check("sync", false);
      this.#core.sync(this.#inode, this.#path);
    });
  }

  close(): Promise<void> {
    return settle(() => {
      this.#check("close", false);
      this.#closed = true;
    });
  }
}

function resolveConfig(options: SimFSOptions): Config {
  const sectorBytes = options.sectorBytes ?? DEFAULT_SECTOR_BYTES;
  if (sectorBytes !== 512 && sectorBytes !== 4096) {
    throw new RangeError(
      `Cannot create SimFS: sectorBytes must be 512 or 4096, got ${String(sectorBytes)}`,
    );
  }
  const capacityBytes = options.capacityBytes ?? DEFAULT_CAPACITY_BYTES;
  if (!(Number.isSafeInteger(capacityBytes) && capacityBytes >= 0)) {
    throw new RangeError(
      `Cannot create SimFS: capacityBytes must be a non-negative safe integer, got ${
        String(capacityBytes)
      }`,
    );
  }
  const opLogLimit = options.opLogLimit ?? DEFAULT_OP_LOG_LIMIT;
  if (!(Number.isSafeInteger(opLogLimit) && opLogLimit >= 0)) {
    throw new RangeError(
      `Cannot create SimFS: opLogLimit must be a non-negative safe integer, got ${
        String(opLogLimit)
      }`,
    );
  }
  return {
    sectorBytes,
    capacityBytes,
    opLogLimit,
    powersafeOverwrite: options.powersafeOverwrite ?? true,
    lyingFsync: options.lyingFsync ?? false,
    noDirSync: options.noDirSync ?? false,
  };
}

/**
 * The simulated disk: a {@link FileAdapter} held in memory, with power loss
 * ({@link SimFS.crash}), fault injection ({@link SimFS.inject}) and an
 * operation log for crash-at-every-point tests. See the module doc for the
 * model.
 *
 * @example A rename that was never made durable reverts
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimFS } from "@in-mem/core";
 *
 * const sim = new SimFS({ seed: 3 });
 * const f = await sim.open("state.tmp", { create: true });
 * await f.write(new Uint8Array([1, 2, 3]), 0);
 * await f.sync();
 * await sim.syncDir("");
 * await sim.rename("state.tmp", "state");
 * assert.deepEqual(await sim.list(""), ["state"]);
 *
 * const after = sim.crash("lostDirEntry");
 * assert.deepEqual(await after.list(""), ["state.tmp"]);
 * assert.equal(sim.ops().length, 5);
 * assert.equal(sim.stats.crashes.lostDirEntry, 1);
 * ```
 */
export class SimFS implements FileAdapter {
  #core: SimCore;
  readonly #options: SimFSOptions;

  /**
   * Creates an empty simulated disk (just the root directory).
   *
   * @param options Seed, sector size, capacity, negative controls, initial faults, shared stats.
   * @throws {RangeError} If an option is out of range or a fault is malformed.
   * @throws {TypeError} If a fault has the wrong shape.
   */
  constructor(options: SimFSOptions = {}) {
    const seed = options.seed ?? 1;
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Cannot create SimFS: seed must be a safe integer, got ${String(seed)}`);
    }
    this.#options = options;
    const root: Namespace = new Map([["", new Map()]]);
    this.#core = new SimCore(resolveConfig(options), seed, options.stats ?? createSimStats(), root);
    for (const fault of options.faults ?? []) this.#core.inject(fault);
  }

  static #wrap(core: SimCore, options: SimFSOptions): SimFS {
    const fs = new SimFS({ ...options, faults: [] });
    fs.#core = core;
    return fs;
  }

  /**
   * Opens (or creates) a file; see {@link FileAdapter.open}.
   *
   * @param path The file.
   * @param options `create`, `exclusive`, `readOnly`.
   * @returns The handle.
   * @throws {FsError} "NotFound", "AlreadyExists", "Other" (a directory), "Closed" (crashed), "IO" (halted).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS({ seed: 5 });
   * const f = await sim.open("data", { create: true });
   * await sim.syncDir(""); // the new name
   * await f.write(new TextEncoder().encode("saved"), 0);
   * await f.sync(); // the bytes
   * await f.write(new TextEncoder().encode("!"), 5); // never synced
   * const after = sim.crash("dropUnsynced");
   * const g = await after.open("data", { readOnly: true });
   * const buf = new Uint8Array(8);
   * assert.equal(await g.read(buf, 0), 5);
   * assert.equal(new TextDecoder().decode(buf.subarray(0, 5)), "saved");
   * await assert.rejects(after.open("data", { create: true, exclusive: true }), {
   *   code: "AlreadyExists",
   * });
   * ```
   */
  open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    return settle(() => this.#core.open(path, options));
  }

  /**
   * Names in a directory, sorted.
   *
   * @param dir The directory ("" or "/" for the root).
   * @returns The names.
   * @throws {FsError} "NotFound", "Other" (not a directory), "Closed".
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * await sim.mkdir("db/wal");
   * await sim.open("db/b", { create: true });
   * await sim.open("db/a", { create: true });
   * assert.deepEqual(await sim.list("db"), ["a", "b", "wal"]);
   * assert.deepEqual(await sim.list(""), ["db"]);
   * await assert.rejects(sim.list("nope"), { name: "FsError", code: "NotFound" });
   * ```
   */
  list(dir: string): Promise<string[]> {
    return settle(() => this.#core.list(dir));
  }

  /**
   * Removes a file (pending until `syncDir` of its directory).
   *
   * @param path The file.
   * @returns Nothing.
   * @throws {FsError} "NotFound", "Other" (a directory), "Closed", "IO" (halted).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * await sim.open("old.log", { create: true });
   * await sim.syncDir("");
   * await sim.remove("old.log");
   * assert.equal(await sim.exists("old.log"), false);
   * // Not durable until the directory is synced: after power loss it is back.
   * assert.equal(await sim.crash("dropUnsynced").exists("old.log"), true);
   * ```
   */
  remove(path: string): Promise<void> {
    return settle(() => this.#core.remove(path));
  }

  /**
   * Renames a file, replacing `to` (pending until `syncDir`).
   *
   * @param from The file.
   * @param to Its new path.
   * @returns Nothing.
   * @throws {FsError} "NotFound", "Other" (directories), "Closed", "IO" (halted).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * const tmp = await sim.open("state.tmp", { create: true });
   * await tmp.write(new Uint8Array([7]), 0);
   * await tmp.sync();
   * await sim.rename("state.tmp", "state");
   * await sim.syncDir(""); // the create and the rename, durable together
   * const after = sim.crash("dropUnsynced");
   * assert.deepEqual([...after.files()], [["state", new Uint8Array([7])]]);
   * ```
   */
  rename(from: string, to: string): Promise<void> {
    return settle(() => this.#core.rename(from, to));
  }

  /**
   * Creates a directory and its missing parents (each pending until `syncDir` of its parent).
   *
   * @param path The directory.
   * @returns Nothing.
   * @throws {FsError} "AlreadyExists" (a file is there), "Other", "Closed", "IO" (halted).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * await sim.mkdir("data/db"); // and "data"
   * assert.equal(await sim.exists("data/db"), true);
   * await sim.syncDir(""); // "data" is durable; "data/db" needs syncDir("data")
   * const after = sim.crash("dropUnsynced");
   * assert.deepEqual([await after.exists("data"), await after.exists("data/db")], [true, false]);
   * ```
   */
  mkdir(path: string): Promise<void> {
    return settle(() => this.#core.mkdir(path));
  }

  /**
   * Makes the pending entry changes of a directory durable.
   *
   * @param path The directory.
   * @returns Nothing.
   * @throws {FsError} "NotFound", "Other" (not a directory), "IO" (injected or halted), "Closed".
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const write = async (sim: SimFS, name: string) => {
   *   const f = await sim.open(name, { create: true });
   *   await f.write(new Uint8Array([1]), 0);
   *   await f.sync(); // data and size, but not the name
   * };
   * const unsynced = new SimFS();
   * await write(unsynced, "wal.log");
   * assert.equal(await unsynced.crash("dropUnsynced").exists("wal.log"), false);
   *
   * const synced = new SimFS();
   * await write(synced, "wal.log");
   * await synced.syncDir("");
   * assert.equal(await synced.crash("dropUnsynced").exists("wal.log"), true);
   * ```
   */
  syncDir(path: string): Promise<void> {
    return settle(() => this.#core.syncDir(path));
  }

  /**
   * Whether a file or directory exists (in the view).
   *
   * @param path The path.
   * @returns True if it exists.
   * @throws {FsError} "Closed".
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * assert.equal(await sim.exists("db"), false);
   * await sim.mkdir("db");
   * await sim.open("db/x", { create: true });
   * assert.equal(await sim.exists("db"), true);
   * assert.equal(await sim.exists("/db/./x"), true); // paths are normalized
   * ```
   */
  exists(path: string): Promise<boolean> {
    return settle(() => this.#core.exists(path));
  }

  /**
   * Takes the exclusive lock of a directory within this simulated machine.
   *
   * @param dir An existing directory.
   * @returns The lock.
   * @throws {FsError} "Locked" if held, "NotFound", "Closed".
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * await sim.mkdir("db");
   * const lock = await sim.lock("db");
   * await assert.rejects(sim.lock("db"), { name: "FsError", code: "Locked" });
   * await lock.release();
   * await (await sim.lock("db")).release();
   * ```
   */
  lock(dir: string): Promise<FileLock> {
    return settle(() => this.#core.lock(dir));
  }

  /**
   * Power loss: decides the fate of every pending operation by `mode` (see
   * the module doc) and returns the file system as it is after reboot. This
   * SimFS and its handles are dead afterwards.
   *
   * @param mode The crash model.
   * @param seed Seed of the crash's choices. Default: drawn from this SimFS's generator.
   * @returns A new SimFS with the surviving state, no pending operations, no armed faults.
   * @throws {RangeError} If `mode` is unknown or `seed` is not a safe integer.
   * @throws {FsError} "Closed" if this SimFS already crashed.
   *
   * @example An unsynced append is torn at a random byte
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS({ seed: 9 });
   * const f = await sim.open("log", { create: true });
   * await sim.syncDir("");
   * await f.write(new Uint8Array(100).fill(1), 0);
   * const size = sim.crash("prefixTorn").files().get("log")!.length;
   * assert.ok(size >= 0 && size <= 100);
   * ```
   */
  crash(mode: SimCrashMode, seed?: number): SimFS {
    this.#core.alive("crash", "");
    if (!SIM_CRASH_MODES.includes(mode)) {
      throw new RangeError(`Cannot crash: unknown mode ${String(mode)}`);
    }
    if (seed !== undefined && !Number.isSafeInteger(seed)) {
      throw new RangeError(`Cannot crash: seed must be a safe integer, got ${String(seed)}`);
    }
    const rng = new SimRandom(seed ?? this.#core.rng.seed());
    const fates = this.#core.fatesFor(mode, rng);
    const core = this.#core.crash(fates, rng, mode === "sizeBeforeData");
    core.stats.crashes[mode]++;
    return SimFS.#wrap(core, this.#options);
  }

  /**
   * Power loss with the fate of every pending operation given, for tests
   * that enumerate crash states exhaustively.
   *
   * @param fates One per {@link SimFS.pendingOps} entry, in order.
   * @returns A new SimFS with the surviving state; this one is dead.
   * @throws {RangeError} If the fates do not match the pending operations.
   * @throws {FsError} "Closed" if this SimFS already crashed.
   *
   * @example Keep the create, tear the write after 3 bytes
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * const f = await sim.open("log", { create: true });
   * await f.write(new Uint8Array([1, 2, 3, 4, 5]), 0);
   * assert.deepEqual(sim.pendingOps().map((p) => p.kind), ["dir", "write"]);
   * const after = sim.crashWith(["keep", { tornBytes: 3 }]);
   * assert.deepEqual([...after.files().get("log")!], [1, 2, 3]);
   * ```
   */
  crashWith(fates: readonly SimFate[]): SimFS {
    this.#core.alive("crash", "");
    const pending = this.#core.pending;
    if (!Array.isArray(fates) || fates.length !== pending.length) {
      throw new RangeError(
        `Cannot crash: expected ${pending.length} fates, got ${
          Array.isArray(fates) ? fates.length : typeName(fates)
        }`,
      );
    }
    const internal = fates.map((fate, i): InternalFate => {
      if (fate === "keep" || fate === "drop") return fate;
      const op = pending[i]!;
      const torn = typeof fate === "object" && fate !== null ? fate.tornBytes : undefined;
      if (
        op.kind !== "write" || !Number.isSafeInteger(torn) || torn! < 0 || torn! > op.data.length
      ) {
        throw new RangeError(
          `Cannot crash: fate ${i} must be "keep", "drop" or { tornBytes } within a pending write`,
        );
      }
      return torn!;
    });
    const core = this.#core.crash(internal, new SimRandom(this.#core.rng.seed()), false);
    core.stats.crashes.explicit++;
    return SimFS.#wrap(core, this.#options);
  }

  /**
   * The operations not yet durable, in order (what a crash chooses from).
   *
   * @returns A description of each.
   *
   * @example Sync drains the file's pending writes
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * const f = await sim.open("a", { create: true });
   * await f.write(new Uint8Array(8), 0);
   * assert.equal(sim.pendingOps().length, 2);
   * await f.sync();
   * assert.deepEqual(sim.pendingOps().map((p) => p.description), ["create a"]);
   * ```
   */
  pendingOps(): readonly SimPendingOp[] {
    return this.#core.pending.map((op): SimPendingOp => {
      if (op.kind === "write") {
        return {
          kind: "write",
          path: op.path,
          offset: op.offset,
          length: op.data.length,
          description: `write ${op.path} @${op.offset} +${op.data.length}`,
        };
      }
      if (op.kind === "truncate") {
        return {
          kind: "truncate",
          path: op.path,
          offset: op.size,
          length: 0,
          description: `truncate ${op.path} to ${op.size}`,
        };
      }
      return { kind: "dir", path: op.dir, offset: 0, length: 0, description: op.description };
    });
  }

  /**
   * Every mutating call so far, numbered from 1 (capped at `opLogLimit` entries).
   *
   * @returns The log.
   *
   * @example Reads are not logged
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * const f = await sim.open("a", { create: true });
   * await f.write(new Uint8Array(4), 0);
   * await f.read(new Uint8Array(4), 0);
   * assert.deepEqual(sim.ops().map((o) => `${o.n} ${o.kind}`), ["1 create", "2 write"]);
   * assert.equal(sim.opCount, 2);
   * ```
   */
  ops(): readonly SimOp[] {
    return [...this.#core.log];
  }

  /** Mutating calls so far (counted even past the log's cap). */
  get opCount(): number {
    return this.#core.opCount;
  }

  /** Whether a mutating call was refused because of {@link SimFS.haltAfter}. */
  get halted(): boolean {
    return this.#core.halted;
  }

  /**
   * Stops the machine after `ops` mutating calls in total: every later one
   * rejects with `FsError` "IO" and changes nothing, so the state is frozen
   * at exactly that point for {@link SimFS.crash}. Reads keep working.
   *
   * @param ops A non-negative count (counting the calls already made).
   * @returns Nothing.
   * @throws {RangeError} If `ops` is not a non-negative safe integer.
   *
   * @example Crash exactly after the second operation
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * sim.haltAfter(2);
   * const f = await sim.open("a", { create: true }); // op 1
   * await sim.syncDir(""); // op 2
   * await assert.rejects(f.write(new Uint8Array(1), 0), { code: "IO" }); // refused
   * assert.equal(sim.halted, true);
   * assert.deepEqual([...sim.crash("dropUnsynced").files().keys()], ["a"]);
   * ```
   */
  haltAfter(ops: number): void {
    if (!(Number.isSafeInteger(ops) && ops >= 0)) {
      throw new RangeError(
        `Cannot halt: ops must be a non-negative safe integer, got ${String(ops)}`,
      );
    }
    this.#core.haltAt = ops;
  }

  /**
   * Arms a fault (or, for `bitFlip` and `latentSectorError`, applies it now
   * to every matching file). Armed faults are checked in the order injected;
   * the first one that fires takes effect.
   *
   * @param fault The fault.
   * @returns Nothing.
   * @throws {TypeError} If the fault has the wrong shape.
   * @throws {RangeError} If a count or the kind is out of range.
   *
   * @example Fail the second write to any .log file
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * sim.inject({ kind: "writeError", path: "*.log", skip: 1 });
   * const f = await sim.open("wal.log", { create: true });
   * await f.write(new Uint8Array(1), 0);
   * await assert.rejects(f.write(new Uint8Array(1), 1), { name: "FsError", code: "IO" });
   * await f.write(new Uint8Array(1), 1);
   * assert.equal(sim.stats.faults.writeError.once, 1);
   * ```
   */
  inject(fault: SimFault): void {
    this.#core.alive("inject fault", "");
    this.#core.inject(fault);
  }

  /**
   * Disarms every armed fault (latent sector errors stay: they are on the medium).
   *
   * @returns Nothing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS({ faults: [{ kind: "readError", persistent: true }] });
   * const f = await sim.open("a", { create: true });
   * await assert.rejects(f.read(new Uint8Array(1), 0), { code: "IO" });
   * sim.clearFaults();
   * assert.equal(await f.read(new Uint8Array(1), 0), 0);
   * ```
   */
  clearFaults(): void {
    this.#core.faults = [];
  }

  /**
   * What reads of every file return now, by path, sorted.
   *
   * @returns Path → copy of the bytes.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimFS } from "@in-mem/core";
   *
   * const sim = new SimFS();
   * await sim.mkdir("d");
   * await (await sim.open("d/b", { create: true })).write(new Uint8Array([2]), 0);
   * await sim.open("a", { create: true });
   * assert.deepEqual([...sim.files()], [["a", new Uint8Array(0)], ["d/b", new Uint8Array([2])]]);
   * ```
   */
  files(): Map<string, Uint8Array> {
    return new Map(this.#core.fileEntries().map(([path, inode]) => [path, inode.view.copy()]));
  }

  /** Counters of faults fired and crash states produced (shared with crash successors). */
  get stats(): SimStats {
    return this.#core.stats;
  }

  /** The sector size modeled. */
  get sectorBytes(): SimSectorBytes {
    return this.#core.config.sectorBytes;
  }
}
