// Isolation of the engine's transactions (RELIABILITY.md P6–P8), in memory:
//
// P6 serializability: concurrent interactive transactions interleaved by
//    fc.scheduler(); replaying the committed ones in commit order on a serial
//    model reproduces every read each one made (absent keys and range
//    results included) and the final state.
// P7 consistent snapshots: every read of every attempt — also those that
//    conflicted and were retried — equals the model at the attempt's start
//    version, overlaid with the attempt's own writes.
// P8 named anomalies: lost update, write skew, read skew, phantom.
//
// Negative controls run the same checkers against an engine whose
// validation is switched off and show they catch it.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { TransactionConflictError } from "../../src/errors.ts";
import {
  type CommitLog,
  Engine,
  keyIdOf,
  type Transaction,
  WATCHED_WRITES_KEPT,
} from "../../src/engine/engine.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);
const noSleep = (): Promise<void> => Promise.resolve();

/**
 * An engine whose transactions forget what they read before committing, so
 * validation has nothing to check: every isolation check below must fail on it.
 */
function unvalidatedEngine(): Engine {
  const engine = new Engine({ sleep: noSleep, maxRetries: 1000 });
  const run = engine.transaction.bind(engine);
  engine.transaction = (<T>(fn: (tx: Transaction) => Promise<T> | T) =>
    run(async (tx) => {
      const result = await fn(tx);
      tx.readKeys?.clear();
      if (tx.readRanges !== undefined) tx.readRanges.length = 0;
      return result;
    })) as typeof engine.transaction;
  return engine;
}

// ---- random programs over a small key space

const KEYS = ["a", "b", "c", "d", "e", "f"];
type Op =
  | { t: "get"; k: string }
  | { t: "scan"; lo: string; hi: string; rev: boolean; limit: number | undefined }
  | { t: "put"; k: string }
  | { t: "del"; k: string };

const keyArb = fc.constantFrom(...KEYS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("get" as const), k: keyArb }), weight: 4 },
  {
    arbitrary: fc.record({
      t: fc.constant("scan" as const),
      lo: keyArb,
      hi: keyArb,
      rev: fc.boolean(),
      limit: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ t: fc.constant("put" as const), k: keyArb }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("del" as const), k: keyArb }), weight: 1 },
);
const programArb = fc.array(opArb, { minLength: 1, maxLength: 6 });

/** What one attempt of a program observed. */
interface Attempt {
  program: number;
  start: number;
  reads: string[];
  writes: [string, string | null][];
}

/** Runs a program in `tx`; values written depend on everything read so far. */
async function runProgram(
  tx: Transaction,
  id: number,
  ops: Op[],
  pause: () => Promise<void>,
  attempts: Attempt[],
): Promise<void> {
  const attempt: Attempt = { program: id, start: tx.startVersion, reads: [], writes: [] };
  attempts.push(attempt);
  for (const op of ops) {
    await pause();
    if (op.t === "get") {
      attempt.reads.push(`get ${op.k}=${dec(await tx.get(enc(op.k))) ?? "∅"}`);
    } else if (op.t === "scan") {
      const rows = await tx.scan({
        gte: enc(op.lo),
        lt: enc(op.hi),
        reverse: op.rev,
        ...(op.limit === undefined ? {} : { limit: op.limit }),
      });
      attempt.reads.push(
        `scan ${op.lo}..${op.hi}${op.rev ? " rev" : ""} ${op.limit ?? ""}=${
          rows.map(([k, v]) => `${dec(k)}:${dec(v)}`).join(",")
        }`,
      );
    } else if (op.t === "put") {
      const value = `${id}/${attempt.reads.length}/${hash(attempt.reads.join("|"))}`;
      tx.put(enc(op.k), enc(value));
      attempt.writes.push([op.k, value]);
    } else {
      tx.delete(enc(op.k));
      attempt.writes.push([op.k, null]);
    }
  }
}

function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36);
}

