// Edge cases and limits of the ordered store: empty and 0xFF keys, equal
// prefixes, max-size keys and values, over-limit and bad input, out of
// memory, snapshot isolation and memory reclamation, closed stores.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_KEY_BYTES, MAX_VALUE_BYTES, OrderedStore, prefixRange } from "../../src/core/store.ts";
import { ClosedError, OutOfMemoryError } from "../../src/errors.ts";
import { KeyWriter } from "../../src/core/keys.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);
const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const keysOf = (it: Iterable<[Uint8Array, Uint8Array]>): string[] =>
  [...it].map(([k]) => Buffer.from(k).toString("hex"));

test("get() returns undefined for a missing key and a copy for a present one", () => {
  const store = new OrderedStore();
  assert.equal(store.get("absent"), undefined);
  store.put("k", "v");
  const v = store.get("k")!;
  v[0] = 0; // a copy: changing it changes nothing stored
  assert.equal(dec(store.get("k")), "v");
  store.close();
});

test("the empty key is a key like any other and sorts first", () => {
  const store = new OrderedStore();
  store.put("b", "2");
  store.put(new Uint8Array(0), "empty");
  store.put(bytes(0), "zero");
  assert.equal(dec(store.get("")), "empty");
  assert.deepEqual(keysOf(store.entries()), ["", "00", "62"]);
  assert.equal(store.delete(""), true);
  assert.equal(store.has(""), false);
  store.checkInvariants();
  store.close();
});

test("keys order by unsigned bytes: 0xFF sorts after everything, prefixes before extensions", () => {
  const store = new OrderedStore();
  const keys = [
    bytes(0xff, 0xff),
    bytes(0xff),
    bytes(0x7f),
    bytes(0x80),
    bytes(0x00),
    bytes(0x00, 0x00),
    bytes(0x61),
    bytes(0x61, 0x00),
  ];
  for (const k of keys) store.put(k, k);
  assert.deepEqual(keysOf(store.entries()), ["00", "0000", "61", "6100", "7f", "80", "ff", "ffff"]);
  assert.deepEqual(keysOf(store.entries({ reverse: true })), [
    "ffff",
    "ff",
    "80",
    "7f",
    "6100",
    "61",
    "0000",
    "00",
  ]);
  store.close();
});

test("keys equal in their first 16 bytes compare by the rest, across many nodes", () => {
  const store = new OrderedStore();
  const head = new Uint8Array(16).fill(0xab);
  const made: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const k = new Uint8Array(18 + (i % 7));
    k.set(head);
    new DataView(k.buffer).setUint16(16, i % 3000); // spills past the 16-byte head
    made.push(Buffer.from(k).toString("hex"));
    store.put(k, "v");
  }
  // Also keys of exactly 16 bytes and shorter ones sharing the head.
  store.put(head, "16");
  store.put(head.subarray(0, 15), "15");
  const want = [
    ...new Set([
      ...made,
      Buffer.from(head).toString("hex"),
      Buffer.from(head.subarray(0, 15)).toString("hex"),
    ]),
  ]
    .sort();
  assert.deepEqual(keysOf(store.entries()), want);
  assert.equal(store.count(), want.length);
  store.checkInvariants();
  store.close();
});

test("bounds: gt/gte/lt/lte, reverse and limit select exactly the right keys", () => {
  const store = new OrderedStore();
  for (const k of ["a", "b", "c", "d", "e"]) store.put(k, k);
  const ks = (o: Parameters<OrderedStore["entries"]>[0]): string[] =>
    [...store.keys(o)].map((k) => dec(k)!);
  assert.deepEqual(ks({ gte: "b", lte: "d" }), ["b", "c", "d"]);
  assert.deepEqual(ks({ gt: "b", lt: "d" }), ["c"]);
  assert.deepEqual(ks({ gte: "bb", lt: "e" }), ["c", "d"]);
  assert.deepEqual(ks({ gt: "b", lte: "d", reverse: true }), ["d", "c"]);
  assert.deepEqual(ks({ lt: "c", reverse: true }), ["b", "a"]);
  assert.deepEqual(ks({ gt: "e" }), []);
  assert.deepEqual(ks({ gte: "d", lte: "b" }), []);
  assert.deepEqual(ks({ limit: 2, reverse: true }), ["e", "d"]);
  assert.deepEqual(ks({ limit: 0 }), []);
  assert.throws(() => ks({ limit: -1 }), RangeError);
  store.close();
});

