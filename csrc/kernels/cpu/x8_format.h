// What the x8 product kernels of one ISA level share (quant_gemm_x8.cc, quant_gemm_q16.cc, and
// quant_gemm_amx.cc which feeds the same unpacked registers to the AMX tiles): each packed format's
// field offsets and quant offset, the activation-quant address, the scalar canonical order, and
// with AVX2 the unpacking of a 4/5-bit block into its 8 registers, the min-term pass, the group
// store and the K-quants' group/token-tile driver. Included only by kernel sources; everything
// lands in the including level's namespace.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/fma_exact.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/quant_dot.h"
#include "quant/packed_x8.h"

#if defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>
#endif

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

using namespace llmasos::quant;

// What distinguishes the packed formats: fields present, and the quant offset (x = d (q - off)).
template <GgmlType T> struct X8Format {
  static constexpr bool kMin = T == GgmlType::Q4_1 || T == GgmlType::Q5_1;
  static constexpr bool kQh = T == GgmlType::Q5_0 || T == GgmlType::Q5_1;
  static constexpr bool kQ8 = T == GgmlType::Q8_0;
  static constexpr int kOff = T == GgmlType::Q4_0 ? 8 : T == GgmlType::Q5_0 ? 16 : 0;
  static constexpr uint64_t kM = 16;                           // m[8] (when kMin)
  static constexpr uint64_t kQhAt = kMin ? 32 : 16;            // qh[32] (when kQh)
  static constexpr uint64_t kQs = 16 + (kMin ? 16 : 0) + (kQh ? 32 : 0);
  static constexpr uint64_t kBytes = kQs + (kQ8 ? 256 : 128);
};

inline float half_to_float(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return fp16_to_fp32(h);  // exact either way
#endif
}

// Where token t's quants of activation block b start (int8 blocks, or matmul_precise's int16 ones).
inline const uint8_t* act_block_quants(const X8Act& a, int64_t t, int64_t b) {
  return a.q + static_cast<uint64_t>(t) * a.q_stride + static_cast<uint64_t>(b) * a.block_bytes + a.qs_offset;
}

// Token t's int8 quants of activation block b (32 for Q8_0 / Q8_1, 256 for Q8_K).
inline const int8_t* act_quants(const X8Act& a, int64_t t, int64_t b) {
  return reinterpret_cast<const int8_t*>(act_block_quants(a, t, b));
}

// Element e (0 .. 31) of row r of an x8 block: unsigned (before the _0 formats' offset), Q8_0 signed.
template <GgmlType T>
inline int x8_quant(const uint8_t* blk, int r, int e) {
  using F = X8Format<T>;
  const int k = e / 4, pos = 4 * r + e % 4;
  if constexpr (F::kQ8) return static_cast<int8_t>(blk[F::kQs + 32 * k + pos]);
  int q = (blk[F::kQs + 32 * (k % 4) + pos] >> (k < 4 ? 0 : 4)) & 0x0f;
  if constexpr (F::kQh) q |= ((blk[F::kQhAt + pos] >> k) & 1) << 4;
  return q;
}

// The x8 canonical order (quant_dot.h) written out for the legacy formats, with the activation
// quants of token t, block b at quants(a, t, b) (int8 blocks, or the 16-bit blocks of
// matmul_precise): the scalar kernels of every level, and the definition the others follow.
template <GgmlType T, class Quants>
void gemm_x8_canonical(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                       int64_t nt, float* y, int64_t y_stride, const Quants& quants) {
  using F = X8Format<T>;
  const int64_t nb = a.nb;
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* grp = w + static_cast<uint64_t>(g * nb) * F::kBytes;
    for (int64_t t = t0; t < t0 + nt; ++t) {
      for (int r = 0; r < kX8Rows && 8 * g + r < rows; ++r) {
        float acc = 0.0f, accm = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* blk = grp + static_cast<uint64_t>(b) * F::kBytes;
          const auto* xq = quants(a, t, b);
          int32_t s = 0;
          for (int e = 0; e < 32; ++e) s += x8_quant<T>(blk, r, e) * xq[e];
          const int64_t ti = t * nb + b;
          if (F::kOff) s -= F::kOff * a.sum[ti];
          uint16_t dh;
          std::memcpy(&dh, blk + 2 * r, 2);
          const float d = half_to_float(dh) * a.d[ti];
          acc = fma_exact(d, static_cast<float>(s), acc);
          if constexpr (F::kMin) {
            uint16_t mh;
            std::memcpy(&mh, blk + F::kM + 2 * r, 2);
            accm = fma_exact(half_to_float(mh), a.s[ti], accm);
          }
        }
        y[t * y_stride + 8 * g + r] = F::kMin ? acc + accm : acc;
      }
    }
  }
}

