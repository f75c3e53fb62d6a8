// Products with x8 packed weights (quant/packed_x8.h) on AMX tiles, up to 16 tokens per call
// (prefill and batched decode), for every packed format: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
// Q6_K. Compiled twice (CMakeLists.txt): as the `amx` level over the avx512 level's table, with the
// tile instructions, and as `amx_emu` over the avx2 level's table, on amx_tiles.h's scalar model of
// the tile unit, so that machines without AMX test every layout and shape here bit for bit.
//
// One block b (a K-quant sub-block) of a pair of 8-row groups is one tile product (16 x 16 x 32):
//   A (tmm2 / tmm3): nt token rows x the block's 32 int8 activation quants: for the x8 and 16-bit
//                    kernels from a 512-byte panel per block (tile_acts, built once per product
//                    and tile), for the K-quants in place (token rows X8Act::q_stride apart);
//   B (tmm4 / tmm5): 8 rows k (elements 4k .. 4k + 3) x 64 bytes, group 0's unpacked register k
//                    (byte 4r + i: element 4k + i of row r) then group 1's: the x8 element map is
//                    already the tile's 4-byte (k, n) interleave;
//   C (tmm0 / tmm1): nt x 16 int32, the exact block sums S of 16 rows for each token.
// Q6_K's sub-blocks of 16 are products of K = 16 (A: nt x 16 bytes, B: 4 rows).
// The rest is the canonical order (quant_dot.h, x8 products), exact integer sums per block or
// super-block, then the same float ops in the same order, so every output has the bits of the
// other levels. Consecutive blocks use separate tiles, so one product overlaps the next; the x8
// and 16-bit kernels run a pair's blocks in phases (kPhase) and keep its 16 x 16 sums in registers
// (Acc16). Calls of fewer than kMinTokens tokens (decode, small batches) run the base level's
// kernels.
// matmul_precise's 16-bit activations (quant_gemm_q16.cc) take two tile products per block, one
// per byte of the quants (gemm_q16_amx).
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "kernels/cpu/amx_tiles.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/x8_format.h"

#ifndef LLMASOS_AMX_BASE
#error "define LLMASOS_AMX_BASE, the level whose table the AMX level extends"
#endif

namespace llmasos::cpu::LLMASOS_AMX_BASE { const KernelTable* table(); }

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

constexpr int kTokens = 16;    // rows of the A and C tiles: tokens per call
// Below kMinTokens tokens a tile row per token wastes most of each tile product, and the base
// level's kernels are faster: measured on a Xeon (Emerald Rapids), 2 threads, amx / avx512 in one
// run, at T = 4: 0.70-0.85 (8-bit Q4_1 / Q8_0 products), 0.61-0.75 (16-bit Q/K/V and head); at
// T = 8: 1.02-1.38 and 0.99-1.36.
constexpr int kMinTokens = 8;

const KernelTable& base() { return *LLMASOS_AMX_BASE::table(); }

// kb: elements per tile product (32; Q6_K's sub-blocks: 16).
TileConfig config_for(int nt, int kb) {
  TileConfig c;
  for (int i : {0, 1}) c.rows[i] = static_cast<uint8_t>(nt), c.colsb[i] = 64;   // nt x 16 int32
  for (int i : {2, 3}) c.rows[i] = static_cast<uint8_t>(nt), c.colsb[i] = static_cast<uint16_t>(kb);  // nt x kb int8
  for (int i : {4, 5}) c.rows[i] = static_cast<uint8_t>(kb / 4), c.colsb[i] = 64;  // kb / 4 x (16 rows x 4)
  return c;
}

// The B operand of one block for a pair of groups (b1 == nullptr: no second group, zero weights).
template <GgmlType T>
inline void stage_weights(const uint8_t* b0, const uint8_t* b1, uint8_t* dst) {
  using F = X8Format<T>;
#if defined(__AVX512F__) && defined(__AVX512BW__)
  if constexpr (!F::kQh) {
    // Q4_0, Q4_1, Q8_0 at the amx level: both groups' register k as one zmm (a 64-byte B row),
    // unpacked in place: 8 zmm stores where the ymm form below takes 16, and half the unpacking
    // ops. The same bytes.
    auto both = [&](uint64_t at) {
      const __m512i lo = _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + at)));
      return b1 ? _mm512_inserti64x4(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + at)), 1) : lo;
    };
    if constexpr (F::kQ8) {
      for (int k = 0; k < 8; ++k) _mm512_store_si512(dst + 64 * k, both(F::kQs + 32 * k));
    } else {
      const __m512i m4 = _mm512_set1_epi8(0x0f);
      for (int j = 0; j < 4; ++j) {
        const __m512i v = both(F::kQs + 32 * j);
        _mm512_store_si512(dst + 64 * j, _mm512_and_si512(v, m4));
        _mm512_store_si512(dst + 64 * (j + 4), _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
      }
    }
    return;
  }
#endif
  __m256i w0[8], w1[8];
  if constexpr (F::kQ8) {
    for (int k = 0; k < 8; ++k) {
      w0[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + F::kQs + 32 * k));
      w1[k] = b1 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + F::kQs + 32 * k)) : _mm256_setzero_si256();
    }
  } else {
    unpack_x8<T>(b0, w0);
    if (b1) {
      unpack_x8<T>(b1, w1);
    } else {
      for (int k = 0; k < 8; ++k) w1[k] = _mm256_setzero_si256();
    }
  }
  for (int k = 0; k < 8; ++k) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 64 * k), w0[k]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 64 * k + 32), w1[k]);
  }
}

