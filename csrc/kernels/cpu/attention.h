// Causal grouped-query attention of new query tokens against a paged KV cache (F32, F16 or BF16),
// split over the thread pool by (token tile, KV head).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "quant/quant_types.h"

namespace llmasos::cpu {

// Positions per KV page (block). Within a page, one layer's keys are stored transposed per KV
// head, K[h][c][i] (head h, dimension c, slot i), and its values row-wise, V[h][i][c]: the score
// kernel then runs over 16 keys per vector, the value kernel over head_dim.
constexpr int64_t kKvBlockTokens = 16;

struct AttentionShape {
  int64_t n_head = 0;     // query heads
  int64_t n_head_kv = 0;  // key/value heads (n_head % n_head_kv == 0)
  int64_t head_dim = 0;
  float scale = 0.0f;     // scores = scale * q.k; 0: 1 / sqrt(head_dim)
  int64_t window = 0;     // > 0: sliding window, a token sees its last `window` positions (itself
                          // included); 0: every earlier position
  float softcap = 0.0f;   // > 0: scores soft-capped, softcap * tanh(score / softcap) (Gemma 2)
};

// Is `t` a KV cache element type (F32, F16, BF16, Q8_0)?
bool kv_type_supported(GgmlType t);
// Bytes per element: 4, 2, 2, and 1 for Q8_0 (whose pages count their scales in these elements).
size_t kv_type_size(GgmlType t);
// A Q8_0 cache stores each position's key (and value) vector of each KV head in groups of
// kv_q8_group(head_dim) elements (32, as ggml's Q8_0 blocks, or the whole vector when head_dim is
// not a multiple of 32), each group on its own scale: d = max |x| / 127, q = x / d rounded to
// nearest even (d = 0 and q = 0 for an all-zero group). The int8 quants take the layout above;
// the page's scales follow its 16 * n_head_kv * head_dim quants as floats, d[h][group][slot]
// (kv_q8_scales): 16 slots a line. 56% of an F16 cache's bytes when head_dim is a multiple of 32.
inline int64_t kv_q8_group(int64_t head_dim) { return head_dim % 32 == 0 ? 32 : head_dim; }
// Elements of K (and of V) per page and layer: 16 * n_head_kv * head_dim, plus the scales' bytes
// for Q8_0.
inline int64_t kv_page_layer_elems(const AttentionShape& s, GgmlType t) {
  const int64_t n = kKvBlockTokens * s.n_head_kv * s.head_dim;
  if (t != GgmlType::Q8_0) return n;
  return n + static_cast<int64_t>(sizeof(float)) * kKvBlockTokens * s.n_head_kv * (s.head_dim / kv_q8_group(s.head_dim));
}
// The scales of a Q8_0 page (layer view): page_base points at the page's first quant.
inline const float* kv_q8_scales(const void* page_base, const AttentionShape& s) {
  return reinterpret_cast<const float*>(static_cast<const uint8_t*>(page_base) + kKvBlockTokens * s.n_head_kv * s.head_dim);
}

// One layer's keys and values: page p starts at element p * page_stride of k (and of v).
struct KvPagesView {
  void* k = nullptr;
  void* v = nullptr;
  GgmlType type = GgmlType::F32;
  int64_t page_stride = 0;  // elements
};

// Writes one position's key and value rows ([n_head_kv * head_dim] floats each) into slot `slot`
// of page `page`, rounding to the cache type (round to nearest even; Q8_0 as above).
void kv_store_position(const KvPagesView& kv, const AttentionShape& s, int64_t page, int64_t slot,
                       const float* k, const float* v);

// Attention for T query tokens of possibly different sequences: q row t ([n_head][head_dim]) is at
// position pos[t] of the sequence whose page table is pages[t] and attends to that sequence's
// positions lo..pos[t] (already stored), lo = 0, or pos[t] + 1 - window with a window.
// out: [T][n_head][head_dim].
// Canonical order, per (token, head), whatever the batch, tiling, threads or ISA level:
//   score_j = acc * scale where acc = +0; acc = fma(q_c, k_jc, acc) for c in increasing order
//   (keys widened exactly from the cache type; Q8_0: k_jc its int8 quant, one acc per group g
//   of dimensions, t = +0; t = fma(acc_g, dk_gj, t) over the groups in order, score_j = t * scale,
//   dk_gj the group's scale), soft-capped by the ops.cc softcap where asked;
//   p = softmax(score_lo..pos) (the ops.cc softmax
//   over exactly those); out_c = +0; out_c = fma(p_j, v_jc, out_c) for j in increasing order from
//   16 * floor(lo / 16), where p_j = +0 for j < lo (an exact no-op on finite values, and the same
//   terms whatever the row's batch); Q8_0: v_jc its int8 quant and p_j * dv_gj in place of p_j,
//   g the group of c.
// So a token's result never depends on which other tokens share its batch.
// q_stride: floats from one token's q row to the next (0: n_head * head_dim, rows back to back;
// the model passes its stacked q | k | v product rows as they are).
void attention_paged(const float* q, float* out, int64_t T, const int64_t* pos,
                     const int32_t* const* pages, const KvPagesView& kv, const AttentionShape& s,
                     ThreadPool& pool, std::vector<float>& scratch, int64_t q_stride = 0);

}  // namespace llmasos::cpu
