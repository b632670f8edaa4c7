/**
 * Runs: one per agent execution. Lifecycle (status transitions), parents
 * and children, tags and metadata, queries by index, stats, and cascading
 * delete. docs/FORMAT.md "Runs" describes the records and indices this file
 * writes and the delete procedure.
 *
 * @module
 */
import { decodeValue, encodeValue, type Value } from "../core/codec.ts";
import { compareKeys, KeyReader, KeyWriter, MAX_USER_KEY_BYTES } from "../core/keys.ts";
import { expiryKey } from "../engine/ttl.ts";
import { AlreadyExistsError, CorruptionError, InvalidTransitionError } from "../errors.ts";
import type { Run } from "./database.ts";
import {
  type DbCore,
  encodeRunRecord,
  type RunMetadata,
  type RunRecord,
  type RunsScope,
  type RunStatus,
  type TxContext,
} from "./context.ts";
import { kvRecordExpiresAt } from "./kv.ts";

export type { RunMetadata };
import { key, range, runRange, STATUS_CODES, SYS, SYSTEM, TAG } from "./layout.ts";

/** Options of {@link Runs.create}. */
export interface CreateRunOptions {
  /** The id; default a new UUIDv7. */
  id?: string;
  /** Human name. */
  name?: string;
  /** Tags. */
  tags?: string[];
  /** Free-form metadata (any storable value). */
  metadata?: Value;
  /** Parent run id (must exist). */
  parent?: string | undefined;
}

/** Filters of {@link Runs.query}; a run must match all that are given. */
export interface RunQuery {
  /** Only runs with this status (`"archived"` also lifts the default exclusion). */
  status?: RunStatus;
  /** Only runs that have every one of these tags (an empty list filters nothing). */
  tags?: string[];
  /** Only direct children of this run. */
  parent?: string;
  /** Only runs created strictly after this time, ms since the epoch. */
  createdAfter?: number;
  /** Only runs created strictly before this time, ms since the epoch. */
  createdBefore?: number;
  /** At most this many runs (a non-negative integer). Default: all. */
  limit?: number;
  /** Include archived runs. Default false (unless `status: "archived"`). */
  includeArchived?: boolean;
}

/** Run counts by status, from commit-time counters: {@link Runs.stats}. */
export interface RunStats {
  /** Every run that exists (archived ones included). */
  total: number;
  /** Active runs. */
  active: number;
  /** Paused runs. */
  paused: number;
  /** Completed runs. */
  completed: number;
  /** Failed runs. */
  failed: number;
  /** Cancelled runs. */
  cancelled: number;
  /** Archived runs. */
  archived: number;
}

/**
 * Most keys one transaction of a cascading delete handles: keys of the
 * run's data range plus parent-index entries of its children. Each may
 * bring one more write (a KV key's expiry index entry, a child's rewritten
 * record), so a batch writes at most 2 × 10,000 keys, well under the
 * engine's `MAX_TXN_KEYS` (100,000). Inside `db.transaction`, a run with
 * more than this many keys cannot be deleted (RangeError): use `db.runs`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, DELETE_BATCH_KEYS } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * await run.transaction(async (tx) => {
 *   for (let i = 0; i <= DELETE_BATCH_KEYS; i++) await tx.kv.put(`k${i}`, i);
 * });
 * // Inside a transaction the whole delete must fit in it: too many keys.
 * await assert.rejects(db.transaction((tx) => tx.runs.delete(run.id)), RangeError);
 * // db.runs.delete removes the run in batches, one transaction each.
 * await db.runs.delete(run.id);
 * assert.equal(await db.runs.get(run.id), undefined);
 * ```
 */
export const DELETE_BATCH_KEYS = 10_000;

/**
 * Most bytes (keys, and the children's rewritten records) one delete batch
 * writes, far under the engine's `MAX_TXN_BYTES` (32 MiB). A batch always
 * handles at least one key, whatever its size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, DELETE_BATCH_BYTES, DELETE_BATCH_KEYS } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * // 5,000 keys of 1,000 bytes: fewer than DELETE_BATCH_KEYS, but a delete
 * // counts each key's bytes twice (for an index entry it may remove too):
 * // over DELETE_BATCH_BYTES in all.
 * const keys = 5_000;
 * assert.ok(keys < DELETE_BATCH_KEYS && keys * 2 * 1_000 > DELETE_BATCH_BYTES);
 * await run.transaction(async (tx) => {
 *   for (let i = 0; i < keys; i++) await tx.kv.put(String(i).padStart(1_000, "0"), i);
 * });
 * await assert.rejects(db.transaction((tx) => tx.runs.delete(run.id)), RangeError);
 * await db.runs.delete(run.id); // in batches of at most DELETE_BATCH_BYTES
 * assert.equal(await db.runs.get(run.id), undefined);
 * ```
 */
export const DELETE_BATCH_BYTES: number = 8 * 1024 * 1024;

/**
 * The public view of a stored run record.
 *
 * @param r The stored record.
 * @returns Its public fields (a fresh object; `tags` copied).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toMetadata } from "./runs.ts";
 *
 * const m = toMetadata({
 *   n: 1, id: "r1", status: "active", createdAt: 5, updatedAt: 5, tags: ["a"], metadata: {},
 * });
 * assert.deepEqual(m, {
 *   id: "r1", status: "active", createdAt: 5, updatedAt: 5, tags: ["a"], metadata: {},
 * });
 * ```
 */
export function toMetadata(r: RunRecord): RunMetadata {
  const m: RunMetadata = {
    id: r.id,
    status: r.status,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    tags: [...r.tags],
    metadata: r.metadata,
  };
  if (r.name !== undefined) m.name = r.name;
  if (r.parent !== undefined) m.parent = r.parent;
  if (r.completedAt !== undefined) m.completedAt = r.completedAt;
  if (r.error !== undefined) m.error = r.error;
  return m;
}

