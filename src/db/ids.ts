/**
 * Time-ordered ids: UUIDv7 (RFC 9562) with a 12-bit counter in `rand_a`, so
 * ids made in the same millisecond by one process still sort in creation
 * order.
 *
 * @module
 */

let lastMs = -1;
const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let poolAt = POOL_BYTES;
let counter = 0;
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * A new UUIDv7 string (lowercase, hyphenated).
 *
 * @param now The time to embed, ms since the epoch. Default `Date.now()`.
 * @returns The id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { uuidv7 } from "./ids.ts";
 *
 * const a = uuidv7(1_700_000_000_000);
 * const b = uuidv7(1_700_000_000_000);
 * assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
 * assert.ok(a < b);
 * ```
 */
export function uuidv7(now: number = Date.now()): string {
  let ms = Math.max(0, Math.floor(now));
  if (ms <= lastMs) {
    ms = lastMs; // the clock went back or stood still: keep order with the counter
    counter++;
    if (counter > 0xfff) {
      ms = ++lastMs; // 4096 ids in one millisecond: borrow the next one
      counter = 0;
    }
  } else {
    counter = 0;
  }
  lastMs = ms;
  const b = new Uint8Array(16);
  // Random bytes come from a pool refilled in bulk: one getRandomValues call
  // per 8 bytes was a tenth of recording a trace.
  if (poolAt + 8 > POOL_BYTES) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  for (let i = 8; i < 16; i++) b[i] = pool[poolAt++]!;
  const hi = Math.floor(ms / 2 ** 16);
  b[0] = (hi >>> 24) & 0xff;
  b[1] = (hi >>> 16) & 0xff;
  b[2] = (hi >>> 8) & 0xff;
  b[3] = hi & 0xff;
  b[4] = (ms >>> 8) & 0xff;
  b[5] = ms & 0xff;
  b[6] = 0x70 | (counter >>> 8);
  b[7] = counter & 0xff;
  b[8] = 0x80 | (b[8]! & 0x3f);
  let s = "";
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
    s += HEX[b[i]!];
  }
  return s;
}
