// Unicode string arbitraries shared by the test suites.

import fc from "fast-check";

/** Code points below the surrogates; those above them are shifted down by this many. */
const SURROGATES = 0x800;
const FIRST_SURROGATE = 0xd800;
const LAST_CODE_POINT = 0x10ffff;

/**
 * One Unicode scalar value (any code point but a surrogate) as a string: the
 * same units as fast-check's `unit: "binary"`, drawn the same way (an index
 * into the code points, small ones favoured).
 *
 * fast-check's own "binary" unit builds a reverse table of all 1,112,064
 * code points (a Map from each one-code-point string to its index) and keeps
 * it for the life of the process: ~1.1 million strings, ~80 MB of heap, made
 * as soon as codec_test.ts had loaded. Under Bun, whose test runner runs
 * every file in one process, each `WebAssembly.Memory` made after that (one
 * per store) took 10-70 ms instead of under 1 ms, and the suite ran over a
 * minute longer.
 */
export const scalarUnit: fc.Arbitrary<string> = fc
  .integer({ min: 0, max: LAST_CODE_POINT - SURROGATES })
  .map(
    (i) => String.fromCodePoint(i < FIRST_SURROGATE ? i : i + SURROGATES),
    (s) => {
      if (typeof s !== "string" || s.length === 0) throw new TypeError("not a unit");
      const cp = s.codePointAt(0)!;
      if (String.fromCodePoint(cp) !== s) throw new TypeError("not one code point");
      if (cp >= FIRST_SURROGATE && cp < FIRST_SURROGATE + SURROGATES) {
        throw new TypeError("a surrogate");
      }
      return cp < FIRST_SURROGATE ? cp : cp - SURROGATES;
    },
  );

/** Strings of Unicode scalar values, like `fc.string({ unit: "binary", ...constraints })`. */
export function scalarString(
  constraints: { minLength?: number; maxLength?: number } = {},
): fc.Arbitrary<string> {
  return fc.string({ unit: scalarUnit, ...constraints });
}
