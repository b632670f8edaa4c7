/**
 * The peers of the suite behind one small interface each, loaded only where
 * they run: Deno KV (Deno), lmdb-js (wherever its native module loads),
 * better-sqlite3 (Node) and `bun:sqlite` (Bun). A peer that cannot load here
 * is reported with the reason instead of a row.
 *
 * The modules without TypeScript types here (better-sqlite3, `bun:sqlite`,
 * Deno's namespace under tsc) are typed by the few members the suite uses.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The subset of better-sqlite3's and bun:sqlite's statement the suite uses. */
export interface SqlStatement {
  run(...params: unknown[]): { changes: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** The subset of better-sqlite3's and bun:sqlite's database the suite uses. */
export interface SqlDatabase {
  exec(sql: string): unknown;
  prepare(sql: string): SqlStatement;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}

/** A SQLite binding: its name and how to open a file. */
export interface SqlDriver {
  name: string;
  version: string;
  open(path: string): SqlDatabase;
}

type SqlCtor = new (path: string) => SqlDatabase;

/** The version field of a package in node_modules. */
export function packageVersion(name: string): string {
  const url = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
}

/** The repository's root, as error messages spell it (cut from what BENCHMARKS.md shows). */
const ROOT = fileURLToPath(new URL("..", import.meta.url));

function reason(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  // Paths relative to the repository: the report shows no machine's layout.
  return text.split("\n")[0]!.split(ROOT).join("").slice(0, 300);
}

/** better-sqlite3 (Node), or bun:sqlite (Bun), or why neither loaded. */
export async function loadSqlite(): Promise<SqlDriver | string> {
  if ("Bun" in globalThis) {
    // A computed specifier keeps tsc (which has no Bun types) from resolving it.
    const spec = "bun:sqlite";
    try {
      const m = (await import(spec)) as { Database: SqlCtor };
      return { name: "bun:sqlite", version: "", open: (p) => new m.Database(p) };
    } catch (e) {
      return `bun:sqlite: ${reason(e)}`;
    }
  }
  const spec = "better-sqlite3";
  try {
    const m = (await import(spec)) as { default: SqlCtor };
    // The native addon may load only at the first open: try one here.
    new m.default(":memory:").close();
    return {
      name: "better-sqlite3",
      version: packageVersion("better-sqlite3"),
      open: (p) => new m.default(p),
    };
  } catch (e) {
    return `better-sqlite3: ${reason(e)}`;
  }
}

/** What a peer reports about an open SQLite file: the modes actually in force. */
export function sqliteModes(db: SqlDatabase): { journal: string; synchronous: string } {
  const journal = Object.values(db.prepare("PRAGMA journal_mode").get() as object)[0];
  const sync = Number(Object.values(db.prepare("PRAGMA synchronous").get() as object)[0]);
  const names = ["OFF", "NORMAL", "FULL", "EXTRA"];
  return { journal: String(journal).toUpperCase(), synchronous: names[sync] ?? String(sync) };
}

/** The SQLite library version a binding links. */
export function sqliteVersion(db: SqlDatabase): string {
  return String(Object.values(db.prepare("SELECT sqlite_version()").get() as object)[0]);
}

/** lmdb-js, or why it did not load. */
export async function loadLmdb(): Promise<typeof import("lmdb") | string> {
  try {
    return await import("lmdb");
  } catch (e) {
    return `lmdb-js: ${reason(e)}`;
  }
}

/** A Deno KV key. */
export type KvKey = readonly (string | number)[];

/** The subset of Deno KV the suite uses. */
export interface DenoKv {
  get(key: KvKey): Promise<{ value: unknown; versionstamp: string | null }>;
  set(key: KvKey, value: unknown): Promise<{ ok: true; versionstamp: string }>;
  list(selector: { prefix: KvKey }): AsyncIterable<{ key: KvKey; value: unknown }>;
  atomic(): DenoKvAtomic;
  close(): void;
}

/** The subset of Deno KV's atomic operation the suite uses. */
export interface DenoKvAtomic {
  check(...checks: { key: KvKey; versionstamp: string | null }[]): DenoKvAtomic;
  set(key: KvKey, value: unknown): DenoKvAtomic;
  commit(): Promise<{ ok: boolean; versionstamp?: string }>;
}

/** `Deno.openKv`, or why it is not here (another runtime, or no `--unstable-kv`). */
export function denoOpenKv(): ((path: string) => Promise<DenoKv>) | string {
  const deno = (globalThis as { Deno?: { openKv?: (path: string) => Promise<DenoKv> } }).Deno;
  if (deno === undefined) return "Deno KV: Deno only";
  if (typeof deno.openKv !== "function") return "Deno KV: needs --unstable-kv";
  return (path) => deno.openKv!(path);
}
