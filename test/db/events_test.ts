// The event log (issue 4 "Events", seed 002 EventLog stories #174–#179):
// append with sequence numbers and a SHA-256 chain, reads, the type index,
// the async iterator, chain verification against tampering written straight
// into the store, transactions, 64 concurrent appenders without conflicts,
// a model-based property (with a negative control), run isolation, recovery
// after close/reopen and after simulated crashes, and bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { decodeValue, encodeCanonical, encodeValue, type Value } from "../../src/core/codec.ts";
import { MAX_USER_KEY_BYTES } from "../../src/core/keys.ts";
import { decodeRunRecord, encodeRunRecord, runKey } from "../../src/db/context.ts";
import { Database, type Run } from "../../src/db/database.ts";
import {
  type Event,
  EVENT_ITERATOR_BATCH,
  EventLog,
  GENESIS_HASH,
  hashEvent,
} from "../../src/db/events.ts";
import { key, TAG } from "../../src/db/layout.ts";
import { RunClosedError, RunNotFoundError, StorageError } from "../../src/errors.ts";
import { SIM_CRASH_MODES, SimFS } from "../../src/fs/sim.ts";

/** The negative controls' seed: each fails on the same case on every runtime, every time. */
const NEGATIVE_CONTROL_SEED = 1;

// ---- helpers

/** The internal number of run `id` (the first element of its keys). */
function runNumber(db: Database, id: string): number {
  const bytes = db.engine.store.get(runKey(id));
  assert.ok(bytes !== undefined, `run ${id} has a record`);
  return decodeRunRecord(bytes, id).n;
}

const eventKey = (n: number, seq: number): Uint8Array => key(n, TAG.EVENT).u64(seq).finish();

/** Writes raw bytes (or a delete) straight into the store, bypassing the event log. */
async function rawWrite(db: Database, k: Uint8Array, v: Uint8Array | null): Promise<void> {
  await db.engine.transaction((tx) => {
    if (v === null) tx.delete(k);
    else tx.put(k, v);
  });
}

/** The stored record of event `seq`, decoded as a plain map. */
function rawRecord(db: Database, n: number, seq: number): Record<string, Value> {
  const bytes = db.engine.store.get(eventKey(n, seq));
  assert.ok(bytes !== undefined);
  return decodeValue(bytes) as Record<string, Value>;
}

/** Sets a run's status by rewriting its record (the run lifecycle API is tested elsewhere). */
async function setStatus(db: Database, id: string, status: "completed" | "paused"): Promise<void> {
  const bytes = db.engine.store.get(runKey(id))!;
  const r = decodeRunRecord(bytes, id);
  r.status = status;
  await rawWrite(db, runKey(id), encodeRunRecord(r));
}

async function appendN(run: Run, count: number, type = "step"): Promise<void> {
  for (let i = 0; i < count; i++) await run.events.append(type, { i });
}

// ---- append and the chain (#174, #175)

test("append() returns sequence 0 for the first event and increments by one", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const results = [];
  for (let i = 0; i < 5; i++) results.push(await run.events.append("step", i));
  assert.deepEqual(results.map((r) => r.sequence), [0, 1, 2, 3, 4]);
  for (const r of results) assert.match(r.hash, /^[0-9a-f]{64}$/);
  assert.equal(new Set(results.map((r) => r.hash)).size, 5);
});

test("append() chains hashes: prevHash is the previous hash, the first is 64 zeros", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const a = await run.events.append("a", { x: 1 });
  const b = await run.events.append("b", [1, 2, 3]);
  const e0 = (await run.events.read(0))!;
  const e1 = (await run.events.read(1))!;
  assert.equal(GENESIS_HASH, "0".repeat(64));
  assert.equal(e0.prevHash, GENESIS_HASH);
  assert.equal(e0.hash, a.hash);
  assert.equal(e1.prevHash, a.hash);
  assert.equal(e1.hash, b.hash);
  assert.equal(hashEvent(e0), a.hash);
  assert.equal(hashEvent(e1), b.hash);
});

