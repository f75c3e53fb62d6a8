// AVX2 + FMA + F16C quantized kernels (ggml's maddubs / madd patterns): activation quantizers
// bit-exact with the reference, and dot products for the float, legacy and K-quant formats.
// Compiled at the avx2 and avx512 levels; at the latter the byte dot products use 256-bit VNNI.
#include "kernels/cpu/quant_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/quant_blocks.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

using namespace llmasos::quant;

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum_ps(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline float hmax_ps(__m256 v) {
  __m128 r = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_max_ps(r, _mm_movehl_ps(r, r));
  r = _mm_max_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline int hsum_epi32(__m256i v) {
  __m128i r = _mm_add_epi32(_mm256_extracti128_si256(v, 1), _mm256_castsi256_si128(v));
  r = _mm_add_epi32(r, _mm_unpackhi_epi64(r, r));
  r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 1));
  return _mm_cvtsi128_si32(r);
}

// 16 bytes of packed nibbles -> 32 bytes 0..15: low nibbles (elements 0..15), then high (16..31).
inline __m256i nibbles32(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

// 32 bits -> 32 bytes, 0xff where bit j is set (byte j).
inline __m256i bits32(const uint8_t* p) {
  uint32_t x;
  std::memcpy(&x, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                         0x0101010101010101, 0x0000000000000000);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x)), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));  // all but bit j%8
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

// Unsigned bytes a (<= 128) times signed bytes b, summed in groups of 4 -> 8 int32. maddubs
// cannot saturate here: 2 * 128 * 127 < 32768.
inline __m256i dot_u8i8(__m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
#endif
}

// Signed x signed bytes: move x's sign onto y so the unsigned-by-signed product applies.
inline __m256i dot_i8i8(__m256i x, __m256i y) {
  return dot_u8i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// ---- activation quantizers (bit-exact with quant_q8_0 / quant_q8_1 in quant_types.cc) ----------

// roundf (halves away from zero) of 8 floats with |v| <= 127.x: trunc, then +-1 if |frac| >= 0.5.
inline __m256i roundf_epi32(__m256 v) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));  // exact
  const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
  return _mm256_cvtps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)));
}

// One 32-float block -> 32 int8 in order; returns d (as the reference computes it) and sum(q).
inline float quantize_block32(const float* x, int8_t* qs, int* sum) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
  __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
  __m256 amax = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                              _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
  const float d = hmax_ps(amax) / 127;
  const __m256 id = _mm256_set1_ps(d ? 1.0f / d : 0.0f);
  __m256i i0 = roundf_epi32(_mm256_mul_ps(v0, id)), i1 = roundf_epi32(_mm256_mul_ps(v1, id));
  __m256i i2 = roundf_epi32(_mm256_mul_ps(v2, id)), i3 = roundf_epi32(_mm256_mul_ps(v3, id));
  *sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
  // packs interleave the 128-bit lanes; the permute restores element order.
  __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
  p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), p);
  return d;
}

inline uint16_t f2h(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

void quantize_q8_0(const float* x, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    int sum;
    y[i].d = f2h(quantize_block32(x, y[i].qs, &sum));
  }
}

void quantize_q8_1(const float* x, void* dst, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    int sum;
    const float d = quantize_block32(x, y[i].qs, &sum);
    y[i].d = f2h(d);
    y[i].s = f2h(static_cast<float>(sum) * d);
  }
}

// ---- float weights --------------------------------------------------------------------------------

// 32 elements per step into four accumulators; `load8` widens 8 weights to floats.
#define LLMASOS_FLOAT_DOT(load8, scalar)                                               \
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                          \
  int64_t i = 0;                                                                       \
  for (; i + 32 <= n; i += 32) {                                                       \
    a0 = _mm256_fmadd_ps(load8(w + i), _mm256_loadu_ps(x + i), a0);                    \
    a1 = _mm256_fmadd_ps(load8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);            \
    a2 = _mm256_fmadd_ps(load8(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);          \
    a3 = _mm256_fmadd_ps(load8(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);          \
  }                                                                                    \
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load8(w + i), _mm256_loadu_ps(x + i), a0); \
  float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));   \
  for (; i < n; ++i) sum += scalar(w[i]) * x[i];                                       \
  *s = sum;

