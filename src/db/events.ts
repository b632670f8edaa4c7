/**
 * The event log: an append-only, hash-chained sequence of events per run
 * (docs/FORMAT.md "Event log").
 *
 * Every event gets the next sequence number (0, 1, 2, … with no gaps) and
 * a SHA-256 hash over its fields and the previous event's hash, so that
 * {@link EventLog.verifyChain} detects any event changed, removed, reordered
 * or inserted after the fact. There is no way to update or delete an event;
 * deleting the run removes its whole log.
 *
 * Two ways to append, with one difference:
 *
 * - `run.events.append` (standalone) resolves the sequence number and the
 *   chain at commit time, inside the engine's commit step, against the
 *   newest log head (`Transaction.atCommit`). It reads nothing that can go
 *   stale, so any number of concurrent appenders to one run never conflict;
 *   the result is known once the append is committed.
 * - `tx.events.append` (inside a transaction) must return the sequence
 *   number before the transaction commits, so it reads the log head through
 *   the transaction. That read is validated like any other: if another
 *   append to the same run commits first, the transaction re-runs. Two
 *   appends in one transaction chain one after the other (read-your-writes).
 *
 * @module
 */
import { slabAlloc } from "../_slab.ts";
import {
  decodeValue,
  decodeValueFrom,
  encodeCanonical,
  encodeValue,
  encodeValueCanonically,
  MapWriter,
  type Value,
} from "../core/codec.ts";
import { KeyReader } from "../core/keys.ts";
import { sha256Concat, sha256Hex } from "../core/sha256.ts";
import type { CommitView } from "../engine/engine.ts";
import { CorruptionError } from "../errors.ts";
import type { Scope, TxContext } from "./context.ts";
import { key, range, TAG } from "./layout.ts";
import { checkName } from "./runs.ts";

/**
 * The `prevHash` of the first event of every log: 64 zeros.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, GENESIS_HASH } from "@in-mem/core";
 *
 * assert.equal(GENESIS_HASH, "0".repeat(64));
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * const first = await run.events.append("started", {});
 * await run.events.append("finished", {});
 * assert.equal((await run.events.read(0))?.prevHash, GENESIS_HASH);
 * assert.equal((await run.events.read(1))?.prevHash, first.hash);
 * ```
 */
export const GENESIS_HASH: string = "0".repeat(64);

/**
 * Events the async iterator ({@link EventLog}`[Symbol.asyncIterator]`)
 * reads per batch; each batch is one read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, EVENT_ITERATOR_BATCH } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * const total = EVENT_ITERATOR_BATCH + 1; // the iterator reads two batches
 * await run.transaction(async (tx) => {
 *   for (let i = 0; i < total; i++) await tx.events.append("tick", i);
 * });
 * let next = 0;
 * for await (const e of run.events) assert.equal(e.sequence, next++);
 * assert.equal(next, total);
 * ```
 */
export const EVENT_ITERATOR_BATCH = 256;

/**
 * Events {@link EventLog.verifyChain} holds in memory at once: it reads the
 * log in scans of this many events (all in one transaction).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, EVENT_VERIFY_BATCH } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * const total = 2 * EVENT_VERIFY_BATCH + 1; // verified in three scans
 * await run.transaction(async (tx) => {
 *   for (let i = 0; i < total; i++) await tx.events.append("tick", i);
 * });
 * assert.deepEqual(await run.events.verifyChain(), { valid: true, length: total });
 * ```
 */
export const EVENT_VERIFY_BATCH = 1024;

/** One event of a run's log. */
export interface Event {
  /** Position in the log: 0 for the first event, then 1, 2, … without gaps. */
  sequence: number;
  /** The event type (a non-empty string; indexed). */
  type: string;
  /** The payload, any storable {@link Value}. */
  payload: Value;
  /** When it was appended, ms since the epoch (the database clock, whole ms). */
  timestamp: number;
  /** The previous event's `hash`; {@link GENESIS_HASH} for sequence 0. */
  prevHash: string;
  /** SHA-256 of this event's other fields, 64 lowercase hex digits ({@link hashEvent}). */
  hash: string;
}