test("prefix() returns exactly the keys with the prefix, also at 0xFF edges", () => {
  const store = new OrderedStore();
  const keys = [bytes(1), bytes(1, 0xff), bytes(1, 0xff, 0), bytes(2), bytes(0xff), bytes(0xff, 1)];
  for (const k of keys) store.put(k, "");
  assert.deepEqual(keysOf(store.prefix(bytes(1, 0xff))), ["01ff", "01ff00"]);
  assert.deepEqual(keysOf(store.prefix(bytes(0xff))), ["ff", "ff01"]);
  assert.deepEqual(keysOf(store.prefix(bytes(1), { reverse: true })), ["01ff00", "01ff", "01"]);
  assert.equal([...store.prefix("")].length, keys.length);
  assert.deepEqual(prefixRange(bytes(0xff, 0xff)), { gte: bytes(0xff, 0xff) });
  store.close();
});

test("seek() finds the first key at or after, or with reverse at or before", () => {
  const store = new OrderedStore();
  for (const k of ["b", "d", "f"]) store.put(k, k);
  assert.equal(dec(store.seek("a")![0]), "b");
  assert.equal(dec(store.seek("d")![0]), "d");
  assert.equal(dec(store.seek("e")![0]), "f");
  assert.equal(store.seek("g"), undefined);
  assert.equal(dec(store.seek("e", true)![0]), "d");
  assert.equal(store.seek("a", true), undefined);
  store.close();
});

test("a key of MAX_KEY_BYTES and a value of MAX_VALUE_BYTES round-trip", () => {
  const store = new OrderedStore();
  const key = new Uint8Array(MAX_KEY_BYTES).fill(0xee);
  const value = new Uint8Array(MAX_VALUE_BYTES);
  for (let i = 0; i < value.length; i += 4093) value[i] = i & 0xff;
  store.put(key, value);
  assert.deepEqual(store.get(key), value);
  store.put("s".repeat(MAX_KEY_BYTES), "ok"); // string key of exactly the limit
  assert.equal(dec(store.get("s".repeat(MAX_KEY_BYTES))), "ok");
  assert.equal(store.delete(key), true);
  store.close();
});

test("over-limit keys and values throw RangeError and change nothing", () => {
  const store = new OrderedStore();
  store.put("k", "v");
  const before = store.memory().usedBytes;
  assert.throws(() => store.put(new Uint8Array(MAX_KEY_BYTES + 1), "v"), RangeError);
  assert.throws(() => store.put("é".repeat(MAX_KEY_BYTES / 2 + 1), "v"), RangeError); // UTF-8 over
  assert.throws(() => store.put("k", new Uint8Array(MAX_VALUE_BYTES + 1)), RangeError);
  assert.throws(() => store.get(new Uint8Array(MAX_KEY_BYTES + 1)), RangeError);
  assert.throws(() => [...store.entries({ gte: new Uint8Array(MAX_KEY_BYTES + 1) })], RangeError);
  assert.equal(store.count(), 1);
  assert.equal(dec(store.get("k")), "v");
  assert.equal(store.memory().usedBytes, before);
  store.close();
});

test("keys and values that are not bytes or strings throw TypeError", () => {
  const store = new OrderedStore();
  assert.throws(() => store.put(42 as unknown as string, "v"), TypeError);
  assert.throws(() => store.put("k", { a: 1 } as unknown as string), TypeError);
  assert.throws(() => store.get(null as unknown as string), TypeError);
  assert.throws(() => store.put([1, 2] as unknown as Uint8Array, "v"), /Cannot put/);
  assert.equal(store.count(), 0);
  store.close();
});

test("out of memory throws OutOfMemoryError and leaves the store unchanged and usable", () => {
  const store = new OrderedStore({ maxMemoryBytes: 16 << 20 });
  const value = new Uint8Array(64 * 1024).fill(7);
  let stored = 0;
  let caught: unknown;
  try {
    for (; stored < 1000; stored++) store.put(`key${stored}`, value);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof OutOfMemoryError, `expected OutOfMemoryError, got ${caught}`);
  assert.ok(stored > 10, `only ${stored} values fit`);
  assert.equal(store.count(), stored);
  store.checkInvariants();
  for (let i = 0; i < stored; i++) assert.deepEqual(store.get(`key${i}`), value);
  // Deleting frees room (here the first half, adjacent blocks that coalesce)
  // and writes succeed again.
  for (let i = 0; i < stored / 2; i++) assert.equal(store.delete(`key${i}`), true);
  store.put("after", value);
  assert.equal(store.has("after"), true);
  store.checkInvariants();
  assert.ok(store.memory().reservedBytes <= 16 << 20);
  store.close();
});

