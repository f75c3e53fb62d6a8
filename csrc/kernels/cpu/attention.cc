// Attention as softmax(q.K^T / sqrt(d)) V per (token, head), using the active kernel table for
// the dot products and the weighted sums. Work is split over (token, head) pairs.
#include "kernels/cpu/attention.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/kernel_table.h"

namespace llmasos::cpu {

void attention(const float* q, const float* k, const float* v, float* out, int64_t T, int64_t pos0,
               const AttentionShape& s, ThreadPool& pool, std::vector<float>& scratch) {
  const KernelTable& kt = kernels();
  const int64_t n_ctx = pos0 + T;
  const int64_t group = s.n_head / s.n_head_kv;
  const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const size_t need = static_cast<size_t>(pool.size()) * static_cast<size_t>(n_ctx);
  if (scratch.size() < need) scratch.resize(need);
  const int64_t jobs = T * s.n_head;
  pool.run([&](int ti, int nt) {
    float* scores = scratch.data() + static_cast<size_t>(ti) * n_ctx;
    for (int64_t job = ti; job < jobs; job += nt) {
      const int64_t t = job / s.n_head, h = job % s.n_head, hk = h / group;
      const float* qv = q + (t * s.n_head + h) * s.head_dim;
      const int64_t n = pos0 + t + 1;  // causal: positions 0..pos0+t
      for (int64_t j = 0; j < n; ++j)
        scores[j] = kt.dot_f32(qv, k + j * s.kv_stride + hk * s.head_dim, s.head_dim) * inv_sqrt;
      kt.softmax(scores, n);
      float* o = out + (t * s.n_head + h) * s.head_dim;
      std::memset(o, 0, sizeof(float) * s.head_dim);
      for (int64_t j = 0; j < n; ++j)
        kt.axpy(o, scores[j], v + j * s.kv_stride + hk * s.head_dim, s.head_dim);
    }
  });
}

void attention_paged(const float* q, float* out, int64_t T, const int64_t* pos,
                     const int32_t* const* pages, const KvPagesView& kv, const AttentionShape& s,
                     ThreadPool& pool, std::vector<float>& scratch) {
  const KernelTable& kt = kernels();
  int64_t max_n = 0;
  for (int64_t t = 0; t < T; ++t) max_n = pos[t] + 1 > max_n ? pos[t] + 1 : max_n;
  const int64_t group = s.n_head / s.n_head_kv;
  const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const size_t need = static_cast<size_t>(pool.size()) * static_cast<size_t>(max_n);
  if (scratch.size() < need) scratch.resize(need);
  const int64_t jobs = T * s.n_head;
  const int64_t pt = kv.page_tokens;
  pool.run([&](int ti, int nt) {
    float* scores = scratch.data() + static_cast<size_t>(ti) * max_n;
    for (int64_t job = ti; job < jobs; job += nt) {
      const int64_t t = job / s.n_head, h = job % s.n_head, hk = h / group;
      const float* qv = q + (t * s.n_head + h) * s.head_dim;
      const int32_t* table = pages[t];
      const int64_t n = pos[t] + 1;  // causal: positions 0..pos[t]
      for (int64_t j0 = 0, p = 0; j0 < n; j0 += pt, ++p) {
        const float* kp = kv.k + table[p] * kv.page_stride + hk * s.head_dim;
        const int64_t m = n - j0 < pt ? n - j0 : pt;
        for (int64_t i = 0; i < m; ++i)
          scores[j0 + i] = kt.dot_f32(qv, kp + i * s.kv_stride, s.head_dim) * inv_sqrt;
      }
      kt.softmax(scores, n);
      float* o = out + (t * s.n_head + h) * s.head_dim;
      std::memset(o, 0, sizeof(float) * s.head_dim);
      for (int64_t j0 = 0, p = 0; j0 < n; j0 += pt, ++p) {
        const float* vp = kv.v + table[p] * kv.page_stride + hk * s.head_dim;
        const int64_t m = n - j0 < pt ? n - j0 : pt;
        for (int64_t i = 0; i < m; ++i) kt.axpy(o, scores[j0 + i], vp + i * s.kv_stride, s.head_dim);
      }
    }
  });
}

}  // namespace llmasos::cpu
