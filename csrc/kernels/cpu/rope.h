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
// cs = rope_dim floats (cos, sin pairs) for position `pos`; then rotate n_heads heads of one token.
void rope_cos_sin(int64_t pos, const RopeParams& p, float* cs);
void rope_apply(float* x, int64_t n_heads, int64_t head_dim, const float* cs, const RopeParams& p);

}  // namespace llmasos::cpu
