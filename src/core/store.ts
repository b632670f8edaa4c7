/**
 * The ordered store: byte-string keys to byte-string values, sorted by
 * unsigned byte order, held in WebAssembly linear memory (a copy-on-write
 * B+tree, assembly/store.ts), with O(1) snapshots.
 *
 * Keys and values never live on the JavaScript heap while stored, so millions
 * of entries cost the garbage collector nothing. Each store owns one
 * WebAssembly instance and its memory, capped by `maxMemoryBytes`.
 *
 * @module
 */
import { ClosedError, CorruptionError, OutOfMemoryError } from "../errors.ts";
import { SLAB_MAX_BYTES, slabAlloc } from "../_slab.ts";
import { type Core, createCore, unlessOutOfMemory, WASM_MAX_MEMORY_BYTES } from "./_wasm.ts";
import { typeName } from "../_type_name.ts";

/**
 * Largest key, in bytes (UTF-8 bytes for string keys).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_KEY_BYTES, OrderedStore } from "@in-mem/core";
 *
 * const store = new OrderedStore();
 * assert.equal(store.put("k".repeat(MAX_KEY_BYTES), "fits"), true);
 * assert.throws(() => store.put("k".repeat(MAX_KEY_BYTES + 1), "v"), RangeError);
 * // The limit counts UTF-8 bytes: "é" is two.
 * assert.throws(() => store.put("é".repeat(MAX_KEY_BYTES / 2 + 1), "v"), RangeError);
 * assert.equal(store.count(), 1);
 * store.close();
 * ```
 */
export const MAX_KEY_BYTES = 4096;
/**
 * Largest value, in bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_VALUE_BYTES, OrderedStore } from "@in-mem/core";
 *
 * const store = new OrderedStore();
 * assert.throws(() => store.put("big", new Uint8Array(MAX_VALUE_BYTES + 1)), RangeError);
 * assert.equal(store.has("big"), false);
 * store.put("big", new Uint8Array(MAX_VALUE_BYTES));
 * assert.equal(store.get("big")?.length, MAX_VALUE_BYTES);
 * store.close();
 * ```
 */
export const MAX_VALUE_BYTES: number = 16 * 1024 * 1024;

/** A key or value: bytes, or a string stored as its UTF-8 bytes. */
export type Bytes = Uint8Array | string;

/** A key–value pair as copies the caller owns. */
export type Entry = [key: Uint8Array, value: Uint8Array];

/**
 * @internal What {@link ReadableStore.locate} takes a key from: a
 * `KeyWriter`, which copies the key it holds into the store's key buffer
 * and empties itself.
 */
export interface KeySource {
  /** Copies the key into `target` at `at`; returns its length. */
  copyTo(target: Uint8Array, at: number): number;
}

/** @internal Where a value lies: `bytes[start, end)` (see {@link ReadableStore.locate}). */
export interface ValueSpan {
  /** The bytes holding it (for the store: its whole memory). */
  bytes: Uint8Array;
  /** Offset of its first byte. */
  start: number;
  /** Offset just past its last byte. */
  end: number;
}

/** Bounds and direction of a range read. Bounds default to unbounded. */
export interface RangeOptions {
  /** Lowest key included (or excluded with `gtExclusive`). */
  gte?: Bytes;
  /** Lowest key, excluded. Overrides `gte`. */
  gt?: Bytes;
  /** Highest key included. */
  lte?: Bytes;
  /** Highest key, excluded. Overrides `lte`. */
  lt?: Bytes;
  /** Walk from the highest key down. Default false. */
  reverse?: boolean;
  /** Stop after this many entries. Default: no limit. */
  limit?: number;
}

/** Options of {@link OrderedStore}. */
export interface StoreOptions {
  /**
   * Upper bound of the store's WebAssembly memory in bytes, at most 4 GiB
   * (the wasm32 limit, the default). Writes that could need more throw
   * {@link OutOfMemoryError} and change nothing.
   */
  maxMemoryBytes?: number;
}

/** Memory figures of a store, in bytes. */
export interface StoreMemory {
  /** Live blocks the core holds: nodes, entries, snapshots, cursors (allocator headers included). */
  usedBytes: number;
  /** Linear memory reserved from the host (whole 64 KiB pages). */
  reservedBytes: number;
  /** The cap the memory may grow to. */
  maxBytes: number;
}

/**
 * Zero-copy view of one entry, handed to {@link ReadableStore.scan} visitors.
 * Its fields are valid only during the visitor call; copy with
 * `memory.slice(keyStart, keyEnd)` to keep anything.
 */
export interface EntryView {
  /** The store's whole memory (do not write into it). */
  memory: Uint8Array;
  /** Offset in `memory` of the key's first byte. */
  keyStart: number;
  /** Offset in `memory` just past the key's last byte. */
  keyEnd: number;
  /** Offset in `memory` of the value's first byte. */
  valueStart: number;
  /** Offset in `memory` just past the value's last byte. */
  valueEnd: number;
}

const BOUND_NONE = 0;
const BOUND_INCLUSIVE = 1;
const BOUND_EXCLUSIVE = 2;
const BATCH_MAX = 256;
const BLOB_HEADER = 12;