test("the hash is SHA-256 of canonical {sequence,type,payload,timestamp,prevHash}", async () => {
  // The worked example of docs/FORMAT.md.
  const canonicalHex = "85a77061796c6f616481a47461736b01a87072657648617368d940" + "30".repeat(64) +
    "a873657175656e636500a974696d657374616d70cf0000018bcfe56800" +
    "a474797065ac7461736b5f73746172746564";
  const hash0 = "07e7c908254bb5968cc5ce3b3c7e67878381d1c030f5422441215ddf9960d938";
  const hash1 = "acf95a86f6b593a65ee76e15f61dd02cca8146f538910a81a01cf6cd98b48508";
  const m = {
    sequence: 0,
    type: "task_started",
    payload: { task: 1 },
    timestamp: 1700000000000,
    prevHash: GENESIS_HASH,
  };
  const bytes = encodeCanonical(m);
  assert.equal(Buffer.from(bytes).toString("hex"), canonicalHex);
  assert.equal(createHash("sha256").update(bytes).digest("hex"), hash0);
  assert.equal(hashEvent(m), hash0);

  // The log produces exactly these hashes (the clock is injected).
  let now = 1700000000000;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  assert.deepEqual(await run.events.append("task_started", { task: 1 }), {
    sequence: 0,
    hash: hash0,
  });
  now = 1700000000500;
  // Key order of the payload does not change the hash (canonical form).
  assert.deepEqual(await run.events.append("task_done", { task: 1, ok: true }), {
    sequence: 1,
    hash: hash1,
  });
  // The payload comes back in the caller's key order.
  assert.deepEqual(Object.keys((await run.events.read(1))!.payload as object), ["task", "ok"]);
});

test("the hash chain is deterministic: the same inputs give the same hashes", async () => {
  await using db = await Database.open(undefined, { clock: () => 42 });
  const a = await db.runs.create();
  const b = await db.runs.create();
  const ha = [];
  const hb = [];
  for (const p of [1, "two", { three: [3] }]) {
    ha.push((await a.events.append("t", p)).hash);
    hb.push((await b.events.append("t", p)).hash);
  }
  assert.deepEqual(ha, hb);
  // A different payload changes its hash and every later one.
  const c = await db.runs.create();
  const hc = [];
  for (const p of [1, "TWO", { three: [3] }]) hc.push((await c.events.append("t", p)).hash);
  assert.equal(hc[0], ha[0]);
  assert.notEqual(hc[1], ha[1]);
  assert.notEqual(hc[2], ha[2]);
});

test("the event record and head are stored as documented", async () => {
  await using db = await Database.open(undefined, { clock: () => 1234 });
  const run = await db.runs.create();
  const { hash } = await run.events.append("note", { a: 1 });
  const n = runNumber(db, run.id);
  const rec = rawRecord(db, n, 0);
  assert.deepEqual(Object.keys(rec), [
    "sequence",
    "type",
    "timestamp",
    "prevHash",
    "hash",
    "payload",
  ]);
  assert.equal(rec.sequence, 0);
  assert.equal(rec.type, "note");
  assert.equal(rec.timestamp, 1234);
  assert.deepEqual(rec.prevHash, new Uint8Array(32));
  assert.equal(Buffer.from(rec.hash as Uint8Array).toString("hex"), hash);
  assert.deepEqual(rec.payload, { a: 1 });
  const head = decodeValue(db.engine.store.get(key(n, TAG.EVENT_HEAD).finish())!);
  assert.deepEqual(head, { length: 1, head: rec.hash });
  const idx = db.engine.store.get(key(n, TAG.EVENT_BY_TYPE).string("note").u64(0).finish());
  assert.deepEqual(idx, new Uint8Array(0));
});

test("append() stores every kind of value as its payload", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const payloads: Value[] = [
    null,
    true,
    -0,
    2 ** 60,
    2n ** 63n,
    "text",
    new Uint8Array([1, 2]),
    new Date(5),
    [1, [2]],
    { nested: { deep: [null] } },
  ];
  for (const p of payloads) await run.events.append("v", p);
  const events = await run.events.readRange(0, payloads.length);
  assert.deepEqual(events.map((e) => e.payload), payloads);
  assert.equal((await run.events.verifyChain()).valid, true);
});

// ---- reads (#176)

test("read() returns the event by sequence and undefined past the end", async () => {
  let now = 100;
  await using db = await Database.open(undefined, { clock: () => now });
  const run = await db.runs.create();
  await run.events.append("a", "first");
  now = 200;
  await run.events.append("b", "second");
  const e = await run.events.read(1);
  assert.deepEqual(
    { ...e, hash: undefined, prevHash: undefined },
    {
      sequence: 1,
      type: "b",
      payload: "second",
      timestamp: 200,
      hash: undefined,
      prevHash: undefined,
    },
  );
  assert.equal(await run.events.read(2), undefined);
  assert.equal(await run.events.read(Number.MAX_SAFE_INTEGER), undefined);
});

test("readRange() returns [start, end) in order, clipped to the log", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await appendN(run, 6);
  const seqs = async (s: number, e: number) =>
    (await run.events.readRange(s, e)).map((x) => x.sequence);
  assert.deepEqual(await seqs(0, 6), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(await seqs(2, 4), [2, 3]);
  assert.deepEqual(await seqs(4, 100), [4, 5]);
  assert.deepEqual(await seqs(3, 3), []);
  assert.deepEqual(await seqs(5, 1), []);
  assert.deepEqual(await seqs(10, 20), []);
});

