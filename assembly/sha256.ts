// SHA-256 (FIPS 180-4): the hash that chains event logs and addresses content.
//
// The context lives in memory the caller provides (sha256_ctx_size() bytes),
// so the core allocates nothing and the host decides where states live; it
// holds no pointers, so the host may also copy it out and back in.
//
// Context layout (native little-endian):
//   [0, 32)    H0..H7, the chaining state, as u32
//   [32, 96)   the partial input block not yet compressed
//   [96, 104)  total input bytes so far, u64; the partial block holds
//              total % 64 of them

const STATE: usize = 0;
const BUFFER: usize = 32;
const TOTAL: usize = 96;
const CTX_BYTES: usize = 104;
const BLOCK_BYTES: usize = 64;

/** Context for the one-shot sha256_digest (wasm runs one call at a time). */
const ONE_SHOT_CTX: usize = memory.data(<i32>CTX_BYTES, 16);

// The functions of FIPS 180-4 §4.1.2.
@inline function Sigma0(x: u32): u32 {
  return rotr(x, 2) ^ rotr(x, 13) ^ rotr(x, 22);
}
@inline function Sigma1(x: u32): u32 {
  return rotr(x, 6) ^ rotr(x, 11) ^ rotr(x, 25);
}
@inline function sigma0(x: u32): u32 {
  return rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3);
}
@inline function sigma1(x: u32): u32 {
  return rotr(x, 17) ^ rotr(x, 19) ^ (x >>> 10);
}
@inline function ch(x: u32, y: u32, z: u32): u32 {
  return z ^ (x & (y ^ z));
}
@inline function maj(x: u32, y: u32, z: u32): u32 {
  return (x & y) | (z & (x | y));
}

/** Reads the big-endian u32 at `ptr + offset`. */
@inline function loadBE(ptr: usize, offset: usize): u32 {
  return bswap<u32>(load<u32>(ptr + offset));
}

/**
 * Compresses `blocks` 64-byte blocks at `ptr` into the state at `ctx`.
 *
 * The 64 rounds are written out: round i uses the working variables a..h
 * rotated by i places, so no values move between rounds, and the message
 * schedule is a ring of 16 locals updated in place (W[t] overwrites W[t-16]).
 * The round constants are the K of FIPS 180-4 §4.2.2, inline.
 */
