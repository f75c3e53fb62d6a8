// AVX2 + FMA + F16C quantized kernels (ggml's maddubs / madd patterns): activation quantizers
// bit-exact with the reference, and dot products for the float, legacy and K-quant formats whose
// float operations follow the canonical order of quant_dot.h (bit-identical to the generic level).
// Compiled at the avx2 and avx512 levels; at the latter the byte dot products use 256-bit VNNI.
#include "kernels/cpu/quant_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/widen_simd.h"
#include "quant/quant_blocks.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

using namespace llmasos::quant;

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

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

// Q8_K (the K-quants' activations), the reference's bits (quant_types.cc: ggml's
// quantize_row_q8_K_ref): max = the first element of largest magnitude (NaNs never win), scale
// -127 / max, round to nearest even by the 1.5 * 2^23 trick, clamp at 127, 16-element sums.
void quantize_q8_k(const float* x, void* dst, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  const __m256 sign = _mm256_set1_ps(-0.0f), magic = _mm256_set1_ps(12582912.f);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    __m256 amax8 = _mm256_setzero_ps();
    for (int j = 0; j < kQKK; j += 8)  // max_ps(v, acc) keeps acc where v is NaN
      amax8 = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), amax8);
    const float amax = hmax_ps(amax8);
    if (amax == 0.f) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    int first = 0;  // the first element whose magnitude is amax
    const __m256 target = _mm256_set1_ps(amax);
    for (int j = 0; j < kQKK; j += 8) {
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), target, _CMP_EQ_OQ));
      if (hit) {
        first = j + __builtin_ctz(static_cast<unsigned>(hit));
        break;
      }
    }
    const float iscale = -127.f / x[first];
    const __m256 is = _mm256_set1_ps(iscale);
    const __m256i lim = _mm256_set1_epi32(127), mant = _mm256_set1_epi32(0x007fffff), half = _mm256_set1_epi32(0x00400000);
    for (int j = 0; j < kQKK; j += 32) {
      __m256i q[4];
      for (int u = 0; u < 4; ++u) {
        const __m256 v = _mm256_add_ps(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8 * u)), magic);
        q[u] = _mm256_min_epi32(_mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(v), mant), half), lim);
      }
      // packs interleave the 128-bit lanes; the permute restores element order.
      __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
      p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), p);
      // 16-element sums: bytes to int16 pairs (maddubs with ones), then pairs of pairs.
      const __m256i s16 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), p), _mm256_set1_epi16(1));
      // s16: 8 int32 sums of 4 consecutive quants; two 16-element sums = lanes 0..3 and 4..7.
      const __m128i lo = _mm256_castsi256_si128(s16), hi = _mm256_extracti128_si256(s16, 1);
      const __m128i s = _mm_hadd_epi32(_mm_hadd_epi32(lo, hi), _mm_setzero_si128());
      y[i].bsums[j / 16] = static_cast<int16_t>(_mm_cvtsi128_si32(s));
      y[i].bsums[j / 16 + 1] = static_cast<int16_t>(_mm_extract_epi32(s, 1));
    }
    y[i].d = 1 / iscale;
  }
}

// ---- float weights --------------------------------------------------------------------------------
// Canonical order (quant_dot.h): element i into lane i % 32 of four 8-lane accumulators, mul then
// add; a tail of fewer than 32 elements is zero-padded (0 * 0 adds +0: no change), then the tree.

#define LLMASOS_FLOAT_DOT(load8, T)                                                    \
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                          \
  auto step32 = [&](const T* wp, const float* xp) {                                    \
    a0 = _mm256_add_ps(a0, _mm256_mul_ps(load8(wp), _mm256_loadu_ps(xp)));             \
    a1 = _mm256_add_ps(a1, _mm256_mul_ps(load8(wp + 8), _mm256_loadu_ps(xp + 8)));     \
    a2 = _mm256_add_ps(a2, _mm256_mul_ps(load8(wp + 16), _mm256_loadu_ps(xp + 16)));   \
    a3 = _mm256_add_ps(a3, _mm256_mul_ps(load8(wp + 24), _mm256_loadu_ps(xp + 24)));   \
  };                                                                                   \
  int64_t i = 0;                                                                       \
  for (; i + 32 <= n; i += 32) step32(w + i, x + i);                                   \
  if (i < n) {                                                                         \
    T wt[32] = {};                                                                     \
    float xt[32] = {};                                                                 \
    std::memcpy(wt, w + i, sizeof(T) * (n - i));                                       \
    std::memcpy(xt, x + i, sizeof(float) * (n - i));                                   \
    step32(wt, xt);                                                                    \
  }                                                                                    \
  *s = canonical_tree32_ps(a0, a1, a2, a3);