const encoder = new TextEncoder();

/**
 * A copy of `src[start, end)` the caller owns: small ones carved out of a
 * shared slab on V8 (src/_slab.ts says why).
 */
function copyOut(src: Uint8Array, start: number, end: number): Uint8Array {
  const len = end - start;
  if (len > SLAB_MAX_BYTES) return src.slice(start, end);
  const out = slabAlloc(len);
  out.set(src.subarray(start, end));
  return out;
}

/** Internal: the store functions of the core. */
export interface StoreExports {
  store_new(): number;
  store_free(tree: number): void;
  store_close(tree: number): void;
  pool_fill(tree: number): void;
  store_count(tree: number): number;
  store_in_place_writes(): number;
  store_bytes(tree: number): number;
  store_height(tree: number): number;
  store_leaves(tree: number): number;
  store_check(tree: number): number;
  snapshot_take(tree: number): number;
  key_scratch(): number;
  cursor_batch(): number;
  get(tree: number, keyLen: number): number;
  blob_new(keyLen: number, valueLen: number): number;
  blob_discard(blob: number): void;
  put_blob(tree: number, blob: number): number;
  del(tree: number, keyLen: number): number;
  cursor_open(
    tree: number,
    loLen: number,
    loFlag: number,
    hiLen: number,
    hiFlag: number,
    reverse: number,
  ): number;
  cursor_next(cursor: number, max: number): number;
  cursor_close(cursor: number): void;
  used_bytes(): number;
  memory_bytes(): number;
  alloc(size: number): number;
  free(ptr: number): void;
  apply_payload(tree: number, ptr: number): number;
  apply_progress(): number;
  commit_stage(tree: number, ptr: number, len: number): number;
  stage_abort(): void;
  commit_apply(tree: number, block: number): number;
  commit_discard(block: number): void;
  index_suspend(): void;
  index_resume(): void;
}

/**
 * Internal: the WebAssembly instance a store and its snapshots share, with
 * cached views of its memory. Not part of the public API.
 */
export class Heap {
  /** The instance. */
  readonly core: Core;
  /** Its store functions. */
  readonly x: StoreExports;
  /** Address of the two key buffers. */
  readonly scratch: number;
  /** Address of the cursor batch buffer. */
  readonly batch: number;
  #u8: Uint8Array = new Uint8Array(0);
  #u32: Uint32Array = new Uint32Array(0);
  #keyView: Uint8Array = new Uint8Array(0);
  #hiView: Uint8Array = new Uint8Array(0);
  /** Set when the owning store is closed. */
  closed = false;

  /** @param maxMemoryBytes The memory cap. */
  constructor(maxMemoryBytes: number) {
    this.core = createCore(maxMemoryBytes);
    this.x = this.core.exports as unknown as StoreExports;
    this.scratch = this.x.key_scratch() >>> 0;
    this.batch = this.x.cursor_batch() >>> 0;
  }

  /**
   * Calls into the core and turns its out-of-memory trap into
   * {@link OutOfMemoryError} (after `cleanup`).
   *
   * @returns What `fn` returned.
   */
  call<T>(what: string, fn: () => T, cleanup?: () => void): T {
    const result = unlessOutOfMemory(this.core, fn, cleanup);
    if (result === undefined) {
      throw new OutOfMemoryError(
        `Cannot ${what}: the store's memory is full (max ${this.core.maxMemoryBytes} bytes)`,
      );
    }
    return result;
  }

  /**
   * A buffer of at least `len` bytes in the memory to copy a payload into:
   * the key buffers when it fits there (most commits), else a new block that
   * {@link unstage} frees.
   *
   * @throws {OutOfMemoryError} If the memory cannot hold it.
   */
  stage(len: number, what: string): number {
    if (len <= 2 * MAX_KEY_BYTES) return this.scratch;
    return this.call(what, () => this.x.alloc(len) >>> 0);
  }

  /** Frees a buffer from {@link stage}. */
  unstage(at: number): void {
    if (at !== this.scratch) this.x.free(at);
  }

  // Views over the memory, renewed after it grew. Growing detaches the old
  // buffer, and a view of a detached buffer has length 0: testing that is
  // ~25 ns cheaper per call than reading `memory.buffer` (a getter call),
  // and every store call makes one. The memory is never empty.

  /** @returns A byte view of the whole memory. */
  u8(): Uint8Array {
    if (this.#u8.length === 0) this.#refresh();
    return this.#u8;
  }

  /** @returns A u32 view of the whole memory. */
  u32(): Uint32Array {
    if (this.#u32.length === 0) this.#refresh();
    return this.#u32;
  }

  /** @returns The u32 view as of the last {@link u8} call (no memory growth since). */
  u32Fresh(): Uint32Array {
    return this.#u32;
  }

  #refresh(): void {
    const buffer = this.core.memory.buffer as ArrayBuffer;
    this.#u8 = new Uint8Array(buffer);
    this.#u32 = new Uint32Array(buffer);
    this.#keyView = this.#u8.subarray(this.scratch, this.scratch + MAX_KEY_BYTES);
    this.#hiView = this.#u8.subarray(
      this.scratch + MAX_KEY_BYTES,
      this.scratch + 2 * MAX_KEY_BYTES,
    );
  }

