/**
 * Checkpoints: a snapshot of the whole store at one commit version, written
 * to a file so recovery loads it and replays only the WAL after it
 * (docs/FORMAT.md "Checkpoint"). Written from a frozen store snapshot, so
 * commits go on while it is written; made visible atomically (temp file,
 * fsync, rename, directory fsync); then WAL segments it covers and older
 * checkpoints are deleted.
 *
 * @module
 */
import { crc32c } from "../core/crc32c.ts";
import type { ReadableStore } from "../core/store.ts";
import { CorruptionError } from "../errors.ts";
import { mkdirDurable } from "../fs/durable.ts";
import type { FileAdapter } from "../fs/types.ts";

/** Subdirectory of the database directory holding checkpoints. */
export const CHECKPOINT_DIR = "checkpoint";
/** Magic bytes at the start of a checkpoint: ASCII "inmemCKP". */
export const CHECKPOINT_MAGIC: Uint8Array = new TextEncoder().encode("inmemCKP");
/** Bytes of the checkpoint header. */
export const CHECKPOINT_HEADER_BYTES = 32;
/** Entries are written in chunks of about this many bytes, each with its own checksum. */
export const CHECKPOINT_CHUNK_BYTES: number = 1024 * 1024;
const CHUNK_HEADER_BYTES = 8;
const FOOTER_BYTES = 32;
const SUFFIX = ".ckpt";

/**
 * The file name of the checkpoint at `version`.
 *
 * @param version The commit version it holds.
 * @returns e.g. `00000000000000ff.ckpt`.
 */
export function checkpointName(version: number): string {
  return version.toString(16).padStart(16, "0") + SUFFIX;
}

function parseCheckpointName(name: string): number | undefined {
  if (!/^[0-9a-f]{16}\.ckpt$/.test(name)) return undefined;
  return parseInt(name.slice(0, 16), 16);
}

/** What {@link writeCheckpoint} wrote. */
export interface CheckpointInfo {
  /** Its path. */
  path: string;
  /** The commit version it holds. */
  version: number;
  /** Entries written. */
  entries: number;
  /** File size, bytes. */
  bytes: number;
}

/**
 * Writes a checkpoint of `snapshot` (the store at `version`) and makes it the
 * current one. Does not delete anything (see {@link pruneAfterCheckpoint}).
 *
 * @param fs The file system.
 * @param dir The database directory.
 * @param snapshot A frozen view of the store at `version`.
 * @param version The commit version the snapshot shows.
 * @returns What was written.
 * @throws {FsError} If the file system fails (the partial temp file is left; the next checkpoint replaces it).
 */
