// x8 products with 16-bit activations: matmul_precise's path for packed Q4_0 ... Q8_0 weights (the
// model's Q/K/V, where 8-bit activation errors get amplified by the attention softmax). One product
// with int16 activations replaces the two 8-bit products (quantized value + quantized residual)
// that the other formats take, at about the cost of one. Compiled once per ISA level: the scalar
// canonical order (quant_dot.h, "16-bit activations") and, with AVX2, vpmaddwd on weights widened
// to 16 bits (VNNI vpdpwssd at the avx512 level). Activation block: float d, then 32 int16 quants
// (kQ16BlockBytes); per block also the exact sum of its quants (X8Act::sum, for the _0 formats'
// offset) and sx = d * that sum (X8Act::s, for the _1 formats' min terms).
#include <cstdint>
#include <cstring>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/quant_dot.h"
#include "kernels/cpu/widen_simd.h"
#include "kernels/cpu/x8_format.h"
#include "quant/quant_blocks.h"

#if defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>
#endif

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

constexpr float kQ16Max = 32767.0f;

// Token t's 32 int16 quants of block b (a.block_bytes = kQ16BlockBytes, a.qs_offset = 4).
inline const int16_t* q16_quants(const X8Act& a, int64_t t, int64_t b) {
  return reinterpret_cast<const int16_t*>(act_block_quants(a, t, b));
}

// ---- portable: the canonical order written out -------------------------------------------------

// v clamped to +-32767 (NaN -> 0), then rounded to nearest even by the 1.5 * 2^23 trick: the
// result of cvtps2dq under the default rounding mode (kernels build without fast-math).
[[maybe_unused]] inline int16_t q16_round(float v) {
  if (!(v == v)) return 0;
  v = v < -kQ16Max ? -kQ16Max : (v > kQ16Max ? kQ16Max : v);
  const float r = (v + 12582912.0f) - 12582912.0f;
  return static_cast<int16_t>(r);
}

[[maybe_unused]] void quantize_q16_scalar(const float* x, void* dst, int64_t n) {
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, out += kQ16BlockBytes) {
    float amax = 0.0f;  // NaN never wins (as max_ps(v, acc) keeps acc)
    for (int i = 0; i < kQK; ++i) {
      const float m = x[i] < 0 ? -x[i] : x[i];
      if (m > amax) amax = m;
    }
    const float d = amax / kQ16Max;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    std::memcpy(out, &d, 4);
    int16_t q[kQK];
    for (int i = 0; i < kQK; ++i) q[i] = q16_round(x[i] * id);
    std::memcpy(out + 4, q, sizeof(q));
  }
}

template <GgmlType T>
[[maybe_unused]] void gemm_q16_scalar(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                                      int64_t nt, float* y, int64_t y_stride) {
  gemm_x8_canonical<T>(ng, rows, w, a, t0, nt, y, y_stride, q16_quants);
}

#if defined(__AVX2__) && defined(__F16C__)

// ---- AVX2 ---------------------------------------------------------------------------------------

void quantize_q16_avx2(const float* x, void* dst, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f), hi = _mm256_set1_ps(kQ16Max), lo = _mm256_set1_ps(-kQ16Max);
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, out += kQ16BlockBytes) {
    __m256 v[4], amax8 = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 8 * j);
      amax8 = _mm256_max_ps(_mm256_andnot_ps(sign, v[j]), amax8);  // keeps amax8 where v is NaN
    }
    const float d = hmax_ps(amax8) / kQ16Max;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    std::memcpy(out, &d, 4);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) {
      __m256 s = _mm256_mul_ps(v[j], id);
      s = _mm256_and_ps(s, _mm256_cmp_ps(s, s, _CMP_ORD_Q));  // NaN -> 0
      q[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(s, lo), hi));
    }
    // packs interleave the 128-bit lanes; the permute restores element order.
    for (int h = 0; h < 2; ++h)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 4 + 32 * h),
                          _mm256_permute4x64_epi64(_mm256_packs_epi32(q[2 * h], q[2 * h + 1]), 0xD8));
  }
}

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)

