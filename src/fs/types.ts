/**
 * The one narrow I/O interface the storage engine sees. Every runtime
 * difference and every fault lives behind it: the node:fs adapter (Node,
 * Deno, Bun) and SimFS, the simulated disk the crash and fault tests run on.
 *
 * Semantics an implementation must give (and SimFS models exactly):
 * - `write` writes all of `data` at `position` or throws; a short write is
 *   looped over inside the adapter. Nothing written is durable until `sync`.
 * - `sync` makes the file's written data and size durable (fdatasync).
 * - A created, renamed or removed name is durable only after `syncDir` of its
 *   parent directory.
 * - After `sync` throws, the adapter promises nothing about what reached the
 *   disk; the engine stops writing (DESIGN.md decision 7).
 * - Errors are {@link FsError}s with one of a closed set of codes.
 *
 * Paths are strings with `/` separators, relative to nothing: adapters take
 * them as given (the engine joins paths itself).
 *
 * @module
 */

/** The closed set of file-system error kinds. */
export type FsErrorCode =
  | "NotFound"
  | "AlreadyExists"
  | "NotEmpty"
  | "NoSpace"
  | "IO"
  | "Permission"
  | "Locked"
  | "Closed"
  | "Other";

/**
 * A file-system operation failed. `code` tells what kind of failure; `cause`
 * keeps the runtime's own error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FsError, SimFS } from "@in-mem/core";
 *
 * const err = new FsError("NoSpace", "Cannot write wal/000001.log: no space left");
 * assert.equal(err.code, "NoSpace");
 * assert.equal(err.name, "FsError");
 * // What every adapter throws:
 * const missing = await new SimFS().open("missing").catch((e) => e);
 * assert.ok(missing instanceof FsError);
 * assert.equal(missing.code, "NotFound");
 * ```
 */
export class FsError extends Error {
  /** What kind of failure. */
  readonly code: FsErrorCode;
  /**
   * Creates the error with its kind.
   *
   * @param code What kind of failure.
   * @param message "Cannot …: detail".
   * @param options `cause`: the runtime's error.
   */
  constructor(code: FsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FsError";
    this.code = code;
  }
}

/** An open file. Positions and sizes are byte offsets (safe integers). */
export interface FileHandle {
  /**
   * Reads up to `buffer.length` bytes at `position` into `buffer`.
   *
   * @returns The number of bytes read: fewer than asked only at end of file.
   */
  read(buffer: Uint8Array, position: number): Promise<number>;
  /**
   * Writes all of `data` at `position` (extending the file if needed). The
   * adapter must not hold on to `data` after the promise settles: callers
   * reuse their buffers.
   */
  write(data: Uint8Array, position: number): Promise<void>;
  /** The file's current size (including writes not yet synced). */
  size(): Promise<number>;
  /** Cuts or extends (with zeros) the file to `size` bytes. */
  truncate(size: number): Promise<void>;
  /** Makes written data and the file size durable (fdatasync). */
  sync(): Promise<void>;
  /**
   * Optional: the same as {@link sync}, blocking the calling thread until
   * done. The WAL uses it when a commit is alone in its group — nothing else
   * could go out while it waits, and a blocking fdatasync skips the thread
   * pool's round trip (~130 µs per commit measured on Node). Throws like `sync`.
   */
  syncBlocking?(): void;
  /**
   * Optional: `write`, done before returning (the calling thread blocks).
   * For small appends that the caller would await at once anyway, where the
   * promise round trips cost more than the system call. Throws like `write`.
   */
  writeBlocking?(data: Uint8Array, position: number): void;
  /** Closes the handle; further calls throw `FsError` "Closed". */
  close(): Promise<void>;
}

/** Options of {@link FileAdapter.open}. */
export interface OpenOptions {
  /** Create the file if it does not exist. Default false. */
  create?: boolean;
  /** With `create`: fail with "AlreadyExists" if it exists. Default false. */
  exclusive?: boolean;
  /** Open for reading only. Default false (read and write). */
  readOnly?: boolean;
}

/** A held exclusive lock on a directory. */
export interface FileLock {
  /** Releases the lock. Idempotent. */
  release(): Promise<void>;
}

/** A file system: the only way the engine touches storage. */
export interface FileAdapter {
  /** Opens (or creates) a file. */
  open(path: string, options?: OpenOptions): Promise<FileHandle>;
  /** Names in a directory (files and directories, no `.`/`..`), sorted. */
  list(dir: string): Promise<string[]>;
  /** Removes a file. "NotFound" if absent. */
  remove(path: string): Promise<void>;
  /** Renames a file atomically, replacing `to` if it exists. */
  rename(from: string, to: string): Promise<void>;
  /** Creates a directory and its missing parents; no error if it exists. */
  mkdir(path: string): Promise<void>;
  /** Makes the directory's entries (creates, renames, removes) durable. */
  syncDir(path: string): Promise<void>;
  /** True when a file or directory exists at `path`. */
  exists(path: string): Promise<boolean>;
  /**
   * Takes the exclusive lock of directory `dir`, for this process and
   * others. Throws `FsError` "Locked" when another holder has it.
   */
  lock(dir: string): Promise<FileLock>;
}
