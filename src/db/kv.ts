/**
 * KV: a run's key-value scratchpad (`run.kv`, `tx.kv`).
 *
 * Keys are non-empty strings of at most `MAX_USER_KEY_BYTES` (1024) UTF-8
 * bytes, stored at `u32(run) · 01 · string(key)` (src/db/layout.ts), so one
 * run's keys are one contiguous, ordered range: listing is a range scan, in
 * key order (UTF-8 byte order, which is code point order).
 *
 * Every entry carries a **version**: the commit version of the transaction
 * that last wrote it — one database-wide counter, so versions strictly
 * increase across commits and are equal for every key one transaction
 * wrote (Deno KV's "versionstamp"). It is stamped into the record at commit
 * time (the engine's `Transaction.atCommit`), so a put never reads the key and
 * concurrent puts never conflict. Inside the transaction that wrote a key,
 * before commit, the key's version reads as 0.
 *
 * An entry may **expire** (`put(key, value, { ttlMs })`): from `expiresAt`
 * on, by the database clock, every read treats it as absent at once; the
 * database's sweeper removes it later (src/engine/ttl.ts). The record
 * format is in docs/FORMAT.md "KV records and state cells".
 *
 * @module
 */
import { readU64, writeU64 } from "../_u64.ts";
import { decodeValueFrom, encodeValueAfter, type Value } from "../core/codec.ts";
import {
  compareKeys,
  KeyReader,
  type KeyWriter,
  MAX_USER_KEY_BYTES,
  prefixEnd,
} from "../core/keys.ts";
import type { ValueSpan } from "../core/store.ts";
import type { CommitView, ScanOptions } from "../engine/engine.ts";
import { expiryKey } from "../engine/ttl.ts";
import { CorruptionError } from "../errors.ts";
import { typeName } from "../_type_name.ts";
import type { ReadContext, Scope } from "./context.ts";
import { key, SYS, SYSTEM, TAG } from "./layout.ts";
import { checkName } from "./runs.ts";

/** The first byte of every KV record (docs/FORMAT.md "KV records and state cells"); another value is corruption. */
export const KV_RECORD_FORMAT = 1;
/** Bit of the flags byte: the record carries an expiry time. */
const FLAG_EXPIRES = 0x01;
/** Header bytes before the value: format, flags, u64 version. */
const HEADER_BYTES = 10;
/** Header bytes with the u64 expiry time. */
const HEADER_TTL_BYTES = 18;
/** Offset of the u64 version in the header. */
const VERSION_AT = 2;
/** Offset of the u64 expiry time in the header. */
const EXPIRES_AT = 10;
/**
 * Largest page {@link KvStore.page} returns when no `limit` is given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, DEFAULT_KV_PAGE_LIMIT } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * await run.transaction(async (tx) => {
 *   for (let i = 0; i < DEFAULT_KV_PAGE_LIMIT + 5; i++) await tx.kv.put(`item/${i}`, i);
 * });
 * const first = await run.kv.page("item/"); // no limit given
 * assert.equal(first.entries.length, DEFAULT_KV_PAGE_LIMIT);
 * const rest = await run.kv.page("item/", { cursor: first.cursor! });
 * assert.equal(rest.entries.length, 5);
 * assert.equal(rest.cursor, undefined);
 * ```
 */
export const DEFAULT_KV_PAGE_LIMIT = 100;
/** Records read per engine scan while listing (expired ones are skipped, then more read). */
const SCAN_CHUNK = 256;
/** Key prefix of the expiry index (the Database's sweeper scans it). */
const EXPIRY_PREFIX: Uint8Array = key(SYSTEM, SYS.EXPIRY).finish();
const EMPTY = new Uint8Array(0);

/** One KV entry as {@link KvStore.getEntry} returns it. */
export interface KvEntry {
  /** The key. */
  key: string;
  /** The value. */
  value: Value;
  /**
   * The commit version of the transaction that last wrote the key: strictly
   * increasing across commits, the same for all keys one transaction wrote
   * (and for standalone writes of one turn that shared a commit, in `strict`
   * mode).
   * 0 inside that transaction, before it commits.
   */
  version: number;
  /** When the entry expires, ms since the epoch (database clock); absent if never. */
  expiresAt?: number;
}

