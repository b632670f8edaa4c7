/**
 * fast-check arbitraries for SimFS fault plans and crash modes, so a failing
 * crash or fault test shrinks to the fewest, simplest faults and replays
 * from its seed and path. Kept out of src/ so the library never depends on
 * fast-check.
 *
 * @module
 */
import fc from "fast-check";
import {
  SIM_CRASH_MODES,
  type SimCrashMode,
  type SimFault,
  type SimFaultKind,
} from "../../src/fs/sim.ts";

/** Fault kinds that fire during operations (the rest are applied at rest). */
export const IN_FLIGHT_FAULT_KINDS: readonly SimFaultKind[] = [
  "readError",
  "writeError",
  "shortWrite",
  "noSpace",
  "syncError",
  "syncDirError",
  "misdirectedWrite",
];

/** Any crash mode; shrinks towards `dropUnsynced`. */
export const crashModeArb: fc.Arbitrary<SimCrashMode> = fc.constantFrom(...SIM_CRASH_MODES);

/** A SimFS or crash seed. */
export const seedArb: fc.Arbitrary<number> = fc.integer({ min: 0, max: 0x7fffffff });

/** Options of {@link faultArb} and {@link faultPlanArb}. */
export interface FaultArbOptions {
  /** Kinds to draw from. Default: {@link IN_FLIGHT_FAULT_KINDS}. */
  readonly kinds?: readonly SimFaultKind[];
  /** Globs a fault may target, besides "every file". Default: none. */
  readonly paths?: readonly string[];
  /** Largest `skip`. Default 8. */
  readonly maxSkip?: number;
  /** Largest number of faults in a plan. Default 4. */
  readonly maxFaults?: number;
}

/**
 * One fault of the given kinds, with optional path, skip and persistence.
 *
 * @param options Kinds, target globs, largest skip.
 * @returns The arbitrary.
 */
export function faultArb(options: FaultArbOptions = {}): fc.Arbitrary<SimFault> {
  const kinds = options.kinds ?? IN_FLIGHT_FAULT_KINDS;
  const paths = options.paths ?? [];
  const timing = {
    ...(paths.length > 0 ? { path: fc.constantFrom(...paths) } : {}),
    skip: fc.nat({ max: options.maxSkip ?? 8 }),
    persistent: fc.boolean(),
  };
  const timed = <K extends string, X extends Record<string, fc.Arbitrary<unknown>>>(
    kind: K,
    extra: X,
    required: (keyof X & string)[] = [],
  ) =>
    fc.record({ kind: fc.constant(kind), ...timing, ...extra }, {
      requiredKeys: ["kind", ...required] as never[],
    });
  const byKind: Record<SimFaultKind, fc.Arbitrary<unknown>> = {
    readError: timed("readError", {}),
    writeError: timed("writeError", {}),
    syncDirError: timed("syncDirError", {}),
    shortWrite: timed("shortWrite", { bytes: fc.integer({ min: 1, max: 64 }) }),
    noSpace: timed("noSpace", { bytes: fc.nat({ max: 64 }) }),
    syncError: timed("syncError", { keepView: fc.boolean() }, ["keepView"]),
    misdirectedWrite: timed("misdirectedWrite", {
      shiftBytes: fc.integer({ min: -4096, max: 4096 }),
    }),
    bitFlip: fc.record({
      kind: fc.constant("bitFlip"),
      offset: fc.nat({ max: 4096 }),
      bit: fc.nat({ max: 7 }),
    }, { requiredKeys: ["kind"] }),
    latentSectorError: fc.record({
      kind: fc.constant("latentSectorError"),
      offset: fc.nat({ max: 4096 }),
    }, { requiredKeys: ["kind"] }),
  };
  return fc.oneof(...kinds.map((k) => byKind[k])) as fc.Arbitrary<SimFault>;
}

/**
 * A fault plan: up to `maxFaults` faults (shrinks towards none).
 *
 * @param options As for {@link faultArb}, plus `maxFaults`.
 * @returns The arbitrary.
 */
export function faultPlanArb(options: FaultArbOptions = {}): fc.Arbitrary<SimFault[]> {
  return fc.array(faultArb(options), { maxLength: options.maxFaults ?? 4 });
}