// VNNI: each row's dword lane takes its quants (q0, q1) in one register and (q2, q3) in another
// (in-lane byte shuffles; Q8_0's bytes go to the high byte of each word and shift back down
// sign-extended), against the token's pairs (x0, x1) and (x2, x3) read by vpdpwssd's embedded
// broadcast straight from the activation block. Rows stay in order (no hadd, no perm_rows) and
// no broadcast instruction runs (the qword broadcasts and hadd below cost Q4_1 Q/K/V 20%).
constexpr bool kRowsInOrder = true;
#define LLMASOS_Q16_TOKENS 8  // tokens per group pass (q16_block_sums' M)

// One block's exact sums for M <= 8 tokens (32 vector registers hold them).
template <GgmlType T, int M>
inline void q16_block_sums(const uint8_t* blk, const int16_t* const x[M], __m256i S[M]) {
  using F = X8Format<T>;
  constexpr char z = static_cast<char>(0x80);  // vpshufb: a zero byte
  // Per 128-bit lane, rows j = 0..3 hold their 4 quants at bytes 4j .. 4j + 3.
  const __m256i ctl_a = F::kQ8 ? _mm256_setr_epi8(z, 0, z, 1, z, 4, z, 5, z, 8, z, 9, z, 12, z, 13,
                                                  z, 0, z, 1, z, 4, z, 5, z, 8, z, 9, z, 12, z, 13)
                               : _mm256_setr_epi8(0, z, 1, z, 4, z, 5, z, 8, z, 9, z, 12, z, 13, z,
                                                  0, z, 1, z, 4, z, 5, z, 8, z, 9, z, 12, z, 13, z);
  const __m256i ctl_b = _mm256_add_epi8(ctl_a, _mm256_set1_epi8(2));  // 0x80 + 2 still zeroes
  const uint8_t* qs = blk + F::kQs;
  __m256i lo[M], hi[M];
  for (int t = 0; t < M; ++t) lo[t] = hi[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) {
    __m256i q;
    if constexpr (F::kQ8) {
      q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * k));
    } else {  // register k: the low nibbles of 32-byte run k % 4 (k < 4), else the high ones
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (k % 4)));
      q = _mm256_and_si256(k < 4 ? v : _mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f));
      if constexpr (F::kQh) {  // bit k of each qh byte to bit 4 (bits crossing bytes are masked off)
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + F::kQhAt));
        const __m256i hk = k <= 4 ? _mm256_slli_epi16(h, 4 - k) : _mm256_srli_epi16(h, k - 4);
        q = _mm256_or_si256(q, _mm256_and_si256(hk, _mm256_set1_epi8(0x10)));
      }
    }
    __m256i wa = _mm256_shuffle_epi8(q, ctl_a), wb = _mm256_shuffle_epi8(q, ctl_b);
    if constexpr (F::kQ8) {
      wa = _mm256_srai_epi16(wa, 8);
      wb = _mm256_srai_epi16(wb, 8);
    }
#pragma GCC unroll 8
    for (int t = 0; t < M; ++t) {
      lo[t] = dpwssd_bcast(lo[t], wa, x[t] + 4 * k);
      hi[t] = dpwssd_bcast(hi[t], wb, x[t] + 4 * k + 2);
    }
  }
  for (int t = 0; t < M; ++t) S[t] = _mm256_add_epi32(lo[t], hi[t]);
}

#else

constexpr bool kRowsInOrder = false;
#define LLMASOS_Q16_TOKENS 4

