/**
 * Reasoning traces: structured records of what an agent did and why (tool
 * calls, decisions, queries, thoughts, errors, custom kinds), nested by
 * parent, tagged, and indexed by kind, tag, parent and time
 * (docs/FORMAT.md "Traces").
 *
 * A trace and all its index entries are written in one transaction, so a
 * query never sees a trace without its entries or the other way round. Each
 * trace costs 4 + (number of tags) index entries (5 + tags for `custom`):
 * traces are for debugging an agent (tens to thousands per run), not for
 * high-rate telemetry.
 *
 * The trace count is a commit-time counter: concurrent `record` calls never
 * conflict on it.
 *
 * @module
 */
import { decodeValue, encodeValue, MapWriter, type Value } from "../core/codec.ts";
import { KeyReader, KeyWriter } from "../core/keys.ts";
import type { Transaction } from "../engine/engine.ts";
import { AlreadyExistsError, CorruptionError, NotFoundError } from "../errors.ts";
import type { Scope, TxContext } from "./context.ts";
import { key, range, TAG } from "./layout.ts";
import { checkName } from "./runs.ts";

/**
 * The built-in trace kinds, in the order of {@link TraceType}'s variants.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, TRACE_KINDS } from "@in-mem/core";
 *
 * assert.deepEqual(TRACE_KINDS, ["tool_call", "decision", "query", "thought", "error", "custom"]);
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * await run.traces.record({ kind: "thought", content: "look it up" });
 * const counts = [];
 * for (const kind of TRACE_KINDS) counts.push((await run.traces.queryByType(kind)).length);
 * assert.deepEqual(counts, [0, 0, 0, 1, 0, 0]);
 * // Any other kind is refused.
 * await assert.rejects(run.traces.record({ kind: "dream" } as never), TypeError);
 * ```
 */
export const TRACE_KINDS = [
  "tool_call",
  "decision",
  "query",
  "thought",
  "error",
  "custom",
] as const;

/** A trace kind: the `kind` of a {@link TraceType}. */
export type TraceKind = typeof TRACE_KINDS[number];

/**
 * Most tags one trace may carry (each is an index entry).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, MAX_TRACE_TAGS } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * const tags = Array.from({ length: MAX_TRACE_TAGS + 1 }, (_, i) => `tag${i}`);
 * const thought = { kind: "thought", content: "compare the sources" } as const;
 * await assert.rejects(run.traces.record(thought, { tags }), RangeError);
 * const id = await run.traces.record(thought, { tags: tags.slice(0, MAX_TRACE_TAGS) });
 * assert.equal((await run.traces.get(id))?.tags.length, MAX_TRACE_TAGS);
 * ```
 */
export const MAX_TRACE_TAGS = 64;

/** A tool invocation. */
export interface ToolCallTrace {
  /** Discriminant. */
  kind: "tool_call";
  /** The tool's name (non-empty). */
  toolName: string;
  /** Its arguments, any storable value. */
  arguments: Value;
  /** What it returned. */
  result?: Value;
  /** How long it took, ms (≥ 0). */
  durationMs?: number;
}

/** A decision point. */
export interface DecisionTrace {
  /** Discriminant. */
  kind: "decision";
  /** What was decided. */
  question: string;
  /** The options considered. */
  options: string[];
  /** The option taken. */
  chosen: string;
  /** Why. */
  reasoning?: string;
}

/** A query or search. */
export interface QueryTrace {
  /** Discriminant. */
  kind: "query";
  /** What kind of query ("vector", "sql", …; non-empty). */
  queryType: string;
  /** The query text. */
  query: string;
  /** How many results it gave (a whole number ≥ 0). */
  resultsCount: number;
}

/** A reasoning step. */
export interface ThoughtTrace {
  /** Discriminant. */
  kind: "thought";
  /** The thought. */
  content: string;
  /** A confidence score (any finite number; 0–1 by convention). */
  confidence?: number;
}

/** An error or exception. */
export interface ErrorTrace {
  /** Discriminant. */
  kind: "error";
  /** The error's type (non-empty). */
  errorType: string;
  /** Its message. */
  message: string;
  /** Whether the agent could carry on. */
  recoverable: boolean;
}