/** Options of {@link KvStore.put}. */
export interface KvPutOptions {
  /**
   * Time to live, ms (a positive integer): the entry is invisible from
   * `now + ttlMs` on, by the database clock. Absent: it never expires.
   */
  ttlMs?: number;
}

/** Options of {@link KvStore.list} and {@link KvStore.entries}. */
export interface KvListOptions {
  /** At most this many entries (an integer ≥ 0). Default: all. */
  limit?: number;
  /**
   * Where the walk starts, inclusive: keys ≥ `start` (with `reverse`,
   * keys ≤ `start`). Need not exist, nor share the prefix.
   */
  start?: string;
  /** Highest key first. */
  reverse?: boolean;
  /**
   * A cursor from {@link KvStore.page}: continue after the key it marks
   * (before it, with `reverse`). It replaces `start`.
   */
  cursor?: string;
}

/** Options of {@link KvStore.page}. */
export interface KvPageOptions extends KvListOptions {
  /** Entries per page (an integer ≥ 1). Default {@link DEFAULT_KV_PAGE_LIMIT}. */
  limit?: number;
}

/** One page of a listing: {@link KvStore.page}'s result. */
export interface KvPage {
  /** The page's entries, in walk order. */
  entries: [string, Value][];
  /**
   * Pass it as `cursor` (with the same prefix and options) for the next
   * page; undefined when this page is the last.
   */
  cursor: string | undefined;
}

/** A record's header, read without decoding the value. */
interface KvHeader {
  version: number;
  expiresAt: number | undefined;
  valueAt: number;
}

/** A bound of a key range. */
interface Bound {
  key: Uint8Array;
  inclusive: boolean;
}

/**
 * A run's key-value store. Every method returns a Promise; on a run handle
 * (`run.kv`) each call is one transaction, on a transaction handle
 * (`tx.kv`) it joins the caller's transaction. Holds no state: any number
 * of handles on one run see the same data.
 *
 * Reads work in any run status; writes need the run active or paused
 * (`RunClosedError` otherwise, `RunNotFoundError` for an unknown run).
 * Invalid arguments throw `TypeError`/`RangeError` before anything is
 * written.
 *
 * @example Put, get, list
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * await run.kv.put("task/status", "running");
 * await run.kv.put("task/step", 3);
 * assert.equal(await run.kv.get("task/status"), "running");
 * assert.deepEqual(await run.kv.list("task/"), ["task/status", "task/step"]);
 * ```
 */
export class KvStore {
  readonly #scope: Scope;