// One block's exact sums for M <= 4 tokens (16 vector registers hold them). An x8 register (8 rows x 4 elements) widens to two,
// each row's 4 elements in two int32 lanes of pair sums (vpmaddwd against the token's 4 quants
// broadcast), and hadd of the two gives one lane per row: Q8_0's sign-extension of the register's
// halves (rows 0-3, 4-7) leaves them in the order r0 r1 r4 r5 | r2 r3 r6 r7 (perm_rows).
template <GgmlType T, int M>
inline void q16_block_sums(const uint8_t* blk, const int16_t* const x[M], __m256i S[M]) {
  using F = X8Format<T>;
  const uint8_t* qs = blk + F::kQs;
  __m256i lo[M], hi[M];
  for (int t = 0; t < M; ++t) lo[t] = hi[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) {
    __m256i wl, wh;
    if constexpr (X8Format<T>::kQ8) {
      wl = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 32 * k)));
      wh = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 32 * k + 16)));
    } else {  // register k: the low nibbles of 32-byte run k % 4 (k < 4), else the high ones;
      // in-lane unpacks widen rows 0 1 | 4 5 and 2 3 | 6 7, so hadd gives rows in order.
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (k % 4)));
      __m256i q = _mm256_and_si256(k < 4 ? v : _mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f));
      if constexpr (F::kQh) {  // bit k of each qh byte to bit 4 (bits crossing bytes are masked off)
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + F::kQhAt));
        const __m256i hk = k <= 4 ? _mm256_slli_epi16(h, 4 - k) : _mm256_srli_epi16(h, k - 4);
        q = _mm256_or_si256(q, _mm256_and_si256(hk, _mm256_set1_epi8(0x10)));
      }
      wl = _mm256_unpacklo_epi8(q, _mm256_setzero_si256());
      wh = _mm256_unpackhi_epi8(q, _mm256_setzero_si256());
    }
#pragma GCC unroll 8
    for (int t = 0; t < M; ++t) {
      int64_t v;
      std::memcpy(&v, x[t] + 4 * k, 8);
      const __m256i xb = _mm256_set1_epi64x(v);
      lo[t] = _mm256_add_epi32(lo[t], _mm256_madd_epi16(wl, xb));
      hi[t] = _mm256_add_epi32(hi[t], _mm256_madd_epi16(wh, xb));
    }
    // Step by step: left free, GCC reassociates the block's integer adds into a tree and spills
    // the products (a third slower).
#pragma GCC unroll 8
    for (int t = 0; t < M; ++t) asm("" : "+v"(lo[t]), "+v"(hi[t]));
  }
  for (int t = 0; t < M; ++t) S[t] = _mm256_hadd_epi32(lo[t], hi[t]);
}

#endif

// Rows of the hadd sums in the order r0 r1 r4 r5 | r2 r3 r6 r7 (Q8_0's widening) back in order and
// the reverse (qwords 0 2 1 3: its own inverse); the identity where the widening keeps the order.
template <GgmlType T>
inline __m256 perm_rows(__m256 v) {
  if constexpr (!X8Format<T>::kQ8 || kRowsInOrder) return v;
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8));
}