/** Re-runs a program serially on a model map; returns its reads, applies its writes. */
function replay(model: Map<string, string>, ops: Op[], id: number): string[] {
  const reads: string[] = [];
  const own = new Map<string, string | null>();
  const view = (k: string): string | undefined =>
    own.has(k) ? own.get(k) ?? undefined : model.get(k);
  for (const op of ops) {
    if (op.t === "get") reads.push(`get ${op.k}=${view(op.k) ?? "∅"}`);
    else if (op.t === "scan") {
      const keys = [...new Set([...model.keys(), ...own.keys()])].filter((k) =>
        k >= op.lo && k < op.hi
      ).sort();
      if (op.rev) keys.reverse();
      const rows = keys.filter((k) => view(k) !== undefined).slice(0, op.limit ?? Infinity);
      reads.push(
        `scan ${op.lo}..${op.hi}${op.rev ? " rev" : ""} ${op.limit ?? ""}=${
          rows.map((k) => `${k}:${view(k)}`).join(",")
        }`,
      );
    } else if (op.t === "put") own.set(op.k, `${id}/${reads.length}/${hash(reads.join("|"))}`);
    else own.set(op.k, null);
  }
  for (const [k, v] of own) {
    if (v === null) model.delete(k);
    else model.set(k, v);
  }
  return reads;
}

const stats = { histories: 0, transactions: 0, committed: 0, attempts: 0 };

/** Runs programs concurrently under the scheduler; checks P6 and P7. Returns false on a violation. */
async function checkHistory(
  s: fc.Scheduler,
  programs: Op[][],
  engine: Engine,
): Promise<void> {
  const attempts: Attempt[] = [];
  const order: number[] = []; // program ids in commit order
  const pause = (): Promise<void> => s.schedule(Promise.resolve());
  const outcomes = programs.map((ops, id) =>
    engine.transaction(async (tx) => {
      await runProgram(tx, id, ops, pause, attempts);
      tx.atCommit(() => order.push(id));
    }).then(() => "committed", (err) => {
      if (err instanceof TransactionConflictError) return "aborted";
      throw err;
    })
  );
  await s.waitFor(Promise.all(outcomes));
  // Serial replay in commit order: the reads each committed program makes
  // there, and the state after each version.
  const model = new Map<string, string>();
  const states: Map<string, string>[] = [new Map()]; // state after version v
  const serialReads: string[][] = [];
  for (const id of order) {
    serialReads.push(replay(model, programs[id]!, id));
    states.push(new Map(model));
  }
  // P7: every attempt read one version: replaying its program on the state
  // at its start version reproduces its reads (as far as it got).
  for (const a of attempts) {
    const at = new Map(states[a.start]!);
    const reads = replay(at, programs[a.program]!, a.program).slice(0, a.reads.length);
    assert.deepEqual(
      a.reads,
      reads,
      `P7: an attempt of program ${a.program} read a mix of versions`,
    );
  }
  // P6: each committed attempt read what the serial replay reads.
  order.forEach((id, i) => {
    const committed = attempts.filter((a) => a.program === id).at(-1)!;
    assert.deepEqual(
      committed.reads,
      serialReads[i],
      `P6: program ${id}'s reads differ from a serial run in commit order`,
    );
  });
  const store = new Map<string, string>();
  for (const [k, v] of engine.store.entries()) store.set(dec(k)!, dec(v)!);
  assert.deepEqual(store, model, "P6: final state differs from the serial replay");
  stats.histories++;
  stats.transactions += programs.length;
  stats.committed += order.length;
  stats.attempts += attempts.length;
}

const historyArb = fc.array(programArb, { minLength: 2, maxLength: 8 });

test("P6/P7: concurrent transactions are serializable and read consistent snapshots", async () => {
  await fc.assert(
    fc.asyncProperty(fc.scheduler(), historyArb, async (s, programs) => {
      await checkHistory(s, programs, new Engine({ sleep: noSleep, maxRetries: 50 }));
    }),
    { numRuns: 300 },
  );
  // The histories must have had real contention: retried attempts.
  assert.ok(stats.histories >= 300, JSON.stringify(stats));
  assert.ok(
    stats.attempts > stats.transactions,
    `no attempt was ever retried: ${JSON.stringify(stats)}`,
  );
});

test("negative control: P6 catches an engine that does not validate reads", async () => {
  const result = await fc.check(
    fc.asyncProperty(fc.scheduler(), historyArb, async (s, programs) => {
      await checkHistory(s, programs, unvalidatedEngine());
    }),
    { endOnFailure: true, numRuns: 300, seed: 7 },
  );
  assert.equal(
    result.failed,
    true,
    "an engine without validation passed the serializability check",
  );
});

