// Products with row-interleaved (x8) packed weights (quant/packed_x8.h), compiled once per ISA
// level: a portable scalar version of the canonical order (quant_dot.h, "x8 products") and an AVX2
// one. A group of 8 rows is one register wide, so the int32 lanes of maddubs + madd (or VNNI
// dpbusd at the avx512 level) are the 8 rows' block sums and the float scaling runs once per 8
// outputs. Each call covers at most 8 tokens, every packed block being unpacked once for all of
// them (the K-quant kernels keep 4 tokens in registers at a time).
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/quant_dot.h"
#include "kernels/cpu/widen_simd.h"
#include "kernels/cpu/x8_format.h"
#include "quant/packed_x8.h"
#include "quant/quant_blocks.h"

#if defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>
#endif

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

using namespace llmasos::quant;

// ---- portable: the canonical order written out -------------------------------------------------

template <GgmlType T>
void gemm_x8_scalar(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                    int64_t nt, float* y, int64_t y_stride) {
  gemm_x8_canonical<T>(ng, rows, w, a, t0, nt, y, y_stride, act_quants);
}

// Q4_K / Q5_K x8 (canonical order, quant_dot.h): per super-block, exact sumi = sum_j sc_j * S_j
// and summ = sum_j m_j * bsum_j, then acc = acc + ((dw * dx) * sumi - (dminw * dx) * summ).
template <class B>
constexpr bool kIsQ5K = sizeof(B) == sizeof(BlockQ5_Kx8);

template <class B>
[[maybe_unused]] void gemm_x8_k4_scalar(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                                        int64_t nt, float* y, int64_t y_stride) {
  const int64_t nb = a.nb;
  for (int64_t g = 0; g < ng; ++g) {
    const B* grp = reinterpret_cast<const B*>(w) + g * nb;
    for (int64_t t = t0; t < t0 + nt; ++t) {
      for (int r = 0; r < kX8Rows && 8 * g + r < rows; ++r) {
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          const B& x = grp[b];
          const int8_t* xq = act_quants(a, t, b);
          const int32_t* ks = a.sum + 4 * (t * nb + b);
          int sumi = 0, summ = 0;
          for (int j = 0; j < 8; ++j) {
            int sj = 0;
            for (int e = 0; e < 32; ++e) {
              const uint8_t byte = x.qs[256 * (j / 2) + 32 * (e / 4) + 4 * r + e % 4];
              int q = j % 2 ? byte >> 4 : byte & 0x0f;
              if constexpr (kIsQ5K<B>) q |= ((x.qh[32 * (e / 4) + 4 * r + e % 4] >> j) & 1) << 4;
              sj += q * xq[32 * j + e];
            }
            sumi += x.sc[8 * j + r] * sj;
            const int32_t pair = ks[j / 2];
            const int bsum = j % 2 ? pair >> 16 : static_cast<int16_t>(pair & 0xffff);
            summ += x.m[16 * (j / 2) + 2 * r + j % 2] * bsum;
          }
          const float dx = a.d[t * nb + b];
          const float d = half_to_float(x.d[r]) * dx, dm = half_to_float(x.dmin[r]) * dx;
          const float ta = d * static_cast<float>(sumi), tm = dm * static_cast<float>(summ);
          acc = acc + (ta - tm);
        }
        y[t * y_stride + 8 * g + r] = acc;
      }
    }
  }
}

// Q6_K x8: per super-block, exact sumi = sum_j sc_j * sum_e (q_e - 32) x_e, then
// acc = acc + (dw * dx) * float(sumi).
[[maybe_unused]] void gemm_x8_q6_k_scalar(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a,
                                          int64_t t0, int64_t nt, float* y, int64_t y_stride) {
  const int64_t nb = a.nb;
  for (int64_t g = 0; g < ng; ++g) {
    const BlockQ6_Kx8* grp = reinterpret_cast<const BlockQ6_Kx8*>(w) + g * nb;
    for (int64_t t = t0; t < t0 + nt; ++t) {
      for (int r = 0; r < kX8Rows && 8 * g + r < rows; ++r) {
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          const BlockQ6_Kx8& x = grp[b];
          const int8_t* xq = act_quants(a, t, b);
          int sumi = 0;
          for (int j = 0; j < 16; ++j) {
            int sj = 0;
            for (int e = 16 * j; e < 16 * j + 16; ++e) {
              const int k = e / 4, pos = 4 * r + e % 4;
              const int lo = (x.ql[32 * (k % 32) + pos] >> (k < 32 ? 0 : 4)) & 0x0f;
              const int hi = (x.qh[32 * (k % 16) + pos] >> (2 * (k / 16))) & 3;
              sj += ((lo | (hi << 4)) - 32) * xq[e];
            }
            sumi += x.sc[8 * j + r] * sj;
          }
          const float d = half_to_float(x.d[r]) * a.d[t * nb + b];
          acc = acc + d * static_cast<float>(sumi);
        }
        y[t * y_stride + 8 * g + r] = acc;
      }
    }
  }
}