inline __m256 load8_f32(const float* p) { return _mm256_loadu_ps(p); }

void vec_dot_f32(int64_t n, float* s, const void* vw, const void* vx) {
  const float* w = static_cast<const float*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT(load8_f32, float)
}

void vec_dot_f16(int64_t n, float* s, const void* vw, const void* vx) {
  const uint16_t* w = static_cast<const uint16_t*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT(load8_f16, uint16_t)
}

void vec_dot_bf16(int64_t n, float* s, const void* vw, const void* vx) {
  const uint16_t* w = static_cast<const uint16_t*>(vw);
  const float* x = static_cast<const float*>(vx);
  LLMASOS_FLOAT_DOT(load8_bf16, uint16_t)
}
#undef LLMASOS_FLOAT_DOT

// Exact widening of f16 / bf16 rows (weights lookups, the half-precision KV cache).
void dequantize_row_f16(const void* src, float* dst, int64_t n) {
  const uint16_t* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8_f16(h + i));
  for (; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
  const uint16_t* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8_bf16(h + i));
  for (; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
}

// ---- legacy 32-element formats ------------------------------------------------------------------
// Canonical order (quant_dot.h): lane l of a block's int32 dot product holds elements 4l .. 4l+3;
// even blocks scale into acc0 (lanes 0..7 of the canonical 16), odd blocks into acc1 (8..15);
// mul then add, no FMA. Q4_1 / Q5_1 sum their min terms in block order in lane 1 of `ms`.

inline __m256i load_q8(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// step(b) -> the block's 8 int32 lane sums; d(b) -> dw * dx.
template <class Step, class Scale>
inline float legacy_dot(int64_t nb, Step step, Scale d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 1 < nb; i += 2) {
    acc0 = _mm256_add_ps(acc0, _mm256_mul_ps(_mm256_set1_ps(d(i)), _mm256_cvtepi32_ps(step(i))));
    acc1 = _mm256_add_ps(acc1, _mm256_mul_ps(_mm256_set1_ps(d(i + 1)), _mm256_cvtepi32_ps(step(i + 1))));
  }
  if (i < nb) acc0 = _mm256_add_ps(acc0, _mm256_mul_ps(_mm256_set1_ps(d(i)), _mm256_cvtepi32_ps(step(i))));
  return canonical_tree8_ps(_mm256_add_ps(acc0, acc1));  // h = 8, then the 8-lane tree
}

// [dw * dx, mw * sx, 0, 0] of a Q4_1 / Q5_1 block against Q8_1: the fp16 pairs (d, m) and (d, s)
// are converted with one instruction each.
template <class W, class X>
inline __m128 dm_products(const W& w, const X& x) {
  uint32_t wdm, xds;
  std::memcpy(&wdm, &w.d, 4);
  std::memcpy(&xds, &x.d, 4);
  const __m128 fw = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(wdm)));
  const __m128 fx = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(xds)));
  return _mm_mul_ps(fw, fx);
}

void vec_dot_q4_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ4_0* w = static_cast<const BlockQ4_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  auto step = [&](int64_t b) {
    const __m256i qw = _mm256_sub_epi8(nibbles32(w[b].qs), _mm256_set1_epi8(8));
    return dot_i8i8(qw, load_q8(x[b].qs));
  };
  auto d = [&](int64_t b) { return h2f(w[b].d) * h2f(x[b].d); };
  *s = legacy_dot(n / kQK, step, d);
}

void vec_dot_q4_1_q8_1(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ4_1* w = static_cast<const BlockQ4_1*>(vw);
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(vx);
  __m128 ms = _mm_setzero_ps();
  auto step = [&](int64_t b) { return dot_u8i8(nibbles32(w[b].qs), load_q8(x[b].qs)); };
  auto d = [&](int64_t b) {
    const __m128 prod = dm_products(w[b], x[b]);
    ms = _mm_add_ps(ms, prod);  // lane 1: ms += mw * sx, in block order
    return _mm_cvtss_f32(prod);
  };
  const float total = legacy_dot(n / kQK, step, d);
  *s = total + _mm_cvtss_f32(_mm_movehdup_ps(ms));
}

