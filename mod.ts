/**
 * in-mem: a durable, embedded state substrate for AI agents, for Deno, Bun
 * and Node.
 *
 * Open a {@link Database} (a directory, or in memory) and give every agent
 * execution a run: inside it live a KV scratchpad ({@link KvStore}), an
 * append-only SHA-256 hash-chained event log ({@link EventLog}), versioned
 * compare-and-swap state cells ({@link StateCells}) and reasoning traces
 * ({@link TraceStore}). Any mix commits atomically in one serializable
 * transaction over a write-ahead log and survives power loss. The
 * WebAssembly core underneath — an ordered store with O(1) snapshots, CRC32C
 * and SHA-256 — is exported too, and so is the file layer: the
 * {@link FileAdapter} interface a database reads and writes through (pass
 * your own as the `fs` option), the `node:fs` adapter ({@link NodeFileAdapter})
 * and a simulated disk with power loss and fault injection ({@link SimFS})
 * for crash tests of your own.
 *
 * @example A run, its primitives, and a transaction across them
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database } from "@in-mem/core";
 *
 * await using db = await Database.open(); // or Database.open("./agent-db")
 * const run = await db.runs.create({ name: "triage" });
 * await run.transaction(async (tx) => {
 *   await tx.kv.put("task/status", "running");
 *   await tx.events.append("task_started", { task: 1 });
 *   await tx.traces.record({ kind: "thought", content: "starting" });
 * });
 * assert.equal(await run.kv.get("task/status"), "running");
 * assert.equal((await run.events.verifyChain()).valid, true);
 * ```
 *
 * @example The core: store, snapshot, scan and hash
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32c, OrderedStore, sha256Hex } from "@in-mem/core";
 *
 * const store = new OrderedStore();
 * store.put("run/1/status", "active");
 * const before = store.snapshot();
 * store.put("run/1/status", "completed");
 *
 * const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
 * assert.equal(text(before.get("run/1/status")), "active");
 * assert.equal(text(store.get("run/1/status")), "completed");
 * assert.equal([...store.prefix("run/1/")].length, 1);
 * before.release();
 * store.close();
 *
 * const abc = new TextEncoder().encode("abc");
 * assert.equal(sha256Hex(abc).slice(0, 8), "ba7816bf");
 * assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * ```
 *
 * @module
 */
export { crc32c } from "./src/core/crc32c.ts";
export { Sha256, sha256, sha256Hex } from "./src/core/sha256.ts";
export {
  type Bytes,
  type Entry,
  type EntryView,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  OrderedStore,
  prefixRange,
  type RangeOptions,
  ReadableStore,
  type StoreMemory,
  type StoreOptions,
  StoreSnapshot,
} from "./src/core/store.ts";
export {
  AlreadyExistsError,
  ClosedError,
  CorruptionError,
  DatabaseClosedError,
  InMemError,
  InvalidStateError,
  InvalidTransitionError,
  LockedError,
  NotFoundError,
  OutOfMemoryError,
  RunClosedError,
  RunNotFoundError,
  StorageError,
  TransactionConflictError,
  VersionConflictError,
} from "./src/errors.ts";
export {
  Database,
  type DatabaseOptions,
  type DatabaseStats,
  DatabaseTransaction,
  Run,
  RunTransaction,
} from "./src/db/database.ts";
export {
  type CreateRunOptions,
  DELETE_BATCH_BYTES,
  DELETE_BATCH_KEYS,
  type RunMetadata,
  type RunQuery,
  Runs,
  type RunStats,
} from "./src/db/runs.ts";
export type { RunStatus } from "./src/db/context.ts";
export {
  DEFAULT_KV_PAGE_LIMIT,
  type KvEntry,
  type KvListOptions,
  type KvPage,
  type KvPageOptions,
  type KvPutOptions,
  KvStore,
} from "./src/db/kv.ts";
export {
  type AppendResult,
  type ChainVerification,
  type Event,
  EVENT_ITERATOR_BATCH,
  EVENT_VERIFY_BATCH,
  EventLog,
  GENESIS_HASH,
  hashEvent,
} from "./src/db/events.ts";
export { type CellState, StateCells, type Transition } from "./src/db/state.ts";
export {
  type FileAdapter,
  type FileHandle,
  type FileLock,
  FsError,
  type FsErrorCode,
  type OpenOptions,
} from "./src/fs/types.ts";
export { NodeFileAdapter } from "./src/fs/node.ts";
export {
  type SimBitFlipFault,
  type SimCrashMode,
  type SimFate,
  type SimFault,
  type SimFaultCount,
  type SimFaultKind,
  type SimFaultTiming,
  SimFS,
  type SimFSOptions,
  type SimIoFault,
  type SimLatentSectorFault,
  type SimMisdirectedWriteFault,
  type SimNoSpaceFault,
  type SimOp,
  type SimPathMatcher,
  type SimPendingOp,
  type SimSectorBytes,
  type SimShortWriteFault,
  type SimStats,
  type SimSyncFault,
} from "./src/fs/sim.ts";
export type { Value } from "./src/core/codec.ts";
export {
  type CustomTrace,
  type DecisionTrace,
  type ErrorTrace,
  MAX_TRACE_TAGS,
  type QueryTrace,
  type RecordTraceOptions,
  type ThoughtTrace,
  type ToolCallTrace,
  type Trace,
  TRACE_KINDS,
  type TraceKind,
  TraceStore,
  type TraceTree,
  type TraceType,
} from "./src/db/traces.ts";
