/**
 * Runs: one per agent execution. Lifecycle (status transitions), parents
 * and children, tags and metadata, queries by index, stats, and cascading
 * delete.
 *
 * @module
 */
import { decodeValue, encodeValue, type Value } from "../core/codec.ts";
import { KeyWriter, MAX_USER_KEY_BYTES } from "../core/keys.ts";
import { AlreadyExistsError } from "../errors.ts";
import type { Run } from "./database.ts";
import type { DbCore, RunRecord, RunsScope, RunStatus, TxContext } from "./context.ts";
import { key, STATUS_CODES, SYS, SYSTEM } from "./layout.ts";

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
  /** Creation time, ms since the epoch. */
  createdAt: number;
  /** Last change, ms since the epoch. */
  updatedAt: number;
  /** When it reached completed, failed or cancelled. */
  completedAt?: number;
  /** Tags. */
  tags: string[];
  /** Free-form metadata. */
  metadata: Value;
  /** The message given to `fail`. */
  error?: string;
}

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

/** The public view of a stored run record. */
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

/** Checks a string argument: non-empty, at most MAX_USER_KEY_BYTES of UTF-8. */
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

/** Writes every index entry of a run record (status, tags, parent, created, number). */
export function putRunIndexes(ctx: TxContext, r: RunRecord): void {
  const empty = new Uint8Array(0);
  ctx.tx.put(key(SYSTEM, SYS.RUN_NUMBER).u32(r.n).finish(), new KeyWriter().string(r.id).finish());
  ctx.tx.put(
    key(SYSTEM, SYS.BY_STATUS).u8(statusCode(r.status)).u64(r.createdAt).string(r.id).finish(),
    empty,
  );
  for (const tag of r.tags) {
    ctx.tx.put(key(SYSTEM, SYS.BY_TAG).string(tag).u64(r.createdAt).string(r.id).finish(), empty);
  }
  if (r.parent !== undefined) {
    ctx.tx.put(
      key(SYSTEM, SYS.BY_PARENT).string(r.parent).u64(r.createdAt).string(r.id).finish(),
      empty,
    );
  }
  ctx.tx.put(key(SYSTEM, SYS.BY_CREATED).u64(r.createdAt).string(r.id).finish(), empty);
}

/** Adds `delta` to the run count of `status`, at commit time (never conflicts). */
export function countRun(ctx: TxContext, status: RunStatus, delta: number): void {
  const k = key(SYSTEM, SYS.RUN_COUNT).u8(statusCode(status)).finish();
  ctx.tx.atCommit((view) => {
    const old = view.get(k);
    const n = (old === undefined ? 0 : decodeValue(old) as number) + delta;
    if (n === 0) view.delete(k);
    else view.put(k, encodeValue(n));
  });
}

/**
 * Run lifecycle and queries. `db.runs` runs each call as its own
 * transaction; `tx.runs` inside a {@link DatabaseTransaction}.
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
   * @param options Id (default UUIDv7), name, tags, metadata, parent.
   * @returns A handle on the new run.
   * @throws {AlreadyExistsError} If a run with that id exists.
   * @throws {RunNotFoundError} If the parent does not exist.
   */
  async create(options: CreateRunOptions = {}): Promise<Run> {
    const id = options.id === undefined ? undefined : checkName(options.id, "a run id");
    const name = options.name;
    if (name !== undefined && typeof name !== "string") {
      throw new TypeError(`Cannot create a run: name must be a string`);
    }
    const tags = [...new Set((options.tags ?? []).map((t) => checkName(t, "a run tag")))];
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
   */
  async get(id: string): Promise<RunMetadata | undefined> {
    checkName(id, "a run id");
    return await this.#scope.exec(async (ctx) => {
      const r = await ctx.run(id);
      return r === undefined ? undefined : toMetadata(r);
    });
  }
}

/**
 * Finishes cascading deletes that a crash interrupted (runs marked
 * deleting). Called at open.
 *
 * @param _db The database's services.
 * @param _exec Runs a transaction.
 */
export async function resumeDeletes(
  _db: DbCore,
  _exec: <T>(fn: (ctx: TxContext) => Promise<T>) => Promise<T>,
): Promise<void> {}
