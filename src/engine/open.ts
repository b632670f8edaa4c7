/**
 * Opening a durable engine: take the directory lock, recover the WAL into a
 * fresh store, then append new commits to it. With durability `none` there
 * are no files at all.
 *
 * @module
 */
import { ClosedError, LockedError, OutOfMemoryError, StorageError } from "../errors.ts";
import { mkdirDurable } from "../fs/durable.ts";
import { type FileAdapter, type FileLock, FsError } from "../fs/types.ts";
import { OrderedStore } from "../core/store.ts";
import {
  type CheckpointInfo,
  loadCheckpoint,
  pruneAfterCheckpoint,
  writeCheckpoint,
} from "../wal/checkpoint.ts";
import { parseSegmentName } from "../wal/format.ts";
import { recoverWal, type RecoveryReport, WAL_DIR } from "../wal/recover.ts";
import { type Durability, WalWriter } from "../wal/writer.ts";
import { Engine, type EngineOptions } from "./engine.ts";
import { applyPayload } from "./payload.ts";

/** Options of {@link openEngine}. */
export interface OpenEngineOptions {
  /** The database directory; required unless durability is `none`. */
  dir?: string;
  /** The file system. Required with a `dir`. */
  fs?: FileAdapter;
  /** `strict` (default with a dir), `batched`, or `none` (no files; the default without a dir). */
  durability?: Durability | "none";
  /** `batched` mode's fsync interval, ms. */
  syncIntervalMs?: number;
  /** WAL segment size before rotation, bytes. */
  maxSegmentBytes?: number;
  /** Recover up to damage instead of failing (see docs/FORMAT.md). Default false. */
  salvage?: boolean;
  /** The store's memory cap, bytes. */
  maxMemoryBytes?: number;
  /**
   * Write a checkpoint automatically once the WAL has grown by this many
   * bytes since the last one. Default {@link DEFAULT_CHECKPOINT_AFTER_BYTES};
   * 0 turns automatic checkpoints off.
   */
  checkpointAfterBytes?: number;
  /** Engine options: retries, randomness, sleep. */
  engine?: Omit<EngineOptions, "log" | "store" | "version">;
}

