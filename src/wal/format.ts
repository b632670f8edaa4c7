/**
 * The write-ahead log's byte format: segment headers and record frames, as
 * specified in docs/FORMAT.md ("Write-ahead log"). Pure functions over
 * bytes; no I/O.
 *
 * @module
 */
import { crc32c, crc32cGap, Crc32cRanges } from "../core/crc32c.ts";

/** Bytes of a segment header. */
export const SEGMENT_HEADER_BYTES = 64;
/** Bytes of a record frame before its payload. */
export const FRAME_HEADER_BYTES = 24;
/** Frames start at multiples of this. */
export const FRAME_ALIGN = 8;
/** Largest payload of one record: one transaction's encoded writes. */
export const MAX_RECORD_PAYLOAD_BYTES: number = 64 * 1024 * 1024;
/** The on-disk format version this code writes and reads. */
export const WAL_FORMAT_VERSION = 1;
/** Magic bytes at the start of every segment: ASCII "inmemWAL". */
export const WAL_MAGIC: Uint8Array = new TextEncoder().encode("inmemWAL");
/** File name suffix of segments. */
export const SEGMENT_SUFFIX = ".wal";

/** What a segment header holds. */
export interface SegmentHeader {
  /** Version of the segment's first record. */
  firstVersion: number;
  /** Random value mixed into every record checksum of the segment. */
  salt: bigint;
  /** Creation time, ms since the epoch. */
  createdAtMs: number;
}

/**
 * The segment file name for a first version: 16 lowercase hex digits, so
 * name order is version order.
 *
 * @param firstVersion The version of the segment's first record.
 * @returns The file name, e.g. `0000000000000001.wal`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { segmentName } from "./format.ts";
 *
 * assert.equal(segmentName(255), "00000000000000ff.wal");
 * ```
 */
export function segmentName(firstVersion: number): string {
  return firstVersion.toString(16).padStart(16, "0") + SEGMENT_SUFFIX;
}

/**
 * The first version a segment file name encodes.
 *
 * @param name A file name.
 * @returns The version, or `undefined` when `name` is not a segment name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSegmentName } from "./format.ts";
 *
 * assert.equal(parseSegmentName("00000000000000ff.wal"), 255);
 * assert.equal(parseSegmentName("notes.txt"), undefined);
 * ```
 */
export function parseSegmentName(name: string): number | undefined {
  if (!/^[0-9a-f]{16}\.wal$/.test(name)) return undefined;
  const v = parseInt(name.slice(0, 16), 16);
  return Number.isSafeInteger(v) ? v : undefined;
}

/**
 * Encodes a segment header.
 *
 * @param header The fields.
 * @returns {@link SEGMENT_HEADER_BYTES} bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSegmentHeader, encodeSegmentHeader } from "./format.ts";
 *
 * const h = { firstVersion: 1, salt: 42n, createdAtMs: 0 };
 * assert.deepEqual(decodeSegmentHeader(encodeSegmentHeader(h)), h);
 * ```
 */
export function encodeSegmentHeader(header: SegmentHeader): Uint8Array {
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(WAL_MAGIC, 0);
  view.setUint32(8, WAL_FORMAT_VERSION, true);
  view.setUint32(12, 0, true);
  view.setBigUint64(16, BigInt(header.firstVersion), true);
  view.setBigUint64(24, header.salt, true);
  view.setBigUint64(32, BigInt(header.createdAtMs), true);
  view.setUint32(60, crc32c(bytes.subarray(0, 60)), true);
  return bytes;
}

/**
 * Decodes a segment header, checking magic, format version and checksum.
 *
 * @param bytes At least {@link SEGMENT_HEADER_BYTES} bytes.
 * @returns The fields, or `undefined` when the bytes are not a valid header.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSegmentHeader } from "./format.ts";
 *
 * assert.equal(decodeSegmentHeader(new Uint8Array(64)), undefined);
 * ```
 */