inline __m256 load8_f32(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load8_bf16(const uint16_t* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
inline float f32_id(float v) { return v; }
inline float bf2f(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void vec_dot_f32(int64_t n, float* s, const void* vw, const void* vx) {
  const float* w = static_cast<const float*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT(load8_f32, f32_id)
}

void vec_dot_f16(int64_t n, float* s, const void* vw, const void* vx) {
  const uint16_t* w = static_cast<const uint16_t*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT(load8_f16, h2f)
}

void vec_dot_bf16(int64_t n, float* s, const void* vw, const void* vx) {
  const uint16_t* w = static_cast<const uint16_t*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT(load8_bf16, bf2f)
}
#undef LLMASOS_FLOAT_DOT

// ---- legacy 32-element formats ------------------------------------------------------------------

// step(i, acc): acc + block i's contribution; run on two accumulators in turn.
#define LLMASOS_TWO_ACC(nb, step)                                       \
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();        \
  int64_t i = 0;                                                        \
  for (; i + 1 < (nb); i += 2) {                                        \
    acc0 = step(i, acc0);                                               \
    acc1 = step(i + 1, acc1);                                           \
  }                                                                     \
  if (i < (nb)) acc0 = step(i, acc0);                                   \
  const float total = hsum_ps(_mm256_add_ps(acc0, acc1));

void vec_dot_q4_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ4_0* w = static_cast<const BlockQ4_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  auto step = [&](int64_t b, __m256 acc) {
    const __m256 d = _mm256_set1_ps(h2f(w[b].d) * h2f(x[b].d));
    const __m256i qw = _mm256_sub_epi8(nibbles32(w[b].qs), _mm256_set1_epi8(8));
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8i8(qw, qx)), acc);
  };
  LLMASOS_TWO_ACC(n / kQK, step)
  *s = total;
}

void vec_dot_q4_1_q8_1(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ4_1* w = static_cast<const BlockQ4_1*>(vw);
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(vx);
  __m128 summs = _mm_setzero_ps();
  auto step = [&](int64_t b, __m256 acc) {
    // The fp16 pairs (d, m) and (d, s) are converted with one instruction each.
    uint32_t wdm, xds;
    std::memcpy(&wdm, &w[b].d, 4);
    std::memcpy(&xds, &x[b].d, 4);
    const __m128 fw = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(wdm)));
    const __m128 fx = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(xds)));
    const __m128 prod = _mm_mul_ps(fw, fx);  // [d dx, m s, 0, 0]
    summs = _mm_add_ps(summs, prod);
    const __m256 d = _mm256_broadcastss_ps(prod);
    const __m256i qw = nibbles32(w[b].qs);
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8i8(qw, qx)), acc);
  };
  LLMASOS_TWO_ACC(n / kQK, step)
  *s = total + _mm_cvtss_f32(_mm_movehdup_ps(summs));
}

// Q5_0: q - 16 = low nibble | (bit ? 0 : 0xf0) as int8.
void vec_dot_q5_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ5_0* w = static_cast<const BlockQ5_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  const int64_t nb = n / kQK;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d));
    const __m256i hi = _mm256_andnot_si256(bits32(w[i].qh), _mm256_set1_epi8(static_cast<char>(0xf0)));
    const __m256i qw = _mm256_or_si256(nibbles32(w[i].qs), hi);
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8i8(qw, qx)), acc);
  }
  *s = hsum_ps(acc);
}

void vec_dot_q5_1_q8_1(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ5_1* w = static_cast<const BlockQ5_1*>(vw);
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(vx);
  const int64_t nb = n / kQK;
  __m256 acc = _mm256_setzero_ps();
  float summs = 0;
  for (int64_t i = 0; i < nb; ++i) {
    summs += h2f(w[i].m) * h2f(x[i].s);
    const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d));
    const __m256i hi = _mm256_and_si256(bits32(w[i].qh), _mm256_set1_epi8(0x10));
    const __m256i qw = _mm256_or_si256(nibbles32(w[i].qs), hi);
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8i8(qw, qx)), acc);
  }
  *s = hsum_ps(acc) + summs;
}

void vec_dot_q8_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  auto step = [&](int64_t b, __m256 acc) {
    const __m256 d = _mm256_set1_ps(h2f(w[b].d) * h2f(x[b].d));
    const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8i8(qw, qx)), acc);
  };
  LLMASOS_TWO_ACC(n / kQK, step)
  *s = total;
}
#undef LLMASOS_TWO_ACC

