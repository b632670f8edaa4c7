/**
 * STUB — being built (issue 4).
 *
 * @module
 */
import type { Scope } from "./context.ts";

/** STUB. */
export class StateCells {
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