test("head(), length() and isEmpty() follow the log", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  assert.equal(await run.events.head(), undefined);
  assert.equal(await run.events.length(), 0);
  assert.equal(await run.events.isEmpty(), true);
  await run.events.append("a", 1);
  await run.events.append("b", 2);
  assert.equal((await run.events.head())?.sequence, 1);
  assert.equal((await run.events.head())?.type, "b");
  assert.equal(await run.events.length(), 2);
  assert.equal(await run.events.isEmpty(), false);
});

// ---- by type and iteration (#178)

test("readByType() returns the matching events in sequence order, [] for none", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const types = ["call", "thought", "call", "call:x", "thought", "call"];
  for (const [i, t] of types.entries()) await run.events.append(t, i);
  assert.deepEqual((await run.events.readByType("call")).map((e) => e.sequence), [0, 2, 5]);
  assert.deepEqual((await run.events.readByType("thought")).map((e) => e.payload), [1, 4]);
  assert.deepEqual((await run.events.readByType("call:x")).map((e) => e.sequence), [3]);
  // A prefix of a type is another type.
  assert.deepEqual(await run.events.readByType("cal"), []);
  assert.deepEqual(await run.events.readByType("missing"), []);
});

test("readByType() reads the type index, not the log", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await appendN(run, 3, "t");
  const n = runNumber(db, run.id);
  // Removing an index entry (and nothing else) removes the event from the answer.
  await rawWrite(db, key(n, TAG.EVENT_BY_TYPE).string("t").u64(1).finish(), null);
  assert.deepEqual((await run.events.readByType("t")).map((e) => e.sequence), [0, 2]);
  assert.equal((await run.events.read(1))?.type, "t");
});

test("the async iterator yields every event in sequence order, across batches", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const total = EVENT_ITERATOR_BATCH * 2 + 7;
  await run.transaction(async (tx) => {
    for (let i = 0; i < total; i++) await tx.events.append("t", i);
  });
  const seen: number[] = [];
  for await (const e of run.events) {
    assert.equal(e.payload, e.sequence);
    seen.push(e.sequence);
  }
  assert.deepEqual(seen, Array.from({ length: total }, (_, i) => i));
  const empty = await db.runs.create();
  for await (const _ of empty.events) assert.fail("an empty log yields nothing");
});

test("the iterator yields a prefix without duplicates while appends continue", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.transaction(async (tx) => {
    for (let i = 0; i < EVENT_ITERATOR_BATCH + 10; i++) await tx.events.append("t", i);
  });
  const seen: number[] = [];
  for await (const e of run.events) {
    seen.push(e.sequence);
    // Append while iterating: these land after what exists and are read by later batches.
    if (e.sequence % 50 === 0) await run.events.append("t", -1);
  }
  assert.deepEqual(seen, Array.from({ length: seen.length }, (_, i) => i));
  assert.ok(seen.length >= EVENT_ITERATOR_BATCH + 10);
  assert.ok(seen.length <= (await run.events.length()));
});

// ---- verifyChain (#177), tampering written straight into the store

test("verifyChain() is valid for a correct chain and for an empty log", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 0 });
  await appendN(run, 20);
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 20 });
});

/** A run with 6 events; returns it and its number. */
async function sixEvents(db: Database): Promise<{ run: Run; n: number }> {
  const run = await db.runs.create();
  for (let i = 0; i < 6; i++) await run.events.append(i % 2 ? "odd" : "even", { i });
  return { run, n: runNumber(db, run.id) };
}

test("verifyChain() detects a changed payload at its sequence", async () => {
  await using db = await Database.open();
  const { run, n } = await sixEvents(db);
  const rec = rawRecord(db, n, 3);
  rec.payload = { i: 33 };
  await rawWrite(db, eventKey(n, 3), encodeValue(rec));
  const v = await run.events.verifyChain();
  assert.equal(v.valid, false);
  assert.equal(v.length, 6);
  assert.equal(v.firstInvalid, 3);
  assert.match(v.error!, /hash does not match/);
});

test("verifyChain() detects a changed prevHash at its sequence", async () => {
  await using db = await Database.open();
  const { run, n } = await sixEvents(db);
  const rec = rawRecord(db, n, 2);
  (rec.prevHash as Uint8Array)[0]! ^= 1;
  await rawWrite(db, eventKey(n, 2), encodeValue(rec));
  const v = await run.events.verifyChain();
  assert.deepEqual([v.valid, v.firstInvalid], [false, 2]);
  assert.match(v.error!, /prevHash/);
});

test("verifyChain() detects a changed hash (hash corruption)", async () => {
  await using db = await Database.open();
  const { run, n } = await sixEvents(db);
  const rec = rawRecord(db, n, 0);
  (rec.hash as Uint8Array)[31]! ^= 0x80;
  await rawWrite(db, eventKey(n, 0), encodeValue(rec));
  const v = await run.events.verifyChain();
  assert.deepEqual([v.valid, v.firstInvalid], [false, 0]);
});