/** An engine whose point reads see the live store instead of the snapshot (still tracked). */
function liveReadEngine(): Engine {
  const engine = new Engine({ sleep: noSleep, maxRetries: 1000 });
  const run = engine.transaction.bind(engine);
  engine.transaction = (<T>(fn: (tx: Transaction) => Promise<T> | T) =>
    run((tx) => {
      tx.get = (key: Uint8Array) => {
        tx.getSync(key); // keep it in the read set, so only P7 can tell
        return Promise.resolve(engine.store.get(key));
      };
      return fn(tx);
    })) as typeof engine.transaction;
  return engine;
}

test("negative control: P7 catches reads that are not from one snapshot", async () => {
  const result = await fc.check(
    fc.asyncProperty(fc.scheduler(), historyArb, async (s, programs) => {
      await checkHistory(s, programs, liveReadEngine());
    }),
    { endOnFailure: true, numRuns: 300, seed: 7 },
  );
  assert.equal(result.failed, true, "reads from the live store passed the snapshot check");
  assert.match(String(result.errorInstance), /P7/, "it failed, but not on the snapshot check");
});

// ---- P8: named anomalies

async function increments(engine: Engine, n: number): Promise<number> {
  const k = enc("counter");
  await Promise.all(
    Array.from({ length: n }, () =>
      engine.transaction(async (tx) => {
        const v = Number(dec(await tx.get(k)) ?? "0");
        await Promise.resolve(); // let the others read the same value
        tx.put(k, enc(String(v + 1)));
      })),
  );
  return Number(dec(engine.store.get(k)));
}

test("P8 lost update: 64 concurrent read-modify-write increments end at 64", async () => {
  const engine = new Engine({ sleep: noSleep, maxRetries: 10_000 });
  assert.equal(await increments(engine, 64), 64);
  assert.ok(engine.stats.conflicts > 0, "the increments never collided: the test proved nothing");
});

test("negative control: without validation, concurrent increments lose updates", async () => {
  assert.ok((await increments(unvalidatedEngine(), 64)) < 64);
});

async function onCall(engine: Engine): Promise<number> {
  // Two doctors on call; each goes off call if the other is still on.
  const put = (tx: Transaction, k: string, v: string): void => tx.put(enc(k), enc(v));
  await engine.transaction((tx) => {
    put(tx, "alice", "on");
    put(tx, "bob", "on");
  });
  const goOff = (me: string, other: string): Promise<void> =>
    engine.transaction(async (tx) => {
      const o = dec(await tx.get(enc(other)));
      await Promise.resolve();
      if (o === "on") put(tx, me, "off");
    });
  await Promise.all([goOff("alice", "bob"), goOff("bob", "alice")]);
  return ["alice", "bob"].filter((k) => dec(engine.store.get(k)) === "on").length;
}

test("P8 write skew: two doctors cannot both go off call", async () => {
  assert.equal(await onCall(new Engine({ sleep: noSleep })), 1);
});

test("negative control: without validation, write skew leaves nobody on call", async () => {
  assert.equal(await onCall(unvalidatedEngine()), 0);
});

test("P8 read skew: transfers between accounts never show a wrong total", async () => {
  const engine = new Engine({ sleep: noSleep, maxRetries: 10_000 });
  const accounts = ["x", "y", "z"];
  await engine.transaction((tx) => {
    for (const a of accounts) tx.put(enc(a), enc("100"));
  });
  const totals: number[] = [];
  const transfer = (from: string, to: string): Promise<void> =>
    engine.transaction(async (tx) => {
      const f = Number(dec(await tx.get(enc(from))));
      await Promise.resolve();
      const t = Number(dec(await tx.get(enc(to))));
      tx.put(enc(from), enc(String(f - 7)));
      tx.put(enc(to), enc(String(t + 7)));
    });
  const audit = (): Promise<void> =>
    engine.transaction(async (tx) => {
      let sum = 0;
      for (const a of accounts) {
        sum += Number(dec(await tx.get(enc(a))));
        await Promise.resolve(); // transfers commit in between
      }
      totals.push(sum);
    });
  const work: Promise<void>[] = [];
  for (let i = 0; i < 30; i++) {
    work.push(transfer(accounts[i % 3]!, accounts[(i + 1) % 3]!));
    work.push(audit());
  }
  await Promise.all(work);
  assert.deepEqual(new Set(totals), new Set([300]));
});

