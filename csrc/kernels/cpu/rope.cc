// RoPE: theta_i = pos * freq_scale * base^(-2i/rope_dim) (/ freq_factor_i), applied to rope_dim dims
// per head.
#include "kernels/cpu/rope.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/kernel_table.h"

namespace llmasos::cpu {

void rope_cos_sin(int64_t pos, const RopeParams& p, float* cs) {
  const int64_t rd = p.rope_dim, half = rd / 2;
  const double dpos = static_cast<double>(pos) * static_cast<double>(p.freq_scale);
  float* c = cs;
  float* s = cs + rd;
  for (int64_t i = 0; i < half; ++i) {
    double inv = std::pow(static_cast<double>(p.freq_base), -2.0 * i / p.rope_dim);
    if (p.freq_factors) inv /= p.freq_factors[i];
    double th = dpos * inv;
    const float ci = static_cast<float>(std::cos(th)), si = static_cast<float>(std::sin(th));
    // Pair i: elements (2i, 2i + 1) interleaved, (i, i + half) NeoX.
    const int64_t a = p.style == RopeStyle::Interleaved ? 2 * i : i;
    const int64_t b = p.style == RopeStyle::Interleaved ? 2 * i + 1 : i + half;
    c[a] = c[b] = ci;
    s[a] = -si;
    s[b] = si;
  }
}

void rope_apply(float* x, int64_t n_heads, int64_t head_dim, const float* cs, const RopeParams& p) {
  kernels().rope_rotate(x, n_heads, head_dim, p.rope_dim, cs, p.style == RopeStyle::Neox);
}

void rope_inplace(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t pos0,
                  const RopeParams& p) {
  std::vector<float> cs(static_cast<size_t>(2 * p.rope_dim));
  for (int64_t t = 0; t < T; ++t) {
    rope_cos_sin(pos0 + t, p, cs.data());
    rope_apply(x + t * n_heads * head_dim, n_heads, head_dim, cs.data(), p);
  }
}

}  // namespace llmasos::cpu