#if defined(__AVX2__) && defined(__F16C__)

// ---- AVX2: one group of 8 rows x NT tokens per pass over its blocks ---------------------------

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
// Q8_0 with VNNI: the weights' sign bit flipped makes them unsigned (w + 128), so vpdpbusd takes
// them against the activations as they are (no vpsignb per token, and the broadcast is embedded);
// the block's exact sum is then S' - 128 * sum(x), the _0 formats' offset step with 128.
constexpr bool kQ8Unsigned = true;
#else
constexpr bool kQ8Unsigned = false;
#endif

// What the kernels subtract times the block's activation sum (X8Act::sum) from its exact sums.
template <GgmlType T>
constexpr int offset_of() {
  return X8Format<T>::kQ8 && kQ8Unsigned ? 128 : X8Format<T>::kOff;
}

// The 8 rows' exact sums of q * x over a 4/5-bit block (before the _0 formats' offset), x =
// xq[0..31]. maddubs pairs cannot saturate (q <= 31, |x| <= 127); 16-bit partial sums of up to
// 8 (4-bit) or 4 (5-bit) maddubs stay below 32768.
template <GgmlType T>
inline __m256i block_sums_x8(const __m256i w[8], const int8_t* xq) {
  using F = X8Format<T>;
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  __m256i s = _mm256_setzero_si256();
  for (int k = 0; k < 8; ++k) s = dpbusd_bcast(s, w[k], xq + 4 * k);
  return s;
#else
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i lo = _mm256_maddubs_epi16(w[0], bcast4(xq));
  for (int k = 1; k < 4; ++k) lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(w[k], bcast4(xq + 4 * k)));
  __m256i hi = _mm256_maddubs_epi16(w[4], bcast4(xq + 16));
  for (int k = 5; k < 8; ++k) hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(w[k], bcast4(xq + 4 * k)));
  if constexpr (F::kQh)
    return _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_madd_epi16(hi, ones));
  else
    return _mm256_madd_epi16(_mm256_add_epi16(lo, hi), ones);
#endif
}

// The exact sums S[t] of one block for NT tokens (xq[t]: token t's 32 quants), before the _0
// formats' offset. 4/5-bit: the 8 registers unpacked once, then token by token (measured faster
// than register-outer here). Q8: register-outer, so |w| is made once per register, not per token.
template <GgmlType T, int NT>
inline void block_sums_nt(const uint8_t* blk, const int8_t* const xq[NT], __m256i S[NT]) {
  using F = X8Format<T>;
  if constexpr (!F::kQ8) {
    __m256i w[8];
    unpack_x8<T>(blk, w);
    for (int t = 0; t < NT; ++t) S[t] = block_sums_x8<T>(w, xq[t]);
  } else {
    const uint8_t* qs = blk + F::kQs;
    for (int t = 0; t < NT; ++t) S[t] = _mm256_setzero_si256();
    for (int k = 0; k < 8; ++k) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * k));
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
      const __m256i wu = _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80)));  // w + 128
      for (int t = 0; t < NT; ++t) S[t] = dpbusd_bcast(S[t], wu, xq[t] + 4 * k);
#else
      const __m256i a = _mm256_abs_epi8(w);
      for (int t = 0; t < NT; ++t) {
        const __m256i x = _mm256_sign_epi8(bcast4(xq[t] + 4 * k), w);
        S[t] = _mm256_add_epi32(S[t], _mm256_madd_epi16(_mm256_maddubs_epi16(a, x), _mm256_set1_epi16(1)));
      }