export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeader | undefined {
  if (bytes.length < SEGMENT_HEADER_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  for (let i = 0; i < WAL_MAGIC.length; i++) if (bytes[i] !== WAL_MAGIC[i]) return undefined;
  if (view.getUint32(60, true) !== crc32c(bytes.subarray(0, 60))) return undefined;
  if (view.getUint32(8, true) !== WAL_FORMAT_VERSION) return undefined;
  const firstVersion = Number(view.getBigUint64(16, true));
  if (!Number.isSafeInteger(firstVersion) || firstVersion < 1) return undefined;
  return {
    firstVersion,
    salt: view.getBigUint64(24, true),
    createdAtMs: Number(view.getBigUint64(32, true)),
  };
}

/**
 * Bytes a frame with an `payloadLength`-byte payload occupies, padding included.
 *
 * @param payloadLength The payload's length.
 * @returns The frame's size, a multiple of {@link FRAME_ALIGN}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { frameBytes } from "./format.ts";
 *
 * assert.equal(frameBytes(0), 24);
 * assert.equal(frameBytes(1), 32);
 * ```
 */
export function frameBytes(payloadLength: number): number {
  return (FRAME_HEADER_BYTES + payloadLength + FRAME_ALIGN - 1) & ~(FRAME_ALIGN - 1);
}

// The CRC32C of a segment's salt seeds every frame checksum of the segment;
// remember the last one so a replay computes it once per segment.
let lastSalt = -1n;
let lastSaltCrc = 0;

function saltCrc(salt: bigint): number {
  if (salt !== lastSalt) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, salt, true);
    lastSaltCrc = crc32c(b);
    lastSalt = salt;
  }
  return lastSaltCrc;
}

/**
 * The checksum of a frame whose bytes start at `at` in `buf`: salt ‖ bytes
 * 0..4 ‖ bytes 8..24+L, the checksum field (4..8) left out. `seed` is the
 * salt's CRC32C; `ranges`, when given, checksums `buf`.
 */
function frameChecksum(
  seed: number,
  buf: Uint8Array,
  at: number,
  payloadLength: number,
  ranges: Crc32cRanges | undefined,
): number {
  const end = at + FRAME_HEADER_BYTES + payloadLength;
  return ranges === undefined
    ? crc32cGap(buf, at, at + 4, at + 8, end, seed)
    : ranges.gap(at, at + 4, at + 8, end, seed);
}

/** Writes `v` (an integer in [0, 2^32)) little-endian at `at`. */
function putU32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v;
  buf[at + 1] = v >>> 8;
  buf[at + 2] = v >>> 16;
  buf[at + 3] = v >>> 24;
}

/** Writes `v` (a safe integer ≥ 0) little-endian at `at`. */
function putU64(buf: Uint8Array, at: number, v: number): void {
  putU32(buf, at, v >>> 0);
  putU32(buf, at + 4, Math.floor(v / 0x1_0000_0000));
}

/** The little-endian u32 at `at` in `buf` (in bounds). */
function u32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}

/**
 * The little-endian u64 at `at` in `buf` as a number: exact up to 2^53 − 1,
 * and above that some unsafe integer (as `Number` of the `bigint` would be).
 */
function u64(buf: Uint8Array, at: number): number {
  return u32(buf, at + 4) * 0x100000000 + u32(buf, at);
}

/**
 * Writes one record frame into `out` at `at` (zero padding included).
 *
 * @param out Destination; must have room for {@link frameBytes} of the payload.
 * @param at Offset in `out`.
 * @param salt The segment's salt.
 * @param version The record's commit version.
 * @param synced The highest version known durable when the record is written.
 * @param payload The record's payload.
 * @returns The offset just past the frame.
 * @throws {RangeError} If the payload is over {@link MAX_RECORD_PAYLOAD_BYTES}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFrame, encodeFrame, frameBytes } from "./format.ts";
 *
 * const payload = new Uint8Array([1, 2, 3]);
 * const out = new Uint8Array(frameBytes(payload.length));
 * encodeFrame(out, 0, 7n, 5, 4, payload);
 * const frame = decodeFrame(out, 0, 7n, 5);
 * assert.ok(frame.ok);
 * assert.deepEqual(frame.ok && [...frame.payload], [1, 2, 3]);
 * ```
 */
export function encodeFrame(
  out: Uint8Array,
  at: number,
  salt: bigint,
  version: number,
  synced: number,
  payload: Uint8Array,
): number {
  if (payload.length > MAX_RECORD_PAYLOAD_BYTES) {
    throw new RangeError(
      `Cannot write a WAL record: payload is ${payload.length} bytes, over MAX_RECORD_PAYLOAD_BYTES (${MAX_RECORD_PAYLOAD_BYTES})`,
    );
  }
  const end = at + frameBytes(payload.length);
  // Little-endian fields written byte by byte: no DataView or BigInt per frame.
  putU32(out, at, payload.length);
  putU64(out, at + 8, version);
  putU64(out, at + 16, synced);
  out.set(payload, at + FRAME_HEADER_BYTES);
  out.fill(0, at + FRAME_HEADER_BYTES + payload.length, end);
  putU32(out, at + 4, frameChecksum(saltCrc(salt), out, at, payload.length, undefined));
  return end;
}

