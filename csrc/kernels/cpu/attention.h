// Causal grouped-query attention of T new query tokens against a KV cache, split by heads.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/thread_pool.h"

namespace llmasos::cpu {

struct AttentionShape {
  int64_t n_head = 0;     // query heads
  int64_t n_head_kv = 0;  // key/value heads (n_head % n_head_kv == 0)
  int64_t head_dim = 0;
  int64_t kv_stride = 0;  // floats between consecutive positions in k/v (= n_head_kv * head_dim)
};

// q: [T][n_head][head_dim] for positions pos0..pos0+T-1; k, v: [pos][n_head_kv][head_dim] holding
// positions 0..pos0+T-1 (the new tokens already written). out: [T][n_head][head_dim].
// Each query attends to positions <= its own. `scratch` holds per-thread score rows.
void attention(const float* q, const float* k, const float* v, float* out, int64_t T, int64_t pos0,
               const AttentionShape& s, ThreadPool& pool, std::vector<float>& scratch);

}  // namespace llmasos::cpu
