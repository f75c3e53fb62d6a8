// The two inner products of attention over one 16-position KV block, compiled once per ISA level
// (see attention.h for the block layout and the canonical order). Every output element is a
// sequential sum in increasing index order, one fused multiply-add per term (rounded once), so the
// scalar loops and the AVX2 / AVX-512 register tiles give the same bits: FMA instructions there,
// fma_exact in the scalar loops (the instruction at avx2 / avx512, exact double arithmetic at the
// generic level).
// The fused form runs the register tiles a third faster here than a multiply, then an add: each
// term is one vector op beside the broadcasts and widenings instead of two (qk 36 -> 48 GMAC/s,
// pv 31 -> 42 per Zen 3 core, F16 cache, 24 rows per call).
// Keys and values are read as floats or straight from an F16 (E = uint16_t) or BF16 (E = Bf16)
// cache: the widening is exact, so all give the same bits, and half blocks need no float copy. A
// Q8_0 cache's int8 quants (E = int8_t) go through the same kernels, a group of dimensions at a
// time, with its scales applied around them (attn_qk16_i8, attn_pv16_i8 at the end).
#include <cstdint>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/fma_exact.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/widen_simd.h"
#include "quant/quant_types.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

constexpr int kBlock = 16;  // positions per KV block (attention.h: kKvBlockTokens)

struct Bf16 { uint16_t bits; };  // a BF16 cache element

inline float to_float(float x) { return x; }
inline float to_float(uint16_t h) { return fp16_to_fp32(h); }  // exact
inline float to_float(Bf16 h) { return bf16_to_fp32(h.bits); }  // exact
inline float to_float(int8_t q) { return static_cast<float>(q); }  // exact

// Scalar forms, the definition of the order; the SIMD paths below compute the same sums.
template <class E>
void qk_row_scalar(const float* q, const E* kt, int64_t d, float scale, float* s) {
  float acc[kBlock] = {};
  for (int64_t c = 0; c < d; ++c)
    for (int j = 0; j < kBlock; ++j) acc[j] = fma_exact(q[c], to_float(kt[c * kBlock + j]), acc[j]);
  for (int j = 0; j < kBlock; ++j) s[j] = acc[j] * scale;
}

// The value kernels read columns 0 .. d - 1 of value rows vs elements apart (vs = head_dim, or
// more for one group of a Q8_0 block's columns).
template <class E>
void pv_cols_scalar(const float* p, int64_t m, const E* v, int64_t vs, int64_t d, int64_t c0, float* o) {
  for (int64_t j = 0; j < m; ++j)
    for (int64_t c = c0; c < d; ++c) o[c] = fma_exact(p[j], to_float(v[j * vs + c]), o[c]);
}

