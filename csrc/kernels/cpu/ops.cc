// Dense float kernels (dot, RMSNorm, SiLU*up, GELU*up, soft-capping, axpy, softmax), compiled once per ISA level.
// Plain loops that each level's flags vectorize; reductions follow the canonical order of
// quant_dot.h and element-wise ops round identically at every level, so all levels agree bit for
// bit (exp is canonical_exp: plain float ops every level vectorizes alike). No STL here (isa.h).
#include <cmath>
#include <cstdint>

#include "kernels/cpu/exp_canonical.h"
#include "kernels/cpu/quant_dot.h"
#include "quant/quant_types.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

// The canonical float dot of quant_dot.h: element i into acc[i % 32], then the halving tree.
// Plain loops: each level's flags vectorize them without changing a single rounding.
float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[32] = {0};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 32; ++j) acc[j] += a[i + j] * b[i + j];
  for (int j = 0; i + j < n; ++j) acc[j] += a[i + j] * b[i + j];
  return canonical_tree(acc, 32);
}

float sum_sq(const float* x, int64_t n) { return dot_f32(x, x, n); }

void rmsnorm(float* y, const float* x, const float* w, int64_t n, float eps) {
  float scale = 1.0f / std::sqrt(sum_sq(x, n) / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

// y = g * sigmoid(g) * u (y may be g), in chunks whose exp pass is a plain loop the vectorizer takes.
void silu_mul(float* y, const float* g, const float* u, int64_t n) {
  float e[64];
  int64_t i0 = 0;
#if defined(__AVX2__) && !defined(__AVX512F__)
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  for (; i0 + 32 <= n; i0 += 32) {
    __m256 gv[4], e4[4];
    for (int j = 0; j < 4; ++j) {
      gv[j] = _mm256_loadu_ps(g + i0 + 8 * j);
      e4[j] = _mm256_xor_ps(gv[j], sign);  // -g
    }
    canonical_exp8<4>(e4);
    for (int j = 0; j < 4; ++j)
      _mm256_storeu_ps(y + i0 + 8 * j, _mm256_mul_ps(_mm256_div_ps(gv[j], _mm256_add_ps(one, e4[j])), _mm256_loadu_ps(u + i0 + 8 * j)));
  }
  y += i0;
  g += i0;
  u += i0;
  n -= i0;
#elif defined(__AVX512F__)
  const __m512 one = _mm512_set1_ps(1.0f);
  for (; i0 + 64 <= n; i0 += 64) {
    __m512 gv[4], e4[4];
    for (int j = 0; j < 4; ++j) {
      gv[j] = _mm512_loadu_ps(g + i0 + 16 * j);
      e4[j] = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(gv[j]), _mm512_set1_epi32(INT32_MIN)));  // -g
    }
    canonical_exp16<4>(e4);
    for (int j = 0; j < 4; ++j)
      _mm512_storeu_ps(y + i0 + 16 * j, _mm512_mul_ps(_mm512_div_ps(gv[j], _mm512_add_ps(one, e4[j])), _mm512_loadu_ps(u + i0 + 16 * j)));
  }
  y += i0;
  g += i0;
  u += i0;
  n -= i0;
#endif
  for (int64_t i = 0; i < n; i += 64) {
    const int64_t m = n - i < 64 ? n - i : 64;
    for (int64_t j = 0; j < m; ++j) e[j] = canonical_exp(-g[i + j]);
    for (int64_t j = 0; j < m; ++j) y[i + j] = g[i + j] / (1.0f + e[j]) * u[i + j];
  }
}

void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void scale(float* x, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= a;
}

// Each element one subtraction and one division, both correctly rounded: the same bits at every
// level, whatever the vector width.
void sub_div(const float* __restrict x, float m, float d, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) / d;
}

#if defined(__AVX2__) && !defined(__AVX512F__)
// x[0 .. 8N) = exp(x - m) in place, vector j added to s4[j % 4] (the 32 sum lanes, in order).
template <int N>
inline void exp_sum_run(float* x, __m256 mv, __m256 s4[4]) {
  __m256 e[N];
  for (int j = 0; j < N; ++j) e[j] = _mm256_sub_ps(_mm256_loadu_ps(x + 8 * j), mv);
  canonical_exp8<N>(e);
  for (int j = 0; j < N; ++j) {
    _mm256_storeu_ps(x + 8 * j, e[j]);
    s4[j % 4] = _mm256_add_ps(s4[j % 4], e[j]);
  }
}
#endif