/**
 * A kind of the application's own. Indexed under its `name`, which must not
 * be one of {@link TRACE_KINDS} (queries by kind would mix them).
 */
export interface CustomTrace {
  /** Discriminant. */
  kind: "custom";
  /** The application's kind name (non-empty; queried with `queryByType(name)`). */
  name: string;
  /** Its data, any storable value. */
  data: Value;
}

/** What a trace records: a union discriminated by `kind`. */
export type TraceType =
  | ToolCallTrace
  | DecisionTrace
  | QueryTrace
  | ThoughtTrace
  | ErrorTrace
  | CustomTrace;

/** A recorded trace. */
export interface Trace {
  /** Its id, unique in the run. */
  id: string;
  /** The trace it is nested under. */
  parentId?: string;
  /** What it records. */
  type: TraceType;
  /** When it was recorded, ms since the epoch (the database clock, whole ms). */
  timestamp: number;
  /** Its tags (deduplicated, in the order given). */
  tags: string[];
  /** Free-form metadata. */
  metadata?: Value;
}

/** Options of {@link TraceStore.record}. */
export interface RecordTraceOptions {
  /** The id; default a new UUIDv7. Must not exist in the run. */
  id?: string;
  /** The parent trace's id; it must exist in the run. */
  parentId?: string;
  /** Tags, at most {@link MAX_TRACE_TAGS} distinct ones. */
  tags?: string[];
  /** Free-form metadata, any storable value. */
  metadata?: Value;
}

/** A trace with its descendants: what {@link TraceStore.tree} returns. */
export interface TraceTree {
  /** The trace. */
  trace: Trace;
  /** Its children's trees, in (timestamp, id) order. */
  children: TraceTree[];
}

// ---------------------------------------------------------------------------
// Validation

const FIELDS: Record<TraceKind, readonly string[]> = {
  tool_call: ["toolName", "arguments", "result", "durationMs"],
  decision: ["question", "options", "chosen", "reasoning"],
  query: ["queryType", "query", "resultsCount"],
  thought: ["content", "confidence"],
  error: ["errorType", "message", "recoverable"],
  custom: ["name", "data"],
};

const WHAT = "record a trace";

function fieldError(kind: string, field: string, want: string, got: unknown): TypeError {
  const g = got === null ? "null" : Array.isArray(got) ? "an array" : typeof got;
  return new TypeError(`Cannot ${WHAT}: ${kind}.${field} must be ${want}, got ${g}`);
}

function str(o: Record<string, unknown>, kind: string, f: string, nonEmpty = false): string {
  const v = o[f];
  if (typeof v !== "string") throw fieldError(kind, f, "a string", v);
  if (nonEmpty && v.length === 0) {
    throw new TypeError(`Cannot ${WHAT}: ${kind}.${f} must not be empty`);
  }
  return v;
}

function optStr(o: Record<string, unknown>, kind: string, f: string): string | undefined {
  return o[f] === undefined ? undefined : str(o, kind, f);
}

function num(o: Record<string, unknown>, kind: string, f: string): number {
  const v = o[f];
  if (typeof v !== "number") throw fieldError(kind, f, "a number", v);
  if (!Number.isFinite(v)) {
    throw new RangeError(`Cannot ${WHAT}: ${kind}.${f} must be finite, got ${v}`);
  }
  return v;
}

function present(o: Record<string, unknown>, kind: string, f: string): Value {
  if (o[f] === undefined) throw fieldError(kind, f, "a value", undefined);
  return o[f] as Value;
}

/**
 * Checks a {@link TraceType} and copies its fields (only the variant's
 * fields, optional ones left out when undefined).
 */