/** What {@link EventLog.append} returns. */
export interface AppendResult {
  /** The event's sequence number. */
  sequence: number;
  /** The event's hash, 64 lowercase hex digits. */
  hash: string;
}

/** The outcome of {@link EventLog.verifyChain}. */
export interface ChainVerification {
  /** True if every event is present, in place, and chained. */
  valid: boolean;
  /** The log's length as its head records it. */
  length: number;
  /** The sequence number of the first event that fails (absent when valid). */
  firstInvalid?: number;
  /** What failed there (absent when valid). */
  error?: string;
}

/**
 * The hash of an event: SHA-256, as 64 lowercase hex digits, over the
 * canonical encoding (docs/FORMAT.md "Canonical form") of the map
 * `{ sequence, type, payload, timestamp, prevHash }` with the event's own
 * values (`prevHash` as its hex string). Anyone holding the events can
 * re-check the chain with it.
 *
 * @param e The event's fields (a whole {@link Event} will do; `hash` is ignored).
 * @returns The hash.
 * @throws {TypeError} If the payload is not a storable value.
 *
 * @example Re-check an event read from the log
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database, GENESIS_HASH, hashEvent } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * const { hash } = await run.events.append("started", { task: 1 });
 * const e = (await run.events.read(0))!;
 * assert.equal(e.prevHash, GENESIS_HASH);
 * assert.equal(hashEvent(e), hash);
 * ```
 */
export function hashEvent(
  e: Pick<Event, "sequence" | "type" | "payload" | "timestamp" | "prevHash">,
): string {
  return sha256Hex(
    encodeCanonical({
      sequence: e.sequence,
      type: e.type,
      payload: e.payload,
      timestamp: e.timestamp,
      prevHash: e.prevHash,
    }),
  );
}

/**
 * Checks a sequence number argument.
 *
 * @param v The argument.
 * @param what What it is, for the message.
 * @returns It.
 */
function checkSequence(v: unknown, what: string): number {
  if (typeof v !== "number") {
    throw new TypeError(`Cannot read events: ${what} must be a number, got ${typeof v}`);
  }
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`Cannot read events: ${what} must be a whole number >= 0, got ${v}`);
  }
  return v;
}

/**
 * The engine clock as an event timestamp: whole milliseconds ≥ 0 (one
 * instant per transaction attempt).
 */
function timestampOf(ctx: TxContext, what: string): number {
  const t = Math.floor(ctx.now());
  if (!Number.isSafeInteger(t) || t < 0) {
    throw new RangeError(`Cannot ${what}: the clock returned ${ctx.now()}, not a time >= 0`);
  }
  return t;
}

// ---------------------------------------------------------------------------
// Keys and records (docs/FORMAT.md)

const eventKey = (n: number, seq: number): Uint8Array => key(n, TAG.EVENT).u64(seq).finish();
const headKey = (n: number): Uint8Array => key(n, TAG.EVENT_HEAD).finish();
const typeKey = (n: number, type: string, seq: number): Uint8Array =>
  key(n, TAG.EVENT_BY_TYPE).string(type).u64(seq).finish();

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
}

const GENESIS_BYTES = new Uint8Array(32);
const PAYLOAD_KEY = encodeValue("payload");

/** The log head: how many events, and the last one's hash. */
interface Head {
  length: number;
  hash: Uint8Array;
}

/** `{ length: <uint>, head: <bin 32> }` as {@link encodeHead} writes it: 0x82 · fixstr "length". */
const HEAD_START = encodeValue({ length: 0, head: GENESIS_BYTES }).subarray(0, 8);
/** After the length: fixstr "head" · bin8 of 32 bytes. */
const HEAD_HASH_AT = encodeValue({ length: 0, head: GENESIS_BYTES }).subarray(9, 16);