// Q5_0: q - 16 = low nibble | (bit ? 0 : 0xf0) as int8.
void vec_dot_q5_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ5_0* w = static_cast<const BlockQ5_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  auto step = [&](int64_t b) {
    const __m256i hi = _mm256_andnot_si256(bits32(w[b].qh), _mm256_set1_epi8(static_cast<char>(0xf0)));
    const __m256i qw = _mm256_or_si256(nibbles32(w[b].qs), hi);
    return dot_i8i8(qw, load_q8(x[b].qs));
  };
  auto d = [&](int64_t b) { return h2f(w[b].d) * h2f(x[b].d); };
  *s = legacy_dot(n / kQK, step, d);
}

void vec_dot_q5_1_q8_1(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ5_1* w = static_cast<const BlockQ5_1*>(vw);
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(vx);
  __m128 ms = _mm_setzero_ps();
  auto step = [&](int64_t b) {
    const __m256i hi = _mm256_and_si256(bits32(w[b].qh), _mm256_set1_epi8(0x10));
    const __m256i qw = _mm256_or_si256(nibbles32(w[b].qs), hi);
    return dot_u8i8(qw, load_q8(x[b].qs));
  };
  auto d = [&](int64_t b) {
    const __m128 prod = dm_products(w[b], x[b]);
    ms = _mm_add_ps(ms, prod);
    return _mm_cvtss_f32(prod);
  };
  const float total = legacy_dot(n / kQK, step, d);
  *s = total + _mm_cvtss_f32(_mm_movehdup_ps(ms));
}

void vec_dot_q8_0_q8_0(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(vw);
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  auto step = [&](int64_t b) { return dot_i8i8(load_q8(w[b].qs), load_q8(x[b].qs)); };
  auto d = [&](int64_t b) { return h2f(w[b].d) * h2f(x[b].d); };
  *s = legacy_dot(n / kQK, step, d);
}

// ---- legacy formats, weight rows x 4 tokens (prefill) -------------------------------------------
// Each weight block is unpacked once and dotted with the same block of 4 activation rows; the
// 4 tokens' fp16 block scales are widened once per call (exact) for all the rows. Per token t
// every float operation is the one legacy_dot above does for that token alone: the same int32
// lane sums, d = dw * dx_t, even blocks into e_t and odd into o_t (mul then add), the same final
// tree, and for Q4_1 / Q5_1 the min terms summed in block order (lane 2t + 1 of ms): so each
// result is vec_dot's bits. 8 accumulators + weight + temporaries fit the 16 ymm registers.

inline uint16_t ld16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t ld32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Token scales kept for a call: up to this many blocks per row (longer rows convert per row).
constexpr int64_t kMaxScaleBlocks = 512;

template <class X>
struct Tokens4 {
  const X* x[4];
  Tokens4(const void* qx, uint64_t xs) {
    for (int t = 0; t < 4; ++t) x[t] = reinterpret_cast<const X*>(static_cast<const uint8_t*>(qx) + t * xs);
  }
  // Q8_0: [dx_0 .. dx_3] of block b.
  __m128 d4(int64_t b) const {
    return _mm_cvtph_ps(_mm_setr_epi16(static_cast<short>(ld16(&x[0][b].d)), static_cast<short>(ld16(&x[1][b].d)),
                                       static_cast<short>(ld16(&x[2][b].d)), static_cast<short>(ld16(&x[3][b].d)),
                                       0, 0, 0, 0));
  }
  // Q8_1: [dx_t, sx_t] for t = 0..3 of block b.
  __m256 ds4(int64_t b) const {
    return _mm256_cvtph_ps(_mm_setr_epi32(static_cast<int>(ld32(&x[0][b].d)), static_cast<int>(ld32(&x[1][b].d)),
                                          static_cast<int>(ld32(&x[2][b].d)), static_cast<int>(ld32(&x[3][b].d))));
  }
};