function checkType(t: unknown): TraceType {
  if (typeof t !== "object" || t === null || Array.isArray(t)) {
    throw new TypeError(`Cannot ${WHAT}: its type must be an object with a kind`);
  }
  const o = t as Record<string, unknown>;
  const kind = o.kind;
  if (typeof kind !== "string" || !(TRACE_KINDS as readonly string[]).includes(kind)) {
    throw new TypeError(
      `Cannot ${WHAT}: kind must be one of ${TRACE_KINDS.join(", ")}, got ${String(kind)}`,
    );
  }
  const k = kind as TraceKind;
  for (const f of Object.keys(o)) {
    if (f !== "kind" && !FIELDS[k].includes(f)) {
      throw new TypeError(`Cannot ${WHAT}: a ${k} trace has no field ${f}`);
    }
  }
  switch (k) {
    case "tool_call": {
      const out: ToolCallTrace = {
        kind: k,
        toolName: str(o, k, "toolName", true),
        arguments: present(o, k, "arguments"),
      };
      if (o.result !== undefined) out.result = o.result as Value;
      if (o.durationMs !== undefined) {
        out.durationMs = num(o, k, "durationMs");
        if (out.durationMs < 0) {
          throw new RangeError(`Cannot ${WHAT}: tool_call.durationMs must be >= 0`);
        }
      }
      return out;
    }
    case "decision": {
      const options = o.options;
      if (!Array.isArray(options) || !options.every((x) => typeof x === "string")) {
        throw fieldError(k, "options", "an array of strings", options);
      }
      const out: DecisionTrace = {
        kind: k,
        question: str(o, k, "question"),
        options: [...options as string[]],
        chosen: str(o, k, "chosen"),
      };
      const reasoning = optStr(o, k, "reasoning");
      if (reasoning !== undefined) out.reasoning = reasoning;
      return out;
    }
    case "query": {
      const resultsCount = num(o, k, "resultsCount");
      if (!Number.isSafeInteger(resultsCount) || resultsCount < 0) {
        throw new RangeError(
          `Cannot ${WHAT}: query.resultsCount must be a whole number >= 0, got ${resultsCount}`,
        );
      }
      return {
        kind: k,
        queryType: str(o, k, "queryType", true),
        query: str(o, k, "query"),
        resultsCount,
      };
    }
    case "thought": {
      const out: ThoughtTrace = { kind: k, content: str(o, k, "content") };
      if (o.confidence !== undefined) out.confidence = num(o, k, "confidence");
      return out;
    }
    case "error": {
      if (typeof o.recoverable !== "boolean") {
        throw fieldError(k, "recoverable", "a boolean", o.recoverable);
      }
      return {
        kind: k,
        errorType: str(o, k, "errorType", true),
        message: str(o, k, "message"),
        recoverable: o.recoverable,
      };
    }
    case "custom": {
      const name = checkName(o.name, "custom.name (a custom trace kind)");
      if ((TRACE_KINDS as readonly string[]).includes(name)) {
        throw new TypeError(
          `Cannot ${WHAT}: custom.name ${name} is a built-in kind; choose another name`,
        );
      }
      return { kind: k, name, data: present(o, k, "data") };
    }
  }
}

/** The names a trace is indexed under by kind. */
function kindNames(t: TraceType): string[] {
  return t.kind === "custom" ? ["custom", t.name] : [t.kind];
}

/** Checks the options of `record`; returns them normalized. */
function checkOptions(opts: unknown): {
  id: string | undefined;
  parentId: string | undefined;
  tags: string[];
  metadata: Value | undefined;
} {
  if (typeof opts !== "object" || opts === null) {
    throw new TypeError(`Cannot ${WHAT}: options must be an object`);
  }
  const o = opts as RecordTraceOptions;
  const id = o.id === undefined ? undefined : checkName(o.id, "a trace id");
  const parentId = o.parentId === undefined
    ? undefined
    : checkName(o.parentId, "a parent trace id");
  if (o.tags !== undefined && !Array.isArray(o.tags)) {
    throw new TypeError(`Cannot ${WHAT}: tags must be an array of strings`);
  }
  const tags = [...new Set((o.tags ?? []).map((t) => checkName(t, "a trace tag")))];
  if (tags.length > MAX_TRACE_TAGS) {
    throw new RangeError(
      `Cannot ${WHAT}: ${tags.length} tags, over MAX_TRACE_TAGS (${MAX_TRACE_TAGS})`,
    );
  }
  return { id, parentId, tags, metadata: o.metadata };
}