#if defined(__AVX2__) && defined(__F16C__)
// The block's 8 registers of unsigned quants (4/5-bit formats).
template <GgmlType T>
inline void unpack_x8(const uint8_t* blk, __m256i w[8]) {
  using F = X8Format<T>;
  const uint8_t* qs = blk + F::kQs;
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int j = 0; j < 4; ++j) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * j));
    w[j] = _mm256_and_si256(v, m4);
    w[j + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  }
  if constexpr (F::kQh) {
    // Bit k of each qh byte becomes bit 4 of register k's byte. The 16-bit shifts move bits
    // across bytes only into positions the 0x10 mask drops.
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + F::kQhAt));
    const __m256i b4 = _mm256_set1_epi8(0x10);
    w[0] = _mm256_or_si256(w[0], _mm256_and_si256(_mm256_slli_epi16(h, 4), b4));
    w[1] = _mm256_or_si256(w[1], _mm256_and_si256(_mm256_slli_epi16(h, 3), b4));
    w[2] = _mm256_or_si256(w[2], _mm256_and_si256(_mm256_slli_epi16(h, 2), b4));
    w[3] = _mm256_or_si256(w[3], _mm256_and_si256(_mm256_slli_epi16(h, 1), b4));
    w[4] = _mm256_or_si256(w[4], _mm256_and_si256(h, b4));
    w[5] = _mm256_or_si256(w[5], _mm256_and_si256(_mm256_srli_epi16(h, 1), b4));
    w[6] = _mm256_or_si256(w[6], _mm256_and_si256(_mm256_srli_epi16(h, 2), b4));
    w[7] = _mm256_or_si256(w[7], _mm256_and_si256(_mm256_srli_epi16(h, 3), b4));
  }
}

// The _1 formats' min terms in the canonical order (their own accumulator, blocks in order, added
// once at the end), in a second pass over the group's m fields so the main loop keeps its
// registers: acc[t] = acc[t] + accm[t] for the group at grp and tokens t0 .. t0 + NT - 1.
template <GgmlType T, int NT>
inline void add_min_terms(const uint8_t* grp, const X8Act& a, int64_t t0, __m256 acc[NT]) {
  using F = X8Format<T>;
  __m256 accm[NT];
  for (int t = 0; t < NT; ++t) accm[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = grp + static_cast<uint64_t>(b) * F::kBytes;
    const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + F::kM)));
    for (int t = 0; t < NT; ++t)
      accm[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(a.s[(t0 + t) * a.nb + b]), accm[t]);
  }
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_add_ps(acc[t], accm[t]);
}

// Stores a group's NT rows of 8 outputs (only the `valid` first rows when the group is the last).
inline void store_group(const __m256* out, int64_t nt, int64_t valid, float* y, int64_t t0, int64_t y_stride,
                        int64_t col) {
  for (int64_t t = 0; t < nt; ++t) {
    float* dst = y + (t0 + t) * y_stride + col;
    if (valid == 8) {
      _mm256_storeu_ps(dst, out[t]);
    } else {
      float tmp[8];
      _mm256_storeu_ps(tmp, out[t]);
      for (int64_t r = 0; r < valid; ++r) dst[r] = tmp[r];
    }
  }
}

// Calls f(std::integral_constant<int, n>) for a runtime tile size n in [1, kMax <= 8]: one flat
// switch (a recursive dispatch measured 7-10% slower: the kernels stopped being inlined).
template <int kMax, class F>
inline void with_tile(int64_t n, const F& f) {
  static_assert(kMax >= 1 && kMax <= 8, "tile sizes 1 .. 8");
  auto at = [&](auto tile) { if constexpr (decltype(tile)::value <= kMax) f(tile); };
  switch (n) {
    case 1: at(std::integral_constant<int, 1>()); break;
    case 2: at(std::integral_constant<int, 2>()); break;
    case 3: at(std::integral_constant<int, 3>()); break;
    case 4: at(std::integral_constant<int, 4>()); break;
    case 5: at(std::integral_constant<int, 5>()); break;
    case 6: at(std::integral_constant<int, 6>()); break;
    case 7: at(std::integral_constant<int, 7>()); break;
    default: at(std::integral_constant<int, 8>()); break;
  }
}