// The 16 output rows of a pair of groups as one vector (lane i: row i; group 1 in lanes 8..15): one
// zmm at the amx level (AVX-512 base), two ymm at amx_emu (AVX2 base). The float and integer steps
// per lane are the same either way, so both give the canonical order's bits; the 512-bit form
// halves the vector work that follows each tile product (load S, scale, accumulate).
#if defined(__AVX512F__) && defined(__AVX512BW__)
struct F16r { __m512 v; };
struct I16r { __m512i v; };
inline F16r loadf(const float* p) { return {_mm512_load_ps(p)}; }
inline void storef(float* p, F16r x) { _mm512_store_ps(p, x.v); }
inline void storeuf(float* p, F16r x) { _mm512_storeu_ps(p, x.v); }
inline I16r loadi(const int32_t* p) { return {_mm512_load_si512(p)}; }
inline void storei(int32_t* p, I16r x) { _mm512_store_si512(p, x.v); }
inline F16r splat(float x) { return {_mm512_set1_ps(x)}; }
inline I16r splati(int32_t x) { return {_mm512_set1_epi32(x)}; }
inline F16r operator+(F16r a, F16r b) { return {_mm512_add_ps(a.v, b.v)}; }
inline F16r operator-(F16r a, F16r b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline F16r operator*(F16r a, F16r b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline F16r fmadd(F16r a, F16r b, F16r c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline I16r operator+(I16r a, I16r b) { return {_mm512_add_epi32(a.v, b.v)}; }
inline I16r operator-(I16r a, I16r b) { return {_mm512_sub_epi32(a.v, b.v)}; }
inline I16r mullo(I16r a, I16r b) { return {_mm512_mullo_epi32(a.v, b.v)}; }
inline F16r to_float(I16r a) { return {_mm512_cvtepi32_ps(a.v)}; }
inline I16r shl8(I16r a) { return {_mm512_slli_epi32(a.v, 8)}; }
// lo: 8 values of group 0, hi: group 1's.
inline I16r join(__m256i lo, __m256i hi) { return {_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)}; }
// Row r of group h: the int16 pair (2 r, 2 r + 1) of p[h] dotted with the int16 pair of `pair`.
inline I16r madd_pairs(const __m256i p[2], int32_t pair) {
  return {_mm512_madd_epi16(_mm512_inserti64x4(_mm512_castsi256_si512(p[0]), p[1], 1), _mm512_set1_epi32(pair))};
}
inline F16r halves16(const uint8_t* b0, const uint8_t* b1, uint64_t at) {
  const __m128i h0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + at));
  const __m128i h1 = b1 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(b1 + at)) : _mm_setzero_si128();
  return {_mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(h0), h1, 1))};
}
#else
struct F16r { __m256 lo, hi; };
struct I16r { __m256i lo, hi; };
inline F16r loadf(const float* p) { return {_mm256_load_ps(p), _mm256_load_ps(p + 8)}; }
inline void storef(float* p, F16r x) { _mm256_store_ps(p, x.lo); _mm256_store_ps(p + 8, x.hi); }
inline void storeuf(float* p, F16r x) { _mm256_storeu_ps(p, x.lo); _mm256_storeu_ps(p + 8, x.hi); }
inline I16r loadi(const int32_t* p) {
  return {_mm256_load_si256(reinterpret_cast<const __m256i*>(p)), _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 8))};
}
inline void storei(int32_t* p, I16r x) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(p), x.lo);
  _mm256_store_si256(reinterpret_cast<__m256i*>(p + 8), x.hi);
}
inline F16r splat(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
inline I16r splati(int32_t x) { return {_mm256_set1_epi32(x), _mm256_set1_epi32(x)}; }
inline F16r operator+(F16r a, F16r b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
inline F16r operator-(F16r a, F16r b) { return {_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }
inline F16r operator*(F16r a, F16r b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
inline F16r fmadd(F16r a, F16r b, F16r c) {
  return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
inline I16r operator+(I16r a, I16r b) { return {_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)}; }
inline I16r operator-(I16r a, I16r b) { return {_mm256_sub_epi32(a.lo, b.lo), _mm256_sub_epi32(a.hi, b.hi)}; }
inline I16r mullo(I16r a, I16r b) { return {_mm256_mullo_epi32(a.lo, b.lo), _mm256_mullo_epi32(a.hi, b.hi)}; }
inline F16r to_float(I16r a) { return {_mm256_cvtepi32_ps(a.lo), _mm256_cvtepi32_ps(a.hi)}; }
inline I16r shl8(I16r a) { return {_mm256_slli_epi32(a.lo, 8), _mm256_slli_epi32(a.hi, 8)}; }
inline I16r join(__m256i lo, __m256i hi) { return {lo, hi}; }
inline I16r madd_pairs(const __m256i p[2], int32_t pair) {
  const __m256i b = _mm256_set1_epi32(pair);
  return {_mm256_madd_epi16(p[0], b), _mm256_madd_epi16(p[1], b)};
}
inline F16r halves16(const uint8_t* b0, const uint8_t* b1, uint64_t at) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + at))),
          b1 ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b1 + at))) : _mm256_setzero_ps()};
}
#endif

