// Matrix products of a (possibly quantized) weight matrix with float activations, split across
// the thread pool by output rows. The activations are quantized once per call into the weight
// type's vec_dot_type (Q8_0 / Q8_1 / Q8_K), then every weight row is dotted with every token row
// while it is hot in cache (4 tokens per weight-block unpack in prefill). Each output element is
// bit-identical whatever T, the thread count or the ISA level.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "quant/quant_types.h"

namespace llmasos::cpu {

// A weight matrix of `rows` output rows, each `cols` elements of `type`, rows `row_stride` bytes
// apart (ggml layout: a GGUF tensor with ne[0] = cols, ne[1] = rows).
// With x8 set, data is the row-interleaved packing of quant/packed_x8.h (ceil(rows / 8) groups of
// 8 rows; row_stride unused), which matmul runs through the KernelTable's gemm_x8.
struct WeightView {
  GgmlType type = GgmlType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t row_stride = 0;
  bool x8 = false;
};

// Reusable scratch for the quantized activations (grows as needed, never shrinks).
struct MatmulScratch {
  std::vector<uint8_t> qact;
  std::vector<float> split;  // matmul_precise: [T][cols] activation residuals
  // matmul_precise: [2T][rows] products (the 8-bit parts, then the residuals')
  std::vector<float> prod;
  // x8 products: per token and block, the activation scale and sum field as float, the quant sum
  std::vector<float> xd, xs;
  std::vector<int32_t> xsum;
};

// Optional per-token work fused into a product's activation pass: prep(t0, t1) makes token rows
// [t0, t1) of X (e.g. RMSNorm into X's buffer, SwiGLU), on the thread that quantizes those rows
// right after (the rows are still in L1), split across the pool like the quantization. Rows must
// not depend on each other.
using RowsPrep = std::function<void(int64_t t0, int64_t t1)>;

// Y[t * rows + r] = dot(W row r, X[t * cols ...]) for t < T, r < W.rows.
void matmul(const WeightView& W, const float* X, int64_t T, float* Y, ThreadPool& pool,
            MatmulScratch& scratch, const RowsPrep* prep = nullptr);

// Like matmul, with about 16-bit activation precision for the same integer kernels: each row x
// is split into its 8-bit quantization's value x1 and the residual x - x1, both are quantized and
// dotted with the weights (as 2T token rows, so each weight row is read once for both), and the
// two products are added. Used where activation rounding is amplified (attention's Q/K/V).
// Packed Q4_0 ... Q8_0 weights take one product with 16-bit activations instead
// (quant_gemm_q16.cc: the same precision or better, at about the cost of one 8-bit product).
void matmul_precise(const WeightView& W, const float* X, int64_t T, float* Y, ThreadPool& pool,
                    MatmulScratch& scratch, const RowsPrep* prep = nullptr);

// Copies row `r` of W into `out` as float (embedding lookup).
void dequantize_row(const WeightView& W, int64_t r, float* out);

// True when W's type has an x8 packing the active kernels can run (see pack_x8).
bool can_pack_x8(const WeightView& W);
// Storage of a packed matrix (not zero-filled first: packing writes every byte). Transparent huge
// pages for the large ones were tried: 28 MiB of the head in huge pages changed neither load time
// nor decode speed measurably here.
using PackedBytes = std::unique_ptr<uint8_t[]>;
// Packs W (ggml layout) into `out` (quant::x8_matrix_bytes) and returns the x8 view.
WeightView pack_x8(const WeightView& W, PackedBytes& out);
// Packs n matrices of one type and width as one (their rows stacked in order: a fused Q|K|V or
// gate|up product, one activation quantization and one pool job for all). Every part but the last
// must have a multiple of 8 rows, so each part starts on a group; false (nothing packed) otherwise.
bool pack_x8_stacked(const WeightView* parts, int n, PackedBytes& out, WeightView& packed);

}  // namespace llmasos::cpu
