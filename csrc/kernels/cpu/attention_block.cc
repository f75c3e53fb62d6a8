// The two inner products of attention over one 16-position KV block, compiled once per ISA level
// (see attention.h for the block layout and the canonical order). Plain loops over fixed-size
// register tiles that each level's flags vectorize: every output element is a sequential sum in
// increasing index order, so all levels give the same bits. No STL here (see isa.h).
#include <cstdint>

#include "kernels/cpu/isa.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

constexpr int kBlock = 16;  // positions per KV block (attention.h: kKvBlockTokens)
#if defined(__AVX512F__)
constexpr int kQkRows = 8;  // 8 rows x 16 keys = 8 zmm accumulators
#else
constexpr int kQkRows = 4;  // 4 rows x 16 keys = 8 ymm accumulators
#endif

// NR query rows (q_stride apart) against the transposed key block kt [d][16]:
// s[r][j] = scale * (((q[r][0] * kt[0][j]) + q[r][1] * kt[1][j]) + ...).
template <int NR>
void qk_rows(const float* q, int64_t q_stride, const float* kt, int64_t d, float scale, float* s,
             int64_t s_stride) {
  float acc[NR][kBlock] = {};
  for (int64_t c = 0; c < d; ++c) {
    const float* kc = kt + c * kBlock;
    for (int r = 0; r < NR; ++r) {
      const float qv = q[r * q_stride + c];
      for (int j = 0; j < kBlock; ++j) acc[r][j] += qv * kc[j];
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int j = 0; j < kBlock; ++j) s[r * s_stride + j] = acc[r][j] * scale;
}

void attn_qk16(const float* q, int64_t q_stride, int64_t nq, const float* kt, int64_t d,
               float scale, float* s, int64_t s_stride) {
  int64_t r = 0;
  for (; r + kQkRows <= nq; r += kQkRows)
    qk_rows<kQkRows>(q + r * q_stride, q_stride, kt, d, scale, s + r * s_stride, s_stride);
  for (; r < nq; ++r) qk_rows<1>(q + r * q_stride, q_stride, kt, d, scale, s + r * s_stride, s_stride);
}

// o[c] += p[j] * v[j][c] for j < m in increasing order, d split into 64-wide register chunks.
void pv_row(const float* p, int64_t m, const float* v, int64_t d, float* o) {
  int64_t c0 = 0;
  for (; c0 + 64 <= d; c0 += 64) {
    float acc[64];
    for (int c = 0; c < 64; ++c) acc[c] = o[c0 + c];
    for (int64_t j = 0; j < m; ++j) {
      const float pj = p[j];
      const float* vj = v + j * d + c0;
      for (int c = 0; c < 64; ++c) acc[c] += pj * vj[c];
    }
    for (int c = 0; c < 64; ++c) o[c0 + c] = acc[c];
  }
  for (int64_t j = 0; j < m; ++j)
    for (int64_t c = c0; c < d; ++c) o[c] += p[j] * v[j * d + c];
}

void attn_pv16(const float* p, int64_t p_stride, const int64_t* m, int64_t nq, const float* v,
               int64_t d, float* o, int64_t o_stride) {
  for (int64_t r = 0; r < nq; ++r)
    if (m[r] > 0) pv_row(p + r * p_stride, m[r] < kBlock ? m[r] : kBlock, v, d, o + r * o_stride);
}

}  // namespace

void fill_attention_kernels(KernelTable& t) {
  t.attn_qk16 = attn_qk16;
  t.attn_pv16 = attn_pv16;
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
