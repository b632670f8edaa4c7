/**
 * Big-endian 64-bit unsigned integers in byte arrays, for safe-integer
 * values (record headers, index keys). One copy for every module.
 *
 * @module
 */

const TWO_32 = 4294967296;

/**
 * Writes `n` (a safe integer ≥ 0) as 8 big-endian bytes at `at`.
 *
 * @param b The bytes.
 * @param at Offset.
 * @param n The value.
 */
export function writeU64(b: Uint8Array, at: number, n: number): void {
  const hi = Math.floor(n / TWO_32);
  const lo = n >>> 0;
  b[at] = hi >>> 24;
  b[at + 1] = (hi >>> 16) & 0xff;
  b[at + 2] = (hi >>> 8) & 0xff;
  b[at + 3] = hi & 0xff;
  b[at + 4] = lo >>> 24;
  b[at + 5] = (lo >>> 16) & 0xff;
  b[at + 6] = (lo >>> 8) & 0xff;
  b[at + 7] = lo & 0xff;
}

/**
 * Reads 8 big-endian bytes at `at` as a number (exact up to 2^53).
 *
 * @param b The bytes (at least `at + 8` long).
 * @param at Offset.
 * @returns The value.
 */
export function readU64(b: Uint8Array, at: number): number {
  const hi = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  const lo = ((b[at + 4]! << 24) | (b[at + 5]! << 16) | (b[at + 6]! << 8) | b[at + 7]!) >>> 0;
  return hi * TWO_32 + lo;
}
