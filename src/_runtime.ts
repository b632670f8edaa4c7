/**
 * Which JavaScript runtime this is, detected once, here and nowhere else.
 * Layers that must behave differently per runtime (file adapters; the
 * store's choice of how to copy small values out of WebAssembly memory; the
 * codec's choice between a JS loop and TextDecoder for short strings) read
 * this constant instead of probing globals themselves; the one capability
 * probed besides is Buffer's native Latin-1 slice ({@link latin1String}).
 *
 * @module
 */

/** The runtimes in-mem knows. */
export type RuntimeName = "node" | "deno" | "bun" | "other";

const g = globalThis as {
  Deno?: unknown;
  Bun?: unknown;
  process?: { versions?: { node?: string } };
  Buffer?: { prototype?: { latin1Slice?: unknown } };
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

/** `Buffer.prototype.latin1Slice`, called on any byte view. */
type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;

/** The runtime's latin1Slice if it gives exactly String.fromCharCode's string, views included. */
function probeLatin1(): Latin1Slice | undefined {
  const f = g.Buffer?.prototype?.latin1Slice;
  if (typeof f !== "function") return undefined;
  try {
    const bytes = new Uint8Array([0x00, 0x41, 0x7f, 0x80, 0x9f, 0xe9, 0xff]);
    const slice = f as Latin1Slice;
    return slice.call(bytes, 0, bytes.length) === "\x00A\x7f\x80\x9f\xe9\xff" &&
        slice.call(bytes.subarray(2, 5), 0, 3) === "\x7f\x80\x9f"
      ? slice
      : undefined;
  } catch {
    return undefined;
  }
}

const nativeLatin1 = probeLatin1();

/**
 * The string whose char codes are `bytes` (each 0–255), as
 * `String.fromCharCode(...bytes)` makes it. Node, Deno and Bun make it
 * natively with Buffer's `latin1Slice` (checked at load to give exactly
 * that string, for views too; else a JS fallback): for keys of 24–64 bytes
 * with a Map.set each, Node 106–157 ns against 180–318, Deno 116–123
 * against 152–241, Bun 45–69 against 133–230.
 *
 * @param bytes The bytes.
 * @returns The string, one char per byte.
 */
export function latin1String(bytes: Uint8Array): string {
  if (nativeLatin1 !== undefined) return nativeLatin1.call(bytes, 0, bytes.length);
  if (bytes.length <= 1024) {
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  let s = "";
  for (let i = 0; i < bytes.length; i += 1024) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 1024) as unknown as number[]);
  }
  return s;
}

/** @internal Whether {@link latin1String} runs natively here (for tests). */
export const NATIVE_LATIN1: boolean = nativeLatin1 !== undefined;
