// Dense float kernels (dot, RMSNorm, SiLU*up, axpy, softmax), compiled once per ISA level.
// Written as plain loops with independent accumulators so each level's flags vectorize them;
// no STL here (see isa.h).
#include <cmath>
#include <cstdint>

#include "kernels/cpu/isa.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

// 16 independent partial sums: lets the compiler use full vectors without reassociation flags.
float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  float s = 0.f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

float sum_sq(const float* x, int64_t n) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += x[i + j] * x[i + j];
  float s = 0.f;
  for (; i < n; ++i) s += x[i] * x[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

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
