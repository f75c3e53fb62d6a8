// The matmul driver: quantizes the T activation rows once into the weight type's vec_dot_type
// (in parallel over tokens), then runs the dot products over the pool. Decode (T < 4): output rows
// split across threads, each walking 4-row x 4-token tiles of vec_dot. Prefill (T >= 4, where the
// level has vec_dot_4x): chunks of output rows handed out dynamically; vec_dot_4x dots every row
// of a chunk with 4 tokens at once (each weight block unpacked once per 4 tokens), the chunk's
// weights staying in cache while all token groups pass. Every output element is
// bit-identical whatever the path, T or thread count. Compiled once (generic flags); all
// arithmetic goes through the active KernelTable.
#include "kernels/cpu/matmul.h"

#include <string>

#include "kernels/cpu/kernel_table.h"
#include "llmasos/errors.hpp"

namespace llmasos::cpu {

namespace {

constexpr int64_t kTileRows = 4;
constexpr int64_t kTileTokens = 4;
// Prefill: weight bytes per row chunk (kept in L1/L2 while all token groups pass over them), and
// at least this many chunks per thread so a slow or preempted thread is balanced dynamically.
constexpr uint64_t kChunkBytes = 32 * 1024;
constexpr int64_t kChunksPerThread = 4;

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

// The activation format of W's dot products, or nullptr for float weights (plain float rows).
const TypeTraits* act_traits(const TypeTraits& tr, const KernelTable& k, int64_t cols,
                             const char* who) {
  if (tr.vec_dot_type == GgmlType::F32) return nullptr;
  const uint32_t act_id = static_cast<uint32_t>(tr.vec_dot_type);
  const TypeTraits* at = type_traits(act_id);
  if (!at || !k.quantize_act[act_id] || !at->dequantize_row || cols % at->block_size != 0)
    throw InvalidArgumentError(std::string(who) + ": cannot quantize activations for " + tr.name);
  return at;
}

// Runs fn(t0, t1) over [0, T) tokens, split across the pool when it is worth a wake-up.
template <class Fn>
void for_tokens(ThreadPool& pool, int64_t T, int64_t cols, const Fn& fn) {
  if (pool.size() > 1 && T >= 2 && T * cols >= (1 << 14))
    pool.parallel_for(T, 1, [&](int64_t t0, int64_t t1) { fn(t0, t1); });
  else
    fn(0, T);
}

// Y[t * rows + r] = dot(W row r, activation row t) for t < T; act rows are act_row bytes apart,
// already in W's vec_dot_type (or float).
void run_dots(const WeightView& W, const uint8_t* act, uint64_t act_row, int64_t T, float* Y,
              ThreadPool& pool) {
  const KernelTable& k = kernels();
  const uint32_t type_id = static_cast<uint32_t>(W.type);
  auto vec_dot = k.vec_dot[type_id];
  auto vec_dot_4x = k.vec_dot_4x[type_id];
  const int64_t cols = W.cols, rows = W.rows;
  const uint8_t* w = static_cast<const uint8_t*>(W.data);
  const uint64_t w_stride = W.row_stride;

  if (vec_dot_4x && T >= kTileTokens) {
    // Row chunks: a multiple of 4 rows, at most kChunkBytes of weights, and enough chunks that
    // each thread takes several (dynamic balance on a shared machine).
    const int64_t nt = pool.size();
    int64_t chunk = static_cast<int64_t>(kChunkBytes / (w_stride ? w_stride : 1));
    const int64_t fair = (rows + nt * kChunksPerThread - 1) / (nt * kChunksPerThread);
    if (chunk > fair) chunk = fair;
    chunk = (chunk + kTileRows - 1) / kTileRows * kTileRows;
    if (chunk < kTileRows) chunk = kTileRows;
    const int64_t n_chunks = (rows + chunk - 1) / chunk;
    const int64_t t4 = T - T % 4;
    auto do_chunk = [&](int64_t c) {
      const int64_t r0 = c * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
      for (int64_t tb = 0; tb < t4; tb += 4) {
        const uint8_t* a = act + static_cast<uint64_t>(tb) * act_row;
        float* y = Y + tb * rows;
        vec_dot_4x(cols, r1 - r0, y + r0, rows, w + static_cast<uint64_t>(r0) * w_stride, w_stride,
                   a, act_row);
      }
      for (int64_t t = t4; t < T; ++t)  // the last T % 4 tokens
        for (int64_t r = r0; r < r1; ++r)
          vec_dot(cols, Y + t * rows + r, w + static_cast<uint64_t>(r) * w_stride,
                  act + static_cast<uint64_t>(t) * act_row);
    };
    pool.run_items(static_cast<int>(n_chunks), [&](int c) { do_chunk(c); });
    return;
  }

  auto vec_dot_rows = k.vec_dot_rows[type_id];
  if (vec_dot_rows) {  // decode: an item's rows in one kernel call per token (L1/L2-sized items)
    const int64_t grain = rows * cols * T < (1 << 15) ? rows : kTileRows * 4;
    pool.parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t t = 0; t < T; ++t)
        vec_dot_rows(cols, r1 - r0, Y + t * rows + r0, w + static_cast<uint64_t>(r0) * w_stride,
                     w_stride, act + static_cast<uint64_t>(t) * act_row);
    });
    return;
  }
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

}  // namespace