function checkTime(v: unknown, what: string): number {
  if (typeof v !== "number") {
    throw new TypeError(`Cannot query traces by time: ${what} must be a number, got ${typeof v}`);
  }
  if (Number.isNaN(v)) throw new RangeError(`Cannot query traces by time: ${what} is NaN`);
  return v;
}

// ---------------------------------------------------------------------------
// Keys and records (docs/FORMAT.md)

const traceKey = (n: number, id: string): Uint8Array => key(n, TAG.TRACE).string(id).finish();
const countKey = (n: number): Uint8Array => key(n, TAG.TRACE_COUNT).finish();

/** Every index key of a trace. */
function indexKeys(n: number, t: Trace): Uint8Array[] {
  const keys: Uint8Array[] = [];
  // Every entry ends in `u64(timestamp) · string(id)`: encoded once.
  const suffix = new KeyWriter().u64(t.timestamp).string(t.id).finish();
  for (const name of kindNames(t.type)) {
    keys.push(key(n, TAG.TRACE_BY_KIND).string(name).raw(suffix).finish());
  }
  for (const tag of t.tags) {
    keys.push(key(n, TAG.TRACE_BY_TAG).string(tag).raw(suffix).finish());
  }
  if (t.parentId !== undefined) {
    keys.push(key(n, TAG.TRACE_BY_PARENT).string(t.parentId).raw(suffix).finish());
  }
  keys.push(key(n, TAG.TRACE_BY_TIME).raw(suffix).finish());
  return keys;
}

/**
 * The caller's part of a trace record, encoded (and so checked) before the
 * transaction: `encodeValue({ type, metadata })`.
 */
function encodeTraceStart(type: TraceType, metadata: Value | undefined): Uint8Array {
  return encodeValue({ type: type as unknown as Value, metadata });
}

const recordWriter = new MapWriter();

/**
 * The trace record: the entries of `start` (type, metadata), then
 * timestamp, tags and parentId — a map of the fields FORMAT.md lists.
 */
function encodeTrace(start: Uint8Array, t: Trace): Uint8Array {
  // `start` is a fixmap of 1 or 2 entries (metadata left out if undefined).
  const count = (start[0]! & 0x0f) + 2 + (t.parentId === undefined ? 0 : 1);
  const w = recordWriter.begin(count).raw(start.subarray(1)).key("timestamp").int(t.timestamp)
    .key("tags").raw(encodeValue(t.tags));
  if (t.parentId !== undefined) w.key("parentId").str(t.parentId);
  return w.finish();
}

function decodeTrace(bytes: Uint8Array, id: string, n: number): Trace {
  const where = `trace ${id} of run number ${n}`;
  let v: Value;
  try {
    v = decodeValue(bytes);
  } catch (cause) {
    throw new CorruptionError(`Cannot read trace ${id}: ${(cause as Error).message}`, {
      where,
      cause,
    });
  }
  const o = v as Record<string, Value>;
  const ok = typeof o === "object" && o !== null && !Array.isArray(o) &&
    typeof o.timestamp === "number" && Array.isArray(o.tags) &&
    o.tags.every((x) => typeof x === "string") &&
    (o.parentId === undefined || typeof o.parentId === "string");
  let type: TraceType | undefined;
  if (ok) {
    try {
      type = checkType(o.type);
    } catch {
      type = undefined;
    }
  }
  if (!ok || type === undefined) {
    throw new CorruptionError(`Cannot read trace ${id}: its record is malformed`, { where });
  }
  const t: Trace = { id, type, timestamp: o.timestamp as number, tags: o.tags as string[] };
  if (o.parentId !== undefined) t.parentId = o.parentId as string;
  if (o.metadata !== undefined) t.metadata = o.metadata;
  return t;
}

/** The trace id at the end of an index key: `… u64(timestamp) · string(id)`. */
function idOfIndexKey(k: Uint8Array, tag: number): string {
  const r = new KeyReader(k);
  r.u32();
  r.u8();
  if (tag !== TAG.TRACE_BY_TIME) r.string();
  r.u64();
  return r.string();
}

