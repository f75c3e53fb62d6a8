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
  t.sub_div = sub_div;
  t.f32_to_f16 = f32_to_f16;
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