test("verifyChain() detects a missing event (a gap)", async () => {
  await using db = await Database.open();
  const { run, n } = await sixEvents(db);
  await rawWrite(db, eventKey(n, 4), null);
  const v = await run.events.verifyChain();
  assert.deepEqual([v.valid, v.firstInvalid], [false, 4]);
  assert.match(v.error!, /missing/);
  // The last event removed: the head still says 6.
  const b = await sixEvents(db);
  await rawWrite(db, eventKey(b.n, 5), null);
  const w = await b.run.events.verifyChain();
  assert.deepEqual([w.valid, w.length, w.firstInvalid], [false, 6, 5]);
});

test("verifyChain() detects a swapped pair of events", async () => {
  await using db = await Database.open();
  const { run, n } = await sixEvents(db);
  const a = db.engine.store.get(eventKey(n, 1))!;
  const b = db.engine.store.get(eventKey(n, 2))!;
  await db.engine.transaction((tx) => {
    tx.put(eventKey(n, 1), b.slice());
    tx.put(eventKey(n, 2), a.slice());
  });
  const v = await run.events.verifyChain();
  assert.deepEqual([v.valid, v.firstInvalid], [false, 1]);
});

test("verifyChain() detects an event re-hashed consistently, at the next one", async () => {
  await using db = await Database.open();
  const { run, n } = await sixEvents(db);
  const e = (await run.events.read(2))!;
  const forged = { ...e, payload: { i: 99 } };
  forged.hash = hashEvent(forged);
  const rec = rawRecord(db, n, 2);
  rec.payload = forged.payload;
  rec.hash = Buffer.from(forged.hash, "hex");
  rec.hash = new Uint8Array(rec.hash);
  await rawWrite(db, eventKey(n, 2), encodeValue(rec));
  const v = await run.events.verifyChain();
  assert.deepEqual([v.valid, v.firstInvalid], [false, 3]);
  assert.match(v.error!, /prevHash/);
});

test("verifyChain() detects a rewritten last event through the log head", async () => {
  await using db = await Database.open();
  const { run, n } = await sixEvents(db);
  const e = (await run.events.read(5))!;
  const forged = { ...e, payload: "forged" };
  const rec = rawRecord(db, n, 5);
  rec.payload = forged.payload;
  rec.hash = new Uint8Array(Buffer.from(hashEvent(forged), "hex"));
  await rawWrite(db, eventKey(n, 5), encodeValue(rec));
  const v = await run.events.verifyChain();
  assert.deepEqual([v.valid, v.firstInvalid], [false, 5]);
  assert.match(v.error!, /head/);
});

test("verifyChain() detects an event past the head and a malformed record", async () => {
  await using db = await Database.open();
  const { run, n } = await sixEvents(db);
  const rec = rawRecord(db, n, 5);
  rec.sequence = 6;
  await rawWrite(db, eventKey(n, 6), encodeValue(rec));
  const v = await run.events.verifyChain();
  assert.deepEqual([v.valid, v.firstInvalid], [false, 6]);

  const b = await sixEvents(db);
  await rawWrite(db, eventKey(b.n, 1), new Uint8Array([0xc1])); // not MessagePack
  const w = await b.run.events.verifyChain();
  assert.deepEqual([w.valid, w.firstInvalid], [false, 1]);
  // Reading the damaged event itself throws CorruptionError.
  await assert.rejects(b.run.events.read(1), { name: "CorruptionError" });
});

test("the log has no update or delete: the only write is append", () => {
  const methods = Object.getOwnPropertyNames(EventLog.prototype).sort();
  assert.deepEqual(methods, [
    "append",
    "constructor",
    "head",
    "isEmpty",
    "length",
    "read",
    "readByType",
    "readRange",
    "verifyChain",
  ]);
  assert.equal(typeof EventLog.prototype[Symbol.asyncIterator], "function");
});

// ---- transactions (#179)

test("tx.events.append() works in a transaction with other primitives, atomically", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const seq = await run.transaction(async (tx) => {
    const r = await tx.events.append("started", { task: 1 });
    await tx.traces.record({ kind: "thought", content: "starting" });
    assert.equal((await tx.events.read(0))?.type, "started"); // read-your-writes
    return r.sequence;
  });
  assert.equal(seq, 0);
  assert.equal(await run.events.length(), 1);
  assert.equal(await run.traces.count(), 1);
});