// One weight row against Q8_0 activations. unpack(b) gives block b's 32 weight bytes: signed
// (kSigned, as for dot_i8i8) or unsigned (dot_u8i8); dx(b) the 4 tokens' scales.
template <bool kSigned, class W, class Unpack, class Dx>
inline void row_4x_q8_0(int64_t nb, const W* w, const Tokens4<BlockQ8_0>& X, float* s, int64_t ss,
                        Unpack unpack, Dx dx) {
  // Named accumulators (not arrays), so they live in registers: eN even blocks, oN odd blocks.
  __m256 e0 = _mm256_setzero_ps(), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
  auto block = [&](int64_t b, __m256& c0, __m256& c1, __m256& c2, __m256& c3) {
    const __m256i qw = unpack(w, b);
    alignas(16) float d[4];  // lane t: dw * dx_t; broadcast from memory (load ports, not shuffles)
    _mm_store_ps(d, _mm_mul_ps(_mm_set1_ps(h2f(w[b].d)), dx(b)));
    const __m256i aw = kSigned ? _mm256_sign_epi8(qw, qw) : qw;
    auto one = [&](__m256& acc, const BlockQ8_0* x, const float* dt) {
      const __m256i y = load_q8(x[b].qs);
      const __m256i p = kSigned ? dot_u8i8(aw, _mm256_sign_epi8(y, qw)) : dot_u8i8(qw, y);
      acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_broadcast_ss(dt), _mm256_cvtepi32_ps(p)));
    };
    one(c0, X.x[0], d);
    one(c1, X.x[1], d + 1);
    one(c2, X.x[2], d + 2);
    one(c3, X.x[3], d + 3);
  };
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    block(b, e0, e1, e2, e3);
    block(b + 1, o0, o1, o2, o3);
  }
  if (b < nb) block(b, e0, e1, e2, e3);
  s[0] = canonical_tree8_ps(_mm256_add_ps(e0, o0));
  s[ss] = canonical_tree8_ps(_mm256_add_ps(e1, o1));
  s[2 * ss] = canonical_tree8_ps(_mm256_add_ps(e2, o2));
  s[3 * ss] = canonical_tree8_ps(_mm256_add_ps(e3, o3));
}

// One weight row with a min (Q4_1, Q5_1: fields d, m first) against Q8_1 activations: unsigned
// weight bytes; [dw, mw] x [dx_t, sx_t] as in dm_products, 4 tokens per instruction.
template <class W, class Unpack, class Ds>
inline void row_4x_q8_1(int64_t nb, const W* w, const Tokens4<BlockQ8_1>& X, float* s, int64_t ss,
                        Unpack unpack, Ds ds) {
  __m256 e0 = _mm256_setzero_ps(), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
  __m256 ms = _mm256_setzero_ps();  // lane 2t + 1: token t's min terms, in block order
  auto block = [&](int64_t b, __m256& c0, __m256& c1, __m256& c2, __m256& c3) {
    const __m256i qw = unpack(w, b);
    const __m256 fw = _mm256_cvtph_ps(_mm_set1_epi32(static_cast<int>(ld32(&w[b].d))));  // [dw, mw] x 4
    const __m256 prod = _mm256_mul_ps(fw, ds(b));  // [dw dx_t, mw sx_t]
    ms = _mm256_add_ps(ms, prod);
    alignas(32) float d[8];  // broadcast from memory (load ports, not shuffles)
    _mm256_store_ps(d, prod);
    auto one = [&](__m256& acc, const BlockQ8_1* x, const float* dt) {
      const __m256i p = dot_u8i8(qw, load_q8(x[b].qs));
      acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_broadcast_ss(dt), _mm256_cvtepi32_ps(p)));
    };
    one(c0, X.x[0], d);
    one(c1, X.x[1], d + 2);
    one(c2, X.x[2], d + 4);
    one(c3, X.x[3], d + 6);
  };
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    block(b, e0, e1, e2, e3);
    block(b + 1, o0, o1, o2, o3);
  }
  if (b < nb) block(b, e0, e1, e2, e3);
  alignas(32) float m[8];
  _mm256_store_ps(m, ms);
  s[0] = canonical_tree8_ps(_mm256_add_ps(e0, o0)) + m[1];
  s[ss] = canonical_tree8_ps(_mm256_add_ps(e1, o1)) + m[3];
  s[2 * ss] = canonical_tree8_ps(_mm256_add_ps(e2, o2)) + m[5];
  s[3 * ss] = canonical_tree8_ps(_mm256_add_ps(e3, o3)) + m[7];
}

// nr rows x 4 tokens against Q8_0 (token scales widened once into a stack table when they fit).
template <bool kSigned, class W, class Unpack>
inline void rows_4x_q8_0(int64_t n, int64_t nr, float* s, int64_t ss, const void* vw, uint64_t ws,
                         const void* qx, uint64_t xs, Unpack unpack) {
  const int64_t nb = n / kQK;
  const Tokens4<BlockQ8_0> X(qx, xs);
  auto row = [&](int64_t r) { return reinterpret_cast<const W*>(static_cast<const uint8_t*>(vw) + r * ws); };
  if (nb > kMaxScaleBlocks) {
    for (int64_t r = 0; r < nr; ++r)
      row_4x_q8_0<kSigned>(nb, row(r), X, s + r, ss, unpack, [&](int64_t b) { return X.d4(b); });
    return;
  }
  alignas(32) float dx[kMaxScaleBlocks * 4];
  for (int64_t b = 0; b < nb; ++b) _mm_store_ps(dx + 4 * b, X.d4(b));
  for (int64_t r = 0; r < nr; ++r)
    row_4x_q8_0<kSigned>(nb, row(r), X, s + r, ss, unpack, [&](int64_t b) { return _mm_load_ps(dx + 4 * b); });
}

