// AVX-512 kernels (F + BW + VL + DQ + VNNI): 512-bit float dot products, and two 32-element blocks
// per VNNI instruction for the hottest formats (Q4_0, Q4_1, Q8_0). Every other entry keeps the
// AVX2 code of quant_dot_avx2.cc, which at this level already uses 256-bit VNNI. The float
// operations follow the canonical order of quant_dot.h, so results equal the other levels' bits.
#include "kernels/cpu/quant_dot.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__) && defined(__F16C__)
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/widen_simd.h"
#include "quant/quant_blocks.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

using namespace llmasos::quant;

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// ---- float weights: 32 elements per step, masked loads for the tail ------------------------------

inline __m512 load16_f32(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16_f32(__mmask16 m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load16_f16(__mmask16 m, const uint16_t* p) {  // (unmasked loads: widen_simd.h)
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
inline __m512 load16_bf16(__mmask16 m, const uint16_t* p) {
  return bf16x16(_mm256_maskz_loadu_epi16(m, p));
}

// Canonical order (quant_dot.h): element i into lane i % 32 of two 16-lane accumulators (lanes
// 0..15, 16..31), mul then add; a tail is loaded masked (0 * 0 adds +0: no change). The tree's
// first two halvings run on 512 and 256 bits, the rest is the AVX2 level's canonical_tree8_ps.
inline float tree32_ps(__m512 z0, __m512 z1) {
  const __m512 z = _mm512_add_ps(z0, z1);  // h = 16
  const __m256 lo = _mm512_castps512_ps256(z);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(z), 1));
  return canonical_tree8_ps(_mm256_add_ps(lo, hi));  // h = 8, then 4, 2, 1
}

#define LLMASOS_FLOAT_DOT512(load16)                                                      \
  __m512 z0 = _mm512_setzero_ps(), z1 = _mm512_setzero_ps();                              \
  int64_t i = 0;                                                                          \
  for (; i + 32 <= n; i += 32) {                                                          \
    z0 = _mm512_add_ps(z0, _mm512_mul_ps(load16(w + i), _mm512_loadu_ps(x + i)));         \
    z1 = _mm512_add_ps(z1, _mm512_mul_ps(load16(w + i + 16), _mm512_loadu_ps(x + i + 16))); \
  }                                                                                       \
  if (i < n) {                                                                            \
    const unsigned r = static_cast<unsigned>(n - i);                                      \
    const __mmask16 m0 = static_cast<__mmask16>(r >= 16 ? 0xffffu : (1u << r) - 1u);      \
    const __mmask16 m1 = static_cast<__mmask16>(r > 16 ? (1u << (r - 16)) - 1u : 0u);     \
    z0 = _mm512_add_ps(z0, _mm512_mul_ps(load16(m0, w + i), _mm512_maskz_loadu_ps(m0, x + i))); \
    z1 = _mm512_add_ps(z1, _mm512_mul_ps(load16(m1, w + i + 16),                          \
                                         _mm512_maskz_loadu_ps(m1, x + i + 16)));         \
  }                                                                                       \
  *s = tree32_ps(z0, z1);

void vec_dot_f32(int64_t n, float* s, const void* vw, const void* vx) {
  const float* w = static_cast<const float*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT512(load16_f32)
}

void vec_dot_f16(int64_t n, float* s, const void* vw, const void* vx) {
  const uint16_t* w = static_cast<const uint16_t*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT512(load16_f16)
}

void vec_dot_bf16(int64_t n, float* s, const void* vw, const void* vx) {
  const uint16_t* w = static_cast<const uint16_t*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT512(load16_bf16)
}
#undef LLMASOS_FLOAT_DOT512

// ---- two legacy blocks per VNNI instruction --------------------------------------------------------
// Block b (even) fills the low 256 bits (int32 lanes 0..7 after dpbusd), block b + 1 the high 256
// bits (lanes 8..15): exactly the canonical 16-lane accumulator of quant_dot.h (even blocks in
// lanes 0..7, odd blocks in 8..15), so one 512-bit mul + add per pair. An odd last block pairs
// with zeros and a zero scale (adds +0). dpbusd multiplies unsigned by signed bytes; signed
// weights are offset to unsigned and the offset times sum(x) subtracted:
//   sum(w x) = sum((w + c) x) - sum(c x), exact in int32 per lane (no saturation in VPDPBUSD).

inline __m256i nibbles32(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

inline __m256i load256(const int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

inline __m512i cat256(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Lanes 0..7 = d0, lanes 8..15 = d1.
inline __m512 scale2(float d0, float d1) {
  return _mm512_mask_blend_ps(static_cast<__mmask16>(0xff00), _mm512_set1_ps(d0), _mm512_set1_ps(d1));
}

inline __m512i dpbusd(__m512i u, __m512i s) {
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
}

// tree16 of the canonical accumulator: h = 8 on the two halves, then the 8-lane tree.
inline float tree16_ps(__m512 acc) {
  const __m256 lo = _mm512_castps512_ps256(acc);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
  return canonical_tree8_ps(_mm256_add_ps(lo, hi));
}

void vec_dot_q4_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ4_0* w = static_cast<const BlockQ4_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  const int64_t nb = n / kQK;
  const __m512i eight = _mm512_set1_epi8(8);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; i += 2) {
    const bool two = i + 1 < nb;
    const __m512i qw = cat256(nibbles32(w[i].qs), two ? nibbles32(w[i + 1].qs) : _mm256_setzero_si256());
    const __m512i qx = cat256(load256(x[i].qs), two ? load256(x[i + 1].qs) : _mm256_setzero_si256());
    const __m512i dot = _mm512_sub_epi32(dpbusd(qw, qx), dpbusd(eight, qx));  // q - 8
    const float d0 = h2f(w[i].d) * h2f(x[i].d);
    const float d1 = two ? h2f(w[i + 1].d) * h2f(x[i + 1].d) : 0.0f;
    acc = _mm512_add_ps(acc, _mm512_mul_ps(scale2(d0, d1), _mm512_cvtepi32_ps(dot)));
  }
  *s = tree16_ps(acc);
}

void vec_dot_q4_1_q8_1(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ4_1* w = static_cast<const BlockQ4_1*>(vw);
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(vx);
  const int64_t nb = n / kQK;
  __m512 acc = _mm512_setzero_ps();
  float ms = 0;  // min terms in block order
  for (int64_t i = 0; i < nb; i += 2) {
    const bool two = i + 1 < nb;
    const __m512i qw = cat256(nibbles32(w[i].qs), two ? nibbles32(w[i + 1].qs) : _mm256_setzero_si256());
    const __m512i qx = cat256(load256(x[i].qs), two ? load256(x[i + 1].qs) : _mm256_setzero_si256());
    const float d0 = h2f(w[i].d) * h2f(x[i].d);
    const float d1 = two ? h2f(w[i + 1].d) * h2f(x[i + 1].d) : 0.0f;
    ms += h2f(w[i].m) * h2f(x[i].s);
    if (two) ms += h2f(w[i + 1].m) * h2f(x[i + 1].s);
    acc = _mm512_add_ps(acc, _mm512_mul_ps(scale2(d0, d1), _mm512_cvtepi32_ps(dpbusd(qw, qx))));
  }
  const float total = tree16_ps(acc);
  *s = total + ms;
}

void vec_dot_q8_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  const int64_t nb = n / kQK;
  const __m512i off = _mm512_set1_epi8(static_cast<char>(0x80));  // w ^ 0x80 = w + 128, unsigned
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; i += 2) {
    const bool two = i + 1 < nb;
    const __m512i qw = cat256(load256(w[i].qs), two ? load256(w[i + 1].qs) : _mm256_setzero_si256());
    const __m512i qx = cat256(load256(x[i].qs), two ? load256(x[i + 1].qs) : _mm256_setzero_si256());
    const __m512i dot = _mm512_sub_epi32(dpbusd(_mm512_xor_si512(qw, off), qx), dpbusd(off, qx));
    const float d0 = h2f(w[i].d) * h2f(x[i].d);
    const float d1 = two ? h2f(w[i + 1].d) * h2f(x[i + 1].d) : 0.0f;
    acc = _mm512_add_ps(acc, _mm512_mul_ps(scale2(d0, d1), _mm512_cvtepi32_ps(dot)));
  }
  *s = tree16_ps(acc);
}

