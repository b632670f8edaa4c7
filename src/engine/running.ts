/**
 * The start versions of the running transactions, for the engine's pruning
 * of commits no running transaction can overlap any more.
 *
 * A transaction starts at the engine's applied version, which never goes
 * down, so start versions arrive in order: this is a queue of (version,
 * count) pairs, oldest first, with the oldest running version at its head.
 * It replaces a `Map<version, count>`, which V8 re-hashed into a freshly
 * allocated table on nearly every transaction (one entry set, then deleted:
 * ~5% of a batched put's profile on Node).
 *
 * @module
 */

/**
 * Counts running transactions by start version.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunningVersions } from "./running.ts";
 *
 * const running = new RunningVersions();
 * running.add(3);
 * running.add(3);
 * running.add(5);
 * running.remove(3);
 * assert.equal(running.oldest(), 3); // one transaction still runs at 3
 * running.remove(3);
 * assert.equal(running.oldest(), 5);
 * running.remove(5);
 * assert.equal(running.oldest(), undefined);
 * assert.equal(running.count, 0);
 * ```
 */
export class RunningVersions {
  // Entries [#head, #tail) are live; versions strictly increase along them.
  // An entry whose count fell to 0 inside the range stays until the head
  // passes it (a newer transaction still runs); at the tail it is dropped.
  readonly #versions: number[] = [];
  readonly #counts: number[] = [];
  #head = 0;
  #tail = 0;
  #count = 0;

  /** How many transactions run. */
  get count(): number {
    return this.#count;
  }

  /**
   * Counts one more transaction started at `version`.
   *
   * @param version Its start version: ≥ every version added before.
   * @throws {RangeError} If `version` is older than the newest one held.
   */
  add(version: number): void {
    const last = this.#tail - 1;
    if (last >= this.#head) {
      const newest = this.#versions[last]!;
      if (newest === version) {
        this.#counts[last]!++;
        this.#count++;
        return;
      }
      if (version < newest) {
        throw new RangeError(
          `Cannot count a transaction at version ${version}: one started at ${newest} already`,
        );
      }
    }
    if (this.#tail === this.#versions.length && this.#head > 0) this.#compact();
    this.#versions[this.#tail] = version;
    this.#counts[this.#tail] = 1;
    this.#tail++;
    this.#count++;
  }

  /**
   * Counts one transaction started at `version` as over.
   *
   * @param version Its start version, as passed to {@link add}.
   * @throws {RangeError} If no transaction runs at `version`.
   */
  remove(version: number): void {
    const i = this.#find(version);
    if (i < 0 || this.#counts[i] === 0) {
      throw new RangeError(`Cannot end a transaction at version ${version}: none runs there`);
    }
    this.#counts[i]!--;
    this.#count--;
    if (this.#count === 0) {
      this.#head = this.#tail = 0;
      return;
    }
    while (this.#counts[this.#head] === 0) this.#head++;
    while (this.#counts[this.#tail - 1] === 0) this.#tail--;
  }

  /** The oldest start version of a running transaction, or undefined if none runs. */
  oldest(): number | undefined {
    return this.#head < this.#tail ? this.#versions[this.#head] : undefined;
  }

  /** Index of `version` in [#head, #tail), or -1 (binary search; the newest is checked first). */
  #find(version: number): number {
    let hi = this.#tail - 1;
    if (hi >= this.#head && this.#versions[hi] === version) return hi;
    let lo = this.#head;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.#versions[mid]!;
      if (v === version) return mid;
      if (v < version) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Moves the live entries to the front of the arrays. */
  #compact(): void {
    const n = this.#tail - this.#head;
    this.#versions.copyWithin(0, this.#head, this.#tail);
    this.#counts.copyWithin(0, this.#head, this.#tail);
    this.#head = 0;
    this.#tail = n;
  }
}
