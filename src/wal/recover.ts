/**
 * WAL recovery: reads every segment in order, hands each record to the
 * caller, and decides — by the rules in docs/FORMAT.md ("Recovery rules") —
 * whether the first frame that does not decode is a torn tail (cut it off)
 * or damage to data that had been durable (report it, never drop it).
 *
 * Recovery is idempotent: its only changes are truncating a torn tail,
 * removing a segment whose creation never completed, and (in salvage mode)
 * moving damaged segments aside — each safe to repeat if recovery itself is
 * interrupted.
 *
 * A segment is read in windows of {@link READ_WINDOW_BYTES} (a larger frame
 * gets a window of its own), and its frames are checked and handed over
 * straight from the window; before a frame that does not decode is judged,
 * the rest of its segment is read, as the rules need.
 *
 * @module
 */
import { CorruptionError, StorageError } from "../errors.ts";
import { type FileAdapter, type FileHandle, FsError } from "../fs/types.ts";
import {
  type BadFrame,
  decodeSegmentHeader,
  FRAME_ALIGN,
  FRAME_HEADER_BYTES,
  frameBytes,
  FrameDecoder,
  MAX_RECORD_PAYLOAD_BYTES,
  parseSegmentName,
  SEGMENT_HEADER_BYTES,
} from "./format.ts";

/**
 * Bytes of a segment read at a time. Frames are decoded straight out of this
 * window; a frame larger than it gets a window of its own size.
 */
export const READ_WINDOW_BYTES: number = 1024 * 1024;

/** Subdirectory of the database directory that holds the segments. */
export const WAL_DIR = "wal";
/** Where salvage mode moves damaged segments, inside {@link WAL_DIR}. */
export const DAMAGED_DIR = "damaged";

/** Where appending goes on after recovery. */
export interface WalTail {
  /** Path of the last segment. */
  path: string;
  /** Its first version. */
  firstVersion: number;
  /** Its salt. */
  salt: bigint;
  /** Offset just past its last good record: where the next record goes. */
  size: number;
}

/** Options of {@link recoverWal}. */
export interface RecoverOptions {
  /** Records at or below this version are read but not handed over (they are in a checkpoint). */
  afterVersion?: number;
  /**
   * On damage to durable data, keep the records before it, move the damaged
   * segment (a copy) and every later one to `wal/damaged/`, and go on,
   * instead of failing. Default false.
   */
  salvage?: boolean;
}

/** What recovery found and did. */
export interface RecoveryReport {
  /** Segments read. */
  segments: number;
  /** Records read (including those at or below `afterVersion`). */
  records: number;
  /** Records handed to the caller. */
  replayed: number;
  /** Where a torn tail was cut, and how many bytes went. */
  tornTail?: { path: string; offset: number; bytes: number };
  /** A segment whose creation never completed, removed. */
  removedSegment?: string;
  /** Salvage mode: the damage found and the files moved aside. */
  salvaged?: { path: string; offset: number; movedAside: string[] };
}

/** The result of {@link recoverWal}. */
export interface Recovered {
  /** The last segment and where to append, or `undefined` when there is none. */
  tail: WalTail | undefined;
  /** The version of the last good record (or `afterVersion` when there is none). */
  lastVersion: number;
  /** What was found and done. */
  report: RecoveryReport;
}

/** Reads a whole file. */
async function readAll(fs: FileAdapter, path: string): Promise<Uint8Array> {
  const file = await fs.open(path, { readOnly: true });
  try {
    const size = await file.size();
    const bytes = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const n = await file.read(bytes.subarray(done), done);
      if (n === 0) break;
      done += n;
    }
    return done === size ? bytes : bytes.subarray(0, done);
  } finally {
    await file.close();
  }
}

/**
 * A window onto a file being read front to back: `bytes` holds the file's
 * bytes from offset `base` on (to the window's end or the end of the file).
 * One buffer serves every segment of a recovery.
 */
class ReadWindow {
  #buffer: Uint8Array = new Uint8Array(READ_WINDOW_BYTES);
  #file: FileHandle | undefined;
  /** File offset of `bytes[0]`. */
  base = 0;
  /** The file's bytes from `base` on, as far as they have been read. */
  bytes: Uint8Array = this.#buffer.subarray(0, 0);
  /** The file's size (smaller than first reported if reads end early). */
  size = 0;

