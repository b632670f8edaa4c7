/**
 * The key layout of a database: where every primitive keeps its records and
 * indices in the one ordered store (docs/FORMAT.md "Database layout").
 *
 * Every key starts with a `u32` run number. Run number 0 is the system
 * space (run records and their indices, the expiry index); runs get numbers
 * from 1 when created. A run's data therefore lies in one contiguous range,
 * `[u32(n), u32(n + 1))`, which is what cascading delete removes, and the
 * store's 24-byte inline key head holds 19 bytes of the user's key instead
 * of a shared run id.
 *
 * Integers are big-endian, strings escaped and terminated (src/core/keys.ts),
 * so byte order is the order the indices need.
 *
 * @module
 */
import { KeyWriter, prefixEnd } from "../core/keys.ts";

/** Run number of the system space. */
export const SYSTEM = 0;
/**
 * Highest run number: 2^32 − 2, so that `u32(n + 1)` ends every run range. A
 * number is never reused while any key of its run remains.
 */
export const MAX_RUN_NUMBER = 0xffff_fffe;

/** Tags inside the system space (`u32(0) · tag · …`). */
export const SYS = {
  /** `string(runId)` → run record. */
  RUN: 0x01,
  /** `u32(n)` → `string(runId)`: which run holds a number (the highest is found at open). */
  RUN_NUMBER: 0x02,
  /** `u8(status) · u64(createdAt) · string(runId)` → empty. */
  BY_STATUS: 0x10,
  /** `string(tag) · u64(createdAt) · string(runId)` → empty. */
  BY_TAG: 0x11,
  /** `string(parentId) · u64(createdAt) · string(runId)` → empty. */
  BY_PARENT: 0x12,
  /** `u64(createdAt) · string(runId)` → empty. */
  BY_CREATED: 0x13,
  /** `u8(status)` → run count with that status (commit-time counters). */
  RUN_COUNT: 0x14,
  /** `string(runId)` → run number: a run being deleted in batches. */
  DELETING: 0x15,
  /** `u64(expiresAt) · raw key` → empty: the TTL expiry index (src/engine/ttl.ts). */
  EXPIRY: 0x20,
} as const;

/** Tags inside a run (`u32(n) · tag · …`). */
export const TAG = {
  /** KV: `string(key)` → KV record. */
  KV: 0x01,
  /** Event: `u64(sequence)` → event record. */
  EVENT: 0x02,
  /** State cell: `string(name)` → state record. */
  STATE: 0x03,
  /** Trace: `string(traceId)` → trace record. */
  TRACE: 0x04,
  /** Event log head: (no suffix) → `{ length, head }`. */
  EVENT_HEAD: 0x06,
  /** Events by type: `string(type) · u64(sequence)` → empty. */
  EVENT_BY_TYPE: 0x07,
  /**
   * Traces by kind — a custom trace under "custom" and under its name:
   * `string(kind) · u64(timestamp) · string(id)` → empty.
   */
  TRACE_BY_KIND: 0x08,
  /** Traces by tag: `string(tag) · u64(timestamp) · string(id)` → empty. */
  TRACE_BY_TAG: 0x09,
  /** Traces by parent: `string(parentId) · u64(timestamp) · string(id)` → empty. */
  TRACE_BY_PARENT: 0x0a,
  /** Traces by time: `u64(timestamp) · string(id)` → empty. */
  TRACE_BY_TIME: 0x0b,
  /** Trace count: (no suffix) → count (commit-time counter). */
  TRACE_COUNT: 0x0c,
} as const;

/**
 * A fresh key writer positioned after `u32(run) · u8(tag)`.
 *
 * @param run The run number (0 for the system space).
 * @param tag A {@link TAG} or {@link SYS} value.
 * @returns The writer, to append the layout's remaining elements.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { key, TAG } from "./layout.ts";
 *
 * const k = key(7, TAG.KV).string("notes").finish();
 * assert.deepEqual([...k.subarray(0, 5)], [0, 0, 0, 7, 1]);
 * ```
 */
export function key(run: number, tag: number): KeyWriter {
  return new KeyWriter().u32(run).u8(tag);
}

/**
 * The range of every key starting with `prefix`, for `Transaction.scan`.
 *
 * @param prefix A key prefix (not empty, not all 0xff).
 * @returns `{ gte, lt }`.
 * @throws {RangeError} If the prefix has no end.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { key, range, TAG } from "./layout.ts";
 *
 * const r = range(key(7, TAG.KV).finish());
 * assert.deepEqual([...r.lt], [0, 0, 0, 7, 2]);
 * ```
 */
export function range(prefix: Uint8Array): { gte: Uint8Array; lt: Uint8Array } {
  const lt = prefixEnd(prefix);
  if (lt === undefined) throw new RangeError("Cannot scan a prefix without an end");
  return { gte: prefix, lt };
}

/**
 * Every key of run `n`: `[u32(n), u32(n + 1))` (what cascading delete removes).
 *
 * @param n The run number (≥ 1).
 * @returns `{ gte, lt }`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runRange } from "./layout.ts";
 *
 * assert.deepEqual([...runRange(7).lt], [0, 0, 0, 8]);
 * ```
 */
export function runRange(n: number): { gte: Uint8Array; lt: Uint8Array } {
  const gte = new KeyWriter().u32(n).finish();
  return { gte, lt: new KeyWriter().u32(n + 1).finish() };
}

/** Run statuses in their stored code order. */
export const STATUS_CODES = [
  "active",
  "paused",
  "completed",
  "failed",
  "cancelled",
  "archived",
] as const;