// y = gelu_tanh(g) * u (y may be g), GELU's tanh form (Gemma's FFN gate):
//   gelu_tanh(x) = 0.5 x (1 + tanh(a)), a = sqrt(2 / pi) (x + 0.044715 x^3),
// computed as x / (1 + exp(-2 a)), the same function (0.5 (1 + tanh a) = 1 / (1 + e^-2a)) with
// no tanh and no cancellation near 0. Plain loops: every level's flags vectorize them alike.
void gelu_mul(float* y, const float* g, const float* u, int64_t n) {
  float e[64];
  for (int64_t i = 0; i < n; i += 64) {
    const int64_t m = n - i < 64 ? n - i : 64;
    for (int64_t j = 0; j < m; ++j) {
      const float x = g[i + j];
      e[j] = canonical_exp(-1.59576912161f * (x + 0.044715f * (x * x * x)));  // -2 sqrt(2/pi)
    }
    for (int64_t j = 0; j < m; ++j) y[i + j] = g[i + j] / (1.0f + e[j]) * u[i + j];
  }
}

// x = cap * tanh(x / cap): tanh(y) = sign(y) (1 - t) / (1 + t), t = exp(-2 |y|) (no overflow; the
// clamp of canonical_exp makes t ~1e-38 past |y| = 43.6, where tanh rounds to 1). Absolute error
// about cap * 1e-7 (1 - t cancels near 0), far below what moves a softmax. Plain loops.
void softcap(float* x, int64_t n, float cap) {
  const float inv = 1.0f / cap;
  float t[64];
  for (int64_t i = 0; i < n; i += 64) {
    const int64_t m = n - i < 64 ? n - i : 64;
    for (int64_t j = 0; j < m; ++j) {
      const float y = x[i + j] * inv;
      t[j] = canonical_exp(-2.0f * (y < 0.0f ? -y : y));
    }
    for (int64_t j = 0; j < m; ++j) {
      x[i + j] = std::copysign((1.0f - t[j]) / (1.0f + t[j]) * cap, x[i + j]);
    }
  }
}

#if defined(__AVX512F__)
// The first `left` lanes of a vector (all 16 from 16 on, none from 0 down).
inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

// x[0 .. 16 N) = exp(x - m) in place (lanes past `valid` neither stored nor summed), vector j added
// to s2[j % 2] (the 32 sum lanes, in order). Rows of attention scores are short (a few dozen keys
// in decode): masked tails keep them in vectors, where the plain loops ran up to 31 scalar exps.
template <int N>
inline void exp_sum_run16(float* x, __m512 mv, __m512 s2[2], int64_t valid) {
  __m512 e[N];
  __mmask16 k[N];
  for (int j = 0; j < N; ++j) {
    k[j] = tail_mask(valid - 16 * j);
    e[j] = _mm512_sub_ps(_mm512_maskz_loadu_ps(k[j], x + 16 * j), mv);
  }
  canonical_exp16<N>(e);
  for (int j = 0; j < N; ++j) {
    _mm512_mask_storeu_ps(x + 16 * j, k[j], e[j]);
    s2[j % 2] = _mm512_mask_add_ps(s2[j % 2], k[j], s2[j % 2], e[j]);
  }
}

