// The ordered store: a copy-on-write B+tree of byte-string keys and values,
// all of it in linear memory, with O(1) snapshots.
//
// Layout (docs/ARCHITECTURE.md, "The ordered store", says why):
//
//   Tree    [root u32][count u32][bytes f64]                        16 bytes
//   Blob    [rc u32][keyLen u32][valueLen u32][key][value]          one per put
//   Node    [rc u32][kind u8][last u8][n u16] then, by kind:
//     leaf      n slots (+1 spare)
//               slot = [head0 u64][head1 u64][head2 u64][keyLen u32][blob u32]
//     internal  n separator slots (+1 spare), then n+1 children (+1 spare) as u32
//               last = 1 + the slot of the node's last insert, 0 if unknown:
//               a hint for choosing split points (see splitUp)
//
// A slot keeps the first 24 bytes of its key inline (zero-padded, read as
// three big-endian u64), so most comparisons never leave the node: a run's
// KV key spends 5 of them on the run number and tag, and keys that share a
// prefix ("g/042/00042…") differ only after it (with 16 bytes, a lookup
// among 100,000 such keys spent ~15% of its time on blob tails, cache
// misses). The blob holds the whole key and the value; separators in
// internal nodes are references to blobs too (the first key of the right
// node at the time of a split). Point reads of the live tree go through a
// hash index instead (hash.ts).
//
// Every node and blob carries a reference count: the number of parents (or
// Tree records) that point to it. A snapshot is a new Tree record pointing at
// the same root, so taking one costs O(1). A writer copies a node before
// changing it only when the node is shared (rc > 1), so with no snapshot held
// every write is in place. Releasing the last reference frees a node and
// drops one reference from everything it points to.
//
// Child i of an internal node holds the keys k with sep[i-1] <= k < sep[i].

import { mem_alloc, mem_free } from "./memory";
import {
  hashKey,
  indexActive,
  indexBuildBegin,
  indexBuildEnd,
  indexCount,
  indexFree,
  indexGet,
  indexRemove,
  indexReserve,
  indexSet,
} from "./hash";

// ---- limits (mirrored in src/core/store.ts; documented in docs/ARCHITECTURE.md)

/** Largest key, in bytes. */
export const MAX_KEY_BYTES: u32 = 4096;
/** Largest value, in bytes. */
export const MAX_VALUE_BYTES: u32 = 16 << 20;
/** Deepest tree the cursors can walk. 24 levels of >= 16-way nodes hold more than 4 GiB can. */
const MAX_DEPTH: i32 = 24;

const LEAF_CAP: i32 = 64;
const INNER_CAP: i32 = 64;
// A node with fewer entries than this after a delete is merged or refilled.
const LEAF_MIN: i32 = LEAF_CAP / 4;
const INNER_MIN: i32 = INNER_CAP / 4;

const KIND_LEAF: u16 = 1;
const KIND_INNER: u16 = 2;

/** Key bytes kept inline in a slot (a multiple of 8). */
const HEAD: u32 = 24;
const SLOT: usize = <usize>HEAD + 8;
const SLOT_LEN: usize = <usize>HEAD;
const SLOT_BLOB: usize = <usize>HEAD + 4;
const NODE_HEADER: usize = 8;
const LEAF_BYTES: usize = NODE_HEADER + <usize>(LEAF_CAP + 1) * SLOT;
const INNER_CHILDREN: usize = NODE_HEADER + <usize>(INNER_CAP + 1) * SLOT;
const INNER_BYTES: usize = INNER_CHILDREN + <usize>(INNER_CAP + 2) * 4;

const BLOB_HEADER: usize = 12;
const TREE_BYTES: usize = 16;


// Bound flags for cursors.
const BOUND_NONE: i32 = 0;
const BOUND_INCLUSIVE: i32 = 1;
const BOUND_EXCLUSIVE: i32 = 2;

/** Blob pointers handed to the host per cursor_next call, at most. */
const BATCH_MAX: i32 = 256;

// Two key buffers the host writes into (lo and hi bound, or one key), and the
// batch buffer cursor_next fills.
const scratch: usize = memory.data(<i32>(2 * MAX_KEY_BYTES), 16);
const batch: usize = memory.data(BATCH_MAX * 4, 16);
// HEAD zeroed bytes to build a key head from a short key.
const headTmp: usize = memory.data(<i32>HEAD, 16);

// ---- the search key (set once per operation)

let kPtr: usize = 0;
let kLen: u32 = 0;
let kH0: u64 = 0;
let kH1: u64 = 0;
let kH2: u64 = 0;

@inline function headOf(ptr: usize, len: u32): void {
  if (len < HEAD) {
    store<u64>(headTmp, 0);
    store<u64>(headTmp, 0, 8);
    store<u64>(headTmp, 0, 16);
    memory.copy(headTmp, ptr, len);
    ptr = headTmp;
  }
  kH0 = bswap<u64>(load<u64>(ptr));
  kH1 = bswap<u64>(load<u64>(ptr, 8));
  kH2 = bswap<u64>(load<u64>(ptr, 16));
}

function setKey(ptr: usize, len: u32): void {
  kPtr = ptr;
  kLen = len;
  headOf(ptr, len);
}

/** Compares bytes a[from..alen) with b[from..blen), then lengths. */
function compareTail(a: usize, alen: u32, b: usize, blen: u32, from: u32): i32 {
  const n = alen < blen ? alen : blen;
  let i = from;
  while (i + 8 <= n) {
    const x = bswap<u64>(load<u64>(a + i));
    const y = bswap<u64>(load<u64>(b + i));
    if (x != y) return x < y ? -1 : 1;
    i += 8;
  }
  while (i < n) {
    const x = load<u8>(a + i);
    const y = load<u8>(b + i);
    if (x != y) return x < y ? -1 : 1;
    i++;
  }
  return alen == blen ? 0 : alen < blen ? -1 : 1;
}

/** Compares the search key with the key in `slot`. */
@inline function cmpSlot(slot: usize): i32 {
  const h0 = load<u64>(slot);
  if (kH0 != h0) return kH0 < h0 ? -1 : 1;
  const h1 = load<u64>(slot, 8);
  if (kH1 != h1) return kH1 < h1 ? -1 : 1;
  const h2 = load<u64>(slot, 16);
  if (kH2 != h2) return kH2 < h2 ? -1 : 1;
  const len = load<u32>(slot, SLOT_LEN);
  // Equal padded heads: when either key fits in HEAD bytes it is a prefix of
  // the other, so the lengths decide.
  if (kLen <= HEAD || len <= HEAD) return kLen == len ? 0 : kLen < len ? -1 : 1;
  return compareTail(kPtr, kLen, <usize>load<u32>(slot, SLOT_BLOB) + BLOB_HEADER, len, HEAD);
}

// ---- node and blob accessors

@inline function rc(p: usize): u32 {
  return load<u32>(p);
}
@inline function kind(node: usize): u16 {
  return <u16>load<u8>(node, 4);
}

/** 1 + the slot of the node's last insert; 0 when unknown (a hint: see splitUp). */
@inline function lastInsert(node: usize): i32 {
  return <i32>load<u8>(node, 5);
}