/**
 * Checks a string argument: non-empty, at most MAX_USER_KEY_BYTES of UTF-8.
 *
 * @param value The argument.
 * @param what What it is, for the message ("a run id").
 * @returns The string.
 * @throws {TypeError} If it is not a string, or empty.
 * @throws {RangeError} If it is over MAX_USER_KEY_BYTES UTF-8 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkName } from "./runs.ts";
 *
 * assert.equal(checkName("notes", "a key"), "notes");
 * assert.throws(() => checkName("", "a key"), TypeError);
 * assert.throws(() => checkName("x".repeat(1025), "a key"), RangeError);
 * ```
 */
export function checkName(value: unknown, what: string): string {
  if (typeof value !== "string") {
    throw new TypeError(`Cannot use ${what}: it must be a string, got ${typeof value}`);
  }
  if (value.length === 0) throw new TypeError(`Cannot use ${what}: it must not be empty`);
  if (
    value.length * 3 > MAX_USER_KEY_BYTES &&
    new TextEncoder().encode(value).length > MAX_USER_KEY_BYTES
  ) {
    throw new RangeError(
      `Cannot use ${what}: it is over MAX_USER_KEY_BYTES (${MAX_USER_KEY_BYTES}) bytes`,
    );
  }
  return value;
}

const statusCode = (s: RunStatus): number => STATUS_CODES.indexOf(s);

/** The statuses a status may change to (issue 4 / seed 002 `is_valid_transition`). */
const TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
  active: ["completed", "failed", "cancelled", "paused", "archived"],
  paused: ["active", "cancelled", "archived"],
  completed: ["archived"],
  failed: ["archived"],
  cancelled: ["archived"],
  archived: [],
};

/** Statuses that stamp `completedAt`. */
const FINISHED: ReadonlySet<RunStatus> = new Set(["completed", "failed", "cancelled"]);

/**
 * Whether the lifecycle allows a run to go from `from` to `to`. Same-status
 * changes and anything out of `archived` are not allowed.
 *
 * @param from The current status.
 * @param to The status asked for.
 * @returns True if allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canTransition } from "./runs.ts";
 *
 * assert.equal(canTransition("paused", "active"), true);
 * assert.equal(canTransition("completed", "active"), false); // no resurrection
 * assert.equal(canTransition("archived", "archived"), false);
 * ```
 */
