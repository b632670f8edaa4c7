/**
 * Which JavaScript runtime this is, detected once, here and nowhere else.
 * Layers that must behave differently per runtime (file adapters; the
 * store's choice of how to copy small values out of WebAssembly memory; the
 * codec's choice between a JS loop and TextDecoder for short strings) read
 * this constant instead of probing globals themselves.
 *
 * @module
 */

/** The runtimes in-mem knows. */
export type RuntimeName = "node" | "deno" | "bun" | "other";

const g = globalThis as {
  Deno?: unknown;
  Bun?: unknown;
  process?: { versions?: { node?: string } };
};

/** The runtime running this code. */
export const RUNTIME: RuntimeName = g.Bun !== undefined
  ? "bun"
  : g.Deno !== undefined
  ? "deno"
  : g.process?.versions?.node !== undefined
  ? "node"
  : "other";

/**
 * Lets the process exit while `timer` is pending (a background fsync
 * interval must not keep a program alive). Node and Bun timers have
 * `unref()`; Deno's are numbers, unref'd with `Deno.unrefTimer`.
 *
 * @param timer What `setInterval`/`setTimeout` returned.
 */
export function unrefTimer(timer: unknown): void {
  if (typeof timer === "object" && timer !== null && "unref" in timer) {
    (timer as { unref(): void }).unref();
  } else if (typeof timer === "number" && RUNTIME === "deno") {
    (g.Deno as { unrefTimer?: (id: number) => void }).unrefTimer?.(timer);
  }
}