async function phantom(engine: Engine): Promise<number> {
  // Each transaction counts the tasks under "task/" and adds one only if
  // fewer than 3 exist: at most 3 may ever exist.
  const add = (i: number): Promise<void> =>
    engine.transaction(async (tx) => {
      const rows = await tx.scan({ gte: enc("task/"), lt: enc("task0") });
      await Promise.resolve();
      if (rows.length < 3) tx.put(enc(`task/${i}`), enc("x"));
    });
  await Promise.all(Array.from({ length: 10 }, (_, i) => add(i)));
  return [...engine.store.prefix("task/")].length;
}

test("P8 phantom: a range read conflicts with an insert into the range", async () => {
  assert.equal(await phantom(new Engine({ sleep: noSleep, maxRetries: 1000 })), 3);
});

test("negative control: without range validation, phantoms let too many rows in", async () => {
  assert.ok((await phantom(unvalidatedEngine())) > 3);
});

// ---- behaviour

test("a transaction that throws writes nothing", async () => {
  const engine = new Engine();
  await assert.rejects(
    engine.transaction((tx) => {
      tx.put(enc("k"), enc("v"));
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal(engine.store.count(), 0);
});

test("blind writes never conflict", async () => {
  const engine = new Engine({ sleep: noSleep, maxRetries: 0 });
  await Promise.all(Array.from({ length: 50 }, (_, i) =>
    engine.transaction(async (tx) => {
      await Promise.resolve();
      tx.put(enc("same"), enc(String(i)));
    })));
  assert.equal(engine.stats.conflicts, 0);
});

test("commit-time operations let 64 appenders share one sequence without conflicts", async () => {
  const engine = new Engine({ sleep: noSleep, maxRetries: 0 });
  const head = enc("log/head");
  await Promise.all(Array.from({ length: 64 }, (_, i) =>
    engine.transaction((tx) => {
      tx.atCommit((view) => {
        const seq = Number(dec(view.get(head)) ?? "0");
        view.put(enc(`log/${String(seq).padStart(4, "0")}`), enc(String(i)));
        view.put(head, enc(String(seq + 1)));
      });
    })));
  assert.equal(dec(engine.store.get(head)), "64");
  assert.equal([...engine.store.prefix("log/0")].length, 64);
  assert.equal(engine.stats.conflicts, 0);
});

test("commit-time reads see commits logged but not yet durable (in flight)", async () => {
  // A log whose records become durable only when the test says: the
  // appenders' commits pile up in flight, and each one's commit-time read of
  // the head must see the one before it — not the older store. Some are let
  // through midway, so applied and in-flight commits mix.
  const gates: (() => void)[] = [];
  let version = 0;
  const log: CommitLog = {
    append() {
      let release!: () => void;
      const durable = new Promise<void>((r) => release = r);
      gates.push(release);
      return { version: ++version, durable };
    },
  };
  const engine = new Engine({ log, sleep: noSleep, maxRetries: 0 });
  const head = enc("log/head");
  const append = (i: number): Promise<void> =>
    engine.transaction((tx) => {
      tx.atCommit((view) => {
        const seq = Number(dec(view.get(head)) ?? "0");
        view.put(enc(`log/${String(seq).padStart(4, "0")}`), enc(String(i)));
        view.put(head, enc(String(seq + 1)));
      });
    });
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 0));
  const done: Promise<void>[] = [];
  for (let i = 0; i < 64; i++) {
    done.push(append(i));
    await settle(); // each commit in a turn of its own, the earlier ones still in flight
    if (i % 16 === 15) {
      // Let all but the newest become durable and applied.
      for (const release of gates.splice(0, gates.length - 1)) release();
      await settle();
    }
  }
  for (const release of gates.splice(0)) release();
  await Promise.all(done);
  assert.equal(engine.version, 64);
  assert.equal(dec(engine.store.get(head)), "64");
  const entries = [...engine.store.prefix("log/0")];
  assert.equal(entries.length, 64, "every append got a sequence number of its own");
  assert.equal(engine.stats.conflicts, 0);
});

test("retries run out into TransactionConflictError and write nothing", async () => {
  const engine = new Engine({ sleep: noSleep, maxRetries: 2 });
  const k = enc("hot");
  let runs = 0;
  const err = await engine.transaction(async (tx) => {
    runs++;
    await tx.get(k);
    // Another commit lands on what we read, every time.
    await engine.transaction((other) => other.put(k, enc(String(runs))));
    tx.put(enc("mine"), enc("x"));
  }).catch((e: unknown) => e);
  assert.ok(err instanceof TransactionConflictError);
  assert.equal(err.attempts, 3);
  assert.equal(runs, 3);
  assert.equal(engine.store.has("mine"), false);
});

test("a transaction object cannot be used after its attempt ended", async () => {
  const engine = new Engine();
  let leaked: Transaction | undefined;
  await engine.transaction((tx) => {
    leaked = tx;
  });
  assert.throws(() => leaked!.put(enc("k"), enc("v")), { name: "InvalidStateError" });
  assert.throws(() => leaked!.get(enc("k")), { name: "InvalidStateError" });
});

test("reads see the transaction's own writes, in gets and merged into scans", async () => {
  const engine = new Engine();
  await engine.transaction((tx) => {
    for (const k of ["a", "c", "e"]) tx.put(enc(k), enc("old"));
  });
  await engine.transaction(async (tx) => {
    tx.put(enc("b"), enc("new"));
    tx.delete(enc("c"));
    tx.put(enc("e"), enc("new"));
    assert.equal(dec(await tx.get(enc("c"))), undefined);
    const rows = (await tx.scan({})).map(([k, v]) => `${dec(k)}=${dec(v)}`);
    assert.deepEqual(rows, ["a=old", "b=new", "e=new"]);
    const rev = (await tx.scan({ reverse: true, limit: 2 })).map(([k]) => dec(k));
    assert.deepEqual(rev, ["e", "b"]);
  });
});

test("transaction size limits throw RangeError before anything is buffered", async () => {
  const engine = new Engine();
  await engine.transaction((tx) => {
    assert.throws(() => tx.put(new Uint8Array(4097), enc("v")), RangeError);
    assert.throws(() => tx.put(enc("k"), new Uint8Array(16 * 1024 * 1024 + 1)), RangeError);
  });
  assert.equal(engine.store.count(), 0);
});

test("commit-time operations see the version their commit gets, with and without a WAL", async () => {
  const { SimFS } = await import("../../src/fs/sim.ts");
  const { openEngine } = await import("../../src/engine/open.ts");
  for (const durability of ["none", "batched", "strict"] as const) {
    const db = durability === "none"
      ? await openEngine({})
      : await openEngine({ dir: "db", fs: new SimFS(), durability });
    const seen: number[] = [];
    const done = Array.from({ length: 20 }, (_, i) =>
      db.engine.transaction((tx) => {
        tx.put(enc(`k${i % 3}`), enc(String(i)));
        tx.atCommit((view) => seen.push(view.version));
      }));
    await Promise.all(done);
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i + 1), durability);
    assert.equal(db.engine.version, 20);
    await db.close();
  }
});