function compress(ctx: usize, ptr: usize, blocks: usize): void {
  let s0 = load<u32>(ctx, 0);
  let s1 = load<u32>(ctx, 4);
  let s2 = load<u32>(ctx, 8);
  let s3 = load<u32>(ctx, 12);
  let s4 = load<u32>(ctx, 16);
  let s5 = load<u32>(ctx, 20);
  let s6 = load<u32>(ctx, 24);
  let s7 = load<u32>(ctx, 28);
  let p = ptr;
  for (let n = blocks; n > 0; n--) {
    let a = s0, b = s1, c = s2, d = s3, e = s4, f = s5, g = s6, h = s7;
    let w0 = loadBE(p, 0), w1 = loadBE(p, 4), w2 = loadBE(p, 8), w3 = loadBE(p, 12);
    let w4 = loadBE(p, 16), w5 = loadBE(p, 20), w6 = loadBE(p, 24), w7 = loadBE(p, 28);
    let w8 = loadBE(p, 32), w9 = loadBE(p, 36), w10 = loadBE(p, 40), w11 = loadBE(p, 44);
    let w12 = loadBE(p, 48), w13 = loadBE(p, 52), w14 = loadBE(p, 56), w15 = loadBE(p, 60);
    h += Sigma1(e) + ch(e, f, g) + 0x428a2f98 + w0; d += h; h += Sigma0(a) + maj(a, b, c);
    g += Sigma1(d) + ch(d, e, f) + 0x71374491 + w1; c += g; g += Sigma0(h) + maj(h, a, b);
    f += Sigma1(c) + ch(c, d, e) + 0xb5c0fbcf + w2; b += f; f += Sigma0(g) + maj(g, h, a);
    e += Sigma1(b) + ch(b, c, d) + 0xe9b5dba5 + w3; a += e; e += Sigma0(f) + maj(f, g, h);
    d += Sigma1(a) + ch(a, b, c) + 0x3956c25b + w4; h += d; d += Sigma0(e) + maj(e, f, g);
    c += Sigma1(h) + ch(h, a, b) + 0x59f111f1 + w5; g += c; c += Sigma0(d) + maj(d, e, f);
    b += Sigma1(g) + ch(g, h, a) + 0x923f82a4 + w6; f += b; b += Sigma0(c) + maj(c, d, e);
    a += Sigma1(f) + ch(f, g, h) + 0xab1c5ed5 + w7; e += a; a += Sigma0(b) + maj(b, c, d);
    h += Sigma1(e) + ch(e, f, g) + 0xd807aa98 + w8; d += h; h += Sigma0(a) + maj(a, b, c);
    g += Sigma1(d) + ch(d, e, f) + 0x12835b01 + w9; c += g; g += Sigma0(h) + maj(h, a, b);
    f += Sigma1(c) + ch(c, d, e) + 0x243185be + w10; b += f; f += Sigma0(g) + maj(g, h, a);
    e += Sigma1(b) + ch(b, c, d) + 0x550c7dc3 + w11; a += e; e += Sigma0(f) + maj(f, g, h);
    d += Sigma1(a) + ch(a, b, c) + 0x72be5d74 + w12; h += d; d += Sigma0(e) + maj(e, f, g);
    c += Sigma1(h) + ch(h, a, b) + 0x80deb1fe + w13; g += c; c += Sigma0(d) + maj(d, e, f);
    b += Sigma1(g) + ch(g, h, a) + 0x9bdc06a7 + w14; f += b; b += Sigma0(c) + maj(c, d, e);
    a += Sigma1(f) + ch(f, g, h) + 0xc19bf174 + w15; e += a; a += Sigma0(b) + maj(b, c, d);
    w0 += sigma1(w14) + w9 + sigma0(w1);
    h += Sigma1(e) + ch(e, f, g) + 0xe49b69c1 + w0; d += h; h += Sigma0(a) + maj(a, b, c);
    w1 += sigma1(w15) + w10 + sigma0(w2);
    g += Sigma1(d) + ch(d, e, f) + 0xefbe4786 + w1; c += g; g += Sigma0(h) + maj(h, a, b);
    w2 += sigma1(w0) + w11 + sigma0(w3);
    f += Sigma1(c) + ch(c, d, e) + 0x0fc19dc6 + w2; b += f; f += Sigma0(g) + maj(g, h, a);
    w3 += sigma1(w1) + w12 + sigma0(w4);
    e += Sigma1(b) + ch(b, c, d) + 0x240ca1cc + w3; a += e; e += Sigma0(f) + maj(f, g, h);
    w4 += sigma1(w2) + w13 + sigma0(w5);
    d += Sigma1(a) + ch(a, b, c) + 0x2de92c6f + w4; h += d; d += Sigma0(e) + maj(e, f, g);
    w5 += sigma1(w3) + w14 + sigma0(w6);
    c += Sigma1(h) + ch(h, a, b) + 0x4a7484aa + w5; g += c; c += Sigma0(d) + maj(d, e, f);
    w6 += sigma1(w4) + w15 + sigma0(w7);
    b += Sigma1(g) + ch(g, h, a) + 0x5cb0a9dc + w6; f += b; b += Sigma0(c) + maj(c, d, e);
    w7 += sigma1(w5) + w0 + sigma0(w8);
    a += Sigma1(f) + ch(f, g, h) + 0x76f988da + w7; e += a; a += Sigma0(b) + maj(b, c, d);
    w8 += sigma1(w6) + w1 + sigma0(w9);
    h += Sigma1(e) + ch(e, f, g) + 0x983e5152 + w8; d += h; h += Sigma0(a) + maj(a, b, c);
    w9 += sigma1(w7) + w2 + sigma0(w10);
    g += Sigma1(d) + ch(d, e, f) + 0xa831c66d + w9; c += g; g += Sigma0(h) + maj(h, a, b);
    w10 += sigma1(w8) + w3 + sigma0(w11);
    f += Sigma1(c) + ch(c, d, e) + 0xb00327c8 + w10; b += f; f += Sigma0(g) + maj(g, h, a);
    w11 += sigma1(w9) + w4 + sigma0(w12);
    e += Sigma1(b) + ch(b, c, d) + 0xbf597fc7 + w11; a += e; e += Sigma0(f) + maj(f, g, h);
    w12 += sigma1(w10) + w5 + sigma0(w13);
    d += Sigma1(a) + ch(a, b, c) + 0xc6e00bf3 + w12; h += d; d += Sigma0(e) + maj(e, f, g);
    w13 += sigma1(w11) + w6 + sigma0(w14);
    c += Sigma1(h) + ch(h, a, b) + 0xd5a79147 + w13; g += c; c += Sigma0(d) + maj(d, e, f);
    w14 += sigma1(w12) + w7 + sigma0(w15);
    b += Sigma1(g) + ch(g, h, a) + 0x06ca6351 + w14; f += b; b += Sigma0(c) + maj(c, d, e);
    w15 += sigma1(w13) + w8 + sigma0(w0);
    a += Sigma1(f) + ch(f, g, h) + 0x14292967 + w15; e += a; a += Sigma0(b) + maj(b, c, d);
    w0 += sigma1(w14) + w9 + sigma0(w1);
    h += Sigma1(e) + ch(e, f, g) + 0x27b70a85 + w0; d += h; h += Sigma0(a) + maj(a, b, c);
    w1 += sigma1(w15) + w10 + sigma0(w2);
    g += Sigma1(d) + ch(d, e, f) + 0x2e1b2138 + w1; c += g; g += Sigma0(h) + maj(h, a, b);
    w2 += sigma1(w0) + w11 + sigma0(w3);
    f += Sigma1(c) + ch(c, d, e) + 0x4d2c6dfc + w2; b += f; f += Sigma0(g) + maj(g, h, a);
    w3 += sigma1(w1) + w12 + sigma0(w4);
    e += Sigma1(b) + ch(b, c, d) + 0x53380d13 + w3; a += e; e += Sigma0(f) + maj(f, g, h);
    w4 += sigma1(w2) + w13 + sigma0(w5);
    d += Sigma1(a) + ch(a, b, c) + 0x650a7354 + w4; h += d; d += Sigma0(e) + maj(e, f, g);
    w5 += sigma1(w3) + w14 + sigma0(w6);
    c += Sigma1(h) + ch(h, a, b) + 0x766a0abb + w5; g += c; c += Sigma0(d) + maj(d, e, f);
    w6 += sigma1(w4) + w15 + sigma0(w7);
    b += Sigma1(g) + ch(g, h, a) + 0x81c2c92e + w6; f += b; b += Sigma0(c) + maj(c, d, e);
    w7 += sigma1(w5) + w0 + sigma0(w8);
    a += Sigma1(f) + ch(f, g, h) + 0x92722c85 + w7; e += a; a += Sigma0(b) + maj(b, c, d);
    w8 += sigma1(w6) + w1 + sigma0(w9);
    h += Sigma1(e) + ch(e, f, g) + 0xa2bfe8a1 + w8; d += h; h += Sigma0(a) + maj(a, b, c);
    w9 += sigma1(w7) + w2 + sigma0(w10);
    g += Sigma1(d) + ch(d, e, f) + 0xa81a664b + w9; c += g; g += Sigma0(h) + maj(h, a, b);
    w10 += sigma1(w8) + w3 + sigma0(w11);
    f += Sigma1(c) + ch(c, d, e) + 0xc24b8b70 + w10; b += f; f += Sigma0(g) + maj(g, h, a);
    w11 += sigma1(w9) + w4 + sigma0(w12);
    e += Sigma1(b) + ch(b, c, d) + 0xc76c51a3 + w11; a += e; e += Sigma0(f) + maj(f, g, h);
    w12 += sigma1(w10) + w5 + sigma0(w13);
    d += Sigma1(a) + ch(a, b, c) + 0xd192e819 + w12; h += d; d += Sigma0(e) + maj(e, f, g);
    w13 += sigma1(w11) + w6 + sigma0(w14);
    c += Sigma1(h) + ch(h, a, b) + 0xd6990624 + w13; g += c; c += Sigma0(d) + maj(d, e, f);
    w14 += sigma1(w12) + w7 + sigma0(w15);
    b += Sigma1(g) + ch(g, h, a) + 0xf40e3585 + w14; f += b; b += Sigma0(c) + maj(c, d, e);
    w15 += sigma1(w13) + w8 + sigma0(w0);
    a += Sigma1(f) + ch(f, g, h) + 0x106aa070 + w15; e += a; a += Sigma0(b) + maj(b, c, d);
    w0 += sigma1(w14) + w9 + sigma0(w1);
    h += Sigma1(e) + ch(e, f, g) + 0x19a4c116 + w0; d += h; h += Sigma0(a) + maj(a, b, c);
    w1 += sigma1(w15) + w10 + sigma0(w2);
    g += Sigma1(d) + ch(d, e, f) + 0x1e376c08 + w1; c += g; g += Sigma0(h) + maj(h, a, b);
    w2 += sigma1(w0) + w11 + sigma0(w3);
    f += Sigma1(c) + ch(c, d, e) + 0x2748774c + w2; b += f; f += Sigma0(g) + maj(g, h, a);
    w3 += sigma1(w1) + w12 + sigma0(w4);
    e += Sigma1(b) + ch(b, c, d) + 0x34b0bcb5 + w3; a += e; e += Sigma0(f) + maj(f, g, h);
    w4 += sigma1(w2) + w13 + sigma0(w5);
    d += Sigma1(a) + ch(a, b, c) + 0x391c0cb3 + w4; h += d; d += Sigma0(e) + maj(e, f, g);
    w5 += sigma1(w3) + w14 + sigma0(w6);
    c += Sigma1(h) + ch(h, a, b) + 0x4ed8aa4a + w5; g += c; c += Sigma0(d) + maj(d, e, f);
    w6 += sigma1(w4) + w15 + sigma0(w7);
    b += Sigma1(g) + ch(g, h, a) + 0x5b9cca4f + w6; f += b; b += Sigma0(c) + maj(c, d, e);
    w7 += sigma1(w5) + w0 + sigma0(w8);
    a += Sigma1(f) + ch(f, g, h) + 0x682e6ff3 + w7; e += a; a += Sigma0(b) + maj(b, c, d);
    w8 += sigma1(w6) + w1 + sigma0(w9);
    h += Sigma1(e) + ch(e, f, g) + 0x748f82ee + w8; d += h; h += Sigma0(a) + maj(a, b, c);
    w9 += sigma1(w7) + w2 + sigma0(w10);
    g += Sigma1(d) + ch(d, e, f) + 0x78a5636f + w9; c += g; g += Sigma0(h) + maj(h, a, b);
    w10 += sigma1(w8) + w3 + sigma0(w11);
    f += Sigma1(c) + ch(c, d, e) + 0x84c87814 + w10; b += f; f += Sigma0(g) + maj(g, h, a);
    w11 += sigma1(w9) + w4 + sigma0(w12);
    e += Sigma1(b) + ch(b, c, d) + 0x8cc70208 + w11; a += e; e += Sigma0(f) + maj(f, g, h);
    w12 += sigma1(w10) + w5 + sigma0(w13);
    d += Sigma1(a) + ch(a, b, c) + 0x90befffa + w12; h += d; d += Sigma0(e) + maj(e, f, g);
    w13 += sigma1(w11) + w6 + sigma0(w14);
    c += Sigma1(h) + ch(h, a, b) + 0xa4506ceb + w13; g += c; c += Sigma0(d) + maj(d, e, f);
    w14 += sigma1(w12) + w7 + sigma0(w15);
    b += Sigma1(g) + ch(g, h, a) + 0xbef9a3f7 + w14; f += b; b += Sigma0(c) + maj(c, d, e);
    w15 += sigma1(w13) + w8 + sigma0(w0);
    a += Sigma1(f) + ch(f, g, h) + 0xc67178f2 + w15; e += a; a += Sigma0(b) + maj(b, c, d);
    s0 += a;
    s1 += b;
    s2 += c;
    s3 += d;
    s4 += e;
    s5 += f;
    s6 += g;
    s7 += h;
    p += BLOCK_BYTES;
  }
  store<u32>(ctx, s0, 0);
  store<u32>(ctx, s1, 4);
  store<u32>(ctx, s2, 8);
  store<u32>(ctx, s3, 12);
  store<u32>(ctx, s4, 16);
  store<u32>(ctx, s5, 20);
  store<u32>(ctx, s6, 24);
  store<u32>(ctx, s7, 28);
}

