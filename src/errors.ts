/**
 * The closed set of domain errors in-mem raises. Argument faults use the
 * built-ins instead: `TypeError` for a value of the wrong kind, `RangeError`
 * for one outside a documented limit.
 *
 * Every class sets `name`, so `err.name === "OutOfMemoryError"` works across
 * realms and bundles, and takes an optional `cause`.
 *
 * @module
 */

/**
 * Base class of every domain error in-mem raises.
 *
 * @example Catch any in-mem error
 * ```ts
 * import assert from "node:assert/strict";
 * import { InMemError, OutOfMemoryError } from "@in-mem/core";
 *
 * const err: unknown = new OutOfMemoryError("Cannot put: no memory left");
 * assert.ok(err instanceof InMemError);
 * assert.equal((err as Error).name, "OutOfMemoryError");
 * ```
 */
export class InMemError extends Error {
  /**
   * Creates the error; `name` becomes the class's name.
   *
   * @param message What failed, as "Cannot …: detail".
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The store's WebAssembly memory cannot hold what an operation needs. The
 * operation changed nothing. Raise the `maxMemoryBytes` option, delete data,
 * or release snapshots (they keep old versions alive).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OrderedStore, OutOfMemoryError } from "@in-mem/core";
 *
 * const store = new OrderedStore({ maxMemoryBytes: 8 << 20 });
 * const value = new Uint8Array(1 << 20);
 * assert.throws(() => {
 *   for (let i = 0; i < 100; i++) store.put(`k${i}`, value);
 * }, OutOfMemoryError);
 * store.close();
 * ```
 */
export class OutOfMemoryError extends InMemError {}

/**
 * The object was closed (or released) and cannot be used any more.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClosedError, OrderedStore } from "@in-mem/core";
 *
 * const store = new OrderedStore();
 * store.close();
 * assert.throws(() => store.count(), ClosedError);
 * ```
 */
export class ClosedError extends InMemError {}

/**
 * A transaction could not commit because other commits kept invalidating
 * what it read, after its retries ran out. Nothing of it was written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TransactionConflictError } from "@in-mem/core";
 *
 * const err = new TransactionConflictError("Cannot commit: 8 attempts conflicted", { attempts: 8 });
 * assert.equal(err.attempts, 8);
 * ```
 */
export class TransactionConflictError extends InMemError {
  /** How many times the transaction ran. */
  readonly attempts: number;
  /**
   * Creates the error with the number of attempts made.
   *
   * @param message What failed, as "Cannot …: detail".
   * @param options `attempts`: runs made; `cause`: the last conflict.
   */
  constructor(message: string, options: { attempts: number; cause?: unknown }) {
    super(message, options);
    this.attempts = options.attempts;
  }
}

/**
 * The object is in a state that does not allow the operation (for example a
 * hash whose digest was already taken).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidStateError, Sha256 } from "@in-mem/core";
 *
 * const h = new Sha256();
 * h.digest();
 * assert.throws(() => h.update(new Uint8Array(1)), InvalidStateError);
 * ```
 */
export class InvalidStateError extends InMemError {}

/**
 * The storage under the database failed (an I/O error, no space, a failed
 * fsync). After a failed fsync the database refuses every further write
 * until it is reopened: the kernel may have dropped the unsynced pages while
 * reads still return them, so retrying could acknowledge data that is gone.
 * `cause` holds the file system's error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InMemError, StorageError } from "@in-mem/core";
 *
 * const err = new StorageError("Cannot commit: fsync failed", { cause: new Error("EIO") });
 * assert.ok(err instanceof InMemError);
 * assert.equal((err.cause as Error).message, "EIO");
 * ```
 */
export class StorageError extends InMemError {}

/**
 * Stored data broke an invariant: a checksum, a structural rule of the
 * store, a record that does not decode. Carries where it was found.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CorruptionError } from "@in-mem/core";
 *
 * const err = new CorruptionError("Cannot read record: checksum mismatch", { where: "wal/1.log:4096" });
 * assert.equal(err.where, "wal/1.log:4096");
 * ```
 */
export class CorruptionError extends InMemError {
  /** Where the damage was found (a file and offset, or a structure). */
  readonly where: string;
  /**
   * Creates the error with where the damage was found.
   *
   * @param message What failed, as "Cannot …: detail".
   * @param options `where`: location of the damage; `cause`: underlying error.
   */
  constructor(message: string, options: { where: string; cause?: unknown }) {
    super(message, options);
    this.where = options.where;
  }
}

/**
 * The database was closed: every operation on it (and on its run handles)
 * throws this afterwards.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, DatabaseClosedError } from "@in-mem/core";
 *
 * const db = await Database.open();
 * await db.close();
 * await assert.rejects(db.runs.list(), DatabaseClosedError);
 * ```
 */
export class DatabaseClosedError extends ClosedError {}

/**
 * The database directory is held by another opener (in this process or
 * another one): only one may have it open at a time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InMemError, LockedError } from "@in-mem/core";
 *
 * const err = new LockedError("Cannot open ./db: it is locked by process 42");
 * assert.ok(err instanceof InMemError);
 * ```
 */
export class LockedError extends StorageError {}

/**
 * No run has the given id (it was never created, or it was deleted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, RunNotFoundError } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const err = await db.run("nope").kv.put("k", 1).catch((e) => e);
 * assert.ok(err instanceof RunNotFoundError);
 * assert.equal(err.runId, "nope");
 * ```
 */
export class RunNotFoundError extends InMemError {
  /** The id that was not found. */
  readonly runId: string;
  /**
   * Creates the error with the id that was not found.
   *
   * @param message What failed, as "Cannot …: detail".
   * @param options `runId`: the missing run.
   */
  constructor(message: string, options: { runId: string; cause?: unknown }) {
    super(message, options);
    this.runId = options.runId;
  }
}

/**
 * The run no longer accepts data writes: it is completed, failed,
 * cancelled or archived. Reads still work.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, RunClosedError } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create({ name: "done" });
 * await db.runs.complete(run.id);
 * const err = await run.kv.put("k", 1).catch((e) => e);
 * assert.ok(err instanceof RunClosedError);
 * assert.equal(err.status, "completed");
 * ```
 */
export class RunClosedError extends InMemError {
  /** The run. */
  readonly runId: string;
  /** Its status, which does not accept writes. */
  readonly status: string;
  /**
   * Creates the error with the run and its status.
   *
   * @param message What failed, as "Cannot …: detail".
   * @param options `runId` and its `status`.
   */
  constructor(message: string, options: { runId: string; status: string; cause?: unknown }) {
    super(message, options);
    this.runId = options.runId;
    this.status = options.status;
  }
}

/**
 * A run status change that the lifecycle does not allow (for example
 * completed → active, or anything out of archived).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidTransitionError } from "@in-mem/core";
 *
 * const err = new InvalidTransitionError("Cannot resume run r1", { from: "completed", to: "active" });
 * assert.deepEqual([err.from, err.to], ["completed", "active"]);
 * ```
 */
export class InvalidTransitionError extends InMemError {
  /** The status the run has. */
  readonly from: string;
  /** The status asked for. */
  readonly to: string;
  /**
   * Creates the error with the refused transition.
   *
   * @param message What failed, as "Cannot …: detail".
   * @param options The `from` and `to` statuses.
   */
  constructor(message: string, options: { from: string; to: string; cause?: unknown }) {
    super(message, options);
    this.from = options.from;
    this.to = options.to;
  }
}

/**
 * Something was to be created that already exists (a state cell's `init`,
 * a run or trace with a caller-chosen id that is taken).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AlreadyExistsError, InMemError } from "@in-mem/core";
 *
 * const err = new AlreadyExistsError("Cannot init state cell counter: it exists");
 * assert.ok(err instanceof InMemError);
 * ```
 */
export class AlreadyExistsError extends InMemError {}

/**
 * Something an operation needs does not exist (a state cell for `cas`, a
 * parent trace for `recordChild`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InMemError, NotFoundError } from "@in-mem/core";
 *
 * const err = new NotFoundError("Cannot cas state cell counter: it does not exist");
 * assert.ok(err instanceof InMemError);
 * ```
 */
export class NotFoundError extends InMemError {}

/**
 * A compare-and-swap found a different version than expected. Carries both,
 * so the caller can re-read and decide.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VersionConflictError } from "@in-mem/core";
 *
 * const err = new VersionConflictError("Cannot cas counter", { expected: 3, actual: 4 });
 * assert.deepEqual([err.expected, err.actual], [3, 4]);
 * ```
 */
export class VersionConflictError extends InMemError {
  /** The version the caller expected. */
  readonly expected: number;
  /** The version the cell has. */
  readonly actual: number;
  /**
   * Creates the error with both versions.
   *
   * @param message What failed, as "Cannot …: detail".
   * @param options The `expected` and `actual` versions.
   */
  constructor(message: string, options: { expected: number; actual: number; cause?: unknown }) {
    super(message, options);
    this.expected = options.expected;
    this.actual = options.actual;
  }
}