template <class W, class Unpack>
inline void rows_4x_q8_1(int64_t n, int64_t nr, float* s, int64_t ss, const void* vw, uint64_t ws,
                         const void* qx, uint64_t xs, Unpack unpack) {
  const int64_t nb = n / kQK;
  const Tokens4<BlockQ8_1> X(qx, xs);
  auto row = [&](int64_t r) { return reinterpret_cast<const W*>(static_cast<const uint8_t*>(vw) + r * ws); };
  if (nb > kMaxScaleBlocks) {
    for (int64_t r = 0; r < nr; ++r)
      row_4x_q8_1(nb, row(r), X, s + r, ss, unpack, [&](int64_t b) { return X.ds4(b); });
    return;
  }
  alignas(32) float ds[kMaxScaleBlocks * 8];
  for (int64_t b = 0; b < nb; ++b) _mm256_store_ps(ds + 8 * b, X.ds4(b));
  for (int64_t r = 0; r < nr; ++r)
    row_4x_q8_1(nb, row(r), X, s + r, ss, unpack, [&](int64_t b) { return _mm256_load_ps(ds + 8 * b); });
}

// nr weight rows (w_stride bytes apart) against one activation row, decode's loop: the per-row
// kernel inlined into it (no indirect call per row; its constants stay in registers).
template <void (*Dot)(int64_t, float*, const void*, const void*)>
void rows_1x(int64_t n, int64_t nr, float* s, const void* w, uint64_t ws, const void* qx) {
  for (int64_t r = 0; r < nr; ++r) Dot(n, s + r, static_cast<const uint8_t*>(w) + r * ws, qx);
}

// Two rows at a time against Q8_0 activations (signed weights): the activation block and its
// scale are loaded once for both rows (Q5_0: ~7% faster decode; Q8_0 measured slower, not used). Per row the float operations are vec_dot's (d = dw * dx,
// even / odd accumulators, mul then add, tree8 of their sum), so each result is its bits.
template <class W, void (*Dot)(int64_t, float*, const void*, const void*), class Unpack>
void rows_2x_q8_0(int64_t n, int64_t nr, float* s, const void* vw, uint64_t ws, const void* vx,
                  Unpack unpack) {
  const int64_t nb = n / kQK;
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  int64_t r = 0;
  for (; r + 2 <= nr; r += 2) {
    const W* w0 = reinterpret_cast<const W*>(static_cast<const uint8_t*>(vw) + r * ws);
    const W* w1 = reinterpret_cast<const W*>(static_cast<const uint8_t*>(vw) + (r + 1) * ws);
    __m256 e0 = _mm256_setzero_ps(), o0 = e0, e1 = e0, o1 = e0;
    auto block = [&](int64_t b, __m256& c0, __m256& c1) {
      const __m256i y = load_q8(x[b].qs);
      const float dx = h2f(x[b].d);
      const __m256i p0 = dot_i8i8(unpack(w0, b), y);
      const __m256i p1 = dot_i8i8(unpack(w1, b), y);
      c0 = _mm256_add_ps(c0, _mm256_mul_ps(_mm256_set1_ps(h2f(w0[b].d) * dx), _mm256_cvtepi32_ps(p0)));
      c1 = _mm256_add_ps(c1, _mm256_mul_ps(_mm256_set1_ps(h2f(w1[b].d) * dx), _mm256_cvtepi32_ps(p1)));
    };
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
      block(b, e0, e1);
      block(b + 1, o0, o1);
    }
    if (b < nb) block(b, e0, e1);
    s[r] = canonical_tree8_ps(_mm256_add_ps(e0, o0));
    s[r + 1] = canonical_tree8_ps(_mm256_add_ps(e1, o1));
  }
  if (r < nr) Dot(n, s + r, static_cast<const uint8_t*>(vw) + r * ws, vx);
}