/** Loads the traces an index range lists, in index order. */
async function loadIndexed(
  ctx: TxContext,
  n: number,
  tag: number,
  bounds: { gte: Uint8Array; lt: Uint8Array },
): Promise<Trace[]> {
  const rows = await ctx.tx.scan(bounds);
  const out: Trace[] = [];
  for (const [k] of rows) {
    const id = idOfIndexKey(k, tag);
    const bytes = await ctx.tx.get(traceKey(n, id));
    if (bytes === undefined) {
      throw new CorruptionError(
        `Cannot query traces: an index entry lists trace ${id}, which is missing`,
        { where: `trace index ${tag} of run number ${n}` },
      );
    }
    out.push(decodeTrace(bytes, id, n));
  }
  return out;
}

/**
 * Count changes a transaction has registered but not committed, so that
 * `count()` inside it includes its own `record`s (read-your-writes). Keyed
 * by the attempt's engine transaction; a retried attempt starts at zero.
 */
const pendingCounts = new WeakMap<Transaction, Map<number, number>>();

// ---------------------------------------------------------------------------

/**
 * A run's traces: `run.traces` (each call its own transaction) or
 * `tx.traces` (inside a transaction). Holds no state of its own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * const root = await run.traces.record({ kind: "thought", content: "plan the search" });
 * await run.traces.recordChild(root, {
 *   kind: "tool_call",
 *   toolName: "search",
 *   arguments: { q: "in-mem" },
 * });
 * const tree = await run.traces.tree(root);
 * assert.equal(tree?.children[0]?.trace.type.kind, "tool_call");
 * ```
 */
export class TraceStore {
  readonly #scope: Scope;

  /** @internal Use `run.traces` or `tx.traces`. */
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /**
   * Records a trace and its index entries (by kind — for `custom` also by
   * name —, by each tag, by parent, by time) in one transaction.
   *
   * @param type What the trace records; the variant's required fields are checked.
   * @param options `id` (default a new UUIDv7), `parentId` (must exist),
   *   `tags`, `metadata`.
   * @returns The trace's id.
   * @throws {TypeError} If `type` is not a valid {@link TraceType} (the
   *   message names the field), an id or tag is not a non-empty string, or
   *   a value is not storable.
   * @throws {RangeError} If an id, tag or value is over its size limit, or
   *   there are more than {@link MAX_TRACE_TAGS} tags.
   * @throws {AlreadyExistsError} If a trace with the given `id` exists in the run.
   * @throws {NotFoundError} If the parent does not exist in the run.
   * @throws {RunNotFoundError} If the run does not exist.
   * @throws {RunClosedError} If the run is completed, failed, cancelled or archived.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * const id = await run.traces.record(
   *   { kind: "decision", question: "which tool?", options: ["search", "ask"], chosen: "search" },
   *   { tags: ["planning"], metadata: { step: 1 } },
   * );
   * const t = await run.traces.get(id);
   * assert.equal(t?.type.kind === "decision" && t.type.chosen, "search");
   * assert.deepEqual(t?.tags, ["planning"]);
   * ```
   */
  record(type: TraceType, options: RecordTraceOptions = {}): Promise<string> {
    // Not an async function: no extra turns of the microtask queue; every
    // error still rejects.
    try {
      return Promise.resolve(this.#record(type, options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #record(type: TraceType, options: RecordTraceOptions): Promise<string> | string {
    const checked = checkType(type);
    const o = checkOptions(options);
    // A bad value fails here, before anything is written.
    const start = encodeTraceStart(checked, o.metadata);
    const scope = this.#scope;
    // Synchronous: standalone writes of one turn may share a commit.
    return scope.write((ctx) => {
      const n = ctx.runNumber(scope.runId, true, WHAT);
      const timestamp = Math.floor(ctx.now());
      if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
        throw new RangeError(`Cannot ${WHAT}: the clock returned ${ctx.now()}, not a time >= 0`);
      }
      let id: string;
      if (o.id === undefined) {
        id = ctx.db.newId();
      } else {
        id = o.id;
        // Existence only: a view, not a copy of the record.
        if (ctx.tx.viewSync(traceKey(n, id)) !== undefined) {
          throw new AlreadyExistsError(`Cannot ${WHAT}: trace ${id} exists in run ${scope.runId}`);
        }
      }
      if (o.parentId !== undefined && ctx.tx.viewSync(traceKey(n, o.parentId)) === undefined) {
        throw new NotFoundError(
          `Cannot ${WHAT}: parent trace ${o.parentId} does not exist in run ${scope.runId}`,
        );
      }
      const t: Trace = { id, type: checked, timestamp, tags: o.tags };
      if (o.parentId !== undefined) t.parentId = o.parentId;
      if (o.metadata !== undefined) t.metadata = o.metadata;
      // Everything is encoded before the first put: a throw leaves nothing buffered.
      const record = encodeTrace(start, t);
      const entries = indexKeys(n, t);
      ctx.tx.put(traceKey(n, id), record);
      for (const k of entries) ctx.tx.put(k, new Uint8Array(0));
      let pending = pendingCounts.get(ctx.tx);
      if (pending === undefined) pendingCounts.set(ctx.tx, pending = new Map());
      pending.set(n, (pending.get(n) ?? 0) + 1); // per run: one transaction may span runs
      const ck = countKey(n);
      ctx.tx.atCommit((view) => {
        const old = view.get(ck);
        view.put(ck, encodeValue((old === undefined ? 0 : decodeCount(old, n)) + 1));
      });
      return id;
    });
  }