export async function writeCheckpoint(
  fs: FileAdapter,
  dir: string,
  snapshot: ReadableStore,
  version: number,
): Promise<CheckpointInfo> {
  const cdir = `${dir}/${CHECKPOINT_DIR}`;
  await mkdirDurable(fs, cdir);
  const final = `${cdir}/${checkpointName(version)}`;
  const temp = `${final}.tmp`;
  const file = await fs.open(temp, { create: true });
  let offset = 0;
  let entries = 0;
  try {
    await file.truncate(0);
    const header = new Uint8Array(CHECKPOINT_HEADER_BYTES);
    const hv = new DataView(header.buffer);
    header.set(CHECKPOINT_MAGIC, 0);
    hv.setUint32(8, 1, true); // format version
    hv.setBigUint64(16, BigInt(version), true);
    hv.setUint32(28, crc32c(header.subarray(0, 28)), true);
    await file.write(header, 0);
    offset = CHECKPOINT_HEADER_BYTES;
    let chunk = new Uint8Array(CHECKPOINT_CHUNK_BYTES + CHUNK_HEADER_BYTES);
    let used = CHUNK_HEADER_BYTES;
    const flush = async (): Promise<void> => {
      if (used === CHUNK_HEADER_BYTES) return;
      const body = chunk.subarray(CHUNK_HEADER_BYTES, used);
      const view = new DataView(chunk.buffer, chunk.byteOffset, CHUNK_HEADER_BYTES);
      view.setUint32(0, body.length, true);
      view.setUint32(4, crc32c(body), true);
      await file.write(chunk.subarray(0, used), offset);
      offset += used;
      used = CHUNK_HEADER_BYTES;
    };
    // Entries are read from the snapshot in batches; the snapshot is frozen,
    // so writes to the live store during the awaits below change nothing here.
    for (const [key, value] of snapshot.entries()) {
      const need = 8 + key.length + value.length;
      if (used + need > chunk.length) {
        await flush();
        if (CHUNK_HEADER_BYTES + need > chunk.length) {
          chunk = new Uint8Array(CHUNK_HEADER_BYTES + need);
        }
      }
      const view = new DataView(chunk.buffer, chunk.byteOffset + used, 8);
      view.setUint32(0, key.length, true);
      view.setUint32(4, value.length, true);
      chunk.set(key, used + 8);
      chunk.set(value, used + 8 + key.length);
      used += need;
      entries++;
    }
    await flush();
    const footer = new Uint8Array(FOOTER_BYTES);
    const fv = new DataView(footer.buffer);
    fv.setUint32(0, 0, true); // a chunk of length 0 ends the entries
    fv.setBigUint64(8, BigInt(entries), true);
    fv.setBigUint64(16, BigInt(version), true);
    fv.setUint32(4, crc32c(footer.subarray(8, FOOTER_BYTES)), true);
    await file.write(footer, offset);
    offset += FOOTER_BYTES;
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.rename(temp, final);
  await fs.syncDir(cdir);
  return { path: final, version, entries, bytes: offset };
}

/**
 * Loads the newest checkpoint of `dir` into a store, checking every chunk.
 *
 * @param fs The file system.
 * @param dir The database directory.
 * @param put Receives every entry, in key order.
 * @returns The checkpoint's version and entry count, or undefined when there is none.
 * @throws {CorruptionError} If the newest checkpoint is damaged (naming file and offset).
 */
export async function loadCheckpoint(
  fs: FileAdapter,
  dir: string,
  put: (key: Uint8Array, value: Uint8Array) => void,
): Promise<{ version: number; entries: number; path: string } | undefined> {
  const cdir = `${dir}/${CHECKPOINT_DIR}`;
  if (!(await fs.exists(cdir))) return undefined;
  const versions = (await fs.list(cdir))
    .map(parseCheckpointName)
    .filter((v): v is number => v !== undefined)
    .sort((a, b) => b - a);
  if (versions.length === 0) return undefined;
  const version = versions[0]!;
  const path = `${cdir}/${checkpointName(version)}`;
  const file = await fs.open(path, { readOnly: true });
  let bytes: Uint8Array;
  try {
    const size = await file.size();
    bytes = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const n = await file.read(bytes.subarray(done), done);
      if (n === 0) break;
      done += n;
    }
    bytes = bytes.subarray(0, done);
  } finally {
    await file.close();
  }
  const damaged = (offset: number, why: string): never => {
    throw new CorruptionError(`Cannot load the checkpoint: ${why} in ${path} at offset ${offset}`, {
      where: `${path}:${offset}`,
    });
  };
  if (bytes.length < CHECKPOINT_HEADER_BYTES + FOOTER_BYTES) damaged(0, "the file is too short");
  const hv = new DataView(bytes.buffer, bytes.byteOffset, CHECKPOINT_HEADER_BYTES);
  for (let i = 0; i < CHECKPOINT_MAGIC.length; i++) {
    if (bytes[i] !== CHECKPOINT_MAGIC[i]) damaged(0, "bad magic");
  }
  if (hv.getUint32(28, true) !== crc32c(bytes.subarray(0, 28))) {
    damaged(0, "the header checksum does not match");
  }
  if (Number(hv.getBigUint64(16, true)) !== version) {
    damaged(16, "the header names another version");
  }
  let at = CHECKPOINT_HEADER_BYTES;
  let entries = 0;
  for (;;) {
    if (at + CHUNK_HEADER_BYTES > bytes.length) damaged(at, "it ends inside a chunk header");
    const cv = new DataView(bytes.buffer, bytes.byteOffset + at, CHUNK_HEADER_BYTES);
    const length = cv.getUint32(0, true);
    if (length === 0) break;
    const start = at + CHUNK_HEADER_BYTES;
    if (start + length > bytes.length) damaged(at, "a chunk runs past the end");
    const body = bytes.subarray(start, start + length);
    if (cv.getUint32(4, true) !== crc32c(body)) damaged(at, "a chunk checksum does not match");
    let p = 0;
    const bv = new DataView(body.buffer, body.byteOffset, body.length);
    while (p < body.length) {
      if (p + 8 > body.length) damaged(start + p, "an entry header is cut");
      const kl = bv.getUint32(p, true);
      const vl = bv.getUint32(p + 4, true);
      if (p + 8 + kl + vl > body.length) damaged(start + p, "an entry is cut");
      put(body.subarray(p + 8, p + 8 + kl), body.subarray(p + 8 + kl, p + 8 + kl + vl));
      p += 8 + kl + vl;
      entries++;
    }
    at = start + length;
  }
  if (at + FOOTER_BYTES !== bytes.length) damaged(at, "the footer is not at the end");
  const fv = new DataView(bytes.buffer, bytes.byteOffset + at, FOOTER_BYTES);
  if (fv.getUint32(4, true) !== crc32c(bytes.subarray(at + 8, at + FOOTER_BYTES))) {
    damaged(at, "the footer checksum does not match");
  }
  if (Number(fv.getBigUint64(8, true)) !== entries) damaged(at, "the entry count does not match");
  if (Number(fv.getBigUint64(16, true)) !== version) {
    damaged(at, "the footer names another version");
  }
  return { version, entries, path };
}

/**
 * After a checkpoint at `version`: deletes older checkpoints, leftover temp
 * files, and every WAL segment whose records are all at or below `version`
 * (the last segment always stays).
 *
 * @param fs The file system.
 * @param dir The database directory.
 * @param version The new checkpoint's version.
 * @param walDir The WAL directory.
 * @param segmentFirstVersions Each segment's path and first version, in order.
 * @returns The paths removed.
 */
export async function pruneAfterCheckpoint(
  fs: FileAdapter,
  dir: string,
  version: number,
  walDir: string,
  segmentFirstVersions: { path: string; first: number }[],
): Promise<string[]> {
  const removed: string[] = [];
  const cdir = `${dir}/${CHECKPOINT_DIR}`;
  for (const name of await fs.list(cdir)) {
    const v = parseCheckpointName(name);
    if ((v !== undefined && v < version) || name.endsWith(".tmp")) {
      await fs.remove(`${cdir}/${name}`);
      removed.push(`${cdir}/${name}`);
    }
  }
  await fs.syncDir(cdir);
  for (let i = 0; i + 1 < segmentFirstVersions.length; i++) {
    // Segment i holds versions first_i .. first_{i+1} - 1.
    if (segmentFirstVersions[i + 1]!.first <= version + 1) {
      await fs.remove(segmentFirstVersions[i]!.path);
      removed.push(segmentFirstVersions[i]!.path);
    }
  }
  await fs.syncDir(walDir);
  return removed;
}
