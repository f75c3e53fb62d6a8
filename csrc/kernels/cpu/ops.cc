// Dense float kernels (dot, RMSNorm, SiLU*up, axpy, softmax), compiled once per ISA level.
// Plain loops that each level's flags vectorize; reductions follow the canonical order of
// quant_dot.h and element-wise ops round identically at every level, so all levels agree bit for
// bit (std::exp is the same libm call everywhere). No STL here (see isa.h).
#include <cmath>
#include <cstdint>

#include "kernels/cpu/quant_dot.h"

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

void silu_mul(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float v = g[i];
    g[i] = v / (1.0f + std::exp(-v)) * u[i];
  }
}

void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void scale(float* x, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= a;
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  float s = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    s += x[i];
  }
  float inv = 1.0f / s;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace

void fill_ops(KernelTable& t) {
  t.dot_f32 = dot_f32;
  t.rmsnorm = rmsnorm;
  t.silu_mul = silu_mul;
  t.axpy = axpy;
  t.scale = scale;
  t.softmax = softmax;
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