// Block b of an x8 group of format T (nullptr for the missing second group of a pair).
template <GgmlType T>
inline const uint8_t* x8_block(const uint8_t* g, int64_t b) {
  return g ? g + static_cast<uint64_t>(b) * X8Format<T>::kBytes : nullptr;
}

// The per-block activation values of a token tile, block-major: d[16 b + t], s[16 b + t] (the _1
// formats' min terms) and off[16 b + t] = kOff * sum (the _0 formats), zero where unused and for
// tokens past the tile's. Read in place (token-major, X8Act), each value cost an address
// computation per token and block, and the vector work after each tile product ran at half the
// rate it runs at with these tables.
struct Side {
  const float* d;
  const float* s;
  const int32_t* off;
};

// The 16 output rows x 16 token rows of a pair of groups, accumulated in registers (one zmm per
// token at the amx level). Tokens past nt take zero scales, so the loops need no bound and are
// unrolled whole; their rows are never stored.
struct Acc16 {
  F16r acc[kTokens];
  Acc16() {
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) acc[t] = splat(0.0f);
  }
  // acc = fma(dw * dx, float(S - off * sum), acc) for block b's sums S[16 t + i] (canonical order);
  // with Sh (the 16-bit kernel's high-byte sums, nullptr for the 8-bit ones), S + 256 Sh: added
  // here, as each row is loaded, rather than in a pass that stores S again (qkv and head products
  // 3-6% faster, bench/amx_ab.sh).
  template <GgmlType T>
  inline void scale(const uint8_t* b0, const uint8_t* b1, const int32_t* S, const int32_t* Sh, const Side& sd,
                    int64_t b) {
    const F16r dw = halves16(b0, b1, 0);
    const float* dx = sd.d + kTokens * b;
    const int32_t* off = sd.off + kTokens * b;
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) {
      I16r s = loadi(S + 16 * t);
      if (Sh) s = s + shl8(loadi(Sh + 16 * t));
      if constexpr (X8Format<T>::kOff != 0) s = s - splati(off[t]);
      acc[t] = fmadd(dw * splat(dx[t]), to_float(s), acc[t]);
    }
  }
  // The _1 formats' min terms: their own accumulator over the blocks in order, then acc + accm.
  template <GgmlType T>
  inline void add_mins(const uint8_t* g0, const uint8_t* g1, const Side& sd, int64_t nb) {
    F16r accm[kTokens];
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) accm[t] = splat(0.0f);
    for (int64_t b = 0; b < nb; ++b) {
      const F16r mw = halves16(x8_block<T>(g0, b), x8_block<T>(g1, b), X8Format<T>::kM);
      const float* sx = sd.s + kTokens * b;
#pragma GCC unroll 16
      for (int t = 0; t < kTokens; ++t) accm[t] = fmadd(mw, splat(sx[t]), accm[t]);
    }
#pragma GCC unroll 16
    for (int t = 0; t < kTokens; ++t) acc[t] = acc[t] + accm[t];
  }
  void store(float* out, int n) const {
    for (int t = 0; t < n; ++t) storef(out + 16 * t, acc[t]);
  }
};

// Asks for blocks b0 .. b0 + nc - 1 of the next pair of groups (gn, nullptr when there is none;
// its second group gs bytes on, gs 0 when there is none) ahead of use. At 16 tokens a pair's
// products take about as long as its weights take to come from memory, and the hardware
// prefetchers, which stop at each 4 KB page, left most of that wait exposed: asked for one pair
// ahead, the 16-sequence decode step of the default model fell 12% (21.3 -> 18.8 ms, with and
// without in one process, interleaved; gate_up about 214 -> 176 us a layer, the head 3.7 -> 3.1 ms).
inline void prefetch_blocks(const uint8_t* gn, uint64_t gs, int64_t b0, int nc, uint64_t block_bytes) {
  if (!gn) return;
  for (int h = 0; h < (gs ? 2 : 1); ++h) {
    const uint8_t* p = gn + h * gs + static_cast<uint64_t>(b0) * block_bytes;
    for (uint64_t i = 0; i < static_cast<uint64_t>(nc) * block_bytes; i += 64) __builtin_prefetch(p + i);
  }
}

// Blocks per phase of the x8 and 16-bit tile kernels: a phase stages the B operands of kPhase
// blocks (vector stores), runs their tile products (tile loads, tile stores of the sums), then
// scales the sums. A tile load is not forwarded from the store buffer, nor a vector load from a
// tile store, so each kind in a run of its own waits on the other's stores once per phase rather
// than once per block (against 4 blocks, 2 ran the default model's products 5-13% slower, 8 2-7%).
constexpr int kPhase = 4;

