// RoPE: theta_i = pos * freq_scale * base^(-2i/rope_dim) (/ freq_factor_i), applied to rope_dim dims
// per head.
#include "kernels/cpu/rope.h"

#include <cmath>
#include <vector>

namespace llmasos::cpu {

void rope_cos_sin(int64_t pos, const RopeParams& p, float* cs) {
  const int64_t half = p.rope_dim / 2;
  const double dpos = static_cast<double>(pos) * static_cast<double>(p.freq_scale);
  for (int64_t i = 0; i < half; ++i) {
    double inv = std::pow(static_cast<double>(p.freq_base), -2.0 * i / p.rope_dim);
    if (p.freq_factors) inv /= p.freq_factors[i];
    double th = dpos * inv;
    cs[2 * i] = static_cast<float>(std::cos(th));
    cs[2 * i + 1] = static_cast<float>(std::sin(th));
  }
}

void rope_apply(float* x, int64_t n_heads, int64_t head_dim, const float* cs, const RopeParams& p) {
  const int64_t half = p.rope_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float c = cs[2 * i], s = cs[2 * i + 1];
      int64_t a = p.style == RopeStyle::Interleaved ? 2 * i : i;
      int64_t b = p.style == RopeStyle::Interleaved ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

void rope_inplace(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t pos0,
                  const RopeParams& p) {
  std::vector<float> cs(static_cast<size_t>(p.rope_dim / 2) * 2);
  for (int64_t t = 0; t < T; ++t) {
    rope_cos_sin(pos0 + t, p, cs.data());
    rope_apply(x + t * n_heads * head_dim, n_heads, head_dim, cs.data(), p);
  }
}

}  // namespace llmasos::cpu