test("a throw rolls back every append of the transaction and the trace with it", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.events.append("kept", 0);
  const before = await db.stats();
  await assert.rejects(
    run.transaction(async (tx) => {
      await tx.events.append("lost", 1);
      await tx.events.append("lost", 2);
      await tx.traces.record({ kind: "thought", content: "lost" });
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal((await db.stats()).keys, before.keys);
  assert.equal(await run.events.length(), 1);
  assert.deepEqual(await run.events.readByType("lost"), []);
  assert.equal(await run.traces.count(), 0);
  assert.equal((await run.events.append("next", 3)).sequence, 1);
  assert.equal((await run.events.verifyChain()).valid, true);
});

test("two appends in one transaction chain one after the other", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.events.append("before", 0);
  const [a, b] = await run.transaction(async (tx) => {
    const a = await tx.events.append("x", 1);
    const b = await tx.events.append("y", 2);
    assert.equal(await tx.events.length(), 3);
    assert.equal((await tx.events.head())?.hash, b.hash);
    return [a, b];
  });
  assert.deepEqual([a.sequence, b.sequence], [1, 2]);
  assert.equal((await run.events.read(2))?.prevHash, a.hash);
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 3 });
});

test("a transaction's append re-runs when another append to the run commits first", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  const conflicts = (await db.stats()).conflicts;
  let attempts = 0;
  const r = await run.transaction(async (tx) => {
    attempts++;
    const mine = await tx.events.append("mine", attempts);
    if (attempts === 1) await run.events.append("theirs", 0); // commits in between
    return mine;
  });
  assert.equal(attempts, 2);
  assert.equal((await db.stats()).conflicts, conflicts + 1);
  assert.equal(r.sequence, 1);
  assert.deepEqual((await run.events.readRange(0, 5)).map((e) => e.type), ["theirs", "mine"]);
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 2 });
});

test("appends to two runs in one database transaction commit together", async () => {
  await using db = await Database.open();
  const a = await db.runs.create();
  const b = await db.runs.create();
  await db.transaction(async (tx) => {
    await tx.run(a.id).events.append("x", "a");
    await tx.run(b.id).events.append("y", "b");
  });
  assert.equal((await a.events.read(0))?.payload, "a");
  assert.equal((await b.events.read(0))?.payload, "b");
});

// ---- concurrency

async function sixtyFourAppenders(db: Database): Promise<void> {
  const run = await db.runs.create();
  const conflicts = (await db.stats()).conflicts;
  const results = await Promise.all(
    Array.from({ length: 64 }, (_, i) => run.events.append(`w${i % 4}`, { writer: i })),
  );
  assert.deepEqual(
    results.map((r) => r.sequence).sort((x, y) => x - y),
    Array.from({ length: 64 }, (_, i) => i),
  );
  assert.equal((await db.stats()).conflicts, conflicts, "no appender conflicted");
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 64 });
  // Each appender got the hash of the event at its sequence, holding its payload.
  const events = await run.events.readRange(0, 64);
  for (const [i, r] of results.entries()) {
    const e = events[r.sequence]!;
    assert.equal(e.hash, r.hash);
    assert.deepEqual(e.payload, { writer: i });
  }
  for (let w = 0; w < 4; w++) assert.equal((await run.events.readByType(`w${w}`)).length, 16);
}

test("64 concurrent appenders to one run: sequences 0..63, valid chain, 0 conflicts", async () => {
  await using db = await Database.open();
  await sixtyFourAppenders(db);
});

test("64 concurrent appenders in strict mode on SimFS: 0..63, valid, 0 conflicts", async () => {
  const fs = new SimFS({ seed: 64 });
  await using db = await Database.open("db", { fs, durability: "strict" });
  await sixtyFourAppenders(db);
});

// ---- property: random operations against a model

type Op =
  | { t: "append"; type: string; payload: Value }
  | { t: "appendMany"; items: { type: string; payload: Value }[] }
  | { t: "txAppend"; items: { type: string; payload: Value }[] }
  | { t: "read"; seq: number }
  | { t: "readRange"; start: number; end: number }
  | { t: "readByType"; type: string }
  | { t: "head" };

const typeArb = fc.constantFrom("a", "b", "c", "a/b");
const payloadArb: fc.Arbitrary<Value> = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 5 }),
  fc.constant(null),
  fc.dictionary(fc.constantFrom("x", "y", "z"), fc.integer(), {
    maxKeys: 3,
    noNullPrototype: true,
  }),
);
const item = fc.record({ type: typeArb, payload: payloadArb });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({ t: fc.constant("append" as const), type: typeArb, payload: payloadArb }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      t: fc.constant("appendMany" as const),
      items: fc.array(item, { minLength: 1, maxLength: 5 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      t: fc.constant("txAppend" as const),
      items: fc.array(item, { minLength: 1, maxLength: 3 }),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ t: fc.constant("read" as const), seq: fc.nat(20) }), weight: 2 },
  {
    arbitrary: fc.record({
      t: fc.constant("readRange" as const),
      start: fc.nat(20),
      end: fc.nat(20),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ t: fc.constant("readByType" as const), type: typeArb }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant("head" as const) }), weight: 1 },
);