export function canTransition(from: RunStatus, to: RunStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * Checks a status argument.
 *
 * @param value The argument.
 * @param what What it is, for the message.
 * @returns The status.
 * @throws {TypeError} If it is not one of the six statuses.
 */
function checkStatus(value: unknown, what: string): RunStatus {
  if (typeof value !== "string" || !(STATUS_CODES as readonly string[]).includes(value)) {
    throw new TypeError(
      `Cannot use ${what}: it must be one of ${STATUS_CODES.join(", ")}, got ${
        typeof value === "string" ? JSON.stringify(value) : typeof value
      }`,
    );
  }
  return value as RunStatus;
}

/** Checks a tag list: an array of names, deduplicated in order. */
function checkTags(value: unknown, what: string): string[] {
  if (!Array.isArray(value)) {
    throw new TypeError(`Cannot use ${what}: it must be an array of strings`);
  }
  return [...new Set(value.map((t) => checkName(t, "a run tag")))];
}

const EMPTY = new Uint8Array(0);
const EXPIRY_PREFIX = key(SYSTEM, SYS.EXPIRY).finish();

const statusKey = (status: RunStatus, createdAt: number, id: string): Uint8Array =>
  key(SYSTEM, SYS.BY_STATUS).u8(statusCode(status)).u64(createdAt).string(id).finish();
const tagKey = (tag: string, createdAt: number, id: string): Uint8Array =>
  key(SYSTEM, SYS.BY_TAG).string(tag).u64(createdAt).string(id).finish();
const parentKey = (parent: string, createdAt: number, id: string): Uint8Array =>
  key(SYSTEM, SYS.BY_PARENT).string(parent).u64(createdAt).string(id).finish();
const createdKey = (createdAt: number, id: string): Uint8Array =>
  key(SYSTEM, SYS.BY_CREATED).u64(createdAt).string(id).finish();
const numberKey = (n: number): Uint8Array => key(SYSTEM, SYS.RUN_NUMBER).u32(n).finish();
const deletingKey = (id: string): Uint8Array => key(SYSTEM, SYS.DELETING).string(id).finish();
const countKey = (status: RunStatus): Uint8Array =>
  key(SYSTEM, SYS.RUN_COUNT).u8(statusCode(status)).finish();

/**
 * Writes every index entry of a run record (number, status, tags, parent,
 * created).
 *
 * @param ctx The transaction.
 * @param r The record (already written with `ctx.putRun`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database } from "@in-mem/core";
 *
 * // Runs.create calls it; the indices are what query() reads.
 * await using db = await Database.open();
 * await db.runs.create({ id: "r1", tags: ["prod"] });
 * assert.deepEqual((await db.runs.query({ tags: ["prod"] })).map((r) => r.id), ["r1"]);
 * ```
 */
export function putRunIndexes(ctx: TxContext, r: RunRecord): void {
  ctx.tx.put(numberKey(r.n), new KeyWriter().string(r.id).finish());
  ctx.tx.put(statusKey(r.status, r.createdAt, r.id), EMPTY);
  for (const tag of r.tags) ctx.tx.put(tagKey(tag, r.createdAt, r.id), EMPTY);
  if (r.parent !== undefined) ctx.tx.put(parentKey(r.parent, r.createdAt, r.id), EMPTY);
  ctx.tx.put(createdKey(r.createdAt, r.id), EMPTY);
}

/** Deletes the index entries {@link putRunIndexes} wrote, except the number entry. */
function deleteRunIndexes(ctx: TxContext, r: RunRecord): void {
  ctx.tx.delete(statusKey(r.status, r.createdAt, r.id));
  for (const tag of r.tags) ctx.tx.delete(tagKey(tag, r.createdAt, r.id));
  if (r.parent !== undefined) ctx.tx.delete(parentKey(r.parent, r.createdAt, r.id));
  ctx.tx.delete(createdKey(r.createdAt, r.id));
}

/**
 * Adds `delta` to the run count of `status`, at commit time (never
 * conflicts). A count that reaches zero is deleted.
 *
 * @param ctx The transaction.
 * @param status The status counted.
 * @param delta The change.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database } from "@in-mem/core";
 *
 * // Runs.create and every status change keep the counters; stats() reads them.
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * await db.runs.pause(run.id);
 * assert.equal((await db.runs.stats()).paused, 1);
 * ```
 */
export function countRun(ctx: TxContext, status: RunStatus, delta: number): void {
  const k = countKey(status);
  ctx.tx.atCommit((view) => {
    const old = view.get(k);
    const n = (old === undefined ? 0 : decodeValue(old) as number) + delta;
    if (n === 0) view.delete(k);
    else view.put(k, encodeValue(n));
  });
}

// ---------------------------------------------------------------------------
// Queries: a leapfrog intersection of index ranges.
//
// Every run index (by status, tag, parent, created) ends in the same suffix,
// `u64(createdAt) · string(runId)`, and is sorted by it within its prefix.
// So each condition of a query is a sorted stream of suffixes, and the
// answer is their intersection in suffix order — creation order. A leapfrog
// join seeks each stream to the largest suffix seen so far until all agree:
// it reads about as many entries as the smallest stream (times the number of
// streams), never the whole run table.

/** A sorted stream of index suffixes that can skip ahead. */
interface Cursor {
  /** The first suffix ≥ `target`, or undefined when there is none. */
  seek(target: Uint8Array): Promise<Uint8Array | undefined>;
}

const CURSOR_BATCH_MIN = 16;
const CURSOR_BATCH_MAX = 1024;

/** One index range, read in growing batches. */
class IndexCursor implements Cursor {
  readonly #ctx: TxContext;
  readonly #prefix: Uint8Array;
  readonly #end: Uint8Array;
  #buffer: Uint8Array[] = [];
  #at = 0;
  #from: Uint8Array | undefined;
  #complete = false;
  #batch = CURSOR_BATCH_MIN;

  /**
   * @param ctx The transaction.
   * @param prefix The index prefix (every key of the stream starts with it).
   * @param before Suffixes stay below this (exclusive), or undefined for no bound.
   */
  constructor(ctx: TxContext, prefix: Uint8Array, before: Uint8Array | undefined) {
    this.#ctx = ctx;
    this.#prefix = prefix;
    this.#end = before === undefined ? range(prefix).lt : concat(prefix, before);
  }

  async seek(target: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.#from !== undefined && compareKeys(target, this.#from) >= 0) {
      // Skip buffered suffixes below the target (targets only grow).
      while (this.#at < this.#buffer.length && compareKeys(this.#buffer[this.#at]!, target) < 0) {
        this.#at++;
      }
      if (this.#at < this.#buffer.length) return this.#buffer[this.#at];
      if (this.#complete) return undefined;
      this.#batch = Math.min(this.#batch * 2, CURSOR_BATCH_MAX);
    }
    const rows = await this.#ctx.tx.scan({
      gte: concat(this.#prefix, target),
      lt: this.#end,
      limit: this.#batch,
    });
    this.#buffer = rows.map(([k]) => k.subarray(this.#prefix.length));
    this.#at = 0;
    this.#from = target;
    this.#complete = rows.length < this.#batch;
    return this.#buffer[0];
  }
}

/** The union of several streams (runs with any of several statuses). */
class UnionCursor implements Cursor {
  readonly #members: Cursor[];
  constructor(members: Cursor[]) {
    this.#members = members;
  }
  async seek(target: Uint8Array): Promise<Uint8Array | undefined> {
    let best: Uint8Array | undefined;
    for (const m of this.#members) {
      const s = await m.seek(target);
      if (s !== undefined && (best === undefined || compareKeys(s, best) < 0)) best = s;
    }
    return best;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Up to `limit` suffixes present in every cursor, from `start`, in order. */
async function intersect(
  cursors: Cursor[],
  start: Uint8Array,
  limit: number,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  let target = start;
  while (out.length < limit) {
    let agreed = 0;
    for (let i = 0; agreed < cursors.length; i = (i + 1) % cursors.length) {
      const s = await cursors[i]!.seek(target);
      if (s === undefined) return out;
      if (compareKeys(s, target) === 0) agreed++;
      else {
        target = s;
        agreed = 1;
      }
    }
    out.push(target);
    target = concat(target, new Uint8Array([0])); // the smallest suffix after it
  }
  return out;
}

/** Checks an optional time bound of a query. */
function checkTime(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number") {
    throw new TypeError(`Cannot query runs: ${what} must be a number, got ${typeof value}`);
  }
  if (!Number.isFinite(value)) {
    throw new RangeError(`Cannot query runs: ${what} must be finite, got ${value}`);
  }
  return value;
}

/** A query's arguments, checked. */
interface CheckedQuery {
  status: RunStatus | undefined;
  tags: string[];
  parent: string | undefined;
  /** Lowest createdAt included. */
  from: number;
  /** Lowest createdAt excluded, or undefined. */
  to: number | undefined;
  limit: number;
  includeArchived: boolean;
}

function checkQuery(q: unknown): CheckedQuery {
  if (typeof q !== "object" || q === null || Array.isArray(q)) {
    throw new TypeError(`Cannot query runs: the query must be an object`);
  }
  const o = q as Record<string, unknown>;
  const status = o.status === undefined ? undefined : checkStatus(o.status, "the status filter");
  const tags = o.tags === undefined ? [] : checkTags(o.tags, "the tags filter");
  const parent = o.parent === undefined ? undefined : checkName(o.parent, "a parent run id");
  const after = checkTime(o.createdAfter, "createdAfter");
  const before = checkTime(o.createdBefore, "createdBefore");
  let limit = Infinity;
  if (o.limit !== undefined) {
    if (typeof o.limit !== "number") {
      throw new TypeError(`Cannot query runs: limit must be a number, got ${typeof o.limit}`);
    }
    if (!Number.isSafeInteger(o.limit) || o.limit < 0) {
      throw new RangeError(`Cannot query runs: limit must be a non-negative integer`);
    }
    limit = o.limit;
  }
  if (o.includeArchived !== undefined && typeof o.includeArchived !== "boolean") {
    throw new TypeError(`Cannot query runs: includeArchived must be a boolean`);
  }
  const clamp = (t: number) => Math.min(Math.max(t, 0), Number.MAX_SAFE_INTEGER);
  return {
    status,
    tags,
    parent,
    from: after === undefined ? 0 : clamp(Math.floor(after) + 1),
    to: before === undefined ? undefined : clamp(Math.ceil(before)),
    limit,
    includeArchived: o.includeArchived === true,
  };
}

/** Reads the (createdAt, id) of an index suffix. */
function readSuffix(suffix: Uint8Array): { createdAt: number; id: string } {
  const r = new KeyReader(suffix);
  const createdAt = r.u64();
  return { createdAt, id: r.string() };
}

async function runQuery(ctx: TxContext, q: CheckedQuery): Promise<RunMetadata[]> {
  if (q.limit === 0 || (q.to !== undefined && q.to <= q.from)) return [];
  // The parent of an index entry must exist: during a batched delete the
  // entries of its children are still being removed.
  if (q.parent !== undefined && await ctx.run(q.parent) === undefined) return [];
  const before = q.to === undefined ? undefined : new KeyWriter().u64(q.to).finish();
  const cursor = (prefix: Uint8Array) => new IndexCursor(ctx, prefix, before);
  const cursors: Cursor[] = [];
  if (q.parent !== undefined) {
    cursors.push(cursor(key(SYSTEM, SYS.BY_PARENT).string(q.parent).finish()));
  }
  for (const tag of q.tags) cursors.push(cursor(key(SYSTEM, SYS.BY_TAG).string(tag).finish()));
  if (q.status !== undefined) {
    cursors.push(cursor(key(SYSTEM, SYS.BY_STATUS).u8(statusCode(q.status)).finish()));
  } else if (!q.includeArchived) {
    cursors.push(
      new UnionCursor(
        STATUS_CODES.filter((s) => s !== "archived").map((s) =>
          cursor(key(SYSTEM, SYS.BY_STATUS).u8(statusCode(s)).finish())
        ),
      ),
    );
  } else if (cursors.length === 0) {
    cursors.push(cursor(key(SYSTEM, SYS.BY_CREATED).finish()));
  }
  const found = await intersect(cursors, new KeyWriter().u64(q.from).finish(), q.limit);
  const out: RunMetadata[] = [];
  for (const suffix of found) {
    const { createdAt, id } = readSuffix(suffix);
    const r = await ctx.run(id);
    // The indices and the records are written together; check it on the way out.
    if (
      r === undefined || r.createdAt !== createdAt ||
      (q.status !== undefined && r.status !== q.status) ||
      (q.status === undefined && !q.includeArchived && r.status === "archived") ||
      (q.parent !== undefined && r.parent !== q.parent) ||
      !q.tags.every((t) => r.tags.includes(t))
    ) {
      throw new CorruptionError(`Cannot query runs: run ${id} does not match its index entries`, {
        where: `run index entry of ${id}`,
      });
    }
    out.push(toMetadata(r));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Cascading delete.

/** What one delete batch removes. */
interface DeletePlan {
  /** Parent-index entries of children, with the child's id. */
  children: [entry: Uint8Array, childId: string][];
  /** Keys of the run's data range, with their values. */
  data: [Uint8Array, Uint8Array][];
  /** True when nothing of the run remains after this batch. */
  complete: boolean;
}

/**
 * Reads what the next batch of deleting run (`id`, `n`) removes: first the
 * parent-index entries of its children (they are detached, not deleted),
 * then the keys of its data range. At most {@link DELETE_BATCH_KEYS} keys
 * and about {@link DELETE_BATCH_BYTES} bytes; reads only.
 */
async function planDelete(ctx: TxContext, id: string, n: number): Promise<DeletePlan> {
  let keysLeft = DELETE_BATCH_KEYS;
  let bytes = 0;
  const plan: DeletePlan = { children: [], data: [], complete: false };
  const kids = await ctx.tx.scan({
    ...range(key(SYSTEM, SYS.BY_PARENT).string(id).finish()),
    limit: keysLeft,
  });
  for (const [k] of kids) {
    const childId = readSuffix(k.subarray(parentPrefixLength(id))).id;
    const child = await ctx.run(childId);
    const cost = 2 * k.length + (child === undefined ? 0 : encodeRunRecord(child).length);
    if (plan.children.length > 0 && bytes + cost > DELETE_BATCH_BYTES) return plan;
    bytes += cost;
    plan.children.push([k, childId]);
  }
  keysLeft -= kids.length;
  if (keysLeft === 0) return plan;
  // One key more than fits tells whether anything is left after this batch.
  const rows = await ctx.tx.scan({ ...runRange(n), limit: keysLeft + 1 });
  for (const row of rows.slice(0, keysLeft)) {
    const cost = 2 * row[0].length + 16;
    if (plan.children.length + plan.data.length > 0 && bytes + cost > DELETE_BATCH_BYTES) {
      return plan;
    }
    bytes += cost;
    plan.data.push(row);
  }
  plan.complete = rows.length <= keysLeft;
  return plan;
}

const parentPrefixLength = (id: string): number =>
  key(SYSTEM, SYS.BY_PARENT).string(id).finish().length;

/**
 * The expiry a KV record carries. A record too damaged to tell is deleted
 * anyway: a delete must not get stuck on the data it removes (it would also
 * stop the database from opening, which finishes interrupted deletes). An
 * expiry index entry it may leave is stale, and the sweeper drops stale
 * entries when they come due.
 */
function expiresAtOf(value: Uint8Array): number | undefined {
  try {
    const at = kvRecordExpiresAt(value);
    return at !== undefined && Number.isSafeInteger(at) && at >= 0 ? at : undefined;
  } catch {
    return undefined;
  }
}

/** Applies a batch: detaches the children, deletes the data keys and their expiry entries. */
async function applyDelete(ctx: TxContext, id: string, plan: DeletePlan): Promise<void> {
  for (const [entry, childId] of plan.children) {
    ctx.tx.delete(entry);
    const child = await ctx.run(childId);
    if (child !== undefined && child.parent === id) {
      const next: RunRecord = { ...child, tags: [...child.tags], updatedAt: ctx.now() };
      delete next.parent;
      ctx.putRun(next);
    }
  }
  for (const [k, v] of plan.data) {
    ctx.tx.delete(k);
    // KV records with an expiry have an entry in the system expiry index.
    if (k[4] === TAG.KV) {
      const expiresAt = expiresAtOf(v);
      if (expiresAt !== undefined) ctx.tx.delete(expiryKey(EXPIRY_PREFIX, expiresAt, k));
    }
  }
}

/**
 * One step of an interrupted or batched delete of run `id`: the next
 * batch; the last one also removes the marker and the run's number entry.
 *
 * @returns True when the delete is finished (or was not in progress).
 */
async function continueDelete(ctx: TxContext, id: string): Promise<boolean> {
  const marker = await ctx.tx.get(deletingKey(id));
  if (marker === undefined) return true;
  const n = decodeValue(marker);
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
    throw new CorruptionError(`Cannot delete run ${id}: its delete marker is malformed`, {
      where: `delete marker of run ${id}`,
    });
  }
  const plan = await planDelete(ctx, id, n);
  await applyDelete(ctx, id, plan);
  if (plan.complete) {
    ctx.tx.delete(deletingKey(id));
    ctx.tx.delete(numberKey(n));
  }
  return plan.complete;
}

/**
 * Run lifecycle and queries. `db.runs` runs each call as its own
 * transaction; `tx.runs` inside a {@link DatabaseTransaction}.
 *
 * Status rules (seed 002 `is_valid_transition`): active → completed |
 * failed | cancelled | paused | archived; paused → active | cancelled |
 * archived; completed | failed | cancelled → archived; nothing else (no
 * same-status change, nothing out of archived) — `InvalidTransitionError`.
 * Tags, metadata and status may change in any status; data writes
 * (KV, events, state, traces) need the run active or paused.
 *
 * @example A run's lifecycle
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, InvalidTransitionError } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create({ name: "triage", tags: ["prod"] });
 * await db.runs.pause(run.id);
 * await db.runs.resume(run.id);
 * const done = await db.runs.complete(run.id);
 * assert.equal(done.status, "completed");
 * await assert.rejects(db.runs.resume(run.id), InvalidTransitionError);
 * assert.deepEqual((await db.runs.stats()).completed, 1);
 * ```
 */
export class Runs {
  readonly #scope: RunsScope;

  /** @internal Use `db.runs`. */
  constructor(scope: RunsScope) {
    this.#scope = scope;
  }

  /**
   * Creates a run, active.
   *
   * @param options Id (default UUIDv7), name, tags, metadata (default `{}`), parent.
   * @returns A handle on the new run. From `tx.runs` inside
   *   `db.transaction`, the handle joins that transaction (its writes commit
   *   with it; once it is over, use `db.run(id)`).
   * @throws {AlreadyExistsError} If a run with that id exists (or is still being deleted).
   * @throws {RunNotFoundError} If the parent does not exist.
   * @throws {TypeError} On a malformed option (nothing is written).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { AlreadyExistsError, Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const parent = await db.runs.create({ id: "plan", tags: ["prod"] });
   * const child = await db.runs.create({ parent: parent.id, metadata: { step: 1 } });
   * assert.equal((await db.runs.get(child.id))?.parent, "plan");
   * await assert.rejects(db.runs.create({ id: "plan" }), AlreadyExistsError);
   * ```
   */
  async create(options: CreateRunOptions = {}): Promise<Run> {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Cannot create a run: options must be an object`);
    }
    const id = options.id === undefined ? undefined : checkName(options.id, "a run id");
    const name = options.name;
    if (name !== undefined && typeof name !== "string") {
      throw new TypeError(`Cannot create a run: name must be a string`);
    }
    const tags = options.tags === undefined ? [] : checkTags(options.tags, "the run's tags");
    const parent = options.parent === undefined
      ? undefined
      : checkName(options.parent, "a parent run id");
    const metadata = options.metadata ?? {};
    encodeValue(metadata); // a bad value fails here, before anything is written
    const created = await this.#scope.exec(async (ctx) => {
      const runId = id ?? ctx.db.newId();
      if (await ctx.run(runId) !== undefined) {
        throw new AlreadyExistsError(`Cannot create run ${runId}: it exists`);
      }
      // A run being deleted still has children detaching under its id.
      if (await ctx.tx.get(deletingKey(runId)) !== undefined) {
        throw new AlreadyExistsError(`Cannot create run ${runId}: it is still being deleted`);
      }
      if (parent !== undefined) await ctx.readableRun(parent, `create a child of run ${parent}`);
      const now = ctx.now();
      const r: RunRecord = {
        n: ctx.db.allocateRunNumber(),
        id: runId,
        status: "active",
        createdAt: now,
        updatedAt: now,
        tags,
        metadata,
      };
      if (name !== undefined) r.name = name;
      if (parent !== undefined) r.parent = parent;
      ctx.putRun(r);
      putRunIndexes(ctx, r);
      countRun(ctx, "active", 1);
      return runId;
    });
    return this.#scope.handle(created);
  }

  /**
   * The run's metadata, or undefined if there is no such run.
   *
   * @param id The run id.
   * @returns The metadata.
   * @throws {TypeError} If `id` is not a non-empty string.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create({ name: "triage" });
   * assert.equal((await db.runs.get(run.id))?.status, "active");
   * assert.equal(await db.runs.get("missing"), undefined);
   * ```
   */
  async get(id: string): Promise<RunMetadata | undefined> {
    checkName(id, "a run id");
    return await this.#scope.exec(async (ctx) => {
      const r = await ctx.run(id);
      return r === undefined ? undefined : toMetadata(r);
    });
  }

  /**
   * Changes a run's status, if the lifecycle allows it (see {@link Runs}).
   * Sets `updatedAt`; `completedAt` too when the new status is completed,
   * failed or cancelled. Status index and counters change in the same
   * transaction.
   *
   * @param id The run id.
   * @param status The new status.
   * @returns The run's metadata after the change.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {InvalidTransitionError} If the change is not allowed (`from`, `to` set).
   * @throws {TypeError} If `id` is not a non-empty string or `status` not a status.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database, InvalidTransitionError } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * const m = await db.runs.setStatus(run.id, "cancelled");
   * assert.equal(typeof m.completedAt, "number");
   * const err = await db.runs.setStatus(run.id, "active").catch((e) => e);
   * assert.ok(err instanceof InvalidTransitionError);
   * assert.deepEqual([err.from, err.to], ["cancelled", "active"]);
   * ```
   */
  async setStatus(id: string, status: RunStatus): Promise<RunMetadata> {
    checkName(id, "a run id");
    checkStatus(status, "a run status");
    return await this.#transition(id, status, `set the status of run ${id} to ${status}`);
  }

  /**
   * Marks an active run completed (sets `completedAt`).
   *
   * @param id The run id.
   * @returns The run's metadata after the change.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {InvalidTransitionError} If the run is not active.
   * @throws {TypeError} If `id` is not a non-empty string.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * const m = await db.runs.complete(run.id);
   * assert.equal(m.status, "completed");
   * assert.equal(m.completedAt, m.updatedAt);
   * ```
   */
  async complete(id: string): Promise<RunMetadata> {
    checkName(id, "a run id");
    return await this.#transition(id, "completed", `complete run ${id}`);
  }

  /**
   * Marks an active run failed, recording the error message (sets
   * `completedAt`).
   *
   * @param id The run id.
   * @param error What went wrong.
   * @returns The run's metadata after the change.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {InvalidTransitionError} If the run is not active.
   * @throws {TypeError} If `id` is not a non-empty string or `error` not a string.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await db.runs.fail(run.id, "tool timed out");
   * assert.equal((await db.runs.get(run.id))?.error, "tool timed out");
   * ```
   */
  async fail(id: string, error: string): Promise<RunMetadata> {
    checkName(id, "a run id");
    if (typeof error !== "string") {
      throw new TypeError(`Cannot fail run ${id}: error must be a string, got ${typeof error}`);
    }
    return await this.#transition(id, "failed", `fail run ${id}`, error);
  }

  /**
   * Cancels an active or paused run (sets `completedAt`).
   *
   * @param id The run id.
   * @returns The run's metadata after the change.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {InvalidTransitionError} If the run is not active or paused.
   * @throws {TypeError} If `id` is not a non-empty string.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await db.runs.pause(run.id);
   * assert.equal((await db.runs.cancel(run.id)).status, "cancelled");
   * ```
   */
  async cancel(id: string): Promise<RunMetadata> {
    checkName(id, "a run id");
    return await this.#transition(id, "cancelled", `cancel run ${id}`);
  }

  /**
   * Pauses an active run. A paused run still accepts data writes.
   *
   * @param id The run id.
   * @returns The run's metadata after the change.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {InvalidTransitionError} If the run is not active.
   * @throws {TypeError} If `id` is not a non-empty string.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * assert.equal((await db.runs.pause(run.id)).status, "paused");
   * ```
   */
  async pause(id: string): Promise<RunMetadata> {
    checkName(id, "a run id");
    return await this.#transition(id, "paused", `pause run ${id}`);
  }

  /**
   * Makes a paused run active again.
   *
   * @param id The run id.
   * @returns The run's metadata after the change.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {InvalidTransitionError} If the run is not paused.
   * @throws {TypeError} If `id` is not a non-empty string.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await db.runs.pause(run.id);
   * assert.equal((await db.runs.resume(run.id)).status, "active");
   * ```
   */
  async resume(id: string): Promise<RunMetadata> {
    checkName(id, "a run id");
    return await this.#transition(id, "active", `resume run ${id}`);
  }

  /**
   * Archives a run (a soft delete): it stays readable, takes no more data
   * writes, leaves queries unless asked for (`includeArchived`, or
   * `status: "archived"`), and can never change status again.
   *
   * @param id The run id.
   * @returns The run's metadata after the change.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {InvalidTransitionError} If the run is already archived.
   * @throws {TypeError} If `id` is not a non-empty string.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await db.runs.complete(run.id);
   * await db.runs.archive(run.id);
   * assert.deepEqual(await db.runs.query(), []);
   * assert.equal((await db.runs.query({ includeArchived: true })).length, 1);
   * ```
   */
  async archive(id: string): Promise<RunMetadata> {
    checkName(id, "a run id");
    return await this.#transition(id, "archived", `archive run ${id}`);
  }

  #transition(id: string, to: RunStatus, what: string, error?: string): Promise<RunMetadata> {
    return this.#scope.exec(async (ctx) => {
      const r = await ctx.readableRun(id, what);
      if (!canTransition(r.status, to)) {
        throw new InvalidTransitionError(
          `Cannot ${what}: a ${r.status} run cannot become ${to}`,
          { from: r.status, to },
        );
      }
      const now = ctx.now();
      const next: RunRecord = { ...r, tags: [...r.tags], status: to, updatedAt: now };
      if (FINISHED.has(to)) next.completedAt = now;
      if (error !== undefined) next.error = error;
      ctx.tx.delete(statusKey(r.status, r.createdAt, id));
      ctx.tx.put(statusKey(to, r.createdAt, id), EMPTY);
      ctx.putRun(next);
      countRun(ctx, r.status, -1);
      countRun(ctx, to, 1);
      return toMetadata(next);
    });
  }

  /**
   * Adds tags to a run (those it has already are skipped; order kept).
   * Works in any status.
   *
   * @param id The run id.
   * @param tags The tags (non-empty strings).
   * @returns The run's metadata after the change.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {TypeError} If `id` or a tag is not a non-empty string, or `tags` not an array.
   * @throws {RangeError} If a tag is over 1024 UTF-8 bytes.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create({ tags: ["prod"] });
   * const m = await db.runs.addTags(run.id, ["eu", "prod", "eu"]);
   * assert.deepEqual(m.tags, ["prod", "eu"]);
   * assert.equal((await db.runs.query({ tags: ["eu", "prod"] })).length, 1);
   * ```
   */
  async addTags(id: string, tags: string[]): Promise<RunMetadata> {
    checkName(id, "a run id");
    const wanted = checkTags(tags, "the tags to add");
    return await this.#scope.exec(async (ctx) => {
      const r = await ctx.readableRun(id, `add tags to run ${id}`);
      const added = wanted.filter((t) => !r.tags.includes(t));
      if (added.length === 0) return toMetadata(r);
      const next: RunRecord = { ...r, tags: [...r.tags, ...added], updatedAt: ctx.now() };
      ctx.putRun(next);
      for (const tag of added) ctx.tx.put(tagKey(tag, r.createdAt, id), EMPTY);
      return toMetadata(next);
    });
  }

  /**
   * Replaces a run's metadata with `metadata` (no merge: read, change and
   * write back inside a transaction to update one field). Works in any
   * status.
   *
   * @param id The run id.
   * @param metadata Any storable value.
   * @returns The run's metadata after the change.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {TypeError} If `id` is not a non-empty string, or `metadata` not storable
   *   (the codec's `ValueError`).
   * @throws {RangeError} If the encoded record would be too large.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create({ metadata: { model: "a", step: 1 } });
   * await db.runs.updateMetadata(run.id, { step: 2 });
   * assert.deepEqual((await db.runs.get(run.id))?.metadata, { step: 2 });
   * ```
   */
  async updateMetadata(id: string, metadata: Value): Promise<RunMetadata> {
    checkName(id, "a run id");
    encodeValue(metadata); // a bad value fails here, before anything is written
    return await this.#scope.exec(async (ctx) => {
      const r = await ctx.readableRun(id, `update the metadata of run ${id}`);
      const next: RunRecord = { ...r, tags: [...r.tags], metadata, updatedAt: ctx.now() };
      ctx.putRun(next);
      return toMetadata(next);
    });
  }

  /**
   * Runs matching every given filter, in creation order (`createdAt`, then
   * id; default UUIDv7 ids of one process sort in creation order). Archived
   * runs are left out unless `includeArchived` or `status: "archived"`.
   * Served from the indices (status, tag, parent, creation time), never by
   * reading every run: the filters' index ranges are intersected, so the
   * cost follows the most selective one.
   *
   * @param query Filters and limit.
   * @returns The runs' metadata.
   * @throws {TypeError} On a filter of the wrong type or an unknown status.
   * @throws {RangeError} On a negative or fractional limit, or a non-finite time.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * let now = 1000;
   * await using db = await Database.open(undefined, { clock: () => now });
   * const a = await db.runs.create({ id: "a", tags: ["prod"] });
   * now = 2000;
   * await db.runs.create({ id: "b", tags: ["prod", "eu"], parent: a.id });
   * await db.runs.create({ id: "c", tags: ["dev"] });
   * await db.runs.fail("c", "boom");
   * const ids = async (q: object) => (await db.runs.query(q)).map((r) => r.id);
   * assert.deepEqual(await ids({ tags: ["prod"] }), ["a", "b"]);
   * assert.deepEqual(await ids({ tags: ["prod", "eu"] }), ["b"]);
   * assert.deepEqual(await ids({ status: "failed" }), ["c"]);
   * assert.deepEqual(await ids({ parent: "a" }), ["b"]);
   * assert.deepEqual(await ids({ createdAfter: 1000 }), ["b", "c"]);
   * assert.deepEqual(await ids({ createdBefore: 2000, limit: 5 }), ["a"]);
   * ```
   */
  async query(query: RunQuery = {}): Promise<RunMetadata[]> {
    const q = checkQuery(query);
    return await this.#scope.exec((ctx) => runQuery(ctx, q));
  }

  /**
   * Every run id (archived ones included), in creation order.
   *
   * @returns The ids.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const a = await db.runs.create();
   * const b = await db.runs.create();
   * await db.runs.archive(a.id);
   * assert.deepEqual(await db.runs.list(), [a.id, b.id]);
   * ```
   */
  async list(): Promise<string[]> {
    return await this.#scope.exec(async (ctx) => {
      const prefix = key(SYSTEM, SYS.BY_CREATED).finish();
      const rows = await ctx.tx.scan(range(prefix));
      return rows.map(([k]) => readSuffix(k.subarray(prefix.length)).id);
    });
  }

  /**
   * The direct children of a run (archived ones included), in creation order.
   *
   * @param id The parent run id.
   * @returns The children's metadata.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {TypeError} If `id` is not a non-empty string.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const parent = await db.runs.create();
   * const child = await db.runs.create({ parent: parent.id });
   * assert.deepEqual((await db.runs.children(parent.id)).map((r) => r.id), [child.id]);
   * assert.deepEqual(await db.runs.children(child.id), []);
   * ```
   */
  async children(id: string): Promise<RunMetadata[]> {
    checkName(id, "a run id");
    return await this.#scope.exec(async (ctx) => {
      await ctx.readableRun(id, `list the children of run ${id}`);
      return await runQuery(ctx, {
        status: undefined,
        tags: [],
        parent: id,
        from: 0,
        to: undefined,
        limit: Infinity,
        includeArchived: true,
      });
    });
  }

  /**
   * How many runs there are, by status: six counter reads, whatever the
   * number of runs.
   *
   * @returns The counts and their total.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const a = await db.runs.create();
   * await db.runs.create();
   * await db.runs.fail(a.id, "boom");
   * assert.deepEqual(await db.runs.stats(), {
   *   total: 2, active: 1, paused: 0, completed: 0, failed: 1, cancelled: 0, archived: 0,
   * });
   * ```
   */
  async stats(): Promise<RunStats> {
    return await this.#scope.exec(async (ctx) => {
      const s: RunStats = {
        total: 0,
        active: 0,
        paused: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
        archived: 0,
      };
      for (const status of STATUS_CODES) {
        const bytes = await ctx.tx.get(countKey(status));
        const n = bytes === undefined ? 0 : decodeValue(bytes);
        if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
          throw new CorruptionError(`Cannot count runs: the ${status} counter is malformed`, {
            where: `run counter ${status}`,
          });
        }
        s[status] = n;
        s.total += n;
      }
      return s;
    });
  }

  /**
   * Deletes a run and everything in it — KV entries (and their expiry
   * index entries), events, state cells, traces, its index entries —
   * irreversibly. Its child runs are kept, detached: their `parent` is
   * removed (they become top-level runs). To keep the data, use
   * {@link archive} instead.
   *
   * `db.runs.delete` first removes the run's record and index entries (the
   * run is gone from then on: RunNotFoundError), then its data in
   * transactions of at most {@link DELETE_BATCH_KEYS} keys, so a run of any
   * size can be deleted; a delete interrupted by a crash is finished when
   * the database is next opened. Inside `db.transaction` (`tx.runs.delete`)
   * the whole delete is part of the transaction, which limits it to runs of
   * at most DELETE_BATCH_KEYS keys.
   *
   * @param id The run id.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {RangeError} Inside a transaction, if the run is too large (nothing written).
   * @throws {TypeError} If `id` is not a non-empty string.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database, RunNotFoundError } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const parent = await db.runs.create();
   * const child = await db.runs.create({ parent: parent.id });
   * await db.runs.delete(parent.id);
   * assert.equal(await db.runs.get(parent.id), undefined);
   * assert.equal((await db.runs.get(child.id))?.parent, undefined);
   * await assert.rejects(db.runs.delete(parent.id), RunNotFoundError);
   * ```
   */
  async delete(id: string): Promise<void> {
    checkName(id, "a run id");
    const atomic = !this.#scope.standalone;
    const complete = await this.#scope.exec(async (ctx) => {
      const r = await ctx.readableRun(id, `delete run ${id}`);
      const plan = await planDelete(ctx, id, r.n);
      if (atomic && !plan.complete) {
        throw new RangeError(
          `Cannot delete run ${id} inside a transaction: it holds more than one delete batch ` +
            `(DELETE_BATCH_KEYS ${DELETE_BATCH_KEYS} keys, DELETE_BATCH_BYTES ` +
            `${DELETE_BATCH_BYTES} bytes); use db.runs.delete`,
        );
      }
      ctx.deleteRun(id);
      deleteRunIndexes(ctx, r);
      countRun(ctx, r.status, -1);
      await applyDelete(ctx, id, plan);
      if (plan.complete) ctx.tx.delete(numberKey(r.n));
      else ctx.tx.put(deletingKey(id), encodeValue(r.n));
      return plan.complete;
    });
    if (!complete) await finishDelete(this.#scope.exec.bind(this.#scope), id);
  }
}

