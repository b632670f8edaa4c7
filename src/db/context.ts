/**
 * What every primitive's operation runs with: a transaction of the engine,
 * the database's shared services, and the run it addresses.
 *
 * Primitives hold no state of their own (the seed's "stateless facade"):
 * each public method is a function of (scope, arguments) that reads and
 * writes through a {@link TxContext}. A {@link Scope} decides which
 * transaction: a run handle's methods run one transaction per call
 * (`standalone`), a transaction handle's methods run inside the caller's.
 *
 * @module
 */
import type { Value } from "../core/codec.ts";
import { decodeValue, encodeValue } from "../core/codec.ts";
import { KeyReader } from "../core/keys.ts";
import { type Engine, keyIdOf, type SyncReads, type Transaction } from "../engine/engine.ts";
import { CorruptionError, RunClosedError, RunNotFoundError } from "../errors.ts";
import { key, SYS, SYSTEM } from "./layout.ts";
import type { Run } from "./database.ts";

/** A run's lifecycle status. */
export type RunStatus = "active" | "paused" | "completed" | "failed" | "cancelled" | "archived";

/** Public view of a run. */
export interface RunMetadata {
  /** The run's id. */
  id: string;
  /** Optional human name. */
  name?: string;
  /** Parent run id. */
  parent?: string;
  /** Lifecycle status. */
  status: RunStatus;
  /** Creation time, ms since the epoch (the engine clock). */
  createdAt: number;
  /** Last change, ms since the epoch. */
  updatedAt: number;
  /** When it reached completed, failed or cancelled. */
  completedAt?: number;
  /** Tags, deduplicated, in insertion order. */
  tags: string[];
  /** Free-form metadata. */
  metadata: Value;
  /** The message given to `fail`. */
  error?: string;
}

/** A run as stored: its public metadata plus its internal number. */
export interface RunRecord extends RunMetadata {
  /** Internal run number: the first element of every key of the run. */
  n: number;
}

/** Statuses in which a run accepts data writes. */
const WRITABLE: ReadonlySet<RunStatus> = new Set(["active", "paused"]);

/** What the database lends its primitives. */
export interface DbCore {
  /** The transactional engine. */
  readonly engine: Engine;
  /** Throws DatabaseClosedError once the database is closed. */
  checkOpen(): void;
  /** A new UUIDv7. */
  newId(): string;
  /** The next unused run number (never reused, even if the creating transaction retries). */
  allocateRunNumber(): number;
  /**
   * Numbers of the runs that may hold expiring KV records: those whose
   * expiry index entries open found, and every run a put with `ttlMs` was
   * buffered for since. Never shrinks while open. A put into a run not in
   * it has no expiry index entry to replace, so its commit step skips the
   * lookup of the record it overwrites.
   */
  readonly expiringRuns: Set<number>;
  /**
   * The run records last decoded, by id (undefined: no such run), each with
   * the applied version it is the value at. Valid for reads at a version v
   * while `engine.lastWriteOf(key) <= min(asOf, v)` — the engine watches
   * the run record keys — so a put need not look its run up in the store.
   * Shared, never changed: only `n` and `status` are read from it.
   */
  readonly runRecords: Map<string, { record: RunRecord | undefined; asOf: number }>;
}

/**
 * Synchronous reads of one consistent state, as primitives see them: a
 * transaction's ({@link TxContext}), or, for a standalone read-only
 * operation, the latest applied state (one synchronous step: see
 * `Engine.latest`). Caches the run records it read.
 */
export class ReadContext {
  /** The reads: the transaction's, or the latest state's. */
  readonly reads: SyncReads;
  /** Shared services. */
  readonly db: DbCore;
  // Made on first use: most operations read one run once.
  #runs: Map<string, RunRecord | undefined> | undefined;
  #now: number | undefined;
  /** The last run {@link runNumber} read from the store (a shared, uncopied record). */
  #lastId: string | undefined;
  #last: RunRecord | undefined;

  /**
   * @param reads Where reads go.
   * @param db The database's services.
   */
  constructor(reads: SyncReads, db: DbCore) {
    this.reads = reads;
    this.db = db;
  }

