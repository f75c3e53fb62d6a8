// Quantized dot products, compiled once per ISA level: the portable scalar kernels (integer dot
// product per block, then the canonical float sequence of quant_dot.h) for every weight type,
// overridden by the SIMD files, which must give the same bits.
// No STL and no shared inline code here (see isa.h): helpers are local to this level.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/quant_dot.h"
#include "quant/quant_blocks.h"

#if defined(__SSE2__) || defined(__F16C__)
#include <immintrin.h>
#endif

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

using namespace llmasos::quant;

float h2f(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    float f = static_cast<float>(mant) * 5.9604644775390625e-8f;  // subnormal: mant * 2^-24
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
#endif
}

float bf2f(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// ---- float weights, float activations -----------------------------------------------------------
// Canonical order (quant_dot.h): element i into acc[i % 32], then the halving tree.

#define LLMASOS_FLOAT_DOT(widen)                                 \
  float acc[32] = {0};                                           \
  int64_t i = 0;                                                 \
  for (; i + 32 <= n; i += 32)                                   \
    for (int j = 0; j < 32; ++j) acc[j] += widen(w[i + j]) * x[i + j]; \
  for (int j = 0; i + j < n; ++j) acc[j] += widen(w[i + j]) * x[i + j]; \
  *s = canonical_tree(acc, 32);

inline float f32_id(float v) { return v; }

void vec_dot_f32(int64_t n, float* s, const void* vw, const void* vx) {
  const float* w = static_cast<const float*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT(f32_id)
}

void vec_dot_f16(int64_t n, float* s, const void* vw, const void* vx) {
  const uint16_t* w = static_cast<const uint16_t*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT(h2f)
}

void vec_dot_bf16(int64_t n, float* s, const void* vw, const void* vx) {
  const uint16_t* w = static_cast<const uint16_t*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT(bf2f)
}
#undef LLMASOS_FLOAT_DOT

// ---- legacy 32-element formats against Q8_0 / Q8_1 ----------------------------------------------
// Each block is first unpacked to 32 int8 values, so one int8 dot routine serves all formats.
// The float part follows the canonical order of
// quant_dot.h: 8 lane sums of 4 products per block, scaled and added into acc[(b % 2) * 8 + l].

// acc[l] += d * float(p[l]) for l < 8, p[l] = sum of a[e] * b[e] for e = 4l .. 4l+3 (the int32
// lanes of the SIMD dot products). SSE2 (every x86-64) does the integer part with pmaddwd.
void add_block(float* acc, float d, const int8_t* a, const int8_t* b) {
#if defined(__SSE2__)
  auto lanes4 = [](__m128i x, __m128i y) {  // 16 int8 pairs -> 4 sums of 4 products
    const __m128i xl = _mm_srai_epi16(_mm_unpacklo_epi8(x, x), 8), yl = _mm_srai_epi16(_mm_unpacklo_epi8(y, y), 8);
    const __m128i xh = _mm_srai_epi16(_mm_unpackhi_epi8(x, x), 8), yh = _mm_srai_epi16(_mm_unpackhi_epi8(y, y), 8);
    const __m128 r0 = _mm_castsi128_ps(_mm_madd_epi16(xl, yl)), r1 = _mm_castsi128_ps(_mm_madd_epi16(xh, yh));
    return _mm_add_epi32(_mm_castps_si128(_mm_shuffle_ps(r0, r1, _MM_SHUFFLE(2, 0, 2, 0))),
                         _mm_castps_si128(_mm_shuffle_ps(r0, r1, _MM_SHUFFLE(3, 1, 3, 1))));
  };
  auto ld = [](const int8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); };
  const __m128 vd = _mm_set1_ps(d);
  const __m128 t0 = _mm_mul_ps(vd, _mm_cvtepi32_ps(lanes4(ld(a), ld(b))));
  const __m128 t1 = _mm_mul_ps(vd, _mm_cvtepi32_ps(lanes4(ld(a + 16), ld(b + 16))));
  _mm_storeu_ps(acc, _mm_add_ps(_mm_loadu_ps(acc), t0));
  _mm_storeu_ps(acc + 4, _mm_add_ps(_mm_loadu_ps(acc + 4), t1));
#else
  for (int l = 0; l < 8; ++l) {
    int p = 0;
    for (int e = 4 * l; e < 4 * l + 4; ++e) p += a[e] * b[e];
    acc[l] += d * static_cast<float>(p);
  }
#endif
}