#endif
    }
  }
}

template <GgmlType T, int NT>
inline void group_x8(const uint8_t* grp, const X8Act& a, int64_t t0, __m256 out[NT]) {
  using F = X8Format<T>;
  const int64_t nb = a.nb;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  const uint8_t* xrow[NT];
  for (int t = 0; t < NT; ++t) xrow[t] = a.q + static_cast<uint64_t>(t0 + t) * a.q_stride + a.qs_offset;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = grp + static_cast<uint64_t>(b) * F::kBytes;
    const int8_t* xq[NT];
    for (int t = 0; t < NT; ++t)
      xq[t] = reinterpret_cast<const int8_t*>(xrow[t] + static_cast<uint64_t>(b) * a.block_bytes);
    __m256i S[NT];
    block_sums_nt<T, NT>(blk, xq, S);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    for (int t = 0; t < NT; ++t) {
      const int64_t ti = (t0 + t) * nb + b;
      if constexpr (offset_of<T>() != 0) S[t] = _mm256_sub_epi32(S[t], _mm256_set1_epi32(offset_of<T>() * a.sum[ti]));
      const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(a.d[ti]));
      acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(S[t]), acc[t]);
    }
  }
  if constexpr (F::kMin) add_min_terms<T, NT>(grp, a, t0, acc);
  for (int t = 0; t < NT; ++t) out[t] = acc[t];
}