void rows_q5_0(int64_t n, int64_t nr, float* s, const void* w, uint64_t ws, const void* x) {
  rows_2x_q8_0<BlockQ5_0, vec_dot_q5_0_q8_0>(n, nr, s, w, ws, x, [](const BlockQ5_0* wr, int64_t b) {
    const __m256i hi = _mm256_andnot_si256(bits32(wr[b].qh), _mm256_set1_epi8(static_cast<char>(0xf0)));
    return _mm256_or_si256(nibbles32(wr[b].qs), hi);
  });
}

void vec_dot_4x_q4_0_q8_0(int64_t n, int64_t nr, float* s, int64_t ss, const void* w, uint64_t ws,
                          const void* qx, uint64_t xs) {
  auto unpack = [](const BlockQ4_0* wr, int64_t b) {
    return _mm256_sub_epi8(nibbles32(wr[b].qs), _mm256_set1_epi8(8));
  };
  rows_4x_q8_0<true, BlockQ4_0>(n, nr, s, ss, w, ws, qx, xs, unpack);
}

void vec_dot_4x_q5_0_q8_0(int64_t n, int64_t nr, float* s, int64_t ss, const void* w, uint64_t ws,
                          const void* qx, uint64_t xs) {
  auto unpack = [](const BlockQ5_0* wr, int64_t b) {
    const __m256i hi = _mm256_andnot_si256(bits32(wr[b].qh), _mm256_set1_epi8(static_cast<char>(0xf0)));
    return _mm256_or_si256(nibbles32(wr[b].qs), hi);
  };
  rows_4x_q8_0<true, BlockQ5_0>(n, nr, s, ss, w, ws, qx, xs, unpack);
}

void vec_dot_4x_q8_0_q8_0(int64_t n, int64_t nr, float* s, int64_t ss, const void* w, uint64_t ws,
                          const void* qx, uint64_t xs) {
  auto unpack = [](const BlockQ8_0* wr, int64_t b) { return load_q8(wr[b].qs); };
  rows_4x_q8_0<true, BlockQ8_0>(n, nr, s, ss, w, ws, qx, xs, unpack);
}

void vec_dot_4x_q4_1_q8_1(int64_t n, int64_t nr, float* s, int64_t ss, const void* w, uint64_t ws,
                          const void* qx, uint64_t xs) {
  auto unpack = [](const BlockQ4_1* wr, int64_t b) { return nibbles32(wr[b].qs); };
  rows_4x_q8_1<BlockQ4_1>(n, nr, s, ss, w, ws, qx, xs, unpack);
}

void vec_dot_4x_q5_1_q8_1(int64_t n, int64_t nr, float* s, int64_t ss, const void* w, uint64_t ws,
                          const void* qx, uint64_t xs) {
  auto unpack = [](const BlockQ5_1* wr, int64_t b) {
    const __m256i hi = _mm256_and_si256(bits32(wr[b].qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(wr[b].qs), hi);
  };
  rows_4x_q8_1<BlockQ5_1>(n, nr, s, ss, w, ws, qx, xs, unpack);
}

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

inline __m256i load256(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// The unsigned values of sub-blocks 2k (lo) and 2k + 1 (hi) of one Q4_K / Q5_K super-block: the
// low and high nibbles of qs[32k .. 32k + 32); Q5_K adds bit 2k (lo) / 2k + 1 (hi) of qh as 16.
struct SubblocksQ4K {
  const BlockQ4_K& b;
  explicit SubblocksQ4K(const BlockQ4_K& blk) : b(blk) {}
  void get(int k, __m256i& lo, __m256i& hi) const {
    const __m256i m4 = _mm256_set1_epi8(0x0f), bits = load256(b.qs + 32 * k);
    lo = _mm256_and_si256(bits, m4);
    hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
  }
};

struct SubblocksQ5K {
  const BlockQ5_K& b;
  const __m256i qh;
  explicit SubblocksQ5K(const BlockQ5_K& blk) : b(blk), qh(load256(blk.qh)) {}
  void get(int k, __m256i& lo, __m256i& hi) const {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m1 = _mm256_set1_epi8(1), bits = load256(b.qs + 32 * k);
    const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m1), 4);
    const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k + 1), m1), 4);
    lo = _mm256_or_si256(_mm256_and_si256(bits, m4), h0);
    hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), h1);
  }
};