  /**
   * Writes a key into scratch slot 0 (lo) or 1 (hi).
   *
   * @returns Its length in bytes.
   */
  writeKey(key: Bytes, slot: 0 | 1, what: string): number {
    const u8 = this.u8();
    if (typeof key === "string") {
      const view = slot === 0 ? this.#keyView : this.#hiView;
      const { read, written } = encoder.encodeInto(key, view);
      if (read < key.length) {
        throw new RangeError(
          `Cannot ${what}: key is over MAX_KEY_BYTES (${MAX_KEY_BYTES}) in UTF-8`,
        );
      }
      return written;
    }
    if (!(key instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot ${what}: key must be a Uint8Array or string, got ${typeName(key)}`,
      );
    }
    if (key.length > MAX_KEY_BYTES) {
      throw new RangeError(
        `Cannot ${what}: key is ${key.length} bytes, over MAX_KEY_BYTES (${MAX_KEY_BYTES})`,
      );
    }
    u8.set(key, this.scratch + slot * MAX_KEY_BYTES);
    return key.length;
  }
}

function toBytes(value: Bytes, what: string): Uint8Array {
  if (typeof value === "string") return encoder.encode(value);
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot ${what}: value must be a Uint8Array or string, got ${typeName(value)}`,
    );
  }
  return value;
}

// Cursors and snapshots dropped without being closed are released when
// collected, so a forgotten iterator cannot pin old versions forever.
const cursorReaper = new FinalizationRegistry<{ heap: Heap; ptr: number }>((held) => {
  if (!held.heap.closed) held.heap.x.cursor_close(held.ptr);
});
const snapshotReaper = new FinalizationRegistry<{ heap: Heap; ptr: number }>((held) => {
  if (!held.heap.closed) held.heap.x.store_free(held.ptr);
});

/**
 * Read operations shared by a live {@link OrderedStore} and its
 * {@link StoreSnapshot}s.
 *
 * @example Read a store or a snapshot alike
 * ```ts
 * import assert from "node:assert/strict";
 * import { OrderedStore, ReadableStore } from "@in-mem/core";
 *
 * // Code that only reads takes a ReadableStore: the live store or a snapshot.
 * const users = (r: ReadableStore) =>
 *   [...r.prefix("user/")].map(([k]) => new TextDecoder().decode(k));
 *
 * const store = new OrderedStore();
 * store.put("user/ann", "1");
 * const snap = store.snapshot();
 * store.put("user/bob", "2");
 * assert.ok(snap instanceof ReadableStore);
 * assert.deepEqual(users(store), ["user/ann", "user/bob"]);
 * assert.deepEqual(users(snap), ["user/ann"]);
 * snap.release();
 * store.close();
 * ```
 */
export abstract class ReadableStore {
  /** @internal */
  protected readonly heap: Heap;
  /** @internal */
  protected tree: number;

  /** @internal */
  protected constructor(heap: Heap, tree: number) {
    this.heap = heap;
    this.tree = tree;
  }

  /** @internal Throws when the store or snapshot was closed. */
  protected live(what: string): number {
    if (this.tree === 0 || this.heap.closed) {
      throw new ClosedError(`Cannot ${what}: the store or snapshot is closed`);
    }
    return this.tree;
  }

  /**
   * Reads the value of `key` as a copy the caller owns. Small copies may be
   * views into a shared pooled `ArrayBuffer` (as Node's pooled `Buffer`s are):
   * respect `byteOffset`/`byteLength`, or `.slice()` it for a buffer of its own.
   *
   * @param key The key.
   * @returns A copy of the value, or `undefined` when the key is absent.
   * @throws {RangeError} If the key is over {@link MAX_KEY_BYTES}.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.put("a", "1");
   * assert.deepEqual(store.get("a"), new TextEncoder().encode("1"));
   * assert.equal(store.get("b"), undefined);
   * store.close();
   * ```
   */
  get(key: Bytes): Uint8Array | undefined {
    const blob = this.#find(key, "get");
    if (blob === 0) return undefined;
    const u8 = this.heap.u8();
    const u32 = this.heap.u32Fresh();
    const start = blob + BLOB_HEADER + u32[(blob + 4) >>> 2]!;
    return copyOut(u8, start, start + u32[(blob + 8) >>> 2]!);
  }

  /**
   * Reads the value of `key` without copying it: a view into the store's
   * memory, valid until the next write to the store or its memory grows.
   * Use it to decode a value at once; use {@link get} to keep one.
   *
   * @param key The key.
   * @returns A view of the value, or `undefined` when the key is absent.
   * @throws {RangeError} If the key is over {@link MAX_KEY_BYTES}.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.put("greeting", "hello");
   * assert.equal(new TextDecoder().decode(store.getView("greeting")), "hello");
   * store.close();
   * ```
   */
  getView(key: Bytes): Uint8Array | undefined {
    const blob = this.#find(key, "get");
    if (blob === 0) return undefined;
    const u8 = this.heap.u8();
    const u32 = this.heap.u32Fresh();
    const start = blob + BLOB_HEADER + u32[(blob + 4) >>> 2]!;
    return u8.subarray(start, start + u32[(blob + 8) >>> 2]!);
  }

