// The F32 GEMM driver (compiled once; all arithmetic is the active level's gemm_tile). A block of
// A rows and a block of B columns, each over all of K, are packed into the level's panels in one
// parallel pass; then items of (mc rows x a group of nr-panels) are handed out dynamically over the
// pool. An item walks K in kc steps: its mc x kc A block stays in L2 while each kc x nr B panel,
// held in L1, meets every mr-row A panel. Partial sums live in C between kc steps, so every output
// is the canonical sum of gemm_f32.h whatever the blocking, thread count or level.
#include "kernels/cpu/gemm_f32.h"

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/cpu/kernel_table.h"
#include "llmasos/errors.hpp"

namespace llmasos::cpu {

namespace {

// Floats of A (rows x K) and of B (K x columns) packed at once: 16 MiB each at most, so a huge
// operand is packed block by block instead of copied whole.
constexpr int64_t kPackBudget = int64_t(4) << 20;
// Work items per thread: enough that a thread the OS preempts (a shared machine) costs little.
constexpr int64_t kItemsPerThread = 16;
// Floats of C per item (about 144 KiB): an item's C block stays in L2 beside its packed A block
// between kc steps (a 132 x 512 block measured 20% slower than 132 x 256 on Zen 3).
constexpr int64_t kItemCFloats = 36 * 1024;
// Room for the largest register tile of any level (avx512: 12 x 32), for edge tiles.
constexpr int64_t kMaxTile = 12 * 32;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// n floats of buf (uninitialized: packing writes every element), grown as needed, from a
// 64-byte aligned start so panel loads stay within cache lines.
float* aligned(std::unique_ptr<float[]>& buf, int64_t& have, int64_t n) {
  if (have < n + 16) {
    buf.reset();
    buf.reset(new float[static_cast<size_t>(n) + 16]);
    have = n + 16;
  }
  const uintptr_t p = reinterpret_cast<uintptr_t>(buf.get());
  return buf.get() + ((64 - p % 64) % 64) / sizeof(float);
}

// C[m x n] of a tile at c (row stride ldc) for the next kc step from packed panels a, b; an edge
// tile (m < mr or n < nr) runs on a full-size copy.
void run_tile(const KernelTable& k, int64_t kc, const float* a, const float* b, float* c,
              int64_t ldc, int64_t m, int64_t n, bool first) {
  const int64_t mr = k.gemm_mr, nr = k.gemm_nr;
  if (m == mr && n == nr) {
    k.gemm_tile(kc, a, b, c, ldc, first);
    return;
  }
  float t[kMaxTile];
  if (!first) {  // the padding starts at 0 too (no stray denormals or NaNs in discarded lanes)
    for (int64_t i = 0; i < mr * nr; ++i) t[i] = 0.0f;
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < n; ++j) t[r * nr + j] = c[r * ldc + j];
  }
  k.gemm_tile(kc, a, b, t, nr, first);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) c[r * ldc + j] = t[r * nr + j];
}

}  // namespace