/** Runs the batches of a marked delete until it is finished. */
async function finishDelete(
  exec: <T>(fn: (ctx: TxContext) => Promise<T>) => Promise<T>,
  id: string,
): Promise<void> {
  while (!await exec((ctx) => continueDelete(ctx, id))) {
    // one batch per transaction
  }
}

/**
 * Finishes cascading deletes that a crash interrupted (runs with a delete
 * marker). Called by `Database.open` before it returns.
 *
 * @param _db The database's services.
 * @param exec Runs a transaction.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database } from "@in-mem/core";
 *
 * // Database.open calls it; with nothing interrupted it has nothing to do.
 * await using db = await Database.open();
 * assert.deepEqual(await db.runs.list(), []);
 * ```
 */
export async function resumeDeletes(
  _db: DbCore,
  exec: <T>(fn: (ctx: TxContext) => Promise<T>) => Promise<T>,
): Promise<void> {
  const prefix = key(SYSTEM, SYS.DELETING).finish();
  for (;;) {
    const rows = await exec((ctx) => ctx.tx.scan({ ...range(prefix), limit: 100 }));
    if (rows.length === 0) return;
    for (const [k] of rows) {
      await finishDelete(exec, new KeyReader(k.subarray(prefix.length)).string());
    }
  }
}