interface LogLike {
  append(type: string, payload: Value): Promise<{ sequence: number; hash: string }>;
  read(seq: number): Promise<Event | undefined>;
  readRange(start: number, end: number): Promise<Event[]>;
  readByType(type: string): Promise<Event[]>;
  head(): Promise<Event | undefined>;
  length(): Promise<number>;
  verifyChain(): Promise<{ valid: boolean; length: number }>;
}

type Model = { type: string; payload: Value; hash: string }[];

const strip = (e: Event | undefined) =>
  e === undefined ? undefined : { s: e.sequence, type: e.type, payload: e.payload, hash: e.hash };
const fromModel = (m: Model, s: number) =>
  m[s] === undefined
    ? undefined
    : { s, type: m[s]!.type, payload: m[s]!.payload, hash: m[s]!.hash };

async function checkOps(
  db: Database,
  run: Run,
  log: LogLike,
  ops: Op[],
): Promise<void> {
  const model: Model = [];
  for (const op of ops) {
    switch (op.t) {
      case "append": {
        const r = await log.append(op.type, op.payload);
        assert.equal(r.sequence, model.length);
        model.push({ type: op.type, payload: op.payload, hash: r.hash });
        break;
      }
      case "appendMany": {
        const rs = await Promise.all(op.items.map((i) => log.append(i.type, i.payload)));
        const base = model.length;
        for (const [k, r] of rs.entries()) {
          assert.ok(r.sequence >= base && r.sequence < base + rs.length);
          model[r.sequence] = { ...op.items[k]!, hash: r.hash };
        }
        assert.equal(model.length, base + rs.length);
        break;
      }
      case "txAppend": {
        const rs = await run.transaction(async (tx) => {
          const out = [];
          for (const i of op.items) out.push(await tx.events.append(i.type, i.payload));
          return out;
        });
        for (const [k, r] of rs.entries()) {
          assert.equal(r.sequence, model.length);
          model.push({ ...op.items[k]!, hash: r.hash });
        }
        break;
      }
      case "read":
        assert.deepEqual(strip(await log.read(op.seq)), fromModel(model, op.seq));
        break;
      case "readRange": {
        const want = [];
        for (let s = op.start; s < Math.min(op.end, model.length); s++) {
          want.push(fromModel(model, s));
        }
        assert.deepEqual((await log.readRange(op.start, op.end)).map(strip), want);
        break;
      }
      case "readByType": {
        const want = model.flatMap((m, s) => m.type === op.type ? [fromModel(model, s)] : []);
        assert.deepEqual((await log.readByType(op.type)).map(strip), want);
        break;
      }
      case "head":
        assert.deepEqual(strip(await log.head()), fromModel(model, model.length - 1));
        break;
    }
    assert.equal(await log.length(), model.length);
  }
  assert.deepEqual(await log.verifyChain(), { valid: true, length: model.length });
  void db;
}

test("property: random appends and reads agree with a model of the log", async () => {
  await using db = await Database.open();
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
      const run = await db.runs.create();
      await checkOps(db, run, run.events, ops);
    }),
    { numRuns: 60 },
  );
});

test("negative control: the property catches a readRange that includes its end", async () => {
  await using db = await Database.open();
  const r = await fc.check(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
      const run = await db.runs.create();
      const log = run.events;
      const buggy: LogLike = {
        append: (t, p) => log.append(t, p),
        read: (s) => log.read(s),
        readRange: (s, e) => log.readRange(s, e + 1),
        readByType: (t) => log.readByType(t),
        head: () => log.head(),
        length: () => log.length(),
        verifyChain: () => log.verifyChain(),
      };
      await checkOps(db, run, buggy, ops);
    }),
    { numRuns: 200, endOnFailure: true, seed: NEGATIVE_CONTROL_SEED },
  );
  assert.equal(r.failed, true);
});

test("negative control: the property catches a readByType that drops the last match", async () => {
  await using db = await Database.open();
  const r = await fc.check(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
      const run = await db.runs.create();
      const log = run.events;
      const buggy: LogLike = {
        append: (t, p) => log.append(t, p),
        read: (s) => log.read(s),
        readRange: (s, e) => log.readRange(s, e),
        readByType: async (t) => (await log.readByType(t)).slice(0, -1),
        head: () => log.head(),
        length: () => log.length(),
        verifyChain: () => log.verifyChain(),
      };
      await checkOps(db, run, buggy, ops);
    }),
    { numRuns: 200, endOnFailure: true, seed: NEGATIVE_CONTROL_SEED },
  );
  assert.equal(r.failed, true);
});

// ---- run isolation