void matmul(const WeightView& W, const float* X, int64_t T, float* Y, ThreadPool& pool,
            MatmulScratch& scratch) {
  const TypeTraits& tr = checked_traits(W);
  if (T <= 0 || W.rows == 0) return;
  const KernelTable& k = kernels();
  if (!k.vec_dot[static_cast<uint32_t>(W.type)])
    throw InvalidArgumentError(std::string("matmul: no dot product kernel for ") + tr.name);
  const int64_t cols = W.cols;
  const TypeTraits* at = act_traits(tr, k, cols, "matmul");
  if (!at) {
    run_dots(W, reinterpret_cast<const uint8_t*>(X), static_cast<uint64_t>(cols) * sizeof(float),
             T, Y, pool);
    return;
  }
  // Activations in the weight's dot-product format: [T][act_row] bytes.
  auto quantize = k.quantize_act[static_cast<uint32_t>(tr.vec_dot_type)];
  const uint64_t act_row = row_bytes(*at, cols);
  const uint64_t need = act_row * static_cast<uint64_t>(T);
  if (scratch.qact.size() < need) scratch.qact.resize(need);
  uint8_t* q = scratch.qact.data();
  for_tokens(pool, T, cols, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) quantize(X + t * cols, q + t * act_row, cols);
  });
  run_dots(W, q, act_row, T, Y, pool);
}

void matmul_precise(const WeightView& W, const float* X, int64_t T, float* Y, ThreadPool& pool,
                    MatmulScratch& scratch) {
  const TypeTraits& tr = checked_traits(W);
  if (T <= 0 || W.rows == 0) return;
  const KernelTable& k = kernels();
  const TypeTraits* at = act_traits(tr, k, W.cols, "matmul_precise");
  if (!at) {  // float activations: already exact
    matmul(W, X, T, Y, pool, scratch);
    return;
  }
  if (!k.vec_dot[static_cast<uint32_t>(W.type)])
    throw InvalidArgumentError(std::string("matmul_precise: no dot product kernel for ") + tr.name);
  auto quantize = k.quantize_act[static_cast<uint32_t>(tr.vec_dot_type)];
  const int64_t cols = W.cols, rows = W.rows;
  // Quantized rows t = quant(x_t) (x's 8-bit value x1) and T + t = quant(x_t - dequant(x1)) (the
  // residual): 2T token rows, so each weight row is read once for both parts.
  const uint64_t act_row = row_bytes(*at, cols);
  const uint64_t need = act_row * static_cast<uint64_t>(2 * T);
  if (scratch.qact.size() < need) scratch.qact.resize(need);
  uint8_t* q = scratch.qact.data();
  scratch.split.resize(static_cast<size_t>(T * cols));  // per token: the residual
  float* res = scratch.split.data();
  for_tokens(pool, T, cols, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* x = X + t * cols;
      float* lo = res + t * cols;
      uint8_t* q1 = q + static_cast<uint64_t>(t) * act_row;
      quantize(x, q1, cols);
      at->dequantize_row(q1, lo, cols);
      for (int64_t i = 0; i < cols; ++i) lo[i] = x[i] - lo[i];
      quantize(lo, q + static_cast<uint64_t>(T + t) * act_row, cols);
    }
  });
  scratch.prod.resize(static_cast<size_t>(2 * T * rows));
  float* p = scratch.prod.data();
  run_dots(W, q, act_row, 2 * T, p, pool);
  for_tokens(pool, T, rows, [&](int64_t t0, int64_t t1) {
    for (int64_t i = t0 * rows; i < t1 * rows; ++i) Y[i] = p[i] + p[T * rows + i];
  });
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