// Two groups (16 rows) x NT <= 4 tokens per pass, for Q8_0 and Q4_0 without VNNI: each 4-byte
// activation broadcast serves both groups' registers. On this core's vector pipes a broadcast
// costs as much as the vpmaddubsw it feeds, so sharing it saves half an op per 32 multiply-adds
// (Q8_0: of ~5 with vpsignb, vpmaddwd, vpaddd; Q4_0: of 3 with vpaddw). The block walks its 8
// registers in order (k outer), so the 8 sums, 2 weight registers and their |w| or nibble temps
// stay in registers; the float sums stay in memory (touched once per block). Same exact block
// sums, same float order as group_x8. bench/isa_kernels.py, gate_up, T = 128, 2 threads, A/B in
// one host phase: Q8_0 108.2 -> 114.6 GMAC/s, Q4_0 136.5 -> 149.0.
template <GgmlType T, int NT>
inline void group_pair(const uint8_t* g0, const uint8_t* g1, const X8Act& a, int64_t t0, __m256 out0[NT],
                       __m256 out1[NT]) {
  using F = X8Format<T>;
  static_assert(T == GgmlType::Q8_0 || T == GgmlType::Q4_0, "gemm_x8_avx2 pairs Q8_0 and Q4_0 only");
  const int64_t nb = a.nb;
  // The float sums live in memory: kept in registers, GCC spilled the int sums of the inner loop
  // instead. Zeroed by vector stores: "= {}" became a rep stos, 10% of the kernel's time.
  alignas(32) float acc[2 * NT * 8];
  for (int i = 0; i < 2 * NT; ++i) _mm256_store_ps(acc + 8 * i, _mm256_setzero_ps());
  const uint8_t* xrow[NT];
  for (int t = 0; t < NT; ++t) xrow[t] = a.q + static_cast<uint64_t>(t0 + t) * a.q_stride + a.qs_offset;
  [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0f);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* b0 = g0 + static_cast<uint64_t>(b) * F::kBytes;
    const uint8_t* b1 = g1 + static_cast<uint64_t>(b) * F::kBytes;
    const int8_t* xq[NT];
    for (int t = 0; t < NT; ++t)
      xq[t] = reinterpret_cast<const int8_t*>(xrow[t] + static_cast<uint64_t>(b) * a.block_bytes);
    // Q8_0: int32 sums. Q4_0: 16-bit sums of all 8 maddubs (8 * 2 * 15 * 127 < 32768).
    __m256i S0[NT], S1[NT];
    for (int t = 0; t < NT; ++t) S0[t] = S1[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      if constexpr (F::kQ8) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + F::kQs + 32 * k));
        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + F::kQs + 32 * k));
        const __m256i a0 = _mm256_abs_epi8(w0), a1 = _mm256_abs_epi8(w1);
        for (int t = 0; t < NT; ++t) {
          const __m256i x = bcast4(xq[t] + 4 * k);
          S0[t] = _mm256_add_epi32(S0[t], _mm256_madd_epi16(_mm256_maddubs_epi16(a0, _mm256_sign_epi8(x, w0)), ones));
          S1[t] = _mm256_add_epi32(S1[t], _mm256_madd_epi16(_mm256_maddubs_epi16(a1, _mm256_sign_epi8(x, w1)), ones));
        }
      } else {  // register k: the low nibbles of 32-byte run k % 4 (k < 4), else the high ones
        __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + F::kQs + 32 * (k % 4)));
        __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + F::kQs + 32 * (k % 4)));
        if (k >= 4) {
          w0 = _mm256_srli_epi16(w0, 4);
          w1 = _mm256_srli_epi16(w1, 4);
        }
        w0 = _mm256_and_si256(w0, m4);
        w1 = _mm256_and_si256(w1, m4);
        for (int t = 0; t < NT; ++t) {
          const __m256i x = bcast4(xq[t] + 4 * k);
          S0[t] = _mm256_add_epi16(S0[t], _mm256_maddubs_epi16(w0, x));
          S1[t] = _mm256_add_epi16(S1[t], _mm256_maddubs_epi16(w1, x));
        }
      }
      // Step by step (as in quant_gemm_q16.cc): left free, GCC reassociates the adds into a tree.
      for (int t = 0; t < NT; ++t) asm("" : "+v"(S0[t]), "+v"(S1[t]));
    }
    if constexpr (!F::kQ8)
      for (int t = 0; t < NT; ++t) {
        S0[t] = _mm256_madd_epi16(S0[t], ones);
        S1[t] = _mm256_madd_epi16(S1[t], ones);
      }
    const __m256 dw0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0)));
    const __m256 dw1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b1)));
    for (int t = 0; t < NT; ++t) {
      const int64_t ti = (t0 + t) * nb + b;
      if constexpr (F::kOff != 0) {
        const __m256i off = _mm256_set1_epi32(F::kOff * a.sum[ti]);
        S0[t] = _mm256_sub_epi32(S0[t], off);
        S1[t] = _mm256_sub_epi32(S1[t], off);
      }
      const __m256 dx = _mm256_set1_ps(a.d[ti]);
      float* a0p = acc + 8 * t;
      float* a1p = acc + 8 * (NT + t);
      _mm256_store_ps(a0p, _mm256_fmadd_ps(_mm256_mul_ps(dw0, dx), _mm256_cvtepi32_ps(S0[t]), _mm256_load_ps(a0p)));
      _mm256_store_ps(a1p, _mm256_fmadd_ps(_mm256_mul_ps(dw1, dx), _mm256_cvtepi32_ps(S1[t]), _mm256_load_ps(a1p)));
    }
    asm volatile("" : : "r"(acc) : "memory");
  }
  for (int t = 0; t < NT; ++t) {
    out0[t] = _mm256_load_ps(acc + 8 * t);
    out1[t] = _mm256_load_ps(acc + 8 * (NT + t));
  }
}