// One group of 8 rows x M <= 4 tokens (t0 ..), stored to the `valid` first rows of y.
template <GgmlType T, int M>
inline void group_q16(const uint8_t* grp, const X8Act& a, int64_t t0, int64_t valid, float* y,
                      int64_t y_stride, int64_t col) {
  using F = X8Format<T>;
  const int64_t nb = a.nb;
  __m256 acc[M];
  for (int t = 0; t < M; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = grp + static_cast<uint64_t>(b) * F::kBytes;
    const int16_t* x[M];
    for (int t = 0; t < M; ++t) x[t] = q16_quants(a, t0 + t, b);
    __m256i S[M];
    q16_block_sums<T, M>(blk, x, S);
    const __m256 dw = perm_rows<T>(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk))));
    for (int t = 0; t < M; ++t) {
      if constexpr (F::kOff != 0) S[t] = _mm256_sub_epi32(S[t], _mm256_set1_epi32(F::kOff * a.sum[(t0 + t) * nb + b]));
      const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(a.d[(t0 + t) * nb + b]));
      acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(S[t]), acc[t]);
    }
  }
  for (int t = 0; t < M; ++t) acc[t] = perm_rows<T>(acc[t]);  // rows back in order
  if constexpr (F::kMin) add_min_terms<T, M>(grp, a, t0, acc);
  store_group(acc, M, valid, y, t0, y_stride, col);
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
// Two groups (16 rows, one zmm: group 0 in lanes 0..7, group 1 in 8..15) x M <= 8 tokens, for
// Q4_0, Q4_1 and Q8_0: q16_block_sums' shuffles run per 128-bit lane, so both groups' register k
// as one zmm take the same ones, and each vpdpwssd ({1to16} broadcast) and float op serves 16 rows.
// Each lane runs group_q16's ops on its row, so the bits are the same (rows in order at VNNI).
// Xeon, avx512 level forced, 1 thread, on / off in one process (outputs compared bit for bit, and
// with the generic level's): 16 tokens 0.60-0.75 of the time (Q4_1 qkv 0.60, head 0.75; Q8_0 0.71,
// 0.78; Q4_0 0.63, 0.69), 3 tokens 0.75-0.83 on Q/K/V-sized products. Decode keeps group_q16
// (as gemm_x8_avx2 keeps group_x8: Zen 4 runs 512-bit ops in two halves, not measured there).
template <GgmlType T, int M>
inline void group_pair_q16(const uint8_t* g0, const uint8_t* g1, const X8Act& a, int64_t t0, __m512 out[M]) {
  using F = X8Format<T>;
  static_assert(!F::kQh, "no 5-bit formats here");
  constexpr char z = static_cast<char>(0x80);
  const __m512i ctl_a = _mm512_broadcast_i32x4(
      F::kQ8 ? _mm_setr_epi8(z, 0, z, 1, z, 4, z, 5, z, 8, z, 9, z, 12, z, 13)
             : _mm_setr_epi8(0, z, 1, z, 4, z, 5, z, 8, z, 9, z, 12, z, 13, z));
  const __m512i ctl_b = _mm512_add_epi8(ctl_a, _mm512_set1_epi8(2));
  const int64_t nb = a.nb;
  __m512 acc[M];
  for (int t = 0; t < M; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* b0 = g0 + static_cast<uint64_t>(b) * F::kBytes;
    const uint8_t* b1 = g1 + static_cast<uint64_t>(b) * F::kBytes;
    const int16_t* x[M];
    for (int t = 0; t < M; ++t) x[t] = q16_quants(a, t0 + t, b);
    __m512i lo[M], hi[M];
    for (int t = 0; t < M; ++t) lo[t] = hi[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      __m512i q;
      if constexpr (F::kQ8) {
        q = load_pair(b0, b1, F::kQs + 32 * k);
      } else {  // register k: the low nibbles of 32-byte run k % 4 (k < 4), else the high ones
        const __m512i v = load_pair(b0, b1, F::kQs + 32 * (k % 4));
        q = _mm512_and_si512(k < 4 ? v : _mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0f));
      }
      __m512i wa = _mm512_shuffle_epi8(q, ctl_a), wb = _mm512_shuffle_epi8(q, ctl_b);
      if constexpr (F::kQ8) {
        wa = _mm512_srai_epi16(wa, 8);
        wb = _mm512_srai_epi16(wb, 8);
      }
#pragma GCC unroll 8
      for (int t = 0; t < M; ++t) {
        lo[t] = dpwssd_bcast16(lo[t], wa, x[t] + 4 * k);
        hi[t] = dpwssd_bcast16(hi[t], wb, x[t] + 4 * k + 2);
      }
    }
    const __m512 dw = halves_pair(b0, b1, 0);
    for (int t = 0; t < M; ++t) {
      const int64_t ti = (t0 + t) * nb + b;
      acc[t] = scale_pair<F::kOff>(acc[t], dw, a.d[ti], _mm512_add_epi32(lo[t], hi[t]), a.sum[ti]);
    }
  }
  if constexpr (F::kMin) add_min_terms_pair<T, M>(g0, g1, a, t0, acc);
  for (int t = 0; t < M; ++t) out[t] = acc[t];
}