  /** @internal Use `run.kv` or `tx.kv`. */
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /**
   * The value of `key`, or undefined if there is none or it expired.
   *
   * @param key The key.
   * @returns The value.
   * @throws {TypeError} If `key` is not a non-empty string.
   * @throws {RangeError} If `key` is over 1024 UTF-8 bytes.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * assert.equal(await run.kv.get("missing"), undefined);
   * await run.kv.put("plan", { steps: ["search", "answer"] });
   * assert.deepEqual(await run.kv.get("plan"), { steps: ["search", "answer"] });
   * ```
   */
  get(key: string): Promise<Value | undefined> {
    // Not an async function: a hot read costs no extra turns of the
    // microtask queue; a bad argument still rejects rather than throws.
    try {
      checkName(key, "a KV key");
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#scope.read((ctx) => {
      const at = this.#read(ctx, key, () => `get KV key ${show(key)}`);
      return at === undefined ? undefined : decodeValueAt(at.bytes, valueStart(at), at.end, key);
    });
  }

  /**
   * The entry of `key` with its version and expiry, or undefined if there
   * is none or it expired.
   *
   * @param key The key.
   * @returns `{ key, value, version, expiresAt? }`; `version` is 0 inside
   *   the transaction that wrote the key, until it commits.
   * @throws {TypeError} If `key` is not a non-empty string.
   * @throws {RangeError} If `key` is over 1024 UTF-8 bytes.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example Versions come from commits
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.kv.put("a", 1);
   * const first = await run.kv.getEntry("a");
   * await run.kv.put("a", 2);
   * const second = await run.kv.getEntry("a");
   * assert.ok(second!.version > first!.version);
   * assert.equal(second!.expiresAt, undefined);
   * ```
   */
  async getEntry(key: string): Promise<KvEntry | undefined> {
    checkName(key, "a KV key");
    return await this.#scope.read((ctx) => {
      const at = this.#read(ctx, key, () => `get KV entry ${show(key)}`);
      if (at === undefined) return undefined;
      const { bytes, start, end } = at;
      const valueAt = valueStart(at);
      const entry: KvEntry = {
        key,
        value: decodeValueAt(bytes, valueAt, end, key),
        version: readU64(bytes, start + VERSION_AT),
      };
      if (valueAt - start === HEADER_TTL_BYTES) {
        entry.expiresAt = readU64(bytes, start + EXPIRES_AT);
      }
      return entry;
    });
  }

  /**
   * Whether `key` has a live (not expired) entry.
   *
   * @param key The key.
   * @returns True if it has.
   * @throws {TypeError} If `key` is not a non-empty string.
   * @throws {RangeError} If `key` is over 1024 UTF-8 bytes.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.kv.put("seen", true);
   * assert.equal(await run.kv.exists("seen"), true);
   * assert.equal(await run.kv.exists("unseen"), false);
   * ```
   */
  async exists(key: string): Promise<boolean> {
    checkName(key, "a KV key");
    return await this.#scope.read((ctx) =>
      this.#read(ctx, key, () => `check KV key ${show(key)}`) !== undefined
    );
  }

  /**
   * Writes `value` under `key`, replacing any entry. A blind write: it does
   * not read the key, so concurrent puts never conflict (the last commit
   * wins). With `ttlMs` the entry expires `ttlMs` ms from now by the
   * database clock; without, it never expires (a previous expiry is gone).
   *
   * @param key The key.
   * @param value Any storable value (see `Value`).
   * @param options `ttlMs`: time to live, a positive integer of ms.
   * @throws {TypeError} If `key` is not a non-empty string, `ttlMs` not a
   *   number, or `value` not storable (`ValueError`).
   * @throws {RangeError} If `key` is over 1024 UTF-8 bytes, `ttlMs` not a
   *   positive safe integer, or the value too large.
   * @throws {RunNotFoundError} If the run does not exist.
   * @throws {RunClosedError} If the run is completed, failed, cancelled or archived.
   *
   * @example Entries with a time to live
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * let now = 1_000;
   * await using db = await Database.open(undefined, { clock: () => now });
   * const run = await db.runs.create();
   * await run.kv.put("session", "abc", { ttlMs: 500 });
   * assert.equal((await run.kv.getEntry("session"))?.expiresAt, 1_500);
   * now = 1_500;
   * assert.equal(await run.kv.get("session"), undefined);
   * ```
   */
  put(key: string, value: Value, options: KvPutOptions = {}): Promise<void> {
    // Not an async function (see get): every error still rejects.
    try {
      return Promise.resolve(this.#put(key, value, options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #put(key: string, value: Value, options: KvPutOptions): Promise<void> | void {
    checkName(key, "a KV key");
    const ttlMs = checkTtl(options);
    // The record: header, then the value; an unstorable value fails here,
    // before any write. One buffer for every attempt: an attempt that does
    // not commit keeps no reference to it, and each writes its own expiry
    // into it before handing it over (the version is stamped at commit).
    const rec = encodeValueAfter(value, ttlMs === undefined ? HEADER_BYTES : HEADER_TTL_BYTES);
    rec[0] = KV_RECORD_FORMAT;
    if (ttlMs !== undefined) rec[1] = FLAG_EXPIRES;
    const scope = this.#scope;
    // Synchronous: standalone puts of one turn may share a commit.
    return scope.write((ctx) => {
      const n = ctx.runNumber(scope.runId, true, () => `put KV key ${show(key)}`);
      const k = kvKey(n, key);
      let expiresAt: number | undefined;
      if (ttlMs !== undefined) {
        expiresAt = ctx.now() + ttlMs;
        if (!Number.isSafeInteger(expiresAt)) {
          throw new RangeError(
            `Cannot put KV key ${show(key)}: now + ttlMs is beyond the largest safe integer`,
          );
        }
      }
      if (expiresAt !== undefined) writeU64(rec, EXPIRES_AT, expiresAt);
      ctx.tx.put(k, rec);
      const expiring = ctx.db.expiringRuns;
      if (expiresAt !== undefined) {
        expiring.add(n); // when buffered, so every commit after this one's sees it
        ctx.tx.put(expiryKey(EXPIRY_PREFIX, expiresAt, k), EMPTY);
      }
      ctx.tx.atCommit((view) => {
        if (expiresAt !== undefined || expiring.has(n)) stampVersion(view, k, expiresAt);
        // No record of this run expires (decided at commit): there is no
        // expiry index entry to replace. Stamping this record is enough — a
        // later write of the key in this transaction stamps its own, and a
        // record a later write replaced is never stored.
        else writeU64(rec, VERSION_AT, view.version);
      });
    });
  }

  /**
   * Removes `key`'s entry.
   *
   * @param key The key.
   * @returns True if a live entry was removed; false if there was none or
   *   it had expired (an expired record is removed all the same).
   * @throws {TypeError} If `key` is not a non-empty string.
   * @throws {RangeError} If `key` is over 1024 UTF-8 bytes.
   * @throws {RunNotFoundError} If the run does not exist.
   * @throws {RunClosedError} If the run is completed, failed, cancelled or archived.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.kv.put("draft", "text");
   * assert.equal(await run.kv.delete("draft"), true);
   * assert.equal(await run.kv.delete("draft"), false);
   * assert.equal(await run.kv.get("draft"), undefined);
   * ```
   */
  delete(key: string): Promise<boolean> {
    // Not an async function (see put): every error still rejects.
    try {
      return Promise.resolve(this.#delete(key));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #delete(key: string): Promise<boolean> | boolean {
    checkName(key, "a KV key");
    const scope = this.#scope;
    // Synchronous: standalone writes of one turn may share a commit.
    return scope.write((ctx) => {
      const n = ctx.runNumber(scope.runId, true, () => `delete KV key ${show(key)}`);
      const k = kvKey(n, key);
      const bytes = ctx.tx.getSync(k);
      if (bytes === undefined) return false;
      const header = readHeader(bytes, key);
      ctx.tx.delete(k);
      // The record says where its index entry is: remove it now rather
      // than leave it for the sweeper (no extra read, so no extra conflict).
      if (header.expiresAt !== undefined) {
        ctx.tx.delete(expiryKey(EXPIRY_PREFIX, header.expiresAt, k));
      }
      return !expired(header, ctx.now());
    });
  }

  /**
   * The live keys that start with `prefix`, in key order (UTF-8 byte
   * order; a key equal to the prefix is included).
   *
   * @param prefix Only keys starting with it; `""` or absent: all keys.
   * @param options `limit`, `start`, `reverse`, `cursor` (see {@link KvListOptions}).
   * @returns The keys.
   * @throws {TypeError} If an argument has the wrong type or the cursor is malformed.
   * @throws {RangeError} If `prefix` is over 1024 UTF-8 bytes or `limit` is
   *   not an integer ≥ 0.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example Prefix, limit, start, reverse
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * for (const k of ["doc/a", "doc/b", "doc/c", "note"]) await run.kv.put(k, 0);
   * assert.deepEqual(await run.kv.list(), ["doc/a", "doc/b", "doc/c", "note"]);
   * assert.deepEqual(await run.kv.list("doc/", { limit: 2 }), ["doc/a", "doc/b"]);
   * assert.deepEqual(await run.kv.list("doc/", { start: "doc/b" }), ["doc/b", "doc/c"]);
   * assert.deepEqual(await run.kv.list("doc/", { reverse: true, limit: 1 }), ["doc/c"]);
   * ```
   */
  async list(prefix?: string, options: KvListOptions = {}): Promise<string[]> {
    const p = checkPrefix(prefix, "list KV keys");
    const o = checkListOptions(options, "list KV keys", 0);
    return await this.#scope.read((ctx) => {
      const n = ctx.runNumber(this.#scope.runId, false, "list KV keys");
      return scanLive(ctx, n, p, o, o.limit ?? Infinity);
    });
  }

  /**
   * The live entries whose keys start with `prefix`, in key order.
   *
   * @param prefix Only keys starting with it; `""` or absent: all keys.
   * @param options `limit`, `start`, `reverse`, `cursor` (see {@link KvListOptions}).
   * @returns `[key, value]` pairs.
   * @throws {TypeError} If an argument has the wrong type or the cursor is malformed.
   * @throws {RangeError} If `prefix` is over 1024 UTF-8 bytes or `limit` is
   *   not an integer ≥ 0.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.kv.put("tool/search", { calls: 2 });
   * await run.kv.put("tool/fetch", { calls: 1 });
   * assert.deepEqual(await run.kv.entries("tool/"), [
   *   ["tool/fetch", { calls: 1 }],
   *   ["tool/search", { calls: 2 }],
   * ]);
   * ```
   */
  async entries(prefix?: string, options: KvListOptions = {}): Promise<[string, Value][]> {
    const p = checkPrefix(prefix, "list KV entries");
    const o = checkListOptions(options, "list KV entries", 0);
    return await this.#scope.read((ctx) => {
      const n = ctx.runNumber(this.#scope.runId, false, "list KV entries");
      const values: Value[] = [];
      const keys = scanLive(ctx, n, p, o, o.limit ?? Infinity, values);
      return keys.map((k, i): [string, Value] => [k, values[i]!]);
    });
  }

  /**
   * One page of the live entries whose keys start with `prefix`. Pass the
   * returned `cursor` back (with the same prefix and options) for the next
   * page; it is undefined on the last page. The cursor is an opaque string
   * that marks the page's last key, so paging resumes correctly even if
   * entries were written or deleted between pages (each page is its own
   * consistent read; the walk as a whole is not one snapshot).
   *
   * @param prefix Only keys starting with it; `""` or absent: all keys.
   * @param options `limit` (≥ 1, default {@link DEFAULT_KV_PAGE_LIMIT}),
   *   `start`, `reverse`, `cursor`.
   * @returns `{ entries, cursor }`.
   * @throws {TypeError} If an argument has the wrong type or the cursor is malformed.
   * @throws {RangeError} If `prefix` is over 1024 UTF-8 bytes or `limit` is
   *   not an integer ≥ 1.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example Walk all pages
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * for (let i = 0; i < 5; i++) await run.kv.put(`item/${i}`, i);
   * const seen: string[] = [];
   * let cursor: string | undefined;
   * do {
   *   const page = await run.kv.page("item/", { limit: 2, ...(cursor ? { cursor } : {}) });
   *   seen.push(...page.entries.map(([k]) => k));
   *   cursor = page.cursor;
   * } while (cursor !== undefined);
   * assert.deepEqual(seen, ["item/0", "item/1", "item/2", "item/3", "item/4"]);
   * ```
   */
  async page(prefix?: string, options: KvPageOptions = {}): Promise<KvPage> {
    const p = checkPrefix(prefix, "page KV entries");
    const o = checkListOptions(options, "page KV entries", 1);
    const limit = o.limit ?? DEFAULT_KV_PAGE_LIMIT;
    return await this.#scope.read((ctx) => {
      const n = ctx.runNumber(this.#scope.runId, false, "page KV entries");
      // One entry past the page tells whether another page exists.
      const values: Value[] = [];
      const keys = scanLive(ctx, n, p, o, limit + 1, values);
      const more = keys.length > limit;
      if (more) keys.length = limit;
      return {
        entries: keys.map((k, i): [string, Value] => [k, values[i]!]),
        cursor: more ? encodeCursor(keys[keys.length - 1]!) : undefined,
      };
    });
  }

  /**
   * Finds the live record of `key`: where it lies (bytes that may be the
   * store's memory: decode them before anything else runs; its header is
   * checked), or undefined when there is none or it expired.
   */
  #read(ctx: ReadContext, key: string, what: () => string): ValueSpan | undefined {
    const n = ctx.runNumber(this.#scope.runId, false, what);
    const at = ctx.reads.locateSync(kvKeyWriter(n, key));
    if (at === undefined) return undefined;
    const valueAt = recordValueAt(at.bytes, at.start, at.end, key);
    return valueAt - at.start !== HEADER_TTL_BYTES ||
        readU64(at.bytes, at.start + EXPIRES_AT) > ctx.now()
      ? at
      : undefined;
  }
}