// The walk every tile kernel shares: tiles configured for nt tokens and products of kKb elements,
// groups taken in pairs (the last one alone when ng is odd), pair(g0, g1, n, acc, gn, gn2) filling
// acc[16 t + i] for output rows 8 g + i of token t0 + t (gn: the next pair's first group, for
// prefetch_blocks, nullptr at the call's last pair; gn2: whether it has a second), then the rows
// that exist stored.
template <int kKb = 32, class Pair>
void run_pairs(int64_t ng, int64_t rows, const uint8_t* w, uint64_t gs, int64_t nt, float* y,
               int64_t t0, int64_t y_stride, const Pair& pair) {
  const int n = static_cast<int>(nt);  // <= kTokens: the table's x8_tokens
  const TileConfig cfg = config_for(n, kKb);
  LLMASOS_TILE_CONFIG(&cfg);
  alignas(64) float acc[kTokens * 16];
  for (int64_t g = 0; g < ng; g += 2) {
    const uint8_t* g0 = w + static_cast<uint64_t>(g) * gs;
    const uint8_t* g1 = g + 1 < ng ? g0 + gs : nullptr;
    pair(g0, g1, n, acc, g + 2 < ng ? g0 + 2 * gs : nullptr, g + 3 < ng);
    // Rows past `rows` (zero padding of the last group) and a missing second group are not stored:
    // the rows after this call's groups belong to other calls, maybe on other threads.
    const int64_t pair_rows = g1 ? 16 : 8;
    const int64_t valid = rows - 8 * g < pair_rows ? rows - 8 * g : pair_rows;
    float* yg = y + t0 * y_stride + 8 * g;
    if (valid == 16) {  // whole rows as vectors: a memcpy call per row cost as much as a block's scaling
      for (int t = 0; t < n; ++t) storeuf(yg + t * y_stride, loadf(acc + 16 * t));
    } else {
      for (int t = 0; t < n; ++t) std::memcpy(yg + t * y_stride, acc + 16 * t, sizeof(float) * static_cast<size_t>(valid));
    }
  }
  LLMASOS_TILE_RELEASE();
}

// One or two tile products (x1 == nullptr: one): block i's activation quants x_i (token rows
// q_stride apart) times the weights stage(i, buffer) writes, into S[i] (nt x 16 int32). The second
// product runs on its own tiles, so it overlaps the first; every kernel here steps through its
// blocks (or sub-blocks) with this.
template <bool kSignedB, class Stage>
inline void tile_products(const int8_t* x0, const int8_t* x1, uint64_t q_stride, const Stage& stage,
                          int32_t (*S)[kTokens * 16]) {
  alignas(64) uint8_t wb[2][512];
  stage(0, wb[0]);
  LLMASOS_TILE_ZERO(0);
  LLMASOS_TILE_LOAD(2, x0, q_stride);
  LLMASOS_TILE_LOAD(4, wb[0], 64);
  if constexpr (kSignedB) LLMASOS_TILE_DPBSSD(0, 2, 4); else LLMASOS_TILE_DPBSUD(0, 2, 4);
  if (x1) {
    stage(1, wb[1]);
    LLMASOS_TILE_ZERO(1);
    LLMASOS_TILE_LOAD(3, x1, q_stride);
    LLMASOS_TILE_LOAD(5, wb[1], 64);
    if constexpr (kSignedB) LLMASOS_TILE_DPBSSD(1, 3, 5); else LLMASOS_TILE_DPBSUD(1, 3, 5);
  }
  LLMASOS_TILE_STORE(0, S[0], 64);
  if (x1) LLMASOS_TILE_STORE(1, S[1], 64);
}

// A token tile's activations as the tile kernels read them, and its Side. The quants of block b
// are one 512-byte aligned panel of 16 token rows of 32 bytes (rows past the tile's zero): in
// place, token rows are a whole activation row apart and start 4 bytes into a block, half of them
// across cache lines. The 16-bit activations of matmul_precise take two panels per block: their
// low bytes, then their high bytes. Built by each thread once per product (X8Act::gen) and tile,
// then reused by its other calls of the product (a product runs as 4 calls per thread or more).
struct TileActs {
  const uint8_t* x;
  Side side;
};
constexpr uint64_t kPanel = kTokens * 32;

// Token rows [t0, t0 + n) of block b as 16-row panels: one of the int8 quants (kPlanes 1), or two
// of the int16 quants' low and high bytes (kPlanes 2).
template <int kPlanes>
inline void stage_panels(const X8Act& a, int64_t t0, int n, int64_t b, uint8_t* dst) {
  std::memset(dst, 0, kPlanes * kPanel);
  for (int t = 0; t < n; ++t) {
    const uint8_t* x = act_block_quants(a, t0 + t, b);
    if constexpr (kPlanes == 1) {
      std::memcpy(dst + 32 * t, x, 32);
    } else {
      const __m256i m8 = _mm256_set1_epi16(0xff);
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32));
      // packs interleave the 128-bit lanes; the permute restores element order.
      const __m256i l = _mm256_packus_epi16(_mm256_and_si256(v0, m8), _mm256_and_si256(v1, m8));
      const __m256i h = _mm256_packs_epi16(_mm256_srai_epi16(v0, 8), _mm256_srai_epi16(v1, 8));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * t), _mm256_permute4x64_epi64(l, 0xD8));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + kPanel + 32 * t), _mm256_permute4x64_epi64(h, 0xD8));
    }
  }
}