/** The head as {@link encodeHead} writes it, read without the generic decoder; or undefined. */
function decodeHeadFast(bytes: Uint8Array): Head | undefined {
  for (let i = 0; i < HEAD_START.length; i++) if (bytes[i] !== HEAD_START[i]) return undefined;
  let p = HEAD_START.length;
  const b = bytes[p]!;
  let length: number;
  if (b < 0x80) {
    length = b;
    p += 1;
  } else if (b === 0xcc) {
    length = bytes[p + 1]!;
    p += 2;
  } else if (b === 0xcd) {
    length = (bytes[p + 1]! << 8) | bytes[p + 2]!;
    p += 3;
  } else if (b === 0xce) {
    length = readU32(bytes, p + 1);
    p += 5;
  } else if (b === 0xcf) {
    length = readU32(bytes, p + 1) * 0x1_0000_0000 + readU32(bytes, p + 5);
    p += 9;
  } else return undefined;
  for (let i = 0; i < HEAD_HASH_AT.length; i++) {
    if (bytes[p + i] !== HEAD_HASH_AT[i]) return undefined;
  }
  p += HEAD_HASH_AT.length;
  if (p + 32 !== bytes.length || !Number.isSafeInteger(length)) return undefined;
  return { length, hash: bytes.subarray(p, p + 32) };
}

function readU32(b: Uint8Array, p: number): number {
  return b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}

function decodeHead(bytes: Uint8Array | undefined, n: number): Head {
  if (bytes === undefined) return { length: 0, hash: GENESIS_BYTES };
  const fast = decodeHeadFast(bytes);
  if (fast !== undefined) return fast;
  let v: Value;
  try {
    v = decodeValue(bytes);
  } catch (cause) {
    throw new CorruptionError(`Cannot read the event log head: ${(cause as Error).message}`, {
      where: `event head of run number ${n}`,
      cause,
    });
  }
  const o = v as Record<string, Value>;
  if (
    typeof o !== "object" || o === null || !Number.isSafeInteger(o.length) ||
    (o.length as number) < 0 || !(o.head instanceof Uint8Array) || o.head.length !== 32
  ) {
    throw new CorruptionError("Cannot read the event log head: it is malformed", {
      where: `event head of run number ${n}`,
    });
  }
  return { length: o.length as number, hash: o.head };
}

/** Writes heads, tails and records: the fields the generic encoder would, in the same bytes. */
const writer = new MapWriter();

/** `encodeValue({ length, head })`. */
function encodeHead(h: Head): Uint8Array {
  return writer.begin(2).key("length").int(h.length).key("head").bytes(h.hash).finish();
}

/**
 * An append checked and encoded before its sequence number is known: the
 * part of the hash input and of the record that does not depend on it.
 */
interface Prepared {
  type: string;
  /** `encodeValue(payload)`, stored. */
  payload: Uint8Array;
  /** `0x85 · "payload" · encodeCanonical(payload)`: the start of the hash input. */
  hashPrefix: Uint8Array;
}

function prepare(type: unknown, payload: unknown): Prepared {
  const t = checkName(type, "an event type");
  // A bad payload fails here, before anything is written. Most payloads'
  // keys are already in canonical order: then one encoding serves both.
  const { bytes: stored, canonical: same } = encodeValueCanonically(payload);
  const canonical = same ? stored : encodeCanonical(payload);
  const hashPrefix = slabAlloc(1 + PAYLOAD_KEY.length + canonical.length);
  hashPrefix[0] = 0x85; // fixmap of the 5 hashed fields; "payload" sorts first
  hashPrefix.set(PAYLOAD_KEY, 1);
  hashPrefix.set(canonical, 1 + PAYLOAD_KEY.length);
  return { type: t, payload: stored, hashPrefix };
}

/** The writes of one append at `seq` after `prev`. */
interface Built {
  hash: Uint8Array;
  record: Uint8Array;
  head: Uint8Array;
}

/**
 * Finishes an append: the hash (the same bytes {@link hashEvent} hashes,
 * assembled from the prepared prefix so the commit step does not re-encode
 * the payload) and the record.
 */