  /**
   * @internal {@link getView} for the hottest reads: the key is copied from
   * its builder straight into the store's key buffer, and the value is
   * given as a range of the store's whole memory, so the lookup makes no
   * view and allocates nothing. `out.bytes` keeps the store's memory
   * alive: keep `out` no longer than the store (the engine's reads own
   * theirs).
   *
   * @param key Holds the key (a `KeyWriter`); the call empties it.
   * @param out Set to where the value lies, `out.bytes[out.start, out.end)`,
   *   when found: valid until the next write to the store. Decode it at once.
   * @returns Whether the key is present.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   * import { KeyWriter } from "./keys.ts";
   *
   * const store = new OrderedStore();
   * store.put(new KeyWriter().u8(1).finish(), "hello");
   * const out = { bytes: new Uint8Array(0), start: 0, end: 0 };
   * assert.equal(store.locate(new KeyWriter().u8(1), out), true);
   * assert.equal(new TextDecoder().decode(out.bytes.subarray(out.start, out.end)), "hello");
   * assert.equal(store.locate(new KeyWriter().u8(2), out), false);
   * store.close();
   * ```
   */
  locate(key: KeySource, out: ValueSpan): boolean {
    const tree = this.live("get");
    const heap = this.heap;
    const u8 = heap.u8();
    const blob = heap.x.get(tree, key.copyTo(u8, heap.scratch)) >>> 0;
    if (blob === 0) return false;
    const u32 = heap.u32Fresh();
    const start = blob + BLOB_HEADER + u32[(blob + 4) >>> 2]!;
    out.bytes = u8;
    out.start = start;
    out.end = start + u32[(blob + 8) >>> 2]!;
    return true;
  }

  /**
   * Tells whether `key` is present.
   *
   * @param key The key.
   * @returns True when present.
   * @throws {RangeError} If the key is over {@link MAX_KEY_BYTES}.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.put("a", "");
   * assert.equal(store.has("a"), true);
   * assert.equal(store.has("b"), false);
   * store.close();
   * ```
   */
  has(key: Bytes): boolean {
    return this.#find(key, "has") !== 0;
  }

  #find(key: Bytes, what: string): number {
    const tree = this.live(what);
    const len = this.heap.writeKey(key, 0, what);
    return this.heap.x.get(tree, len) >>> 0;
  }

  /**
   * Number of keys, in O(1).
   *
   * @returns The key count.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.put("a", "1");
   * store.put("b", "2");
   * assert.equal(store.count(), 2);
   * store.close();
   * ```
   */
  count(): number {
    return this.heap.x.store_count(this.live("count")) >>> 0;
  }

  /**
   * Sum of the lengths of all keys and values, in bytes, in O(1).
   *
   * @returns The byte total.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.put("ab", "xyz");
   * assert.equal(store.bytes(), 5);
   * store.close();
   * ```
   */
  bytes(): number {
    return this.heap.x.store_bytes(this.live("bytes"));
  }

  /**
   * The first entry whose key is `>= key` (or `<= key` with `reverse`).
   *
   * @param key Where to start.
   * @param reverse Seek backwards: the last entry whose key is `<= key`.
   * @returns The entry as copies, or `undefined` when there is none.
   * @throws {RangeError} If the key is over {@link MAX_KEY_BYTES}.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.put("b", "2");
   * store.put("d", "4");
   * const [key] = store.seek("c")!;
   * assert.equal(new TextDecoder().decode(key), "d");
   * assert.equal(store.seek("e"), undefined);
   * store.close();
   * ```
   */
  seek(key: Bytes, reverse = false): Entry | undefined {
    const options: RangeOptions = reverse
      ? { lte: key, reverse, limit: 1 }
      : { gte: key, limit: 1 };
    for (const entry of this.entries(options)) return entry;
    return undefined;
  }

  /**
   * Iterates the entries within the bounds in key order (or reverse), as
   * copies. The iteration reads a frozen version: writes made while it runs
   * are not seen. Breaking out of the loop releases it.
   *
   * @param options Bounds, direction and limit.
   * @returns An iterator of `[key, value]` copies.
   * @throws {RangeError} If a bound is over {@link MAX_KEY_BYTES} or `limit` is negative.
   * @throws {OutOfMemoryError} If the memory cannot hold the cursor.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * for (const k of ["a", "b", "c", "d"]) store.put(k, k.toUpperCase());
   * const keys = [...store.entries({ gt: "a", lte: "c" })].map(([k]) => new TextDecoder().decode(k));
   * assert.deepEqual(keys, ["b", "c"]);
   * store.close();
   * ```
   */
  *entries(options: RangeOptions = {}): IterableIterator<Entry> {
    const out: Entry[] = [];
    const cursor = this.#open(options, "iterate");
    let remaining = limitOf(options);
    const held = { heap: this.heap, ptr: cursor };
    const token = {};
    cursorReaper.register(token, held, token);
    try {
      while (remaining > 0) {
        const n = this.#fill(cursor, remaining, out);
        if (n === 0) return;
        remaining -= n;
        for (const e of out) yield e;
        out.length = 0;
      }
    } finally {
      cursorReaper.unregister(token);
      if (!this.heap.closed) this.heap.x.cursor_close(cursor);
    }
  }