template <int kPlanes>
TileActs tile_acts(const X8Act& a, int64_t t0, int nt, int off, bool mins) {
  struct alignas(64) Line {
    uint8_t b[64];
  };
  struct Cache {
    uint64_t gen = 0;
    std::vector<Line> lines;  // 64-byte aligned (C++17 aligned new), kept in place when it grows
    std::vector<float> fs;
    std::vector<int32_t> is;
    std::vector<int64_t> built;  // per tile slot: the t0 it holds, or -1
  };
  thread_local Cache c;
  const uint64_t per_tile = static_cast<uint64_t>(a.nb) * kPlanes * kPanel;
  const uint64_t n = static_cast<uint64_t>(a.nb) * kTokens;
  const size_t slot = static_cast<size_t>(t0 / kTokens);
  if (c.gen != a.gen || a.gen == 0) {  // gen 0: a view made without x8_view, never reused
    c.gen = a.gen;
    c.built.assign(c.built.size(), -1);
  }
  if (c.built.size() <= slot) c.built.resize(slot + 1, -1);
  if (c.lines.size() < (slot + 1) * per_tile / 64) c.lines.resize((slot + 1) * per_tile / 64);
  if (c.fs.size() < (slot + 1) * 2 * n) c.fs.resize((slot + 1) * 2 * n);
  if (c.is.size() < (slot + 1) * n) c.is.resize((slot + 1) * n);
  uint8_t* x = reinterpret_cast<uint8_t*>(c.lines.data()) + slot * per_tile;
  float* fs = c.fs.data() + slot * 2 * n;
  int32_t* is = c.is.data() + slot * n;
  if (c.built[slot] != t0) {
    for (int64_t b = 0; b < a.nb; ++b) {
      stage_panels<kPlanes>(a, t0, nt, b, x + static_cast<uint64_t>(b) * kPlanes * kPanel);
      for (int t = 0; t < kTokens; ++t) {
        const int64_t ti = (t0 + t) * a.nb + b;
        const uint64_t i = static_cast<uint64_t>(kTokens * b + t);
        fs[i] = t < nt ? a.d[ti] : 0.0f;
        fs[n + i] = t < nt && mins ? a.s[ti] : 0.0f;
        is[i] = t < nt && off != 0 ? off * a.sum[ti] : 0;
      }
    }
    c.built[slot] = t0;
  }
  return {x, {fs, fs + n, is}};
}

// A pair of groups' blocks in phases of kPhase: the phase's B operands staged (and the next pair's
// weights asked for), products(b0, nc, wb) leaving block b0 + i's sums in S[i] (and Sh[i]), then
// each block scaled into the registers; the _1 formats' min terms last, and the 16 x n sums into
// out.
template <GgmlType T, class Products>
inline void pair_phases(const uint8_t* g0, const uint8_t* g1, const uint8_t* gn, uint64_t gn_gs, int64_t nb,
                        const Side& sd, const int32_t (*S)[kTokens * 16], const int32_t (*Sh)[kTokens * 16],
                        int n, float* out, const Products& products) {
  Acc16 acc;
  alignas(64) uint8_t wb[kPhase][512];
  for (int64_t b0 = 0; b0 < nb; b0 += kPhase) {
    const int nc = static_cast<int>(nb - b0 < kPhase ? nb - b0 : kPhase);
    for (int i = 0; i < nc; ++i) stage_weights<T>(x8_block<T>(g0, b0 + i), x8_block<T>(g1, b0 + i), wb[i]);
    prefetch_blocks(gn, gn_gs, b0, nc, X8Format<T>::kBytes);
    products(b0, nc, wb);
    for (int i = 0; i < nc; ++i)
      acc.scale<T>(x8_block<T>(g0, b0 + i), x8_block<T>(g1, b0 + i), S[i], Sh ? Sh[i] : nullptr, sd, b0 + i);
  }
  if constexpr (X8Format<T>::kMin) acc.add_mins<T>(g0, g1, sd, nb);
  acc.store(out, n);
}

template <GgmlType T>
void gemm_x8_amx(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0, int64_t nt,
                 float* y, int64_t y_stride) {
  if (nt < kMinTokens) {
    base().gemm_x8[static_cast<uint32_t>(T)](ng, rows, w, a, t0, nt, y, y_stride);
    return;
  }
  using F = X8Format<T>;
  const int64_t nb = a.nb;
  const TileActs ta = tile_acts<1>(a, t0, static_cast<int>(nt), F::kOff, F::kMin);
  const uint8_t* xp = ta.x;
  const Side& sd = ta.side;
  // Sums of a phase's blocks; rows past nt are never written by the tiles, and zeroed once here
  // (their scales are zero, and they must not be garbage that the checkers flag).
  alignas(64) int32_t S[kPhase][kTokens * 16];
  std::memset(S, 0, sizeof(S));
  const uint64_t gs = static_cast<uint64_t>(nb) * F::kBytes;
  run_pairs(ng, rows, w, gs, nt, y, t0, y_stride,
            [&](const uint8_t* g0, const uint8_t* g1, int n, float* out, const uint8_t* gn, bool gn2) {
    pair_phases<T>(g0, g1, gn, gn2 ? gs : 0, nb, sd, S, nullptr, n, out, [&](int64_t b0, int nc, const uint8_t(*wb)[512]) {
      // Blocks alternate between two sets of tiles, so one product overlaps the next.
      for (int i = 0; i < nc; i += 2) {
        const uint8_t* x0 = xp + static_cast<uint64_t>(b0 + i) * kPanel;
        LLMASOS_TILE_ZERO(0);
        LLMASOS_TILE_LOAD(2, x0, 32);
        LLMASOS_TILE_LOAD(4, wb[i], 64);
        if constexpr (F::kQ8) LLMASOS_TILE_DPBSSD(0, 2, 4); else LLMASOS_TILE_DPBSUD(0, 2, 4);
        if (i + 1 < nc) {
          LLMASOS_TILE_ZERO(1);
          LLMASOS_TILE_LOAD(3, x0 + kPanel, 32);
          LLMASOS_TILE_LOAD(5, wb[i + 1], 64);
          if constexpr (F::kQ8) LLMASOS_TILE_DPBSSD(1, 3, 5); else LLMASOS_TILE_DPBSUD(1, 3, 5);
        }
        LLMASOS_TILE_STORE(0, S[i], 64);
        if (i + 1 < nc) LLMASOS_TILE_STORE(1, S[i + 1], 64);
      }
    });
  });
}