// Q4_K / Q5_K against Q8_K: per super-block the exact sumi (sub-block scales on the pair sums) and
// summ (mins x bsums), then canonical_kterm_min into acc[i % 8], then tree8.
template <class W, class Sub>
void vec_dot_k4(int64_t n, float* s, const void* vw, const void* vx) {
  const W* w = static_cast<const W*>(vw);
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(vx);
  float acc[8] = {0};
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int sc[8], m[8];
    scales_mins_k4(w[i].scales, sc, m);
    const Sub sub(w[i]);
    __m256i sumi = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) {
      __m256i lo, hi;
      sub.get(k, lo, hi);
      const int8_t* q8 = x[i].qs + 64 * k;
      sumi = _mm256_add_epi32(sumi, dot_u8i8_scaled(lo, load256(q8), sc[2 * k]));
      sumi = _mm256_add_epi32(sumi, dot_u8i8_scaled(hi, load256(q8 + 32), sc[2 * k + 1]));
    }
    acc[i % 8] += canonical_kterm_min(x[i].d, h2f(w[i].d), h2f(w[i].dmin), hsum_epi32(sumi),
                                      mins_dot_bsums(m, x[i].bsums));
  }
  *s = canonical_tree(acc, 8);
}

void vec_dot_q4_k_q8_k(int64_t n, float* s, const void* w, const void* x) {
  vec_dot_k4<BlockQ4_K, SubblocksQ4K>(n, s, w, x);
}

void vec_dot_q5_k_q8_k(int64_t n, float* s, const void* w, const void* x) {
  vec_dot_k4<BlockQ5_K, SubblocksQ5K>(n, s, w, x);
}

// Q6_K: q in 0..63, (q - 32) * y = q * y - 32 * y, both as maddubs pair sums (no saturation:
// 2 * 63 * 127 and 2 * 32 * 128 < 32768); then the signed 8-bit scale of each 16 elements.
void vec_dot_q6_k_q8_k(int64_t n, float* s, const void* vw, const void* vx) {
  const BlockQ6_K* w = static_cast<const BlockQ6_K*>(vw);
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(vx);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i m32 = _mm256_set1_epi8(32);
  float acc[8] = {0};
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
    acc[i % 8] += canonical_kterm(x[i].d, h2f(w[i].d), hsum_epi32(sumi));
  }
  *s = canonical_tree(acc, 8);
}

// ---- K-quants, weight rows x 4 tokens (prefill) ----------------------------------------------
// Scales, mins and the unpacked 6-bit / 5-bit / 4-bit values of a super-block are computed once
// for the 4 tokens. Per token the integer sums are exact (so any grouping gives vec_dot's sumi and
// summ) and the float sequence is vec_dot's: acc[b % 8] += kterm, then tree8.

struct Tokens4K {
  const BlockQ8_K* x[4];
  Tokens4K(const void* qx, uint64_t xs) {
    for (int t = 0; t < 4; ++t)
      x[t] = reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(qx) + t * xs);
  }
};

// Q4_K / Q5_K rows x 4 tokens: each sub-block pair unpacked once for the 4 tokens.
template <class W, class Sub>
void row_4x_k4(int64_t n, float* s, int64_t ss, const void* vw, const void* qx, uint64_t xs) {
  const W* w = static_cast<const W*>(vw);
  const Tokens4K X(qx, xs);
  float acc[4][8] = {};
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int sc[8], m[8];
    scales_mins_k4(w[i].scales, sc, m);
    const float dw = h2f(w[i].d), dmin = h2f(w[i].dmin);
    const Sub sub(w[i]);
    __m256i sumi[4];
    for (int t = 0; t < 4; ++t) sumi[t] = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) {
      __m256i lo, hi;
      sub.get(k, lo, hi);
      for (int t = 0; t < 4; ++t) {
        const int8_t* q8 = X.x[t][i].qs + 64 * k;
        sumi[t] = _mm256_add_epi32(sumi[t], dot_u8i8_scaled(lo, load256(q8), sc[2 * k]));
        sumi[t] = _mm256_add_epi32(sumi[t], dot_u8i8_scaled(hi, load256(q8 + 32), sc[2 * k + 1]));
      }
    }
    for (int t = 0; t < 4; ++t)
      acc[t][i % 8] += canonical_kterm_min(X.x[t][i].d, dw, dmin, hsum_epi32(sumi[t]),
                                           mins_dot_bsums(m, X.x[t][i].bsums));
  }
  for (int t = 0; t < 4; ++t) s[t * ss] = canonical_tree(acc[t], 8);
}