function build(p: Prepared, seq: number, prev: Uint8Array, timestamp: number): Built {
  // The other four fields in canonical order (prevHash, sequence, timestamp,
  // type), without their own fixmap byte: they continue the prefix's map.
  // encodeCanonical({ prevHash: hex, sequence, timestamp, type }), hashed at once.
  const tail = writer.begin(4).key("prevHash").hex(prev).key("sequence").int(seq)
    .key("timestamp").int(timestamp).key("type").str(p.type).view();
  const hash = sha256Concat(p.hashPrefix, tail.subarray(1));
  // The record: encodeValue({ sequence, type, timestamp, prevHash, hash })
  // with "payload" and the stored bytes as a sixth entry.
  const record = writer.begin(6).key("sequence").int(seq).key("type").str(p.type)
    .key("timestamp").int(timestamp).key("prevHash").bytes(prev).key("hash").bytes(hash)
    .key("payload").raw(p.payload).finish();
  return { hash, record, head: encodeHead({ length: seq + 1, hash }) };
}

/**
 * Decodes an event record, checking that it is one and that it sits at
 * its own sequence number.
 */
function decodeEvent(bytes: Uint8Array, seq: number, n: number): Event {
  return decodeEventAt(bytes, 0, bytes.length, seq, n);
}

/**
 * {@link decodeEvent} of the record `bytes[start, end)`, without a view of
 * it (the decoder copies binary fields, so nothing returned aliases `bytes`).
 */
function decodeEventAt(
  bytes: Uint8Array,
  start: number,
  end: number,
  seq: number,
  n: number,
): Event {
  const where = `event ${seq} of run number ${n}`;
  let v: Value;
  try {
    v = decodeValueFrom(bytes, start, end);
  } catch (cause) {
    throw new CorruptionError(`Cannot read event ${seq}: ${(cause as Error).message}`, {
      where,
      cause,
    });
  }
  const o = v as Record<string, Value>;
  if (
    typeof o !== "object" || o === null || Array.isArray(o) || o instanceof Uint8Array ||
    o instanceof Date || typeof o.sequence !== "number" || typeof o.type !== "string" ||
    typeof o.timestamp !== "number" || !(o.prevHash instanceof Uint8Array) ||
    o.prevHash.length !== 32 || !(o.hash instanceof Uint8Array) || o.hash.length !== 32 ||
    !("payload" in o)
  ) {
    throw new CorruptionError(`Cannot read event ${seq}: its record is malformed`, { where });
  }
  if (o.sequence !== seq) {
    throw new CorruptionError(
      `Cannot read event ${seq}: its record says sequence ${o.sequence}`,
      { where },
    );
  }
  return {
    sequence: seq,
    type: o.type,
    payload: o.payload as Value,
    timestamp: o.timestamp,
    prevHash: toHex(o.prevHash),
    hash: toHex(o.hash),
  };
}

function seqOfKey(k: Uint8Array): number {
  const r = new KeyReader(k);
  r.u32();
  r.u8();
  return r.u64();
}

function seqOfTypeKey(k: Uint8Array): number {
  const r = new KeyReader(k);
  r.u32();
  r.u8();
  r.string();
  return r.u64();
}

/** Reads events `[start, end)` in one scan. */
async function scanEvents(
  ctx: TxContext,
  n: number,
  start: number,
  end: number,
  limit?: number,
): Promise<Event[]> {
  if (end <= start) return [];
  const rows = await ctx.tx.scan({
    gte: eventKey(n, start),
    lt: eventKey(n, end),
    ...(limit === undefined ? {} : { limit }),
  });
  return rows.map(([k, v]) => decodeEvent(v, seqOfKey(k), n));
}

// ---------------------------------------------------------------------------

/**
 * A run's event log: `run.events` (each call its own transaction) or
 * `tx.events` (inside a transaction). Holds no state of its own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Database } from "@in-mem/core";
 *
 * await using db = await Database.open();
 * const run = await db.runs.create();
 * await run.events.append("task_started", { task: 1 });
 * await run.events.append("task_done", { task: 1, ok: true });
 * assert.equal(await run.events.length(), 2);
 * assert.equal((await run.events.verifyChain()).valid, true);
 * ```
 */
export class EventLog {
  readonly #scope: Scope;

  /** @internal Use `run.events` or `tx.events`. */
  constructor(scope: Scope) {
    this.#scope = scope;
  }