#if defined(__AVX512F__)
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) { return load16_f16(p); }
inline __m512 load16(const Bf16* p) { return load16_bf16(&p->bits); }
inline __m512 load16(const int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// R query rows x NB blocks of 16 keys: one zmm accumulator per row and block, each key vector
// loaded (widened) once for the R rows. Decode has R = 3 or so (a KV head's query heads): over one
// block that is 3 chains of d dependent FMAs, fewer than the FMA latency needs; NB blocks at a
// time make 3 NB independent chains.
template <int R, int NB, class E>
inline void qk_tile(const float* q, int64_t q_stride, const E* const* kt, int64_t d, float scale, float* s,
                    int64_t s_stride) {
  __m512 acc[R][NB];
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < NB; ++n) acc[i][n] = _mm512_setzero_ps();
  for (int64_t c = 0; c < d; ++c) {
    __m512 k[NB];
    for (int n = 0; n < NB; ++n) k[n] = load16(kt[n] + c * kBlock);
    for (int i = 0; i < R; ++i) {
      const __m512 qb = _mm512_set1_ps(q[i * q_stride + c]);
      for (int n = 0; n < NB; ++n) acc[i][n] = _mm512_fmadd_ps(qb, k[n], acc[i][n]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < NB; ++n) _mm512_storeu_ps(s + i * s_stride + kBlock * n, _mm512_mul_ps(acc[i][n], sc));
}

// R (1 .. 7) rows over nblk blocks: 4 blocks at a time for R <= 4 (16 accumulators at most),
// else 2, then the blocks left over.
template <int R, class E>
inline void qk_rows(const float* q, int64_t q_stride, const E* const* kt, int64_t nblk, int64_t d, float scale,
                    float* s, int64_t s_stride) {
  int64_t b = 0;
  if constexpr (R <= 4)
    for (; b + 4 <= nblk; b += 4) qk_tile<R, 4>(q, q_stride, kt + b, d, scale, s + kBlock * b, s_stride);
  for (; b + 2 <= nblk; b += 2) qk_tile<R, 2>(q, q_stride, kt + b, d, scale, s + kBlock * b, s_stride);
  if (b < nblk) qk_tile<R, 1>(q, q_stride, kt + b, d, scale, s + kBlock * b, s_stride);
}

// Tiles of 8 rows block by block (8 chains already), then the 1 .. 7 left over together
// (decode: a KV head's group of query heads) over several blocks at a time.
template <class E>
int64_t qk_simd(const float* q, int64_t q_stride, int64_t nq, const E* const* kt, int64_t nblk, int64_t d,
                float scale, float* s, int64_t s_stride) {
  int64_t r = 0;
  for (; r + 8 <= nq; r += 8)
    for (int64_t b = 0; b < nblk; ++b)
      qk_tile<8, 1>(q + r * q_stride, q_stride, kt + b, d, scale, s + r * s_stride + kBlock * b, s_stride);
  const float* qr = q + r * q_stride;
  float* sr = s + r * s_stride;
  switch (nq - r) {
    case 7: qk_rows<7>(qr, q_stride, kt, nblk, d, scale, sr, s_stride); break;
    case 6: qk_rows<6>(qr, q_stride, kt, nblk, d, scale, sr, s_stride); break;
    case 5: qk_rows<5>(qr, q_stride, kt, nblk, d, scale, sr, s_stride); break;
    case 4: qk_rows<4>(qr, q_stride, kt, nblk, d, scale, sr, s_stride); break;
    case 3: qk_rows<3>(qr, q_stride, kt, nblk, d, scale, sr, s_stride); break;
    case 2: qk_rows<2>(qr, q_stride, kt, nblk, d, scale, sr, s_stride); break;
    case 1: qk_rows<1>(qr, q_stride, kt, nblk, d, scale, sr, s_stride); break;
    default: break;
  }
  return nq;
}

// R rows x 16 NV columns (c0 .. c0 + 16 NV - 1) over positions 0 .. m - 1: each value vector is
// widened once for the R rows (decode: a KV head's group of query heads), and the R NV
// accumulators are that many independent chains.
template <int R, int NV, class E>
inline void pv_rows_zmm(const float* p, int64_t p_stride, int64_t m, const E* v, int64_t vs, int64_t c0,
                        float* o, int64_t o_stride) {
  __m512 acc[R][NV];
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < NV; ++n) acc[i][n] = _mm512_loadu_ps(o + i * o_stride + c0 + 16 * n);
  for (int64_t j = 0; j < m; ++j) {
    __m512 vj[NV];
    for (int n = 0; n < NV; ++n) vj[n] = load16(v + j * vs + c0 + 16 * n);
    for (int i = 0; i < R; ++i) {
      const __m512 pj = _mm512_set1_ps(p[i * p_stride + j]);
      for (int n = 0; n < NV; ++n) acc[i][n] = _mm512_fmadd_ps(pj, vj[n], acc[i][n]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < NV; ++n) _mm512_storeu_ps(o + i * o_stride + c0 + 16 * n, acc[i][n]);
}

// R rows' columns 0 .. 16 floor(d / 16) - 1 over positions 0 .. m - 1, 64 at a time, then 32, then 16;
// returns the columns done.
template <int R, class E>
inline int64_t pv_cols(const float* p, int64_t p_stride, int64_t m, const E* v, int64_t vs, int64_t d, float* o,
                       int64_t o_stride) {
  int64_t c0 = 0;
  for (; c0 + 64 <= d; c0 += 64) pv_rows_zmm<R, 4>(p, p_stride, m, v, vs, c0, o, o_stride);
  for (; c0 + 32 <= d; c0 += 32) pv_rows_zmm<R, 2>(p, p_stride, m, v, vs, c0, o, o_stride);  // a Q8_0 group
  for (; c0 + 16 <= d; c0 += 16) pv_rows_zmm<R, 1>(p, p_stride, m, v, vs, c0, o, o_stride);
  return c0;
}
#elif defined(__AVX2__)
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) { return load8_f16(p); }
inline __m256 load8(const Bf16* p) { return load8_bf16(&p->bits); }
inline __m256 load8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// R query rows x 16 keys: two ymm accumulators per row, each key vector loaded once for the R.
template <int R, class E>
inline void qk_rows(const float* q, int64_t q_stride, const E* kt, int64_t d, float scale, float* s,
                    int64_t s_stride) {
  __m256 a0[R], a1[R];
  for (int i = 0; i < R; ++i) a0[i] = a1[i] = _mm256_setzero_ps();
  for (int64_t c = 0; c < d; ++c) {
    const __m256 k0 = load8(kt + c * kBlock), k1 = load8(kt + c * kBlock + 8);
    for (int i = 0; i < R; ++i) {
      const __m256 qb = _mm256_broadcast_ss(q + i * q_stride + c);
      a0[i] = _mm256_fmadd_ps(qb, k0, a0[i]);
      a1[i] = _mm256_fmadd_ps(qb, k1, a1[i]);
    }
  }
  const __m256 sc = _mm256_set1_ps(scale);
  for (int i = 0; i < R; ++i) {
    _mm256_storeu_ps(s + i * s_stride, _mm256_mul_ps(a0[i], sc));
    _mm256_storeu_ps(s + i * s_stride + 8, _mm256_mul_ps(a1[i], sc));
  }
}

// Tiles of 4 rows, then the 1 .. 3 left over together (decode: a KV head's group of query heads).
template <class E>
int64_t qk_block(const float* q, int64_t q_stride, int64_t nq, const E* kt, int64_t d,
                float scale, float* s, int64_t s_stride) {
  int64_t r = 0;
  for (; r + 4 <= nq; r += 4) qk_rows<4>(q + r * q_stride, q_stride, kt, d, scale, s + r * s_stride, s_stride);
  switch (nq - r) {
    case 3: qk_rows<3>(q + r * q_stride, q_stride, kt, d, scale, s + r * s_stride, s_stride); break;
    case 2: qk_rows<2>(q + r * q_stride, q_stride, kt, d, scale, s + r * s_stride, s_stride); break;
    case 1: qk_rows<1>(q + r * q_stride, q_stride, kt, d, scale, s + r * s_stride, s_stride); break;
    default: break;
  }
  return nq;
}
template <class E>
int64_t qk_simd(const float* q, int64_t q_stride, int64_t nq, const E* const* kt, int64_t nblk, int64_t d,
                float scale, float* s, int64_t s_stride) {
  for (int64_t b = 0; b < nblk; ++b) qk_block(q, q_stride, nq, kt[b], d, scale, s + kBlock * b, s_stride);
  return nq;
}
// R rows x 16 columns (c0 .. c0 + 15) over positions 0 .. m - 1: each value vector is widened
// once for the R rows (an F16 widening costs as much as a mul + add here), and the 2R
// accumulators hide the add latency that bounds one row's 4-accumulator pass.
template <int R, class E>
inline void pv_rows16(const float* p, int64_t p_stride, int64_t m, const E* v, int64_t vs, int64_t c0,
                      float* o, int64_t o_stride) {
  __m256 a0[R], a1[R];
  for (int i = 0; i < R; ++i) {
    a0[i] = _mm256_loadu_ps(o + i * o_stride + c0);
    a1[i] = _mm256_loadu_ps(o + i * o_stride + c0 + 8);
  }
  for (int64_t j = 0; j < m; ++j) {
    const __m256 v0 = load8(v + j * vs + c0), v1 = load8(v + j * vs + c0 + 8);
    for (int i = 0; i < R; ++i) {
      const __m256 pj = _mm256_broadcast_ss(p + i * p_stride + j);
      a0[i] = _mm256_fmadd_ps(pj, v0, a0[i]);
      a1[i] = _mm256_fmadd_ps(pj, v1, a1[i]);
    }
  }
  for (int i = 0; i < R; ++i) {
    _mm256_storeu_ps(o + i * o_stride + c0, a0[i]);
    _mm256_storeu_ps(o + i * o_stride + c0 + 8, a1[i]);
  }
}

// R rows' columns 0 .. 16 floor(d / 16) - 1 over positions 0 .. m - 1; returns the columns done.
template <int R, class E>
inline int64_t pv_cols(const float* p, int64_t p_stride, int64_t m, const E* v, int64_t vs, int64_t d, float* o,
                       int64_t o_stride) {
  const int64_t cs = d / 16 * 16;
  for (int64_t c0 = 0; c0 < cs; c0 += 16) pv_rows16<R>(p, p_stride, m, v, vs, c0, o, o_stride);
  return cs;
}
#endif

#if defined(__AVX2__)
// R rows together: positions below the rows' smallest count m jointly, then each row's own
// remaining positions; columns past the last multiple of 16 by the scalar loop. Every output
// element still sums its terms in increasing j. Returns R.
template <int R, class E>
int64_t pv_group(const float* p, int64_t p_stride, const int64_t* m, const E* v, int64_t vs, int64_t d, float* o,
                 int64_t o_stride) {
  int64_t mmin = kBlock, mr[R];
  for (int i = 0; i < R; ++i) {
    mr[i] = m[i] < 0 ? 0 : (m[i] < kBlock ? m[i] : kBlock);
    mmin = mr[i] < mmin ? mr[i] : mmin;
  }
  const int64_t cs = d / 16 * 16;
  if (mmin > 0) pv_cols<R>(p, p_stride, mmin, v, vs, d, o, o_stride);
  for (int i = 0; i < R; ++i) {
    const float* pi = p + i * p_stride;
    float* oi = o + i * o_stride;
    if (mr[i] > mmin) pv_cols<1>(pi + mmin, 0, mr[i] - mmin, v + mmin * vs, vs, d, oi, 0);
    if (mr[i] > 0) pv_cols_scalar(pi, mr[i], v, vs, d, cs, oi);
  }
  return R;
}

// Rows in groups of 4, the 1 .. 3 left over as one group (decode: a KV head's query heads).
template <class E>
int64_t pv_multi(const float* p, int64_t p_stride, const int64_t* m, int64_t nq, const E* v, int64_t vs, int64_t d,
                 float* o, int64_t o_stride) {
  int64_t r = 0;
  for (; r + 4 <= nq; r += 4) pv_group<4>(p + r * p_stride, p_stride, m + r, v, vs, d, o + r * o_stride, o_stride);
  const float* pr = p + r * p_stride;
  float* orow = o + r * o_stride;
  switch (nq - r) {
    case 3: return r + pv_group<3>(pr, p_stride, m + r, v, vs, d, orow, o_stride);
    case 2: return r + pv_group<2>(pr, p_stride, m + r, v, vs, d, orow, o_stride);
    case 1: return r + pv_group<1>(pr, p_stride, m + r, v, vs, d, orow, o_stride);
    default: return r;
  }
}
#else
// The generic level: the scalar loops do everything.
template <class E>
int64_t qk_simd(const float*, int64_t, int64_t, const E* const*, int64_t, int64_t, float, float*, int64_t) {
  return 0;
}
template <class E>
int64_t pv_multi(const float*, int64_t, const int64_t*, int64_t, const E*, int64_t, int64_t, float*, int64_t) {
  return 0;
}
#endif

template <class E>
void attn_qk16(const float* q, int64_t q_stride, int64_t nq, const E* const* kt, int64_t nblk, int64_t d,
               float scale, float* s, int64_t s_stride) {
  for (int64_t r = qk_simd(q, q_stride, nq, kt, nblk, d, scale, s, s_stride); r < nq; ++r)
    for (int64_t b = 0; b < nblk; ++b) qk_row_scalar(q + r * q_stride, kt[b], d, scale, s + r * s_stride + kBlock * b);
}

template <class E>
void attn_pv16_strided(const float* p, int64_t p_stride, const int64_t* m, int64_t nq, const E* v, int64_t vs,
                       int64_t d, float* o, int64_t o_stride) {
  for (int64_t r = pv_multi(p, p_stride, m, nq, v, vs, d, o, o_stride); r < nq; ++r) {
    const int64_t mr = m[r] < kBlock ? m[r] : kBlock;
    if (mr > 0) pv_cols_scalar(p + r * p_stride, mr, v, vs, d, 0, o + r * o_stride);
  }
}

template <class E>
void attn_pv16(const float* p, int64_t p_stride, const int64_t* m, int64_t nq, const E* v, int64_t d,
               float* o, int64_t o_stride) {
  attn_pv16_strided(p, p_stride, m, nq, v, d, d, o, o_stride);
}

// 16 floats (one block's slots): t = fma(a, b, t), y = a * b, y = y * c, each lane rounded once.
// Written out per level: as plain loops over possibly aliasing pointers GCC left them scalar.
inline void fma16(const float* a, const float* b, float* t) {
#if defined(__AVX512F__)
  _mm512_storeu_ps(t, _mm512_fmadd_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b), _mm512_loadu_ps(t)));
#elif defined(__AVX2__)
  for (int h = 0; h < kBlock; h += 8)
    _mm256_storeu_ps(t + h, _mm256_fmadd_ps(_mm256_loadu_ps(a + h), _mm256_loadu_ps(b + h), _mm256_loadu_ps(t + h)));
#else
  for (int j = 0; j < kBlock; ++j) t[j] = fma_exact(a[j], b[j], t[j]);
#endif
}
inline void mul16(const float* a, const float* b, float* y) {
#if defined(__AVX512F__)
  _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b)));