void row_4x_q6_k_q8_k(int64_t n, float* s, int64_t ss, const void* vw, const void* qx, uint64_t xs) {
  const BlockQ6_K* w = static_cast<const BlockQ6_K*>(vw);
  const Tokens4K X(qx, xs);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i m32 = _mm256_set1_epi8(32);
  float acc[4][8] = {};
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float dw = h2f(w[i].d);
    __m256i sumi[4];
    for (int t = 0; t < 4; ++t) sumi[t] = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w[i].ql + 64 * h;
      const int8_t* sc = w[i].scales + 8 * h;
      const __m256i hb = load256(w[i].qh + 32 * h);
      const __m256i l0 = load256(ql), l1 = load256(ql + 32);
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
        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[2 * c + 1]), _mm_set1_epi16(sc[2 * c]));
        for (int t = 0; t < 4; ++t) {
          const __m256i y = load256(X.x[t][i].qs + 128 * h + 32 * c);
          const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[c], y), _mm256_maddubs_epi16(m32, y));
          sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, scale));
        }
      }
    }
    for (int t = 0; t < 4; ++t)
      acc[t][i % 8] += canonical_kterm(X.x[t][i].d, dw, hsum_epi32(sumi[t]));
  }
  for (int t = 0; t < 4; ++t) s[t * ss] = canonical_tree(acc[t], 8);
}

template <void (*Row)(int64_t, float*, int64_t, const void*, const void*, uint64_t)>
void rows_4x_k(int64_t n, int64_t nr, float* s, int64_t ss, const void* w, uint64_t ws,
               const void* qx, uint64_t xs) {
  for (int64_t r = 0; r < nr; ++r) Row(n, s + r, ss, static_cast<const uint8_t*>(w) + r * ws, qx, xs);
}

}  // namespace

void fill_quant_kernels_avx2(KernelTable& t) {
  t.quantize_act[static_cast<uint32_t>(GgmlType::Q8_0)] = quantize_q8_0;
  t.quantize_act[static_cast<uint32_t>(GgmlType::Q8_1)] = quantize_q8_1;
  t.quantize_act[static_cast<uint32_t>(GgmlType::Q8_K)] = quantize_q8_k;
  auto set = [&](GgmlType type, void (*fn)(int64_t, float*, const void*, const void*)) {
    t.vec_dot[static_cast<uint32_t>(type)] = fn;
  };
  t.dequantize_row[static_cast<uint32_t>(GgmlType::F16)] = dequantize_row_f16;
  t.dequantize_row[static_cast<uint32_t>(GgmlType::BF16)] = dequantize_row_bf16;
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
  auto set4 = [&](GgmlType type, void (*fn)(int64_t, int64_t, float*, int64_t, const void*, uint64_t,
                                            const void*, uint64_t)) {
    t.vec_dot_4x[static_cast<uint32_t>(type)] = fn;
  };
  auto setr = [&](GgmlType type, void (*fn)(int64_t, int64_t, float*, const void*, uint64_t, const void*)) {
    t.vec_dot_rows[static_cast<uint32_t>(type)] = fn;
  };
  setr(GgmlType::Q4_0, rows_1x<vec_dot_q4_0_q8_0>);
  setr(GgmlType::Q4_1, rows_1x<vec_dot_q4_1_q8_1>);
  setr(GgmlType::Q5_0, rows_q5_0);
  setr(GgmlType::Q5_1, rows_1x<vec_dot_q5_1_q8_1>);
  setr(GgmlType::Q8_0, rows_1x<vec_dot_q8_0_q8_0>);  // two rows at a time measured slower here
  setr(GgmlType::Q4_K, rows_1x<vec_dot_q4_k_q8_k>);
  setr(GgmlType::Q5_K, rows_1x<vec_dot_q5_k_q8_k>);
  setr(GgmlType::Q6_K, rows_1x<vec_dot_q6_k_q8_k>);
  set4(GgmlType::Q4_0, vec_dot_4x_q4_0_q8_0);
  set4(GgmlType::Q4_1, vec_dot_4x_q4_1_q8_1);
  set4(GgmlType::Q5_0, vec_dot_4x_q5_0_q8_0);
  set4(GgmlType::Q5_1, vec_dot_4x_q5_1_q8_1);
  set4(GgmlType::Q8_0, vec_dot_4x_q8_0_q8_0);
  set4(GgmlType::Q4_K, rows_4x_k<row_4x_k4<BlockQ4_K, SubblocksQ4K>>);
  set4(GgmlType::Q5_K, rows_4x_k<row_4x_k4<BlockQ5_K, SubblocksQ5K>>);
  set4(GgmlType::Q6_K, rows_4x_k<row_4x_q6_k_q8_k>);
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS

#endif  // __AVX2__ && __FMA__ && __F16C__
