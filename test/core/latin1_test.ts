// latin1String (src/_runtime.ts): the string of a byte view's char codes,
// made natively where the runtime has Buffer's latin1Slice. It names every
// key in the engine's maps (Engine keyId), so it must equal
// String.fromCharCode over the view's own bytes exactly — offsets, all 256
// byte values and long keys included.
//
// Negative control: a slice that reads from the start of the view's
// ArrayBuffer instead of the view's offset fails the same property.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { latin1String, NATIVE_LATIN1, RUNTIME } from "../../src/_runtime.ts";

/** The reference: char codes one at a time. */
function reference(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** A view of `data` at an offset inside a larger buffer. */
const views = fc.record({
  data: fc.uint8Array({ maxLength: 3000 }),
  before: fc.nat(64),
  after: fc.nat(64),
}).map(({ data, before, after }) => {
  const backing = new Uint8Array(before + data.length + after).fill(0xaa);
  backing.set(data, before);
  return backing.subarray(before, before + data.length);
});

function holds(f: (bytes: Uint8Array) => string): fc.IProperty<[Uint8Array]> {
  return fc.property(views, (v) => f(v) === reference(v));
}

test("latin1String equals String.fromCharCode over the view's bytes", () => {
  fc.assert(holds(latin1String), { numRuns: 500 });
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.equal(latin1String(all), reference(all));
  assert.equal(latin1String(new Uint8Array(0)), "");
});

test("latin1String is native on Node, Deno and Bun", () => {
  assert.equal(NATIVE_LATIN1, RUNTIME !== "other", `runtime ${RUNTIME}`);
});

test("negative control: a slice that ignores the view's offset fails the property", () => {
  const slice = (globalThis as { Buffer?: { prototype: { latin1Slice: unknown } } }).Buffer
    ?.prototype.latin1Slice as ((this: Uint8Array, s: number, e: number) => string) | undefined;
  const broken = (v: Uint8Array): string =>
    slice !== undefined
      ? slice.call(new Uint8Array(v.buffer), 0, v.length)
      : reference(new Uint8Array(v.buffer, 0, v.length));
  const result = fc.check(holds(broken), { numRuns: 500, seed: 42 });
  assert.equal(result.failed, true, "the broken slice passed");
});
