/**
 * CRC32C and SHA-256 of the wasm core against what a user would otherwise
 * pick, in the same run: a pure-JS table CRC32C, and `node:crypto` (native,
 * often hardware-accelerated SHA-256).
 *
 *   node --import tsx bench/core_hash.ts
 *   deno run -A bench/core_hash.ts
 *   bun bench/core_hash.ts
 *
 * After mitata's report it prints ops/s and MB/s (10^6 bytes/s) from each
 * benchmark's mean and median time.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { bench, group, run, summary } from "mitata";
import { crc32c } from "../src/core/crc32c.ts";
import { Sha256, sha256 } from "../src/core/sha256.ts";

const KIB_64 = 65536;

function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The usual pure-JS CRC32C: one 256-entry table, one byte per step. */
const JS_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
    table[n] = c >>> 0;
  }
  return table;
})();

function jsCrc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    c = (JS_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  }
  return ~c >>> 0;
}

const block = pseudoRandomBytes(KIB_64, 1);
const message = pseudoRandomBytes(256, 2);

if (crc32c(block) !== jsCrc32c(block)) throw new Error("Cannot benchmark: CRC32C results differ");
if (
  createHash("sha256").update(block).digest("hex") !==
    Array.from(sha256(block), (b) => b.toString(16).padStart(2, "0")).join("")
) {
  throw new Error("Cannot benchmark: SHA-256 results differ");
}

/** Bytes each benchmark processes per call, by name. */
const BYTES_PER_OP = new Map<string, number>();
function hashBench(name: string, bytes: number, fn: () => unknown): void {
  BYTES_PER_OP.set(name, bytes);
  bench(name, fn);
}

group("CRC32C of 64 KiB", () => {
  summary(() => {
    hashBench("crc32c 64 KiB: in-mem (wasm)", KIB_64, () => crc32c(block));
    hashBench("crc32c 64 KiB: pure-JS table", KIB_64, () => jsCrc32c(block));
  });
});

group("SHA-256 of 256 bytes", () => {
  summary(() => {
    hashBench("sha256 256 B: in-mem sha256()", 256, () => sha256(message));
    hashBench(
      "sha256 256 B: in-mem new Sha256()",
      256,
      () => new Sha256().update(message).digest(),
    );
    hashBench(
      "sha256 256 B: node:crypto createHash",
      256,
      () => createHash("sha256").update(message).digest(),
    );
  });
});

group("SHA-256 of 64 KiB", () => {
  summary(() => {
    hashBench("sha256 64 KiB: in-mem sha256()", KIB_64, () => sha256(block));
    hashBench(
      "sha256 64 KiB: node:crypto createHash",
      KIB_64,
      () => createHash("sha256").update(block).digest(),
    );
  });
});

const { benchmarks } = await run();

const rows: string[] = [];
for (const trial of benchmarks) {
  for (const r of trial.runs) {
    const bytes = BYTES_PER_OP.get(r.name);
    if (r.stats === undefined || bytes === undefined) continue;
    // mitata reports nanoseconds per call.
    const rate = (ns: number): string => {
      const ops = 1e9 / ns;
      return `${Math.round(ops).toLocaleString("en-US").padStart(11)} ops/s ${
        (ops * bytes / 1e6).toFixed(0).padStart(6)
      } MB/s`;
    };
    rows.push(`${r.name.padEnd(40)} mean ${rate(r.stats.avg)} | median ${rate(r.stats.p50)}`);
  }
}
console.log(`\nthroughput (MB = 10^6 bytes)\n${rows.join("\n")}`);
