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

// One layer's keys and values kept in pages of `page_tokens` positions: the row of (page p, slot i)
// is at k + p * page_stride + i * kv_stride (v likewise). A contiguous cache is one page.
struct KvPagesView {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t page_tokens = 0;
  int64_t page_stride = 0;  // floats between pages
};

// Attention for T query tokens of possibly different sequences: token t (q row t, out row t) is at
// position pos[t] of the sequence whose page table is pages[t], and attends to that sequence's
// positions 0..pos[t] (already written). Per (token, head) the arithmetic is exactly attention()'s,
// so results do not depend on the page size or on which other tokens share the batch.
void attention_paged(const float* q, float* out, int64_t T, const int64_t* pos,
                     const int32_t* const* pages, const KvPagesView& kv, const AttentionShape& s,
                     ThreadPool& pool, std::vector<float>& scratch);

}  // namespace llmasos::cpu
