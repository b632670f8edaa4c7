/**
 * Expiry (TTL): entries that carry an expiry time, invisible once it has
 * passed and purged by a sweeper that commits deletes.
 *
 * The engine does not interpret values, so expiry is split in two:
 *
 * - The **record** carries its own expiry time (the layer above encodes it
 *   in the value, e.g. the KV record's `expiresAt`). Reads compare it with
 *   the engine's clock ({@link Engine.now}) and treat an expired record as
 *   absent, at once — no sweep needs to have run.
 * - An **expiry index** entry `prefix ‖ u64 expiresAt ‖ key` (empty value) is
 *   written in the same transaction as the record, so the sweeper finds due
 *   entries by one range scan instead of reading everything.
 *
 * The sweeper deletes a record only if the record itself still says it
 * expired at that time: an index entry left behind by an overwrite (a new
 * expiry, or none) is simply removed. Its transactions read the records they
 * delete, so a concurrent overwrite makes them conflict and re-run rather
 * than delete a fresh value.
 *
 * @module
 */
import type { Engine, Transaction } from "./engine.ts";
import { unrefTimer } from "../_runtime.ts";
import { readU64, writeU64 } from "../_u64.ts";

/** Most index entries one sweep transaction handles; a sweep runs as many as it needs. */
export const DEFAULT_SWEEP_BATCH = 1000;
/** Default interval of the background sweep, ms. */
export const DEFAULT_SWEEP_INTERVAL_MS = 1000;

/**
 * The index key of `key` expiring at `expiresAt`: `prefix ‖ u64 big-endian ‖ key`.
 *
 * @param prefix The index's key prefix.
 * @param expiresAt Expiry time, ms since the epoch (a safe integer ≥ 0).
 * @param key The expiring entry's key.
 * @returns The index key.
 * @throws {RangeError} If `expiresAt` is not a safe integer ≥ 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeExpiryKey, expiryKey } from "./ttl.ts";
 *
 * const k = expiryKey(new Uint8Array([0xff]), 1000, new Uint8Array([7]));
 * assert.deepEqual(k, new Uint8Array([0xff, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 7]));
 * assert.deepEqual(decodeExpiryKey(1, k), { expiresAt: 1000, key: new Uint8Array([7]) });
 * ```
 */
export function expiryKey(prefix: Uint8Array, expiresAt: number, key: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
    throw new RangeError(`Cannot index an expiry: expiresAt must be a safe integer >= 0`);
  }
  const out = new Uint8Array(prefix.length + 8 + key.length);
  out.set(prefix, 0);
  const at = prefix.length;
  writeU64(out, at, expiresAt);
  out.set(key, at + 8);
  return out;
}

/**
 * Splits an index key made by {@link expiryKey}.
 *
 * @param prefixLength Length of the index's prefix.
 * @param indexKey The index key.
 * @returns The expiry time and the entry's key (a view into `indexKey`).
 * @throws {RangeError} If the key is too short.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeExpiryKey, expiryKey } from "./ttl.ts";
 *
 * const k = expiryKey(new Uint8Array([9, 9]), 5, new Uint8Array([1, 2]));
 * assert.equal(decodeExpiryKey(2, k).expiresAt, 5);
 * ```
 */
export function decodeExpiryKey(
  prefixLength: number,
  indexKey: Uint8Array,
): { expiresAt: number; key: Uint8Array } {
  if (indexKey.length < prefixLength + 8) {
    throw new RangeError(`Cannot decode an expiry index key of ${indexKey.length} bytes`);
  }
  return {
    expiresAt: readU64(indexKey, prefixLength),
    key: indexKey.subarray(prefixLength + 8),
  };
}

/** Options of {@link Sweeper}. */
export interface SweeperOptions {
  /** Key prefix of the expiry index. */
  prefix: Uint8Array;
  /**
   * The expiry time a stored record carries, or undefined if it carries
   * none. The sweeper deletes a record only when this equals the index
   * entry's time.
   */
  expiresAtOf: (key: Uint8Array, value: Uint8Array) => number | undefined;
  /** Index entries per transaction. Default {@link DEFAULT_SWEEP_BATCH}. */
  batch?: number;
  /** Background interval for {@link Sweeper.start}. Default {@link DEFAULT_SWEEP_INTERVAL_MS}. */
  intervalMs?: number;
}