  /**
   * Iterates the keys within the bounds (copies), like {@link entries}.
   *
   * @param options Bounds, direction and limit.
   * @returns An iterator of key copies.
   * @throws {RangeError} If a bound is over {@link MAX_KEY_BYTES}.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.put("x", "");
   * store.put("y", "");
   * assert.equal([...store.keys({ reverse: true })].length, 2);
   * store.close();
   * ```
   */
  *keys(options: RangeOptions = {}): IterableIterator<Uint8Array> {
    for (const [key] of this.entries(options)) yield key;
  }

  /**
   * Iterates the entries whose key starts with `prefix`, like {@link entries}.
   *
   * @param prefix The key prefix (an empty prefix matches every key).
   * @param options Direction and limit.
   * @returns An iterator of `[key, value]` copies.
   * @throws {RangeError} If the prefix is over {@link MAX_KEY_BYTES}.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * for (const k of ["run1/a", "run1/b", "run2/a"]) store.put(k, "");
   * assert.equal([...store.prefix("run1/")].length, 2);
   * store.close();
   * ```
   */
  prefix(
    prefix: Bytes,
    options: Pick<RangeOptions, "reverse" | "limit"> = {},
  ): IterableIterator<Entry> {
    return this.entries({ ...prefixRange(prefix), ...options });
  }

  /**
   * Visits the entries within the bounds without copying: the visitor gets a
   * reused {@link EntryView} into the store's memory, valid only during the
   * call. Returning `false` stops the scan. The fastest way to read many
   * entries; nothing may write to the store while it runs.
   *
   * @param options Bounds, direction and limit.
   * @param visit Called once per entry, in order.
   * @returns The number of entries visited.
   * @throws {RangeError} If a bound is over {@link MAX_KEY_BYTES}.
   * @throws {ClosedError} If closed.
   *
   * @example Sum value lengths without copying
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.put("a", "xx");
   * store.put("b", "yyy");
   * let total = 0;
   * store.scan({}, (e) => { total += e.valueEnd - e.valueStart; });
   * assert.equal(total, 5);
   * store.close();
   * ```
   */
  scan(options: RangeOptions, visit: (entry: EntryView) => boolean | void): number {
    const cursor = this.#open(options, "scan");
    const x = this.heap.x;
    const view: EntryView = {
      memory: this.heap.u8(),
      keyStart: 0,
      keyEnd: 0,
      valueStart: 0,
      valueEnd: 0,
    };
    let remaining = limitOf(options);
    let visited = 0;
    try {
      while (remaining > 0) {
        const n = x.cursor_next(cursor, Math.min(remaining, BATCH_MAX));
        if (n === 0) break;
        remaining -= n;
        const u32 = this.heap.u32();
        view.memory = this.heap.u8();
        const base = this.heap.batch >>> 2;
        for (let i = 0; i < n; i++) {
          const blob = u32[base + i]!;
          const keyLen = u32[(blob + 4) >>> 2]!;
          view.keyStart = blob + BLOB_HEADER;
          view.keyEnd = view.keyStart + keyLen;
          view.valueStart = view.keyEnd;
          view.valueEnd = view.keyEnd + u32[(blob + 8) >>> 2]!;
          visited++;
          if (visit(view) === false) return visited;
        }
      }
      return visited;
    } finally {
      if (!this.heap.closed) x.cursor_close(cursor);
    }
  }

