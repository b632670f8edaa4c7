/**
 * SHA-256 (FIPS 180-4), computed by the WebAssembly core.
 *
 * Input is copied into one fixed scratch region of the shared core (allocated
 * on first use, never freed) and hashed from there, in chunks of 64 KiB when
 * it is larger: no call allocates in the wasm memory.
 *
 * A streaming {@link Sha256} owns no wasm memory either. The scratch region
 * has one context slot for streaming hashes: the object that used it last
 * keeps its state there, so the usual create-update-digest sequence copies
 * nothing; when another object needs the slot, the current holder's state
 * (104 bytes) is copied out into a `Uint8Array` of its own and copied back
 * when it continues. An object dropped before `digest()` therefore leaks
 * nothing and needs no finalizer or pool (the slot's last holder stays
 * reachable until another hash takes the slot).
 *
 * @module
 */
import { InvalidStateError } from "../errors.ts";
import { type CoreExports, sharedCore } from "./_wasm.ts";
import { typeName } from "../_type_name.ts";
import { slabAlloc } from "../_slab.ts";

/** Bytes hashed per call into the core; larger inputs are streamed. */
const CHUNK_BYTES = 65536;
/** Bytes in a SHA-256 digest. */
const DIGEST_BYTES = 32;

interface Scratch {
  readonly exports: CoreExports;
  readonly memory: WebAssembly.Memory;
  /** Input region, CHUNK_BYTES long. */
  readonly data: number;
  /** The context slot of the streaming hashes, ctxBytes long. */
  readonly ctx: number;
  /** A context for one-shot hashes above CHUNK_BYTES, so they never evict the slot. */
  readonly oneShotCtx: number;
  readonly ctxBytes: number;
  /** Where the core writes a digest, DIGEST_BYTES long. */
  readonly out: number;
  /** View of the whole memory; replaced when memory growth detaches it. */
  heap: Uint8Array;
  /** View of the context within `heap`. */
  ctxView: Uint8Array;
}

let scratch: Scratch | undefined;

function openScratch(): Scratch {
  const { exports, memory } = sharedCore();
  const ctxBytes = exports.sha256_ctx_size() >>> 0;
  // One block: the input region, two contexts (16-byte aligned), then the digest.
  const ctxStride = (ctxBytes + 15) & ~15;
  const ctxOffset = CHUNK_BYTES;
  const outOffset = ctxOffset + 2 * ctxStride;
  // The shared core's memory is nearly empty: this first allocation cannot
  // run out (a trap here would be a bug, and is not caught).
  const base = exports.alloc(outOffset + DIGEST_BYTES) >>> 0;
  const ctx = base + ctxOffset;
  const heap = new Uint8Array(memory.buffer);
  scratch = {
    exports,
    memory,
    data: base,
    ctx,
    oneShotCtx: ctx + ctxStride,
    ctxBytes,
    out: base + outOffset,
    heap,
    ctxView: heap.subarray(ctx, ctx + ctxBytes),
  };
  return scratch;
}

/** The scratch region, with views that are valid until the next allocation. */
function current(): Scratch {
  const s = scratch ?? openScratch();
  // Growing the memory (any allocation in the shared core) detaches old views.
  if (s.heap.byteLength === 0) {
    s.heap = new Uint8Array(s.memory.buffer);
    s.ctxView = s.heap.subarray(s.ctx, s.ctx + s.ctxBytes);
  }
  return s;
}

