// A hash index over the live tree: key -> blob, for point reads.
//
// A B+tree lookup among 100,000 keys walks three nodes and binary-searches
// each: about fifteen cache (and, on a virtual machine, TLB) misses, which
// measured ~0.9 µs of a 1.9 µs get. A probe of this table is one miss, and
// the blob it finds is the one the read needs anyway. The index mirrors only
// the live tree (and so serves a snapshot only while it shares the live
// root; see get in store.ts), and store.ts updates it in the same steps that
// change the live tree's leaves (put_blob, delAt).
//
// Layout: open addressing with linear probing, `cap` (a power of two) slots
// of u64 = [hash u32 (high)][blob u32 (low)], 0 = empty. A key's home slot is
// its hash & (cap - 1); the hash is kept in the slot, so a probe compares the
// key bytes only when the full 32-bit hashes agree, and a removal shifts the
// entries after it back without hashing any key again. The load stays at or
// below 3/4. The table grows only in indexReserve, which the stocking steps
// call (pool_fill, commit_stage) before a write changes anything, so a write
// never allocates here (see memory.ts on out of memory).
//
// Growth is spread over the puts that follow, so no single put pays for a
// whole table (at 1M keys, 16 MB: one put took 59-67 ms growing it in one
// step on this project's VM, mostly page faults). Past half full, the table
// twice the size is allocated and zeroed a slice per reservation; once
// zeroed it takes the writes, and the old one drains a slice of slots per
// reservation. While it drains, a key is live in exactly one table: in the
// new one, or in an old slot at or past `migrated` that is not a tombstone.
// The old table is never written except to turn a slot into a tombstone, so
// its probe chains stay whole; a lookup tries the new table, then the old.
// A reservation that needs more room than the table has finishes the growth
// at once.

import { mem_alloc, mem_free } from "./memory";

const BLOB_HEADER: usize = 12;
const MIN_CAP: u32 = 64;
/** An old-table slot whose key moved to the new table (never a real entry: blob 0xFFFFFFFF). */
const TOMB: u64 = 0xffffffffffffffff;
/** Bytes of the next table zeroed per reserved key (its zeroing must end within cap/4 inserts: 64). */
const ZERO_STEP: u32 = 256;
/** Old slots drained per reserved key (draining must end within cap/4 inserts: 4). */
const DRAIN_STEP: u32 = 16;

/** The table writes go to. */
let table: usize = 0;
let cap: u32 = 0;
/** Live keys in all (both tables while one drains). */
let used: u32 = 0;
/** The table being drained (0: none), its size, and the slots drained so far. */
let old: usize = 0;
let oldCap: u32 = 0;
let migrated: u32 = 0;
/** The next table being zeroed (0: none), its size, and the bytes zeroed so far. */
let next: usize = 0;
let nextCap: u32 = 0;
let zeroed: usize = 0;