/**
 * Purges expired entries: scans the expiry index up to the engine's clock
 * and commits deletes of the records (and the index entries).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Engine } from "./engine.ts";
 * import { expiryKey, Sweeper } from "./ttl.ts";
 *
 * let now = 1000;
 * const engine = new Engine({ clock: () => now });
 * const prefix = new Uint8Array([0xff]);
 * // A record whose value is its expiry time as one byte (a toy format).
 * const key = new Uint8Array([1]);
 * await engine.transaction((tx) => {
 *   tx.put(key, new Uint8Array([50]));
 *   tx.put(expiryKey(prefix, 1050, key), new Uint8Array(0));
 * });
 * const sweeper = new Sweeper(engine, { prefix, expiresAtOf: (_k, v) => 1000 + v[0]! });
 * assert.equal(await sweeper.sweep(), 0); // not due yet
 * now = 1050;
 * assert.equal(await sweeper.sweep(), 1);
 * assert.equal(engine.store.count(), 0);
 * ```
 */
export class Sweeper {
  readonly #engine: Engine;
  readonly #prefix: Uint8Array;
  readonly #expiresAtOf: (key: Uint8Array, value: Uint8Array) => number | undefined;
  readonly #batch: number;
  readonly #intervalMs: number;
  #timer: unknown;
  #running: Promise<number> | undefined;
  #stats = { sweeps: 0, purged: 0, staleIndexEntries: 0 };

  /**
   * @param engine The engine whose entries expire.
   * @param options Index prefix, how to read a record's expiry, batch and interval.
   * @throws {RangeError} If `batch` or `intervalMs` is not a positive integer.
   */
  constructor(engine: Engine, options: SweeperOptions) {
    this.#engine = engine;
    this.#prefix = options.prefix.slice();
    this.#expiresAtOf = options.expiresAtOf;
    this.#batch = options.batch ?? DEFAULT_SWEEP_BATCH;
    this.#intervalMs = options.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (!Number.isSafeInteger(this.#batch) || this.#batch < 1) {
      throw new RangeError(`Cannot create a sweeper: batch must be an integer >= 1`);
    }
    if (!Number.isSafeInteger(this.#intervalMs) || this.#intervalMs < 1) {
      throw new RangeError(`Cannot create a sweeper: intervalMs must be an integer >= 1`);
    }
  }

  /** Counters: sweeps run, records purged, stale index entries removed. */
  get stats(): { sweeps: number; purged: number; staleIndexEntries: number } {
    return { ...this.#stats };
  }

  /**
   * Purges every entry due at the engine's clock now, in transactions of up
   * to `batch` index entries. Concurrent calls share one sweep.
   *
   * @returns How many records it deleted.
   * @throws Whatever the engine's transactions throw (closed, storage failure).
   */
  sweep(): Promise<number> {
    this.#running ??= this.#sweep().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #sweep(): Promise<number> {
    this.#stats.sweeps++;
    const now = this.#engine.now();
    // Index keys due at `now` are those below prefix ‖ u64(now + 1).
    const end = expiryKey(this.#prefix, now + 1, new Uint8Array(0));
    let purged = 0;
    for (;;) {
      const { deleted, stale, more } = await this.#engine.transaction((tx) =>
        this.#sweepBatch(tx, end)
      );
      purged += deleted;
      this.#stats.purged += deleted;
      this.#stats.staleIndexEntries += stale;
      if (!more) return purged;
    }
  }

  async #sweepBatch(
    tx: Transaction,
    end: Uint8Array,
  ): Promise<{ deleted: number; stale: number; more: boolean }> {
    const due = await tx.scan({ gte: this.#prefix, lt: end, limit: this.#batch });
    let deleted = 0;
    for (const [indexKey] of due) {
      const { expiresAt, key } = decodeExpiryKey(this.#prefix.length, indexKey);
      tx.delete(indexKey);
      const value = await tx.get(key);
      if (value !== undefined && this.#expiresAtOf(key, value) === expiresAt) {
        tx.delete(key);
        deleted++;
      }
    }
    return { deleted, stale: due.length - deleted, more: due.length === this.#batch };
  }

  /** Sweeps every `intervalMs` in the background (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.sweep().catch(() => {}); // a closed or failed engine shows up in its own calls
    }, this.#intervalMs);
    unrefTimer(this.#timer);
  }

  /** Stops the background sweeps and waits for one in progress. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer as number);
    this.#timer = undefined;
    await this.#running?.catch(() => {});
  }
}
