/**
 * STUB — being built (issue 4).
 *
 * @module
 */
import type { Scope } from "./context.ts";

/** STUB. */
export class KvStore {
  readonly #scope: Scope;
  /** @internal */
  constructor(scope: Scope) {
    this.#scope = scope;
  }
  /** @internal */
  get scope(): Scope {
    return this.#scope;
  }
}

/**
 * STUB: the expiry time a stored KV record carries.
 *
 * @param _value The record bytes.
 * @returns The expiry, or undefined.
 */
export function kvRecordExpiresAt(_value: Uint8Array): number | undefined {
  return undefined;
}