function checkBytes(data: unknown, action: string): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${action}: data must be a Uint8Array, got ${typeName(data)}`);
  }
}

/** Feeds `data` to the context at `ctx`, through the input region chunk by chunk. */
function feed(s: Scratch, ctx: number, data: Uint8Array): void {
  const length = data.length;
  if (length <= CHUNK_BYTES) {
    s.heap.set(data, s.data);
    s.exports.sha256_update(ctx, s.data, length);
    return;
  }
  for (let offset = 0; offset < length; offset += CHUNK_BYTES) {
    const chunk = data.subarray(offset, offset + CHUNK_BYTES);
    s.heap.set(chunk, s.data);
    s.exports.sha256_update(ctx, s.data, chunk.length);
  }
}

/** Hashes `data` and leaves the digest at `s.out`. */
function digestInto(s: Scratch, data: Uint8Array): void {
  if (data.length <= CHUNK_BYTES) {
    s.heap.set(data, s.data);
    s.exports.sha256_digest(s.data, data.length, s.out);
  } else {
    s.exports.sha256_init(s.oneShotCtx);
    feed(s, s.oneShotCtx, data);
    s.exports.sha256_final(s.oneShotCtx, s.out);
  }
}

const HEX: readonly string[] = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);

/** The digest at `s.out` as 64 lowercase hex digits. */
function outHex(s: Scratch): string {
  const heap = s.heap;
  let hex = "";
  for (let i = s.out; i < s.out + DIGEST_BYTES; i++) hex += HEX[heap[i] as number];
  return hex;
}

/**
 * The SHA-256 digest of `a` followed by `b`, in one call into the core when
 * they fit its input region together (what `new Sha256().update(a)
 * .update(b).digest()` gives, without the streaming state's bookkeeping).
 *
 * @param a The first bytes.
 * @param b The bytes after them.
 * @returns A new 32-byte `Uint8Array` (on V8, carved from a shared slab).
 * @throws {TypeError} If `a` or `b` is not a `Uint8Array`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sha256, sha256Concat } from "./sha256.ts";
 *
 * const ab = new TextEncoder().encode("abc");
 * assert.deepEqual(sha256Concat(ab.subarray(0, 1), ab.subarray(1)), sha256(ab));
 * ```
 */
export function sha256Concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  checkBytes(a, "compute SHA-256");
  checkBytes(b, "compute SHA-256");
  const s = current();
  const n = a.length + b.length;
  if (n <= CHUNK_BYTES) {
    s.heap.set(a, s.data);
    s.heap.set(b, s.data + a.length);
    s.exports.sha256_digest(s.data, n, s.out);
  } else {
    s.exports.sha256_init(s.oneShotCtx);
    feed(s, s.oneShotCtx, a);
    feed(s, s.oneShotCtx, b);
    s.exports.sha256_final(s.oneShotCtx, s.out);
  }
  const out = slabAlloc(DIGEST_BYTES);
  out.set(s.heap.subarray(s.out, s.out + DIGEST_BYTES));
  return out;
}

/**
 * Computes the SHA-256 digest of `data`.
 *
 * @param data The bytes to hash.
 * @returns A new 32-byte `Uint8Array`.
 * @throws {TypeError} If `data` is not a `Uint8Array`.
 *
 * @example Hash bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { sha256 } from "./sha256.ts";
 *
 * const digest = sha256(new TextEncoder().encode("abc"));
 * assert.equal(digest.length, 32);
 * assert.deepEqual(digest.subarray(0, 4), new Uint8Array([0xba, 0x78, 0x16, 0xbf]));
 * ```
 */
export function sha256(data: Uint8Array): Uint8Array {
  checkBytes(data, "compute SHA-256");
  const s = current();
  digestInto(s, data);
  return s.heap.slice(s.out, s.out + DIGEST_BYTES);
}

/**
 * Computes the SHA-256 digest of `data` as lowercase hex.
 *
 * @param data The bytes to hash.
 * @returns 64 lowercase hexadecimal digits.
 * @throws {TypeError} If `data` is not a `Uint8Array`.
 *
 * @example Hash bytes to hex
 * ```ts
 * import assert from "node:assert/strict";
 * import { sha256Hex } from "./sha256.ts";
 *
 * assert.equal(
 *   sha256Hex(new TextEncoder().encode("abc")),
 *   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 * );
 * ```
 */
export function sha256Hex(data: Uint8Array): string {
  checkBytes(data, "compute SHA-256");
  const s = current();
  digestInto(s, data);
  return outHex(s);
}

/**
 * A streaming SHA-256: feed input with {@link Sha256.update} in any number
 * of pieces, then read the digest once with {@link Sha256.digest} or
 * {@link Sha256.digestHex}. The digest finishes the object: further calls
 * throw, so a reused hash cannot silently continue from a padded state.
 *
 * Objects own no wasm memory (see the module doc): one dropped before its
 * digest needs no cleanup. Any number may be in progress at once; switching
 * between them costs two copies of the 104-byte state.
 *
 * @example Hash input that arrives in pieces
 * ```ts
 * import assert from "node:assert/strict";
 * import { Sha256, sha256Hex } from "./sha256.ts";
 *
 * const bytes = new TextEncoder().encode("an event log entry, then its payload");
 * const hash = new Sha256().update(bytes.subarray(0, 19)).update(bytes.subarray(19));
 * assert.equal(hash.digestHex(), sha256Hex(bytes));
 * assert.throws(() => hash.update(bytes), /already taken/);
 * ```
 */
