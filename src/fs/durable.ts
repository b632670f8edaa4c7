/**
 * Helpers that make file-system changes durable, for the storage layers
 * above src/fs/. A new name survives power loss only after its parent
 * directory is synced (RELIABILITY.md mistake 1).
 *
 * @module
 */
import type { FileAdapter } from "./types.ts";

/**
 * The parent directory of `path` (`.` for a bare name, `/` at the root).
 *
 * @param path A file or directory path with `/` separators.
 * @returns Its parent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parentDir } from "./durable.ts";
 *
 * assert.equal(parentDir("db/wal"), "db");
 * assert.equal(parentDir("db"), ".");
 * assert.equal(parentDir("/db"), "/");
 * ```
 */
export function parentDir(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const i = trimmed.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : trimmed.slice(0, i);
}

/**
 * Creates directory `path` (and missing parents) and makes every level's
 * entry durable by syncing each ancestor, innermost first.
 *
 * @param fs The file system.
 * @param path The directory.
 * @throws {FsError} If the file system fails.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimFS } from "./sim.ts";
 * import { mkdirDurable } from "./durable.ts";
 *
 * const fs = new SimFS();
 * await mkdirDurable(fs, "data/db/wal");
 * assert.equal(await fs.crash("lostDirEntry").exists("data/db/wal"), true);
 * ```
 */
export async function mkdirDurable(fs: FileAdapter, path: string): Promise<void> {
  await fs.mkdir(path);
  let dir = path;
  for (;;) {
    const parent = parentDir(dir);
    await fs.syncDir(parent);
    if (parent === "." || parent === "/" || parent === dir) return;
    dir = parent;
  }
}