// ---- 16-bit activations (matmul_precise, quant_gemm_q16.cc): two tile products per block ------
// A token's 16-bit quant is x = 256 xh + xl (xl its low byte, unsigned; xh the high byte, signed),
// so the block's exact sums are S = 256 Sh + Sl: Sl from the low bytes as unsigned A rows
// (TDPBUSD / TDPBUUD), Sh from the high bytes (TDPBSSD / TDPBSUD), one staged B for both.
// |Sh| <= 32 * 128 * 128, so 256 Sh stays within int32. Then the 8-bit kernels' float steps
// (Acc16::scale adds the two as it loads them).

template <GgmlType T>
void gemm_q16_amx(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0, int64_t nt,
                  float* y, int64_t y_stride) {
  if (nt < kMinTokens) {
    base().gemm_x8_q16[static_cast<uint32_t>(T)](ng, rows, w, a, t0, nt, y, y_stride);
    return;
  }
  using F = X8Format<T>;
  const int64_t nb = a.nb;
  const TileActs ta = tile_acts<2>(a, t0, static_cast<int>(nt), F::kOff, F::kMin);
  const Side& sd = ta.side;
  alignas(64) int32_t Sl[kPhase][kTokens * 16], Sh[kPhase][kTokens * 16];  // rows past nt: zero
  std::memset(Sl, 0, sizeof(Sl));
  std::memset(Sh, 0, sizeof(Sh));
  const uint64_t gs = static_cast<uint64_t>(nb) * F::kBytes;
  run_pairs(ng, rows, w, gs, nt, y, t0, y_stride,
            [&](const uint8_t* g0, const uint8_t* g1, int n, float* out, const uint8_t* gn, bool gn2) {
    pair_phases<T>(g0, g1, gn, gn2 ? gs : 0, nb, sd, Sl, Sh, n, out, [&](int64_t b0, int nc, const uint8_t(*wb)[512]) {
      for (int i = 0; i < nc; ++i) {
        const uint8_t* lo = ta.x + static_cast<uint64_t>(b0 + i) * 2 * kPanel;
        const uint8_t* hi = lo + kPanel;
        LLMASOS_TILE_LOAD(4, wb[i], 64);
        LLMASOS_TILE_ZERO(0);
        LLMASOS_TILE_LOAD(2, lo, 32);
        if constexpr (F::kQ8) LLMASOS_TILE_DPBUSD(0, 2, 4); else LLMASOS_TILE_DPBUUD(0, 2, 4);
        LLMASOS_TILE_ZERO(1);
        LLMASOS_TILE_LOAD(3, hi, 32);
        if constexpr (F::kQ8) LLMASOS_TILE_DPBSSD(1, 3, 4); else LLMASOS_TILE_DPBSUD(1, 3, 4);
        LLMASOS_TILE_STORE(0, Sl[i], 64);
        LLMASOS_TILE_STORE(1, Sh[i], 64);
      }
    });
  });
}

// ---- Q4_K / Q5_K: sub-block j (32 elements) of a super-block is one tile product ---------------

template <class B>
constexpr bool kIsQ5K = sizeof(B) == sizeof(BlockQ5_Kx8);

// B operand of sub-block j for a pair of groups: row c = elements 4c .. 4c + 3 of the 8 rows of
// group 0 (its qs run j / 2, chunk c, nibble j % 2, plus qh bit j for Q5_K), then group 1's.
template <class B>
inline void stage_k4(const B* x0, const B* x1, int j, uint8_t* dst) {
  const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
  for (int c = 0; c < 8; ++c) {
    for (int h = 0; h < 2; ++h) {
      const B* x = h ? x1 : x0;
      __m256i q = _mm256_setzero_si256();
      if (x) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->qs + 256 * (j / 2) + 32 * c));
        q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(v, 4) : v, m4);
        if constexpr (kIsQ5K<B>) {  // qh bit j to bit 4 (bits crossing bytes land outside 0x10)
          const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->qh + 32 * c));
          const __m256i s = j <= 4 ? _mm256_sll_epi16(hb, _mm_cvtsi32_si128(4 - j))
                                   : _mm256_srl_epi16(hb, _mm_cvtsi32_si128(j - 4));
          q = _mm256_or_si256(q, _mm256_and_si256(s, b4));
        }
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 64 * c + 32 * h), q);
    }
  }
}