/** Where the value of a record whose header was checked ({@link recordValueAt}) starts. */
function valueStart(at: ValueSpan): number {
  const expires = (at.bytes[at.start + 1]! & FLAG_EXPIRES) !== 0;
  return at.start + (expires ? HEADER_TTL_BYTES : HEADER_BYTES);
}

/**
 * The expiry time a stored KV record carries, or undefined if it carries
 * none (or is not a KV record). The database's sweeper deletes a record
 * only if this equals the time of the expiry index entry that led to it.
 *
 * @param value The record bytes (a value stored under a KV key).
 * @returns The expiry, ms since the epoch, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kvRecordExpiresAt } from "./kv.ts";
 *
 * // format 1, flags 1 (expires), version 7, expiresAt 1500, value nil (0xc0)
 * const record = new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 5, 0xdc, 0xc0]);
 * assert.equal(kvRecordExpiresAt(record), 1500);
 * assert.equal(kvRecordExpiresAt(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0xc0])), undefined);
 * ```
 */
export function kvRecordExpiresAt(value: Uint8Array): number | undefined {
  if (
    value.length < HEADER_TTL_BYTES || value[0] !== KV_RECORD_FORMAT ||
    (value[1]! & FLAG_EXPIRES) === 0
  ) {
    return undefined;
  }
  return readU64(value, EXPIRES_AT);
}

