/**
 * The database: opens (or creates) a directory, recovers it, and hands out
 * runs and their primitives. Every operation returns a Promise; a single
 * operation is a one-operation transaction; {@link Database.transaction} and
 * {@link Run.transaction} group any mix of them atomically.
 *
 * @module
 */
import { KeyReader } from "../core/keys.ts";
import type { Transaction } from "../engine/engine.ts";
import { type OpenEngine, openEngine } from "../engine/open.ts";
import { Sweeper } from "../engine/ttl.ts";
import { ClosedError, DatabaseClosedError } from "../errors.ts";
import { defaultFileAdapter } from "../fs/mod.ts";
import type { FileAdapter } from "../fs/types.ts";
import { type DbCore, type ExecOptions, type Scope, TxContext } from "./context.ts";
import type { Engine } from "../engine/engine.ts";
import { EventLog } from "./events.ts";
import { uuidv7 } from "./ids.ts";
import { kvRecordExpiresAt, KvStore } from "./kv.ts";
import { key, MAX_RUN_NUMBER, range, SYS, SYSTEM } from "./layout.ts";
import { resumeDeletes, Runs } from "./runs.ts";
import { StateCells } from "./state.ts";
import { TraceStore } from "./traces.ts";

/** Options of {@link Database.open}. */
export interface DatabaseOptions {
  /**
   * `strict` (the default with a path): a commit resolves after an fdatasync
   * covering it. `batched`: after the OS write, fsync every `syncIntervalMs`
   * and on close. `none` (the default without a path): in memory only.
   */
  durability?: "strict" | "batched" | "none";
  /** `batched` mode's fsync interval, ms. Default 100. */
  syncIntervalMs?: number;
  /** The file system. Default: `node:fs` (Node, Deno and Bun). */
  fs?: FileAdapter;
  /** Clock for timestamps and expiry, ms since the epoch. Default `Date.now`. */
  clock?: () => number;
  /** Re-runs of a conflicting transaction before TransactionConflictError. Default 10. */
  maxRetries?: number;
  /** Interval of the background sweep of expired KV entries, ms. Default 1000. */
  sweepIntervalMs?: number;
  /** Write a checkpoint once the WAL grew by this many bytes. Default 256 MiB; 0 turns it off. */
  checkpointAfterBytes?: number;
  /** Memory cap of the store, bytes (at most 4 GiB). */
  maxMemoryBytes?: number;
  /** Recover up to damage instead of failing with CorruptionError. Default false. */
  salvage?: boolean;
}

/** Figures of a database. */
export interface DatabaseStats {
  /** Live keys in the store (records and index entries). */
  keys: number;
  /** Their encoded bytes (keys + values). */
  bytes: number;
  /** WAL bytes written since open (0 without files). */
  walBytes: number;
  /** The store's live memory, bytes. */
  memoryBytes: number;
  /** Commits since open. */
  commits: number;
  /** Conflicts seen (each re-ran its transaction, or gave up). */
  conflicts: number;
}

/** The primitives of one run inside a transaction. */
export class RunTransaction {
  /** The run's id. */
  readonly runId: string;
  /** Key-value scratchpad. */
  readonly kv: KvStore;
  /** Append-only hash-chained event log. */
  readonly events: EventLog;
  /** Versioned compare-and-swap cells. */
  readonly state: StateCells;
  /** Reasoning traces. */
  readonly traces: TraceStore;

  /** @internal Use {@link Run.transaction} or {@link DatabaseTransaction.run}. */
  constructor(scope: Scope) {
    this.runId = scope.runId;
    this.kv = new KvStore(scope);
    this.events = new EventLog(scope);
    this.state = new StateCells(scope);
    this.traces = new TraceStore(scope);
  }
}

/** A transaction across runs: {@link Database.transaction}'s argument. */
export class DatabaseTransaction {
  readonly #ctx: TxContext;
  readonly #runs = new Map<string, RunTransaction>();
  /** Run lifecycle and queries, inside this transaction. */
  readonly runs: Runs;

  /** @internal Use {@link Database.transaction}. */
  constructor(db: Database, ctx: TxContext) {
    this.#ctx = ctx;
    this.runs = new Runs({
      db: ctx.db,
      standalone: false,
      exec: (fn) => fn(ctx),
      handle: (id) => new Run(db, id),
    });
  }