/** 32-bit hash of `len` bytes at `p` (64-bit multiply-xorshift, murmur3's finalizer). */
export function hashKey(p: usize, len: u32): u32 {
  let h: u64 = 0x9e3779b97f4a7c15 ^ <u64>len;
  let i: u32 = 0;
  while (i + 8 <= len) {
    h = (h ^ load<u64>(p + <usize>i)) * 0xff51afd7ed558ccd;
    h ^= h >> 29;
    i += 8;
  }
  if (i < len) {
    let t: u64 = 0;
    if (len >= 8) {
      // The last 8 bytes, overlapping bytes already mixed: no reads past the key.
      t = load<u64>(p + <usize>len - 8);
    } else {
      for (let j: u32 = 0; j < len; j++) t = (t << 8) | <u64>load<u8>(p + <usize>j);
    }
    h = (h ^ t) * 0xff51afd7ed558ccd;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccd;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53;
  h ^= h >> 33;
  return <u32>h;
}

@inline function sameKey(blob: usize, p: usize, len: u32): bool {
  if (load<u32>(blob, 4) != len) return false;
  const k = blob + BLOB_HEADER;
  let i: u32 = 0;
  while (i + 8 <= len) {
    if (load<u64>(k + <usize>i) != load<u64>(p + <usize>i)) return false;
    i += 8;
  }
  while (i < len) {
    if (load<u8>(k + <usize>i) != load<u8>(p + <usize>i)) return false;
    i++;
  }
  return true;
}

@inline function slot(t: usize, i: u32): usize {
  return t + (<usize>i << 3);
}

/** True when the index is in use (it is built from the first write on). */
export function indexActive(): bool {
  return table != 0;
}

/** Number of keys in the index. */
export function indexCount(): u32 {
  return used;
}

/**
 * The slot of the key in the write table, or, when it is not there,
 * -1 - the empty slot that ends its probe chain (where an insert goes).
 */
function findNew(p: usize, len: u32, h: u32): i64 {
  const mask = cap - 1;
  let i = h & mask;
  while (true) {
    const e = load<u64>(slot(table, i));
    if (e == 0) return -1 - <i64>i;
    if (<u32>(e >> 32) == h && sameKey(<usize>(<u32>e), p, len)) return <i64>i;
    i = (i + 1) & mask;
  }
  return -1;
}

/** The slot of the key where it is live in the draining table, or -1. */
function findOld(p: usize, len: u32, h: u32): i64 {
  if (old == 0) return -1;
  const mask = oldCap - 1;
  let i = h & mask;
  while (true) {
    const e = load<u64>(slot(old, i));
    if (e == 0) return -1;
    if (e != TOMB && i >= migrated && <u32>(e >> 32) == h && sameKey(<usize>(<u32>e), p, len)) {
      return <i64>i;
    }
    i = (i + 1) & mask;
  }
  return -1;
}

/** The blob of the key at `p` (`len` bytes, hash `h`), or 0. */
export function indexGet(p: usize, len: u32, h: u32): usize {
  let at = findNew(p, len, h);
  if (at >= 0) return <usize>(<u32>load<u64>(slot(table, <u32>at)));
  at = findOld(p, len, h);
  return at >= 0 ? <usize>(<u32>load<u64>(slot(old, <u32>at))) : 0;
}

/** Puts an entry whose key is in neither table into the write table. */
function insertNew(entry: u64): void {
  const mask = cap - 1;
  let i = <u32>(entry >> 32) & mask;
  while (load<u64>(slot(table, i)) != 0) i = (i + 1) & mask;
  store<u64>(slot(table, i), entry);
}

/**
 * Points the blob's key at `blob`, adding the key when new. The caller
 * reserved room (indexReserve) for it; `h` is the hash of the blob's key.
 */
export function indexSet(blob: usize, h: u32): void {
  assert(table != 0, "index: indexReserve was not called");
  const len = load<u32>(blob, 4);
  const p = blob + BLOB_HEADER;
  const entry = (<u64>h << 32) | <u64>(<u32>blob);
  const at = findNew(p, len, h);
  if (at >= 0) {
    store<u64>(slot(table, <u32>at), entry);
    return;
  }
  const was = findOld(p, len, h);
  if (was >= 0) store<u64>(slot(old, <u32>was), TOMB); // moves to the new table
  else used++;
  store<u64>(slot(table, <u32>(-1 - at)), entry);
}

/** Removes the key at `p` (hash `h`); it must be in the index. */
export function indexRemove(p: usize, len: u32, h: u32): void {
  used--;
  const at = findNew(p, len, h);
  if (at < 0) {
    const was = findOld(p, len, h);
    assert(was >= 0, "index: removed key missing");
    store<u64>(slot(old, <u32>was), TOMB);
    return;
  }
  // Backward shift: move each later entry of the run into the hole when its
  // home slot does not lie cyclically in (hole, j].
  const mask = cap - 1;
  let hole = <u32>at;
  let j = hole;
  while (true) {
    j = (j + 1) & mask;
    const e = load<u64>(slot(table, j));
    if (e == 0) break;
    const home = <u32>(e >> 32) & mask;
    const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
    if (!stays) {
      store<u64>(slot(table, hole), e);
      hole = j;
    }
  }
  store<u64>(slot(table, hole), 0);
}

/** Moves up to `n` slots of the draining table to the write table; frees it when done. */
function drain(n: u32): void {
  while (old != 0 && n > 0) {
    const e = load<u64>(slot(old, migrated));
    if (e != 0 && e != TOMB) insertNew(e);
    migrated++;
    n--;
    if (migrated == oldCap) {
      mem_free(old);
      old = 0;
      oldCap = 0;
      migrated = 0;
    }
  }
}

/** Zeroes up to `n` more bytes of the next table; once all are, it becomes the write table. */
function zeroNext(n: usize): void {
  const bytes = <usize>nextCap << 3;
  const k = bytes - zeroed < n ? bytes - zeroed : n;
  memory.fill(next + zeroed, 0, k);
  zeroed += k;
  if (zeroed < bytes) return;
  drain(u32.MAX_VALUE); // never two tables draining at once
  old = table;
  oldCap = cap;
  migrated = 0;
  table = next;
  cap = nextCap;
  next = 0;
  nextCap = 0;
  zeroed = 0;
}

@inline function fits(keys: u64, size: u32): bool {
  return keys * 4 <= <u64>size * 3;
}

/**
 * Makes room for `keys` keys in all, `added` of them new to this call's
 * write (or staged commit), and moves the growth along by a step per added
 * key. Traps when out of memory before changing anything.
 */
export function indexReserve(keys: u32, added: u32): void {
  if (table == 0) {
    let want: u32 = MIN_CAP;
    while (!fits(keys, want)) want <<= 1;
    table = mem_alloc(<usize>want << 3);
    memory.fill(table, 0, <usize>want << 3);
    cap = want;
    return;
  }
  const steps = added == 0 ? 1 : added;
  if (old != 0) drain(<u32>min<u64>(<u64>steps * DRAIN_STEP, u32.MAX_VALUE));
  else if (next != 0) zeroNext(<usize>min<u64>(<u64>steps * ZERO_STEP, <u64>u32.MAX_VALUE));
  if (!fits(keys, cap)) {
    // Out of room before the growth is done: finish it now.
    drain(u32.MAX_VALUE);
    if (next != 0 && !fits(keys, nextCap)) {
      mem_free(next);
      next = 0;
      nextCap = 0;
      zeroed = 0;
    }
    if (next == 0) startNext(keys);
    zeroNext(<usize>nextCap << 3);
    drain(u32.MAX_VALUE);
  } else if (next == 0 && old == 0 && <u64>keys * 2 > <u64>cap) {
    startNext(keys);
  }
}

/** Allocates the next table: twice the size, or more to hold `keys`. */
function startNext(keys: u32): void {
  let want: u32 = cap << 1;
  while (!fits(keys, want)) want <<= 1;
  next = mem_alloc(<usize>want << 3);
  nextCap = want;
  zeroed = 0;
}

// ---- bulk build (recovery): entries inserted in the order of their home
// slots' pages, so the table is written a page at a time, not at random.

/** Home-slot buckets of a bulk build, at most (a bucket of 512 slots is one 4 KiB page). */
const BUILD_BUCKETS_BITS: u32 = 12;
const buildCounts: usize = memory.data(((1 << BUILD_BUCKETS_BITS) + 1) * 4, 16);
/** The bulk build's scratch: n entries as filled, then n sorted by bucket. */
let buildTmp: usize = 0;

/**
 * Starts a bulk build of an index of `n` keys (the index must be empty):
 * allocates the table and returns a buffer the caller fills with the n
 * entries (hash << 32 | blob) before indexBuildEnd. Traps when out of memory;
 * whatever it allocated is freed by the next call or by indexFree.
 */
export function indexBuildBegin(n: u32): usize {
  indexFree();
  buildTmp = mem_alloc(<usize>n << 4);
  indexReserve(n, 0);
  return buildTmp;
}

/** Inserts the `n` entries the caller put in the buffer indexBuildBegin returned. */
export function indexBuildEnd(n: u32): void {
  const src = buildTmp;
  const dst = buildTmp + (<usize>n << 3);
  const bits = <u32>ctz<u32>(cap);
  const bbits = bits < BUILD_BUCKETS_BITS ? bits : BUILD_BUCKETS_BITS;
  const shift = bits - bbits;
  const buckets = <u32>1 << bbits;
  const mask = cap - 1;
  memory.fill(buildCounts, 0, (<usize>buckets + 1) << 2);
  for (let i: u32 = 0; i < n; i++) {
    const b = ((<u32>(load<u64>(src + (<usize>i << 3)) >> 32) & mask) >> shift) + 1;
    store<u32>(buildCounts + (<usize>b << 2), load<u32>(buildCounts + (<usize>b << 2)) + 1);
  }
  for (let b: u32 = 1; b <= buckets; b++) {
    const at = buildCounts + (<usize>b << 2);
    store<u32>(at, load<u32>(at) + load<u32>(at - 4));
  }
  // buildCounts[b] is now where bucket b starts.
  for (let i: u32 = 0; i < n; i++) {
    const e = load<u64>(src + (<usize>i << 3));
    const at = buildCounts + (<usize>((<u32>(e >> 32) & mask) >> shift) << 2);
    const k = load<u32>(at);
    store<u64>(dst + (<usize>k << 3), e);
    store<u32>(at, k + 1);
  }
  for (let i: u32 = 0; i < n; i++) insertNew(load<u64>(dst + (<usize>i << 3)));
  used = n;
  mem_free(buildTmp);
  buildTmp = 0;
}

/** Frees the tables (the tree is empty or closed). */
export function indexFree(): void {
  if (buildTmp != 0) mem_free(buildTmp);
  buildTmp = 0;
  if (table != 0) mem_free(table);
  if (old != 0) mem_free(old);
  if (next != 0) mem_free(next);
  table = 0;
  cap = 0;
  used = 0;
  old = 0;
  oldCap = 0;
  migrated = 0;
  next = 0;
  nextCap = 0;
  zeroed = 0;
}