// ---------------------------------------------------------------------------
// Records

/** `u32(run) · 01 · string(key)`. */
function kvKey(run: number, k: string): Uint8Array {
  return kvKeyWriter(run, k).finish();
}

/** {@link kvKey}, still in its writer. */
function kvKeyWriter(run: number, k: string): KeyWriter {
  return key(run, TAG.KV).string(k);
}

/**
 * Commit-time operation of a put: writes the commit's version into the
 * record this transaction holds for `k` now — the last one put, if the key
 * was put twice; nothing if it was deleted since.
 */
function stampVersion(view: CommitView, k: Uint8Array, indexed: number | undefined): void {
  // The transaction's last write of the key: the very buffer put() handed over.
  const rec = view.get(k);
  const final = rec === undefined ? undefined : kvRecordExpiresAt(rec);
  if (rec !== undefined && rec.length >= HEADER_BYTES && rec[0] === KV_RECORD_FORMAT) {
    writeU64(rec, VERSION_AT, view.version);
  }
  // Keep exactly one expiry index entry per expiring record: drop this
  // put's entry if a later write in the transaction replaced it, and the
  // replaced record's entry. Found at commit time — never validated, so a
  // put still never conflicts.
  if (indexed !== undefined && indexed !== final) {
    view.delete(expiryKey(EXPIRY_PREFIX, indexed, k));
  }
  // A view, not a copy: only its header is read, before any write below.
  const previous = view.previousView(k);
  const old = previous === undefined ? undefined : kvRecordExpiresAt(previous);
  if (old !== undefined && old !== final) view.delete(expiryKey(EXPIRY_PREFIX, old, k));
}