test("runs have separate logs: sequences, reads, types, chains and iteration", async () => {
  await using db = await Database.open();
  const a = await db.runs.create();
  const b = await db.runs.create();
  await appendN(a, 3, "shared");
  assert.equal((await b.events.append("shared", "b0")).sequence, 0);
  assert.equal(await a.events.length(), 3);
  assert.equal(await b.events.length(), 1);
  assert.equal((await b.events.read(0))?.payload, "b0");
  assert.equal(await b.events.read(1), undefined);
  assert.equal((await b.events.readRange(0, 10)).length, 1);
  assert.equal((await a.events.readByType("shared")).length, 3);
  assert.equal((await b.events.readByType("shared")).length, 1);
  assert.equal((await b.events.head())?.payload, "b0");
  const seen = [];
  for await (const e of b.events) seen.push(e.payload);
  assert.deepEqual(seen, ["b0"]);
  assert.deepEqual(await a.events.verifyChain(), { valid: true, length: 3 });
  assert.deepEqual(await b.events.verifyChain(), { valid: true, length: 1 });
});

test("a run that does not exist: RunNotFoundError; a closed run: reads only", async () => {
  await using db = await Database.open();
  const ghost = db.run("no-such-run");
  await assert.rejects(ghost.events.append("x", 1), RunNotFoundError);
  await assert.rejects(ghost.events.read(0), RunNotFoundError);
  await assert.rejects(ghost.events.length(), RunNotFoundError);
  await assert.rejects(ghost.events.verifyChain(), RunNotFoundError);

  const run = await db.runs.create();
  await run.events.append("x", 1);
  await setStatus(db, run.id, "paused");
  assert.equal((await run.events.append("x", 2)).sequence, 1); // paused still accepts writes
  await setStatus(db, run.id, "completed");
  await assert.rejects(run.events.append("x", 3), RunClosedError);
  await assert.rejects(run.transaction((tx) => tx.events.append("x", 3)), RunClosedError);
  assert.equal(await run.events.length(), 2);
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 2 });
});

// ---- recovery

test("close and reopen: chain, events, length and head survive; appends continue", async () => {
  const fs = new SimFS({ seed: 7 });
  const hashes: string[] = [];
  let id: string;
  {
    await using db = await Database.open("db", { fs, durability: "strict" });
    const run = await db.runs.create();
    id = run.id;
    for (let i = 0; i < 30; i++) hashes.push((await run.events.append(`t${i % 3}`, { i })).hash);
  }
  await using db = await Database.open("db", { fs, durability: "strict" });
  const run = db.run(id);
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 30 });
  assert.deepEqual((await run.events.readRange(0, 30)).map((e) => e.hash), hashes);
  assert.equal((await run.events.head())?.hash, hashes[29]);
  assert.equal((await run.events.readByType("t1")).length, 10);
  const next = await run.events.append("after", "reopen");
  assert.equal(next.sequence, 30);
  assert.equal((await run.events.read(30))?.prevHash, hashes[29]);
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 31 });
});

test("after a crash (strict, all crash modes): acknowledged appends survive, valid", async () => {
  let checked = 0;
  const figures = { ackedInBurst: 0, failedInBurst: 0, lost: 0 };
  for (const [m, mode] of SIM_CRASH_MODES.entries()) {
    for (const seed of [1, 2, 3]) {
      const fs = new SimFS({ seed: seed * 31 + m });
      const acked = new Map<number, string>();
      let id = "";
      const db = await Database.open("db", { fs, durability: "strict" });
      try {
        id = (await db.runs.create()).id;
        const run = db.run(id);
        await appendN(run, 3);
        for (const r of [await run.events.append("x", 0)]) acked.set(r.sequence, r.hash);
        // Halt the disk part-way through groups of concurrent appends (each
        // group is one WAL write and one sync): groups before the halt are
        // acknowledged, the one it cuts and all later ones fail.
        fs.haltAfter(fs.ops().length + 2 * seed + 1);
        for (let g = 0; g < 4; g++) {
          const burst = await Promise.allSettled(
            Array.from({ length: 3 }, (_, i) => run.events.append("burst", g * 3 + i)),
          );
          for (const b of burst) {
            if (b.status === "fulfilled") {
              acked.set(b.value.sequence, b.value.hash);
              figures.ackedInBurst++;
            } else {
              assert.ok(b.reason instanceof StorageError, String(b.reason));
              figures.failedInBurst++;
            }
          }
        }
      } catch (err) {
        if (!(err instanceof StorageError)) throw err;
      }
      const after = fs.crash(mode, seed);
      await db.close().catch(() => {});
      await using db2 = await Database.open("db", { fs: after, durability: "strict" });
      const run = db2.run(id);
      const v = await run.events.verifyChain();
      assert.equal(v.valid, true, `${mode}/${seed}: ${v.error}`);
      const len = await run.events.length();
      figures.lost += 4 + 12 - len;
      for (const [seq, hash] of acked) {
        assert.ok(seq < len, `${mode}/${seed}: acknowledged event ${seq} survives`);
        assert.equal((await run.events.read(seq))?.hash, hash);
      }
      if (len > 0) assert.equal((await run.events.head())?.sequence, len - 1);
      const next = await run.events.append("after", null);
      assert.equal(next.sequence, len);
      assert.deepEqual(await run.events.verifyChain(), { valid: true, length: len + 1 });
      checked++;
    }
  }
  assert.equal(checked, SIM_CRASH_MODES.length * 3);
  // The halts fell inside the bursts: some appends were acknowledged, some failed.
  assert.ok(figures.ackedInBurst > 0 && figures.failedInBurst > 0, JSON.stringify(figures));
});