test("a snapshot keeps its version while the live store changes; release frees it", () => {
  const store = new OrderedStore();
  const start = store.memory().usedBytes;
  for (let i = 0; i < 20_000; i++) store.put(`k${i}`, `v${i}`);
  const snap = store.snapshot();
  for (let i = 0; i < 20_000; i += 2) store.delete(`k${i}`);
  for (let i = 1; i < 20_000; i += 2) store.put(`k${i}`, "changed");
  store.put("new", "x");
  assert.equal(snap.count(), 20_000);
  assert.equal(dec(snap.get("k1")), "v1");
  assert.equal(dec(snap.get("k0")), "v0");
  assert.equal(snap.has("new"), false);
  assert.equal(store.count(), 10_001);
  assert.equal(dec(store.get("k1")), "changed");
  snap.checkInvariants();
  store.checkInvariants();
  snap.release();
  assert.throws(() => snap.get("k1"), ClosedError);
  for (const k of [...store.keys()]) store.delete(k);
  assert.equal(store.memory().usedBytes, start, "memory returns to its starting level");
  store.close();
});

test("a value of the same size is overwritten in place only while no snapshot or cursor is open", () => {
  // One leaf: no key doubles as an inner node's separator (whose blob the
  // core counts twice and never overwrites in place).
  const store = new OrderedStore();
  for (let i = 0; i < 10; i++) store.put(`k${i}`, `v000${i}`);
  const start = store.inPlaceWrites;
  // Alone: in place, and every read sees the new bytes.
  assert.equal(store.put("k7", "w0007"), false);
  assert.equal(store.inPlaceWrites, start + 1);
  assert.equal(dec(store.get("k7")), "w0007");
  // Another size: replaced as usual.
  assert.equal(store.put("k7", "longer value"), false);
  assert.equal(store.inPlaceWrites, start + 1);
  // A snapshot shares the value: never in place, and it keeps what it saw.
  const snap = store.snapshot();
  assert.equal(store.put("k6", "w0006"), false);
  assert.equal(store.inPlaceWrites, start + 1);
  assert.equal(dec(snap.get("k6")), "v0006");
  assert.equal(dec(store.get("k6")), "w0006");
  snap.release();
  // So does an open iterator (its cursor holds a root).
  const it = store.entries({ gte: enc("k8") });
  assert.equal(dec(it.next().value![0]), "k8");
  assert.equal(store.put("k9", "w0009"), false);
  assert.equal(store.inPlaceWrites, start + 1);
  assert.equal(dec(it.next().value![1]), "v0009", "the iterator reads the version it started on");
  it.return?.();
  // All closed: in place again.
  assert.equal(store.put("k8", "w0008"), false);
  assert.equal(store.inPlaceWrites, start + 2);
  assert.deepEqual([dec(store.get("k8")), dec(store.get("k9"))], ["w0008", "w0009"]);
  store.checkInvariants();
  store.close();
});

test("taking a snapshot costs the same on 10 and 100,000 keys: it copies nothing", () => {
  const store = new OrderedStore();
  for (let i = 0; i < 100_000; i++) store.put(`k${i}`, "v");
  const before = store.memory().usedBytes;
  const snap = store.snapshot();
  // One small record, no node copied.
  assert.ok(
    store.memory().usedBytes - before <= 32,
    `snapshot took ${store.memory().usedBytes - before} bytes`,
  );
  // The first write after it copies one root-to-leaf path only.
  store.put("k1", "w");
  const copied = store.memory().usedBytes - before;
  assert.ok(copied < store.height() * 2 * 2048, `one write copied ${copied} bytes`);
  snap.release();
  store.close();
});

test("an iterator reads the version it started on, even while the store is written", () => {
  const store = new OrderedStore();
  for (let i = 0; i < 1000; i++) store.put(`k${String(i).padStart(4, "0")}`, "v");
  let seen = 0;
  for (const [k] of store.entries()) {
    seen++;
    store.delete(k); // deleting what was just read does not disturb the walk
    store.put(`z${seen}`, "late"); // nor do inserts ahead of it
  }
  assert.equal(seen, 1000);
  assert.equal(store.count(), 1000);
  assert.equal([...store.prefix("k")].length, 0);
  store.checkInvariants();
  store.close();
});