  /**
   * The primitives of run `id` inside this transaction (no I/O).
   *
   * @param id The run id.
   * @returns The run's primitives.
   */
  run(id: string): RunTransaction {
    let r = this.#runs.get(id);
    if (r === undefined) {
      const ctx = this.#ctx;
      r = new RunTransaction({ runId: id, standalone: false, exec: (fn) => fn(ctx) });
      this.#runs.set(id, r);
    }
    return r;
  }
}

/**
 * A handle on one run: its primitives, each call a transaction of its own.
 * Making one does no I/O; operations on a run that does not exist throw
 * `RunNotFoundError`.
 */
export class Run {
  /** The run's id. */
  readonly id: string;
  /** Key-value scratchpad. */
  readonly kv: KvStore;
  /** Append-only hash-chained event log. */
  readonly events: EventLog;
  /** Versioned compare-and-swap cells. */
  readonly state: StateCells;
  /** Reasoning traces. */
  readonly traces: TraceStore;
  readonly #db: Database;

  /** @internal Use {@link Database.run} or `db.runs.create`. */
  constructor(db: Database, id: string) {
    if (typeof id !== "string" || id.length === 0) {
      throw new TypeError(`Cannot address a run: its id must be a non-empty string`);
    }
    this.#db = db;
    this.id = id;
    const scope: Scope = {
      runId: id,
      standalone: true,
      exec: (fn, options) => db.execute(fn, options),
    };
    this.kv = new KvStore(scope);
    this.events = new EventLog(scope);
    this.state = new StateCells(scope);
    this.traces = new TraceStore(scope);
  }

  /**
   * Runs `fn` as one serializable transaction over this run's primitives:
   * all of it commits, or nothing. On conflict `fn` runs again (it must be
   * safe to repeat), up to the retry limit, then TransactionConflictError.
   *
   * @param fn The transaction body.
   * @returns What `fn` returned, once committed.
   */
  transaction<T>(fn: (tx: RunTransaction) => Promise<T> | T): Promise<T> {
    return this.#db.execute((ctx) =>
      Promise.resolve(
        fn(new RunTransaction({ runId: this.id, standalone: false, exec: (f) => f(ctx) })),
      )
    );
  }
}

/**
 * An embedded database of agent runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database } from "@in-mem/core";
 *
 * await using db = await Database.open(); // no path: in memory
 * const run = await db.runs.create({ name: "triage" });
 * await run.kv.put("task/status", "running");
 * assert.equal(await run.kv.get("task/status"), "running");
 * ```
 */
export class Database {
  readonly #open: OpenEngine;
  readonly #sweeper: Sweeper;
  readonly #core: DbCore;
  #nextRun: number;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Run lifecycle and queries; each call a transaction of its own. */
  readonly runs: Runs;