// Decode's row loop over this file's kernel (the AVX2 file's vec_dot_rows wraps the 256-bit one).
template <void (*Dot)(int64_t, float*, const void*, const void*)>
void rows_1x(int64_t n, int64_t nr, float* s, const void* w, uint64_t ws, const void* qx) {
  for (int64_t r = 0; r < nr; ++r) Dot(n, s + r, static_cast<const uint8_t*>(w) + r * ws, qx);
}

}  // namespace

void fill_quant_kernels_avx512(KernelTable& t) {
  auto set = [&](GgmlType type, void (*fn)(int64_t, float*, const void*, const void*)) {
    t.vec_dot[static_cast<uint32_t>(type)] = fn;
  };
  t.vec_dot_rows[static_cast<uint32_t>(GgmlType::Q4_0)] = rows_1x<vec_dot_q4_0_q8_0>;
  t.vec_dot_rows[static_cast<uint32_t>(GgmlType::Q4_1)] = rows_1x<vec_dot_q4_1_q8_1>;
  t.vec_dot_rows[static_cast<uint32_t>(GgmlType::Q8_0)] = rows_1x<vec_dot_q8_0_q8_0>;
  set(GgmlType::F32, vec_dot_f32);
  set(GgmlType::F16, vec_dot_f16);
  set(GgmlType::BF16, vec_dot_bf16);
  set(GgmlType::Q4_0, vec_dot_q4_0_q8_0);
  set(GgmlType::Q4_1, vec_dot_q4_1_q8_1);
  set(GgmlType::Q8_0, vec_dot_q8_0_q8_0);
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS

#else
namespace llmasos::cpu::LLMASOS_ISA_NS {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// Built with AVX-512 but without VNNI or F16C: keep the AVX2 kernels.
void fill_quant_kernels_avx512(KernelTable&) {}
#endif
}  // namespace llmasos::cpu::LLMASOS_ISA_NS
#endif