  /**
   * The engine clock, read once per attempt: every timestamp a transaction
   * writes is the same instant.
   *
   * @returns Milliseconds since the epoch.
   */
  now(): number {
    return (this.#now ??= this.db.engine.now());
  }

  /**
   * The run record of `id`, read in this transaction (so a concurrent
   * status change conflicts with it), or undefined.
   *
   * @param id The run id.
   * @returns The record.
   */
  run(id: string): Promise<RunRecord | undefined> {
    try {
      return Promise.resolve(this.runSync(id));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The synchronous read behind {@link run}. */
  runSync(id: string): RunRecord | undefined {
    const runs = this.#runs ??= new Map();
    if (runs.has(id)) return runs.get(id);
    const bytes = this.reads.getSync(runKey(id));
    const record = bytes === undefined ? undefined : copyRecord(decodeCached(bytes, id));
    runs.set(id, record);
    return record;
  }

  /**
   * The number of run `id` for an operation on its data, read in this
   * transaction like {@link readableRun} (the same checks and errors, and
   * with `writable` the run must be active or paused), without copying the
   * record.
   *
   * @param id The run id.
   * @param writable Whether the operation writes (the run must be active or paused).
   * @param what The operation, for the error message, or a function making it.
   * @returns The run number.
   * @throws {RunNotFoundError} If there is no such run.
   * @throws {RunClosedError} If `writable` and the run is completed, failed, cancelled or archived.
   */
  runNumber(id: string, writable: boolean, what: string | (() => string)): number {
    let r: RunRecord | undefined;
    const runs = this.#runs;
    if (runs !== undefined && runs.has(id)) r = runs.get(id);
    else if (this.#lastId === id) r = this.#last;
    else {
      const rk = cachedRunKey(id);
      // The record this database last decoded for the id is the one these
      // reads would find if no write of the key was applied since — after
      // it was decoded, or after these reads' version (see DbCore.runRecords).
      const at = this.reads.readVersion;
      const written = this.db.engine.lastWriteOf(rk.kid);
      const hit = this.db.runRecords.get(id);
      if (
        hit !== undefined && written <= hit.asOf && written <= at &&
        this.reads.noteRead(rk.key, rk.kid)
      ) {
        r = hit.record;
      } else {
        const bytes = this.reads.viewSync(rk.key, rk.kid);
        // Shared with the caches: only `n` and `status` are read from it.
        r = bytes === undefined ? undefined : decodeCached(bytes, id);
        if (written <= at) {
          if (this.db.runRecords.size >= RUN_CACHE_ENTRIES) this.db.runRecords.clear();
          this.db.runRecords.set(id, { record: r, asOf: at });
        }
      }
      this.#lastId = id;
      this.#last = r;
    }
    if (r === undefined) {
      const w = typeof what === "string" ? what : what();
      throw new RunNotFoundError(`Cannot ${w}: run ${id} does not exist`, { runId: id });
    }
    if (writable && !WRITABLE.has(r.status)) {
      const w = typeof what === "string" ? what : what();
      throw new RunClosedError(`Cannot ${w}: run ${id} is ${r.status}`, {
        runId: id,
        status: r.status,
      });
    }
    return r.n;
  }

  /**
   * The run for a read: it must exist.
   *
   * @param id The run id.
   * @param what The operation, for the error message ("get KV key x").
   * @returns The record.
   * @throws {RunNotFoundError} If there is no such run.
   */
  async readableRun(id: string, what: string): Promise<RunRecord> {
    const r = await this.run(id);
    if (r === undefined) {
      throw new RunNotFoundError(`Cannot ${what}: run ${id} does not exist`, { runId: id });
    }
    return r;
  }

  /**
   * The run for a read, synchronously: it must exist.
   *
   * @param id The run id.
   * @param what The operation, for the error message.
   * @returns The record.
   * @throws {RunNotFoundError} If there is no such run.
   */
  readableRunSync(id: string, what: string): RunRecord {
    const r = this.runSync(id);
    if (r === undefined) {
      throw new RunNotFoundError(`Cannot ${what}: run ${id} does not exist`, { runId: id });
    }
    return r;
  }

  /** @internal Remembers what this attempt wrote for run `id` (see TxContext.putRun). */
  protected remember(id: string, record: RunRecord | undefined): void {
    (this.#runs ??= new Map()).set(id, record);
  }
}

/**
 * One attempt of a database transaction, as primitives see it: its reads
 * (recorded in the transaction's read set) and its writes.
 */
export class TxContext extends ReadContext {
  /** The engine transaction. */
  readonly tx: Transaction;

  /**
   * @param tx The engine transaction of this attempt.
   * @param db The database's services.
   */
  constructor(tx: Transaction, db: DbCore) {
    super(tx, db);
    this.tx = tx;
  }

  /**
   * Writes a run record (and remembers it for later reads in this attempt).
   * Index maintenance is the caller's (src/db/runs.ts).
   *
   * @param record The record.
   */
  putRun(record: RunRecord): void {
    this.tx.put(runKey(record.id), encodeRunRecord(record));
    this.remember(record.id, record);
  }

  /**
   * Deletes a run record.
   *
   * @param id The run id.
   */
  deleteRun(id: string): void {
    this.tx.delete(runKey(id));
    this.remember(id, undefined);
  }
}

/** Options of {@link Scope.exec}. */
export interface ExecOptions {
  /** Re-runs on conflict before TransactionConflictError (standalone only). */
  maxRetries?: number;
}

/**
 * Where a primitive's method runs.
 */
export interface Scope {
  /** The run the primitive addresses. */
  readonly runId: string;
  /** True for a run handle (one transaction per call), false inside a transaction. */
  readonly standalone: boolean;
  /**
   * Runs `fn` in this scope's transaction: a new one (retried on conflict,
   * up to `options.maxRetries` re-runs if given) when standalone, else the
   * enclosing one (options ignored).
   */
  exec<T>(fn: (ctx: TxContext) => Promise<T> | T, options?: ExecOptions): Promise<T> | T;
  /**
   * Runs the synchronous `fn`: standalone, as a write that may share its
   * commit with the other standalone writes of this turn of the event loop
   * (Engine.transactionGrouped); else in the enclosing transaction.
   */
  write<T>(fn: (ctx: TxContext) => T): Promise<T> | T;
  /**
   * Runs the read-only, synchronous `fn`: standalone, over the database's
   * latest applied state with no transaction around it (one synchronous
   * step reads one consistent state); else in the enclosing transaction.
   */
  read<T>(fn: (ctx: ReadContext) => T): Promise<T>;
}

/**
 * The scope of a handle inside a transaction: every method joins it.
 *
 * @param runId The run the handle addresses.
 * @param ctx The transaction's context.
 * @returns The scope.
 */
export function joinedScope(runId: string, ctx: TxContext): Scope {
  return new JoinedScope(runId, ctx);
}

/** {@link joinedScope}: a class, so making one allocates no closures. */
class JoinedScope implements Scope {
  readonly runId: string;
  readonly standalone = false;
  readonly #ctx: TxContext;

  constructor(runId: string, ctx: TxContext) {
    this.runId = runId;
    this.#ctx = ctx;
  }

  exec<T>(fn: (ctx: TxContext) => Promise<T> | T): Promise<T> | T {
    return fn(this.#ctx);
  }

  write<T>(fn: (ctx: TxContext) => T): T {
    return fn(this.#ctx);
  }

  read<T>(fn: (ctx: ReadContext) => T): Promise<T> {
    try {
      return Promise.resolve(fn(this.#ctx));
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

/**
 * The key of a run record.
 *
 * @param id The run id.
 * @returns `u32(0) · 01 · string(id)`.
 */
export function runKey(id: string): Uint8Array {
  return cachedRunKey(id).key;
}

/** The key of a run record and its engine key id (both cached). */
function cachedRunKey(id: string): { key: Uint8Array; kid: string } {
  let k = runKeys.get(id);
  if (k === undefined) {
    if (runKeys.size >= RUN_CACHE_ENTRIES) runKeys.clear();
    const bytes = key(SYSTEM, SYS.RUN).string(id).finish();
    k = { key: bytes, kid: keyIdOf(bytes) };
    runKeys.set(id, k);
  }
  return k;
}

/**
 * How many run ids the key and record caches below remember (then they
 * start over). Every operation reads its run's record in its transaction —
 * that read is what makes a racing status change conflict — but building the
 * key and decoding the same bytes again each time was a fifth of a KV put.
 */
const RUN_CACHE_ENTRIES = 4096;
const runKeys = new Map<string, { key: Uint8Array; kid: string }>();
const decodedRuns = new Map<string, { bytes: Uint8Array; record: RunRecord }>();

/**
 * Decodes a run record, reusing the last decoding when the stored bytes are
 * the same. The result is shared with the cache: never change it, and hand
 * out only {@link copyRecord}'s copies.
 */
function decodeCached(bytes: Uint8Array, id: string): RunRecord {
  const hit = decodedRuns.get(id);
  if (hit !== undefined && sameBytes(hit.bytes, bytes)) return hit.record;
  const record = decodeRunRecord(bytes, id);
  if (decodedRuns.size >= RUN_CACHE_ENTRIES) decodedRuns.clear();
  decodedRuns.set(id, { bytes: bytes.slice(), record });
  return record;
}

/**
 * Callers, and users through RunMetadata, may change what they get: a copy
 * that shares nothing mutable with the cache.
 */
function copyRecord(record: RunRecord): RunRecord {
  return { ...record, tags: [...record.tags], metadata: copyValue(record.metadata) };
}

function copyValue(v: Value): Value {
  if (typeof v !== "object" || v === null) return v;
  if (v.constructor === Object && Object.keys(v).length === 0) return {};
  return structuredClone(v);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Encodes a run record (MessagePack map, docs/FORMAT.md).
 *
 * @param r The record.
 * @returns The value bytes.
 */
export function encodeRunRecord(r: RunRecord): Uint8Array {
  const out: Record<string, Value> = {
    n: r.n,
    status: r.status,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    tags: r.tags,
    metadata: r.metadata,
  };
  if (r.name !== undefined) out.name = r.name;
  if (r.parent !== undefined) out.parent = r.parent;
  if (r.completedAt !== undefined) out.completedAt = r.completedAt;
  if (r.error !== undefined) out.error = r.error;
  return encodeValue(out);
}

/**
 * Decodes a run record.
 *
 * @param bytes The value bytes.
 * @param id The run id (from the key).
 * @returns The record.
 * @throws {CorruptionError} If the bytes are not a run record.
 */
export function decodeRunRecord(bytes: Uint8Array, id: string): RunRecord {
  const v = decodeValue(bytes) as Record<string, Value>;
  if (
    typeof v !== "object" || v === null || typeof v.n !== "number" ||
    typeof v.status !== "string" || typeof v.createdAt !== "number" || !Array.isArray(v.tags)
  ) {
    throw new CorruptionError(`Cannot read run ${id}: its record is malformed`, {
      where: `run record ${id}`,
    });
  }
  const r: RunRecord = {
    n: v.n,
    id,
    status: v.status as RunStatus,
    createdAt: v.createdAt,
    updatedAt: v.updatedAt as number,
    tags: v.tags as string[],
    metadata: v.metadata ?? {},
  };
  if (typeof v.name === "string") r.name = v.name;
  if (typeof v.parent === "string") r.parent = v.parent;
  if (typeof v.completedAt === "number") r.completedAt = v.completedAt;
  if (typeof v.error === "string") r.error = v.error;
  return r;
}

/**
 * Reads the run id out of a system key ending in `string(runId)` after
 * `skip` fixed-width bytes following the 5-byte prefix.
 *
 * @param k The key.
 * @param read Reads the elements between the prefix and the id.
 * @returns The run id.
 */
export function runIdFromIndexKey(k: Uint8Array, read: (r: KeyReader) => void): string {
  const r = new KeyReader(k);
  r.u32();
  r.u8();
  read(r);
  return r.string();
}

/** Where the run lifecycle API runs (not tied to one run). */
export interface RunsScope {
  /** The database's services. */
  readonly db: DbCore;
  /** True outside a transaction (one transaction per call). */
  readonly standalone: boolean;
  /** Runs `fn` in this scope's transaction (see {@link Scope.exec}). */
  exec<T>(fn: (ctx: TxContext) => Promise<T>, options?: ExecOptions): Promise<T>;
  /** A handle on a run (no I/O). */
  handle(id: string): Run;
}