  /** Starts on `file`, `size` bytes long; nothing is read yet. */
  reset(file: FileHandle, size: number): void {
    this.#file = file;
    this.size = size;
    this.base = 0;
    this.bytes = this.#buffer.subarray(0, 0);
  }

  /** True when `bytes` reaches the end of the file. */
  get atEnd(): boolean {
    return this.base + this.bytes.length >= this.size;
  }

  /**
   * Moves the window to start at file offset `at` (≥ `base`) and reads until
   * it holds at least `n` bytes, or everything to the end of the file; it
   * reads as much as fits, so the next frames need no read.
   */
  async load(at: number, n: number): Promise<void> {
    const file = this.#file!;
    const from = Math.min(at - this.base, this.bytes.length);
    let done = this.bytes.length - from;
    let buffer = this.#buffer;
    if (n > buffer.length) {
      buffer = new Uint8Array(n);
      // A window grown for a large frame is kept, up to a bound.
      if (n <= 4 * READ_WINDOW_BYTES) this.#buffer = buffer;
    }
    if (this.bytes.buffer === buffer.buffer) buffer.copyWithin(0, from, from + done);
    else buffer.set(this.bytes.subarray(from), 0);
    const want = Math.min(buffer.length, this.size - at);
    while (done < want) {
      const got = await file.read(buffer.subarray(done, want), at + done);
      if (got === 0) {
        this.size = at + done; // the file ends earlier than its size said
        break;
      }
      done += got;
    }
    this.base = at;
    this.bytes = buffer.subarray(0, done);
  }
}

/** The little-endian u32 at `at` in `buf` (in bounds). */
function u32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}

/**
 * True when some frame at an aligned offset at or after `from` decodes and
 * claims that version `version` was durable: proof that damage before it is
 * in data that had been synced.
 */
function laterProof(bytes: Uint8Array, from: number, salt: bigint, version: number): boolean {
  const frames = new FrameDecoder(bytes, salt);
  for (let at = from; at + FRAME_HEADER_BYTES <= bytes.length; at += FRAME_ALIGN) {
    const f = frames.decode(at, undefined);
    if (f.ok && f.synced >= version) return true;
  }
  return false;
}

/**
 * Recovers the WAL in `dir`/wal: calls `onRecord` for every record after
 * `afterVersion`, in version order, then cuts a torn tail.
 *
 * @param fs The file system.
 * @param dir The database directory.
 * @param onRecord Receives each record's version and payload (a view, valid
 *   during the call).
 * @param options `afterVersion` and `salvage`.
 * @returns The tail to append at, the last version and a report.
 * @throws {CorruptionError} On damage to data that had been durable, naming
 *   the file and offset (unless `salvage`).
 * @throws {StorageError} If the file system fails.
 *
 * @example Recover an empty directory
 * ```ts
 * import assert from "node:assert/strict";
 * import { recoverWal } from "./recover.ts";
 * import { SimFS } from "../fs/sim.ts";
 *
 * const { tail, lastVersion } = await recoverWal(new SimFS(), "db", () => {});
 * assert.equal(tail, undefined);
 * assert.equal(lastVersion, 0);
 * ```
 */