// Pairs of groups through group_pair_q16 (any number of tokens, 8 at a time); returns the groups
// done (an odd last one is left to the caller).
template <GgmlType T>
[[gnu::noinline]] int64_t gemm_q16_pairs(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                                         int64_t nt, float* y, int64_t y_stride) {
  const uint64_t gs = static_cast<uint64_t>(a.nb) * X8Format<T>::kBytes;
  return run_pairs_zmm(ng, rows, w, gs, t0, nt, y, y_stride, [&](const uint8_t* g0, const uint8_t* g1, int64_t s,
                                                                 auto tile, __m512* out) {
    group_pair_q16<T, decltype(tile)::value>(g0, g1, a, s, out);
  });
}
#endif

// Any number of tokens (the amx level, whose table this one seeds, passes up to 16), 8 at a time
// with VNNI (precise Q/K/V 960x576 at T = 16: 5-9% faster than 4), else 4. Its own walk, each group storing its tiles: run_groups' out[] tiles measured 10-13% slower here,
// and the switch below as with_tile<4> 12% slower (precise Q8_0 960x576, T = 16: 56 -> 49 GMAC/s).
constexpr int kQ16Tokens = LLMASOS_Q16_TOKENS;

template <GgmlType T>
void gemm_q16_avx2(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a, int64_t t0,
                   int64_t nt, float* y, int64_t y_stride) {
  const uint64_t gs = static_cast<uint64_t>(a.nb) * X8Format<T>::kBytes;
  int64_t g = 0;
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
  if constexpr (!X8Format<T>::kQh)
    if (nt >= 2) g = gemm_q16_pairs<T>(ng, rows, w, a, t0, nt, y, y_stride);
#endif
  for (; g < ng; ++g) {
    const uint8_t* grp = w + static_cast<uint64_t>(g) * gs;
    const int64_t valid = rows - 8 * g < 8 ? rows - 8 * g : 8;
    for (int64_t s = t0; s < t0 + nt; s += kQ16Tokens) {
      switch (t0 + nt - s) {
        case 1: group_q16<T, 1>(grp, a, s, valid, y, y_stride, 8 * g); break;
        case 2: group_q16<T, 2>(grp, a, s, valid, y, y_stride, 8 * g); break;
        case 3: group_q16<T, 3>(grp, a, s, valid, y, y_stride, 8 * g); break;
#if LLMASOS_Q16_TOKENS == 8
        case 4: group_q16<T, 4>(grp, a, s, valid, y, y_stride, 8 * g); break;
        case 5: group_q16<T, 5>(grp, a, s, valid, y, y_stride, 8 * g); break;
        case 6: group_q16<T, 6>(grp, a, s, valid, y, y_stride, 8 * g); break;
        case 7: group_q16<T, 7>(grp, a, s, valid, y, y_stride, 8 * g); break;
#endif
        default: group_q16<T, kQ16Tokens>(grp, a, s, valid, y, y_stride, 8 * g); break;
      }
    }
  }
}

#endif  // AVX2

}  // namespace

void fill_gemm_q16(KernelTable& t) {
#if defined(__AVX2__) && defined(__F16C__)
  t.quantize_q16 = quantize_q16_avx2;
#define LLMASOS_Q16(type) t.gemm_x8_q16[static_cast<uint32_t>(GgmlType::type)] = gemm_q16_avx2<GgmlType::type>
#else
  t.quantize_q16 = quantize_q16_scalar;
#define LLMASOS_Q16(type) t.gemm_x8_q16[static_cast<uint32_t>(GgmlType::type)] = gemm_q16_scalar<GgmlType::type>
#endif
  LLMASOS_Q16(Q4_0);
  LLMASOS_Q16(Q4_1);
  LLMASOS_Q16(Q5_0);
  LLMASOS_Q16(Q5_1);
  LLMASOS_Q16(Q8_0);
#undef LLMASOS_Q16
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