// ---- K-quants ---------------------------------------------------------------------------------

// Eight 6-bit scales and mins of a Q4_K / Q5_K super-block (packing: quant_kquants.cc).
inline void scales_mins_k4(const uint8_t* q, int* sc, int* m) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = q[j] & 63;
    m[j] = q[j + 4] & 63;
    sc[j + 4] = (q[j + 8] & 0x0f) | ((q[j] >> 6) << 4);
    m[j + 4] = (q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4);
  }
}

// Sub-block scale applied on the 16-bit pair sums: maddubs (<= 2 * 31 * 127) then madd by scale.
inline __m256i dot_u8i8_scaled(__m256i a, __m256i b, int scale) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(static_cast<short>(scale)));
}

// sum of mins * (sums of the activations per 32-element sub-block), from Q8_K's bsums.
inline int mins_dot_bsums(const int* m, const int16_t* bsums) {
  int summ = 0;
  for (int j = 0; j < 8; ++j) summ += m[j] * (bsums[2 * j] + bsums[2 * j + 1]);
  return summ;
}

void vec_dot_q4_k_q8_k(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ4_K* w = static_cast<const BlockQ4_K*>(vw);
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(vx);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps();
  float summs = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int sc[8], m[8];
    scales_mins_k4(w[i].scales, sc, m);
    summs += x[i].d * h2f(w[i].dmin) * mins_dot_bsums(m, x[i].bsums);
    const uint8_t* q4 = w[i].qs;
    const int8_t* q8 = x[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k, q4 += 32, q8 += 64) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q4));
      const __m256i lo = _mm256_and_si256(bits, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32));
      sumi = _mm256_add_epi32(sumi, dot_u8i8_scaled(lo, y0, sc[2 * k]));
      sumi = _mm256_add_epi32(sumi, dot_u8i8_scaled(hi, y1, sc[2 * k + 1]));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum_ps(acc) - summs;
}

void vec_dot_q5_k_q8_k(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ5_K* w = static_cast<const BlockQ5_K*>(vw);
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(vx);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m1 = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  float summs = 0;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int sc[8], m[8];
    scales_mins_k4(w[i].scales, sc, m);
    summs += x[i].d * h2f(w[i].dmin) * mins_dot_bsums(m, x[i].bsums);
    const uint8_t* ql = w[i].qs;
    const int8_t* q8 = x[i].qs;
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qh));
    __m256i sumi = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k, ql += 32, q8 += 64) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      // bit 2k of qh -> 16 for the low nibbles, bit 2k+1 for the high nibbles
      const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m1), 4);
      const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k + 1), m1), 4);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4), h0);
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), h1);
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32));
      sumi = _mm256_add_epi32(sumi, dot_u8i8_scaled(lo, y0, sc[2 * k]));
      sumi = _mm256_add_epi32(sumi, dot_u8i8_scaled(hi, y1, sc[2 * k + 1]));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum_ps(acc) - summs;
}

// Q6_K: q in 0..63, (q - 32) * y = q * y - 32 * y, both as maddubs pair sums (no saturation:
// 2 * 63 * 127 and 2 * 32 * 128 < 32768); then the signed 8-bit scale of each 16 elements.
void vec_dot_q6_k_q8_k(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ6_K* w = static_cast<const BlockQ6_K*>(vw);
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(vx);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i m32 = _mm256_set1_epi8(32);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const uint8_t* ql = w[i].ql;
    const uint8_t* qh = w[i].qh;
    const int8_t* sc = w[i].scales;
    const int8_t* q8 = x[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h, ql += 64, qh += 32, sc += 8, q8 += 128) {
      const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                             _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4));
      for (int c = 0; c < 4; ++c) {
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32 * c));
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[c], y), _mm256_maddubs_epi16(m32, y));
        // 16-bit lanes 0..7 hold elements 0..15 (scale sc[2c]), lanes 8..15 elements 16..31.
        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[2 * c + 1]), _mm_set1_epi16(sc[2 * c]));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum_ps(acc);
}

}  // namespace

void fill_quant_kernels_avx2(KernelTable& t) {
  t.quantize_act[static_cast<uint32_t>(GgmlType::Q8_0)] = quantize_q8_0;
  t.quantize_act[static_cast<uint32_t>(GgmlType::Q8_1)] = quantize_q8_1;
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
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS

#endif  // __AVX2__ && __FMA__ && __F16C__