/** An open engine with the resources it holds. */
export interface OpenEngine {
  /** The transactional engine. */
  engine: Engine;
  /** What recovery found (undefined without files). */
  recovery: RecoveryReport | undefined;
  /** The WAL writer (undefined without files). */
  wal: WalWriter | undefined;
  /**
   * Writes a checkpoint of the current version while commits go on, then
   * deletes the WAL segments and older checkpoints it covers.
   */
  checkpoint(): Promise<CheckpointInfo | undefined>;
  /** Waits for in-flight commits, seals and syncs the WAL, releases the lock, frees the store. */
  close(): Promise<void>;
  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Default WAL growth that triggers an automatic checkpoint. */
export const DEFAULT_CHECKPOINT_AFTER_BYTES: number = 256 * 1024 * 1024;

/**
 * Opens (or creates) a database directory and recovers it.
 *
 * @param options Directory, file system, durability and limits.
 * @returns The engine and what it holds.
 * @throws {CorruptionError} If durable data is damaged (and not `salvage`).
 * @throws {StorageError} If the directory is locked by another opener or the file system fails.
 * @throws {TypeError} If a directory is given without a file system.
 *
 * @example In memory
 * ```ts
 * import assert from "node:assert/strict";
 * import { openEngine } from "./open.ts";
 *
 * const db = await openEngine({});
 * await db.engine.transaction((tx) => tx.put(new Uint8Array([1]), new Uint8Array([2])));
 * assert.equal(db.engine.store.count(), 1);
 * await db.close();
 * ```
 */
export async function openEngine(options: OpenEngineOptions): Promise<OpenEngine> {
  const durability = options.durability ?? (options.dir === undefined ? "none" : "strict");
  const storeOptions = options.maxMemoryBytes === undefined
    ? {}
    : { maxMemoryBytes: options.maxMemoryBytes };
  if (durability === "none") {
    const engine = new Engine({ ...options.engine, store: new OrderedStore(storeOptions) });
    const close = async (): Promise<void> => {
      await engine.close();
      engine.store.close();
    };
    return {
      engine,
      recovery: undefined,
      wal: undefined,
      checkpoint: () => Promise.resolve(undefined),
      close,
      [Symbol.asyncDispose]: close,
    };
  }
  const { dir, fs } = options;
  if (dir === undefined || fs === undefined) {
    throw new TypeError(`Cannot open a ${durability} database: both dir and fs are required`);
  }
  let lock: FileLock | undefined;
  const store = new OrderedStore(storeOptions);
  try {
    await mkdirDurable(fs, dir);
    lock = await fs.lock(dir);
    // The point-read index is built once the tree is whole (store.ts).
    store.suspendIndex();
    const checkpoint = await loadCheckpoint(fs, dir, (key, value) => store.put(key, value));
    const afterVersion = checkpoint?.version ?? 0;
    // Apply as we read: the payload is a view, valid only during the call.
    const recovered = await recoverWal(
      fs,
      dir,
      (_version, payload) => applyPayload(store, payload),
      { afterVersion, ...(options.salvage === undefined ? {} : { salvage: options.salvage }) },
    );
    try {
      store.resumeIndex();
    } catch (err) {
      // A store recovered right at its memory cap works without the index:
      // its reads search the tree.
      if (!(err instanceof OutOfMemoryError)) throw err;
    }
    const wal = await WalWriter.open(fs, dir, recovered, {
      durability,
      ...(options.syncIntervalMs === undefined ? {} : { syncIntervalMs: options.syncIntervalMs }),
      ...(options.maxSegmentBytes === undefined
        ? {}
        : { maxSegmentBytes: options.maxSegmentBytes }),
    });
    const threshold = options.checkpointAfterBytes ?? DEFAULT_CHECKPOINT_AFTER_BYTES;
    let walBytesAtCheckpoint = 0;
    let running: Promise<CheckpointInfo | undefined> | undefined;
    const checkpointNow = (): Promise<CheckpointInfo | undefined> => {
      running ??= (async () => {
        const version = live.version;
        const snap = store.snapshot(); // the store at `version`, frozen
        walBytesAtCheckpoint = wal.stats.bytes;
        try {
          const info = await writeCheckpoint(fs, dir, snap, version);
          const walDir = `${dir}/${WAL_DIR}`;
          const segments = (await fs.list(walDir))
            .map((name) => ({ path: `${walDir}/${name}`, first: parseSegmentName(name) }))
            .filter((s): s is { path: string; first: number } => s.first !== undefined)
            .sort((a, b) => a.first - b.first);
          await pruneAfterCheckpoint(fs, dir, version, walDir, segments);
          return info;
        } catch (err) {
          throw err instanceof FsError
            ? new StorageError(`Cannot checkpoint ${dir}: ${err.message}`, { cause: err })
            : err;
        } finally {
          snap.release();
          running = undefined;
        }
      })();
      return running;
    };
    const live: Engine = new Engine({
      // A strict commit waits for an fsync: standalone writes of one turn share it.
      groupCommits: durability === "strict",
      ...options.engine,
      store,
      version: recovered.lastVersion,
      log: wal,
      onApplied: () => {
        if (
          threshold > 0 && running === undefined &&
          wal.stats.bytes - walBytesAtCheckpoint >= threshold
        ) {
          // In the background: a failed automatic checkpoint loses nothing
          // (the WAL still holds everything); the next one tries again, and
          // a failing disk shows up in the commits' own writes and fsyncs.
          checkpointNow().catch(() => {});
        }
      },
    });
    const held = lock;
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      try {
        await live.close();
        await running?.catch(() => {});
        await wal.close();
      } finally {
        store.close();
        await held.release();
      }
    };
    return {
      engine: live,
      recovery: recovered.report,
      wal,
      checkpoint: async () => {
        if (closed) throw new ClosedError("Cannot checkpoint: the database is closed");
        return await checkpointNow();
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    store.close();
    await lock?.release().catch(() => {});
    if (err instanceof FsError) {
      const Err = err.code === "Locked" ? LockedError : StorageError;
      throw new Err(`Cannot open the database in ${dir}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