// Q4_K: per sub-block j, 8 maddubs summed in 16 bits (8 * 2 * 15 * 127 < 32768), then one madd
// by the rows' scales (each i16 pair of a row times its scale) gives sc_j * S_j in the row's lane.
// Q5_K: the 5th bit (bit j of the qh byte) is or-ed in; 16-bit sums then hold 4 maddubs
// (4 * 2 * 31 * 127 < 32768), so each half of a sub-block gets its own madd by the scales. Q5_K
// walks sub-blocks in pairs (one qs and qh load for both; 2.4x the row kernel where one at a time
// was 0.9x), Q4_K one at a time (the pair loop measured 5% slower for it).
template <class B, int NT>
inline void group_k4_x8(const B* grp, const X8Act& a, int64_t t0, __m256 out[NT]) {
  const int64_t nb = a.nb;
  const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const B& x = grp[b];
    const int8_t* xq[NT];
    for (int t = 0; t < NT; ++t)
      xq[t] = act_quants(a, t0 + t, b);
    __m256i sumi[NT], summ[NT];
    for (int t = 0; t < NT; ++t) sumi[t] = summ[t] = _mm256_setzero_si256();
    if constexpr (kIsQ5K<B>) {
      for (int k = 0; k < 4; ++k) {  // sub-blocks 2k (low nibbles, qh bit 2k) and 2k + 1
        const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.sc + 16 * k));  // j = 2k, 2k+1
        const __m256i sc16a = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(sc8, sc8));
        const __m256i sc16b = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sc8, sc8));
        __m256i sa[NT], sb[NT];
        for (int t = 0; t < NT; ++t) sa[t] = sb[t] = _mm256_setzero_si256();
        const uint8_t* qs = x.qs + 256 * k;
        for (int c = 0; c < 8; ++c) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
          const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qh + 32 * c));
          __m256i ha, hb;  // bits 2k, 2k + 1 of the qh byte to bit 4 (crossing bits are masked off)
          switch (k) {
            case 0: ha = _mm256_slli_epi16(h, 4); hb = _mm256_slli_epi16(h, 3); break;
            case 1: ha = _mm256_slli_epi16(h, 2); hb = _mm256_slli_epi16(h, 1); break;
            case 2: ha = h; hb = _mm256_srli_epi16(h, 1); break;
            default: ha = _mm256_srli_epi16(h, 2); hb = _mm256_srli_epi16(h, 3); break;
          }
          const __m256i wa = _mm256_or_si256(_mm256_and_si256(v, m4), _mm256_and_si256(ha, b4));
          const __m256i wb = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), _mm256_and_si256(hb, b4));
          for (int t = 0; t < NT; ++t) {
            sa[t] = _mm256_add_epi16(sa[t], _mm256_maddubs_epi16(wa, bcast4(xq[t] + 64 * k + 4 * c)));
            sb[t] = _mm256_add_epi16(sb[t], _mm256_maddubs_epi16(wb, bcast4(xq[t] + 64 * k + 32 + 4 * c)));
          }
          if (c == 3 || c == 7) {  // 4 maddubs of 5-bit quants fill 16 bits: into 32 bits
            for (int t = 0; t < NT; ++t) {
              sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_madd_epi16(sa[t], sc16a),
                                                                   _mm256_madd_epi16(sb[t], sc16b)));
              sa[t] = sb[t] = _mm256_setzero_si256();
            }
          }
        }
      }
    } else {
      for (int j = 0; j < 8; ++j) {
        const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x.sc + 8 * j));
        const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(sc8, sc8));  // row r: i16 2r, 2r+1
        __m256i s16[NT];
        for (int t = 0; t < NT; ++t) s16[t] = _mm256_setzero_si256();
        const uint8_t* qs = x.qs + 256 * (j / 2);
        for (int c = 0; c < 8; ++c) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
          const __m256i wq = (j % 2) ? _mm256_and_si256(_mm256_srli_epi16(v, 4), m4) : _mm256_and_si256(v, m4);
          for (int t = 0; t < NT; ++t)
            s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(wq, bcast4(xq[t] + 32 * j + 4 * c)));
        }
        for (int t = 0; t < NT; ++t) sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(s16[t], sc16));
      }
    }
    for (int p = 0; p < 4; ++p) {  // mins of sub-blocks 2p, 2p + 1 against their activation sums
      const __m256i m16 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.m + 16 * p)));
      for (int t = 0; t < NT; ++t)
        summ[t] = _mm256_add_epi32(summ[t], _mm256_madd_epi16(m16, _mm256_set1_epi32(a.sum[4 * ((t0 + t) * nb + b) + p])));
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.d)));
    const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.dmin)));
    for (int t = 0; t < NT; ++t) {
      const __m256 dx = _mm256_set1_ps(a.d[(t0 + t) * nb + b]);
      const __m256 ta = _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(sumi[t]));
      const __m256 tm = _mm256_mul_ps(_mm256_mul_ps(dmw, dx), _mm256_cvtepi32_ps(summ[t]));
      acc[t] = _mm256_add_ps(acc[t], _mm256_sub_ps(ta, tm));
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = acc[t];
}