@inline function setLastInsert(node: usize, v: i32): void {
  store<u8>(node, <u8>v, 5);
}
@inline function count(node: usize): i32 {
  return <i32>load<u16>(node, 6);
}
@inline function setCount(node: usize, n: i32): void {
  store<u16>(node, <u16>n, 6);
}
@inline function slotAt(node: usize, i: i32): usize {
  return node + NODE_HEADER + <usize>i * SLOT;
}
@inline function childAt(node: usize, i: i32): usize {
  return <usize>load<u32>(node + INNER_CHILDREN + (<usize>i << 2));
}
@inline function setChild(node: usize, i: i32, child: usize): void {
  store<u32>(node + INNER_CHILDREN + (<usize>i << 2), <u32>child);
}
@inline function slotBlob(slot: usize): usize {
  return <usize>load<u32>(slot, SLOT_BLOB);
}
@inline function blobKeyLen(blob: usize): u32 {
  return load<u32>(blob, 4);
}
@inline function blobValueLen(blob: usize): u32 {
  return load<u32>(blob, 8);
}
@inline function blobKey(blob: usize): usize {
  return blob + BLOB_HEADER;
}

@inline function treeRoot(tree: usize): usize {
  return <usize>load<u32>(tree);
}
@inline function treeCount(tree: usize): u32 {
  return load<u32>(tree, 4);
}
@inline function treeBytes(tree: usize): f64 {
  return load<f64>(tree, 8);
}

/** Fills `slot` so it refers to `blob` (takes over one reference). */
function fillSlot(slot: usize, blob: usize): void {
  const len = blobKeyLen(blob);
  headOfInto(slot, blobKey(blob), len);
  store<u32>(slot, len, SLOT_LEN);
  store<u32>(slot, <u32>blob, SLOT_BLOB);
}

function headOfInto(slot: usize, ptr: usize, len: u32): void {
  if (len < HEAD) {
    store<u64>(headTmp, 0);
    store<u64>(headTmp, 0, 8);
    store<u64>(headTmp, 0, 16);
    memory.copy(headTmp, ptr, len);
    ptr = headTmp;
  }
  store<u64>(slot, bswap<u64>(load<u64>(ptr)));
  store<u64>(slot, bswap<u64>(load<u64>(ptr, 8)), 8);
  store<u64>(slot, bswap<u64>(load<u64>(ptr, 16)), 16);
}

// ---- node pools
//
// A write takes every node it creates from these pools, which pool_fill
// stocks beforehand with the worst case of one write, so a write never
// allocates once it has started changing the tree (see memory.ts on out of
// memory). Free nodes are chained through their first word. The pools keep
// their stock between writes (no allocator traffic per write) and are
// emptied when the tree becomes empty and when it is freed.

let leafPool: usize = 0;
let leafPoolSize: i32 = 0;
let innerPool: usize = 0;
let innerPoolSize: i32 = 0;

/**
 * Stocks the pools for one write on `tree`: on a tree of height h it may
 * copy every node on a path (they are shared with a snapshot), split every
 * one, add a root, and copy one sibling per level when a delete rebalances.
 * That is at most 2 leaves and 2h + 1 inner nodes. Traps when out of memory,
 * leaving the pools stocked as far as they got.
 */
export function pool_fill(tree: usize): void {
  stockPools(2, 2 * store_height(tree) + 1);
  // Room for one more key besides those staged commits were promised.
  if (tree == liveTree && !indexOff) indexReserve(treeCount(tree) + <u32>promisedKeys + 1, 1);
}

function stockPools(leaves: i32, inner: i32): void {
  while (leafPoolSize < leaves) {
    const n = mem_alloc(LEAF_BYTES);
    store<u32>(n, <u32>leafPool);
    leafPool = n;
    leafPoolSize++;
  }
  while (innerPoolSize < inner) {
    const n = mem_alloc(INNER_BYTES);
    store<u32>(n, <u32>innerPool);
    innerPool = n;
    innerPoolSize++;
  }
}

/** Frees the pools' stock. */
export function pool_drain(): void {
  while (leafPool != 0) {
    const next = <usize>load<u32>(leafPool);
    mem_free(leafPool);
    leafPool = next;
  }
  while (innerPool != 0) {
    const next = <usize>load<u32>(innerPool);
    mem_free(innerPool);
    innerPool = next;
  }
  leafPoolSize = 0;
  innerPoolSize = 0;
}

function takeNode(k: u16): usize {
  let node: usize;
  if (k == KIND_LEAF) {
    assert(leafPool != 0, "leaf pool empty: pool_fill was not called");
    node = leafPool;
    leafPool = <usize>load<u32>(node);
    leafPoolSize--;
  } else {
    assert(innerPool != 0, "inner pool empty: pool_fill was not called");
    node = innerPool;
    innerPool = <usize>load<u32>(node);
    innerPoolSize--;
  }
  return node;
}

function newNode(k: u16): usize {
  const node = takeNode(k);
  store<u32>(node, 1);
  store<u16>(node, k, 4);
  store<u16>(node, 0, 6);
  return node;
}

@inline function incref(p: usize): void {
  store<u32>(p, load<u32>(p) + 1);
}

function releaseBlob(blob: usize): void {
  const r = rc(blob);
  assert(r > 0, "blob refcount underflow");
  if (r == 1) mem_free(blob);
  else store<u32>(blob, r - 1);
}

/**
 * Drops one reference from `node`; frees it and, in turn, what it referenced
 * when that was the last. Iterative with an explicit stack: no recursion.
 */
function releaseNode(node: usize): void {
  if (node == 0) return;
  const r = rc(node);
  assert(r > 0, "node refcount underflow");
  if (r > 1) {
    store<u32>(node, r - 1);
    return;
  }
  // Depth-first over nodes whose count just reached zero. The stack holds at
  // most MAX_DEPTH nodes per level's pending children; it lives in a block
  // allocated per level walk to stay bounded: (INNER_CAP + 2) * MAX_DEPTH.
  const stack = freeStack;
  let top = 0;
  store<u32>(stack, <u32>node);
  top = 1;
  while (top > 0) {
    top--;
    const n = <usize>load<u32>(stack + (<usize>top << 2));
    const c = count(n);
    for (let i = 0; i < c; i++) releaseBlob(slotBlob(slotAt(n, i)));
    if (kind(n) == KIND_INNER) {
      for (let i = 0; i <= c; i++) {
        const child = childAt(n, i);
        const cr = rc(child);
        assert(cr > 0, "node refcount underflow");
        if (cr > 1) {
          store<u32>(child, cr - 1);
        } else {
          assert(top < FREE_STACK_MAX, "free stack overflow");
          store<u32>(stack + (<usize>top << 2), <u32>child);
          top++;
        }
      }
    }
    mem_free(n);
  }
}

// A depth-first free visits at most (INNER_CAP + 1) pending siblings per level.
const FREE_STACK_MAX: i32 = (INNER_CAP + 2) * MAX_DEPTH;
const freeStack: usize = memory.data(FREE_STACK_MAX * 4, 16);

/** Returns an unshared copy of `node` and drops one reference from it. */
function copyNode(node: usize): usize {
  const k = kind(node);
  const copy = takeNode(k);
  memory.copy(copy, node, k == KIND_LEAF ? LEAF_BYTES : INNER_BYTES);
  store<u32>(copy, 1);
  const c = count(node);
  for (let i = 0; i < c; i++) incref(slotBlob(slotAt(node, i)));
  if (k == KIND_INNER) for (let i = 0; i <= c; i++) incref(childAt(node, i));
  store<u32>(node, rc(node) - 1); // still > 0: it was shared
  return copy;
}

@inline function unshared(node: usize): usize {
  return rc(node) > 1 ? copyNode(node) : node;
}

