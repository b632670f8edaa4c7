/**
 * The engine: MVCC snapshots over the ordered store and serializable
 * transactions by optimistic concurrency control (DESIGN.md decision 6),
 * with an optional WAL underneath.
 *
 * - A transaction reads from an O(1) store snapshot taken at begin, so all
 *   its reads see one version (no read skew), overlaid with its own buffered
 *   writes (read-your-writes).
 * - It records every key it read (found or not) and every range it scanned
 *   (as far as the scan went).
 * - At commit, in one synchronous step (JavaScript runs it without
 *   interleaving), it is validated against every commit that landed after
 *   its snapshot: a written key that it read, or that falls in a range it
 *   scanned (phantoms), is a conflict. Blind writes never conflict.
 * - Commit-time operations ({@link Transaction.atCommit}) run inside that
 *   step against the newest state, so an event log's sequence number and
 *   hash chain are resolved there instead of being read — 64 appenders to
 *   one log never conflict with each other.
 * - A commit becomes visible (applied to the store) when it is durable, in
 *   version order; until then later transactions validate against it from
 *   the in-memory commit log.
 * - On conflict the callback runs again (after the conflicting commits
 *   are applied, plus jittered backoff), up to `maxRetries` times; then
 *   {@link TransactionConflictError}. A callback that throws writes nothing.
 *
 * @module
 */
import {
  ClosedError,
  type InMemError,
  InvalidStateError,
  OutOfMemoryError,
  StorageError,
  TransactionConflictError,
} from "../errors.ts";
import {
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  OrderedStore,
  type RangeOptions,
  type StoreSnapshot,
  type ValueSpan,
} from "../core/store.ts";
import type { KeyWriter } from "../core/keys.ts";
import { applyPayload, encodeWrites, type Write } from "./payload.ts";
import { RunningVersions } from "./running.ts";
import { latin1String } from "../_runtime.ts";

/** Default number of re-runs of a conflicting transaction before TransactionConflictError. */
export const DEFAULT_MAX_RETRIES = 10;
/** First backoff after a conflict; doubles per retry, with full jitter. */
export const RETRY_BACKOFF_BASE_MS = 1;
/** Ceiling of one backoff. */
export const RETRY_BACKOFF_MAX_MS = 100;
/** Most distinct keys one transaction may write. */
export const MAX_TXN_KEYS = 100_000;
/**
 * How many watched keys' last write versions the engine keeps
 * ({@link Engine.watchWrites}); past it, it forgets them all and treats
 * every watched key as written at that moment (readers then look them up
 * once more). Bounds the memory of a database that creates millions of runs.
 */
export const WATCHED_WRITES_KEPT = 65_536;

/** Keys written by commits in flight past which applied ones are swept out (see #forgetApplied). */
const INFLIGHT_SWEEP_KEYS = 4096;
/** Keys in the validation index past which it is rebuilt without forgotten commits (see #prune). */
const RECENT_WRITES_REBUILD_KEYS = 4096;

/** Most bytes (keys + values) one transaction may write. */
export const MAX_TXN_BYTES: number = 32 * 1024 * 1024;

/**
 * Most standalone writes one group commit takes ({@link Engine.transactionGrouped});
 * the next one starts a new group.
 */
export const MAX_GROUP_MEMBERS = 1024;
/**
 * Bytes (keys + values) buffered in a group commit past which the next
 * standalone write starts a new group. Far below {@link MAX_TXN_BYTES}, so a
 * group never makes a write that fits alone too large.
 */
export const MAX_GROUP_BYTES: number = 4 * 1024 * 1024;

/** A key as a string of char codes 0–255: cheap to hash in a Map or Set. */
type KeyId = string;

/**
 * @internal The identity a transaction files a key under (for callers that
 * read the same key again and again: pass it to `getSync`/`viewSync`).
 *
 * @param key The key.
 * @returns Its id.
 */
export function keyIdOf(key: Uint8Array): string {
  return keyId(key);
}