  #open(options: RangeOptions, what: string): number {
    const tree = this.live(what);
    const reverse = options.reverse === true ? 1 : 0;
    let loFlag = BOUND_NONE;
    let loLen = 0;
    if (options.gt !== undefined) {
      loFlag = BOUND_EXCLUSIVE;
      loLen = this.heap.writeKey(options.gt, 0, what);
    } else if (options.gte !== undefined) {
      loFlag = BOUND_INCLUSIVE;
      loLen = this.heap.writeKey(options.gte, 0, what);
    }
    let hiFlag = BOUND_NONE;
    let hiLen = 0;
    if (options.lt !== undefined) {
      hiFlag = BOUND_EXCLUSIVE;
      hiLen = this.heap.writeKey(options.lt, 1, what);
    } else if (options.lte !== undefined) {
      hiFlag = BOUND_INCLUSIVE;
      hiLen = this.heap.writeKey(options.lte, 1, what);
    }
    const x = this.heap.x;
    return this.heap.call(
      what,
      () => x.cursor_open(tree, loLen, loFlag, hiLen, hiFlag, reverse) >>> 0,
    );
  }

  /** Reads up to `max` entries from the cursor into `out` as copies. */
  #fill(cursor: number, max: number, out: Entry[]): number {
    const n = this.heap.x.cursor_next(cursor, Math.min(max, BATCH_MAX));
    const u8 = this.heap.u8();
    const u32 = this.heap.u32();
    const base = this.heap.batch >>> 2;
    for (let i = 0; i < n; i++) {
      const blob = u32[base + i]!;
      const keyStart = blob + BLOB_HEADER;
      const keyEnd = keyStart + u32[(blob + 4) >>> 2]!;
      out.push([
        copyOut(u8, keyStart, keyEnd),
        copyOut(u8, keyEnd, keyEnd + u32[(blob + 8) >>> 2]!),
      ]);
    }
    return n;
  }

  /**
   * Checks the tree's structural invariants (key order, separator bounds,
   * fill, equal leaf depth, counts, reference counts). For tests and
   * `verify` tools: it walks every node.
   *
   * @throws {CorruptionError} Naming the first broken rule.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * for (let i = 0; i < 1000; i++) store.put(`k${i}`, "v");
   * store.checkInvariants();
   * store.close();
   * ```
   */
  checkInvariants(): void {
    const code = this.heap.x.store_check(this.live("check invariants"));
    if (code !== 0) {
      throw new CorruptionError(`Cannot verify the store: invariant ${code} broken`, {
        where: `ordered store (rule ${code}, assembly/store.ts store_check)`,
      });
    }
  }
}

function limitOf(options: RangeOptions): number {
  const limit = options.limit ?? Infinity;
  if (!(limit >= 0)) throw new RangeError(`Cannot read a range: limit must be >= 0, got ${limit}`);
  return limit;
}

/**
 * The range bounds that select exactly the keys starting with `prefix`:
 * `gte: prefix` and `lt:` the prefix with its last byte below 0xFF
 * incremented (no upper bound when every byte is 0xFF).
 *
 * @param prefix The key prefix.
 * @returns Bounds for {@link ReadableStore.entries}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prefixRange } from "@in-mem/core";
 *
 * assert.deepEqual(prefixRange(new Uint8Array([1, 0xff])), {
 *   gte: new Uint8Array([1, 0xff]),
 *   lt: new Uint8Array([2]),
 * });
 * ```
 */
