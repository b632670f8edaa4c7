/**
 * The commit payload: how one transaction's writes are laid out inside a WAL
 * record (docs/FORMAT.md "Commit payload"), and replay of it into a store.
 *
 * @module
 */
import { MAX_KEY_BYTES, MAX_VALUE_BYTES, type OrderedStore } from "../core/store.ts";
import { slabAlloc } from "../_slab.ts";

/** One write of a transaction: a value, or `null` for a delete. */
export interface Write {
  key: Uint8Array;
  value: Uint8Array | null;
}

/**
 * Encodes a write set as a WAL payload: u32 count, then per write u8 kind
 * (1 put, 2 delete), u32 key length, key, and for a put u32 value length,
 * value (little-endian; docs/FORMAT.md "Commit payload").
 *
 * @param writes The writes, in any order.
 * @returns The payload.
 */
export function encodeWrites(writes: readonly Write[]): Uint8Array {
  let size = 4;
  for (const w of writes) size += 5 + w.key.length + (w.value === null ? 0 : 4 + w.value.length);
  const out = slabAlloc(size); // a small commit's payload allocates no ArrayBuffer of its own
  putU32(out, 0, writes.length);
  let at = 4;
  for (const w of writes) {
    out[at] = w.value === null ? 2 : 1;
    putU32(out, at + 1, w.key.length);
    out.set(w.key, at + 5);
    at += 5 + w.key.length;
    if (w.value !== null) {
      putU32(out, at, w.value.length);
      out.set(w.value, at + 4);
      at += 4 + w.value.length;
    }
  }
  return out;
}

function putU32(p: Uint8Array, at: number, v: number): void {
  p[at] = v & 0xff;
  p[at + 1] = (v >>> 8) & 0xff;
  p[at + 2] = (v >>> 16) & 0xff;
  p[at + 3] = v >>> 24;
}

function malformed(): never {
  throw new RangeError("Cannot decode a commit payload: it is malformed");
}

/** The little-endian u32 at `at` in `p` (in bounds). */
function u32(p: Uint8Array, at: number): number {
  return (p[at]! | (p[at + 1]! << 8) | (p[at + 2]! << 16) | (p[at + 3]! << 24)) >>> 0;
}

/**
 * Checks that `payload` is a well-formed {@link encodeWrites} payload, with
 * the same rules as {@link decodeWrites}, without building anything.
 *
 * @throws {RangeError} If it is malformed.
 */
function checkPayload(payload: Uint8Array): void {
  const n = payload.length;
  if (n < 4) malformed();
  const count = u32(payload, 0);
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 5 > n) malformed();
    const kind = payload[at]!;
    const keyLen = u32(payload, at + 1);
    if (keyLen > MAX_KEY_BYTES || at + 5 + keyLen > n) malformed();
    at += 5 + keyLen;
    if (kind === 1) {
      if (at + 4 > n) malformed();
      const len = u32(payload, at);
      if (len > MAX_VALUE_BYTES || at + 4 + len > n) malformed();
      at += 4 + len;
    } else if (kind !== 2) malformed();
  }
  if (at !== n) malformed();
}

/**
 * Decodes a payload from {@link encodeWrites}.
 *
 * @param payload The bytes.
 * @returns The writes (views into `payload`).
 * @throws {RangeError} If the payload is malformed.
 */
export function decodeWrites(payload: Uint8Array): Write[] {
  if (payload.length === 0) return []; // the WAL's no-op seal
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  if (payload.length < 4) malformed();
  const count = view.getUint32(0, true);
  const writes: Write[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 5 > payload.length) malformed();
    const kind = view.getUint8(at);
    const keyLen = view.getUint32(at + 1, true);
    if (keyLen > MAX_KEY_BYTES || at + 5 + keyLen > payload.length) malformed();
    const key = payload.subarray(at + 5, at + 5 + keyLen);
    at += 5 + keyLen;
    if (kind === 2) {
      writes.push({ key, value: null });
    } else if (kind === 1) {
      if (at + 4 > payload.length) malformed();
      const len = view.getUint32(at, true);
      if (len > MAX_VALUE_BYTES || at + 4 + len > payload.length) malformed();
      writes.push({ key, value: payload.subarray(at + 4, at + 4 + len) });
      at += 4 + len;
    } else malformed();
  }
  if (at !== payload.length) malformed();
  return writes;
}

/**
 * Applies a commit payload ({@link encodeWrites}) to a store: recovery's
 * replay step. The payload is checked whole first, so a malformed one
 * changes nothing; then its writes go to the store in order, in one call
 * into the core (no {@link Write} objects are built).
 *
 * @param store The store.
 * @param payload The WAL payload (an empty one, the WAL's seal, does nothing).
 * @throws {RangeError} If the payload is malformed.
 */
export function applyPayload(store: OrderedStore, payload: Uint8Array): void {
  if (payload.length === 0) return; // the WAL's no-op seal
  checkPayload(payload);
  store.applyPayload(payload);
}