// Q6_K: a sub-block j of 16 is registers 4j .. 4j + 3; the unsigned 6-bit quants are summed in
// two 16-bit pairs of maddubs (2 * 2 * 63 * 127 < 32768), each madd'ed by the rows' signed scales;
// the -32 offset is sum_j sc_j * bsum_j (Q8_K's 16-element sums), taken in a second pass.
template <int NT>
inline void group_q6_k_x8(const BlockQ6_Kx8* grp, const X8Act& a, int64_t t0, __m256 out[NT]) {
  const int64_t nb = a.nb;
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ6_Kx8& x = grp[b];
    const int8_t* xq[NT];
    for (int t = 0; t < NT; ++t)
      xq[t] = act_quants(a, t0 + t, b);
    __m256i sumi[NT];
    for (int t = 0; t < NT; ++t) sumi[t] = _mm256_setzero_si256();
    for (int j = 0; j < 16; ++j) {
      const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x.sc + 8 * j));
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(sc8, sc8));  // row r: i16 2r, 2r+1
      __m256i w[4];
      for (int u = 0; u < 4; ++u) {
        const int k = 4 * j + u;
        const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.ql + 32 * (k % 32)));
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qh + 32 * (k % 16)));
        const __m256i lo = k < 32 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
        __m256i hi;  // bits 2m, 2m + 1 of the qh byte to bits 4, 5 (crossing bits are masked off)
        switch (k / 16) {
          case 0: hi = _mm256_slli_epi16(h, 4); break;
          case 1: hi = _mm256_slli_epi16(h, 2); break;
          case 2: hi = h; break;
          default: hi = _mm256_srli_epi16(h, 2); break;
        }
        w[u] = _mm256_or_si256(lo, _mm256_and_si256(hi, m2));
      }
      for (int t = 0; t < NT; ++t) {
        const int8_t* xj = xq[t] + 16 * j;
        const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(w[0], bcast4(xj)), _mm256_maddubs_epi16(w[1], bcast4(xj + 4)));
        const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(w[2], bcast4(xj + 8)), _mm256_maddubs_epi16(w[3], bcast4(xj + 12)));
        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_madd_epi16(p0, sc16), _mm256_madd_epi16(p1, sc16)));
      }
    }
    __m256i summ[NT];
    for (int t = 0; t < NT; ++t) summ[t] = _mm256_setzero_si256();
    for (int j = 0; j < 16; ++j) {
      const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x.sc + 8 * j));
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(sc8, sc8));
      for (int t = 0; t < NT; ++t) {
        int16_t bs;  // Q8_K bsums follow the 256 quants
        std::memcpy(&bs, xq[t] + 256 + 2 * j, 2);
        summ[t] = _mm256_add_epi32(summ[t], _mm256_madd_epi16(sc16, _mm256_set1_epi32(static_cast<uint16_t>(bs))));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.d)));
    for (int t = 0; t < NT; ++t) {
      const __m256i S = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32(summ[t], 5));
      const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(a.d[(t0 + t) * nb + b]));
      acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(d, _mm256_cvtepi32_ps(S)));
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = acc[t];
}

// The K-quant kernels keep 4 tokens in registers.
void gemm_x8_q6_k_avx2(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                       int64_t nt, float* y, int64_t y_stride) {
  run_groups<4>(ng, rows, t0, nt, y, y_stride, [&](int64_t g, int64_t t, auto tile, __m256* out) {
    group_q6_k_x8<decltype(tile)::value>(reinterpret_cast<const BlockQ6_Kx8*>(w) + g * a.nb, a, t, out);
  });
}

template <class B>
void gemm_x8_k4_avx2(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                     int64_t nt, float* y, int64_t y_stride) {
  run_groups<4>(ng, rows, t0, nt, y, y_stride, [&](int64_t g, int64_t t, auto tile, __m256* out) {
    group_k4_x8<B, decltype(tile)::value>(reinterpret_cast<const B*>(w) + g * a.nb, a, t, out);
  });
}