  private constructor(open: OpenEngine, nextRun: number, sweepIntervalMs: number | undefined) {
    this.#open = open;
    this.#nextRun = nextRun;
    const engine = open.engine;
    this.#core = {
      engine,
      checkOpen: () => {
        if (this.#closed) {
          throw new DatabaseClosedError("Cannot use the database: it is closed");
        }
      },
      newId: () => uuidv7(engine.now()),
      allocateRunNumber: () => {
        if (this.#nextRun > MAX_RUN_NUMBER) {
          throw new RangeError(`Cannot create a run: all ${MAX_RUN_NUMBER} run numbers are used`);
        }
        return this.#nextRun++;
      },
    };
    this.#sweeper = new Sweeper(engine, {
      prefix: key(SYSTEM, SYS.EXPIRY).finish(),
      expiresAtOf: (_key, value) => kvRecordExpiresAt(value),
      ...(sweepIntervalMs === undefined ? {} : { intervalMs: sweepIntervalMs }),
    });
    this.runs = new Runs({
      db: this.#core,
      standalone: true,
      exec: (fn, options) => this.execute(fn, options),
      handle: (id) => new Run(this, id),
    });
  }

  /**
   * Opens (or creates) a database. Without a path it lives in memory.
   *
   * @param path The database directory.
   * @param options Durability, file system, clock, limits.
   * @returns The open database; close it with {@link close} or `await using`.
   * @throws {LockedError} If another opener holds the directory.
   * @throws {CorruptionError} If durable data is damaged (and not `salvage`).
   * @throws {StorageError} If the file system fails.
   */
  static async open(path?: string, options: DatabaseOptions = {}): Promise<Database> {
    if (path !== undefined && (typeof path !== "string" || path.length === 0)) {
      throw new TypeError(`Cannot open a database: path must be a non-empty string`);
    }
    const durability = options.durability ?? (path === undefined ? "none" : "strict");
    if (durability !== "none" && path === undefined) {
      throw new TypeError(`Cannot open a ${durability} database without a path`);
    }
    const engineOptions = {
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
    };
    const open = await openEngine({
      durability,
      engine: engineOptions,
      ...(durability === "none" ? {} : { dir: path!, fs: options.fs ?? defaultFileAdapter() }),
      ...(options.syncIntervalMs === undefined ? {} : { syncIntervalMs: options.syncIntervalMs }),
      ...(options.checkpointAfterBytes === undefined
        ? {}
        : { checkpointAfterBytes: options.checkpointAfterBytes }),
      ...(options.maxMemoryBytes === undefined ? {} : { maxMemoryBytes: options.maxMemoryBytes }),
      ...(options.salvage === undefined ? {} : { salvage: options.salvage }),
    });
    try {
      // The highest run number in use: the last key of the number index.
      let last = 0;
      for (
        const [k] of open.engine.store.entries({
          ...range(key(SYSTEM, SYS.RUN_NUMBER).finish()),
          reverse: true,
          limit: 1,
        })
      ) {
        const r = new KeyReader(k);
        r.u32();
        r.u8();
        last = r.u32();
      }
      const db = new Database(open, last + 1, options.sweepIntervalMs);
      await resumeDeletes(db.#core, (fn) => db.execute(fn));
      db.#sweeper.start();
      return db;
    } catch (err) {
      await open.close().catch(() => {});
      throw err;
    }
  }

  /** @internal The engine underneath (for tests and tools). */
  get engine(): Engine {
    return this.#open.engine;
  }

  /**
   * A handle on run `id` (no I/O; the run need not exist yet).
   *
   * @param id The run id.
   * @returns The handle.
   * @throws {TypeError} If `id` is not a non-empty string.
   */
  run(id: string): Run {
    return new Run(this, id);
  }

  /**
   * Runs `fn` as one serializable transaction across runs: all of it
   * commits, or nothing. On conflict `fn` runs again (it must be safe to
   * repeat), up to the retry limit, then TransactionConflictError.
   *
   * @param fn The transaction body.
   * @returns What `fn` returned, once committed.
   */
  transaction<T>(fn: (tx: DatabaseTransaction) => Promise<T> | T): Promise<T> {
    return this.execute((ctx) => Promise.resolve(fn(new DatabaseTransaction(this, ctx))));
  }

  /** @internal Runs `fn` in a new engine transaction with a fresh context per attempt. */
  async execute<T>(fn: (ctx: TxContext) => Promise<T>, options: ExecOptions = {}): Promise<T> {
    this.#core.checkOpen();
    try {
      return await this.#open.engine.transaction(
        (tx: Transaction) => fn(new TxContext(tx, this.#core)),
        options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries },
      );
    } catch (err) {
      if (err instanceof ClosedError && !(err instanceof DatabaseClosedError) && this.#closed) {
        throw new DatabaseClosedError("Cannot use the database: it is closed", { cause: err });
      }
      throw err;
    }
  }

  /**
   * Removes expired KV entries now (a background sweep does it every
   * `sweepIntervalMs` anyway; expired entries are invisible either way).
   *
   * @returns How many entries were removed.
   */
  sweepExpired(): Promise<number> {
    this.#core.checkOpen();
    return this.#sweeper.sweep();
  }

  /**
   * Writes a checkpoint now, so the next open replays less WAL.
   */
  async checkpoint(): Promise<void> {
    this.#core.checkOpen();
    await this.#open.checkpoint();
  }

  /**
   * Figures: live keys and bytes, WAL bytes, memory, commits, conflicts.
   *
   * @returns The figures.
   */
  stats(): Promise<DatabaseStats> {
    this.#core.checkOpen();
    const engine = this.#open.engine;
    let keys = 0;
    let bytes = 0;
    engine.store.scan({}, (e) => {
      keys++;
      bytes += e.valueEnd - e.keyStart;
    });
    const s = engine.stats;
    return Promise.resolve({
      keys,
      bytes,
      walBytes: this.#open.wal?.stats.bytes ?? 0,
      memoryBytes: engine.store.memory().usedBytes,
      commits: s.commits,
      conflicts: s.conflicts,
    });
  }

  /**
   * Waits for commits in flight, syncs and closes the files, releases the
   * lock. Idempotent; every operation afterwards throws DatabaseClosedError.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      await this.#sweeper.stop();
      await this.#open.close();
    })();
    return this.#closing;
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