void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
              int64_t ldb, float* C, int64_t ldc, ThreadPool& pool, GemmScratch& scratch) {
  if (M <= 0 || N <= 0 || K <= 0)
    throw InvalidArgumentError("gemm_f32: M, N and K must be positive (got " + std::to_string(M) +
                               ", " + std::to_string(N) + ", " + std::to_string(K) + ")");
  if (lda < K || ldb < N || ldc < N)
    throw InvalidArgumentError("gemm_f32: a row stride is shorter than its row");
  const KernelTable& k = kernels();
  const int64_t mr = k.gemm_mr, nr = k.gemm_nr, KC = k.gemm_kc;
  if (!k.gemm_tile || mr * nr > kMaxTile)
    throw InvalidArgumentError(std::string("gemm_f32: no GEMM kernel at level ") + k.isa);
  const int64_t nt = pool.size();

  // Blocks packed at once: rows of A and columns of B within the budget (whole panels, at least one).
  const int64_t mb_rows = min64(round_up(M, mr), max64(mr, kPackBudget / K / mr * mr));
  const int64_t nb_cols = min64(round_up(N, nr), max64(nr, kPackBudget / K / nr * nr));
  float* ap = aligned(scratch.a, scratch.a_floats, mb_rows * K);
  float* bp = aligned(scratch.b, scratch.b_floats, nb_cols * K);
  // Per kc step pc (depth kc_p), panel i of the A block is at ap + pc * mb_rows + i * kc_p * mr
  // and panel j of the B block at bp + pc * nb_cols + j * kc_p * nr.
  for (int64_t jc = 0; jc < N; jc += nb_cols) {
    const int64_t nc = min64(nb_cols, N - jc);
    const int64_t b_panels = ceil_div(nc, nr);
    for (int64_t ic = 0; ic < M; ic += mb_rows) {
      const int64_t mcb = min64(mb_rows, M - ic);
      const int64_t a_panels = ceil_div(mcb, mr);
      // B is packed once per column block (on the first row block); A once per row block.
      const int64_t b_todo = ic == 0 ? b_panels : 0;
      pool.parallel_for(a_panels + b_todo, 8, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p)
          for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = min64(KC, K - pc);
            if (p < a_panels) {
              const int64_t r0 = p * mr;
              k.gemm_pack_a(A + (ic + r0) * lda + pc, lda, min64(mr, mcb - r0), kc,
                            ap + pc * mb_rows + p * kc * mr);
            } else {
              const int64_t c0 = (p - a_panels) * nr;
              k.gemm_pack_b(B + pc * ldb + jc + c0, ldb, kc, min64(nr, nc - c0),
                            bp + pc * nb_cols + (p - a_panels) * kc * nr);
            }
          }
      });

      // Items: row groups of mc rows (about the level's mc, evened out) x column groups of whole
      // panels, at least kItemsPerThread per thread when the matrix allows.
      const int64_t target = kItemsPerThread * nt;
      int64_t row_groups = ceil_div(mcb, k.gemm_mc);
      const int64_t col_groups = min64(b_panels, max64(1, ceil_div(target, row_groups)));
      if (row_groups * col_groups < target) row_groups = min64(a_panels, ceil_div(target, col_groups));
      const int64_t mc = round_up(ceil_div(mcb, row_groups), mr);
      row_groups = ceil_div(mcb, mc);
      // An item's C block stays in L2 beside its A block between kc steps.
      int64_t pg = ceil_div(b_panels, col_groups);  // panels per column group
      pg = max64(1, min64(pg, kItemCFloats / (mc * nr)));
      const int64_t col_items = ceil_div(b_panels, pg);
      const int64_t n_items = row_groups * col_items;

      auto do_item = [&](int64_t item) {
        const int64_t i0 = item / col_items * mc;  // first row of the block
        const int64_t q0 = item % col_items * pg;  // first B panel
        const int64_t i1 = min64(i0 + mc, mcb), q1 = min64(q0 + pg, b_panels);
        for (int64_t pc = 0; pc < K; pc += KC) {
          const int64_t kc = min64(KC, K - pc);
          const float* a_step = ap + pc * mb_rows;
          const float* b_step = bp + pc * nb_cols;
          // No software prefetch of the next B panel: asked for into L1 it displaced the data in
          // use (2048^3, 2 threads, Zen 4, avx512: 193-197 GFLOP/s with it, 204-205 without; avx2
          // the same either way). The hardware prefetchers follow the packed panels alone.
          for (int64_t q = q0; q < q1; ++q) {
            const int64_t j = q * nr;
            const int64_t n = min64(nr, nc - j);
            for (int64_t i = i0; i < i1; i += mr)
              run_tile(k, kc, a_step + i * kc, b_step + q * kc * nr, C + (ic + i) * ldc + jc + j, ldc,
                       min64(mr, i1 - i), n, pc == 0);
          }
        }
      };
      pool.run_items(static_cast<int>(n_items), [&](int it) { do_item(it); });
    }
  }
}

}  // namespace llmasos::cpu