/** Index of the first slot whose key is >= the search key (n when none). */
function lowerBound(node: usize): i32 {
  let lo = 0;
  let hi = count(node);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmpSlot(slotAt(node, mid)) > 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first slot whose key is > the search key (n when none). */
function upperBound(node: usize): i32 {
  let lo = 0;
  let hi = count(node);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmpSlot(slotAt(node, mid)) >= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- trees and snapshots

/**
 * The live tree: the one tree of this instance that writes change, and the
 * one the hash index (hash.ts) mirrors. Snapshots are other tree records.
 */
let liveTree: usize = 0;
/**
 * The hash index is off (index_suspend): writes leave it alone and reads
 * walk the tree, until index_resume builds it from the leaves in one pass.
 * Recovery replays its log this way: building the index once, in the order
 * of its pages, costs less than keeping it through every replayed write.
 */
let indexOff: bool = false;

/** Drops the hash index until index_resume (see indexOff). */
export function index_suspend(): void {
  indexFree();
  indexOff = true;
}

/**
 * Builds the hash index of the live tree from its leaves and turns it back
 * on. Traps when out of memory; the index then stays off, which reads and
 * writes handle (they search the tree), and a later call may try again.
 */
export function index_resume(): void {
  if (!indexOff || liveTree == 0) return;
  const n = treeCount(liveTree);
  if (n > 0) {
    const buf = indexBuildBegin(n);
    const end = indexEntries(treeRoot(liveTree), buf);
    assert(end == buf + (<usize>n << 3), "index_resume: key count");
    indexBuildEnd(n);
  }
  indexOff = false;
}

/** Writes the index entry of every key under `node` from `at` on; returns the end. */
function indexEntries(node: usize, at: usize): usize {
  // Recursion is bounded by the tree height (<= MAX_DEPTH).
  const n = count(node);
  if (kind(node) == KIND_LEAF) {
    for (let i = 0; i < n; i++) {
      const blob = slotBlob(slotAt(node, i));
      const h = hashKey(blobKey(blob), blobKeyLen(blob));
      store<u64>(at, (<u64>h << 32) | <u64>(<u32>blob));
      at += 8;
    }
    return at;
  }
  for (let i = 0; i <= n; i++) at = indexEntries(childAt(node, i), at);
  return at;
}

function treeRecord(): usize {
  const tree = mem_alloc(TREE_BYTES);
  store<u32>(tree, 0);
  store<u32>(tree, 0, 4);
  store<f64>(tree, 0, 8);
  return tree;
}

/**
 * Creates the instance's live tree, empty, and returns its record. Traps
 * when out of memory.
 */
export function store_new(): usize {
  assert(liveTree == 0, "store_new: this instance has its live tree");
  const tree = treeRecord();
  liveTree = tree;
  return tree;
}

/**
 * Takes an O(1) snapshot: a new tree record sharing the root. It reads like a
 * tree and is released with store_free. Traps when out of memory.
 */
export function snapshot_take(tree: usize): usize {
  const snap = treeRecord();
  const root = treeRoot(tree);
  if (root != 0) incref(root);
  memory.copy(snap, tree, TREE_BYTES);
  rootHolders++;
  return snap;
}

/** Releases a tree or snapshot and everything only it held. */
export function store_free(tree: usize): void {
  releaseNode(treeRoot(tree));
  mem_free(tree);
  if (tree == liveTree) {
    indexFree();
    liveTree = 0;
  } else {
    rootHolders--;
  }
}

/**
 * Snapshots and cursors open: each holds a root, so the nodes and blobs
 * under it may be shared with the live tree. With none open, every node and
 * blob the live tree reaches is its alone (reference counts are exact), and
 * put_blob may overwrite a value of the same size in place.
 */
let rootHolders: i32 = 0;
/** Values put_blob overwrote in place (a statistic; tests check it happens). */
let inPlaceWrites: f64 = 0;

/** Values overwritten in place since the instance began (see put_blob). */
export function store_in_place_writes(): f64 {
  return inPlaceWrites;
}

/** Releases the live tree, everything only it held, and the node pools. */
export function store_close(tree: usize): void {
  store_free(tree);
  pool_drain();
}

/** Number of keys in the tree. */
export function store_count(tree: usize): u32 {
  return treeCount(tree);
}

/** Levels of nodes: 0 for an empty tree, 1 for a lone leaf. */
export function store_height(tree: usize): i32 {
  let node = treeRoot(tree);
  let h = 0;
  while (node != 0) {
    h++;
    node = kind(node) == KIND_INNER ? childAt(node, 0) : 0;
  }
  return h;
}

/** Leaves in the tree (a measure of how full its nodes are). */
export function store_leaves(tree: usize): u32 {
  return countLeaves(treeRoot(tree));
}

// Recursion is bounded by the tree height.
function countLeaves(node: usize): u32 {
  if (node == 0) return 0;
  if (kind(node) == KIND_LEAF) return 1;
  let leaves: u32 = 0;
  const n = count(node);
  for (let i = 0; i <= n; i++) leaves += countLeaves(childAt(node, i));
  return leaves;
}

/** Sum of key and value lengths in the tree. */
export function store_bytes(tree: usize): f64 {
  return treeBytes(tree);
}

/** Address of the 2 x MAX_KEY_BYTES buffer for keys from the host. */
export function key_scratch(): usize {
  return scratch;
}

/** Address of the buffer cursor_next fills with blob pointers. */
export function cursor_batch(): usize {
  return batch;
}

// ---- point reads

/**
 * Looks up the key in the scratch buffer; returns its blob or 0. The hash
 * index answers for the live tree, and for a snapshot that still shares the
 * live tree's root: a snapshot holds a reference to its root, so any write
 * to the live tree since then copied the root, and equal roots mean equal
 * contents. Other snapshots search their nodes.
 */
export function get(tree: usize, keyLen: u32): usize {
  if (indexActive() && treeRoot(tree) == treeRoot(liveTree)) {
    return indexGet(scratch, keyLen, hashKey(scratch, keyLen));
  }
  return getAt(tree, scratch, keyLen);
}

/** Looks up the key at `ptr`; returns its blob or 0. */
function getAt(tree: usize, ptr: usize, keyLen: u32): usize {
  let node = treeRoot(tree);
  if (node == 0) return 0;
  setKey(ptr, keyLen);
  while (kind(node) == KIND_INNER) node = childAt(node, upperBound(node));
  const i = lowerBound(node);
  if (i < count(node) && cmpSlot(slotAt(node, i)) == 0) return slotBlob(slotAt(node, i));
  return 0;
}

// ---- writes

/**
 * Allocates a blob for a key and value the host then writes at
 * blob + 12 (key) and blob + 12 + keyLen (value), and stocks the node pools
 * so put_blob cannot run out of memory. Returns -1 when a length is over its
 * limit. Traps when out of memory (the host then discards nothing: a trap in
 * the blob allocation leaves no blob; one in pool_fill is caught by the host,
 * which discards the blob).
 */
export function blob_new(keyLen: u32, valueLen: u32): isize {
  if (keyLen > MAX_KEY_BYTES || valueLen > MAX_VALUE_BYTES) return -1;
  const size = BLOB_HEADER + <usize>keyLen + <usize>valueLen;
  const blob = mem_alloc(size);
  store<u32>(blob, 1);
  store<u32>(blob, keyLen, 4);
  store<u32>(blob, valueLen, 8);
  return <isize>blob;
}

/** Frees a blob from blob_new that was not put. */
export function blob_discard(blob: usize): void {
  releaseBlob(blob);
}

/** Writes of the last apply_payload call that were applied (read after a trap). */
let appliedWrites: u32 = 0;

/**
 * Applies a commit payload at `ptr` (docs/FORMAT.md "Commit payload": u32
 * count, then per write u8 kind (1 put, 2 delete), u32 key length, key, and
 * for a put u32 value length, value; little-endian), which the host has
 * checked, to the tree in order: one call per commit instead of one per
 * write. Each write stocks the node pools and allocates its blob before it
 * changes the tree, so a trap (out of memory) leaves the tree with the
 * writes before it applied and the failed one not; apply_progress tells how
 * many. Returns the number of writes.
 */
export function apply_payload(tree: usize, ptr: usize): u32 {
  const n = load<u32>(ptr);
  let at = ptr + 4;
  appliedWrites = 0;
  for (let i: u32 = 0; i < n; i++) {
    const kind = load<u8>(at);
    const keyLen = load<u32>(at, 1);
    const keyAt = at + 5;
    at = keyAt + <usize>keyLen;
    if (kind == 2) {
      delAt(tree, keyAt, keyLen);
    } else {
      const valueLen = load<u32>(at);
      const valueAt = at + 4;
      at = valueAt + <usize>valueLen;
      pool_fill(tree);
      const blob = mem_alloc(BLOB_HEADER + <usize>keyLen + <usize>valueLen);
      store<u32>(blob, 1);
      store<u32>(blob, keyLen, 4);
      store<u32>(blob, valueLen, 8);
      memory.copy(blob + BLOB_HEADER, keyAt, keyLen);
      memory.copy(blob + BLOB_HEADER + <usize>keyLen, valueAt, valueLen);
      put_blob(tree, blob);
    }
    appliedWrites = i + 1;
  }
  return n;
}

/** Writes the last apply_payload call applied (all of them unless it trapped). */
export function apply_progress(): u32 {
  return appliedWrites;
}

// ---- staged commits
//
// The engine logs a commit before it applies it, so applying must not run out
// of memory. commit_stage, called before the commit is logged, allocates all
// of it up front: a copy of the payload, every put's blob (the payload's value
// length field then holds the blob's address, its kind byte becomes 3), and
// pool stock for the worst case of its writes, counted as promised until
// commit_apply or commit_discard. Out of memory there refuses the commit
// before anything happened (stage_abort frees the partial staging).

/** Pool stock and index room promised to staged commits not yet applied. */
let promisedLeaves: i32 = 0;
let promisedInner: i32 = 0;
let promisedKeys: i32 = 0;
/** The block commit_stage is filling (for stage_abort after a trap). */
let staging: usize = 0;
/** Pool stock kept between commits, in writes' worth (more is freed after a commit). */
const POOL_KEEP_WRITES: i32 = 64;
/** Staged block header: [leaves i32][inner i32][puts i32][unused], then the payload. */
const STAGED_HEADER: usize = 16;

/**
 * Stages the commit payload at `ptr` (`len` bytes, already checked by the
 * host; docs/FORMAT.md "Commit payload") for a later commit_apply. Returns
 * the staged block. Traps when out of memory: call stage_abort then.
 */
export function commit_stage(tree: usize, ptr: usize, len: u32): usize {
  staging = 0;
  const block = mem_alloc(STAGED_HEADER + <usize>len);
  store<i32>(block, 0);
  store<i32>(block, 0, 4);
  store<i32>(block, 0, 8);
  memory.copy(block + STAGED_HEADER, ptr, len);
  staging = block;
  const n = load<u32>(block, STAGED_HEADER);
  let at = block + STAGED_HEADER + 4;
  let puts: i32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const kind = load<u8>(at);
    const keyLen = load<u32>(at, 1);
    const keyAt = at + 5;
    const next = keyAt + <usize>keyLen;
    if (kind == 1) {
      puts++;
      const valueLen = load<u32>(next);
      const blob = mem_alloc(BLOB_HEADER + <usize>keyLen + <usize>valueLen);
      store<u32>(blob, 1);
      store<u32>(blob, keyLen, 4);
      store<u32>(blob, valueLen, 8);
      memory.copy(blob + BLOB_HEADER, keyAt, keyLen);
      memory.copy(blob + BLOB_HEADER + <usize>keyLen, next + 4, valueLen);
      store<u32>(next, <u32>blob);
      store<u8>(at, 3);
      at = next + 4 + <usize>valueLen;
    } else {
      at = next;
    }
  }
  // Nodes: per write the worst case of pool_fill at one level more than the
  // tree has now; for big commits at most what copying every node of the tree
  // once and splitting each once, plus a split per 16 writes, can take.
  const h = store_height(tree) + 1;
  const k = <i32>n;
  const count = <i32>treeCount(tree);
  let leaves = 2 * k;
  let inner = k * (2 * h + 1);
  const treeLeaves = 2 * (count / LEAF_MIN + 1) + k / 16 + 2;
  const treeInner = 2 * (count / (LEAF_MIN * INNER_MIN) + h + 1) + (k / 16 + 2) * (h + 1);
  if (treeLeaves < leaves) leaves = treeLeaves;
  if (treeInner < inner) inner = treeInner;
  stockPools(promisedLeaves + leaves, promisedInner + inner);
  if (tree == liveTree && !indexOff) {
    indexReserve(treeCount(tree) + <u32>(promisedKeys + puts), <u32>puts);
  }
  promisedLeaves += leaves;
  promisedInner += inner;
  promisedKeys += puts;
  store<i32>(block, leaves);
  store<i32>(block, inner, 4);
  store<i32>(block, puts, 8);
  staging = 0;
  return block;
}

/** Frees what a commit_stage that trapped had allocated (the pools keep their stock). */
export function stage_abort(): void {
  if (staging == 0) return;
  releaseStaged(staging);
  staging = 0;
}

/** Frees a staged block and the blobs it still owns. */
function releaseStaged(block: usize): void {
  const n = load<u32>(block, STAGED_HEADER);
  let at = block + STAGED_HEADER + 4;
  for (let i: u32 = 0; i < n; i++) {
    const kind = load<u8>(at);
    const next = at + 5 + <usize>load<u32>(at, 1);
    if (kind == 3) {
      releaseBlob(<usize>load<u32>(next));
      at = next + 4 + <usize>load<u32>(<usize>load<u32>(next), 8);
    } else if (kind == 1) {
      at = next + 4 + <usize>load<u32>(next);
    } else {
      at = next;
    }
  }
  mem_free(block);
}

/**
 * Applies a staged commit to the tree in order and frees the block. Takes no
 * memory beyond what commit_stage set aside, so it does not trap for want
 * of memory; appliedWrites counts its progress all the same.
 */
export function commit_apply(tree: usize, block: usize): u32 {
  const n = load<u32>(block, STAGED_HEADER);
  let at = block + STAGED_HEADER + 4;
  appliedWrites = 0;
  for (let i: u32 = 0; i < n; i++) {
    const kind = load<u8>(at);
    const keyLen = load<u32>(at, 1);
    const keyAt = at + 5;
    at = keyAt + <usize>keyLen;
    if (kind == 3) {
      const blob = <usize>load<u32>(at);
      at += 4 + <usize>blobValueLen(blob);
      // Promised stock: the pools and the index room commit_stage reserved.
      stockPools(2, 2 * store_height(tree) + 1);
      put_blob(tree, blob);
    } else {
      delAt(tree, keyAt, keyLen);
    }
    appliedWrites = i + 1;
  }
  unpromise(block);
  mem_free(block);
  return n;
}

/** Drops a staged commit that will never be applied. */
export function commit_discard(block: usize): void {
  unpromise(block);
  releaseStaged(block);
}

/** Gives back a staged block's promised pool stock and trims the pools. */
function unpromise(block: usize): void {
  promisedLeaves -= load<i32>(block);
  promisedInner -= load<i32>(block, 4);
  promisedKeys -= load<i32>(block, 8);
  const keepLeaves = promisedLeaves + 2 * POOL_KEEP_WRITES;
  const keepInner = promisedInner + POOL_KEEP_WRITES * 9;
  while (leafPoolSize > keepLeaves) {
    const node = leafPool;
    leafPool = <usize>load<u32>(node);
    leafPoolSize--;
    mem_free(node);
  }
  while (innerPoolSize > keepInner) {
    const node = innerPool;
    innerPool = <usize>load<u32>(node);
    innerPoolSize--;
    mem_free(node);
  }
}

// Path from the root to the current leaf: nodes and the child index taken.
const pathNode: usize = memory.data(MAX_DEPTH * 4, 16);
const pathIndex: usize = memory.data(MAX_DEPTH * 4, 16);

@inline function pathNodeAt(d: i32): usize {
  return <usize>load<u32>(pathNode + (<usize>d << 2));
}
@inline function pathIndexAt(d: i32): i32 {
  return load<i32>(pathIndex + (<usize>d << 2));
}

/**
 * Walks from the root to the leaf for the search key, copying every shared
 * node on the way so the path is writable. Returns the depth of the leaf
 * (pathNode[depth] is the leaf).
 */
function descendForWrite(tree: usize): i32 {
  let node = unshared(treeRoot(tree));
  store<u32>(tree, <u32>node);
  let d = 0;
  while (kind(node) == KIND_INNER) {
    assert(d < MAX_DEPTH - 1, "tree too deep");
    const i = upperBound(node);
    store<u32>(pathNode + (<usize>d << 2), <u32>node);
    store<i32>(pathIndex + (<usize>d << 2), i);
    const child = childAt(node, i);
    const writable = unshared(child);
    if (writable != child) setChild(node, i, writable);
    node = writable;
    d++;
  }
  store<u32>(pathNode + (<usize>d << 2), <u32>node);
  store<i32>(pathIndex + (<usize>d << 2), -1);
  return d;
}

/**
 * Inserts or replaces the blob's key. Takes over the blob's reference.
 * Returns 1 when the key is new, 0 when it replaced a value.
 */
export function put_blob(tree: usize, blob: usize): i32 {
  const keyLen = blobKeyLen(blob);
  const valueLen = blobValueLen(blob);
  const entryBytes = <f64>keyLen + <f64>valueLen;
  if (tree == liveTree && !indexOff) {
    const h = hashKey(blobKey(blob), keyLen);
    // A value of the same size, held by the live tree alone: overwrite its
    // bytes and leave the tree and the index as they are (no descent). A
    // state cell, an event log's head or a counter is rewritten this way.
    if (rootHolders == 0 && indexActive()) {
      const old = indexGet(blobKey(blob), keyLen, h);
      if (old != 0 && rc(old) == 1 && blobValueLen(old) == valueLen) {
        memory.copy(blobKey(old) + <usize>keyLen, blobKey(blob) + <usize>keyLen, valueLen);
        releaseBlob(blob);
        inPlaceWrites++;
        return 0;
      }
    }
    // The index slot is set first: indexSet finds an old entry by its key,
    // which the old blob still holds until it is released below.
    indexSet(blob, h);
  }
  setKey(blobKey(blob), keyLen);
  if (treeRoot(tree) == 0) {
    const leaf = newNode(KIND_LEAF);
    fillSlot(slotAt(leaf, 0), blob);
    setCount(leaf, 1);
    store<u32>(tree, <u32>leaf);
    store<u32>(tree, 1, 4);
    store<f64>(tree, entryBytes, 8);
    return 1;
  }
  const depth = descendForWrite(tree);
  const leaf = pathNodeAt(depth);
  const n = count(leaf);
  const i = lowerBound(leaf);
  if (i < n && cmpSlot(slotAt(leaf, i)) == 0) {
    const slot = slotAt(leaf, i);
    const old = slotBlob(slot);
    store<f64>(tree, treeBytes(tree) - (<f64>blobKeyLen(old) + <f64>blobValueLen(old)) + entryBytes, 8);
    store<u32>(slot, <u32>blob, SLOT_BLOB);
    releaseBlob(old);
    return 0;
  }
  // Right after the leaf's previous insert: keys are arriving in ascending
  // order here (see splitUp). A hint of 0 (unknown) matches no slot.
  const sequential = i > 0 && lastInsert(leaf) == i;
  memory.copy(slotAt(leaf, i + 1), slotAt(leaf, i), <usize>(n - i) * SLOT);
  fillSlot(slotAt(leaf, i), blob);
  setCount(leaf, n + 1);
  setLastInsert(leaf, i + 1);
  store<u32>(tree, treeCount(tree) + 1, 4);
  store<f64>(tree, treeBytes(tree) + entryBytes, 8);
  if (n + 1 > LEAF_CAP) splitUp(tree, depth, sequential ? i + 1 : -1);
  return 1;
}

@inline function clampSplit(at: i32, lo: i32, hi: i32): i32 {
  return at < lo ? lo : at > hi ? hi : at;
}

/**
 * After a split at `h` (the first slot that moved right): the last-insert
 * hint follows the entry it names, or is dropped where that entry is gone.
 */
function splitHint(left: usize, right: usize, h: i32): void {
  const last = lastInsert(left);
  if (last > h) {
    setLastInsert(right, last - h);
    setLastInsert(left, 0);
  } else {
    setLastInsert(right, 0);
    if (last > count(left)) setLastInsert(left, 0);
  }
}

/**
 * Splits the over-full node at path depth `d` and carries the separator up,
 * splitting ancestors as they overflow in turn; grows a new root at the top.
 *
 * `at`: where to split (the first entry of the new right node), or -1 for
 * an even split. put_blob passes the slot after the new key when the insert
 * came right after the leaf's previous one: keys arriving in ascending order
 * there (event sequences, time-ordered trace ids and index entries, each
 * range growing in the middle of the tree). An even split would leave every
 * node such a range passes half full for good; splitting after the new key
 * leaves the keys after it (another range) in the new node, and the range
 * goes on filling the left one. The split point is clamped so that both
 * nodes keep LEAF_MIN / INNER_MIN entries: appending at the very end fills
 * nodes to 49 of 64. A parent uses the same rule for its own inserts (the
 * new separator), with its own last-insert hint. Random inserts rarely land
 * right after the previous one and split evenly, as before (an insertion-
 * point split there would leave nodes ~61% full instead of ~70%, in a
 * simulation). The hint is one byte in the node header; stale after a
 * delete or a merge, it can only choose a worse split point, never a wrong
 * tree.
 */
function splitUp(tree: usize, d: i32, at: i32): void {
  let node = pathNodeAt(d);
  while (true) {
    let right: usize;
    let sep: usize; // blob the new separator refers to (one reference owned)
    if (kind(node) == KIND_LEAF) {
      const n = count(node); // LEAF_CAP + 1
      const h = at < 0 ? n >>> 1 : clampSplit(at, LEAF_MIN, n - LEAF_MIN);
      right = newNode(KIND_LEAF);
      memory.copy(slotAt(right, 0), slotAt(node, h), <usize>(n - h) * SLOT);
      setCount(right, n - h);
      setCount(node, h);
      splitHint(node, right, h);
      sep = slotBlob(slotAt(right, 0));
      incref(sep);
    } else {
      const n = count(node); // INNER_CAP + 1 separators, n + 1 children
      // Separator h moves up; the right node gets the n - h - 1 after it.
      const h = at < 0 ? n >>> 1 : clampSplit(at, INNER_MIN, n - 1 - INNER_MIN);
      right = newNode(KIND_INNER);
      sep = slotBlob(slotAt(node, h)); // moves up: its reference goes with it
      memory.copy(slotAt(right, 0), slotAt(node, h + 1), <usize>(n - h - 1) * SLOT);
      memory.copy(right + INNER_CHILDREN, node + INNER_CHILDREN + (<usize>(h + 1) << 2), <usize>(n - h) << 2);
      setCount(right, n - h - 1);
      setCount(node, h);
      splitHint(node, right, h + 1);
    }
    if (d == 0) {
      const root = newNode(KIND_INNER);
      fillSlot(slotAt(root, 0), sep);
      setCount(root, 1);
      setChild(root, 0, node);
      setChild(root, 1, right);
      store<u32>(tree, <u32>root);
      return;
    }
    d--;
    const parent = pathNodeAt(d);
    const c = pathIndexAt(d); // node is child `c`; right becomes child c + 1
    const pn = count(parent);
    const sequential = c > 0 && lastInsert(parent) == c;
    memory.copy(slotAt(parent, c + 1), slotAt(parent, c), <usize>(pn - c) * SLOT);
    fillSlot(slotAt(parent, c), sep);
    const cbase = parent + INNER_CHILDREN;
    memory.copy(cbase + (<usize>(c + 2) << 2), cbase + (<usize>(c + 1) << 2), <usize>(pn - c) << 2);
    setChild(parent, c + 1, right);
    setCount(parent, pn + 1);
    setLastInsert(parent, c + 1);
    if (pn + 1 <= INNER_CAP) return;
    // Split after the new separator: it stays left, or moves up if last there.
    at = sequential ? c + 1 : -1;
    node = parent;
  }
}

/**
 * Deletes the key in the scratch buffer. Returns 1 when it was there, 0 when
 * not. Traps when the memory cannot hold the node copies a path shared with
 * a snapshot needs, before anything changed. With no snapshot sharing the
 * path a delete allocates nothing, so a full store can always shrink.
 */
export function del(tree: usize, keyLen: u32): i32 {
  return delAt(tree, scratch, keyLen);
}

/** Deletes the key at `ptr` (as {@link del}). */
function delAt(tree: usize, ptr: usize, keyLen: u32): i32 {
  const live = tree == liveTree && indexActive();
  const h = live ? hashKey(ptr, keyLen) : 0;
  if ((live ? indexGet(ptr, keyLen, h) : getAt(tree, ptr, keyLen)) == 0) return 0;
  setKey(ptr, keyLen); // stockForDelete walks the path of the search key
  stockForDelete(tree);
  if (live) indexRemove(ptr, keyLen, h);
  const depth = descendForWrite(tree);
  const leaf = pathNodeAt(depth);
  const n = count(leaf);
  const i = lowerBound(leaf);
  const slot = slotAt(leaf, i);
  const blob = slotBlob(slot);
  store<u32>(tree, treeCount(tree) - 1, 4);
  store<f64>(tree, treeBytes(tree) - (<f64>blobKeyLen(blob) + <f64>blobValueLen(blob)), 8);
  memory.copy(slot, slotAt(leaf, i + 1), <usize>(n - i - 1) * SLOT);
  setCount(leaf, n - 1);
  releaseBlob(blob);
  rebalance(tree, depth);
  // An empty tree holds no memory, unless staged commits are promised stock.
  if (treeRoot(tree) == 0 && promisedLeaves == 0 && promisedInner == 0 && promisedKeys == 0) {
    pool_drain();
    if (tree == liveTree) indexFree();
  }
  return 1;
}

/**
 * Stocks the pools with the copies a delete of the search key may make: every
 * shared node on its path, and each path node's neighbours (a rebalance may
 * copy one). Below a shared node everything counts as shared: copying it
 * adds a reference to each of its children.
 */
function stockForDelete(tree: usize): void {
  let leaves = 0;
  let inner = 0;
  let node = treeRoot(tree);
  let shared = rc(node) > 1;
  while (true) {
    if (shared || rc(node) > 1) {
      shared = true;
      if (kind(node) == KIND_LEAF) leaves++;
      else inner++;
    }
    if (kind(node) == KIND_LEAF) break;
    const i = upperBound(node);
    const n = count(node);
    const child = childAt(node, i);
    for (let s = i - 1; s <= i + 1; s += 2) {
      if (s < 0 || s > n) continue;
      const sib = childAt(node, s);
      if (shared || rc(sib) > 1) {
        if (kind(sib) == KIND_LEAF) leaves++;
        else inner++;
      }
    }
    node = child;
  }
  stockPools(leaves, inner);
}

/** Removes separator `i` and child `i + 1` from `parent` (their references are the caller's). */
function removeFromParent(parent: usize, i: i32): void {
  const pn = count(parent);
  memory.copy(slotAt(parent, i), slotAt(parent, i + 1), <usize>(pn - i - 1) * SLOT);
  const cbase = parent + INNER_CHILDREN;
  memory.copy(cbase + (<usize>(i + 1) << 2), cbase + (<usize>(i + 2) << 2), <usize>(pn - i - 1) << 2);
  setCount(parent, pn - 1);
}

/**
 * Merges `right` (child i + 1 of parent) into `left` (child i). Both are
 * unshared. Moves references; frees the right node's shell.
 */
function merge(parent: usize, i: i32, left: usize, right: usize): void {
  const ln = count(left);
  const rn = count(right);
  if (kind(left) == KIND_LEAF) {
    memory.copy(slotAt(left, ln), slotAt(right, 0), <usize>rn * SLOT);
    setCount(left, ln + rn);
    releaseBlob(slotBlob(slotAt(parent, i))); // the separator between them goes
  } else {
    // The separator comes down between the two halves, reference and all.
    memory.copy(slotAt(left, ln), slotAt(parent, i), SLOT);
    memory.copy(slotAt(left, ln + 1), slotAt(right, 0), <usize>rn * SLOT);
    memory.copy(
      left + INNER_CHILDREN + (<usize>(ln + 1) << 2),
      right + INNER_CHILDREN,
      <usize>(rn + 1) << 2,
    );
    setCount(left, ln + 1 + rn);
  }
  removeFromParent(parent, i);
  mem_free(right);
}

/** Moves one entry from `right` (child i + 1) to the end of `left` (child i). */
function borrowFromRight(parent: usize, i: i32, left: usize, right: usize): void {
  const ln = count(left);
  const rn = count(right);
  const psep = slotAt(parent, i);
  if (kind(left) == KIND_LEAF) {
    memory.copy(slotAt(left, ln), slotAt(right, 0), SLOT);
    memory.copy(slotAt(right, 0), slotAt(right, 1), <usize>(rn - 1) * SLOT);
    const sep = slotBlob(slotAt(right, 0));
    incref(sep);
    releaseBlob(slotBlob(psep));
    fillSlot(psep, sep);
  } else {
    memory.copy(slotAt(left, ln), psep, SLOT); // separator down
    setChild(left, ln + 1, childAt(right, 0));
    memory.copy(psep, slotAt(right, 0), SLOT); // right's first separator up
    memory.copy(slotAt(right, 0), slotAt(right, 1), <usize>(rn - 1) * SLOT);
    const cbase = right + INNER_CHILDREN;
    memory.copy(cbase, cbase + 4, <usize>rn << 2);
  }
  setCount(left, ln + 1);
  setCount(right, rn - 1);
}

/** Moves one entry from the end of `left` (child i) to the front of `right` (child i + 1). */
function borrowFromLeft(parent: usize, i: i32, left: usize, right: usize): void {
  const ln = count(left);
  const rn = count(right);
  const psep = slotAt(parent, i);
  memory.copy(slotAt(right, 1), slotAt(right, 0), <usize>rn * SLOT);
  if (kind(left) == KIND_LEAF) {
    memory.copy(slotAt(right, 0), slotAt(left, ln - 1), SLOT);
    const sep = slotBlob(slotAt(right, 0));
    incref(sep);
    releaseBlob(slotBlob(psep));
    fillSlot(psep, sep);
  } else {
    memory.copy(slotAt(right, 0), psep, SLOT); // separator down
    memory.copy(psep, slotAt(left, ln - 1), SLOT); // left's last separator up
    const cbase = right + INNER_CHILDREN;
    memory.copy(cbase + 4, cbase, <usize>(rn + 1) << 2);
    setChild(right, 0, childAt(left, ln));
  }
  setCount(left, ln - 1);
  setCount(right, rn + 1);
}

/** Restores minimum fill from path depth `d` upwards after a delete. */
function rebalance(tree: usize, d: i32): void {
  while (d > 0) {
    const node = pathNodeAt(d);
    const isLeaf = kind(node) == KIND_LEAF;
    const n = count(node);
    if (n >= (isLeaf ? LEAF_MIN : INNER_MIN)) return;
    const parent = pathNodeAt(d - 1);
    const at = pathIndexAt(d - 1);
    const cap = isLeaf ? LEAF_CAP : INNER_CAP;
    if (at > 0) {
      const left0 = childAt(parent, at - 1);
      const left = unshared(left0);
      if (left != left0) setChild(parent, at - 1, left);
      const fits = isLeaf ? count(left) + n <= cap : count(left) + n + 1 <= cap;
      if (fits) merge(parent, at - 1, left, node);
      else {
        borrowFromLeft(parent, at - 1, left, node);
        return;
      }
    } else {
      const right0 = childAt(parent, at + 1);
      const right = unshared(right0);
      if (right != right0) setChild(parent, at + 1, right);
      const fits = isLeaf ? count(right) + n <= cap : count(right) + n + 1 <= cap;
      if (fits) merge(parent, at, node, right);
      else {
        borrowFromRight(parent, at, node, right);
        return;
      }
    }
    d--;
  }
  // At the root: an inner root with one child hands over to it; an empty leaf root goes.
  const root = treeRoot(tree);
  if (kind(root) == KIND_INNER && count(root) == 0) {
    store<u32>(tree, <u32>childAt(root, 0)); // the child keeps the root's reference
    mem_free(root);
  } else if (kind(root) == KIND_LEAF && count(root) == 0) {
    store<u32>(tree, 0);
    mem_free(root);
  }
}

// ---- cursors
//
// A cursor pins the root it started from (one reference), so it reads a
// frozen tree whatever the writers do, and the blobs it hands out stay valid
// until it is closed.
//
//   Cursor [root u32][depth i32][reverse i32][endFlag i32][endLen u32][done i32]
//          [stack nodes u32 x MAX_DEPTH][stack index i32 x MAX_DEPTH][end key]

const C_ROOT: usize = 0;
const C_DEPTH: usize = 4;
const C_REVERSE: usize = 8;
const C_END_FLAG: usize = 12;
const C_END_LEN: usize = 16;
const C_DONE: usize = 20;
const C_NODES: usize = 24;
const C_INDEX: usize = C_NODES + <usize>MAX_DEPTH * 4;
const C_END_KEY: usize = C_INDEX + <usize>MAX_DEPTH * 4;

@inline function cNode(c: usize, d: i32): usize {
  return <usize>load<u32>(c + C_NODES + (<usize>d << 2));
}
@inline function cIndex(c: usize, d: i32): i32 {
  return load<i32>(c + C_INDEX + (<usize>d << 2));
}
@inline function setCIndex(c: usize, d: i32, i: i32): void {
  store<i32>(c + C_INDEX + (<usize>d << 2), i);
}
@inline function setCNode(c: usize, d: i32, node: usize): void {
  store<u32>(c + C_NODES + (<usize>d << 2), <u32>node);
}

/**
 * Opens a cursor over [lo, hi] of `tree`. The lo key is in the scratch
 * buffer, the hi key at scratch + MAX_KEY_BYTES; each bound is 0 (none),
 * 1 (inclusive) or 2 (exclusive). Returns the cursor. Traps when out of memory.
 */
export function cursor_open(
  tree: usize,
  loLen: u32,
  loFlag: i32,
  hiLen: u32,
  hiFlag: i32,
  reverse: i32,
): usize {
  const endLen = reverse ? loLen : hiLen;
  const c = mem_alloc(C_END_KEY + <usize>endLen);
  const root = treeRoot(tree);
  if (root != 0) incref(root);
  store<u32>(c + C_ROOT, <u32>root);
  rootHolders++;
  store<i32>(c + C_REVERSE, reverse);
  store<i32>(c + C_END_FLAG, reverse ? loFlag : hiFlag);
  store<u32>(c + C_END_LEN, endLen);
  memory.copy(c + C_END_KEY, reverse ? scratch : scratch + MAX_KEY_BYTES, endLen);
  store<i32>(c + C_DONE, root == 0 ? 1 : 0);
  if (root == 0) return c;
  // Descend to the first position: the first key >= lo (forward), or the
  // last key <= hi (reverse); exclusive bounds step past an equal key.
  const startFlag = reverse ? hiFlag : loFlag;
  if (startFlag != BOUND_NONE) setKey(reverse ? scratch + MAX_KEY_BYTES : scratch, reverse ? hiLen : loLen);
  let node = root;
  let d = 0;
  while (true) {
    assert(d < MAX_DEPTH, "tree too deep");
    setCNode(c, d, node);
    let i: i32;
    if (kind(node) == KIND_INNER) {
      if (startFlag == BOUND_NONE) i = reverse ? count(node) : 0;
      else i = upperBound(node);
      setCIndex(c, d, i);
      node = childAt(node, i);
      d++;
      continue;
    }
    if (startFlag == BOUND_NONE) i = reverse ? count(node) - 1 : 0;
    else if (!reverse) i = startFlag == BOUND_INCLUSIVE ? lowerBound(node) : upperBound(node);
    else i = (startFlag == BOUND_INCLUSIVE ? upperBound(node) : lowerBound(node)) - 1;
    setCIndex(c, d, i);
    break;
  }
  store<i32>(c + C_DEPTH, d);
  settle(c);
  return c;
}

/**
 * Moves the cursor's leaf position onto an existing slot: when the index ran
 * off either end of its leaf, climbs and descends to the neighbouring leaf.
 * Marks the cursor done when there is none.
 */
function settle(c: usize): void {
  const reverse = load<i32>(c + C_REVERSE) != 0;
  let d = load<i32>(c + C_DEPTH);
  while (true) {
    const leaf = cNode(c, d);
    const i = cIndex(c, d);
    if (i >= 0 && i < count(leaf)) return;
    // Climb to the nearest ancestor with a sibling in the walking direction.
    let up = d - 1;
    while (up >= 0) {
      const ci = cIndex(c, up) + (reverse ? -1 : 1);
      if (ci >= 0 && ci <= count(cNode(c, up))) {
        setCIndex(c, up, ci);
        break;
      }
      up--;
    }
    if (up < 0) {
      store<i32>(c + C_DONE, 1);
      return;
    }
    // Descend along the edge nearest to where we came from.
    let node = childAt(cNode(c, up), cIndex(c, up));
    let level = up + 1;
    while (kind(node) == KIND_INNER) {
      setCNode(c, level, node);
      setCIndex(c, level, reverse ? count(node) : 0);
      node = childAt(node, reverse ? count(node) : 0);
      level++;
    }
    setCNode(c, level, node);
    setCIndex(c, level, reverse ? count(node) - 1 : 0);
    d = level;
  }
}

/** True when the blob's key lies past the cursor's end bound. */
function pastEnd(c: usize, blob: usize): bool {
  const flag = load<i32>(c + C_END_FLAG);
  if (flag == BOUND_NONE) return false;
  const cmp = compareTail(
    blobKey(blob),
    blobKeyLen(blob),
    c + C_END_KEY,
    load<u32>(c + C_END_LEN),
    0,
  );
  if (load<i32>(c + C_REVERSE) != 0) return flag == BOUND_INCLUSIVE ? cmp < 0 : cmp <= 0;
  return flag == BOUND_INCLUSIVE ? cmp > 0 : cmp >= 0;
}

/**
 * Writes up to `max` (at most 256) blob pointers of the next entries into the
 * batch buffer and returns how many; 0 means the cursor is exhausted.
 */
export function cursor_next(c: usize, max: i32): i32 {
  if (max > BATCH_MAX) max = BATCH_MAX;
  if (load<i32>(c + C_DONE) != 0) return 0;
  const reverse = load<i32>(c + C_REVERSE) != 0;
  const d = load<i32>(c + C_DEPTH);
  let n = 0;
  while (n < max) {
    const leaf = cNode(c, d);
    let i = cIndex(c, d);
    const blob = slotBlob(slotAt(leaf, i));
    if (pastEnd(c, blob)) {
      store<i32>(c + C_DONE, 1);
      break;
    }
    store<u32>(batch + (<usize>n << 2), <u32>blob);
    n++;
    i += reverse ? -1 : 1;
    setCIndex(c, d, i);
    if (i < 0 || i >= count(leaf)) {
      settle(c);
      if (load<i32>(c + C_DONE) != 0) break;
      // settle keeps the leaf at the same depth: all leaves are at one depth.
    }
  }
  return n;
}

/** Closes a cursor and unpins its root. */
export function cursor_close(c: usize): void {
  releaseNode(<usize>load<u32>(c + C_ROOT));
  mem_free(c);
  rootHolders--;
}

// ---- invariants

/**
 * Checks the tree's structure: keys strictly ascending within and across
 * nodes and inside their separators' bounds, every leaf at one depth, counts
 * within capacity (and above minimum below the root), the key count and
 * byte total matching the record, every reference count positive.
 * Returns 0 when all hold, else a code naming the first broken rule.
 */
export function store_check(tree: usize): i32 {
  const root = treeRoot(tree);
  if (root == 0) {
    if (treeCount(tree) != 0 || treeBytes(tree) != 0) return 1;
    return tree == liveTree && !indexOff && indexCount() != 0 ? 17 : 0;
  }
  // Walk every leaf in order with a cursor-like stack.
  checkKeys = 0;
  checkBytes = 0;
  checkPrev = 0;
  checkLeafDepth = -1;
  checkLive = tree == liveTree && !indexOff;
  const r = checkNode(root, 0, 0, 0, true);
  if (r != 0) return r;
  if (checkKeys != treeCount(tree)) return 2;
  if (checkBytes != treeBytes(tree)) return 3;
  if (tree == liveTree && !indexOff && indexCount() != treeCount(tree)) return 17;
  return 0;
}

let checkKeys: u32 = 0;
let checkBytes: f64 = 0;
let checkPrev: usize = 0;
let checkLeafDepth: i32 = -1;
let checkLive: bool = false;

// Recursion is bounded by the tree height (<= MAX_DEPTH), checked on entry.
function checkNode(node: usize, depth: i32, lo: usize, hi: usize, isRoot: bool): i32 {
  if (depth >= MAX_DEPTH) return 4;
  if (rc(node) == 0) return 5;
  const n = count(node);
  const isLeaf = kind(node) == KIND_LEAF;
  if (!isLeaf && kind(node) != KIND_INNER) return 6;
  if (n > (isLeaf ? LEAF_CAP : INNER_CAP)) return 7;
  const min = isLeaf ? LEAF_MIN : INNER_MIN;
  if (!isRoot && n < min) return 8;
  if (isRoot && !isLeaf && n < 1) return 8;
  for (let i = 0; i < n; i++) {
    const slot = slotAt(node, i);
    const blob = slotBlob(slot);
    if (rc(blob) == 0) return 9;
    if (load<u32>(slot, SLOT_LEN) != blobKeyLen(blob)) return 10;
    // The inline head must match the blob's key.
    setKey(blobKey(blob), blobKeyLen(blob));
    if (kH0 != load<u64>(slot) || kH1 != load<u64>(slot, 8) || kH2 != load<u64>(slot, 16)) return 11;
    if (lo != 0 && keyCmp(lo, blob) > 0) return 12;
    if (hi != 0 && keyCmp(hi, blob) <= 0) return 13;
    if (i > 0 && keyCmp(slotBlob(slotAt(node, i - 1)), blob) >= 0) return 14;
  }
  if (isLeaf) {
    if (checkLeafDepth < 0) checkLeafDepth = depth;
    else if (checkLeafDepth != depth) return 15;
    if (n > 0 && checkPrev != 0 && keyCmp(checkPrev, slotBlob(slotAt(node, 0))) >= 0) return 16;
    for (let i = 0; i < n; i++) {
      const blob = slotBlob(slotAt(node, i));
      // The live tree's hash index finds every key at its blob.
      if (checkLive) {
        const p = blobKey(blob);
        const len = blobKeyLen(blob);
        if (!indexActive() || indexGet(p, len, hashKey(p, len)) != blob) return 18;
      }
      checkKeys++;
      checkBytes += <f64>blobKeyLen(blob) + <f64>blobValueLen(blob);
    }
    if (n > 0) checkPrev = slotBlob(slotAt(node, n - 1));
    return 0;
  }
  for (let i = 0; i <= n; i++) {
    const child = childAt(node, i);
    const clo = i == 0 ? lo : slotBlob(slotAt(node, i - 1));
    const chi = i == n ? hi : slotBlob(slotAt(node, i));
    const r = checkNode(child, depth + 1, clo, chi, false);
    if (r != 0) return r;
  }
  return 0;
}

function keyCmp(a: usize, b: usize): i32 {
  return compareTail(blobKey(a), blobKeyLen(a), blobKey(b), blobKeyLen(b), 0);
}