export async function recoverWal(
  fs: FileAdapter,
  dir: string,
  onRecord: (version: number, payload: Uint8Array) => void,
  options: RecoverOptions = {},
): Promise<Recovered> {
  try {
    return await recover(fs, dir, onRecord, options);
  } catch (err) {
    if (err instanceof FsError) {
      throw new StorageError(`Cannot recover the WAL in ${dir}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

async function recover(
  fs: FileAdapter,
  dir: string,
  onRecord: (version: number, payload: Uint8Array) => void,
  options: RecoverOptions,
): Promise<Recovered> {
  const afterVersion = options.afterVersion ?? 0;
  const walDir = `${dir}/${WAL_DIR}`;
  await fs.mkdir(walDir);
  const names = (await fs.list(walDir))
    .map((name) => ({ name, first: parseSegmentName(name) }))
    .filter((s): s is { name: string; first: number } => s.first !== undefined)
    .sort((a, b) => a.first - b.first);
  const report: RecoveryReport = { segments: 0, records: 0, replayed: 0 };
  let expected: number | undefined;
  let synced = 0; // W: the highest version some record says was durable
  let tail: WalTail | undefined;

  const damage = async (index: number, offset: number, why: string): Promise<Recovered> => {
    const seg = names[index]!;
    const path = `${walDir}/${seg.name}`;
    if (options.salvage !== true) {
      throw new CorruptionError(
        `Cannot recover the WAL: ${why} in ${path} at offset ${offset}, in data that had been durable`,
        { where: `${path}:${offset}` },
      );
    }
    const moved = await setAside(fs, walDir, names.map((s) => s.name), index, offset);
    report.salvaged = { path, offset, movedAside: moved };
    const lastVersion = expected === undefined ? afterVersion : expected - 1;
    return { tail, lastVersion, report };
  };

  const reader = new ReadWindow();
  for (let i = 0; i < names.length; i++) {
    const seg = names[i]!;
    const path = `${walDir}/${seg.name}`;
    const isLast = i === names.length - 1;
    // The segment is read with the file open; what was found is acted on
    // (remove, truncate, move aside) after it is closed.
    let headerDamage: string | undefined;
    let unreadableHeader = false;
    let scan: SegmentScan | undefined;
    const file = await fs.open(path, { readOnly: true });
    try {
      reader.reset(file, await file.size());
      await reader.load(0, SEGMENT_HEADER_BYTES);
      const header = decodeSegmentHeader(reader.bytes);
      if (header === undefined || header.firstVersion !== seg.first) {
        unreadableHeader = true;
        headerDamage = "the segment header does not decode";
      } else if (expected !== undefined && header.firstVersion !== expected) {
        headerDamage = `the segment starts at version ${header.firstVersion}, not ${expected}`;
      } else if (expected === undefined && header.firstVersion > afterVersion + 1) {
        headerDamage = `records ${afterVersion + 1}..${
          header.firstVersion - 1
        } are missing before the first segment`;
      } else {
        expected = header.firstVersion;
        report.segments++;
        tail = {
          path,
          firstVersion: header.firstVersion,
          salt: header.salt,
          size: SEGMENT_HEADER_BYTES,
        };
        scan = await scanSegment(
          reader,
          header.salt,
          expected,
          synced,
          isLast,
          afterVersion,
          onRecord,
        );
        expected = scan.next;
        synced = scan.synced;
        report.records += scan.records;
        report.replayed += scan.replayed;
        tail.size = scan.at;
      }
    } finally {
      await file.close();
    }
    if (headerDamage !== undefined) {
      // A segment's header is synced before any record goes into it, so a
      // bad header with nothing after it is a creation cut short by a crash.
      if (unreadableHeader && isLast && reader.size <= SEGMENT_HEADER_BYTES) {
        await fs.remove(path);
        await fs.syncDir(walDir);
        report.removedSegment = path;
        break;
      }
      return await damage(i, 0, headerDamage);
    }
    if (scan?.reason !== undefined) {
      const { at, reason } = scan;
      if (scan.durable) {
        return await damage(i, at, `record ${expected} does not decode (${reason})`);
      }
      const writable = await fs.open(path);
      try {
        await writable.truncate(at);
        await writable.sync();
      } finally {
        await writable.close();
      }
      report.tornTail = { path, offset: at, bytes: reader.size - at };
      break;
    }
  }
  const lastVersion = expected === undefined ? afterVersion : Math.max(afterVersion, expected - 1);
  return { tail, lastVersion, report };
}

/** What {@link scanSegment} found in one segment. */
interface SegmentScan {
  /** Offset of the next frame to read; in the end, just past the last good record. */
  at: number;
  /** The version the next record must carry. */
  next: number;
  /** The highest `synced` seen so far (W), this segment included. */
  synced: number;
  /** Records read, and of those handed to the caller. */
  records: number;
  replayed: number;
  /** Why the frame at `at` did not decode, if one did not. */
  reason: BadFrame["reason"] | undefined;
  /** With `reason`: whether that frame lies in data that had been durable. */
  durable: boolean;
}

/**
 * Reads the records of the segment in `reader` (its header already checked)
 * in order, handing those after `afterVersion` to `onRecord`, up to its end
 * or the first frame that does not decode.
 */
async function scanSegment(
  reader: ReadWindow,
  salt: bigint,
  first: number,
  syncedBefore: number,
  isLast: boolean,
  afterVersion: number,
  onRecord: (version: number, payload: Uint8Array) => void,
): Promise<SegmentScan> {
  const scan: SegmentScan = {
    at: SEGMENT_HEADER_BYTES,
    next: first,
    synced: syncedBefore,
    records: 0,
    replayed: 0,
    reason: undefined,
    durable: false,
  };
  for (;;) {
    const frames = new FrameDecoder(reader.bytes, salt);
    const done = scanWindow(scan, reader, frames, afterVersion, onRecord);
    if (done) break;
    // The frame at `at` is not wholly in the window: read on from it, at
    // least its header, then as much as its length says.
    const local = scan.at - reader.base;
    let need = FRAME_HEADER_BYTES;
    if (reader.bytes.length - local >= FRAME_HEADER_BYTES) {
      need = frameBytes(u32(reader.bytes, local));
    }
    await reader.load(scan.at, need);
  }
  if (scan.reason !== undefined) {
    const { at, next } = scan;
    // Every byte of the segment is read before deciding, as a whole-file
    // read would: an unreadable byte fails recovery rather than being cut.
    if (!reader.atEnd) await reader.load(at, reader.size - at);
    // Damage to a record some later record declared durable, or any proof
    // that this segment was synced past it, is corruption.
    scan.durable = next <= scan.synced || !isLast ||
      laterProof(reader.bytes, at - reader.base + FRAME_ALIGN, salt, next);
  }
  return scan;
}

/**
 * Decodes and hands over the frames of `reader`'s window from `scan.at` on,
 * updating `scan`.
 *
 * @returns True when the segment is done (its end or a bad frame reached);
 *   false when the next frame runs past the window and more must be read.
 */
function scanWindow(
  scan: SegmentScan,
  reader: ReadWindow,
  frames: FrameDecoder,
  afterVersion: number,
  onRecord: (version: number, payload: Uint8Array) => void,
): boolean {
  const bytes = reader.bytes;
  const base = reader.base;
  const size = reader.size;
  const atEnd = reader.atEnd;
  let { at, next, synced, records, replayed } = scan;
  let done = true;
  while (at < size) {
    const local = at - base;
    if (!atEnd) {
      // Only decode a frame wholly in the window (past it is more file).
      const have = bytes.length - local;
      if (have < FRAME_HEADER_BYTES) {
        done = false;
        break;
      }
      const length = u32(bytes, local);
      if (length <= MAX_RECORD_PAYLOAD_BYTES && have < frameBytes(length)) {
        done = false;
        break;
      }
    }
    const f = frames.decode(local, next);
    if (!f.ok) {
      scan.reason = f.reason;
      break;
    }
    records++;
    if (f.synced > synced) synced = f.synced;
    if (f.version > afterVersion) {
      onRecord(f.version, f.payload);
      replayed++;
    }
    next++;
    at = base + f.end;
  }
  scan.at = at;
  scan.next = next;
  scan.synced = synced;
  scan.records = records;
  scan.replayed = replayed;
  return done;
}

/**
 * Salvage: keeps segment `index` up to `offset` (a copy of the whole file
 * goes to damaged/ first) and moves every later segment to damaged/.
 */
async function setAside(
  fs: FileAdapter,
  walDir: string,
  names: string[],
  index: number,
  offset: number,
): Promise<string[]> {
  const damagedDir = `${walDir}/${DAMAGED_DIR}`;
  await fs.mkdir(damagedDir);
  const moved: string[] = [];
  const first = names[index]!;
  const bytes = await readAll(fs, `${walDir}/${first}`);
  const copy = await fs.open(`${damagedDir}/${first}`, { create: true });
  try {
    await copy.truncate(0);
    await copy.write(bytes, 0);
    await copy.sync();
  } finally {
    await copy.close();
  }
  moved.push(`${damagedDir}/${first}`);
  for (const name of names.slice(index + 1)) {
    await fs.rename(`${walDir}/${name}`, `${damagedDir}/${name}`);
    moved.push(`${damagedDir}/${name}`);
  }
  await fs.syncDir(damagedDir);
  if (offset === 0) { // the header itself is damaged: nothing of the segment is kept
    await fs.remove(`${walDir}/${first}`);
  } else {
    const file = await fs.open(`${walDir}/${first}`);
    try {
      await file.truncate(offset);
      await file.sync();
    } finally {
      await file.close();
    }
  }
  await fs.syncDir(walDir);
  return moved;
}
