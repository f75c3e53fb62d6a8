// A float exp made of plain +, -, * and integer bit moves, so every ISA level vectorizes the same
// operations and rounds identically (libm's expf is a scalar call per element: ~10 ns each, a
// quarter of a prompt's time in softmax and SiLU). Cephes' expf: range reduction by ln 2 in two
// parts, a degree-6 polynomial, then scaling by 2^k through the exponent bits. Max relative error
// about 2 ulp over the clamped range.
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/cpu/isa.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace llmasos::cpu::LLMASOS_ISA_NS {

inline float canonical_exp(float x) {
  // Clamp so that 2^k stays a normal float: exp(88.3) ~ 2.2e38, exp(-87.3) ~ 1.2e-38 (below that the
  // true result is denormal or 0; callers only add or divide by these). NaN passes through.
  x = x > 88.3f ? 88.3f : x;
  x = x < -87.3f ? -87.3f : x;
  // k = round(x / ln 2): adding and subtracting 1.5 * 2^23 rounds to nearest in float, and
  // t = 1.5 * 2^23 + k exactly, so t's bits are 0x4B400000 + k.
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const float k = t - 12582912.0f;
  float r = x - k * 0.693359375f;  // ln 2 split: this product is exact for |k| < 2^10
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // 2^k: k (in [-126, 127]) + 127 into the exponent field, taken from t's bits in unsigned
  // arithmetic. A NaN x (p is NaN already) then gives some scale, where a float -> int conversion
  // of NaN (and the left shift of the negative result) would be undefined behaviour.
  uint32_t tb;
  std::memcpy(&tb, &t, sizeof tb);
  const uint32_t bits = (tb - 0x4B400000u + 127u) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

#if defined(__AVX2__) && !defined(__AVX512F__)
// canonical_exp on N vectors of 8 lanes: the same operations in the same order, so the same bits.
// Written out for two reasons. Each step is applied to all N vectors before the next, so N
// independent chains are interleaved in the instruction stream: one vector at a time is bound by
// the polynomial's ~25-op dependency chain (the scheduler window holds about two iterations);
// with N = 4 softmax went from 1.03 to 0.80 ns per element here (16K elements, with the test
// hook's copy). And the plain loop's clamps become compare + blend pairs, where min_ps(c, x) is
// exactly "c < x ? c : x" (NaN x passes through), likewise max_ps.
template <int N>
inline void canonical_exp8(__m256 x[N]) {
  const __m256 big = _mm256_set1_ps(12582912.0f);
  __m256 k[N], r[N], p[N];
  for (int i = 0; i < N; ++i) {
    x[i] = _mm256_max_ps(_mm256_set1_ps(-87.3f), _mm256_min_ps(_mm256_set1_ps(88.3f), x[i]));
    k[i] = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x[i], _mm256_set1_ps(1.44269504088896341f)), big), big);
  }
  for (int i = 0; i < N; ++i) r[i] = _mm256_sub_ps(x[i], _mm256_mul_ps(k[i], _mm256_set1_ps(0.693359375f)));
  for (int i = 0; i < N; ++i) r[i] = _mm256_sub_ps(r[i], _mm256_mul_ps(k[i], _mm256_set1_ps(-2.12194440e-4f)));
  for (int i = 0; i < N; ++i) p[i] = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(1.9875691500e-4f), r[i]), _mm256_set1_ps(1.3981999507e-3f));
  for (int i = 0; i < N; ++i) p[i] = _mm256_add_ps(_mm256_mul_ps(p[i], r[i]), _mm256_set1_ps(8.3334519073e-3f));
  for (int i = 0; i < N; ++i) p[i] = _mm256_add_ps(_mm256_mul_ps(p[i], r[i]), _mm256_set1_ps(4.1665795894e-2f));
  for (int i = 0; i < N; ++i) p[i] = _mm256_add_ps(_mm256_mul_ps(p[i], r[i]), _mm256_set1_ps(1.6666665459e-1f));
  for (int i = 0; i < N; ++i) p[i] = _mm256_add_ps(_mm256_mul_ps(p[i], r[i]), _mm256_set1_ps(5.0000001201e-1f));
  for (int i = 0; i < N; ++i)
    p[i] = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p[i], _mm256_mul_ps(r[i], r[i])), r[i]), _mm256_set1_ps(1.0f));
  for (int i = 0; i < N; ++i) {
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(k[i]), _mm256_set1_epi32(127)), 23);
    x[i] = _mm256_mul_ps(p[i], _mm256_castsi256_ps(bits));
  }
}
#endif

#if defined(__AVX512F__)
// canonical_exp on N vectors of 16 lanes, as canonical_exp8 (the same operations in the same order,
// each step over all N vectors before the next). The avx512 level's plain loops ran one vector at a
// time, bound by the polynomial's dependency chain.
template <int N>
inline void canonical_exp16(__m512 x[N]) {
  const __m512 big = _mm512_set1_ps(12582912.0f);
  __m512 k[N], r[N], p[N];
  for (int i = 0; i < N; ++i) {
    x[i] = _mm512_max_ps(_mm512_set1_ps(-87.3f), _mm512_min_ps(_mm512_set1_ps(88.3f), x[i]));
    k[i] = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(x[i], _mm512_set1_ps(1.44269504088896341f)), big), big);
  }
  for (int i = 0; i < N; ++i) r[i] = _mm512_sub_ps(x[i], _mm512_mul_ps(k[i], _mm512_set1_ps(0.693359375f)));
  for (int i = 0; i < N; ++i) r[i] = _mm512_sub_ps(r[i], _mm512_mul_ps(k[i], _mm512_set1_ps(-2.12194440e-4f)));
  for (int i = 0; i < N; ++i) p[i] = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(1.9875691500e-4f), r[i]), _mm512_set1_ps(1.3981999507e-3f));
  for (int i = 0; i < N; ++i) p[i] = _mm512_add_ps(_mm512_mul_ps(p[i], r[i]), _mm512_set1_ps(8.3334519073e-3f));
  for (int i = 0; i < N; ++i) p[i] = _mm512_add_ps(_mm512_mul_ps(p[i], r[i]), _mm512_set1_ps(4.1665795894e-2f));
  for (int i = 0; i < N; ++i) p[i] = _mm512_add_ps(_mm512_mul_ps(p[i], r[i]), _mm512_set1_ps(1.6666665459e-1f));
  for (int i = 0; i < N; ++i) p[i] = _mm512_add_ps(_mm512_mul_ps(p[i], r[i]), _mm512_set1_ps(5.0000001201e-1f));
  for (int i = 0; i < N; ++i)
    p[i] = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p[i], _mm512_mul_ps(r[i], r[i])), r[i]), _mm512_set1_ps(1.0f));
  for (int i = 0; i < N; ++i) {
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(k[i]), _mm512_set1_epi32(127)), 23);
    x[i] = _mm512_mul_ps(p[i], _mm512_castsi512_ps(bits));
  }
}
#endif

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
