/**
 * State cells: named, versioned values for coordination (`run.state`,
 * `tx.state`) — the seed's StateCell. Each cell holds a value, a version
 * and the time of its last write, at `u32(run) · 03 · string(name)`
 * (src/db/layout.ts; record format in docs/FORMAT.md "KV records and state cells").
 *
 * A cell's version is its own counter: 1 when created (`init`, or `set` on
 * a missing cell), +1 on every write (`cas`, `set`, `transition`). Deleting
 * a cell forgets it: a cell created again under the same name starts at 1
 * once more, so a `cas` that expected version 1 of the old cell succeeds on
 * the new one (compare values too if that matters).
 *
 * Updates read the cell, so two concurrent writers of one cell conflict and
 * the engine re-runs the loser (serializable OCC). For `cas` the re-run
 * sees the new version and throws `VersionConflictError`; `set` and
 * `transition` simply apply again on the new state, within the database's
 * retry budget (`Database.open(..., { maxRetries })`, default 10). That
 * budget is ample: 64 concurrent `transition`s of one cell took at most 2
 * attempts each (measured on Node, Deno and Bun: in memory, strict on the
 * simulated disk, and strict and batched on a real disk), so no larger
 * per-call budget is set here.
 *
 * @module
 */
import { readU64, writeU64 } from "../_u64.ts";
import { slabAlloc } from "../_slab.ts";
import { decodeValueFrom, encodeValue, type Value } from "../core/codec.ts";
import { KeyReader } from "../core/keys.ts";
import {
  AlreadyExistsError,
  CorruptionError,
  NotFoundError,
  VersionConflictError,
} from "../errors.ts";
import { typeName } from "../_type_name.ts";
import type { Scope, TxContext } from "./context.ts";
import { key, range, TAG } from "./layout.ts";
import { checkName } from "./runs.ts";

/** The first byte of every state record (docs/FORMAT.md "KV records and state cells"); another value is corruption. */
export const STATE_RECORD_FORMAT = 1;
/** Header bytes before the value: format, u64 version, u64 updatedAt. */
const HEADER_BYTES = 17;
const VERSION_AT = 1;
const UPDATED_AT = 9;

/** A cell's state: what {@link StateCells.read} returns and `transition` functions receive. */
export interface CellState {
  /** The value. */
  value: Value;
  /** The version: 1 when created, +1 per write. */
  version: number;
  /** Time of the last write, ms since the epoch (database clock). */
  updatedAt: number;
}

/**
 * A pure function from a cell's state to its next value and a result:
 * `(state) => [newValue, result]`. It may be called more than once.
 */
export type Transition<R> = (state: Readonly<CellState>) => readonly [Value, R];

/**
 * A run's state cells. Every method returns a Promise; on a run handle
 * (`run.state`) each call is one transaction, on a transaction handle
 * (`tx.state`) it joins the caller's transaction. Holds no state.
 *
 * Reads work in any run status; writes need the run active or paused
 * (`RunClosedError` otherwise, `RunNotFoundError` for an unknown run).
 * Invalid arguments throw `TypeError`/`RangeError` before anything is
 * written.
 *
 * @example Two workers coordinate through one cell
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * await run.state.init("jobs", { next: 0 });
 * const take = () =>
 *   run.state.transition("jobs", (s) => {
 *     const next = (s.value as { next: number }).next;
 *     return [{ next: next + 1 }, next];
 *   });
 * const taken = await Promise.all([take(), take()]);
 * assert.deepEqual(taken.sort(), [0, 1]);
 * assert.equal((await run.state.read("jobs"))?.version, 3);
 * ```
 */
export class StateCells {
  readonly #scope: Scope;

  /** @internal Use `run.state` or `tx.state`. */
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /**
   * Creates cell `name` with `value` at version 1.
   *
   * @param name The cell's name.
   * @param value Any storable value.
   * @throws {AlreadyExistsError} If the cell exists.
   * @throws {TypeError} If `name` is not a non-empty string or `value` not storable.
   * @throws {RangeError} If `name` is over 1024 UTF-8 bytes or `value` too large.
   * @throws {RunNotFoundError} If the run does not exist.
   * @throws {RunClosedError} If the run is completed, failed, cancelled or archived.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { AlreadyExistsError, Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.state.init("phase", "plan");
   * await assert.rejects(run.state.init("phase", "act"), AlreadyExistsError);
   * assert.equal((await run.state.read("phase"))?.value, "plan");
   * ```
   */
  init(name: string, value: Value): Promise<void> {
    // Not an async function (see cas): every error still rejects.
    try {
      return Promise.resolve(this.#init(name, value));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #init(name: string, value: Value): Promise<void> | void {
    checkName(name, "a state cell name");
    const encoded = encodeValue(value);
    // Synchronous: standalone writes of one turn may share a commit.
    return this.#scope.write((ctx) => {
      const what = `init state cell ${show(name)}`;
      const { k, bytes } = this.#forWrite(ctx, name, what);
      if (bytes !== undefined) throw new AlreadyExistsError(`Cannot ${what}: it exists`);
      ctx.tx.put(k, encodeRecord(1, ctx.now(), encoded));
    });
  }

