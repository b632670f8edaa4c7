// The engine's count of running transactions by start version
// (src/engine/running.ts), against a Map model: after every step the count
// and the oldest running version must equal the model's. A negative control
// runs the same checker on a counter that forgets older versions.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { RunningVersions } from "../../src/engine/running.ts";

interface Counter {
  readonly count: number;
  add(version: number): void;
  remove(version: number): void;
  oldest(): number | undefined;
}

/** Steps: start a transaction at the current version, end a running one, or move the version on. */
type Step = { op: "start" } | { op: "end"; pick: number } | { op: "advance"; by: number };
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.constant({ op: "start" as const }),
  fc.record({ op: fc.constant("end" as const), pick: fc.nat() }),
  fc.record({ op: fc.constant("advance" as const), by: fc.integer({ min: 1, max: 3 }) }),
);

/** Runs `steps` on `counter` and on a Map model; throws at the first difference. */
function check(counter: Counter, steps: Step[]): void {
  const model = new Map<number, number>();
  const running: number[] = []; // start versions of the running transactions
  let version = 0;
  for (const s of steps) {
    if (s.op === "start") {
      counter.add(version);
      model.set(version, (model.get(version) ?? 0) + 1);
      running.push(version);
    } else if (s.op === "end") {
      if (running.length === 0) continue;
      const [v] = running.splice(s.pick % running.length, 1);
      counter.remove(v!);
      const n = model.get(v!)!;
      if (n === 1) model.delete(v!);
      else model.set(v!, n - 1);
    } else {
      version += s.by;
    }
    const oldest = model.size === 0 ? undefined : Math.min(...model.keys());
    assert.equal(counter.oldest(), oldest);
    assert.equal(counter.count, running.length);
  }
}

test("RunningVersions: count and oldest follow a Map model (500 runs of ≤ 300 steps)", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
      check(new RunningVersions(), steps);
    }),
    { numRuns: 500 },
  );
});

test("RunningVersions: many transactions over many versions reuse the arrays (compaction)", () => {
  // A long-running transaction at 0 while short ones come and go at newer
  // versions, then it ends: the counter must keep answering right throughout.
  const steps: Step[] = [{ op: "start" }];
  for (let i = 0; i < 5000; i++) {
    steps.push({ op: "advance", by: 1 }, { op: "start" }, { op: "start" });
    steps.push({ op: "end", pick: 1 });
  }
  steps.push({ op: "end", pick: 0 });
  for (let i = 0; i < 5000; i++) steps.push({ op: "end", pick: 0 });
  // A sliding window: each new transaction starts after the oldest ended,
  // so the live entries move along the arrays and get moved back to the front.
  steps.push({ op: "start" }, { op: "advance", by: 1 }, { op: "start" });
  for (let i = 0; i < 5000; i++) {
    steps.push({ op: "advance", by: 1 }, { op: "start" }, { op: "end", pick: 0 });
  }
  check(new RunningVersions(), steps);
});

test("RunningVersions: an older version, or ending one that does not run, is a RangeError", () => {
  const running = new RunningVersions();
  running.add(5);
  assert.throws(() => running.add(4), RangeError);
  assert.throws(() => running.remove(6), RangeError);
  running.remove(5);
  assert.throws(() => running.remove(5), RangeError);
  assert.equal(running.count, 0);
  running.add(2); // empty again: any version may start
  assert.equal(running.oldest(), 2);
});

test("negative control: the checker catches a counter that only keeps the newest version", () => {
  class NewestOnly implements Counter {
    count = 0;
    #newest: number | undefined;
    add(version: number): void {
      this.count++;
      this.#newest = version;
    }
    remove(): void {
      if (--this.count === 0) this.#newest = undefined;
    }
    oldest(): number | undefined {
      return this.#newest;
    }
  }
  const result = fc.check(
    fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
      check(new NewestOnly(), steps);
    }),
    { numRuns: 500, seed: 1 },
  );
  assert.equal(result.failed, true, "the model check must fail on the broken counter");
});