// The driver of the K-quant kernels: for each group, tokens [t0, t0 + nt) in register tiles of at
// most kMax, group(g, first token, tile size as a constant, out[tile]) then the group's store.
template <int kMax, class Group>
void run_groups(int64_t ng, int64_t rows, int64_t t0, int64_t nt, float* y, int64_t y_stride,
                const Group& group) {
  for (int64_t g = 0; g < ng; ++g) {
    for (int64_t s = 0; s < nt; s += kMax) {
      const int64_t n = nt - s < kMax ? nt - s : kMax;
      __m256 out[kMax];
      with_tile<kMax>(n, [&](auto tile) { group(g, t0 + s, tile, out); });
      store_group(out, n, rows - 8 * g < 8 ? rows - 8 * g : 8, y, t0 + s, y_stride, 8 * g);
    }
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__)
// Pairs of groups as one zmm (the avx512 level's kernels for 2+ tokens): lanes 0..7 are group 0's
// rows, 8..15 group 1's.

// The 8 fp16 values at b0 + at and the 8 at b1 + at, widened into one zmm.
inline __m512 halves_pair(const uint8_t* b0, const uint8_t* b1, uint64_t at) {
  const __m128i h0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + at));
  const __m128i h1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b1 + at));
  return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(h0), h1, 1));
}

// The 32 bytes at b0 + at (lanes 0..7's rows) and at b1 + at (8..15's) as one zmm.
inline __m512i load_pair(const uint8_t* b0, const uint8_t* b1, uint64_t at) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + at))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + at)), 1);
}

// One block's canonical float step for a pair's 16 rows and one token: fma(dw * dx,
// float(S - kOff * sum), acc), S the block's exact sums, sum the token's activation sum of the block.
template <int kOff>
inline __m512 scale_pair(__m512 acc, __m512 dw, float dx, __m512i S, int32_t sum) {
  if constexpr (kOff != 0) S = _mm512_sub_epi32(S, _mm512_set1_epi32(kOff * sum));
  return _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(dx)), _mm512_cvtepi32_ps(S), acc);
}

// add_min_terms for the pair of groups at g0, g1 (the same ops per lane).
template <GgmlType T, int NT>
inline void add_min_terms_pair(const uint8_t* g0, const uint8_t* g1, const X8Act& a, int64_t t0, __m512 acc[NT]) {
  using F = X8Format<T>;
  __m512 accm[NT];
  for (int t = 0; t < NT; ++t) accm[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < a.nb; ++b) {
    const uint64_t at = static_cast<uint64_t>(b) * F::kBytes + F::kM;
    const __m512 mw = halves_pair(g0, g1, at);
    for (int t = 0; t < NT; ++t)
      accm[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(a.s[(t0 + t) * a.nb + b]), accm[t]);
  }
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_add_ps(acc[t], accm[t]);
}

// Stores a pair's nt rows of 16 outputs: group 0's to columns col .. col + 7, group 1's to the next
// 8 (only the rows below `rows`, the matrix's row count).
inline void store_pair(const __m512* out, int64_t nt, int64_t rows, float* y, int64_t t0, int64_t y_stride,
                       int64_t col) {
  __m256 lo[16], hi[16];
  for (int64_t t = 0; t < nt; ++t) {
    lo[t] = _mm512_castps512_ps256(out[t]);
    hi[t] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(out[t]), 1));
  }
  store_group(lo, nt, rows - col < 8 ? rows - col : 8, y, t0, y_stride, col);
  store_group(hi, nt, rows - col - 8 < 8 ? rows - col - 8 : 8, y, t0, y_stride, col + 8);
}

// The driver of the pair kernels: groups g, g + 1 (gs bytes apart) for every whole pair, tokens
// [t0, t0 + nt) 8 at a time, pair(g0, g1, first token, tile size as a constant, out[tile]) then
// the pair's store. Returns the groups done: an odd last one is left to the caller.
template <class Pair>
int64_t run_pairs_zmm(int64_t ng, int64_t rows, const uint8_t* w, uint64_t gs, int64_t t0, int64_t nt, float* y,
                      int64_t y_stride, const Pair& pair) {
  int64_t g = 0;
  for (; g + 2 <= ng; g += 2) {
    const uint8_t* g0 = w + static_cast<uint64_t>(g) * gs;
    for (int64_t s = t0; s < t0 + nt; s += 8) {
      const int64_t n = t0 + nt - s < 8 ? t0 + nt - s : 8;
      __m512 out[8];
      with_tile<8>(n, [&](auto tile) { pair(g0, g0 + gs, s, tile, out); });
      store_pair(out, n, rows, y, s, y_stride, 8 * g);
    }
  }
  return g;
}
#endif  // AVX-512

#endif  // AVX2

}  // namespace
}  // namespace llmasos::cpu::LLMASOS_ISA_NS