#elif defined(__AVX2__)
  for (int h = 0; h < kBlock; h += 8) _mm256_storeu_ps(y + h, _mm256_mul_ps(_mm256_loadu_ps(a + h), _mm256_loadu_ps(b + h)));
#else
  for (int j = 0; j < kBlock; ++j) y[j] = a[j] * b[j];
#endif
}
inline void scale16(float* y, float c) {
  const float cs[kBlock] = {c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c};
  mul16(y, cs, y);
}

// A Q8_0 block, a group of G = kv_q8_group(d) dimensions at a time (attention.h's order): per group
// g, the group's partial sums acc_g (the same kernels over the group's dimensions, scale 1, which
// is exact), then t = fma(acc_g, dk_gj, t) from t = +0, and s = t * scale. ks[b]: block b's scales
// for this head, [group][16]. Scratch per thread: nq x 16 partial sums per block.
constexpr int64_t kI8Blocks = 4;  // blocks per pass

void attn_qk16_i8(const float* q, int64_t q_stride, int64_t nq, const int8_t* const* kt, const float* const* ks,
                  int64_t nblk, int64_t d, float scale, float* s, int64_t s_stride) {
  const int64_t G = kv_q8_group(d), ng = d / G;
  thread_local std::vector<float> part;
  if (part.size() < static_cast<size_t>(nq * kBlock * kI8Blocks)) part.resize(static_cast<size_t>(nq * kBlock * kI8Blocks));
  for (int64_t b0 = 0; b0 < nblk; b0 += kI8Blocks) {
    const int64_t nb = nblk - b0 < kI8Blocks ? nblk - b0 : kI8Blocks;
    const int64_t ps = kBlock * nb;  // part's row stride
    for (int64_t r = 0; r < nq; ++r) std::fill_n(s + r * s_stride + kBlock * b0, ps, 0.0f);
    for (int64_t g = 0; g < ng; ++g) {
      const int8_t* ktg[kI8Blocks];
      for (int64_t i = 0; i < nb; ++i) ktg[i] = kt[b0 + i] + g * G * kBlock;
      attn_qk16(q + g * G, q_stride, nq, ktg, nb, G, 1.0f, part.data(), ps);
      for (int64_t r = 0; r < nq; ++r)
        for (int64_t i = 0; i < nb; ++i)
          fma16(part.data() + r * ps + kBlock * i, ks[b0 + i] + g * kBlock, s + r * s_stride + kBlock * (b0 + i));
    }
    for (int64_t r = 0; r < nq; ++r)
      for (int64_t i = 0; i < nb; ++i) scale16(s + r * s_stride + kBlock * (b0 + i), scale);
  }
}