test("breaking out of an iteration releases its cursor", () => {
  const store = new OrderedStore();
  for (let i = 0; i < 1000; i++) store.put(`k${i}`, "v");
  const before = store.memory().usedBytes;
  for (const _ of store.entries()) break;
  assert.equal(store.memory().usedBytes, before);
  let n = 0;
  n = store.scan({}, () => ++n < 10);
  assert.equal(n, 10);
  assert.equal(store.memory().usedBytes, before);
  store.close();
});

test("scan() visits the same entries as entries(), without copies", () => {
  const store = new OrderedStore();
  for (let i = 0; i < 3000; i++) store.put(`k${i}`, `value-${i}`);
  const viaEntries = [...store.entries({ gte: "k1", lt: "k5", reverse: true })].map(([k, v]) =>
    `${dec(k)}=${dec(v)}`
  );
  const viaScan: string[] = [];
  const count = store.scan({ gte: "k1", lt: "k5", reverse: true }, (e) => {
    viaScan.push(
      `${dec(e.memory.slice(e.keyStart, e.keyEnd))}=${
        dec(e.memory.slice(e.valueStart, e.valueEnd))
      }`,
    );
  });
  assert.deepEqual(viaScan, viaEntries);
  assert.equal(count, viaEntries.length);
  store.close();
});

test("getView() reads the value in place", () => {
  const store = new OrderedStore();
  store.put("k", enc("hello"));
  const view = store.getView("k")!;
  assert.equal(dec(view), "hello");
  assert.equal(store.getView("nope"), undefined);
  store.close();
});

test("locate() finds what getView() finds, live and in a snapshot, also after the memory grew", () => {
  const store = new OrderedStore();
  const keyOf = (i: number): KeyWriter => new KeyWriter().u32(i).string(`key ${i}`);
  const value = (i: number, round: number): Uint8Array =>
    new Uint8Array(1 + ((i * 7 + round) % 300)).fill((i + round) & 0xff);
  for (let i = 0; i < 3000; i += 2) store.put(keyOf(i).finish(), value(i, 0));
  const snap = store.snapshot();
  // The live store moves on: replaced values, deletes, new keys.
  for (let i = 0; i < 3000; i += 3) store.put(keyOf(i).finish(), value(i, 1));
  for (let i = 0; i < 3000; i += 10) store.delete(keyOf(i).finish());
  const before = store.memory().reservedBytes;
  const out = { bytes: new Uint8Array(0), start: 0, end: 0 };
  const check = (): void => {
    for (const s of [store, snap]) {
      for (let i = 0; i < 3000; i++) {
        const w = keyOf(i);
        const found = s.locate(w, out);
        assert.equal(w.length, 0, "locate() empties the writer");
        const want = s.getView(keyOf(i).finish());
        assert.equal(found, want !== undefined, `key ${i}`);
        if (want !== undefined) assert.deepEqual(out.bytes.subarray(out.start, out.end), want);
      }
    }
  };
  check();
  // Grow the memory: views made before it are detached, locate() must not use them.
  for (let i = 0; store.memory().reservedBytes === before; i++) {
    store.put(keyOf(10_000 + i).finish(), new Uint8Array(60_000));
  }
  check();
  snap.release();
  store.close();
});

test("bytes() counts key and value lengths through replace and delete", () => {
  const store = new OrderedStore();
  store.put("ab", "123");
  store.put("ab", "1");
  store.put("c", "");
  assert.equal(store.bytes(), 4);
  store.delete("ab");
  assert.equal(store.bytes(), 1);
  store.close();
});

test("keys put in ascending order leave their leaves at least 3/4 full, also in interleaved ranges", () => {
  const N = 20_000;
  const pad = (i: number): string => i.toString().padStart(6, "0");
  // An even split would leave each such leaf at 32 or 33 of 64: ~N / 32.5 leaves.
  const bound = (keys: number, ranges: number): number => Math.ceil(keys / 48) + 2 * ranges;
  const ascending = new OrderedStore();
  for (let i = 0; i < N; i++) ascending.put(`e/${pad(i)}`, "v");
  assert.ok(ascending.leafCount() <= bound(N, 1), `${ascending.leafCount()} leaves for ${N} keys`);
  ascending.checkInvariants();
  ascending.close();
  // Three ranges growing in turn, as a trace's index entries do (by kind, by tag, by time).
  const interleaved = new OrderedStore();
  for (let i = 0; i < N; i++) {
    for (const range of ["kind", "tag", "time"]) interleaved.put(`${range}/${pad(i)}`, "v");
  }
  assert.ok(
    interleaved.leafCount() <= bound(3 * N, 3),
    `${interleaved.leafCount()} leaves for ${3 * N} keys`,
  );
  interleaved.checkInvariants();
  interleaved.close();
  // Descending inserts split evenly; every node keeps its minimum.
  const descending = new OrderedStore();
  for (let i = N - 1; i >= 0; i--) descending.put(`d/${pad(i)}`, "v");
  assert.equal(descending.count(), N);
  descending.checkInvariants();
  descending.close();
});

