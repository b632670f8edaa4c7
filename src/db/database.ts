/**
 * The database: opens (or creates) a directory, recovers it, and hands out
 * runs and their primitives. Every operation returns a Promise; a single
 * operation is a one-operation transaction; {@link Database.transaction} and
 * {@link Run.transaction} group any mix of them atomically.
 *
 * @module
 */
import { KeyReader } from "../core/keys.ts";
import type { Transaction, TransactionOptions } from "../engine/engine.ts";
import { type OpenEngine, openEngine } from "../engine/open.ts";
import { Sweeper } from "../engine/ttl.ts";
import { DatabaseClosedError } from "../errors.ts";
import { defaultFileAdapter } from "../fs/mod.ts";
import type { FileAdapter } from "../fs/types.ts";
import { WAL_DIR } from "../wal/recover.ts";
import { CHECKPOINT_DIR } from "../wal/checkpoint.ts";
import {
  type DbCore,
  type ExecOptions,
  joinedScope,
  ReadContext,
  type Scope,
  TxContext,
} from "./context.ts";
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
  /**
   * Memory cap of the store, bytes (at most 4 GiB, the default). A commit
   * the memory cannot hold — its values plus the worst case of tree nodes
   * its writes may need — is refused with `OutOfMemoryError` before it is
   * logged: nothing of it is written, and the database goes on.
   */
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
  /**
   * Size of the WAL segments on disk, bytes (0 without files); in `strict`
   * mode this includes up to 1 MiB of zeros written ahead of the records.
   */
  walBytes: number;
  /** Size of the checkpoint files on disk, bytes (0 without files). */
  checkpointBytes: number;
  /** The store's live memory, bytes. */
  memoryBytes: number;
  /** Commits since open. */
  commits: number;
  /** Conflicts seen (each re-ran its transaction, or gave up). */
  conflicts: number;
}

/**
 * The primitives of one run inside a transaction.
 *
 * @example A failed transaction writes nothing
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, RunTransaction } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * await assert.rejects(
 *   run.transaction(async (tx) => {
 *     assert.ok(tx instanceof RunTransaction);
 *     assert.equal(tx.runId, run.id);
 *     await tx.kv.put("draft", "half done");
 *     await tx.events.append("draft_saved", {});
 *     throw new Error("the tool failed");
 *   }),
 *   /the tool failed/,
 * );
 * // The transaction threw: none of its writes happened.
 * assert.equal(await run.kv.get("draft"), undefined);
 * assert.equal(await run.events.length(), 0);
 * ```
 */
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

/**
 * A transaction across runs: {@link Database.transaction}'s argument.
 *
 * @example Create a run and its first data atomically
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * // Create a run and give it its first data in one atomic step.
 * const id = await db.transaction(async (tx) => {
 *   const run = await tx.runs.create({ name: "worker" });
 *   await tx.run(run.id).kv.put("status", "ready");
 *   return run.id;
 * });
 * assert.equal(await db.run(id).kv.get("status"), "ready");
 * // A transaction that throws creates nothing.
 * await assert.rejects(
 *   db.transaction(async (tx) => {
 *     await tx.runs.create({ name: "doomed" });
 *     throw new Error("abort");
 *   }),
 * );
 * assert.deepEqual(await db.runs.list(), [id]);
 * ```
 */
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
      handle: (id) => new Run(db, id, ctx), // bound to this transaction
    });
  }

  /**
   * The primitives of run `id` inside this transaction (no I/O).
   *
   * @param id The run id.
   * @returns The run's primitives.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const { id } = await db.runs.create();
   * const seen = await db.transaction(async (tx) => {
   *   assert.equal(tx.run(id), tx.run(id)); // one handle per run and transaction
   *   await tx.run(id).kv.put("k", 1);
   *   return await tx.run(id).kv.get("k"); // reads see the transaction's own writes
   * });
   * assert.equal(seen, 1);
   * ```
   */
  run(id: string): RunTransaction {
    checkRunId(id);
    let r = this.#runs.get(id);
    if (r === undefined) {
      const ctx = this.#ctx;
      r = new RunTransaction(joinedScope(id, ctx));
      this.#runs.set(id, r);
    }
    return r;
  }
}

