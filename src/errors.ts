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
 * import { ConflictError } from "@in-mem/core";
 *
 * const err = new ConflictError("Cannot commit: 8 attempts conflicted", { attempts: 8 });
 * assert.equal(err.attempts, 8);
 * ```
 */
export class ConflictError extends InMemError {
  /** How many times the transaction ran. */
  readonly attempts: number;
  /**
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
   * @param message What failed, as "Cannot …: detail".
   * @param options `where`: location of the damage; `cause`: underlying error.
   */
  constructor(message: string, options: { where: string; cause?: unknown }) {
    super(message, options);
    this.where = options.where;
  }
}
