// Group commit of standalone writes (Engine.transactionGrouped): the
// synchronous writes of one turn share one commit, and each still behaves as
// a transaction of its own — its error undoes only its writes, a limit only
// the group crossed never fails it, a conflict re-runs it alone.
//
// Negative controls: a savepoint that undoes nothing, and an engine that
// does not group, each fail the check written for them.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type CommitLog,
  Engine,
  MAX_GROUP_BYTES,
  MAX_GROUP_MEMBERS,
  MAX_TXN_BYTES,
  Transaction,
} from "../../src/engine/engine.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);
const noSleep = (): Promise<void> => Promise.resolve();

/** A log that counts its records; each is durable a turn later. */
function countingLog(): CommitLog & { records: number } {
  let version = 0;
  const log = {
    records: 0,
    append(_payload: Uint8Array) {
      log.records++;
      return { version: ++version, durable: Promise.resolve() };
    },
  };
  return log;
}

function groupingEngine(
  log = countingLog(),
): { engine: Engine; log: ReturnType<typeof countingLog> } {
  return { engine: new Engine({ log, groupCommits: true, sleep: noSleep }), log };
}

test("the standalone writes of one turn share one commit; each gets its own result", async () => {
  const { engine, log } = groupingEngine();
  const results = await Promise.all(
    Array.from({ length: 64 }, (_, i) =>
      engine.transactionGrouped((tx) => {
        tx.put(enc(`k${i}`), enc(String(i)));
        return i * 2;
      })),
  );
  assert.deepEqual(results, Array.from({ length: 64 }, (_, i) => i * 2));
  assert.equal(log.records, 1);
  assert.equal(engine.stats.commits, 1);
  assert.equal(engine.store.count(), 64);
  // A later turn: a commit of its own.
  await engine.transactionGrouped((tx) => tx.put(enc("later"), enc("x")));
  assert.equal(log.records, 2);
  assert.equal(engine.version, 2);
});

test("a grouped write sees the writes grouped before it, as in one transaction", async () => {
  const { engine } = groupingEngine();
  const seen = await Promise.all([
    engine.transactionGrouped((tx) => tx.put(enc("k"), enc("1"))),
    engine.transactionGrouped((tx) => dec(tx.getSync(enc("k")))),
    engine.transactionGrouped((tx) => tx.put(enc("k"), enc("2"))),
  ]);
  assert.equal(seen[1], "1");
  assert.equal(dec(engine.store.get(enc("k"))), "2");
});

/**
 * Three grouped writes; the middle one writes two keys (one of them the
 * first write's key), registers a commit-time write, then throws. Returns
 * whether the store holds exactly what the other two wrote.
 */
async function throwerLeavesNothing(engine: Engine): Promise<boolean> {
  const first = engine.transactionGrouped((tx) => tx.put(enc("a"), enc("first")));
  const thrower = engine.transactionGrouped((tx) => {
    tx.put(enc("a"), enc("thrower"));
    tx.put(enc("b"), enc("thrower"));
    tx.atCommit((view) => view.put(enc("c"), enc("thrower")));
    throw new Error("boom");
  });
  const last = engine.transactionGrouped((tx) => tx.put(enc("d"), enc("last")));
  await assert.rejects(thrower, /boom/);
  await Promise.all([first, last]);
  return dec(engine.store.get(enc("a"))) === "first" &&
    engine.store.get(enc("b")) === undefined && engine.store.get(enc("c")) === undefined &&
    dec(engine.store.get(enc("d"))) === "last";
}

test("a grouped write that throws undoes its own writes only", async () => {
  const { engine, log } = groupingEngine();
  assert.equal(await throwerLeavesNothing(engine), true);
  assert.equal(log.records, 1);
});

test("negative control: with a savepoint that undoes nothing, the thrower's writes land", async () => {
  const rollback = Object.getOwnPropertyDescriptor(Transaction.prototype, "rollback")!;
  Object.defineProperty(Transaction.prototype, "rollback", { ...rollback, value: () => {} });
  try {
    assert.equal(await throwerLeavesNothing(groupingEngine().engine), false);
  } finally {
    Object.defineProperty(Transaction.prototype, "rollback", rollback);
  }
});

test("a write that only the group makes too large runs in a group of its own", async () => {
  const { engine, log } = groupingEngine();
  const MiB = 1024 * 1024;
  const small = new Uint8Array(MAX_GROUP_BYTES - MiB); // leaves the group open
  const big = MAX_TXN_BYTES - 2 * MiB; // fits alone, not after `small`
  const first = engine.transactionGrouped((tx) => tx.put(enc("small"), small));
  const second = engine.transactionGrouped((tx) => {
    tx.put(enc("big1"), new Uint8Array(big / 2));
    tx.put(enc("big2"), new Uint8Array(big / 2));
  });
  await Promise.all([first, second]);
  assert.equal(log.records, 2);
  assert.equal(engine.store.get(enc("big2"))?.length, big / 2);
  // Too large alone: its own error, and nothing of it written.
  await assert.rejects(
    engine.transactionGrouped((tx) => {
      tx.put(enc("x1"), new Uint8Array(MAX_TXN_BYTES / 2));
      tx.put(enc("x2"), new Uint8Array(MAX_TXN_BYTES / 2));
    }),
    RangeError,
  );
  assert.equal(engine.store.get(enc("x1")), undefined);
});

test("a group closes at MAX_GROUP_MEMBERS writes", async () => {
  const { engine, log } = groupingEngine();
  await Promise.all(
    Array.from(
      { length: MAX_GROUP_MEMBERS + 1 },
      (_, i) => engine.transactionGrouped((tx) => tx.put(enc(`k${i}`), enc("v"))),
    ),
  );
  assert.equal(log.records, 2);
  assert.equal(engine.store.count(), MAX_GROUP_MEMBERS + 1);
});

test("a group whose validation fails re-runs each write on its own", async () => {
  const { engine } = groupingEngine();
  await engine.transaction((tx) => tx.put(enc("n"), enc("0")));
  // Read-modify-write increments, grouped; a plain transaction writes the
  // counter in the same turn, after the group read it.
  const inc = () =>
    engine.transactionGrouped((tx) => {
      const n = Number(dec(tx.getSync(enc("n"))));
      tx.put(enc("n"), enc(String(n + 1)));
      return n;
    });
  const a = inc();
  const b = inc();
  const plain = engine.transaction((tx) => tx.put(enc("n"), enc("100")));
  const seen = await Promise.all([a, b, plain]);
  assert.ok(engine.stats.conflicts >= 1);
  // Both increments came after the plain write: no update was lost.
  assert.deepEqual(seen.slice(0, 2).sort(), [100, 101]);
  assert.equal(dec(engine.store.get(enc("n"))), "102");
});

test("close commits the group of its turn", async () => {
  const { engine, log } = groupingEngine();
  const put = engine.transactionGrouped((tx) => tx.put(enc("k"), enc("v")));
  await engine.close();
  await put;
  assert.equal(log.records, 1);
  assert.equal(dec(engine.store.get(enc("k"))), "v");
  await assert.rejects(engine.transactionGrouped((tx) => tx.put(enc("k"), enc("w"))));
});

test("without groupCommits each write is a commit of its own", async () => {
  const log = countingLog();
  const engine = new Engine({ log });
  await Promise.all(
    Array.from(
      { length: 8 },
      (_, i) => engine.transactionGrouped((tx) => tx.put(enc(`k${i}`), enc("v"))),
    ),
  );
  assert.equal(log.records, 8);
});