test("lastWriteOf never reports a watched key older than its last write, even after the engine forgets", async () => {
  const engine = new Engine();
  engine.watchWrites(enc("run/"));
  const a = enc("run/a");
  await engine.transaction((tx) => tx.put(a, new Uint8Array([1])));
  const wroteA = engine.version;
  assert.equal(engine.lastWriteOf(keyIdOf(a)), wroteA);
  assert.equal(engine.lastWriteOf(keyIdOf(enc("other/a"))), 0, "unwatched: nothing kept");
  // More distinct watched keys than the engine keeps: it forgets, conservatively.
  await engine.transaction((tx) => {
    for (let i = 0; i <= WATCHED_WRITES_KEPT; i++) tx.put(enc(`run/k${i}`), new Uint8Array(1));
  });
  const wroteMany = engine.version;
  assert.ok(
    engine.lastWriteOf(keyIdOf(a)) >= wroteA,
    "a forgotten key reads as written at least then",
  );
  assert.equal(engine.lastWriteOf(keyIdOf(enc(`run/k${WATCHED_WRITES_KEPT}`))), wroteMany);
  await engine.transaction((tx) => tx.delete(a));
  assert.equal(engine.lastWriteOf(keyIdOf(a)), engine.version, "a delete is a write");
  await engine.close();
});
