// The matmul driver: quantizes the T activation rows once into the weight type's vec_dot_type,
// then splits the output rows across the pool; each thread walks 4-row x 4-token tiles so a few
// weight rows stay in L1 while every token is dotted with them. Compiled once (generic flags);
// all arithmetic goes through the active KernelTable.
#include "kernels/cpu/matmul.h"

#include <string>

#include "kernels/cpu/kernel_table.h"
#include "llmasos/errors.hpp"

namespace llmasos::cpu {

namespace {

constexpr int64_t kTileRows = 4;
constexpr int64_t kTileTokens = 4;

const TypeTraits& checked_traits(const WeightView& W) {
  const TypeTraits* tr = type_traits(W.type);
  if (!tr) throw InvalidArgumentError("matmul: unsupported weight type id " +
                                      std::to_string(static_cast<uint32_t>(W.type)));
  if (W.rows < 0 || W.cols <= 0 || W.cols % tr->block_size != 0)
    throw InvalidArgumentError(std::string("matmul: ") + tr->name + " weight with " +
                               std::to_string(W.cols) + " columns (must be a positive multiple of " +
                               std::to_string(tr->block_size) + ")");
  if (W.rows > 0 && (!W.data || W.row_stride < row_bytes(*tr, W.cols)))
    throw InvalidArgumentError(std::string("matmul: ") + tr->name + " weight row stride " +
                               std::to_string(W.row_stride) + " is shorter than a row");
  return *tr;
}

}  // namespace

void matmul(const WeightView& W, const float* X, int64_t T, float* Y, ThreadPool& pool,
            MatmulScratch& scratch) {
  const TypeTraits& tr = checked_traits(W);
  if (T <= 0 || W.rows == 0) return;
  const KernelTable& k = kernels();
  const uint32_t type_id = static_cast<uint32_t>(W.type);
  auto vec_dot = k.vec_dot[type_id];
  if (!vec_dot)
    throw InvalidArgumentError(std::string("matmul: no dot product kernel for ") + tr.name);
  const int64_t cols = W.cols, rows = W.rows;

  // Activations in the weight's dot-product format: [T][act_row] bytes.
  const uint8_t* act = reinterpret_cast<const uint8_t*>(X);
  uint64_t act_row = static_cast<uint64_t>(cols) * sizeof(float);
  if (tr.vec_dot_type != GgmlType::F32) {
    const uint32_t act_id = static_cast<uint32_t>(tr.vec_dot_type);
    const TypeTraits* at = type_traits(act_id);
    auto quantize = k.quantize_act[act_id];
    if (!at || !quantize || cols % at->block_size != 0)
      throw InvalidArgumentError(std::string("matmul: cannot quantize activations for ") + tr.name);
    act_row = row_bytes(*at, cols);
    const uint64_t need = act_row * static_cast<uint64_t>(T);
    if (scratch.qact.size() < need) scratch.qact.resize(need);
    uint8_t* q = scratch.qact.data();
    const uint64_t stride = act_row;
    auto quantize_rows = [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) quantize(X + t * cols, q + t * stride, cols);
    };
    if (T >= 2 * pool.size() && T * cols >= (1 << 16)) pool.parallel_for(T, 1, quantize_rows);
    else quantize_rows(0, T);
    act = q;
  }

  const uint8_t* w = static_cast<const uint8_t*>(W.data);
  const uint64_t w_stride = W.row_stride;
  auto rows_job = [&](int64_t r0, int64_t r1) {
    for (int64_t rb = r0; rb < r1; rb += kTileRows) {
      const int64_t re = rb + kTileRows < r1 ? rb + kTileRows : r1;
      for (int64_t tb = 0; tb < T; tb += kTileTokens) {
        const int64_t te = tb + kTileTokens < T ? tb + kTileTokens : T;
        for (int64_t r = rb; r < re; ++r) {
          const void* wr = w + static_cast<uint64_t>(r) * w_stride;
          for (int64_t t = tb; t < te; ++t)
            vec_dot(cols, Y + t * rows + r, wr, act + static_cast<uint64_t>(t) * act_row);
        }
      }
    }
  };
  // Grain: whole tiles, and enough rows per chunk that a small matrix is not split to death.
  const int64_t grain = rows * cols * T < (1 << 15) ? rows : kTileRows * 4;
  pool.parallel_for(rows, grain, rows_job);
}

void matmul_precise(const WeightView& W, const float* X, int64_t T, float* Y, ThreadPool& pool,
                    MatmulScratch& scratch) {
  const TypeTraits& tr = checked_traits(W);
  if (T <= 0 || W.rows == 0) return;
  if (tr.vec_dot_type == GgmlType::F32) {  // float activations: already exact
    matmul(W, X, T, Y, pool, scratch);
    return;
  }
  const KernelTable& k = kernels();
  const uint32_t act_id = static_cast<uint32_t>(tr.vec_dot_type);
  const TypeTraits* at = type_traits(act_id);
  auto quantize = k.quantize_act[act_id];
  if (!at || !quantize || !at->dequantize_row || W.cols % at->block_size != 0)
    throw InvalidArgumentError(std::string("matmul_precise: cannot quantize activations for ") + tr.name);
  const int64_t cols = W.cols, rows = W.rows;
  // split = [X; X - dequant(quant(X))]: rows t and T + t are the two parts of token t.
  scratch.split.resize(static_cast<size_t>(2 * T * cols));
  float* xs = scratch.split.data();
  std::vector<uint8_t> q(static_cast<size_t>(row_bytes(*at, cols)));
  for (int64_t t = 0; t < T; ++t) {
    const float* x = X + t * cols;
    float* hi = xs + t * cols;
    float* lo = xs + (T + t) * cols;
    quantize(x, q.data(), cols);
    at->dequantize_row(q.data(), lo, cols);
    for (int64_t i = 0; i < cols; ++i) {
      hi[i] = x[i];
      lo[i] = x[i] - lo[i];
    }
  }
  scratch.prod.resize(static_cast<size_t>(2 * T * rows));
  // matmul quantizes each row again: row t gives back x1 exactly, row T + t the residual.
  matmul(W, xs, 2 * T, scratch.prod.data(), pool, scratch);
  const float* p = scratch.prod.data();
  for (int64_t i = 0; i < T * rows; ++i) Y[i] = p[i] + p[T * rows + i];
}

void dequantize_row(const WeightView& W, int64_t r, float* out) {
  const TypeTraits& tr = checked_traits(W);
  if (r < 0 || r >= W.rows)
    throw InvalidArgumentError("dequantize_row: row " + std::to_string(r) + " out of range [0, " +
                               std::to_string(W.rows) + ")");
  auto deq = kernels().dequantize_row[static_cast<uint32_t>(W.type)];
  if (!deq) throw InvalidArgumentError(std::string("dequantize_row: no kernel for ") + tr.name);
  deq(static_cast<const uint8_t*>(W.data) + static_cast<uint64_t>(r) * W.row_stride, out, W.cols);
}

}  // namespace llmasos::cpu