// The 16 rows' 6-bit scales of sub-block j as int32 (zero for a missing group).
template <class B>
inline I16r k4_scales(const B* x0, const B* x1, int j) {
  auto one = [j](const B* x) {
    return x ? _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x->sc + 8 * j))) : _mm256_setzero_si256();
  };
  return join(one(x0), one(x1));
}

// Canonical order (quant_dot.h): per super-block exact sumi = sum_j sc_j * S_j and summ =
// sum_j m_j * bsum_j, then acc = acc + ((dw * dx) * sumi - (dminw * dx) * summ).
template <class B>
void gemm_x8_k4_amx(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0, int64_t nt,
                    float* y, int64_t y_stride) {
  constexpr GgmlType kType = kIsQ5K<B> ? GgmlType::Q5_K : GgmlType::Q4_K;
  if (nt < kMinTokens) {
    base().gemm_x8[static_cast<uint32_t>(kType)](ng, rows, w, a, t0, nt, y, y_stride);
    return;
  }
  const int64_t nb = a.nb;
  const uint64_t gs = static_cast<uint64_t>(nb) * sizeof(B);
  run_pairs(ng, rows, w, gs, nt, y, t0, y_stride,
            [&](const uint8_t* g0, const uint8_t* g1, int n, float* acc, const uint8_t* gn, bool gn2) {
    alignas(64) int32_t S[2][kTokens * 16];
    alignas(64) int32_t sumi[kTokens * 16], summ[kTokens * 16];
    std::memset(acc, 0, sizeof(float) * 16 * n);
    for (int64_t b = 0; b < nb; ++b) {
      const B* x0 = reinterpret_cast<const B*>(g0) + b;
      const B* x1 = g1 ? reinterpret_cast<const B*>(g1) + b : nullptr;
      prefetch_blocks(gn, gn2 ? gs : 0, b, 1, sizeof(B));
      std::memset(sumi, 0, sizeof(int32_t) * 16 * n);
      std::memset(summ, 0, sizeof(int32_t) * 16 * n);
      for (int j = 0; j < 8; j += 2) {
        const int8_t* xj = act_quants(a, t0, b) + 32 * j;
        tile_products<false>(xj, xj + 32, a.q_stride, [&](int i, uint8_t* dst) { stage_k4(x0, x1, j + i, dst); }, S);
        for (int e = 0; e < 2; ++e) {
          const I16r sc = k4_scales(x0, x1, j + e);
          for (int t = 0; t < n; ++t) storei(sumi + 16 * t, loadi(sumi + 16 * t) + mullo(sc, loadi(S[e] + 16 * t)));
        }
      }
      for (int p = 0; p < 4; ++p) {  // mins of sub-blocks 2p, 2p + 1 against their activation sums
        __m256i m16[2];
        for (int h = 0; h < 2; ++h) {
          const B* x = h ? x1 : x0;
          m16[h] = x ? _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x->m + 16 * p)))
                     : _mm256_setzero_si256();
        }
        for (int t = 0; t < n; ++t)
          storei(summ + 16 * t, loadi(summ + 16 * t) + madd_pairs(m16, a.sum[4 * ((t0 + t) * nb + b) + p]));
      }
      const F16r dw = halves16(reinterpret_cast<const uint8_t*>(x0), reinterpret_cast<const uint8_t*>(x1), 0);
      const F16r dmw = halves16(reinterpret_cast<const uint8_t*>(x0), reinterpret_cast<const uint8_t*>(x1), 16);
      for (int t = 0; t < n; ++t) {
        const F16r dx = splat(a.d[(t0 + t) * nb + b]);
        const F16r ta = (dw * dx) * to_float(loadi(sumi + 16 * t));
        const F16r tm = (dmw * dx) * to_float(loadi(summ + 16 * t));
        storef(acc + 16 * t, loadf(acc + 16 * t) + (ta - tm));
      }
    }
  });
}

// ---- Q6_K: sub-block j (16 elements, registers 4j .. 4j + 3) is one tile product of K = 16 ------

// B operand of sub-block j for a pair of groups: row u < 4 = register k = 4j + u of group 0 (the
// nibble of ql chunk k % 32, bits 2 (k / 16) of qh chunk k % 16 as bits 4, 5), then group 1's.
inline void stage_q6_k(const BlockQ6_Kx8* x0, const BlockQ6_Kx8* x1, int j, uint8_t* dst) {
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
  for (int u = 0; u < 4; ++u) {
    const int k = 4 * j + u;
    for (int h = 0; h < 2; ++h) {
      const BlockQ6_Kx8* x = h ? x1 : x0;
      __m256i q = _mm256_setzero_si256();
      if (x) {
        const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->ql + 32 * (k % 32)));
        const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->qh + 32 * (k % 16)));
        const __m256i lo = _mm256_and_si256(k < 32 ? l : _mm256_srli_epi16(l, 4), m4);
        const int sh = 2 * (k / 16);  // bits sh, sh + 1 to bits 4, 5 (crossing bits masked off)
        const __m256i hi = sh <= 4 ? _mm256_sll_epi16(hb, _mm_cvtsi32_si128(4 - sh))
                                   : _mm256_srl_epi16(hb, _mm_cvtsi32_si128(sh - 4));
        q = _mm256_or_si256(lo, _mm256_and_si256(hi, m2));
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 64 * u + 32 * h), q);
    }
  }
}