/** Reads and checks a record's header. */
function readHeader(bytes: Uint8Array, k: string): KvHeader {
  const valueAt = recordValueAt(bytes, 0, bytes.length, k);
  return {
    version: readU64(bytes, VERSION_AT),
    expiresAt: valueAt === HEADER_TTL_BYTES ? readU64(bytes, EXPIRES_AT) : undefined,
    valueAt,
  };
}

/**
 * Checks the header of the KV record `bytes[start, end)` (of key `k`, for
 * the message) and returns where its value starts.
 */
function recordValueAt(bytes: Uint8Array, start: number, end: number, k: string): number {
  const flags = end - start > 1 ? bytes[start + 1]! : 0;
  const valueAt = start + ((flags & FLAG_EXPIRES) !== 0 ? HEADER_TTL_BYTES : HEADER_BYTES);
  if (end <= valueAt || bytes[start] !== KV_RECORD_FORMAT || (flags & ~FLAG_EXPIRES) !== 0) {
    throw new CorruptionError(`Cannot read KV key ${show(k)}: its record is malformed`, {
      where: `KV record ${show(k)}`,
    });
  }
  return valueAt;
}

/** The value `bytes[start, end)` of KV key `k`'s record. */
function decodeValueAt(bytes: Uint8Array, start: number, end: number, k: string): Value {
  try {
    return decodeValueFrom(bytes, start, end);
  } catch (cause) {
    throw new CorruptionError(`Cannot read KV key ${show(k)}: its value is malformed`, {
      where: `KV record ${show(k)}`,
      cause,
    });
  }
}