/**
 * A handle on one run: its primitives, each call a transaction of its own.
 * Making one does no I/O; operations on a run that does not exist throw
 * `RunNotFoundError`.
 *
 * @example Every primitive of a run
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, Run } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create({ name: "research" });
 * assert.ok(run instanceof Run);
 * await run.kv.put("plan", ["search", "answer"]);
 * await run.events.append("step", { n: 1 });
 * await run.state.init("attempts", 0);
 * await run.traces.record({ kind: "thought", content: "search first" });
 * assert.deepEqual(await run.kv.get("plan"), ["search", "answer"]);
 * assert.equal(await run.events.length(), 1);
 * assert.equal((await run.state.read("attempts"))?.value, 0);
 * assert.equal(await run.traces.count(), 1);
 * ```
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
  readonly #ctx: TxContext | undefined;

  /**
   * @internal Use {@link Database.run} or `db.runs.create`. With `ctx` (the
   * handle `tx.runs.create` returns) every method joins that transaction.
   */
  constructor(db: Database, id: string, ctx?: TxContext) {
    checkRunId(id);
    this.#db = db;
    this.#ctx = ctx;
    this.id = id;
    const scope: Scope = ctx === undefined ? new StandaloneScope(db, id) : joinedScope(id, ctx);
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
   *
   * @example Read-modify-write without lost updates
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.state.init("counter", 0);
   * // Read, then write, as one transaction: concurrent increments lose nothing.
   * const increment = () =>
   *   run.transaction(async (tx) => {
   *     const n = (await tx.state.read("counter"))!.value as number;
   *     await tx.state.set("counter", n + 1);
   *     await tx.events.append("incremented", n);
   *     return n;
   *   });
   * const seen = await Promise.all([increment(), increment(), increment()]);
   * assert.deepEqual(seen.sort((x, y) => x - y), [0, 1, 2]);
   * assert.equal((await run.state.read("counter"))?.value, 3);
   * assert.equal(await run.events.length(), 3);
   * ```
   */
  transaction<T>(fn: (tx: RunTransaction) => Promise<T> | T): Promise<T> {
    const outer = this.#ctx;
    if (outer !== undefined) {
      // A handle made inside a transaction: the body joins it.
      return Promise.resolve(
        fn(new RunTransaction(joinedScope(this.id, outer))),
      );
    }
    return this.#db.execute((ctx) =>
      Promise.resolve(
        fn(new RunTransaction(joinedScope(this.id, ctx))),
      )
    );
  }
}

/** The scope of a run handle: each call is a transaction (or a latest-state read) of its own. */
class StandaloneScope implements Scope {
  readonly runId: string;
  readonly standalone = true;
  readonly #db: Database;

  constructor(db: Database, runId: string) {
    this.#db = db;
    this.runId = runId;
  }

  exec<T>(fn: (ctx: TxContext) => Promise<T> | T, options?: ExecOptions): Promise<T> {
    return this.#db.execute(fn, options);
  }

  write<T>(fn: (ctx: TxContext) => T): Promise<T> {
    return this.#db.executeGrouped(fn);
  }

  read<T>(fn: (ctx: ReadContext) => T): Promise<T> {
    return this.#db.readLatest(fn);
  }
}

/** Transaction options when the caller gives none (shared: never changed). */
const NO_OPTIONS: TransactionOptions = Object.freeze({});

function readU32BE(b: Uint8Array, at: number): number {
  return b[at]! * 0x100_0000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
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
  readonly #files: { fs: FileAdapter; dir: string } | undefined;
  readonly #sweeper: Sweeper;
  readonly #core: DbCore;
  #nextRun: number;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Run lifecycle and queries; each call a transaction of its own. */
  readonly runs: Runs;

  private constructor(
    open: OpenEngine,
    nextRun: number,
    expiringRuns: Set<number>,
    sweepIntervalMs: number | undefined,
    files: { fs: FileAdapter; dir: string } | undefined,
  ) {
    this.#open = open;
    this.#files = files;
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
      expiringRuns,
      runRecords: new Map(),
    };
    engine.closedError = (cause) =>
      new DatabaseClosedError("Cannot use the database: it is closed", { cause });
    // Run records are read by every operation and written rarely: the
    // engine keeps their last write versions (DbCore.runRecords).
    engine.watchWrites(key(SYSTEM, SYS.RUN).finish());
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
   *
   * @example On disk, then reopened
   * ```ts
   * import assert from "node:assert/strict";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { Database, LockedError } from "@in-mem/core";
   *
   * const parent = mkdtempSync(join(tmpdir(), "in-mem-doc-"));
   * const dir = join(parent, "agent-db"); // created on first open
   * let id: string;
   * {
   *   await using db = await Database.open(dir); // strict: a commit is on disk when it resolves
   *   id = (await db.runs.create({ name: "triage" })).id;
   *   await assert.rejects(Database.open(dir), LockedError); // one opener at a time
   * }
   * {
   *   await using db = await Database.open(dir);
   *   assert.equal((await db.runs.get(id))?.name, "triage");
   * }
   * rmSync(parent, { recursive: true });
   * ```
   *
   * @example On a simulated disk: power loss, then reopen
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database, SimFS } from "@in-mem/core";
   *
   * const fs = new SimFS({ seed: 1 });
   * const db = await Database.open("db", { fs });
   * const run = await db.runs.create();
   * await run.kv.put("step", 3); // strict durability: synced before it resolves
   * const rebooted = fs.crash("reorderSubset"); // power loss: `fs` and `db` are dead
   * await db.close().catch(() => {});
   * await using after = await Database.open("db", { fs: rebooted });
   * assert.equal(await after.run(run.id).kv.get("step"), 3);
   * ```
   */
  static async open(path?: string, options: DatabaseOptions = {}): Promise<Database> {
    if (path !== undefined && (typeof path !== "string" || path.length === 0)) {
      throw new TypeError(`Cannot open a database: path must be a non-empty string`);
    }
    checkOptions(options);
    const durability = options.durability ?? (path === undefined ? "none" : "strict");
    if (durability !== "none" && path === undefined) {
      throw new TypeError(`Cannot open a ${durability} database without a path`);
    }
    const files = durability === "none"
      ? undefined
      : { dir: path!, fs: options.fs ?? defaultFileAdapter() };
    const engineOptions = {
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
    };
    const open = await openEngine({
      durability,
      engine: engineOptions,
      ...(files === undefined ? {} : files),
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
      // The runs with expiry index entries: `prefix · u64 expiresAt · u32(run) · …`.
      const expiringRuns = new Set<number>();
      const expiryPrefix = key(SYSTEM, SYS.EXPIRY).finish();
      open.engine.store.scan(range(expiryPrefix), (e) => {
        const at = e.keyStart + expiryPrefix.length + 8;
        if (at + 4 <= e.keyEnd) expiringRuns.add(readU32BE(e.memory, at));
      });
      const db = new Database(open, last + 1, expiringRuns, options.sweepIntervalMs, files);
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
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database, RunNotFoundError } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const { id } = await db.runs.create();
   * await db.run(id).kv.put("status", "running");
   * assert.equal(await db.run(id).kv.get("status"), "running");
   * // Making a handle checks nothing; using it on an unknown run does.
   * const ghost = db.run("no-such-run");
   * await assert.rejects(ghost.kv.get("status"), RunNotFoundError);
   * assert.throws(() => db.run(""), TypeError);
   * ```
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
   *
   * @example Move a value between runs atomically
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const a = await db.runs.create();
   * const b = await db.runs.create();
   * await a.kv.put("budget", 10);
   * // Move 4 from run a to run b: both writes commit, or neither.
   * const left = await db.transaction(async (tx) => {
   *   const budget = (await tx.run(a.id).kv.get("budget")) as number;
   *   await tx.run(a.id).kv.put("budget", budget - 4);
   *   await tx.run(b.id).kv.put("budget", 4);
   *   return budget - 4;
   * });
   * assert.equal(left, 6);
   * assert.equal(await b.kv.get("budget"), 4);
   * await assert.rejects(
   *   db.transaction(async (tx) => {
   *     await tx.run(a.id).kv.put("budget", 0);
   *     throw new Error("abort");
   *   }),
   *   /abort/,
   * );
   * assert.equal(await a.kv.get("budget"), 6); // the failed transaction wrote nothing
   * ```
   */
  transaction<T>(fn: (tx: DatabaseTransaction) => Promise<T> | T): Promise<T> {
    return this.execute((ctx) => Promise.resolve(fn(new DatabaseTransaction(this, ctx))));
  }

  /**
   * @internal Runs the read-only, synchronous `fn` over the latest applied
   * state, with no transaction (see `Engine.latest`).
   */
  readLatest<T>(fn: (ctx: ReadContext) => T): Promise<T> {
    try {
      this.#core.checkOpen();
      return Promise.resolve(fn(new ReadContext(this.#open.engine.latest, this.#core)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * @internal Runs `fn` in a new engine transaction with a fresh context per
   * attempt. Not an async function: a commit applied in its commit step
   * resolves with no extra turns of the microtask queue. (A database closed
   * mid-transaction rejects retries with DatabaseClosedError: the engine's
   * `closedError`, set in the constructor.)
   */
  execute<T>(fn: (ctx: TxContext) => Promise<T> | T, options: ExecOptions = {}): Promise<T> {
    try {
      this.#core.checkOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    const core = this.#core;
    return this.#open.engine.transaction(
      (tx: Transaction) => fn(new TxContext(tx, core)),
      options.maxRetries === undefined ? NO_OPTIONS : { maxRetries: options.maxRetries },
    );
  }

  /**
   * @internal {@link execute} for a synchronous body that may share its
   * commit with the other standalone writes of this turn
   * (Engine.transactionGrouped).
   */
  executeGrouped<T>(fn: (ctx: TxContext) => T): Promise<T> {
    try {
      this.#core.checkOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#open.engine.transactionGrouped((tx: Transaction) => fn(this.#groupContext(tx)));
  }

  /**
   * The context the bodies of one group share: one transaction, so one
   * clock reading and one cache of the run records read. (Grouped bodies
   * never write run records, so a body undone by the savepoint leaves no
   * stale entry behind.)
   */
  #groupContext(tx: Transaction): TxContext {
    return (tx.attached ??= new TxContext(tx, this.#core)) as TxContext;
  }

  /**
   * Removes expired KV entries now (a background sweep does it every
   * `sweepIntervalMs` anyway; expired entries are invisible either way).
   *
   * @returns How many entries were removed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * let now = 1_000_000;
   * await using db = await Database.open(undefined, {
   *   clock: () => now,
   *   sweepIntervalMs: 3_600_000, // keep the background sweep out of the way
   * });
   * const run = await db.runs.create();
   * await run.kv.put("session", "token", { ttlMs: 1_000 });
   * await run.kv.put("notes", "kept");
   * now += 1_000;
   * assert.equal(await run.kv.get("session"), undefined); // invisible once expired
   * assert.equal(await db.sweepExpired(), 1); // and now removed
   * assert.equal(await db.sweepExpired(), 0);
   * assert.deepEqual(await run.kv.list(), ["notes"]);
   * ```
   */
  async sweepExpired(): Promise<number> {
    this.#core.checkOpen();
    return await this.#sweeper.sweep();
  }

  /**
   * Writes a checkpoint now, so the next open replays less WAL.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database, SimFS } from "@in-mem/core";
   *
   * const fs = new SimFS();
   * {
   *   await using db = await Database.open("db", { fs });
   *   const run = await db.runs.create({ id: "r1" });
   *   for (let i = 0; i < 100; i++) await run.kv.put(`k${i}`, i);
   *   await db.checkpoint();
   *   assert.equal((await fs.list("db/checkpoint")).filter((f) => f.endsWith(".ckpt")).length, 1);
   * }
   * await using db = await Database.open("db", { fs }); // loads the checkpoint
   * assert.equal((await db.run("r1").kv.list()).length, 100);
   * ```
   */
  async checkpoint(): Promise<void> {
    this.#core.checkOpen();
    await this.#open.checkpoint();
  }

  /**
   * Figures: live keys and bytes, WAL bytes, memory, commits, conflicts.
   *
   * @returns The figures.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const before = await db.stats();
   * const run = await db.runs.create();
   * await run.kv.put("k", "v");
   * const after = await db.stats();
   * assert.equal(after.commits, before.commits + 2);
   * assert.ok(after.keys > before.keys && after.bytes > before.bytes);
   * assert.equal(after.conflicts, 0);
   * assert.equal(after.walBytes, 0); // in memory: no WAL
   * ```
   */
  async stats(): Promise<DatabaseStats> {
    this.#core.checkOpen();
    const engine = this.#open.engine;
    let keys = 0;
    let bytes = 0;
    engine.store.scan({}, (e) => {
      keys++;
      bytes += e.valueEnd - e.keyStart;
    });
    const s = engine.stats;
    const files = this.#files;
    return {
      keys,
      bytes,
      walBytes: files === undefined ? 0 : await dirBytes(files.fs, `${files.dir}/${WAL_DIR}`),
      checkpointBytes: files === undefined
        ? 0
        : await dirBytes(files.fs, `${files.dir}/${CHECKPOINT_DIR}`),
      memoryBytes: engine.store.memory().usedBytes,
      commits: s.commits,
      conflicts: s.conflicts,
    };
  }

  /**
   * Waits for commits in flight, syncs and closes the files, releases the
   * lock. Idempotent; every operation afterwards throws DatabaseClosedError.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database, DatabaseClosedError, SimFS } from "@in-mem/core";
   *
   * const fs = new SimFS();
   * const db = await Database.open("db", { fs });
   * const run = await db.runs.create({ id: "r1" });
   * await db.close();
   * await db.close(); // idempotent
   * await assert.rejects(run.kv.get("k"), DatabaseClosedError);
   * await using reopened = await Database.open("db", { fs }); // the lock was released
   * assert.deepEqual(await reopened.runs.list(), ["r1"]);
   * ```
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

function checkRunId(id: unknown): void {
  if (typeof id !== "string" || id.length === 0) {
    throw new TypeError(`Cannot address a run: its id must be a non-empty string`);
  }
}

const DURABILITIES: readonly string[] = ["strict", "batched", "none"];

/** Refuses malformed options before anything is opened or created. */
function checkOptions(o: DatabaseOptions): void {
  if (typeof o !== "object" || o === null) {
    throw new TypeError(`Cannot open a database: options must be an object`);
  }
  if (o.durability !== undefined && !DURABILITIES.includes(o.durability)) {
    throw new TypeError(
      `Cannot open a database: durability must be "strict", "batched" or "none", got ${
        String(o.durability)
      }`,
    );
  }
  const integer = (name: keyof DatabaseOptions, min: number): void => {
    const v = o[name];
    if (v === undefined) return;
    if (typeof v !== "number") {
      throw new TypeError(`Cannot open a database: ${name} must be a number`);
    }
    if (!Number.isSafeInteger(v) || v < min) {
      throw new RangeError(`Cannot open a database: ${name} must be an integer >= ${min}`);
    }
  };
  integer("maxRetries", 0);
  integer("syncIntervalMs", 1);
  integer("sweepIntervalMs", 1);
  integer("checkpointAfterBytes", 0);
  integer("maxMemoryBytes", 1);
  if (o.clock !== undefined && typeof o.clock !== "function") {
    throw new TypeError(`Cannot open a database: clock must be a function`);
  }
  if (o.salvage !== undefined && typeof o.salvage !== "boolean") {
    throw new TypeError(`Cannot open a database: salvage must be a boolean`);
  }
  if (o.fs !== undefined && (typeof o.fs !== "object" || o.fs === null)) {
    throw new TypeError(`Cannot open a database: fs must be a FileAdapter`);
  }
}

/** Total size of the files in `dir` (0 if it does not exist). */
async function dirBytes(fs: FileAdapter, dir: string): Promise<number> {
  let names: string[];
  try {
    names = await fs.list(dir);
  } catch {
    return 0;
  }
  let total = 0;
  for (const name of names) {
    try {
      const f = await fs.open(`${dir}/${name}`, { readOnly: true });
      try {
        total += await f.size();
      } finally {
        await f.close();
      }
    } catch {
      // a file removed meanwhile (a checkpoint pruning segments) counts as gone
    }
  }
  return total;
}