// ---- bad input

test("bad input throws a typed error and writes nothing", async () => {
  await using db = await Database.open();
  const run = await db.runs.create();
  await run.events.append("ok", 1);
  const before = await db.stats();
  const ev = run.events as unknown as {
    append(t: unknown, p: unknown): Promise<unknown>;
    read(s: unknown): Promise<unknown>;
    readRange(a: unknown, b: unknown): Promise<unknown>;
    readByType(t: unknown): Promise<unknown>;
  };
  await assert.rejects(ev.append("", 1), TypeError);
  await assert.rejects(ev.append(7, 1), TypeError);
  await assert.rejects(ev.append(undefined, 1), TypeError);
  await assert.rejects(ev.append("x".repeat(MAX_USER_KEY_BYTES + 1), 1), RangeError);
  await assert.rejects(ev.append("t", () => 1), TypeError);
  await assert.rejects(ev.append("t", { m: new Map() }), { name: "ValueError" });
  await assert.rejects(ev.append("t", undefined), TypeError);
  await assert.rejects(ev.append("t", Symbol("s")), TypeError);
  await assert.rejects(ev.read(-1), RangeError);
  await assert.rejects(ev.read(1.5), RangeError);
  await assert.rejects(ev.read(NaN), RangeError);
  await assert.rejects(ev.read(2 ** 53), RangeError);
  await assert.rejects(ev.read("0"), TypeError);
  await assert.rejects(ev.read(undefined), TypeError);
  await assert.rejects(ev.readRange(0, -1), RangeError);
  await assert.rejects(ev.readRange(-2, 3), RangeError);
  await assert.rejects(ev.readRange(0, "3"), TypeError);
  await assert.rejects(ev.readByType(""), TypeError);
  await assert.rejects(ev.readByType(null), TypeError);
  // Inside a transaction: the failed append buffers nothing, the rest commits.
  await run.transaction(async (tx) => {
    await assert.rejects(
      (tx.events as unknown as typeof ev).append("t", { f: () => 1 }),
      TypeError,
    );
  });
  const after = await db.stats();
  assert.equal(after.keys, before.keys);
  assert.equal(after.bytes, before.bytes);
  assert.equal(await run.events.length(), 1);
  assert.equal((await run.events.append("ok", 2)).sequence, 1);
});

test("the log head is read alike in every integer form and in any key order", async () => {
  await using db = await Database.open();
  const run = await db.runs.create({ id: "h" });
  await run.events.append("x", 1);
  const n = runNumber(db, "h");
  const headKey = key(n, TAG.EVENT_HEAD).finish();
  const hash = new Uint8Array(32).fill(7);
  const lengths = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
  for (const length of lengths) {
    // The form the log writes (read by the fast path) …
    await rawWrite(db, headKey, encodeValue({ length, head: hash }));
    assert.equal(await run.events.length(), length);
    // … and the same map with its keys the other way round (the generic decoder).
    await rawWrite(db, headKey, encodeValue({ head: hash, length }));
    assert.equal(await run.events.length(), length);
  }
  // A head the fast path would misread if it did not check the hash's size.
  await rawWrite(db, headKey, encodeValue({ length: 3, head: new Uint8Array(31) }));
  await assert.rejects(run.events.length(), { name: "CorruptionError" });
});

test("strict: concurrent standalone appends share one commit and one valid chain", async () => {
  const db = await Database.open("db", { fs: new SimFS() }); // strict by default
  const run = await db.runs.create();
  const before = (await db.stats()).commits;
  const results = await Promise.all(
    Array.from({ length: 64 }, (_, i) => run.events.append("tick", { i })),
  );
  assert.equal((await db.stats()).commits, before + 1);
  // Sequences in call order: the group runs its bodies in the order they came.
  assert.deepEqual(results.map((r) => r.sequence), Array.from({ length: 64 }, (_, i) => i));
  assert.deepEqual(await run.events.verifyChain(), { valid: true, length: 64 });
  assert.deepEqual((await run.events.read(63))?.payload, { i: 63 });
  await db.close();
});