// The 16 rows' signed scales of sub-block j as int32 (zero for a missing group).
inline I16r q6_scales(const BlockQ6_Kx8* x0, const BlockQ6_Kx8* x1, int j) {
  auto one = [j](const BlockQ6_Kx8* x) {
    return x ? _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x->sc + 8 * j))) : _mm256_setzero_si256();
  };
  return join(one(x0), one(x1));
}

// Canonical order (quant_dot.h): per super-block exact sumi = sum_j sc_j * sum_e (q_e - 32) x_e,
// taken as sum_j sc_j * S_j - 32 * sum_j sc_j * bsum_j, then acc = acc + (dw * dx) * float(sumi).
void gemm_x8_q6_k_amx(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0, int64_t nt,
                      float* y, int64_t y_stride) {
  if (nt < kMinTokens) {
    base().gemm_x8[static_cast<uint32_t>(GgmlType::Q6_K)](ng, rows, w, a, t0, nt, y, y_stride);
    return;
  }
  const int64_t nb = a.nb;
  const uint64_t gs = static_cast<uint64_t>(nb) * sizeof(BlockQ6_Kx8);
  run_pairs<16>(ng, rows, w, gs, nt, y, t0, y_stride,
                [&](const uint8_t* g0, const uint8_t* g1, int n, float* acc, const uint8_t* gn, bool gn2) {
    alignas(64) int32_t S[2][kTokens * 16];
    alignas(64) int32_t sumi[kTokens * 16];
    std::memset(acc, 0, sizeof(float) * 16 * n);
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ6_Kx8* x0 = reinterpret_cast<const BlockQ6_Kx8*>(g0) + b;
      const BlockQ6_Kx8* x1 = g1 ? reinterpret_cast<const BlockQ6_Kx8*>(g1) + b : nullptr;
      prefetch_blocks(gn, gn2 ? gs : 0, b, 1, sizeof(BlockQ6_Kx8));
      std::memset(sumi, 0, sizeof(int32_t) * 16 * n);
      for (int j = 0; j < 16; j += 2) {
        const int8_t* xj = act_quants(a, t0, b) + 16 * j;
        tile_products<false>(xj, xj + 16, a.q_stride, [&](int i, uint8_t* dst) { stage_q6_k(x0, x1, j + i, dst); }, S);
        for (int e = 0; e < 2; ++e) {
          const I16r sc = q6_scales(x0, x1, j + e);
          for (int t = 0; t < n; ++t) {
            int16_t bs;  // Q8_K's 16-element sums follow its 256 quants
            std::memcpy(&bs, act_quants(a, t0 + t, b) + 256 + 2 * (j + e), 2);
            storei(sumi + 16 * t, loadi(sumi + 16 * t) + mullo(sc, loadi(S[e] + 16 * t) - splati(32 * bs)));
          }
        }
      }
      const F16r dw = halves16(reinterpret_cast<const uint8_t*>(x0), reinterpret_cast<const uint8_t*>(x1), 0);
      for (int t = 0; t < n; ++t)
        storef(acc + 16 * t, loadf(acc + 16 * t) + (dw * splat(a.d[(t0 + t) * nb + b])) * to_float(loadi(sumi + 16 * t)));
    }
  });
}

KernelTable build_table() {
  KernelTable t = base();
#define LLMASOS_STR2(x) #x
#define LLMASOS_STR(x) LLMASOS_STR2(x)
  t.isa = LLMASOS_STR(LLMASOS_ISA_NS);
#undef LLMASOS_STR
#undef LLMASOS_STR2
  t.x8_tokens = kTokens;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q4_0)] = gemm_x8_amx<GgmlType::Q4_0>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q4_1)] = gemm_x8_amx<GgmlType::Q4_1>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q5_0)] = gemm_x8_amx<GgmlType::Q5_0>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q5_1)] = gemm_x8_amx<GgmlType::Q5_1>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q8_0)] = gemm_x8_amx<GgmlType::Q8_0>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q4_K)] = gemm_x8_k4_amx<BlockQ4_Kx8>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q5_K)] = gemm_x8_k4_amx<BlockQ5_Kx8>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q6_K)] = gemm_x8_q6_k_amx;
  t.gemm_x8_q16[static_cast<uint32_t>(GgmlType::Q4_0)] = gemm_q16_amx<GgmlType::Q4_0>;
  t.gemm_x8_q16[static_cast<uint32_t>(GgmlType::Q4_1)] = gemm_q16_amx<GgmlType::Q4_1>;
  t.gemm_x8_q16[static_cast<uint32_t>(GgmlType::Q5_0)] = gemm_q16_amx<GgmlType::Q5_0>;
  t.gemm_x8_q16[static_cast<uint32_t>(GgmlType::Q5_1)] = gemm_q16_amx<GgmlType::Q5_1>;
  t.gemm_x8_q16[static_cast<uint32_t>(GgmlType::Q8_0)] = gemm_q16_amx<GgmlType::Q8_0>;
  return t;
}

}  // namespace

const KernelTable* table() {
  static const KernelTable t = build_table();
  return &t;
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