  /**
   * The cell's value, version and time of its last write, or undefined if
   * there is no such cell.
   *
   * @param name The cell's name.
   * @returns `{ value, version, updatedAt }`.
   * @throws {TypeError} If `name` is not a non-empty string.
   * @throws {RangeError} If `name` is over 1024 UTF-8 bytes.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open(undefined, { clock: () => 1_000 });
   * const run = await db.runs.create();
   * assert.equal(await run.state.read("phase"), undefined);
   * await run.state.init("phase", "plan");
   * assert.deepEqual(await run.state.read("phase"), {
   *   value: "plan",
   *   version: 1,
   *   updatedAt: 1_000,
   * });
   * ```
   */
  async read(name: string): Promise<CellState | undefined> {
    checkName(name, "a state cell name");
    return await this.#scope.read((ctx) => {
      const n = ctx.runNumber(this.#scope.runId, false, () => `read state cell ${show(name)}`);
      // Found in place, like a KV get: no key, no copy of the record.
      const at = ctx.reads.locateSync(key(n, TAG.STATE).string(name));
      return at === undefined ? undefined : decodeRecordAt(at.bytes, at.start, at.end, name);
    });
  }

  /**
   * Compare-and-swap: writes `value` if the cell is at `expectedVersion`.
   *
   * @param name The cell's name.
   * @param expectedVersion The version the caller read (a positive integer).
   * @param value The new value.
   * @returns The new version, `expectedVersion + 1`.
   * @throws {VersionConflictError} If the cell is at another version
   *   (`expected` and `actual` say which); nothing is written.
   * @throws {NotFoundError} If there is no such cell.
   * @throws {TypeError} If `name` is not a non-empty string, `expectedVersion`
   *   not a number, or `value` not storable.
   * @throws {RangeError} If `name` is over 1024 UTF-8 bytes, `expectedVersion`
   *   not a positive safe integer, or `value` too large.
   * @throws {RunNotFoundError} If the run does not exist.
   * @throws {RunClosedError} If the run is completed, failed, cancelled or archived.
   *
   * @example A read-modify-write loop
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database, VersionConflictError } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.state.init("counter", 0);
   * for (;;) {
   *   const s = (await run.state.read("counter"))!;
   *   try {
   *     assert.equal(await run.state.cas("counter", s.version, (s.value as number) + 1), 2);
   *     break;
   *   } catch (e) {
   *     if (!(e instanceof VersionConflictError)) throw e; // someone else won: read again
   *   }
   * }
   * await assert.rejects(run.state.cas("counter", 1, 5), { expected: 1, actual: 2 });
   * ```
   */
  cas(name: string, expectedVersion: number, value: Value): Promise<number> {
    // Not an async function: no extra turns of the microtask queue; every
    // error still rejects.
    try {
      return Promise.resolve(this.#cas(name, expectedVersion, value));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #cas(name: string, expectedVersion: number, value: Value): Promise<number> | number {
    checkName(name, "a state cell name");
    checkVersion(expectedVersion, name);
    const encoded = encodeValue(value);
    const scope = this.#scope;
    // Synchronous: standalone writes of one turn may share a commit.
    return scope.write((ctx) => {
      const k = cellKey(ctx.runNumber(scope.runId, true, () => casWhat(name)), name);
      const bytes = ctx.tx.getSync(k);
      if (bytes === undefined) {
        throw new NotFoundError(`Cannot ${casWhat(name)}: it does not exist`);
      }
      const actual = decodeVersion(bytes, name);
      if (actual !== expectedVersion) {
        throw new VersionConflictError(
          `Cannot ${casWhat(name)}: expected version ${expectedVersion}, the cell is at ${actual}`,
          { expected: expectedVersion, actual },
        );
      }
      ctx.tx.put(k, encodeRecord(actual + 1, ctx.now(), encoded));
      return actual + 1;
    });
  }

  /**
   * Writes `value` whatever the version (creating the cell at version 1 if
   * it is missing). Concurrent `set`s of one cell are serialized: each
   * returns a distinct version.
   *
   * @param name The cell's name.
   * @param value The new value.
   * @returns The new version.
   * @throws {TypeError} If `name` is not a non-empty string or `value` not storable.
   * @throws {RangeError} If `name` is over 1024 UTF-8 bytes or `value` too large.
   * @throws {RunNotFoundError} If the run does not exist.
   * @throws {RunClosedError} If the run is completed, failed, cancelled or archived.
   * @throws {TransactionConflictError} If every attempt conflicted.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * assert.equal(await run.state.set("mode", "explore"), 1);
   * assert.equal(await run.state.set("mode", "exploit"), 2);
   * ```
   */
  set(name: string, value: Value): Promise<number> {
    try {
      return Promise.resolve(this.#set(name, value));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #set(name: string, value: Value): Promise<number> | number {
    checkName(name, "a state cell name");
    const encoded = encodeValue(value);
    return this.#scope.write((ctx) => {
      const { k, bytes } = this.#forWrite(ctx, name, `set state cell ${show(name)}`);
      const version = bytes === undefined ? 1 : decodeVersion(bytes, name) + 1;
      ctx.tx.put(k, encodeRecord(version, ctx.now(), encoded));
      return version;
    });
  }

  /**
   * Removes the cell.
   *
   * @param name The cell's name.
   * @returns True if it existed.
   * @throws {TypeError} If `name` is not a non-empty string.
   * @throws {RangeError} If `name` is over 1024 UTF-8 bytes.
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
   * await run.state.init("lock", "worker-1");
   * assert.equal(await run.state.delete("lock"), true);
   * assert.equal(await run.state.delete("lock"), false);
   * ```
   */
  delete(name: string): Promise<boolean> {
    try {
      return Promise.resolve(this.#delete(name));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #delete(name: string): Promise<boolean> | boolean {
    checkName(name, "a state cell name");
    return this.#scope.write((ctx) => {
      const { k, bytes } = this.#forWrite(ctx, name, `delete state cell ${show(name)}`);
      if (bytes === undefined) return false;
      ctx.tx.delete(k);
      return true;
    });
  }

  /**
   * Whether the cell exists.
   *
   * @param name The cell's name.
   * @returns True if it does.
   * @throws {TypeError} If `name` is not a non-empty string.
   * @throws {RangeError} If `name` is over 1024 UTF-8 bytes.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.state.set("ready", false);
   * assert.equal(await run.state.exists("ready"), true);
   * assert.equal(await run.state.exists("done"), false);
   * ```
   */
  async exists(name: string): Promise<boolean> {
    checkName(name, "a state cell name");
    return await this.#scope.exec(async (ctx) => {
      const run = await ctx.readableRun(this.#scope.runId, `check state cell ${show(name)}`);
      return (await ctx.tx.get(cellKey(run.n, name))) !== undefined;
    });
  }

  /**
   * The names of the run's cells, in order (UTF-8 byte order).
   *
   * @returns The names.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.state.set("b", 2);
   * await run.state.set("a", 1);
   * assert.deepEqual(await run.state.list(), ["a", "b"]);
   * ```
   */
  async list(): Promise<string[]> {
    return await this.#scope.exec(async (ctx) => {
      const run = await ctx.readableRun(this.#scope.runId, "list state cells");
      const rows = await ctx.tx.scan(range(key(run.n, TAG.STATE).finish()));
      return rows.map(([k]) => cellName(k));
    });
  }

  /**
   * Reads the cell, calls `fn` with its state, writes the value `fn`
   * returns at version + 1, and resolves to the result `fn` returns — all
   * in one transaction.
   *
   * **`fn` MUST BE PURE: it may run more than once.** When another writer
   * commits to the cell between this read and this commit, the whole
   * transaction — read, `fn`, write — runs again on the new state, and
   * only the last run's value and result count. So `fn` must depend on its
   * argument alone and have no effects: no I/O, no logging or metrics, no
   * changes to variables outside it, no API calls; and it must be
   * synchronous. Do effects after `transition` resolves, with its result.
   *
   * A standalone call re-runs up to the database's `maxRetries` times
   * (default 10), then throws `TransactionConflictError`; inside a
   * transaction the caller's transaction re-runs as a whole instead.
   *
   * @param name The cell's name; it must exist (as in the seed: a missing
   *   cell is `NotFoundError`, and `fn` is not called).
   * @param fn `(state) => [newValue, result]`, pure.
   * @returns `fn`'s result from the run that committed.
   * @throws {NotFoundError} If there is no such cell.
   * @throws {TypeError} If `name` is not a non-empty string, `fn` not a
   *   function or returns no `[value, result]` pair, or the value is not storable.
   * @throws {RangeError} If `name` is over 1024 UTF-8 bytes.
   * @throws {RunNotFoundError} If the run does not exist.
   * @throws {RunClosedError} If the run is completed, failed, cancelled or archived.
   * @throws {TransactionConflictError} If every attempt conflicted.
   * @throws Whatever `fn` throws (nothing is written then).
   *
   * @example Concurrent increments, none lost
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.state.init("count", 0);
   * const bump = () =>
   *   run.state.transition("count", (s) => {
   *     const n = (s.value as number) + 1;
   *     return [n, n]; // new value, and the result handed back
   *   });
   * const results = await Promise.all(Array.from({ length: 8 }, bump));
   * assert.deepEqual(results.sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
   * assert.equal((await run.state.read("count"))?.value, 8);
   * ```
   */
  async transition<R>(name: string, fn: Transition<R>): Promise<R> {
    checkName(name, "a state cell name");
    const what = `transition state cell ${show(name)}`;
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot ${what}: fn must be a function, got ${typeName(fn)}`);
    }
    return await this.#scope.exec((ctx) => {
      // Not grouped: `fn` is the caller's code, and may itself call the database.
      const { k, bytes } = this.#forWrite(ctx, name, what);
      if (bytes === undefined) throw new NotFoundError(`Cannot ${what}: it does not exist`);
      const state = decodeRecord(bytes, name);
      const out: unknown = fn(state);
      if (!Array.isArray(out) || out.length !== 2) {
        throw new TypeError(`Cannot ${what}: fn must return a [newValue, result] pair`);
      }
      const encoded = encodeValue(out[0]);
      ctx.tx.put(k, encodeRecord(state.version + 1, ctx.now(), encoded));
      return out[1] as R;
    });
  }

  /** The run (writable), the cell's key and its current record. */
  #forWrite(
    ctx: TxContext,
    name: string,
    what: string,
  ): { k: Uint8Array; bytes: Uint8Array | undefined } {
    const k = cellKey(ctx.runNumber(this.#scope.runId, true, what), name);
    return { k, bytes: ctx.tx.getSync(k) };
  }
}

// ---------------------------------------------------------------------------
// Records

/** `u32(run) · 03 · string(name)`. */
function cellKey(run: number, name: string): Uint8Array {
  return key(run, TAG.STATE).string(name).finish();
}

function cellName(k: Uint8Array): string {
  const r = new KeyReader(k);
  r.u32();
  r.u8();
  return r.string();
}

function encodeRecord(version: number, updatedAt: number, encoded: Uint8Array): Uint8Array {
  const rec = slabAlloc(HEADER_BYTES + encoded.length); // zero-filled (src/_slab.ts)
  rec[0] = STATE_RECORD_FORMAT;
  writeU64(rec, VERSION_AT, version);
  writeU64(rec, UPDATED_AT, updatedAt);
  rec.set(encoded, HEADER_BYTES);
  return rec;
}

function corrupt(name: string, cause?: unknown): CorruptionError {
  return new CorruptionError(`Cannot read state cell ${show(name)}: its record is malformed`, {
    where: `state record ${show(name)}`,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The version, read without decoding the value. */
function decodeVersion(bytes: Uint8Array, name: string): number {
  return decodeVersionAt(bytes, 0, bytes.length, name);
}

/** {@link decodeVersion} of the record `bytes[start, end)`. */
function decodeVersionAt(bytes: Uint8Array, start: number, end: number, name: string): number {
  if (end - start <= HEADER_BYTES || bytes[start] !== STATE_RECORD_FORMAT) throw corrupt(name);
  const v = readU64(bytes, start + VERSION_AT);
  if (v < 1 || !Number.isSafeInteger(v)) throw corrupt(name);
  return v;
}

function decodeRecord(bytes: Uint8Array, name: string): CellState {
  return decodeRecordAt(bytes, 0, bytes.length, name);
}

/** {@link decodeRecord} of the record `bytes[start, end)`, without a view of it. */
function decodeRecordAt(bytes: Uint8Array, start: number, end: number, name: string): CellState {
  const version = decodeVersionAt(bytes, start, end, name);
  let value: Value;
  try {
    value = decodeValueFrom(bytes, start + HEADER_BYTES, end);
  } catch (cause) {
    throw corrupt(name, cause);
  }
  return { value, version, updatedAt: readU64(bytes, start + UPDATED_AT) };
}

// ---------------------------------------------------------------------------
// Argument checks

function checkVersion(v: unknown, name: string): void {
  if (typeof v !== "number") {
    throw new TypeError(
      `Cannot cas state cell ${show(name)}: expectedVersion must be a number, got ${typeName(v)}`,
    );
  }
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(
      `Cannot cas state cell ${show(name)}: expectedVersion must be a positive integer, got ${v}`,
    );
  }
}

/** A name for an error message: quoted, cut at 64 characters. */
function show(k: string): string {
  return JSON.stringify(k.length > 64 ? `${k.slice(0, 64)}…` : k);
}

/** What a CAS of cell `name` is, for its error messages. */
function casWhat(name: string): string {
  return `cas state cell ${show(name)}`;
}
