// The engine's per-transaction limits (src/engine/engine.ts): MAX_TXN_KEYS
// distinct keys and MAX_TXN_BYTES of keys + values, for the body's writes
// and for those of commit-time operations alike. Over a limit the write is a
// RangeError, the transaction rejects with it, and nothing is written; at the
// limit exactly it commits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Engine, MAX_TXN_BYTES, MAX_TXN_KEYS, type Transaction } from "../../src/engine/engine.ts";
import { MAX_VALUE_BYTES } from "../../src/core/store.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const EMPTY = new Uint8Array(0);

/** A RangeError naming `limit`. */
const isLimitError = (limit: string) => (err: unknown): boolean =>
  err instanceof RangeError && err.message.includes(limit);

/** Puts MAX_TXN_KEYS distinct keys with empty values. */
function fillKeys(tx: Transaction): void {
  for (let i = 0; i < MAX_TXN_KEYS; i++) tx.put(enc(`k${i}`), EMPTY);
}

/** Puts keys + values totalling exactly MAX_TXN_BYTES, in two values. */
function fillBytes(tx: Transaction): void {
  // "a" + MAX_VALUE_BYTES, then "b" + the rest.
  tx.put(enc("a"), new Uint8Array(MAX_VALUE_BYTES));
  tx.put(enc("b"), new Uint8Array(MAX_TXN_BYTES - MAX_VALUE_BYTES - 2));
}

test("MAX_TXN_KEYS: at the limit a transaction commits; one key more is a RangeError", async () => {
  const engine = new Engine();
  await assert.rejects(
    engine.transaction((tx) => {
      fillKeys(tx);
      tx.put(enc("k0"), enc("x")); // an overwrite is no new key
      assert.throws(() => tx.put(enc("one more"), EMPTY), isLimitError("MAX_TXN_KEYS"));
      throw new Error("stop here");
    }),
    /stop here/,
  );
  assert.equal(engine.store.count(), 0);
  await engine.transaction((tx) => fillKeys(tx));
  assert.equal(engine.store.count(), MAX_TXN_KEYS);
  await engine.close();
});

test("MAX_TXN_BYTES: at the limit a transaction commits; a byte more is a RangeError", async () => {
  const engine = new Engine();
  await engine.transaction((tx) => {
    fillBytes(tx);
    assert.throws(() => tx.put(enc("c"), EMPTY), isLimitError("MAX_TXN_BYTES")); // 1 byte of key
    // Replacing a value counts the difference only.
    tx.put(enc("b"), new Uint8Array(MAX_TXN_BYTES - MAX_VALUE_BYTES - 3));
    tx.put(enc("c"), EMPTY);
  });
  assert.equal(engine.store.count(), 3);
  await engine.close();
});

test("commit-time writes count against MAX_TXN_KEYS: over it the commit fails and writes nothing", async () => {
  const engine = new Engine();
  await assert.rejects(
    engine.transaction((tx) => {
      fillKeys(tx);
      tx.atCommit((view) => view.put(enc("by the op"), EMPTY));
    }),
    isLimitError("MAX_TXN_KEYS"),
  );
  assert.equal(engine.store.count(), 0);
  assert.equal(engine.version, 0);
  // The engine goes on; an op that only replaces a key stays within the limit.
  await engine.transaction((tx) => {
    fillKeys(tx);
    tx.atCommit((view) => view.delete(enc("k1")));
  });
  assert.equal(engine.store.count(), MAX_TXN_KEYS - 1);
  assert.equal(engine.version, 1);
  await engine.close();
});

test("commit-time writes count against MAX_TXN_BYTES: over it the commit fails and writes nothing", async () => {
  const engine = new Engine();
  await assert.rejects(
    engine.transaction((tx) => {
      fillBytes(tx);
      tx.atCommit((view) => view.put(enc("c"), enc("x")));
    }),
    isLimitError("MAX_TXN_BYTES"),
  );
  assert.equal(engine.store.count(), 0);
  assert.equal(engine.version, 0);
  await engine.transaction((tx) => tx.put(enc("after"), enc("ok")));
  assert.equal(engine.store.count(), 1);
  await engine.close();
});