test("a closed store and its snapshots throw ClosedError", () => {
  const store = new OrderedStore();
  store.put("k", "v");
  const snap = store.snapshot();
  store.close();
  assert.throws(() => store.get("k"), ClosedError);
  assert.throws(() => store.put("k", "v"), ClosedError);
  assert.throws(() => store.snapshot(), ClosedError);
  assert.throws(() => snap.get("k"), ClosedError);
  assert.throws(() => [...store.entries()], ClosedError);
  snap.release(); // no effect, no throw
  store.close(); // idempotent
});

test("maxMemoryBytes out of range throws RangeError", () => {
  assert.throws(() => new OrderedStore({ maxMemoryBytes: 1000 }), RangeError);
  assert.throws(() => new OrderedStore({ maxMemoryBytes: 5 * 2 ** 30 }), RangeError);
});

test("the point-read index can be suspended and rebuilt: reads, writes and the invariants hold", () => {
  const store = new OrderedStore();
  const model = new Map<string, string>();
  const put = (k: string, v: string): void => {
    store.put(k, v);
    model.set(k, v);
  };
  const agree = (): void => {
    store.checkInvariants(); // with the index on: rules 17 and 18 compare it with the tree
    for (const [k, v] of model) assert.equal(new TextDecoder().decode(store.get(k)), v, k);
    for (const k of ["absent", "k/99999", "k/"]) assert.equal(store.get(k), undefined);
    assert.equal(store.count(), model.size);
  };
  for (let i = 0; i < 3000; i++) put(`k/${i}`, `v${i}`);
  store.suspendIndex();
  // Writes while it is off: new keys, replaced ones, deleted ones.
  for (let i = 2500; i < 4000; i++) put(`k/${i}`, `w${i}`);
  for (let i = 0; i < 1000; i += 3) {
    assert.equal(store.delete(`k/${i}`), true);
    model.delete(`k/${i}`);
  }
  agree(); // the tree answers
  store.resumeIndex();
  agree(); // the rebuilt index answers
  for (let i = 4000; i < 6000; i++) put(`k/${i}`, `x${i}`); // and it grows from there
  agree();
  // An empty store resumes to an empty index.
  const empty = new OrderedStore();
  empty.suspendIndex();
  empty.resumeIndex();
  empty.put("a", "1");
  assert.equal(new TextDecoder().decode(empty.get("a")), "1");
  empty.checkInvariants();
  empty.close();
  store.close();
});

test("a store too full to build its index works without it, and builds it once there is room", () => {
  const store = new OrderedStore({ maxMemoryBytes: 16 << 20 });
  store.suspendIndex();
  const value = new Uint8Array(100).fill(3);
  let stored = 0;
  try {
    for (;; stored++) store.put(`key/${stored}`, value);
  } catch (err) {
    assert.ok(err instanceof OutOfMemoryError, `expected OutOfMemoryError, got ${err}`);
  }
  // The index would need a table and a build buffer the memory cannot hold.
  assert.throws(() => store.resumeIndex(), OutOfMemoryError);
  store.checkInvariants();
  assert.equal(store.count(), stored);
  for (let i = 0; i < stored; i += 97) assert.deepEqual(store.get(`key/${i}`), value);
  assert.equal(store.get("key/absent"), undefined);
  // Without the index, deletes and puts go on; with room again (the first
  // half, adjacent blocks that coalesce), it builds.
  for (let i = 0; i < stored / 2; i++) assert.equal(store.delete(`key/${i}`), true);
  store.put("after", value);
  store.resumeIndex();
  store.checkInvariants(); // rules 17 and 18: the index holds exactly the tree's keys
  assert.deepEqual(store.get("after"), value);
  assert.equal(store.get("key/0"), undefined);
  assert.deepEqual(store.get(`key/${stored - 1}`), value);
  store.close();
});
