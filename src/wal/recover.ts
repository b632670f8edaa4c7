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
 * @module
 */
import { CorruptionError, StorageError } from "../errors.ts";
import { type FileAdapter, FsError } from "../fs/types.ts";
import {
  decodeFrame,
  decodeSegmentHeader,
  FRAME_ALIGN,
  FRAME_HEADER_BYTES,
  parseSegmentName,
  SEGMENT_HEADER_BYTES,
} from "./format.ts";

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
 * True when some frame at an aligned offset at or after `from` decodes and
 * claims that version `version` was durable: proof that damage before it is
 * in data that had been synced.
 */
function laterProof(bytes: Uint8Array, from: number, salt: bigint, version: number): boolean {
  for (let at = from; at + FRAME_HEADER_BYTES <= bytes.length; at += FRAME_ALIGN) {
    const f = decodeFrame(bytes, at, salt, undefined);
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

  for (let i = 0; i < names.length; i++) {
    const seg = names[i]!;
    const path = `${walDir}/${seg.name}`;
    const isLast = i === names.length - 1;
    const bytes = await readAll(fs, path);
    const header = decodeSegmentHeader(bytes);
    if (header === undefined || header.firstVersion !== seg.first) {
      // A segment's header is synced before any record goes into it, so a
      // bad header with nothing after it is a creation cut short by a crash.
      if (isLast && bytes.length <= SEGMENT_HEADER_BYTES) {
        await fs.remove(path);
        await fs.syncDir(walDir);
        report.removedSegment = path;
        break;
      }
      return await damage(i, 0, "the segment header does not decode");
    }
    if (expected !== undefined && header.firstVersion !== expected) {
      return await damage(
        i,
        0,
        `the segment starts at version ${header.firstVersion}, not ${expected}`,
      );
    }
    if (expected === undefined && header.firstVersion > afterVersion + 1) {
      return await damage(
        i,
        0,
        `records ${afterVersion + 1}..${
          header.firstVersion - 1
        } are missing before the first segment`,
      );
    }
    expected = header.firstVersion;
    report.segments++;
    tail = {
      path,
      firstVersion: header.firstVersion,
      salt: header.salt,
      size: SEGMENT_HEADER_BYTES,
    };
    let at = SEGMENT_HEADER_BYTES;
    while (at < bytes.length) {
      const f = decodeFrame(bytes, at, header.salt, expected);
      if (!f.ok) {
        // Damage to a record some later record declared durable, or any
        // proof that this segment was synced past it, is corruption.
        const durable = expected <= synced || !isLast ||
          laterProof(bytes, at + FRAME_ALIGN, header.salt, expected);
        if (durable) return await damage(i, at, `record ${expected} does not decode (${f.reason})`);
        const file = await fs.open(path);
        try {
          await file.truncate(at);
          await file.sync();
        } finally {
          await file.close();
        }
        report.tornTail = { path, offset: at, bytes: bytes.length - at };
        break;
      }
      report.records++;
      if (f.synced > synced) synced = f.synced;
      if (f.version > afterVersion) {
        onRecord(f.version, f.payload);
        report.replayed++;
      }
      expected++;
      at = f.end;
      tail.size = at;
    }
  }
  const lastVersion = expected === undefined ? afterVersion : Math.max(afterVersion, expected - 1);
  return { tail, lastVersion, report };
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