// Group pairs for 4+ tokens (prefill, batches) of Q8_0 and Q4_0 without VNNI; returns the groups
// done. Its own function, so that GCC allocates the pairs' registers apart from group_x8's tiles
// (inlined together at the avx512 level, it kept the pairs' sums on the stack: Q4_0 3072x576 at
// T = 16 fell from 95 to 44 GMAC/s).
template <GgmlType T>
[[gnu::noinline]] int64_t gemm_x8_pairs(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                                        int64_t nt, float* y, int64_t y_stride) {
  const uint64_t gs = static_cast<uint64_t>(a.nb) * X8Format<T>::kBytes;
  int64_t g = 0;
  for (; g + 2 <= ng; g += 2) {
    const uint8_t* g0 = w + static_cast<uint64_t>(g) * gs;
    for (int64_t s = 0; s < nt; s += 4) {
      const int64_t n = nt - s < 4 ? nt - s : 4;
      __m256 out0[4], out1[4];
      with_tile<4>(n, [&](auto tile) { group_pair<T, decltype(tile)::value>(g0, g0 + gs, a, t0 + s, out0, out1); });
      store_group(out0, n, rows - 8 * g < 8 ? rows - 8 * g : 8, y, t0 + s, y_stride, 8 * g);
      store_group(out1, n, rows - 8 * g - 8 < 8 ? rows - 8 * g - 8 : 8, y, t0 + s, y_stride, 8 * g + 8);
    }
  }
  return g;
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
// Two groups (16 rows, one zmm: group 0 in lanes 0..7, group 1 in 8..15) x NT <= 8 tokens, for
// the formats without a 5th bit (Q4_0, Q4_1, Q8_0) with VNNI: register k of both groups is one
// zmm, so each vpdpbusd, its broadcast and every float op of the scaling serve 16 rows instead of
// 8. Each lane runs the ops group_x8 runs on its row (exact block sums, then the canonical float
// steps), so the bits are the same. On a Xeon (Sapphire Rapids class, the avx512 level forced),
// 16 tokens, on / off in one process: 1 thread 0.72-0.76 of the time (Q4_1 qkv, gate_up, down),
// Q8_0 0.74-0.83, Q4_0 0.72-0.74; 2 threads Q4_1 0.76-0.84; the same at 8 tokens, and Q4_1 at 2
// and 4 tokens 0.79-0.85. In the 16-sequence step of the default model its share of the samples
// fell from 48.9% to 45.6% (the weights come from memory there). Decode (1 token) keeps group_x8:
// on Zen 4, whose 512-bit ops take two cycles, pairs of groups measured slower for Q4_1 decode
// (see gemm_x8_avx2), and this form was not measured there.
constexpr int64_t kZmmPairTokens = 2;  // fewest tokens per call that take group_pair_zmm

template <GgmlType T, int NT>
inline void group_pair_zmm(const uint8_t* g0, const uint8_t* g1, const X8Act& a, int64_t t0, __m512 out[NT]) {
  using F = X8Format<T>;
  static_assert(!F::kQh, "no 5-bit formats here");
  const int64_t nb = a.nb;
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  const uint8_t* xrow[NT];
  for (int t = 0; t < NT; ++t) xrow[t] = a.q + static_cast<uint64_t>(t0 + t) * a.q_stride + a.qs_offset;
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* b0 = g0 + static_cast<uint64_t>(b) * F::kBytes;
    const uint8_t* b1 = g1 + static_cast<uint64_t>(b) * F::kBytes;
    __m512i w[8];
    if constexpr (F::kQ8) {
      for (int k = 0; k < 8; ++k) w[k] = _mm512_xor_si512(load_pair(b0, b1, F::kQs + 32 * k), _mm512_set1_epi8(static_cast<char>(0x80)));
    } else {
      for (int j = 0; j < 4; ++j) {
        const __m512i v = load_pair(b0, b1, F::kQs + 32 * j);
        w[j] = _mm512_and_si512(v, m4);
        w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      }
    }
    const __m512 dw = halves_pair(b0, b1, 0);
    for (int t = 0; t < NT; ++t) {
      const int8_t* xq = reinterpret_cast<const int8_t*>(xrow[t] + static_cast<uint64_t>(b) * a.block_bytes);
      __m512i S = _mm512_setzero_si512();
      for (int k = 0; k < 8; ++k) S = dpbusd_bcast16(S, w[k], xq + 4 * k);
      const int64_t ti = (t0 + t) * nb + b;
      acc[t] = scale_pair<offset_of<T>()>(acc[t], dw, a.d[ti], S, a.sum[ti]);
    }
  }
  if constexpr (F::kMin) add_min_terms_pair<T, NT>(g0, g1, a, t0, acc);
  for (int t = 0; t < NT; ++t) out[t] = acc[t];
}