// The plain loops' results, in vectors: the max (exact in any order; a NaN or a signed zero can
// change which lane's value m is, but not one output bit: any NaN makes every output NaN, and
// x - (+0) and x - (-0) have the same exp), then exp and the 32-lane sum with the same adds in
// the same order, the same tree, the same scale.
void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  __m512 m0 = _mm512_set1_ps(x[0]), m1 = m0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);  // (x > m) ? x : m, lane by lane
    m1 = _mm512_max_ps(_mm512_loadu_ps(x + i + 16), m1);
  }
  if (i < n) {
    const __mmask16 k0 = tail_mask(n - i), k1 = tail_mask(n - i - 16);
    m0 = _mm512_mask_max_ps(m0, k0, _mm512_maskz_loadu_ps(k0, x + i), m0);
    m1 = _mm512_mask_max_ps(m1, k1, _mm512_maskz_loadu_ps(k1, x + i + 16), m1);
  }
  const __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(m0, m1)));
  __m512 s2[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (i = 0; i + 64 <= n; i += 64) exp_sum_run16<4>(x + i, mv, s2, 64);
  if (i + 32 < n) {
    exp_sum_run16<4>(x + i, mv, s2, n - i);
  } else if (i < n) {
    exp_sum_run16<2>(x + i, mv, s2, n - i);
  }
  // canonical_tree over the 32 lanes: h = 16 (s2[0] + s2[1]), h = 8, then the 8-lane tree.
  const __m512 h16 = _mm512_add_ps(s2[0], s2[1]);
  const __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(h16),
                                  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(h16), 1)));
  const __m512 inv = _mm512_set1_ps(1.0f / canonical_tree8_ps(h8));
  for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
  }
}
#else
// Max (exact in any order), exp(x - max) element-wise, the sum in 32 lanes + tree32 (the float
// dot's order, so it vectorizes), then one scale.
void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float mx[32];
  for (int j = 0; j < 32; ++j) mx[j] = x[0];
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 32; ++j) mx[j] = x[i + j] > mx[j] ? x[i + j] : mx[j];
  for (int j = 0; i + j < n; ++j) mx[j] = x[i + j] > mx[j] ? x[i + j] : mx[j];
  float m = mx[0];
  for (int j = 1; j < 32; ++j) m = mx[j] > m ? mx[j] : m;
  // acc[j] sums elements j, j + 32, j + 64, ... in increasing order (then a tree over the 32).
  float acc[32];
  i = 0;
#if defined(__AVX2__) && !defined(__AVX512F__)
  // Each whole run of 32 is summed as it is exponentiated (the 4 vectors are acc's 32 lanes).
  const __m256 mv = _mm256_set1_ps(m);
  __m256 s4[4];
  for (int j = 0; j < 4; ++j) s4[j] = _mm256_setzero_ps();
  // 8 vectors in flight where 64 remain (the polynomial's chain is ~50 cycles long), then 4.
  for (; i + 64 <= n; i += 64) exp_sum_run<8>(x + i, mv, s4);
  for (; i + 32 <= n; i += 32) exp_sum_run<4>(x + i, mv, s4);
  for (int j = 0; j < 4; ++j) _mm256_storeu_ps(acc + 8 * j, s4[j]);
  const int64_t summed = i;
#else
  for (int j = 0; j < 32; ++j) acc[j] = 0.0f;
  const int64_t summed = 0;
#endif
  for (; i < n; ++i) x[i] = canonical_exp(x[i] - m);
  for (i = summed; i + 32 <= n; i += 32)
    for (int j = 0; j < 32; ++j) acc[j] += x[i + j];
  for (int j = 0; i + j < n; ++j) acc[j] += x[i + j];
  const float inv = 1.0f / canonical_tree(acc, 32);
  for (i = 0; i < n; ++i) x[i] *= inv;
}
#endif

// RoPE (rope.h): each output one product plus one product (rounded each, no contraction), so
// every level's vectors give the scalar bits. Each pair is read before either element is written,
// so the rotation runs in place whatever rd.
void rope_rotate(float* x, int64_t n_heads, int64_t head_dim, int64_t rd, const float* cs, bool neox) {
  const float* c = cs;
  const float* s = cs + rd;
  const int64_t half = rd / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    if (neox) {  // pairs (j, j + half): the two halves never overlap
      float* __restrict lo = v;
      float* __restrict hi = v + half;
      for (int64_t j = 0; j < half; ++j) {
        const float a = lo[j], b = hi[j];
        lo[j] = a * c[j] + b * s[j];
        hi[j] = b * c[half + j] + a * s[half + j];
      }
    } else {  // pairs (2i, 2i + 1)
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * c[2 * i] + b * s[2 * i];
        v[2 * i + 1] = b * c[2 * i + 1] + a * s[2 * i + 1];
      }
    }
  }
}

// The scalar conversion is branch-free, so each level's flags vectorize this loop.
void f32_to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

}  // namespace

void fill_ops(KernelTable& t) {
  t.dot_f32 = dot_f32;
  t.rmsnorm = rmsnorm;
  t.silu_mul = silu_mul;
  t.gelu_mul = gelu_mul;
  t.softcap = softcap;
  t.axpy = axpy;
  t.scale = scale;
  t.softmax = softmax;
  t.rope_rotate = rope_rotate;
  t.sub_div = sub_div;
  t.f32_to_f16 = f32_to_f16;
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