/** Bytes the caller must provide for one context. */
export function sha256_ctx_size(): usize {
  return CTX_BYTES;
}

/** Starts a new hash in the context at `ctx` (FIPS 180-4 §5.3.3). */
export function sha256_init(ctx: usize): void {
  store<u32>(ctx + STATE, 0x6a09e667, 0);
  store<u32>(ctx + STATE, 0xbb67ae85, 4);
  store<u32>(ctx + STATE, 0x3c6ef372, 8);
  store<u32>(ctx + STATE, 0xa54ff53a, 12);
  store<u32>(ctx + STATE, 0x510e527f, 16);
  store<u32>(ctx + STATE, 0x9b05688c, 20);
  store<u32>(ctx + STATE, 0x1f83d9ab, 24);
  store<u32>(ctx + STATE, 0x5be0cd19, 28);
  store<u64>(ctx + TOTAL, 0);
}

/** Feeds `len` bytes at `ptr` to the hash in `ctx`. */
export function sha256_update(ctx: usize, ptr: usize, len: usize): void {
  const total = load<u64>(ctx + TOTAL);
  store<u64>(ctx + TOTAL, total + <u64>len);
  let used = <usize>(total & 63);
  let p = ptr;
  let n = len;
  if (used != 0) {
    const take = min(BLOCK_BYTES - used, n);
    memory.copy(ctx + BUFFER + used, p, take);
    used += take;
    p += take;
    n -= take;
    if (used < BLOCK_BYTES) return;
    compress(ctx, ctx + BUFFER, 1);
  }
  // Whole blocks are compressed straight from the input, without a copy.
  const blocks = n >>> 6;
  if (blocks != 0) compress(ctx, p, blocks);
  p += blocks << 6;
  n &= 63;
  if (n != 0) memory.copy(ctx + BUFFER, p, n);
}

/**
 * Pads, compresses the last block(s) and writes the 32-byte digest to `out`
 * (FIPS 180-4 §5.1.1). The context must be initialised again before reuse.
 */
export function sha256_final(ctx: usize, out: usize): void {
  const total = load<u64>(ctx + TOTAL);
  const buf = ctx + BUFFER;
  let used = <usize>(total & 63);
  store<u8>(buf + used, 0x80);
  used++;
  if (used > 56) {
    memory.fill(buf + used, 0, BLOCK_BYTES - used);
    compress(ctx, buf, 1);
    used = 0;
  }
  memory.fill(buf + used, 0, 56 - used);
  store<u64>(buf, bswap<u64>(total << 3), 56);
  compress(ctx, buf, 1);
  for (let i: usize = 0; i < 32; i += 4) {
    store<u32>(out + i, bswap<u32>(load<u32>(ctx + STATE + i)));
  }
}

/** Writes the SHA-256 of the `len` bytes at `ptr` to the 32 bytes at `out`. */
export function sha256_digest(ptr: usize, len: usize, out: usize): void {
  sha256_init(ONE_SHOT_CTX);
  sha256_update(ONE_SHOT_CTX, ptr, len);
  sha256_final(ONE_SHOT_CTX, out);
}