export class Sha256 {
  /** "fresh": nothing fed yet; "live": state in the slot or in #saved; "done": digested. */
  #phase: "fresh" | "live" | "done" = "fresh";
  /** The state while another hash holds the slot; allocated on first eviction. */
  #saved: Uint8Array | undefined;

  /**
   * Feeds `data` to the hash.
   *
   * @param data The next bytes of the input.
   * @returns This object, for chaining.
   * @throws {TypeError} If `data` is not a `Uint8Array`.
   * @throws {InvalidStateError} If the digest was already taken.
   *
   * @example Feed the input in pieces
   * ```ts
   * import assert from "node:assert/strict";
   * import { Sha256, sha256Hex } from "@in-mem/core";
   *
   * const bytes = (s: string) => new TextEncoder().encode(s);
   * const hash = new Sha256();
   * assert.equal(hash.update(bytes("ab")), hash); // returns itself, for chaining
   * hash.update(new Uint8Array(0)).update(bytes("c"));
   * assert.equal(hash.digestHex(), sha256Hex(bytes("abc")));
   * ```
   */
  update(data: Uint8Array): this {
    checkBytes(data, "update the SHA-256 hash");
    const s = this.#claim("update the SHA-256 hash");
    if (data.length !== 0) feed(s, s.ctx, data);
    return this;
  }

  /**
   * Finishes the hash and returns its digest; the object cannot be used after.
   *
   * @returns A new 32-byte `Uint8Array`.
   * @throws {InvalidStateError} If the digest was already taken.
   *
   * @example The digest finishes the hash
   * ```ts
   * import assert from "node:assert/strict";
   * import { InvalidStateError, Sha256, sha256 } from "@in-mem/core";
   *
   * const data = new TextEncoder().encode("abc");
   * const hash = new Sha256().update(data);
   * const digest = hash.digest();
   * assert.equal(digest.length, 32);
   * assert.deepEqual(digest, sha256(data));
   * assert.throws(() => hash.digest(), InvalidStateError); // finished: start a new Sha256
   * ```
   */
  digest(): Uint8Array {
    const s = this.#finish("digest the SHA-256 hash");
    return s.heap.slice(s.out, s.out + DIGEST_BYTES);
  }

  /**
   * Finishes the hash and returns its digest as lowercase hex; the object
   * cannot be used after.
   *
   * @returns 64 lowercase hexadecimal digits.
   * @throws {InvalidStateError} If the digest was already taken.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Sha256 } from "@in-mem/core";
   *
   * // SHA-256 of the empty input
   * assert.equal(
   *   new Sha256().digestHex(),
   *   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
   * );
   * ```
   */
  digestHex(): string {
    return outHex(this.#finish("digest the SHA-256 hash"));
  }

  /** Makes this hash's state the one in the context slot, evicting the holder. */
  #claim(action: string): Scratch {
    if (this.#phase === "done") {
      throw new InvalidStateError(
        `Cannot ${action}: its digest was already taken; start a new Sha256`,
      );
    }
    const s = current();
    if (slotHolder !== this) {
      if (slotHolder !== undefined) slotHolder.#evict(s);
      if (this.#phase === "fresh") {
        s.exports.sha256_init(s.ctx);
        this.#phase = "live";
      } else {
        // Live and not the holder: #evict() saved the state.
        s.ctxView.set(this.#saved as Uint8Array);
      }
      slotHolder = this;
    }
    return s;
  }

  #evict(s: Scratch): void {
    this.#saved ??= new Uint8Array(s.ctxBytes);
    this.#saved.set(s.ctxView);
  }

  /** Pads and compresses the last block, leaving the digest at `s.out`. */
  #finish(action: string): Scratch {
    const s = this.#claim(action);
    s.exports.sha256_final(s.ctx, s.out);
    this.#phase = "done";
    this.#saved = undefined;
    slotHolder = undefined;
    return s;
  }
}

/** The streaming hash whose state is in the scratch context slot, if any. */
let slotHolder: Sha256 | undefined;