/** A frame that decoded. `payload` is a view into the buffer read from. */
export interface GoodFrame {
  ok: true;
  version: number;
  synced: number;
  payload: Uint8Array;
  /** Offset just past the frame (padding included). */
  end: number;
}

/** Why a frame did not decode. */
export interface BadFrame {
  ok: false;
  reason: "truncated" | "length" | "checksum" | "version";
}

/**
 * Decodes the frame at `at`, expecting commit version `expected` (pass
 * `undefined` to accept any version, as the search past damage does).
 *
 * @param buf Bytes of the segment (or a part of it starting at a frame).
 * @param at Offset of the frame in `buf`.
 * @param salt The segment's salt.
 * @param expected The version the frame must carry, or `undefined`.
 * @returns The frame, or why it is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFrame } from "./format.ts";
 *
 * assert.deepEqual(decodeFrame(new Uint8Array(64), 0, 1n, 1), { ok: false, reason: "checksum" });
 * ```
 */
export function decodeFrame(
  buf: Uint8Array,
  at: number,
  salt: bigint,
  expected: number | undefined,
): GoodFrame | BadFrame {
  return decode(buf, at, saltCrc(salt), expected, undefined);
}

/**
 * Decodes many frames of one buffer, as {@link decodeFrame} does, with
 * fewer copies into the CRC32C core (see {@link Crc32cRanges}): for reading
 * a whole stretch of a segment. The buffer must not change while in use.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeFrame, FrameDecoder, frameBytes } from "./format.ts";
 *
 * const out = new Uint8Array(2 * frameBytes(1));
 * const second = encodeFrame(out, 0, 7n, 1, 0, new Uint8Array([1]));
 * encodeFrame(out, second, 7n, 2, 1, new Uint8Array([2]));
 * const frames = new FrameDecoder(out, 7n);
 * const first = frames.decode(0, 1);
 * assert.ok(first.ok);
 * assert.ok(first.ok && frames.decode(first.end, 2).ok);
 * ```
 */
export class FrameDecoder {
  readonly #buf: Uint8Array;
  readonly #seed: number;
  readonly #ranges: Crc32cRanges;

  /**
   * @param buf Bytes of the segment (or a part of it starting at a frame);
   *   they must not change while this decoder is used.
   * @param salt The segment's salt.
   */
  constructor(buf: Uint8Array, salt: bigint) {
    this.#buf = buf;
    this.#seed = saltCrc(salt);
    this.#ranges = new Crc32cRanges(buf);
  }

  /**
   * Decodes the frame at `at`: the same result as {@link decodeFrame}.
   *
   * @param at Offset of the frame in the buffer.
   * @param expected The version the frame must carry, or `undefined`.
   * @returns The frame, or why it is not one.
   */
  decode(at: number, expected: number | undefined): GoodFrame | BadFrame {
    return decode(this.#buf, at, this.#seed, expected, this.#ranges);
  }
}

function decode(
  buf: Uint8Array,
  at: number,
  seed: number,
  expected: number | undefined,
  ranges: Crc32cRanges | undefined,
): GoodFrame | BadFrame {
  if (at + FRAME_HEADER_BYTES > buf.length) return { ok: false, reason: "truncated" };
  const length = u32(buf, at);
  if (length > MAX_RECORD_PAYLOAD_BYTES) return { ok: false, reason: "length" };
  if (at + FRAME_HEADER_BYTES + length > buf.length) return { ok: false, reason: "truncated" };
  if (u32(buf, at + 4) !== frameChecksum(seed, buf, at, length, ranges)) {
    return { ok: false, reason: "checksum" };
  }
  const version = u64(buf, at + 8);
  const synced = u64(buf, at + 16);
  if (expected !== undefined && version !== expected) return { ok: false, reason: "version" };
  if (!Number.isSafeInteger(version) || version < 1 || !Number.isSafeInteger(synced)) {
    return { ok: false, reason: "version" };
  }
  const start = at + FRAME_HEADER_BYTES;
  // Padding is zero by definition: a flipped padding byte is damage too, so
  // that every byte of a frame is checked.
  const end = at + frameBytes(length);
  for (let i = start + length; i < end && i < buf.length; i++) {
    if (buf[i] !== 0) return { ok: false, reason: "checksum" };
  }
  return {
    ok: true,
    version,
    synced,
    payload: buf.subarray(start, start + length),
    end,
  };
}