function expired(header: KvHeader, now: number): boolean {
  return header.expiresAt !== undefined && header.expiresAt <= now;
}

// ---------------------------------------------------------------------------
// Listing

interface CheckedList {
  limit: number | undefined;
  start: string | undefined;
  reverse: boolean;
  cursor: string | undefined;
}

/**
 * Up to `max` live entries of run `n` under `prefix`, in walk order: their
 * keys, and their values if `values` is given (filled in step). In a
 * transaction it scans in chunks sized to what is still needed, so the
 * range read (and so the conflict footprint) ends near the last entry
 * returned; over the latest state (no read set) in one walk.
 */
function scanLive(
  ctx: ReadContext,
  n: number,
  prefix: string,
  o: CheckedList,
  max: number,
  values?: Value[],
): string[] {
  const base = key(n, TAG.KV).stringPrefix(prefix).finish();
  let lo: Bound = { key: base, inclusive: true };
  let hi: Bound = { key: prefixEnd(base)!, inclusive: false };
  const at = o.cursor ?? o.start;
  if (at !== undefined) {
    const b = { key: kvKey(n, at), inclusive: o.cursor === undefined };
    if (o.reverse) hi = lowerHi(hi, b);
    else lo = higherLo(lo, b);
  }
  const keys: string[] = [];
  const now = ctx.now();
  const tracked = ctx.reads !== ctx.db.engine.latest;
  while (keys.length < max && !emptyRange(lo, hi)) {
    const chunk = tracked ? Math.min(max - keys.length, SCAN_CHUNK) : undefined;
    let seen = 0;
    let last: Uint8Array | undefined;
    // The entries are decoded where they lie: only what is kept is copied.
    const bounds: ScanOptions = { ...scanBounds(lo, hi), reverse: o.reverse };
    if (chunk !== undefined) bounds.limit = chunk;
    ctx.reads.visitSync(bounds, (k, keyStart, keyEnd, v, valueStart, valueEnd) => {
      const name = userKey(k, keyStart, keyEnd);
      const valueAt = liveValueAt(v, valueStart, valueEnd, now, name);
      if (valueAt >= 0) {
        keys.push(name);
        if (values !== undefined) values.push(decodeValueAt(v, valueAt, valueEnd, name));
      }
      if (++seen === chunk) last = k.slice(keyStart, keyEnd);
      return keys.length < max;
    });
    if (last === undefined) break;
    if (o.reverse) hi = { key: last, inclusive: false };
    else lo = { key: last, inclusive: false };
  }
  return keys;
}

/**
 * Where the value of the KV record `bytes[start, end)` starts, or -1 if the
 * record expired by `now`. Reads the header in place (no object per entry).
 */
function liveValueAt(
  bytes: Uint8Array,
  start: number,
  end: number,
  now: number,
  name: string,
): number {
  const valueAt = recordValueAt(bytes, start, end, name);
  const expires = valueAt - start === HEADER_TTL_BYTES;
  return expires && readU64(bytes, start + EXPIRES_AT) <= now ? -1 : valueAt;
}

function scanBounds(lo: Bound, hi: Bound): ScanOptions {
  return {
    ...(lo.inclusive ? { gte: lo.key } : { gt: lo.key }),
    ...(hi.inclusive ? { lte: hi.key } : { lt: hi.key }),
  };
}

/** The tighter of two lower bounds. */
function higherLo(a: Bound, b: Bound): Bound {
  const c = compareKeys(a.key, b.key);
  return c > 0 || (c === 0 && !a.inclusive) ? a : b;
}

/** The tighter of two upper bounds. */
function lowerHi(a: Bound, b: Bound): Bound {
  const c = compareKeys(a.key, b.key);
  return c < 0 || (c === 0 && !a.inclusive) ? a : b;
}

function emptyRange(lo: Bound, hi: Bound): boolean {
  const c = compareKeys(lo.key, hi.key);
  return c > 0 || (c === 0 && !(lo.inclusive && hi.inclusive));
}