// Pairs of groups through group_pair_zmm; returns the groups done (an odd last one is left to the
// caller). Its own function for the register allocation (see gemm_x8_pairs).
template <GgmlType T>
[[gnu::noinline]] int64_t gemm_x8_zmm_pairs(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                                            int64_t nt, float* y, int64_t y_stride) {
  const uint64_t gs = static_cast<uint64_t>(a.nb) * X8Format<T>::kBytes;
  return run_pairs_zmm(ng, rows, w, gs, t0, nt, y, y_stride, [&](const uint8_t* g0, const uint8_t* g1, int64_t s,
                                                                 auto tile, __m512* out) {
    group_pair_zmm<T, decltype(tile)::value>(g0, g1, a, s, out);
  });
}
#endif

// The legacy formats keep their own driver: the same walk through run_groups<8> measured 2-5%
// slower on 3072x576 products (T = 16, 256), so each group takes its (<= 8) tokens directly.
template <GgmlType T>
void gemm_x8_avx2(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                  int64_t nt, float* y, int64_t y_stride) {
  const uint64_t gs = static_cast<uint64_t>(a.nb) * X8Format<T>::kBytes;
  int64_t g = 0;
  // Pairs for Q8_0 and Q4_0 only, and only without VNNI: there the single-group tiles, with their
  // embedded broadcasts, measured faster (avx512, 1 thread, 3072x576 at T = 4 / 16: Q8_0 82 / 87 ->
  // 120 / 134 GMAC/s, Q4_0 96 / 100 -> 117 / 127). Decode keeps one group at a time: pairs cost
  // Q8_0 decode 4% and Q4_1 decode 13%, and Q4_1 measured slower with them at every token count
  // (a 16-sequence step 21.3 -> 22.5 ms).
  if constexpr (!kQ8Unsigned && (T == GgmlType::Q8_0 || T == GgmlType::Q4_0))
    if (nt >= 4) g = gemm_x8_pairs<T>(ng, rows, w, a, t0, nt, y, y_stride);
  // With VNNI and 512-bit vectors: pairs as one zmm for Q4_0, Q4_1 and Q8_0 (group_pair_zmm).
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
  if constexpr (!X8Format<T>::kQh)
    if (nt >= kZmmPairTokens) g = gemm_x8_zmm_pairs<T>(ng, rows, w, a, t0, nt, y, y_stride);
#endif
  for (; g < ng; ++g) {
    const uint8_t* grp = w + static_cast<uint64_t>(g) * gs;
    __m256 out[8];
    with_tile<8>(nt, [&](auto tile) { group_x8<T, decltype(tile)::value>(grp, a, t0, out); });
    store_group(out, nt, rows - 8 * g < 8 ? rows - 8 * g : 8, y, t0, y_stride, 8 * g);
  }
}

#endif  // AVX2

}  // namespace

void fill_gemm_x8(KernelTable& t) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  t.x8_q8_sums = kQ8Unsigned;
#endif
#if defined(__AVX2__) && defined(__F16C__)
#define LLMASOS_X8(type) t.gemm_x8[static_cast<uint32_t>(GgmlType::type)] = gemm_x8_avx2<GgmlType::type>
#else
#define LLMASOS_X8(type) t.gemm_x8[static_cast<uint32_t>(GgmlType::type)] = gemm_x8_scalar<GgmlType::type>
#endif
  LLMASOS_X8(Q4_0);
  LLMASOS_X8(Q4_1);
  LLMASOS_X8(Q5_0);
  LLMASOS_X8(Q5_1);
  LLMASOS_X8(Q8_0);
#undef LLMASOS_X8
#if defined(__AVX2__) && defined(__F16C__)
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q4_K)] = gemm_x8_k4_avx2<BlockQ4_Kx8>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q5_K)] = gemm_x8_k4_avx2<BlockQ5_Kx8>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q6_K)] = gemm_x8_q6_k_avx2;
#else
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q4_K)] = gemm_x8_k4_scalar<BlockQ4_Kx8>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q5_K)] = gemm_x8_k4_scalar<BlockQ5_Kx8>;
  t.gemm_x8[static_cast<uint32_t>(GgmlType::Q6_K)] = gemm_x8_q6_k_scalar;
#endif
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
