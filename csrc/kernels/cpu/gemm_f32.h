// Dense F32 matrix product C[M, N] = A[M, K] @ B[K, N] (row-major, given row strides), blocked for
// the caches, packed into panels and split over the thread pool; compiled once, the arithmetic is
// the active level's KernelTable::gemm_* entries (gemm_f32_kernels.cc).
//
// Canonical order (every ISA level, every thread count, every blocking):
//     c = +0;  for k = 0, 1, ..., K-1:  c = fma(a[i,k], b[k,j], c)
// i.e. one fused multiply-add per term, rounded once, one term at a time in increasing k (FMA
// instructions at avx2 / avx512, std::fma in the generic loops). Blocking over k stores the partial
// sum c in C and continues from it, which is the same value sequence. The +0 start matters:
// fma(a, b, +0) with a * b = -0 gives +0, as a plain loop would.
// (Unlike the model's kernels, which use no FMA so that the scalar generic level stays fast on any
// x86-64: this product is not on the model's path, and FMA is 20% faster on Zen 3's split pipes.)
// Zero-padded rows of A and columns of B (edge tiles) only produce values that are discarded.
#pragma once
#include <cstdint>
#include <memory>

#include "kernels/cpu/thread_pool.h"

namespace llmasos::cpu {

// The packed panels of A and B, kept between calls (grown as needed, never shrunk): fresh pages
// cost a fault and a clear each, several percent of a 1024^3 product. One per concurrent caller.
struct GemmScratch {
  std::unique_ptr<float[]> a, b;
  int64_t a_floats = 0, b_floats = 0;
};

// C[i * ldc + j] = sum_k A[i * lda + k] * B[k * ldb + j] for i < M, j < N, in the canonical order.
// M, N, K > 0; lda >= K, ldb >= N, ldc >= N. C must not overlap A or B.
void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
              int64_t ldb, float* C, int64_t ldc, ThreadPool& pool, GemmScratch& scratch);

}  // namespace llmasos::cpu