// Per group g of G columns: p_j * dv_gj (rounded) in place of p_j, then the value kernels over the
// group's columns. ds: the block's scales for this head, [group][16].
void attn_pv16_i8(const float* p, int64_t p_stride, const int64_t* m, int64_t nq, const int8_t* v, const float* ds,
                  int64_t d, float* o, int64_t o_stride) {
  const int64_t G = kv_q8_group(d), ng = d / G;
  thread_local std::vector<float> pg;
  if (pg.size() < static_cast<size_t>(nq * kBlock)) pg.resize(static_cast<size_t>(nq * kBlock));
  for (int64_t g = 0; g < ng; ++g) {
    for (int64_t r = 0; r < nq; ++r) mul16(p + r * p_stride, ds + g * kBlock, pg.data() + r * kBlock);
    attn_pv16_strided(pg.data(), kBlock, m, nq, v + g * G, d, G, o + g * G, o_stride);
  }
}

}  // namespace

void fill_attention_kernels(KernelTable& t) {
  t.attn_qk16 = attn_qk16<float>;
  t.attn_pv16 = attn_pv16<float>;
  t.attn_qk16_f16 = attn_qk16<uint16_t>;
  t.attn_pv16_f16 = attn_pv16<uint16_t>;
  t.attn_qk16_bf16 = [](const float* q, int64_t q_stride, int64_t nq, const uint16_t* const* kt, int64_t nblk,
                        int64_t d, float scale, float* s, int64_t s_stride) {
    attn_qk16(q, q_stride, nq, reinterpret_cast<const Bf16* const*>(kt), nblk, d, scale, s, s_stride);
  };
  t.attn_pv16_bf16 = [](const float* p, int64_t p_stride, const int64_t* m, int64_t nq, const uint16_t* v,
                        int64_t d, float* o, int64_t o_stride) {
    attn_pv16(p, p_stride, m, nq, reinterpret_cast<const Bf16*>(v), d, o, o_stride);
  };
  t.attn_qk16_i8 = attn_qk16_i8;
  t.attn_pv16_i8 = attn_pv16_i8;
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