  /**
   * Records a trace nested under `parentId`.
   *
   * @param parentId The parent trace's id; it must exist in the run.
   * @param type What the trace records.
   * @param options `id`, `tags`, `metadata` (as {@link record}).
   * @returns The trace's id.
   * @throws {NotFoundError} If the parent does not exist in the run.
   * @throws {TypeError} As {@link record}.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database, NotFoundError } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * const root = await run.traces.record({ kind: "thought", content: "start" });
   * const child = await run.traces.recordChild(root, { kind: "thought", content: "next" });
   * assert.equal((await run.traces.get(child))?.parentId, root);
   * await assert.rejects(
   *   run.traces.recordChild("nope", { kind: "thought", content: "x" }),
   *   NotFoundError,
   * );
   * ```
   */
  recordChild(
    parentId: string,
    type: TraceType,
    options: Omit<RecordTraceOptions, "parentId"> = {},
  ): Promise<string> {
    if (typeof options !== "object" || options === null) {
      return Promise.reject(new TypeError(`Cannot ${WHAT}: options must be an object`));
    }
    if (parentId === undefined) {
      return Promise.reject(new TypeError(`Cannot ${WHAT}: parentId must be a string`));
    }
    return this.record(type, { ...options, parentId });
  }

  /**
   * The trace `id`, or undefined.
   *
   * @param id The trace id.
   * @returns The trace.
   * @throws {TypeError} If `id` is not a non-empty string.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * const id = await run.traces.record({ kind: "thought", content: "hi" }, { id: "t1" });
   * assert.equal(id, "t1");
   * assert.equal((await run.traces.get("t1"))?.type.kind, "thought");
   * assert.equal(await run.traces.get("t2"), undefined);
   * ```
   */
  async get(id: string): Promise<Trace | undefined> {
    const tid = checkName(id, "a trace id");
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, `get trace ${tid}`);
      const bytes = await ctx.tx.get(traceKey(n, tid));
      return bytes === undefined ? undefined : decodeTrace(bytes, tid, n);
    });
  }

  /**
   * The traces of one kind, through the kind index, in (timestamp, id)
   * order. For custom traces pass their `name` (or `"custom"` for all of them).
   *
   * @param kind A {@link TraceKind} or a custom trace name.
   * @returns The traces.
   * @throws {TypeError} If `kind` is not a non-empty string.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.traces.record({ kind: "thought", content: "a" });
   * await run.traces.record({ kind: "custom", name: "handoff", data: { to: "bob" } });
   * assert.equal((await run.traces.queryByType("thought")).length, 1);
   * assert.equal((await run.traces.queryByType("handoff")).length, 1);
   * assert.equal((await run.traces.queryByType("custom")).length, 1);
   * ```
   */
  async queryByType(kind: string): Promise<Trace[]> {
    const k = checkName(kind, "a trace kind");
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, `query ${k} traces`);
      const bounds = range(key(n, TAG.TRACE_BY_KIND).string(k).finish());
      return await loadIndexed(ctx, n, TAG.TRACE_BY_KIND, bounds);
    });
  }

  /**
   * The traces carrying `tag`, through the tag index, in (timestamp, id) order.
   *
   * @param tag The tag.
   * @returns The traces.
   * @throws {TypeError} If `tag` is not a non-empty string.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.traces.record({ kind: "thought", content: "a" }, { tags: ["slow"] });
   * await run.traces.record({ kind: "thought", content: "b" });
   * const slow = await run.traces.queryByTag("slow");
   * assert.deepEqual(slow.map((t) => t.type.kind === "thought" && t.type.content), ["a"]);
   * ```
   */
  async queryByTag(tag: string): Promise<Trace[]> {
    const g = checkName(tag, "a trace tag");
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, `query traces tagged ${g}`);
      const bounds = range(key(n, TAG.TRACE_BY_TAG).string(g).finish());
      return await loadIndexed(ctx, n, TAG.TRACE_BY_TAG, bounds);
    });
  }

  /**
   * The traces recorded in `[startMs, endMs)`, by a range scan of the time
   * index, in (timestamp, id) order. Bounds may be any numbers (fractions
   * and ±Infinity included); empty when `endMs <= startMs`.
   *
   * @param startMs Earliest timestamp, included, ms since the epoch.
   * @param endMs Latest timestamp, excluded.
   * @returns The traces.
   * @throws {TypeError} If a bound is not a number.
   * @throws {RangeError} If a bound is NaN.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * let now = 1_000;
   * await using db = await Database.open(undefined, { clock: () => now });
   * const run = await db.runs.create();
   * for (const t of [1_000, 2_000, 3_000]) {
   *   now = t;
   *   await run.traces.record({ kind: "thought", content: `at ${t}` });
   * }
   * const mid = await run.traces.queryByTime(1_500, 3_000);
   * assert.deepEqual(mid.map((t) => t.timestamp), [2_000]);
   * ```
   */
  async queryByTime(startMs: number, endMs: number): Promise<Trace[]> {
    const s = checkTime(startMs, "startMs");
    const e = checkTime(endMs, "endMs");
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, "query traces by time");
      // Timestamps are whole ms ≥ 0: t >= s ⇔ t >= ceil(s), t < e ⇔ t < ceil(e).
      const lo = Math.max(0, Math.ceil(s));
      const hi = Math.ceil(e);
      if (hi <= lo) return [];
      const all = range(key(n, TAG.TRACE_BY_TIME).finish());
      const bounds = {
        gte: lo > Number.MAX_SAFE_INTEGER ? all.lt : key(n, TAG.TRACE_BY_TIME).u64(lo).finish(),
        lt: hi > Number.MAX_SAFE_INTEGER ? all.lt : key(n, TAG.TRACE_BY_TIME).u64(hi).finish(),
      };
      return await loadIndexed(ctx, n, TAG.TRACE_BY_TIME, bounds);
    });
  }

  /**
   * The direct children of trace `id`, through the parent index, in
   * (timestamp, id) order (empty for a leaf or an unknown id).
   *
   * @param id The parent trace's id.
   * @returns The children.
   * @throws {TypeError} If `id` is not a non-empty string.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * const root = await run.traces.record({ kind: "thought", content: "root" });
   * await run.traces.recordChild(root, { kind: "thought", content: "a" });
   * await run.traces.recordChild(root, { kind: "thought", content: "b" });
   * assert.equal((await run.traces.children(root)).length, 2);
   * ```
   */
  async children(id: string): Promise<Trace[]> {
    const pid = checkName(id, "a trace id");
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, `list the children of trace ${pid}`);
      return await childrenOf(ctx, n, pid);
    });
  }

  /**
   * The tree under trace `rootId`, read in one transaction. Built
   * iteratively (no recursion), so any depth works.
   *
   * @param rootId The root trace's id.
   * @returns `{ trace, children }` recursively, or undefined if there is no such trace.
   * @throws {TypeError} If `rootId` is not a non-empty string.
   * @throws {RunNotFoundError} If the run does not exist.
   * @throws {CorruptionError} If the stored parent links form a cycle.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * const root = await run.traces.record({ kind: "thought", content: "root" });
   * const mid = await run.traces.recordChild(root, { kind: "thought", content: "mid" });
   * await run.traces.recordChild(mid, { kind: "thought", content: "leaf" });
   * const tree = await run.traces.tree(root);
   * assert.equal(tree?.children[0]?.children[0]?.children.length, 0);
   * ```
   */
  async tree(rootId: string): Promise<TraceTree | undefined> {
    const rid = checkName(rootId, "a trace id");
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, `read the tree of trace ${rid}`);
      const bytes = await ctx.tx.get(traceKey(n, rid));
      if (bytes === undefined) return undefined;
      const root: TraceTree = { trace: decodeTrace(bytes, rid, n), children: [] };
      const seen = new Set([rid]);
      const stack = [root];
      for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
        for (const child of await childrenOf(ctx, n, node.trace.id)) {
          if (seen.has(child.id)) {
            throw new CorruptionError(
              `Cannot read the tree of trace ${rid}: trace ${child.id} is its own ancestor`,
              { where: `trace ${child.id} of run number ${n}` },
            );
          }
          seen.add(child.id);
          const sub: TraceTree = { trace: child, children: [] };
          node.children.push(sub);
          stack.push(sub);
        }
      }
      return root;
    });
  }

  /**
   * Every trace id of the run, in key order (by UTF-8 bytes; default ids
   * are UUIDv7, so that is creation order).
   *
   * @returns The ids.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.traces.record({ kind: "thought", content: "b" }, { id: "b" });
   * await run.traces.record({ kind: "thought", content: "a" }, { id: "a" });
   * assert.deepEqual(await run.traces.list(), ["a", "b"]);
   * ```
   */
  async list(): Promise<string[]> {
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, "list traces");
      const rows = await ctx.tx.scan(range(key(n, TAG.TRACE).finish()));
      return rows.map(([k]) => {
        const r = new KeyReader(k);
        r.u32();
        r.u8();
        return r.string();
      });
    });
  }

  /**
   * How many traces the run holds (a counter kept at commit time; inside a
   * transaction it includes the transaction's own `record`s).
   *
   * @returns The count.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * const think = (content: string) => run.traces.record({ kind: "thought", content });
   * await Promise.all(["a", "b", "c"].map(think));
   * assert.equal(await run.traces.count(), 3);
   * ```
   */
  async count(): Promise<number> {
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, "count traces");
      const bytes = await ctx.tx.get(countKey(n));
      const stored = bytes === undefined ? 0 : decodeCount(bytes, n);
      return stored + (pendingCounts.get(ctx.tx)?.get(n) ?? 0);
    });
  }
}

function decodeCount(bytes: Uint8Array, n: number): number {
  let v: Value;
  try {
    v = decodeValue(bytes);
  } catch (cause) {
    throw new CorruptionError(`Cannot read the trace count: ${(cause as Error).message}`, {
      where: `trace count of run number ${n}`,
      cause,
    });
  }
  if (!Number.isSafeInteger(v) || (v as number) < 0) {
    throw new CorruptionError("Cannot read the trace count: it is not a count", {
      where: `trace count of run number ${n}`,
    });
  }
  return v as number;
}

/** The direct children of `pid`, in index order. */
function childrenOf(ctx: TxContext, n: number, pid: string): Promise<Trace[]> {
  const bounds = range(key(n, TAG.TRACE_BY_PARENT).string(pid).finish());
  return loadIndexed(ctx, n, TAG.TRACE_BY_PARENT, bounds);
}