export function prefixRange(prefix: Bytes): { gte: Uint8Array; lt?: Uint8Array } {
  const bytes = typeof prefix === "string" ? encoder.encode(prefix) : prefix;
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot scan a prefix: prefix must be a Uint8Array or string, got ${typeName(prefix)}`,
    );
  }
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] !== 0xff) {
      const end = bytes.slice(0, i + 1);
      end[i]!++;
      return { gte: bytes, lt: end };
    }
  }
  return { gte: bytes };
}

/**
 * A frozen, read-only version of an {@link OrderedStore}, taken in O(1) by
 * {@link OrderedStore.snapshot}. It costs no copying up front; the live store
 * copies a node the first time it changes one the snapshot shares. Release
 * it when done (or `using snap = store.snapshot()`): it keeps old versions
 * alive until then.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OrderedStore } from "@in-mem/core";
 *
 * const store = new OrderedStore();
 * store.put("k", "old");
 * const snap = store.snapshot();
 * store.put("k", "new");
 * assert.equal(new TextDecoder().decode(snap.get("k")), "old");
 * snap.release();
 * store.close();
 * ```
 */
export class StoreSnapshot extends ReadableStore {
  #token: object | undefined;

  /**
   * @internal Use {@link OrderedStore.snapshot}.
   * @param tracked Register with the finalizer that releases forgotten
   *   snapshots (skipped by owners that always release, like transactions).
   */
  constructor(heap: Heap, tree: number, tracked = true) {
    super(heap, tree);
    if (tracked) {
      this.#token = {};
      snapshotReaper.register(this, { heap, ptr: tree }, this.#token);
    }
  }

  /**
   * Releases the snapshot and what only it kept alive. Idempotent.
   *
   * @example
   * ```ts
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * const snap = store.snapshot();
   * snap.release();
   * snap.release(); // no effect
   * store.close();
   * ```
   */
  release(): void {
    if (this.tree === 0) return;
    if (this.#token !== undefined) snapshotReaper.unregister(this.#token);
    if (!this.heap.closed) this.heap.x.store_free(this.tree);
    this.tree = 0;
  }

  /** Same as {@link release}, for `using`. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * An ordered key–value store in WebAssembly memory. Synchronous and
 * single-threaded: the engine above it adds transactions and durability.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OrderedStore } from "@in-mem/core";
 *
 * const store = new OrderedStore();
 * store.put("b", "2");
 * store.put("a", "1");
 * const keys = [...store.keys()].map((k) => new TextDecoder().decode(k));
 * assert.deepEqual(keys, ["a", "b"]);
 * assert.equal(store.delete("a"), true);
 * store.close();
 * ```
 */
export class OrderedStore extends ReadableStore {
  /**
   * Makes an empty store with its own WebAssembly memory.
   *
   * @param options `maxMemoryBytes`: the memory cap (default and maximum 4 GiB).
   * @throws {RangeError} If `maxMemoryBytes` is out of range.
   */
  constructor(options: StoreOptions = {}) {
    const heap = new Heap(options.maxMemoryBytes ?? WASM_MAX_MEMORY_BYTES);
    super(heap, heap.call("create the store", () => heap.x.store_new() >>> 0));
  }

  /**
   * Inserts `key` or replaces its value. Nothing changes when it throws.
   *
   * @param key The key, at most {@link MAX_KEY_BYTES}.
   * @param value The value, at most {@link MAX_VALUE_BYTES}.
   * @returns True when the key was new, false when a value was replaced.
   * @throws {TypeError} If key or value is not a Uint8Array or string.
   * @throws {RangeError} If key or value is over its limit.
   * @throws {OutOfMemoryError} If the memory cannot hold the write.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * assert.equal(store.put("k", new Uint8Array([1])), true);
   * assert.equal(store.put("k", new Uint8Array([2])), false);
   * assert.deepEqual(store.get("k"), new Uint8Array([2]));
   * store.close();
   * ```
   */
  put(key: Bytes, value: Bytes): boolean {
    const tree = this.live("put");
    const keyLen = this.heap.writeKey(key, 0, "put");
    const bytes = toBytes(value, "put");
    if (bytes.length > MAX_VALUE_BYTES) {
      throw new RangeError(
        `Cannot put: value is ${bytes.length} bytes, over MAX_VALUE_BYTES (${MAX_VALUE_BYTES})`,
      );
    }
    const x = this.heap.x;
    // Everything the write may need is allocated before the tree changes: the
    // blob, then the node pools. Running out at either step changes nothing.
    const at = this.heap.call("put", () => x.blob_new(keyLen, bytes.length) >>> 0);
    this.heap.call("put", () => (x.pool_fill(tree), 0), () => x.blob_discard(at));
    const u8 = this.heap.u8(); // after blob_new: the memory may have grown
    const keyAt = at + BLOB_HEADER;
    u8.copyWithin(keyAt, this.heap.scratch, this.heap.scratch + keyLen);
    u8.set(bytes, keyAt + keyLen);
    return x.put_blob(tree, at) === 1;
  }

  /**
   * Removes `key`.
   *
   * @param key The key.
   * @returns True when it was present.
   * @throws {RangeError} If the key is over {@link MAX_KEY_BYTES}.
   * @throws {OutOfMemoryError} If a snapshot shares the path and the memory
   *   cannot hold the copies (nothing is deleted then).
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.put("k", "v");
   * assert.equal(store.delete("k"), true);
   * assert.equal(store.delete("k"), false);
   * store.close();
   * ```
   */
  delete(key: Bytes): boolean {
    const tree = this.live("delete");
    const len = this.heap.writeKey(key, 0, "delete");
    const x = this.heap.x;
    return this.heap.call("delete", () => x.del(tree, len)) === 1;
  }

  /**
   * @internal Stages a commit about to be logged, so that applying it later
   * cannot run out of memory: a copy of its payload, every put's blob, and
   * the tree nodes its writes may need at worst (`commit_stage` in
   * assembly/store.ts) are allocated now.
   *
   * @param payload The commit's payload (src/engine/payload.ts, well formed).
   * @returns The staged commit, for {@link applyStaged} or {@link discardStaged}.
   * @throws {OutOfMemoryError} If the memory cannot hold it (nothing is kept).
   * @throws {ClosedError} If closed.
   */
  stageCommit(payload: Uint8Array): number {
    const tree = this.live("commit");
    const heap = this.heap;
    const at = heap.stage(payload.length, "commit");
    try {
      heap.u8().set(payload, at);
      const x = heap.x;
      return heap.call(
        `commit: the store's memory cannot hold this commit`,
        () => x.commit_stage(tree, at, payload.length) >>> 0,
        () => x.stage_abort(),
      );
    } finally {
      heap.unstage(at);
    }
  }

  /**
   * @internal Applies a commit {@link stageCommit} staged, in order, in one
   * call into the core.
   *
   * @param staged What {@link stageCommit} returned (used up).
   * @throws {OutOfMemoryError} Not expected (the memory was set aside); if it
   *   happens, the writes before the failed one are applied (the message
   *   says how many).
   * @throws {ClosedError} If closed.
   */
  applyStaged(staged: number): void {
    const tree = this.live("apply a commit");
    const heap = this.heap;
    const x = heap.x;
    if (unlessOutOfMemory(heap.core, () => x.commit_apply(tree, staged)) === undefined) {
      throw new OutOfMemoryError(
        `Cannot apply a commit: the store's memory is full (max ${heap.core.maxMemoryBytes} bytes) ` +
          `after ${x.apply_progress()} of its writes`,
      );
    }
  }

  /**
   * @internal Frees a commit {@link stageCommit} staged that will not be applied.
   *
   * @param staged What {@link stageCommit} returned (used up).
   */
  discardStaged(staged: number): void {
    if (!this.heap.closed) this.heap.x.commit_discard(staged);
  }

  /**
   * @internal Applies a commit payload (src/engine/payload.ts, already
   * checked) in one call into the core: recovery's replay.
   *
   * @param payload The payload (empty: nothing to do).
   * @throws {OutOfMemoryError} If the memory ran out: the writes before the
   *   one that did not fit are applied (the message says how many).
   * @throws {ClosedError} If closed.
   */
  applyPayload(payload: Uint8Array): void {
    if (payload.length === 0) return;
    const tree = this.live("apply a commit");
    const heap = this.heap;
    const at = heap.stage(payload.length, "apply a commit");
    try {
      heap.u8().set(payload, at);
      const x = heap.x;
      const done = unlessOutOfMemory(heap.core, () => x.apply_payload(tree, at));
      if (done === undefined) {
        const count =
          (payload[0]! | (payload[1]! << 8) | (payload[2]! << 16) | (payload[3]! << 24)) >>> 0;
        throw new OutOfMemoryError(
          `Cannot apply a commit: the store's memory is full (max ${heap.core.maxMemoryBytes} bytes) ` +
            `after ${x.apply_progress()} of its ${count} writes`,
        );
      }
    } finally {
      heap.unstage(at);
    }
  }

  /**
   * @internal Turns the core's hash index of point reads off until
   * {@link resumeIndex}: for recovery, where building it once from the
   * finished tree costs less than keeping it through every replayed write.
   * Reads stay correct meanwhile (they search the tree).
   *
   * @throws {ClosedError} If closed.
   */
  suspendIndex(): void {
    this.live("suspend the index");
    this.heap.x.index_suspend();
  }

  /**
   * @internal Builds the hash index from the tree and turns it back on.
   *
   * @throws {OutOfMemoryError} If the memory cannot hold the index; it then
   *   stays off, and reads and writes still work (they search the tree).
   * @throws {ClosedError} If closed.
   */
  resumeIndex(): void {
    this.live("resume the index");
    const x = this.heap.x;
    this.heap.call("build the index", () => (x.index_resume(), 0));
  }

  /**
   * @internal How many writes so far overwrote a value of the same size in
   * place: with no snapshot or cursor open, the core rewrites the bytes of
   * the value the live tree holds instead of replacing its entry.
   */
  get inPlaceWrites(): number {
    return this.heap.x.store_in_place_writes();
  }

  /**
   * Takes a frozen read-only version of the store in O(1).
   *
   * @returns The snapshot; release it when done.
   * @throws {OutOfMemoryError} If the memory cannot hold the snapshot record.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.put("a", "1");
   * using snap = store.snapshot();
   * store.delete("a");
   * assert.equal(snap.count(), 1);
   * assert.equal(store.count(), 0);
   * ```
   */
  snapshot(): StoreSnapshot {
    return this.#snapshot(true);
  }

  /**
   * @internal A snapshot the caller promises to release: it skips the
   * finalizer registration (measurable per transaction).
   * @returns The snapshot.
   */
  snapshotUntracked(): StoreSnapshot {
    return this.#snapshot(false);
  }

  #snapshot(tracked: boolean): StoreSnapshot {
    const tree = this.live("take a snapshot");
    const x = this.heap.x;
    const ptr = this.heap.call("take a snapshot", () => x.snapshot_take(tree) >>> 0);
    return new StoreSnapshot(this.heap, ptr, tracked);
  }

  /**
   * Memory figures: bytes the core holds, bytes reserved, the cap.
   *
   * @returns The figures in bytes.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * const before = store.memory().usedBytes;
   * store.put("k", new Uint8Array(1000));
   * assert.ok(store.memory().usedBytes > before);
   * store.close();
   * ```
   */
  memory(): StoreMemory {
    this.live("read memory figures");
    const x = this.heap.x;
    return {
      usedBytes: x.used_bytes(),
      reservedBytes: x.memory_bytes(),
      maxBytes: this.heap.core.maxMemoryBytes,
    };
  }

  /**
   * Height of the tree (0 when empty, 1 for a single leaf).
   *
   * @returns Levels of nodes.
   * @throws {ClosedError} If closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * assert.equal(store.height(), 0);
   * store.put("k", "v");
   * assert.equal(store.height(), 1);
   * store.close();
   * ```
   */
  height(): number {
    return this.heap.x.store_height(this.live("read the height"));
  }

  /**
   * @internal The number of leaf nodes: with {@link count}, how full the
   * leaves are (each holds up to 64 entries).
   *
   * @returns Leaves in the tree (0 when empty).
   * @throws {ClosedError} If closed.
   */
  leafCount(): number {
    return this.heap.x.store_leaves(this.live("count the leaves")) >>> 0;
  }

  /**
   * Closes the store: its memory goes with the instance, and its snapshots
   * and iterators stop working. Idempotent.
   *
   * @example
   * ```ts
   * import { OrderedStore } from "@in-mem/core";
   *
   * const store = new OrderedStore();
   * store.close();
   * store.close(); // no effect
   * ```
   */
  close(): void {
    if (this.heap.closed) return;
    this.heap.x.store_close(this.tree);
    this.heap.closed = true;
    this.tree = 0;
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