// Low nibbles are elements 0..15, high nibbles 16..31; `offset` is subtracted from each.
void unpack_nibbles(const uint8_t* qs, int offset, int8_t* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>((qs[j] & 0x0f) - offset);
    q[j + 16] = static_cast<int8_t>((qs[j] >> 4) - offset);
  }
}

// Adds the 5th bit (bit j of qh -> element j) to unpacked nibbles.
void add_high_bits(const uint8_t* qh_bytes, int8_t* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < kQK; ++j) q[j] = static_cast<int8_t>(q[j] + (((qh >> j) & 1) << 4));
}

void vec_dot_q4_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ4_0* w = static_cast<const BlockQ4_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  float acc[16] = {0};
  int8_t q[kQK];
  for (int64_t i = 0; i < n / kQK; ++i) {
    unpack_nibbles(w[i].qs, 8, q);
    add_block(acc + (i & 1) * 8, h2f(w[i].d) * h2f(x[i].d), q, x[i].qs);
  }
  *s = canonical_tree(acc, 16);
}

// sum(d q + m) * (dx qx) = d dx sum(q qx) + m * (dx sum(qx)) and Q8_1 stores dx sum(qx) as s.
void vec_dot_q4_1_q8_1(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ4_1* w = static_cast<const BlockQ4_1*>(vw);
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(vx);
  float acc[16] = {0};
  float ms = 0;
  int8_t q[kQK];
  for (int64_t i = 0; i < n / kQK; ++i) {
    unpack_nibbles(w[i].qs, 0, q);
    add_block(acc + (i & 1) * 8, h2f(w[i].d) * h2f(x[i].d), q, x[i].qs);
    ms += h2f(w[i].m) * h2f(x[i].s);
  }
  *s = canonical_tree(acc, 16) + ms;
}

void vec_dot_q5_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ5_0* w = static_cast<const BlockQ5_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  float acc[16] = {0};
  int8_t q[kQK];
  for (int64_t i = 0; i < n / kQK; ++i) {
    unpack_nibbles(w[i].qs, 16, q);
    add_high_bits(w[i].qh, q);
    add_block(acc + (i & 1) * 8, h2f(w[i].d) * h2f(x[i].d), q, x[i].qs);
  }
  *s = canonical_tree(acc, 16);
}

void vec_dot_q5_1_q8_1(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ5_1* w = static_cast<const BlockQ5_1*>(vw);
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(vx);
  float acc[16] = {0};
  float ms = 0;
  int8_t q[kQK];
  for (int64_t i = 0; i < n / kQK; ++i) {
    unpack_nibbles(w[i].qs, 0, q);
    add_high_bits(w[i].qh, q);
    add_block(acc + (i & 1) * 8, h2f(w[i].d) * h2f(x[i].d), q, x[i].qs);
    ms += h2f(w[i].m) * h2f(x[i].s);
  }
  *s = canonical_tree(acc, 16) + ms;
}

void vec_dot_q8_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  float acc[16] = {0};
  for (int64_t i = 0; i < n / kQK; ++i) {
    add_block(acc + (i & 1) * 8, h2f(w[i].d) * h2f(x[i].d), w[i].qs, x[i].qs);
  }
  *s = canonical_tree(acc, 16);
}

// ---- K-quants against Q8_K ----------------------------------------------------------------------

// The 6-bit scale and min of sub-block j (see quant_kquants.cc for the packing).
void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Per super-block: d dx sum_j sc_j sum(q qx) - dmin dx sum_j m_j sum(qx of sub-block j), where
// the sums of qx come from Q8_K's 16-element bsums.
void vec_dot_q4_k_q8_k(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ4_K* w = static_cast<const BlockQ4_K*>(vw);
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(vx);
  float acc[8] = {0};
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const uint8_t* q4 = w[i].qs;
    const int8_t* q8 = x[i].qs;
    int sumi = 0, summ = 0;
    for (int k = 0; k < 4; ++k, q4 += 32, q8 += 64) {
      int sc0, m0, sc1, m1;
      scale_min_k4(2 * k, w[i].scales, &sc0, &m0);
      scale_min_k4(2 * k + 1, w[i].scales, &sc1, &m1);
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += (q4[l] & 0x0f) * q8[l];
        s1 += (q4[l] >> 4) * q8[l + 32];
      }
      sumi += sc0 * s0 + sc1 * s1;
      summ += m0 * (x[i].bsums[4 * k] + x[i].bsums[4 * k + 1]) +
              m1 * (x[i].bsums[4 * k + 2] + x[i].bsums[4 * k + 3]);
    }
    acc[i % 8] += canonical_kterm_min(x[i].d, h2f(w[i].d), h2f(w[i].dmin), sumi, summ);
  }
  *s = canonical_tree(acc, 8);
}