  /**
   * Appends an event: it gets the next sequence number and is chained to
   * the previous event by hash. Standalone, the sequence number and hash are
   * decided at commit time, so concurrent appenders never conflict; inside a
   * transaction they are decided when called, by reading the log head
   * through the transaction (a concurrent append then makes the transaction
   * re-run) — see the module doc.
   *
   * @param type The event type: a non-empty string of at most
   *   MAX_USER_KEY_BYTES UTF-8 bytes.
   * @param payload Any storable value.
   * @returns The event's sequence number and hash.
   * @throws {TypeError} If `type` is not a non-empty string, or the payload
   *   is not storable (the codec's `ValueError`).
   * @throws {RangeError} If `type` or the payload is over its size limit.
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
   * const a = await run.events.append("tool_called", { tool: "search" });
   * const b = await run.events.append("tool_returned", { hits: 3 });
   * assert.deepEqual([a.sequence, b.sequence], [0, 1]);
   * assert.equal((await run.events.read(1))?.prevHash, a.hash);
   * ```
   */
  async append(type: string, payload: Value): Promise<AppendResult> {
    const p = prepare(type, payload);
    const scope = this.#scope;
    const what = `append a ${p.type} event`;
    if (!scope.standalone) {
      return await scope.exec((ctx) => {
        const n = ctx.runNumber(scope.runId, true, what);
        const timestamp = timestampOf(ctx, what);
        const hk = headKey(n);
        const head = decodeHead(ctx.tx.getSync(hk), n);
        const b = build(p, head.length, head.hash, timestamp);
        ctx.tx.put(eventKey(n, head.length), b.record);
        ctx.tx.put(hk, b.head);
        ctx.tx.put(typeKey(n, p.type, head.length), new Uint8Array(0));
        return { sequence: head.length, hash: toHex(b.hash) };
      });
    }
    let out: AppendResult | undefined;
    // Synchronous: standalone appends of one turn may share a commit.
    await scope.write((ctx) => {
      const n = ctx.runNumber(scope.runId, true, what);
      const timestamp = timestampOf(ctx, what);
      // Only the committing attempt's operation runs, once, in the commit step.
      ctx.tx.atCommit((view: CommitView) => {
        const hk = headKey(n);
        const head = decodeHead(view.get(hk), n);
        const b = build(p, head.length, head.hash, timestamp);
        view.put(eventKey(n, head.length), b.record);
        view.put(hk, b.head);
        view.put(typeKey(n, p.type, head.length), new Uint8Array(0));
        out = { sequence: head.length, hash: toHex(b.hash) };
      });
    });
    if (out === undefined) throw new Error("unreachable: the append committed without its op");
    return out;
  }

  /**
   * The event at `sequence`, or undefined if the log is not that long.
   *
   * @param sequence A whole number ≥ 0.
   * @returns The event.
   * @throws {TypeError} If `sequence` is not a number.
   * @throws {RangeError} If it is negative, fractional or above 2^53 − 1.
   * @throws {RunNotFoundError} If the run does not exist.
   * @throws {CorruptionError} If the stored record is damaged.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.events.append("note", "hello");
   * assert.equal((await run.events.read(0))?.payload, "hello");
   * assert.equal(await run.events.read(1), undefined);
   * ```
   */
  async read(sequence: number): Promise<Event | undefined> {
    const seq = checkSequence(sequence, "the sequence");
    const scope = this.#scope;
    return await scope.read((ctx) => {
      const n = ctx.runNumber(scope.runId, false, () => `read event ${seq}`);
      // Found in place, like a KV get: no key, no copy of the record.
      const at = ctx.reads.locateSync(key(n, TAG.EVENT).u64(seq));
      return at === undefined ? undefined : decodeEventAt(at.bytes, at.start, at.end, seq, n);
    });
  }

