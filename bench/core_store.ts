/**
 * The ordered store against what a user would otherwise pick for an
 * in-process sorted map: a JavaScript `Map` (point reads and writes) plus a
 * sorted array (ordered scans), in the same run.
 *
 *   node --import tsx bench/core_store.ts [--quick]
 *   deno run -A bench/core_store.ts [--quick]
 *   bun bench/core_store.ts [--quick]
 *
 * Keys are 16–32 pseudo-random bytes, values 100 bytes. Sizes: 100k and 1M
 * keys (`--quick`: 100k only). After mitata's report it prints ops/s from
 * each benchmark's median (and mean), and entries/s for scans.
 *
 * @module
 */
import process from "node:process";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { OrderedStore } from "../src/core/store.ts";

const QUICK = process.argv.includes("--quick");
const SIZES = QUICK ? [100_000] : [100_000, 1_000_000];
const VALUE = new Uint8Array(100).fill(0x5a);
const SCAN = 1000;

function makeKeys(n: number, seed: number): Uint8Array[] {
  const keys: Uint8Array[] = [];
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const len = 16 + ((x >>> 0) % 17);
    const k = new Uint8Array(len);
    for (let j = 0; j < len; j++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      k[j] = x & 0xff;
    }
    keys.push(k);
  }
  return keys;
}

/** A Map key for the baseline: one char per byte keeps byte order. */
const latin1 = (k: Uint8Array): string => String.fromCharCode(...k);

/** Entries processed per benchmark call, by name (1 unless a scan). */
const PER_CALL = new Map<string, number>();
function b(name: string, perCall: number, fn: () => unknown): void {
  PER_CALL.set(name, perCall);
  bench(name, fn);
}

const cleanup: (() => void)[] = [];

for (const n of SIZES) {
  const label = n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`;
  const keys = makeKeys(n, n);
  const store = new OrderedStore();
  for (const k of keys) store.put(k, VALUE);
  const map = new Map<string, Uint8Array>();
  const strKeys = keys.map(latin1);
  for (const k of strKeys) map.set(k, VALUE);
  const sorted = [...strKeys].sort();
  const sortedValues = sorted.map((k) => map.get(k)!);
  cleanup.push(() => store.close());
  let i = 0;
  const next = (): number => (i = (i + 7919) % n);

  group(`get, random key, ${label} keys`, () => {
    summary(() => {
      b(`store.get (copy) ${label}`, 1, () => do_not_optimize(store.get(keys[next()]!)));
      b(`store.getView ${label}`, 1, () => do_not_optimize(store.getView(keys[next()]!)));
      b(`Map.get ${label}`, 1, () => do_not_optimize(map.get(strKeys[next()]!)));
    });
  });

  group(`put, replace random key, ${label} keys`, () => {
    summary(() => {
      b(`store.put ${label}`, 1, () => store.put(keys[next()]!, VALUE));
      b(`Map.set ${label}`, 1, () => map.set(strKeys[next()]!, VALUE));
    });
  });

  group(`scan ${SCAN} entries from a random key, ${label} keys`, () => {
    summary(() => {
      b(`store.scan (views) ${label}`, SCAN, () => {
        let bytes = 0;
        store.scan({ gte: keys[next()]!, limit: SCAN }, (e) => {
          bytes += e.valueEnd - e.valueStart;
        });
        return bytes;
      });
      b(`store.entries (copies) ${label}`, SCAN, () => {
        let bytes = 0;
        for (const [, v] of store.entries({ gte: keys[next()]!, limit: SCAN })) bytes += v.length;
        return bytes;
      });
      b(`sorted array ${label}`, SCAN, () => {
        const from = strKeys[next()]!;
        let lo = 0;
        let hi = sorted.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (sorted[mid]! < from) lo = mid + 1;
          else hi = mid;
        }
        let bytes = 0;
        for (let j = lo; j < Math.min(lo + SCAN, sorted.length); j++) {
          bytes += sortedValues[j]!.length;
        }
        return bytes;
      });
    });
  });

  group(`snapshot take + release, ${label} keys`, () => {
    b(`store.snapshot ${label}`, 1, () => store.snapshot().release());
  });
}

{
  const store = new OrderedStore();
  for (const k of makeKeys(10_000, 3)) store.put(k, VALUE);
  cleanup.push(() => store.close());
  group("snapshot take + release, 10k keys", () => {
    b("store.snapshot 10k", 1, () => store.snapshot().release());
  });
}

const { benchmarks } = await run();
for (const c of cleanup) c();

const rows: string[] = [];
for (const trial of benchmarks) {
  for (const r of trial.runs) {
    const per = PER_CALL.get(r.name);
    if (r.stats === undefined || per === undefined) continue;
    const rate = (ns: number): string =>
      Math.round((1e9 / ns) * per).toLocaleString("en-US").padStart(13);
    const unit = per === 1 ? "ops/s" : "entries/s";
    rows.push(
      `${r.name.padEnd(32)} median ${rate(r.stats.p50)} ${unit} | mean ${rate(r.stats.avg)}`,
    );
  }
}
console.log(
  `\nthroughput (${typeof Deno !== "undefined" ? "deno" : "Bun" in globalThis ? "bun" : "node"})\n${
    rows.join("\n")
  }`,
);

declare const Deno: unknown;
