// Rotary position embedding, in place, for T tokens x n_heads heads of head_dim floats.
#pragma once
#include <cstdint>

namespace llmasos::cpu {

enum class RopeStyle {
  Interleaved,  // rotate pairs (x[2i], x[2i+1]): llama GGUFs (weights permuted at conversion)
  Neox,         // rotate pairs (x[i], x[i + d/2]): qwen2 and other NeoX-style models
};

struct RopeParams {
  RopeStyle style = RopeStyle::Interleaved;
  int64_t rope_dim = 0;          // rotated dimensions per head (<= head_dim, even)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;        // linear scaling (rope.scaling.type linear): positions * this
  const float* freq_factors = nullptr;  // optional rope_dim/2 divisors (llama 3.1 rope_freqs)
};

// x: [T][n_heads][head_dim]; token t is at position pos0 + t.
void rope_inplace(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t pos0,
                  const RopeParams& p);

// The same in two steps, so a batch computes each token's angles once for all layers:
// rope_cos_sin writes 2 * rope_dim floats for position `pos`, per rotated element j its factors
// c[j] = cs[j] and s[j] = cs[rope_dim + j]: the cosine of its pair, and the sine with the sign the
// rotation gives it (-sin for the pair's first element, +sin for its second); then rope_apply
// rotates n_heads heads of one token: x[j] = x[j] * c[j] + x[partner(j)] * s[j] (partner: the
// other element of j's pair), which is x0 cos - x1 sin and x1 cos + x0 sin bit for bit, in a form
// the active ISA level's kernel (KernelTable::rope_rotate) runs in vectors.
void rope_cos_sin(int64_t pos, const RopeParams& p, float* cs);
void rope_apply(float* x, int64_t n_heads, int64_t head_dim, const float* cs, const RopeParams& p);

}  // namespace llmasos::cpu
