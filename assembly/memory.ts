// Raw memory for the core and for the JavaScript side.
//
// The core is compiled with the `minimal` runtime (see tools/build_wasm.ts):
// the TLSF allocator and no automatic garbage collector. Everything that lives
// long is allocated through `mem_alloc` and released through `mem_free`
// explicitly, so the collector never has work, memory is reclaimed the moment
// it is freed, and `used_bytes` counts every live byte the core holds.
//
// Out of memory: when TLSF cannot grow the memory it traps (`unreachable`)
// before it changes any of its own state. Every operation of the core
// allocates all it may need before it changes anything (see the node pools in
// store.ts), so such a trap leaves every structure intact. `mem_alloc` raises
// a flag around the allocator call; the host, catching the trap, reads and
// clears it with `alloc_failed` to tell "out of memory" from a bug.

// TLSF keeps a 4-byte header before every block: its size, low 2 bits flags.
const BLOCK_HEADER: usize = 4;

/** Bytes in live blocks handed out by mem_alloc (headers included). */
let usedBytes: u64 = 0;
/** 1 while the allocator runs: still 1 after a trap means it ran out. */
let allocating: i32 = 0;

@inline function blockSize(ptr: usize): usize {
  return <usize>(load<u32>(ptr - BLOCK_HEADER) & ~3) + BLOCK_HEADER;
}

/** Allocates `size` bytes (16-byte aligned) and counts them; traps when out of memory. */
export function mem_alloc(size: usize): usize {
  allocating = 1;
  const ptr = heap.alloc(size);
  allocating = 0;
  usedBytes += <u64>blockSize(ptr);
  return ptr;
}

/** Frees a block from `mem_alloc`. */
export function mem_free(ptr: usize): void {
  usedBytes -= <u64>blockSize(ptr);
  heap.free(ptr);
}

/** Returns 1 (and clears it) when the last trap came from an allocation that ran out of memory. */
export function alloc_failed(): i32 {
  const failed = allocating;
  allocating = 0;
  return failed;
}

/** Allocates `size` bytes for the host; traps when out of memory. */
export function alloc(size: usize): usize {
  return mem_alloc(size);
}

/** Frees a block returned by `alloc`. */
export function free(ptr: usize): void {
  mem_free(ptr);
}

/** Bytes in live blocks (allocator headers included). */
export function used_bytes(): f64 {
  return <f64>usedBytes;
}

/** Bytes of linear memory reserved (pages × 64 KiB). */
export function memory_bytes(): f64 {
  return <f64>memory.size() * 65536.0;
}