/** The user key of the stored KV key `k[from, to)`. */
function userKey(k: Uint8Array, from = 0, to: number = k.length): string {
  // `u32(run) · 01 · utf8 · 00 00`: with no 00 byte inside (nothing
  // escaped), the UTF-8 is read as is; ASCII without a decoder.
  const end = to - 2;
  if (end >= from + 5 && k[end] === 0 && k[end + 1] === 0) {
    let ascii = true;
    let i = from + 5;
    for (; i < end; i++) {
      const b = k[i]!;
      if (b === 0) break;
      if (b >= 0x80) ascii = false;
    }
    const at = from + 5;
    if (i === end && ascii) {
      // Short: concatenation beats apply() on V8, JSC and Deno alike.
      if (end - at <= 32) {
        let s = "";
        for (let j = at; j < end; j++) s += String.fromCharCode(k[j]!);
        return s;
      }
      if (end - at <= 256) {
        return String.fromCharCode.apply(null, k.subarray(at, end) as unknown as number[]);
      }
    }
  }
  return userKeySlow(from === 0 && to === k.length ? k : k.slice(from, to));
}

function userKeySlow(k: Uint8Array): string {
  const r = new KeyReader(k);
  r.u32();
  r.u8();
  return r.string();
}

// ---------------------------------------------------------------------------
// Cursors: base64url of the UTF-8 of the last key returned.

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function encodeCursor(k: string): string {
  const bytes = utf8.encode(k);
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeCursor(cursor: string, what: string): string {
  const bad = (): TypeError =>
    new TypeError(`Cannot ${what}: the cursor is malformed (use one that page() returned)`);
  if (!/^[A-Za-z0-9_-]+$/.test(cursor) || cursor.length % 4 === 1) throw bad();
  let bin: string;
  try {
    bin = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    throw bad();
  }
  if (bin.length > MAX_USER_KEY_BYTES) throw bad();
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw bad();
  }
}

// ---------------------------------------------------------------------------
// Argument checks (all before any write)

function checkTtl(options: KvPutOptions): number | undefined {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot put a KV entry: options must be an object, got ${typeName(options)}`,
    );
  }
  const ttlMs = options.ttlMs;
  if (ttlMs === undefined) return undefined;
  if (typeof ttlMs !== "number") {
    throw new TypeError(`Cannot put a KV entry: ttlMs must be a number, got ${typeName(ttlMs)}`);
  }
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
    throw new RangeError(`Cannot put a KV entry: ttlMs must be a positive integer, got ${ttlMs}`);
  }
  return ttlMs;
}

function checkPrefix(prefix: unknown, what: string): string {
  if (prefix === undefined) return "";
  if (typeof prefix !== "string") {
    throw new TypeError(`Cannot ${what}: prefix must be a string, got ${typeName(prefix)}`);
  }
  if (prefix.length > 0) checkName(prefix, "a KV key prefix");
  return prefix;
}

function checkListOptions(options: KvListOptions, what: string, minLimit: number): CheckedList {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot ${what}: options must be an object, got ${typeName(options)}`);
  }
  const { limit, start, reverse, cursor } = options;
  if (limit !== undefined) {
    if (typeof limit !== "number") {
      throw new TypeError(`Cannot ${what}: limit must be a number, got ${typeName(limit)}`);
    }
    if (!Number.isSafeInteger(limit) || limit < minLimit) {
      throw new RangeError(`Cannot ${what}: limit must be an integer >= ${minLimit}, got ${limit}`);
    }
  }
  if (start !== undefined) checkName(start, "a KV start key");
  if (reverse !== undefined && typeof reverse !== "boolean") {
    throw new TypeError(`Cannot ${what}: reverse must be a boolean, got ${typeName(reverse)}`);
  }
  if (cursor !== undefined && typeof cursor !== "string") {
    throw new TypeError(`Cannot ${what}: cursor must be a string, got ${typeName(cursor)}`);
  }
  return {
    limit,
    start,
    reverse: reverse === true,
    cursor: cursor === undefined ? undefined : decodeCursor(cursor, what),
  };
}

/** A key for an error message: quoted, cut at 64 characters. */
function show(k: string): string {
  return JSON.stringify(k.length > 64 ? `${k.slice(0, 64)}…` : k);
}