function keyId(key: Uint8Array): KeyId {
  return latin1String(key);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function isThenable<T>(v: Promise<T> | T): v is Promise<T> {
  return typeof (v as { then?: unknown } | null | undefined)?.then === "function";
}

/** A scanned range, as far as the scan actually read. */
interface ReadRange {
  lo: Uint8Array | undefined;
  loInclusive: boolean;
  hi: Uint8Array | undefined;
  hiInclusive: boolean;
}

function inRange(key: Uint8Array, r: ReadRange): boolean {
  if (r.lo !== undefined) {
    const c = compareBytes(key, r.lo);
    if (c < 0 || (c === 0 && !r.loInclusive)) return false;
  }
  if (r.hi !== undefined) {
    const c = compareBytes(key, r.hi);
    if (c > 0 || (c === 0 && !r.hiInclusive)) return false;
  }
  return true;
}

/** A commit the log remembers for validating transactions that overlap it. */
interface Commit {
  version: number;
  writes: Write[];
  ids: KeyId[];
}

/** The newest write of a key by a commit not yet applied. */
interface Pending {
  version: number;
  value: Uint8Array | null;
}

/** A logged commit waiting for its turn to be applied. */
interface Ready {
  writes: Write[];
  /** The commit staged in the store (OrderedStore.stageCommit). */
  staged: number;
}

/** Bounds of a range read. */
export interface ScanOptions {
  /** Lowest key, included. */
  gte?: Uint8Array;
  /** Lowest key, excluded (overrides `gte`). */
  gt?: Uint8Array;
  /** Highest key, included. */
  lte?: Uint8Array;
  /** Highest key, excluded (overrides `lte`). */
  lt?: Uint8Array;
  /** Highest key first. */
  reverse?: boolean;
  /** At most this many entries. */
  limit?: number;
}

/** What commit-time operations read and write: the newest state. */
export interface CommitView {
  /** The version this commit gets (a KV record's version can be stamped with it). */
  readonly version: number;
  /** The newest value of `key` (committed, in flight, or written by this transaction). */
  get(key: Uint8Array): Uint8Array | undefined;
  /** The newest value of `key` before this transaction (committed or in flight). */
  previous(key: Uint8Array): Uint8Array | undefined;
  /**
   * As {@link previous}, but possibly a view into the store's memory rather
   * than a copy: read it at once, before any other call into the store, and
   * never keep it or write into it.
   */
  previousView(key: Uint8Array): Uint8Array | undefined;
  /**
   * Adds a write to the committing transaction, under the same limits as
   * {@link Transaction.put}: a RangeError fails the commit, writing nothing.
   */
  put(key: Uint8Array, value: Uint8Array): void;
  /** Adds a delete to the committing transaction (limits as {@link put}). */
  delete(key: Uint8Array): void;
}

/** Where commits go to become durable. The WAL writer implements it; `none` durability has none. */
export interface CommitLog {
  /**
   * Records a commit's writes; returns its version and when it is durable
   * (`done`: already, so `durable` is resolved).
   */
  append(payload: Uint8Array): { version: number; durable: Promise<void>; done?: boolean };
}

/** Options of {@link Engine}. */
export interface EngineOptions {
  /** Where commits become durable; none keeps everything in memory. */
  log?: CommitLog;
  /** Version of the last commit already in the store (after recovery). */
  version?: number;
  /** The store to run on (after recovery); a new one by default. */
  store?: OrderedStore;
  /** Re-runs before TransactionConflictError. Default {@link DEFAULT_MAX_RETRIES}. */
  maxRetries?: number;
  /** Source of randomness for backoff jitter, in [0, 1). Default Math.random. */
  random?: () => number;
  /** Sleep for backoff. Default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Called after each commit becomes visible, with its version. */
  onApplied?: (version: number) => void;
  /**
   * The clock that decides expiry (TTL), ms since the epoch. Default
   * `Date.now`; tests inject their own.
   */
  clock?: () => number;
  /**
   * Lets standalone writes made in one turn of the event loop share a
   * commit ({@link Engine.transactionGrouped}). Off by default; the database
   * turns it on for `strict` durability, where a commit waits for an fsync
   * anyway.
   */
  groupCommits?: boolean;
}

/** The standalone writes sharing one commit (see {@link Engine.transactionGrouped}). */
interface Group {
  readonly tx: Transaction;
  readonly members: GroupMember[];
  /** Its commit step ran (at the end of the turn, or earlier at close). */
  done: boolean;
}

/** One standalone write in a {@link Group}: its body, what it returned, its caller's promise. */
interface GroupMember {
  readonly fn: (tx: Transaction) => unknown;
  readonly result: unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

/** Options of one {@link Engine.transaction} call. */
export interface TransactionOptions {
  /** Re-runs before TransactionConflictError, for this call. */
  maxRetries?: number;
}

/** Thrown inside the engine when validation fails; retried, never seen by users. */
class Conflict extends Error {
  override name = "Conflict";
}

/**
 * One attempt of a transaction. Reads see one snapshot plus this
 * transaction's own writes. The snapshot is taken at the first read (or when
 * `startVersion` is asked): a transaction that only writes never needs one.
 * Every method throws InvalidStateError once the attempt is over (committed,
 * failed or retried).
 */
/** See {@link SyncReads.visitSync}. */
export type Visit = (
  keys: Uint8Array,
  keyStart: number,
  keyEnd: number,
  values: Uint8Array,
  valueStart: number,
  valueEnd: number,
) => boolean | void;

/**
 * Synchronous reads of one consistent state: a {@link Transaction}'s (its
 * own writes over its snapshot, recorded in its read set), or the latest
 * applied state ({@link Engine.latest}). A read that finishes within one
 * synchronous step of the latest state sees exactly the commits applied
 * before it: commits are applied whole, each in one synchronous step.
 */
export interface SyncReads {
  /**
   * The value of `key` as a copy, or undefined.
   *
   * @param key The key.
   * @param id `keyIdOf(key)`, if the caller has it.
   */
  getSync(key: Uint8Array, id?: string): Uint8Array | undefined;
  /**
   * The value of `key` as a view valid until the next store write (decode it
   * at once; never keep it), or undefined.
   *
   * @param key The key.
   * @param id `keyIdOf(key)`, if the caller has it.
   */
  viewSync(key: Uint8Array, id?: string): Uint8Array | undefined;
  /**
   * {@link viewSync} of the key a writer holds, for the hottest reads: the
   * latest state's reads copy it straight into the store and point the span
   * into the store's memory, making no key and no view.
   *
   * @param key Holds the key; the call empties it.
   * @returns Where the value lies, `bytes[start, end)`, or undefined: a span
   *   these reads own and reuse on their next call, valid until the next
   *   store write (decode it at once). Owned by these reads, it keeps
   *   nothing alive beyond them.
   */
  locateSync(key: KeyWriter): ValueSpan | undefined;
  /**
   * Visits the entries in a range, in order, as ranges of byte arrays valid
   * only during the call (decode or copy them there; never keep or write
   * them): the key is `keys[keyStart, keyEnd)`, the value
   * `values[valueStart, valueEnd)` — for the latest state both are the
   * store's memory, so no view is made per entry. Reads like
   * `Transaction.scanSync`, without its copies.
   *
   * @param options Bounds, direction, limit.
   * @param visit Called per entry; returning false stops the walk.
   * @returns How many entries were visited.
   */
  visitSync(options: ScanOptions, visit: Visit): number;
  /** The applied version these reads see (a transaction takes its snapshot now if it has none). */
  readonly readVersion: number;
  /**
   * Counts `key` as read without reading it, for a caller that knows its
   * value at {@link readVersion} (see `Engine.lastWriteOf`). False when it
   * cannot (the transaction wrote the key itself): read it then.
   *
   * @param key The key.
   * @param id `keyIdOf(key)`.
   */
  noteRead(key: Uint8Array, id: string): boolean;
}

export class Transaction implements SyncReads {
  readonly #engine: Engine;
  readonly #open: () => { snap: StoreSnapshot; version: number };
  #snap: StoreSnapshot | undefined;
  #start = -1;
  readonly #writes = new Map<KeyId, Write>();
  #writeBytes = 0;
  // Made on first use: a one-put transaction never allocates them.
  #readKeys: Set<KeyId> | undefined;
  #readRanges: ReadRange[] | undefined;
  #span: ValueSpan | undefined; // locateSync's, made on first use
  #atCommit: ((view: CommitView) => void)[] | undefined;
  #done = false;
  // The savepoint (see mark): the write each buffered key replaced, as
  // (id, previous) pairs in #undo[0, #undoLength), while one is set. A
  // length of our own: a group marks once per member, and setting an
  // array's length is a runtime call (about 1.6% of a 64-writer strict
  // round in a Node profile).
  #undo: (KeyId | Write | undefined)[] | undefined;
  #undoLength = 0;
  #markBytes = 0;
  #markOps = 0;
  /** @internal Per-transaction state of the layer above (the database's context for a group). */
  attached: unknown = undefined;

  /** @internal Use {@link Engine.transaction}. */
  constructor(engine: Engine, open: () => { snap: StoreSnapshot; version: number }) {
    this.#engine = engine;
    this.#open = open;
  }

  /** The snapshot, taken now if this is the first read. */
  #snapshot(): StoreSnapshot {
    if (this.#snap === undefined) {
      const { snap, version } = this.#open();
      this.#snap = snap;
      this.#start = version;
    }
    return this.#snap;
  }

  /** The applied version this transaction's reads see (takes the snapshot if not yet taken). */
  get startVersion(): number {
    this.#snapshot();
    return this.#start;
  }

  /** @internal {@link startVersion}, as {@link SyncReads.readVersion}. */
  get readVersion(): number {
    return this.startVersion;
  }

  /** @internal See {@link SyncReads.noteRead}. */
  noteRead(_key: Uint8Array, id: KeyId): boolean {
    this.#live("get");
    if (this.#writes.has(id)) return false;
    this.#snapshot();
    (this.#readKeys ??= new Set()).add(id);
    return true;
  }

  /** @internal The snapshot's version, or -1 when no snapshot was taken. */
  get snapshotVersion(): number {
    return this.#start;
  }

  #live(what: string): void {
    if (this.#done) {
      throw new InvalidStateError(
        `Cannot ${what}: the transaction is over (committed, failed or retried)`,
      );
    }
  }

  /**
   * Reads `key`: this transaction's own write if any, else the snapshot.
   *
   * @param key The key.
   * @returns The value, or undefined.
   */
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.#live("get");
    return Promise.resolve(this.getSync(key));
  }

  /** @internal The synchronous read behind {@link get}. */
  getSync(key: Uint8Array, id: KeyId = keyId(key)): Uint8Array | undefined {
    const own = this.#ownOrRead(id);
    return own !== undefined ? own.value ?? undefined : this.#snapshot().get(key);
  }

  /** @internal {@link getSync} without the copy: a view to decode at once (see {@link SyncReads.viewSync}). */
  viewSync(key: Uint8Array, id: KeyId = keyId(key)): Uint8Array | undefined {
    const own = this.#ownOrRead(id);
    return own !== undefined ? own.value ?? undefined : this.#snapshot().getView(key);
  }

  /** @internal {@link viewSync} of the key `key` holds (see {@link SyncReads.locateSync}). */
  locateSync(key: KeyWriter): ValueSpan | undefined {
    // The read set needs the key's id, so the key is made whole here.
    const v = this.viewSync(key.finish());
    if (v === undefined) return undefined;
    const span = this.#span ??= { bytes: v, start: 0, end: 0 };
    span.bytes = v;
    span.end = v.length;
    return span;
  }

  /** This transaction's write of key `id`, or undefined after joining the key to the read set. */
  #ownOrRead(id: KeyId): Write | undefined {
    this.#live("get");
    const own = this.#writes.get(id);
    if (own === undefined) (this.#readKeys ??= new Set()).add(id);
    return own;
  }

  /**
   * Reads the entries in a range, merging this transaction's own writes.
   * The range, as far as the scan got, joins the read set (phantom
   * protection).
   *
   * @param options Bounds, direction, limit.
   * @returns The entries as copies, in order.
   */
  scan(options: ScanOptions = {}): Promise<[Uint8Array, Uint8Array][]> {
    this.#live("scan");
    return Promise.resolve(this.scanSync(options));
  }

  /** @internal The synchronous scan behind {@link scan}. */
  scanSync(options: ScanOptions = {}): [Uint8Array, Uint8Array][] {
    this.#live("scan");
    const reverse = options.reverse === true;
    const limit = options.limit ?? Infinity;
    const range: ReadRange = {
      lo: options.gt ?? options.gte,
      loInclusive: options.gt === undefined,
      hi: options.lt ?? options.lte,
      hiInclusive: options.lt === undefined,
    };
    // Own writes in range, sorted in the walking direction, merged with the
    // snapshot's entries; an own write replaces (or, a delete, hides) the
    // stored entry with its key.
    const own = [...this.#writes.values()].filter((w) => inRange(w.key, range));
    own.sort((a, b) => reverse ? compareBytes(b.key, a.key) : compareBytes(a.key, b.key));
    const stored = this.#snapshot().entries(storeBounds(options));
    const out: [Uint8Array, Uint8Array][] = [];
    let next = stored.next();
    let oi = 0;
    while (out.length < limit) {
      const o = own[oi];
      if (next.done === true && o === undefined) break;
      const c = o === undefined ? 1 : next.done === true ? -1 : compareBytes(o.key, next.value[0]);
      if (o !== undefined && (reverse ? c > 0 : c < 0) || (o !== undefined && next.done === true)) {
        if (o.value !== null) out.push([o.key.slice(), o.value.slice()]);
        oi++;
      } else if (o !== undefined && c === 0) {
        if (o.value !== null) out.push([o.key.slice(), o.value.slice()]);
        oi++;
        next = stored.next();
      } else if (next.done !== true) {
        out.push(next.value);
        next = stored.next();
      }
    }
    stored.return?.();
    const more = out.length < limit;
    // Record what was read: the whole range, or up to the last key returned
    // when the limit cut the scan short.
    if (!more && out.length > 0) {
      const last = out[out.length - 1]![0];
      if (reverse) {
        range.lo = last;
        range.loInclusive = true;
      } else {
        range.hi = last;
        range.hiInclusive = true;
      }
    }
    (this.#readRanges ??= []).push(range);
    return out;
  }

  /** @internal {@link scanSync}, one entry at a time (see {@link SyncReads.visitSync}). */
  visitSync(options: ScanOptions, visit: Visit): number {
    const rows = this.scanSync(options);
    for (let i = 0; i < rows.length; i++) {
      const [k, v] = rows[i]!;
      if (visit(k, 0, k.length, v, 0, v.length) === false) return i + 1;
    }
    return rows.length;
  }

  /**
   * Buffers a write of `key`. The transaction keeps `key` and `value` as
   * they are (no copy): do not modify them afterwards.
   *
   * @param key The key (≤ MAX_KEY_BYTES).
   * @param value The value (≤ MAX_VALUE_BYTES).
   * @throws {RangeError} If a limit is exceeded; nothing is buffered then.
   */
  put(key: Uint8Array, value: Uint8Array): void {
    this.#live("put");
    this.#buffer(key, value);
  }

  /**
   * Buffers a delete of `key`.
   *
   * @param key The key.
   * @throws {RangeError} If a limit is exceeded.
   */
  delete(key: Uint8Array): void {
    this.#live("delete");
    this.#buffer(key, null);
  }

  #buffer(key: Uint8Array, value: Uint8Array | null): void {
    if (key.length > MAX_KEY_BYTES) {
      throw new RangeError(
        `Cannot write: key is ${key.length} bytes, over MAX_KEY_BYTES (${MAX_KEY_BYTES})`,
      );
    }
    if (value !== null && value.length > MAX_VALUE_BYTES) {
      throw new RangeError(
        `Cannot write: value is ${value.length} bytes, over MAX_VALUE_BYTES (${MAX_VALUE_BYTES})`,
      );
    }
    const id = keyId(key);
    const old = this.#writes.get(id);
    const bytes = key.length + (value?.length ?? 0);
    const total = this.#writeBytes -
      (old === undefined ? 0 : old.key.length + (old.value?.length ?? 0)) + bytes;
    if (old === undefined && this.#writes.size >= MAX_TXN_KEYS) {
      throw new RangeError(
        `Cannot write: the transaction already writes MAX_TXN_KEYS (${MAX_TXN_KEYS}) keys`,
      );
    }
    if (total > MAX_TXN_BYTES) {
      throw new RangeError(
        `Cannot write: the transaction would write ${total} bytes, over MAX_TXN_BYTES (${MAX_TXN_BYTES})`,
      );
    }
    // The transaction keeps the caller's arrays (no copy): callers hand over
    // fresh encodings and must not change them afterwards.
    const undo = this.#undo;
    if (undo !== undefined) {
      undo[this.#undoLength++] = id;
      undo[this.#undoLength++] = old;
    }
    this.#writes.set(id, { key, value });
    this.#writeBytes = total;
  }

  /** @internal Bytes (keys + values) of the buffered writes. */
  get writeBytes(): number {
    return this.#writeBytes;
  }

  /**
   * @internal Sets the savepoint {@link rollback} returns to: the writes
   * and commit-time operations buffered so far. One at a time; a new mark
   * replaces the last. Reads stay recorded either way (validating more than
   * was needed is safe).
   */
  mark(): void {
    this.#undo ??= [];
    this.#undoLength = 0;
    this.#markBytes = this.#writeBytes;
    this.#markOps = this.#atCommit?.length ?? 0;
  }

  /** @internal Drops every write and commit-time operation buffered since {@link mark}. */
  rollback(): void {
    const undo = this.#undo;
    if (undo === undefined) throw new InvalidStateError("Cannot roll back: no savepoint is set");
    for (let i = this.#undoLength - 2; i >= 0; i -= 2) {
      const id = undo[i] as KeyId;
      const old = undo[i + 1] as Write | undefined;
      if (old === undefined) this.#writes.delete(id);
      else this.#writes.set(id, old);
    }
    // Slots past the length may still hold writes: they go with the transaction.
    this.#undoLength = 0;
    this.#writeBytes = this.#markBytes;
    if (this.#atCommit !== undefined) this.#atCommit.length = this.#markOps;
  }

  /**
   * Registers an operation to run inside the commit step, after validation,
   * against the newest state (including commits not yet durable). What it
   * reads is not validated — it cannot be stale — so use it for values
   * derived at commit time (sequence numbers, hash chains). It must be
   * synchronous and must not throw for expected conditions.
   *
   * @param op Reads and writes through the {@link CommitView}.
   */
  atCommit(op: (view: CommitView) => void): void {
    this.#live("register a commit-time operation");
    (this.#atCommit ??= []).push(op);
  }

  /** @internal */
  get writes(): Map<KeyId, Write> {
    return this.#writes;
  }
  /** @internal Keys read, or undefined when none was. */
  get readKeys(): Set<KeyId> | undefined {
    return this.#readKeys;
  }
  /** @internal Ranges scanned, or undefined when none was. */
  get readRanges(): ReadRange[] | undefined {
    return this.#readRanges;
  }
  /** @internal Commit-time operations, or undefined when none was registered. */
  get commitOps(): ((view: CommitView) => void)[] | undefined {
    return this.#atCommit;
  }
  /**
   * @internal Ends the attempt and releases its snapshot.
   *
   * @returns True the first time, false once it had ended.
   */
  finish(): boolean {
    if (this.#done) return false;
    this.#done = true;
    this.#snap?.release();
    return true;
  }
  /** @internal */
  get engine(): Engine {
    return this.#engine;
  }
}

/** {@link Engine.latest}: reads straight from the store, with no snapshot and no read set. */
class LatestReads implements SyncReads {
  readonly #store: OrderedStore;
  readonly #version: () => number;
  readonly #span: ValueSpan = { bytes: new Uint8Array(0), start: 0, end: 0 };

  constructor(store: OrderedStore, version: () => number) {
    this.#store = store;
    this.#version = version;
  }

  get readVersion(): number {
    return this.#version();
  }

  noteRead(): boolean {
    return true; // nothing to record: no transaction
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.#store.get(key);
  }

  viewSync(key: Uint8Array): Uint8Array | undefined {
    return this.#store.getView(key);
  }

  locateSync(key: KeyWriter): ValueSpan | undefined {
    return this.#store.locate(key, this.#span) ? this.#span : undefined;
  }

  visitSync(options: ScanOptions, visit: Visit): number {
    const bounds = storeBounds(options);
    if (options.limit !== undefined) bounds.limit = options.limit;
    return this.#store.scan(
      bounds,
      (e) => visit(e.memory, e.keyStart, e.keyEnd, e.memory, e.valueStart, e.valueEnd),
    );
  }
}

/** The store range of scan options (their limit left to the caller). */
function storeBounds(options: ScanOptions): RangeOptions {
  const bounds: RangeOptions = { reverse: options.reverse === true };
  if (options.gt !== undefined) bounds.gt = options.gt;
  else if (options.gte !== undefined) bounds.gte = options.gte;
  if (options.lt !== undefined) bounds.lt = options.lt;
  else if (options.lte !== undefined) bounds.lte = options.lte;
  return bounds;
}

/** The {@link CommitView} of one commit (a class: no closures per commit). */
class View implements CommitView {
  readonly #tx: Transaction;
  readonly #inflight: () => Map<KeyId, Pending>;
  readonly #store: OrderedStore;
  readonly version: number;

  constructor(
    tx: Transaction,
    inflight: () => Map<KeyId, Pending>,
    store: OrderedStore,
    version: number,
  ) {
    this.#tx = tx;
    this.#inflight = inflight;
    this.#store = store;
    this.version = version;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const own = this.#tx.writes.get(keyId(key));
    return own !== undefined ? own.value ?? undefined : this.previous(key);
  }

  previous(key: Uint8Array): Uint8Array | undefined {
    const inflight = this.#inflight();
    if (inflight.size > 0) {
      const pending = inflight.get(keyId(key));
      if (pending !== undefined) return pending.value ?? undefined;
    }
    return this.#store.get(key);
  }

  previousView(key: Uint8Array): Uint8Array | undefined {
    const inflight = this.#inflight();
    if (inflight.size > 0) {
      const pending = inflight.get(keyId(key));
      if (pending !== undefined) return pending.value ?? undefined;
    }
    return this.#store.getView(key);
  }

  // Through the transaction: the same limits (key and value size,
  // MAX_TXN_KEYS, MAX_TXN_BYTES) as the body's writes. A RangeError here
  // fails the commit before anything is staged or logged.
  put(key: Uint8Array, value: Uint8Array): void {
    this.#tx.put(key, value);
  }

  delete(key: Uint8Array): void {
    this.#tx.delete(key);
  }
}

/**
 * The transactional engine over one ordered store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Engine } from "./engine.ts";
 *
 * const engine = new Engine();
 * const k = new TextEncoder().encode("counter");
 * for (let i = 0; i < 3; i++) {
 *   await engine.transaction(async (tx) => {
 *     const v = (await tx.get(k))?.[0] ?? 0;
 *     tx.put(k, new Uint8Array([v + 1]));
 *   });
 * }
 * assert.equal(engine.store.get(k)?.[0], 3);
 * await engine.close();
 * ```
 */
export class Engine {
  readonly store: OrderedStore;
  readonly #log: CommitLog | undefined;
  readonly #maxRetries: number;
  readonly #random: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #onApplied: ((version: number) => void) | undefined;
  readonly #clock: () => number;
  /** Last version applied to the store (visible to new snapshots). */
  #applied: number;
  /** Last version assigned to a commit (applied or in flight). */
  #assigned: number;
  /** Commits after the oldest running transaction's snapshot, for validation. */
  #recent: Commit[] = [];
  /**
   * The newest version that wrote each key among #recent's commits up to
   * #indexedThrough (and perhaps some forgotten ones, see #prune): what key
   * reads are validated against, one lookup per key read. Filled when a
   * validation needs it (#recentIndex), not per commit: most commits (a
   * group of standalone writes, say) are applied and forgotten before any
   * transaction that read keys validates against them.
   */
  readonly #recentWrites = new Map<KeyId, number>();
  /** #recent's commits up to this version are in #recentWrites. */
  #indexedThrough = 0;
  /** #recentWrites's size past which #prune rebuilds it from #recent. */
  #recentWritesRebuildAt = RECENT_WRITES_REBUILD_KEYS;
  /** Start versions of running transactions, with how many run at each. */
  readonly #running = new RunningVersions();
  /**
   * Newest value per key written by a commit not yet applied (commit-time
   * reads see them), and possibly by some already applied (see
   * #forgetApplied): the pending commits up to #inflightThrough, entered
   * when a commit-time read asks (#pendingWrites), not per commit.
   */
  readonly #inflight = new Map<KeyId, Pending>();
  /** The commits not yet applied up to this version are in #inflight. */
  #inflightThrough = 0;
  /** #inflight's size that triggers a sweep of applied entries. */
  #inflightSweepAt = INFLIGHT_SWEEP_KEYS;
  readonly #latest: LatestReads;
  /** Keys under this prefix have their last applied write's version kept (see {@link lastWriteOf}). */
  #watched: Uint8Array | undefined;
  readonly #lastWrite = new Map<KeyId, number>();
  /** A version no forgotten write of a watched key is newer than (see WATCHED_WRITES_KEPT). */
  #lastWriteFloor = 0;
  /** Durable commits waiting for their turn to be applied, by version. */
  readonly #ready = new Map<number, Ready>();
  #lastDurable: Promise<void> = Promise.resolve();
  #failed: InMemError | undefined;
  /** Set when a commit could not be applied to the store: nothing is read or written after. */
  #broken: InMemError | undefined;
  #closed = false;
  #stats = { commits: 0, conflicts: 0, retries: 0 };
  readonly #grouping: boolean;
  /** The group standalone writes join until its commit step, at the end of this turn. */
  #group: Group | undefined;

  /**
   * @param options The commit log, the recovered store and version, retry policy.
   * @throws {RangeError} If `maxRetries` is negative.
   */
  constructor(options: EngineOptions = {}) {
    this.store = options.store ?? new OrderedStore();
    this.#latest = new LatestReads(this.store, () => this.#applied);
    this.#log = options.log;
    this.#applied = options.version ?? 0;
    this.#assigned = this.#applied;
    this.#maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    if (!(this.#maxRetries >= 0)) {
      throw new RangeError(`Cannot create the engine: maxRetries must be >= 0`);
    }
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#onApplied = options.onApplied;
    this.#clock = options.clock ?? Date.now;
    this.#grouping = options.groupCommits === true && this.#log !== undefined;
  }

  /**
   * The time by the engine's clock ({@link EngineOptions.clock}), ms since
   * the epoch: what expiry is judged against.
   *
   * @returns The current time.
   */
  now(): number {
    return this.#clock();
  }

  /**
   * @internal Makes the error a transaction on the closed engine rejects
   * with; its owner may say what was closed (the database does).
   *
   * @returns The error.
   */
  closedError: (cause?: unknown) => ClosedError = (cause) =>
    new ClosedError("Cannot run a transaction: the engine is closed", { cause });

  /** What a body's error becomes: a ClosedError met after close is {@link closedError}'s. */
  #bodyError(err: unknown): unknown {
    return this.#closed && err instanceof ClosedError ? this.closedError(err) : err;
  }

  /**
   * Synchronous reads of the latest applied state, for read-only work that
   * finishes in one synchronous step: no snapshot is taken and nothing is
   * recorded (there is nothing to validate). What such a step reads is one
   * consistent state — the same a transaction started at that moment would
   * see — because commits are applied whole, each in one synchronous step.
   * Never hold a read across an `await`: it would mix states.
   *
   * @throws {ClosedError} When the engine is closed.
   */
  get latest(): SyncReads {
    if (this.#closed) throw new ClosedError("Cannot read: the engine is closed");
    if (this.#broken !== undefined) throw this.#broken;
    return this.#latest;
  }

  /**
   * From now on, keep the version of the last applied write (put or delete)
   * of every key under `prefix`, for {@link lastWriteOf}. For small, hot,
   * rarely written sets of keys (a database's run records): a reader that
   * decoded such a key's value at version V knows it is still the value at
   * any version ≥ V as long as the key's last write is ≤ V.
   *
   * @param prefix The key prefix (one per engine; a second call replaces it).
   */
  watchWrites(prefix: Uint8Array): void {
    this.#watched = prefix.slice();
  }

  /**
   * The version of the last write of `key` applied since
   * {@link watchWrites} was called (0 if none). Only for watched keys.
   *
   * @param id `keyIdOf(key)`.
   * @returns The version.
   */
  lastWriteOf(id: string): number {
    return this.#lastWrite.get(id) ?? this.#lastWriteFloor;
  }

  /** Notes the watched keys among a commit's writes (when applied). */
  #noteWrites(version: number, writes: Write[]): void {
    const prefix = this.#watched!;
    const n = prefix.length;
    for (let i = 0; i < writes.length; i++) {
      const key = writes[i]!.key;
      if (key.length < n) continue;
      let j = 0;
      while (j < n && key[j] === prefix[j]) j++;
      if (j === n) {
        if (this.#lastWrite.size >= WATCHED_WRITES_KEPT) {
          // Forget them all; every key not written since reads as written
          // now, which only makes readers look it up again.
          this.#lastWrite.clear();
          this.#lastWriteFloor = version;
        }
        this.#lastWrite.set(keyId(key), version);
      }
    }
  }

  /** The last version visible to new transactions. */
  get version(): number {
    return this.#applied;
  }

  /** Counters: commits, conflicts seen, retries run. */
  get stats(): { commits: number; conflicts: number; retries: number } {
    return { ...this.#stats };
  }

  /**
   * Runs `fn` as a serializable transaction and commits its writes
   * atomically; re-runs it on conflict.
   *
   * @param fn The transaction body. It may run more than once; anything it
   *   does outside `tx` must be safe to repeat.
   * @param options Per-call retry limit.
   * @returns What `fn` returned, once the commit is durable and visible.
   * @throws {TransactionConflictError} When every attempt conflicted.
   * @throws {StorageError} When the commit log failed (the engine then refuses writes).
   * @throws {ClosedError} When the engine is closed.
   * @throws Whatever `fn` throws (nothing is written then).
   */
  transaction<T>(
    fn: (tx: Transaction) => Promise<T> | T,
    options: TransactionOptions = {},
  ): Promise<T> {
    // The first attempt of a synchronous body runs here, with no async
    // frame: a commit applied in the commit step costs no turn of the
    // microtask queue. Anything else continues in #attempts.
    if (this.#closed) {
      return Promise.reject(this.closedError());
    }
    let tx: Transaction;
    try {
      tx = this.#begin(); // throws when the engine broke, or the snapshot does not fit
    } catch (err) {
      return Promise.reject(err);
    }
    let r: Promise<T> | T;
    try {
      r = fn(tx);
    } catch (err) {
      this.#end(tx);
      return Promise.reject(this.#bodyError(err));
    }
    if (isThenable(r)) return this.#attempts(fn, options, { tx, pending: r });
    try {
      const durable = this.#commit(tx);
      if (durable === undefined) return Promise.resolve(r as T);
      const result = r as T;
      return durable.then(() => result);
    } catch (err) {
      return err instanceof Conflict
        ? this.#attempts(fn, options, { conflict: err })
        : Promise.reject(err);
    }
  }

  /**
   * Runs the synchronous `fn` as a standalone write that may share its
   * commit with the other standalone writes of this turn of the event loop
   * (with {@link EngineOptions.groupCommits}; else it is
   * {@link transaction}).
   *
   * `fn` runs now, in a transaction it shares with the writes made before
   * it in this turn, and sees theirs; their commit step runs once this turn
   * is over (a microtask), as one commit: one validation, one log record,
   * one fsync. Together they are what one transaction running the bodies one
   * after another would be — serializable, atomic, durable as the log's
   * mode says — and each caller's promise settles when that commit is
   * durable and visible, with what its body returned.
   *
   * - A body that throws undoes its own writes only (a savepoint) and
   *   rejects its caller. One that throws a RangeError (a limit) in a group
   *   that held other writes is first run once more in a group of its own,
   *   so a limit only the group as a whole crossed never fails it.
   * - A group whose validation fails re-runs each body as a
   *   {@link transaction} of its own (with its retries and backoff).
   * - A failure of the commit step (the store's memory, the log) rejects
   *   every caller in the group with it.
   * - A group takes at most {@link MAX_GROUP_MEMBERS} bodies, and none once
   *   it buffers {@link MAX_GROUP_BYTES}.
   *
   * @param fn The body; synchronous, and safe to run more than once.
   * @returns What `fn` returned, once the commit is durable and visible.
   * @throws Whatever `fn` throws (nothing of it is written then).
   */
  transactionGrouped<T>(fn: (tx: Transaction) => T): Promise<T> {
    if (!this.#grouping) return this.transaction(fn);
    if (this.#closed) return Promise.reject(this.closedError());
    let g = this.#group;
    if (
      g === undefined || g.members.length >= MAX_GROUP_MEMBERS ||
      g.tx.writeBytes >= MAX_GROUP_BYTES
    ) {
      let tx: Transaction;
      try {
        tx = this.#begin();
      } catch (err) {
        return Promise.reject(err);
      }
      const group: Group = { tx, members: [], done: false };
      this.#group = g = group;
      queueMicrotask(() => this.#commitGroup(group));
    }
    const tx = g.tx;
    tx.mark();
    let result: T;
    try {
      result = fn(tx);
      if (isThenable(result)) {
        throw new TypeError("Cannot group a write: its body returned a promise");
      }
    } catch (err) {
      tx.rollback();
      if (g.members.length === 0 || !(err instanceof RangeError)) {
        return Promise.reject(this.#bodyError(err));
      }
      // A limit (MAX_TXN_KEYS, MAX_TXN_BYTES) perhaps only the group as a
      // whole crossed: once more, in a group of its own.
      this.#group = undefined;
      return this.transactionGrouped(fn);
    }
    return new Promise<T>((resolve, reject) => {
      g.members.push({ fn, result, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  /** The commit step of a group: at the end of the turn its writes were made in, or at close. */
  #commitGroup(g: Group): void {
    if (g.done) return;
    g.done = true;
    if (this.#group === g) this.#group = undefined;
    const members = g.members;
    if (members.length === 0) {
      this.#end(g.tx);
      return;
    }
    let durable: Promise<void> | undefined;
    try {
      durable = this.#commit(g.tx);
    } catch (err) {
      if (!(err instanceof Conflict)) {
        for (const m of members) m.reject(err);
        return;
      }
      this.#stats.conflicts++;
      // Each on its own, with the usual retries and backoff.
      for (const m of members) this.transaction(m.fn).then(m.resolve, m.reject);
      return;
    }
    if (durable === undefined) {
      for (const m of members) m.resolve(m.result);
      return;
    }
    durable.then(
      () => {
        for (const m of members) m.resolve(m.result);
      },
      (err) => {
        for (const m of members) m.reject(err);
      },
    );
  }

  /** The attempts of {@link transaction} from where its first one got to. */
  async #attempts<T>(
    fn: (tx: Transaction) => Promise<T> | T,
    options: TransactionOptions,
    first: { tx: Transaction; pending: Promise<T> } | { conflict: Conflict },
  ): Promise<T> {
    const maxRetries = options.maxRetries ?? this.#maxRetries;
    for (let attempt = 0;; attempt++) {
      let err: unknown;
      if (attempt === 0 && "conflict" in first) err = first.conflict;
      else {
        let tx: Transaction;
        let r: Promise<T> | T;
        if (attempt === 0 && "tx" in first) {
          tx = first.tx;
          r = first.pending;
        } else {
          if (this.#closed) throw this.closedError();
          tx = this.#begin();
          try {
            r = fn(tx);
          } catch (e) {
            this.#end(tx);
            throw this.#bodyError(e);
          }
        }
        let result: T;
        try {
          // A synchronous body costs no extra turn of the microtask queue.
          result = isThenable(r) ? await r : r as T;
        } catch (e) {
          this.#end(tx);
          throw this.#bodyError(e);
        }
        try {
          const durable = this.#commit(tx);
          if (durable !== undefined) await durable;
          return result;
        } catch (e) {
          err = e;
        }
      }
      if (!(err instanceof Conflict)) throw err;
      this.#stats.conflicts++;
      if (attempt >= maxRetries) {
        throw new TransactionConflictError(
          `Cannot commit: the transaction conflicted on all ${attempt + 1} attempts`,
          { attempts: attempt + 1, cause: err },
        );
      }
      this.#stats.retries++;
      // Let the commits it collided with become visible, then back off.
      await this.#lastDurable.catch(() => {});
      const cap = Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_BASE_MS * 2 ** attempt);
      await this.#sleep(this.#random() * cap);
    }
  }

  #begin(): Transaction {
    if (this.#broken !== undefined) throw this.#broken;
    return new Transaction(this, this.#openSnapshot);
  }

  /** Takes a transaction's snapshot and counts it as running (for pruning). */
  readonly #openSnapshot = (): { snap: StoreSnapshot; version: number } => {
    const version = this.#applied;
    this.#running.add(version);
    return { snap: this.store.snapshotUntracked(), version };
  };

  #end(tx: Transaction): void {
    const start = tx.snapshotVersion;
    // Counted once: a second end of the same attempt changes nothing.
    if (tx.finish() && start >= 0) this.#running.remove(start);
    if (this.#recent.length > 0) this.#prune();
  }

  /** Keeps a commit for the validation of transactions that overlap it. */
  #remember(commit: Commit): void {
    this.#recent.push(commit);
  }

  /** #recentWrites, with every commit in #recent entered. */
  #recentIndex(): Map<KeyId, number> {
    const recent = this.#recent;
    const from = this.#recentAfter(this.#indexedThrough);
    if (from < recent.length) {
      for (let j = from; j < recent.length; j++) this.#index(recent[j]!);
      this.#indexedThrough = recent[recent.length - 1]!.version;
    }
    return this.#recentWrites;
  }

  /**
   * #inflight, with every commit not yet applied entered (they are all in
   * #recent: #prune keeps the commits after the applied version).
   */
  readonly #pendingWrites = (): Map<KeyId, Pending> => {
    const recent = this.#recent;
    const from = this.#recentAfter(Math.max(this.#inflightThrough, this.#applied));
    if (from < recent.length) {
      const inflight = this.#inflight;
      for (let j = from; j < recent.length; j++) {
        const { version, writes, ids } = recent[j]!;
        for (let i = 0; i < writes.length; i++) {
          inflight.set(ids[i]!, { version, value: writes[i]!.value });
        }
      }
      this.#inflightThrough = recent[recent.length - 1]!.version;
    }
    return this.#inflight;
  };

  /** Index of #recent's first commit after `version` (#recent is in version order; its length if none). */
  #recentAfter(version: number): number {
    const recent = this.#recent;
    let j = recent.length;
    while (j > 0 && recent[j - 1]!.version > version) j--;
    return j;
  }

  /** Enters a commit's keys in #recentWrites. */
  #index(commit: Commit): void {
    const index = this.#recentWrites;
    for (let i = 0; i < commit.ids.length; i++) index.set(commit.ids[i]!, commit.version);
  }

  /** Forgets commits no running transaction can overlap any more. */
  #prune(): void {
    const oldest = this.#running.oldest() ?? this.#applied;
    let drop = 0;
    while (drop < this.#recent.length && this.#recent[drop]!.version <= oldest) drop++;
    if (drop === 0) return;
    this.#recent.splice(0, drop);
    // The index keeps the entries of forgotten commits (older than every
    // running snapshot, they match no validation) until it is emptied, or
    // rebuilt from #recent when it has grown large.
    const index = this.#recentWrites;
    if (this.#recent.length === 0) {
      if (index.size > 0) index.clear();
    } else if (index.size >= this.#recentWritesRebuildAt) {
      index.clear();
      this.#indexedThrough = 0; // #recentIndex enters #recent's commits again
      this.#recentIndex();
      this.#recentWritesRebuildAt = Math.max(RECENT_WRITES_REBUILD_KEYS, 2 * index.size);
    }
  }

  /**
   * The commit step: synchronous from validation to log append, so no other
   * commit can interleave. Returns the promise of durability and visibility,
   * or undefined for a read-only transaction.
   */
  #commit(tx: Transaction): Promise<void> | undefined {
    let ended = false;
    try {
      const ops = tx.commitOps;
      // A read-only transaction commits nothing: reads go on after a failure.
      if (tx.writes.size === 0 && ops === undefined) return undefined;
      if (this.#failed !== undefined) throw this.#failed;
      this.#validate(tx);
      // A transaction with commit-time operations takes a version even if
      // they wrote nothing: they observed the state at that version.
      if (ops !== undefined) this.#runCommitOps(tx, ops);
      const writes = Array.from(tx.writes.values());
      const payload = encodeWrites(writes);
      // The store sets the memory for the commit aside before it is logged:
      // once logged it must be applied. Refused here, nothing has happened.
      const staged = this.store.stageCommit(payload);
      // Its reads are over: release the snapshot before the writes reach the
      // store, which then updates its nodes in place instead of copying the
      // paths the snapshot shares.
      ended = true;
      this.#end(tx);
      this.#stats.commits++;
      if (this.#log === undefined) {
        return this.#applyNow(tx, ++this.#assigned, { writes, staged });
      }
      let appended;
      try {
        appended = this.#log.append(payload);
      } catch (err) {
        this.store.discardStaged(staged);
        throw err;
      }
      const { version, durable, done } = appended;
      this.#assigned = version;
      if (done === true && version === this.#applied + 1) {
        return this.#applyNow(tx, version, { writes, staged });
      }
      // Remembered, not yet indexed (see #recentIndex, #pendingWrites).
      this.#remember({ version, writes, ids: [...tx.writes.keys()] });
      const ready: Ready = { writes, staged };
      const visible = durable.then(
        () => this.#apply(version, ready),
        (err) => {
          this.#failed ??= err instanceof StorageError
            ? err
            : new StorageError(`Cannot commit: ${(err as Error).message}`, { cause: err });
          throw this.#failed;
        },
      );
      this.#lastDurable = visible;
      return visible;
    } finally {
      if (!ended) this.#end(tx);
    }
  }

  /**
   * A commit that is already durable (no log, or the log's write is done)
   * with every earlier one applied: apply it now, within the commit step.
   */
  #applyNow(tx: Transaction, version: number, commit: Ready): undefined {
    // Transactions running on older snapshots validate against it later
    // (this one has ended: it is no longer counted).
    if (this.#running.count > 0) {
      this.#remember({ version, writes: commit.writes, ids: [...tx.writes.keys()] });
    }
    this.#applyToStore(version, commit);
    return undefined;
  }

  /**
   * Applies commit `version` (the next) to the store in one call into the
   * core. Its memory was set aside before it was logged, so it fits; should
   * it not anyway (a worst-case bound of the core proven wrong), the store
   * holds part of it, and the engine breaks: every later commit and read
   * fails with the error, and the log (if any) still holds the commit for
   * the next open.
   */
  #applyToStore(version: number, commit: Ready): void {
    try {
      this.store.applyStaged(commit.staged);
    } catch (err) {
      const where = this.#log === undefined
        ? "it is lost (the database has no log)"
        : "it is in the log, and opening the database again (with a larger maxMemoryBytes) applies it";
      this.#broken = new OutOfMemoryError(
        `Cannot apply commit ${version} to the store: ${(err as Error).message}; ${where}. ` +
          `This database reads and writes nothing more`,
        { cause: err },
      );
      this.#failed = this.#broken;
      throw this.#broken;
    }
    if (this.#watched !== undefined) this.#noteWrites(version, commit.writes);
    this.#applied = version;
    this.#onApplied?.(version);
  }

  #validate(tx: Transaction): void {
    const reads = tx.readKeys;
    const ranges = tx.readRanges;
    if (reads === undefined && ranges === undefined) return;
    const start = tx.snapshotVersion;
    const recent = this.#recent;
    // Nothing committed since the snapshot: nothing to check.
    if (recent.length === 0 || recent[recent.length - 1]!.version <= start) return;
    if (reads !== undefined) {
      // The newest write of each key among the recent commits: a read key
      // written after the snapshot is a conflict. Walks the smaller side.
      const index = this.#recentIndex();
      if (reads.size <= index.size) {
        for (const id of reads) {
          const v = index.get(id);
          if (v !== undefined && v > start) {
            throw new Conflict(`key read was written by commit ${v}`);
          }
        }
      } else {
        for (const [id, v] of index) {
          if (v > start && reads.has(id)) {
            throw new Conflict(`key read was written by commit ${v}`);
          }
        }
      }
    }
    if (ranges === undefined) return;
    // Newest first: the log is in version order, so the walk stops at the
    // first commit the snapshot already saw.
    for (let j = recent.length - 1; j >= 0; j--) {
      const c = recent[j]!;
      if (c.version <= start) break;
      for (let i = 0; i < c.writes.length; i++) {
        for (const r of ranges) {
          if (inRange(c.writes[i]!.key, r)) {
            throw new Conflict(`range read was written by commit ${c.version}`);
          }
        }
      }
    }
  }

  #runCommitOps(tx: Transaction, ops: ((view: CommitView) => void)[]): void {
    // The log numbers records after the engine's last.
    const view = new View(tx, this.#pendingWrites, this.store, this.#assigned + 1);
    for (const op of ops) op(view);
  }

  /** Applies durable commits to the store strictly in version order. */
  #apply(version: number, commit: Ready): void {
    if (this.#broken !== undefined) throw this.#broken;
    // The log makes commits durable in version order: the next one goes
    // straight to the store; #ready only holds any that arrive early.
    if (version === this.#applied + 1 && this.#ready.size === 0) {
      this.#applyToStore(version, commit);
    } else {
      this.#ready.set(version, commit);
      while (this.#ready.has(this.#applied + 1)) {
        const v = this.#applied + 1;
        const next = this.#ready.get(v)!;
        this.#ready.delete(v);
        this.#applyToStore(v, next);
      }
    }
    this.#forgetApplied();
    this.#prune();
  }

  /**
   * Drops #inflight's entries once their commits are applied: all at once
   * when nothing is in flight, else in a sweep when it has grown large.
   * Entries are not deleted one by one as their commits apply — V8 shrinks
   * a Map into a new table as it empties — and an applied entry left in
   * place is harmless: it holds the newest write of its key, which is what
   * the store then holds.
   */
  #forgetApplied(): void {
    const inflight = this.#inflight;
    if (inflight.size === 0) return;
    if (this.#applied === this.#assigned) {
      inflight.clear();
    } else if (inflight.size >= this.#inflightSweepAt) {
      for (const [id, p] of inflight) if (p.version <= this.#applied) inflight.delete(id);
      this.#inflightSweepAt = Math.max(INFLIGHT_SWEEP_KEYS, 2 * inflight.size);
    }
  }

  /**
   * Applies a recovered commit's payload to the store (replay): no
   * validation, no log.
   *
   * @param version Its version (must be the next).
   * @param payload The WAL payload.
   * @throws {RangeError} If the version is out of order or the payload malformed.
   */
  replay(version: number, payload: Uint8Array): void {
    if (version !== this.#applied + 1) {
      throw new RangeError(`Cannot replay version ${version}: the engine is at ${this.#applied}`);
    }
    applyPayload(this.store, payload);
    this.#applied = version;
    this.#assigned = version;
  }

  /**
   * Waits for in-flight commits, then refuses new transactions. The store
   * stays readable until {@link OrderedStore.close}. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    // Writes already made go in: their callers were told nothing else.
    if (this.#group !== undefined) this.#commitGroup(this.#group);
    this.#closed = true;
    await this.#lastDurable.catch(() => {});
  }
}