void vec_dot_q5_k_q8_k(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ5_K* w = static_cast<const BlockQ5_K*>(vw);
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(vx);
  float acc[8] = {0};
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const uint8_t* ql = w[i].qs;
    const uint8_t* qh = w[i].qh;
    const int8_t* q8 = x[i].qs;
    int sumi = 0, summ = 0;
    for (int k = 0; k < 4; ++k, ql += 32, q8 += 64) {
      int sc0, m0, sc1, m1;
      scale_min_k4(2 * k, w[i].scales, &sc0, &m0);
      scale_min_k4(2 * k + 1, w[i].scales, &sc1, &m1);
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += ((ql[l] & 0x0f) | (((qh[l] >> (2 * k)) & 1) << 4)) * q8[l];
        s1 += ((ql[l] >> 4) | (((qh[l] >> (2 * k + 1)) & 1) << 4)) * q8[l + 32];
      }
      sumi += sc0 * s0 + sc1 * s1;
      summ += m0 * (x[i].bsums[4 * k] + x[i].bsums[4 * k + 1]) +
              m1 * (x[i].bsums[4 * k + 2] + x[i].bsums[4 * k + 3]);
    }
    acc[i % 8] += canonical_kterm_min(x[i].d, h2f(w[i].d), h2f(w[i].dmin), sumi, summ);
  }
  *s = canonical_tree(acc, 8);
}

// Element l + 32 c of each 128-half: 4 low bits from ql[l + 32 (c & 1)] (nibble c / 2), 2 high
// bits from qh[l] >> 2c; scale scales[2 c + l / 16] (+ 8 for the second half).
void vec_dot_q6_k_q8_k(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ6_K* w = static_cast<const BlockQ6_K*>(vw);
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(vx);
  float acc[8] = {0};
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const uint8_t* ql = w[i].ql;
    const uint8_t* qh = w[i].qh;
    const int8_t* sc = w[i].scales;
    const int8_t* q8 = x[i].qs;
    int sumi = 0;
    for (int h = 0; h < 2; ++h, ql += 64, qh += 32, sc += 8, q8 += 128) {
      for (int c = 0; c < 4; ++c) {
        for (int half = 0; half < 2; ++half) {
          int si = 0;
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const uint8_t lo = ql[l + 32 * (c & 1)];
            const int q = ((c < 2 ? lo & 0x0f : lo >> 4) | (((qh[l] >> (2 * c)) & 3) << 4)) - 32;
            si += q * q8[l + 32 * c];
          }
          sumi += sc[2 * c + half] * si;
        }
      }
    }
    acc[i % 8] += canonical_kterm(x[i].d, h2f(w[i].d), sumi);
  }
  *s = canonical_tree(acc, 8);
}

}  // namespace

void fill_quant_kernels(KernelTable& t) {
  // Activation quantizers and row dequantizers: the reference routines (compiled generic, called
  // through the traits table, so no code is shared inline across levels).
  for (uint32_t id = 0; id < kGgmlTypeCount; ++id) {
    const TypeTraits* tr = type_traits(id);
    if (!tr) continue;
    t.dequantize_row[id] = tr->dequantize_row;
  }
  const GgmlType acts[] = {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K};
  for (GgmlType act : acts) {  // a plain array: no std::initializer_list across levels
    const uint32_t id = static_cast<uint32_t>(act);
    t.quantize_act[id] = type_traits(id)->quantize_row;
  }
  auto set = [&](GgmlType type, void (*fn)(int64_t, float*, const void*, const void*)) {
    t.vec_dot[static_cast<uint32_t>(type)] = fn;
  };
  set(GgmlType::F32, vec_dot_f32);
  set(GgmlType::F16, vec_dot_f16);
  set(GgmlType::BF16, vec_dot_bf16);
  set(GgmlType::Q4_0, vec_dot_q4_0_q8_0);
  set(GgmlType::Q4_1, vec_dot_q4_1_q8_1);
  set(GgmlType::Q5_0, vec_dot_q5_0_q8_0);
  set(GgmlType::Q5_1, vec_dot_q5_1_q8_1);
  set(GgmlType::Q8_0, vec_dot_q8_0_q8_0);
  set(GgmlType::Q4_K, vec_dot_q4_k_q8_k);
  set(GgmlType::Q5_K, vec_dot_q5_k_q8_k);
  set(GgmlType::Q6_K, vec_dot_q6_k_q8_k);
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  fill_quant_kernels_avx2(t);
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  fill_quant_kernels_avx512(t);
#endif
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
