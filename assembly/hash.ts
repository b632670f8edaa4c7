// A hash index over the live tree: key -> blob, for point reads.
//
// A B+tree lookup among 100,000 keys walks three nodes and binary-searches
// each: about fifteen cache (and, on a virtual machine, TLB) misses, which
// measured ~0.9 µs of a 1.9 µs get. A probe of this table is one miss, and
// the blob it finds is the one the read needs anyway. Snapshots keep using
// the tree: the index mirrors only the live tree, and store.ts updates it in
// the same steps that change the live tree's leaves (put_blob, delAt).
//
// Layout: open addressing with linear probing, `cap` (a power of two) slots
// of u64 = [hash u32 (high)][blob u32 (low)], 0 = empty. A key's home slot is
// its hash & (cap - 1); the hash is kept in the slot, so a probe compares the
// key bytes only when the full 32-bit hashes agree, and a removal shifts the
// entries after it back without hashing any key again. The load stays at or
// below 3/4. The table grows only in indexReserve, which the stocking steps
// call (pool_fill, commit_stage) before a write changes anything, so a write
// never allocates here (see memory.ts on out of memory).

import { mem_alloc, mem_free } from "./memory";

const BLOB_HEADER: usize = 12;
const MIN_CAP: u32 = 64;

let table: usize = 0;
let cap: u32 = 0;
let used: u32 = 0;

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

/** True when the index is in use (it is built from the first write on). */
export function indexActive(): bool {
  return table != 0;
}

/** Number of keys in the index. */
export function indexCount(): u32 {
  return used;
}

/** The blob of the key at `p` (`len` bytes, hash `h`), or 0. */
export function indexGet(p: usize, len: u32, h: u32): usize {
  const mask = cap - 1;
  let i = h & mask;
  while (true) {
    const e = load<u64>(table + (<usize>i << 3));
    if (e == 0) return 0;
    if (<u32>(e >> 32) == h) {
      const blob = <usize>(<u32>e);
      if (sameKey(blob, p, len)) return blob;
    }
    i = (i + 1) & mask;
  }
  return 0;
}

/**
 * Points the blob's key at `blob`, adding the key when new. The caller
 * reserved room (indexReserve) for it; `h` is the hash of the blob's key.
 */
export function indexSet(blob: usize, h: u32): void {
  const len = load<u32>(blob, 4);
  const p = blob + BLOB_HEADER;
  const mask = cap - 1;
  let i = h & mask;
  const entry = (<u64>h << 32) | <u64>(<u32>blob);
  while (true) {
    const at = table + (<usize>i << 3);
    const e = load<u64>(at);
    if (e == 0) {
      store<u64>(at, entry);
      used++;
      return;
    }
    if (<u32>(e >> 32) == h && sameKey(<usize>(<u32>e), p, len)) {
      store<u64>(at, entry);
      return;
    }
    i = (i + 1) & mask;
  }
}

/** Removes the key at `p` (hash `h`); it must be in the index. */
export function indexRemove(p: usize, len: u32, h: u32): void {
  const mask = cap - 1;
  let i = h & mask;
  while (true) {
    const e = load<u64>(table + (<usize>i << 3));
    assert(e != 0, "index: removed key missing");
    if (<u32>(e >> 32) == h && sameKey(<usize>(<u32>e), p, len)) break;
    i = (i + 1) & mask;
  }
  // Backward shift: move each later entry of the run into the hole when its
  // home slot does not lie cyclically in (hole, j].
  let hole = i;
  let j = i;
  while (true) {
    j = (j + 1) & mask;
    const e = load<u64>(table + (<usize>j << 3));
    if (e == 0) break;
    const home = <u32>(e >> 32) & mask;
    const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
    if (!stays) {
      store<u64>(table + (<usize>hole << 3), e);
      hole = j;
    }
  }
  store<u64>(table + (<usize>hole << 3), 0);
  used--;
}

/**
 * Makes room for `keys` keys in all at a load of at most 3/4. Traps when out
 * of memory before changing anything (the old table stays as it was).
 */
export function indexReserve(keys: u32): void {
  if (table != 0 && <u64>keys * 4 <= <u64>cap * 3) return;
  let want: u32 = table == 0 ? MIN_CAP : cap;
  while (<u64>keys * 4 > <u64>want * 3) want <<= 1;
  const next = mem_alloc(<usize>want << 3);
  memory.fill(next, 0, <usize>want << 3);
  const mask = want - 1;
  for (let i: u32 = 0; i < cap; i++) {
    const e = load<u64>(table + (<usize>i << 3));
    if (e == 0) continue;
    let k = <u32>(e >> 32) & mask;
    while (load<u64>(next + (<usize>k << 3)) != 0) k = (k + 1) & mask;
    store<u64>(next + (<usize>k << 3), e);
  }
  if (table != 0) mem_free(table);
  table = next;
  cap = want;
}

/** Frees the table (the tree is empty or closed). */
export function indexFree(): void {
  if (table != 0) mem_free(table);
  table = 0;
  cap = 0;
  used = 0;
}
