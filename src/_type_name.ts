/**
 * Names a value's type for error messages ("got string", "got Map"): one
 * helper for every layer's argument checks.
 *
 * @module
 */

/**
 * The type of `value` as an error message shows it: `null`, a `typeof`
 * name, or an object's constructor name (`object` when it has none).
 *
 * @param value Anything.
 * @returns Its name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { typeName } from "./_type_name.ts";
 *
 * assert.equal(typeName(null), "null");
 * assert.equal(typeName(1), "number");
 * assert.equal(typeName(new Map()), "Map");
 * assert.equal(typeName(Object.create(null)), "object");
 * ```
 */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  const ctor = (value as { constructor?: unknown }).constructor;
  return typeof ctor === "function" && ctor.name !== "" ? ctor.name : "object";
}