  /**
   * The events with sequence numbers in `[start, end)`, in order (empty if
   * `end <= start`; only the ones that exist past the log's end).
   *
   * @param start First sequence number, included.
   * @param end Last sequence number, excluded.
   * @returns The events.
   * @throws {TypeError} If an argument is not a number.
   * @throws {RangeError} If one is negative, fractional or above 2^53 − 1.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * for (const step of ["a", "b", "c", "d"]) await run.events.append("step", step);
   * const mid = await run.events.readRange(1, 3);
   * assert.deepEqual(mid.map((e) => e.payload), ["b", "c"]);
   * ```
   */
  async readRange(start: number, end: number): Promise<Event[]> {
    const s = checkSequence(start, "start");
    const e = checkSequence(end, "end");
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, `read events ${s} to ${e}`);
      return await scanEvents(ctx, n, s, e);
    });
  }

  /**
   * The latest event, or undefined if the log is empty.
   *
   * @returns The event with the highest sequence number.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * assert.equal(await run.events.head(), undefined);
   * await run.events.append("a", 1);
   * await run.events.append("b", 2);
   * assert.equal((await run.events.head())?.type, "b");
   * ```
   */
  async head(): Promise<Event | undefined> {
    const scope = this.#scope;
    return await scope.read((ctx) => {
      const n = ctx.runNumber(scope.runId, false, "read the event log head");
      const head = decodeHead(ctx.reads.getSync(headKey(n)), n);
      if (head.length === 0) return undefined;
      const seq = head.length - 1;
      const bytes = ctx.reads.getSync(eventKey(n, seq));
      if (bytes === undefined) {
        throw new CorruptionError(`Cannot read the event log head: event ${seq} is missing`, {
          where: `event ${seq} of run number ${n}`,
        });
      }
      return decodeEvent(bytes, seq, n);
    });
  }

  /**
   * How many events the log holds (the next sequence number).
   *
   * @returns The length.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.events.append("a", null);
   * assert.equal(await run.events.length(), 1);
   * ```
   */
  async length(): Promise<number> {
    const scope = this.#scope;
    return await scope.read((ctx) => {
      const n = ctx.runNumber(scope.runId, false, "read the event log length");
      return decodeHead(ctx.reads.getSync(headKey(n)), n).length;
    });
  }

  /**
   * Whether the log has no events.
   *
   * @returns True when empty.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * assert.equal(await run.events.isEmpty(), true);
   * await run.events.append("a", null);
   * assert.equal(await run.events.isEmpty(), false);
   * ```
   */
  async isEmpty(): Promise<boolean> {
    return (await this.length()) === 0;
  }

  /**
   * The events of one type, in sequence order, found through the type
   * index (not a scan of the log).
   *
   * @param type The event type.
   * @returns The events (empty when none).
   * @throws {TypeError} If `type` is not a non-empty string.
   * @throws {RangeError} If it is over MAX_USER_KEY_BYTES UTF-8 bytes.
   * @throws {RunNotFoundError} If the run does not exist.
   * @throws {CorruptionError} If an index entry points at a missing event.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * await run.events.append("tool_called", "search");
   * await run.events.append("thought", "hmm");
   * await run.events.append("tool_called", "fetch");
   * const calls = await run.events.readByType("tool_called");
   * assert.deepEqual(calls.map((e) => [e.sequence, e.payload]), [[0, "search"], [2, "fetch"]]);
   * ```
   */
  async readByType(type: string): Promise<Event[]> {
    const t = checkName(type, "an event type");
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, `read ${t} events`);
      const rows = await ctx.tx.scan(range(key(n, TAG.EVENT_BY_TYPE).string(t).finish()));
      const out: Event[] = [];
      for (const [k] of rows) {
        const seq = seqOfTypeKey(k);
        const bytes = await ctx.tx.get(eventKey(n, seq));
        if (bytes === undefined) {
          throw new CorruptionError(
            `Cannot read ${t} events: the type index lists event ${seq}, which is missing`,
            { where: `event ${seq} of run number ${n}` },
          );
        }
        const e = decodeEvent(bytes, seq, n);
        if (e.type !== t) {
          throw new CorruptionError(
            `Cannot read ${t} events: the type index lists event ${seq}, of type ${e.type}`,
            { where: `event ${seq} of run number ${n}` },
          );
        }
        out.push(e);
      }
      return out;
    });
  }

  /**
   * Iterates over the log in sequence order, reading
   * {@link EVENT_ITERATOR_BATCH} events per read. On a run handle each batch
   * is a transaction of its own: since events never change and sequence
   * numbers have no gaps, the events yielded are always a prefix of the log
   * in order, without duplicates — events appended while iterating are
   * yielded if they exist when their batch is read, and iteration ends at the
   * first batch that is not full. Inside a transaction every batch reads the
   * transaction's snapshot (with its own appends); finish iterating before
   * the transaction callback returns.
   *
   * @returns An async iterator of events.
   * @throws {RunNotFoundError} If the run does not exist (from the first read).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * for (let i = 0; i < 5; i++) await run.events.append("tick", i);
   * const seen: number[] = [];
   * for await (const e of run.events) seen.push(e.sequence);
   * assert.deepEqual(seen, [0, 1, 2, 3, 4]);
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Event> {
    for (let start = 0;; start += EVENT_ITERATOR_BATCH) {
      const batch = await this.readRange(start, start + EVENT_ITERATOR_BATCH);
      yield* batch;
      if (batch.length < EVENT_ITERATOR_BATCH) return;
    }
  }

  /**
   * Checks the whole chain in one read: every event from 0 to the head's
   * length is present at its own sequence number, its `prevHash` is the
   * previous event's hash (64 zeros for the first), its hash is
   * {@link hashEvent} of its fields, the head's hash is the last event's,
   * and no event lies past the head. Reads the log in scans of
   * {@link EVENT_VERIFY_BATCH} events.
   *
   * @returns `valid`, the length, and at the first failure its sequence
   *   number and what failed.
   * @throws {RunNotFoundError} If the run does not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Database } from "@in-mem/core";
   *
   * await using db = await Database.open();
   * const run = await db.runs.create();
   * assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 0 });
   * await run.events.append("a", { x: 1 });
   * await run.events.append("b", { x: 2 });
   * assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 2 });
   * ```
   */
  async verifyChain(): Promise<ChainVerification> {
    const scope = this.#scope;
    return await scope.exec(async (ctx) => {
      const { n } = await ctx.readableRun(scope.runId, "verify the event chain");
      let head: Head;
      try {
        head = decodeHead(await ctx.tx.get(headKey(n)), n);
      } catch (err) {
        if (!(err instanceof CorruptionError)) throw err;
        return { valid: false, length: 0, firstInvalid: 0, error: err.message };
      }
      const length = head.length;
      const fail = (seq: number, error: string): ChainVerification => ({
        valid: false,
        length,
        firstInvalid: seq,
        error,
      });
      let prev = GENESIS_HASH;
      let expected = 0;
      while (expected < length) {
        const rows = await ctx.tx.scan({
          gte: eventKey(n, expected),
          lt: eventKey(n, length),
          limit: EVENT_VERIFY_BATCH,
        });
        if (rows.length === 0) break;
        for (const [k, v] of rows) {
          const seq = seqOfKey(k);
          if (seq !== expected) return fail(expected, `event ${expected} is missing`);
          let e: Event;
          try {
            e = decodeEvent(v, seq, n);
          } catch (err) {
            if (!(err instanceof CorruptionError)) throw err;
            return fail(seq, err.message);
          }
          if (e.prevHash !== prev) {
            return fail(seq, `event ${seq}'s prevHash is not the hash of the event before it`);
          }
          let computed: string;
          try {
            computed = hashEvent(e);
          } catch (err) {
            return fail(seq, `event ${seq} cannot be hashed: ${(err as Error).message}`);
          }
          if (computed !== e.hash) {
            return fail(seq, `event ${seq}'s hash does not match its contents`);
          }
          prev = e.hash;
          expected++;
        }
      }
      if (expected < length) return fail(expected, `event ${expected} is missing`);
      if (length > 0 && toHex(head.hash) !== prev) {
        return fail(length - 1, `the log head's hash is not event ${length - 1}'s hash`);
      }
      const after = await ctx.tx.scan({
        gte: eventKey(n, length),
        lt: range(key(n, TAG.EVENT).finish()).lt,
        limit: 1,
      });
      if (after.length > 0) {
        const seq = seqOfKey(after[0]![0]);
        return fail(length, `event ${seq} lies past the log head (length ${length})`);
      }
      return { valid: true, length };
    });
  }
}
