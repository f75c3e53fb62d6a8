// The matmul driver: quantizes the T activation rows once into the weight type's vec_dot_type
// (in parallel over tokens), then runs the dot products over the pool. Decode (T < 4): output rows
// split across threads, each walking 4-row x 4-token tiles of vec_dot. Prefill (T >= 4, where the
// level has vec_dot_4x): chunks of output rows handed out dynamically; vec_dot_4x dots every row
// of a chunk with 4 tokens at once (each weight block unpacked once per 4 tokens), the chunk's
// weights staying in cache while all token groups pass. Every output element is
// bit-identical whatever the path, T or thread count. Compiled once (generic flags); all
// arithmetic goes through the active KernelTable.
#include "kernels/cpu/matmul.h"

#include <atomic>
#include <cstring>
#include <string>

#include "kernels/cpu/kernel_table.h"
#include "llmasos/errors.hpp"
#include "quant/packed_x8.h"

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
  if (W.x8) {
    if (quant::x8_block_bytes(W.type) == 0)
      throw InvalidArgumentError(std::string("matmul: no x8 packing for ") + tr->name);
    if (W.rows > 0 && !W.data) throw InvalidArgumentError("matmul: x8 weight without data");
    return *tr;
  }
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
  if (pool.size() > 1 && T >= 2 && T * cols >= (1 << 12))
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

// x8 side arrays of token rows [t0, t1) of q (Q8_0 / Q8_1 blocks, act_row bytes apart): per token
// and block the scale and (Q8_1) sum field as float, and (formats with an offset) the quant sum.
void x8_side(const TypeTraits& at, const uint8_t* q, uint64_t act_row, int64_t nb, int64_t t0,
             int64_t t1, bool want_sum, MatmulScratch& sc) {
  if (&at == type_traits(GgmlType::Q8_K)) {  // float d; the 8 sub-block sums as 4 int16 pairs
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = q + static_cast<uint64_t>(t) * act_row + static_cast<uint64_t>(b) * at.type_size;
        std::memcpy(&sc.xd[static_cast<size_t>(t * nb + b)], blk, 4);
        int16_t bs[16];
        std::memcpy(bs, blk + 4 + 256, sizeof(bs));
        for (int p = 0; p < 4; ++p) {
          const int32_t lo = bs[4 * p] + bs[4 * p + 1], hi = bs[4 * p + 2] + bs[4 * p + 3];
          sc.xsum[static_cast<size_t>((t * nb + b) * 4 + p)] =
              static_cast<int32_t>((static_cast<uint32_t>(hi) << 16) | (static_cast<uint32_t>(lo) & 0xffffu));
        }
      }
    }
    return;
  }
  const bool q8_1 = &at == type_traits(GgmlType::Q8_1);
  const uint64_t bb = static_cast<uint64_t>(at.type_size), qs = q8_1 ? 4 : 2;
  for (int64_t t = t0; t < t1; ++t) {
    const uint8_t* row = q + static_cast<uint64_t>(t) * act_row;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = row + static_cast<uint64_t>(b) * bb;
      uint16_t h;
      std::memcpy(&h, blk, 2);
      sc.xd[static_cast<size_t>(t * nb + b)] = fp16_to_fp32(h);
      if (q8_1) {
        std::memcpy(&h, blk + 2, 2);
        sc.xs[static_cast<size_t>(t * nb + b)] = fp16_to_fp32(h);
      }
      if (want_sum) {
        int32_t sum = 0;
        for (int e = 0; e < 32; ++e) sum += static_cast<int8_t>(blk[qs + e]);
        sc.xsum[static_cast<size_t>(t * nb + b)] = sum;
      }
    }
  }
}

// Sizes the side arrays for T token rows of nb blocks (sums_per_block quant sums each) and returns
// the view of activations q: blocks of block_bytes, quants at qs_offset in each.
X8Act x8_view(const uint8_t* q, uint64_t act_row, uint64_t block_bytes, uint64_t qs_offset, int64_t nb,
              int64_t T, int64_t sums_per_block, MatmulScratch& sc) {
  const size_t n = static_cast<size_t>(T * nb);
  // Each sized on its own: products of other activation formats share the scratch and need
  // different sizes (Q8_K 4 sums per block, the others 1).
  if (sc.xd.size() < n) sc.xd.resize(n);
  if (sc.xs.size() < n) sc.xs.resize(n);
  const size_t sums = static_cast<size_t>(sums_per_block) * n;
  if (sc.xsum.size() < sums) sc.xsum.resize(sums);
  X8Act a;
  a.q = q;
  a.q_stride = act_row;
  a.block_bytes = block_bytes;
  a.qs_offset = qs_offset;
  a.nb = nb;
  a.d = sc.xd.data();
  a.s = sc.xs.data();
  a.sum = sc.xsum.data();
  static std::atomic<uint64_t> products{0};
  a.gen = ++products;
  return a;
}

// The view of 8-bit activations of format `at` (Q8_0: d then quants; Q8_1: d, s; Q8_K: float d).
X8Act x8_act(const TypeTraits& at, const uint8_t* q, uint64_t act_row, int64_t nb, int64_t T,
             MatmulScratch& sc) {
  return x8_view(q, act_row, static_cast<uint64_t>(at.type_size), &at == type_traits(GgmlType::Q8_0) ? 2 : 4,
                 nb, T, 4, sc);
}

bool has_kernel(const KernelTable& k, const WeightView& W) {
  const uint32_t id = static_cast<uint32_t>(W.type);
  return W.x8 ? k.gemm_x8[id] != nullptr : k.vec_dot[id] != nullptr;
}

bool x8_wants_sum(GgmlType t) {
  return t == GgmlType::Q4_0 || t == GgmlType::Q5_0 || (t == GgmlType::Q8_0 && kernels().x8_q8_sums);
}

// Y[t * rows + r] for an x8 matrix: chunks of 8-row groups handed out dynamically, each chunk's
// weights (about kChunkBytes, L1/L2-sized) passed over by every token tile in turn.
// kern: the product kernel (default: the table's gemm_x8 for W's type).
using X8Kernel = void (*)(int64_t, int64_t, const uint8_t*, const X8Act&, int64_t, int64_t, float*, int64_t);
void run_x8(const WeightView& W, const X8Act& a, int64_t T, float* Y, ThreadPool& pool,
            X8Kernel kern = nullptr) {
  const KernelTable& k = kernels();
  if (!kern) kern = k.gemm_x8[static_cast<uint32_t>(W.type)];
  // Tokens per kernel call: each packed block is unpacked once for all of them (8 in registers
  // measured 3-7% faster than 4; 16 tile rows at the amx level).
  const int64_t tile = k.x8_tokens;
  const int64_t nb = W.cols / type_traits(W.type)->block_size, ng = (W.rows + 7) / 8;
  const uint64_t gs = static_cast<uint64_t>(nb) * quant::x8_block_bytes(W.type);
  const int64_t nt = pool.size();
  // Chunk c: groups bounds[c] .. bounds[c + 1] - 1, whole pairs of groups (the amx kernel takes
  // them in pairs) but for the last.
  std::vector<int64_t> bounds{0};
  if (T <= tile) {
    // One token tile (decode, batched decode): chunks shrink as the matrix is used up, each
    // 1 / (2 nt) of the groups left, so the threads finish within a small chunk of each other.
    // With kChunksPerThread equal chunks the calling thread waited on the other's last one for
    // 6-16 us a product (16 sequences, 2 threads of a shared VM: 6-16% of the step); guided, the
    // 16-sequence step fell from 26.0-27.2 to 24.2-25.6 ms (fastest of 6 rounds, 3 alternations;
    // a divisor of 3 nt or 4 nt, or 24 equal chunks, did no better).
    for (int64_t g = 0; g < ng;) {
      int64_t c = (ng - g + 2 * nt - 1) / (2 * nt);
      c += c & 1;
      g = g + c < ng ? g + c : ng;
      bounds.push_back(g);
    }
  } else {  // weights are reused across token tiles: keep a chunk in cache
    int64_t chunk = (ng + nt * kChunksPerThread - 1) / (nt * kChunksPerThread);
    const int64_t fit = static_cast<int64_t>(kChunkBytes / gs);
    if (fit < chunk) chunk = fit;
    if (chunk < 1) chunk = 1;
    if (chunk > 1) chunk += chunk & 1;
    for (int64_t g = chunk; g < ng; g += chunk) bounds.push_back(g);
    bounds.push_back(ng);
  }
  const int64_t n_chunks = static_cast<int64_t>(bounds.size()) - 1;
  const uint8_t* w = static_cast<const uint8_t*>(W.data);
  pool.run_items(static_cast<int>(n_chunks), [&](int c) {
    const int64_t g0 = bounds[static_cast<size_t>(c)], g1 = bounds[static_cast<size_t>(c) + 1];
    for (int64_t tb = 0; tb < T; tb += tile) {
      const int64_t n = T - tb < tile ? T - tb : tile;
      kern(g1 - g0, W.rows - 8 * g0, w + static_cast<uint64_t>(g0) * gs, a, tb, n, Y + 8 * g0, W.rows);
    }
  });
}

}  // namespace

bool can_pack_x8(const WeightView& W) {
  return !W.x8 && quant::x8_block_bytes(W.type) != 0 && W.cols > 0 &&
         W.cols % type_traits(W.type)->block_size == 0 &&
         kernels().gemm_x8[static_cast<uint32_t>(W.type)] != nullptr;
}

WeightView pack_x8(const WeightView& W, PackedBytes& out) {
  checked_traits(W);
  if (!can_pack_x8(W)) throw InvalidArgumentError("pack_x8: this weight has no x8 packing");
  out.reset(new uint8_t[quant::x8_matrix_bytes(W.type, W.rows, W.cols)]);
  quant::repack_x8(W.type, static_cast<const uint8_t*>(W.data), W.row_stride, W.rows, W.cols, out.get());
  WeightView p = W;
  p.data = out.get();
  p.row_stride = 0;
  p.x8 = true;
  return p;
}

bool pack_x8_stacked(const WeightView* parts, int n, PackedBytes& out, WeightView& packed) {
  if (n <= 0) return false;
  int64_t rows = 0;
  uint64_t bytes = 0;
  for (int i = 0; i < n; ++i) {
    const WeightView& p = parts[i];
    if (!p.data || !can_pack_x8(p) || p.type != parts[0].type || p.cols != parts[0].cols) return false;
    if (i + 1 < n && p.rows % 8 != 0) return false;
    checked_traits(p);
    rows += p.rows;
    bytes += quant::x8_matrix_bytes(p.type, p.rows, p.cols);
  }
  out.reset(new uint8_t[bytes]);
  uint64_t at = 0;
  for (int i = 0; i < n; ++i) {
    const WeightView& p = parts[i];
    quant::repack_x8(p.type, static_cast<const uint8_t*>(p.data), p.row_stride, p.rows, p.cols, out.get() + at);
    at += quant::x8_matrix_bytes(p.type, p.rows, p.cols);
  }
  packed = parts[0];
  packed.data = out.get();
  packed.rows = rows;
  packed.row_stride = 0;
  packed.x8 = true;
  return true;
}

void matmul(const WeightView& W, const float* X, int64_t T, float* Y, ThreadPool& pool,
            MatmulScratch& scratch, const RowsPrep* prep) {
  const TypeTraits& tr = checked_traits(W);
  if (T <= 0 || W.rows == 0) return;
  const KernelTable& k = kernels();
  if (!has_kernel(k, W))
    throw InvalidArgumentError(std::string("matmul: no dot product kernel for ") + tr.name);
  const int64_t cols = W.cols;
  const TypeTraits* at = act_traits(tr, k, cols, "matmul");
  if (!at) {
    if (prep) for_tokens(pool, T, cols, *prep);
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
  if (W.x8) {
    const int64_t nb = cols / tr.block_size;
    const X8Act a = x8_act(*at, q, act_row, nb, T, scratch);
    for_tokens(pool, T, cols, [&](int64_t t0, int64_t t1) {
      if (prep) (*prep)(t0, t1);
      for (int64_t t = t0; t < t1; ++t) quantize(X + t * cols, q + t * act_row, cols);
      x8_side(*at, q, act_row, nb, t0, t1, x8_wants_sum(W.type), scratch);
    });
    run_x8(W, a, T, Y, pool);
    return;
  }
  for_tokens(pool, T, cols, [&](int64_t t0, int64_t t1) {
    if (prep) (*prep)(t0, t1);
    for (int64_t t = t0; t < t1; ++t) quantize(X + t * cols, q + t * act_row, cols);
  });
  run_dots(W, q, act_row, T, Y, pool);
}

namespace {

// matmul_precise for packed Q4_0 ... Q8_0: one product with 16-bit activations (quant_dot.h).
void matmul_q16(const WeightView& W, const float* X, int64_t T, float* Y, ThreadPool& pool,
                MatmulScratch& scratch, const RowsPrep* prep) {
  const KernelTable& k = kernels();
  const int64_t cols = W.cols, nb = cols / 32;
  const uint64_t act_row = static_cast<uint64_t>(nb) * kQ16BlockBytes;
  const uint64_t need = act_row * static_cast<uint64_t>(T);
  if (scratch.qact.size() < need) scratch.qact.resize(need);
  uint8_t* q = scratch.qact.data();
  const X8Act a = x8_view(q, act_row, kQ16BlockBytes, 4, nb, T, 1, scratch);
  float* xd = scratch.xd.data();
  float* xs = scratch.xs.data();
  int32_t* xsum = scratch.xsum.data();
  for_tokens(pool, T, cols, [&](int64_t t0, int64_t t1) {
    if (prep) (*prep)(t0, t1);
    for (int64_t t = t0; t < t1; ++t) {
      uint8_t* row = q + static_cast<uint64_t>(t) * act_row;
      k.quantize_q16(X + t * cols, row, cols);
      for (int64_t b = 0; b < nb; ++b) {  // d, the sum of the quants, and sx = d * float(sum)
        const uint8_t* blk = row + static_cast<uint64_t>(b) * kQ16BlockBytes;
        std::memcpy(xd + t * nb + b, blk, 4);
        int16_t qs[32];
        std::memcpy(qs, blk + 4, sizeof(qs));
        int32_t sum = 0;
        for (int e = 0; e < 32; ++e) sum += qs[e];
        xsum[t * nb + b] = sum;
        xs[t * nb + b] = xd[t * nb + b] * static_cast<float>(sum);
      }
    }
  });
  run_x8(W, a, T, Y, pool, k.gemm_x8_q16[static_cast<uint32_t>(W.type)]);
}

}  // namespace

void matmul_precise(const WeightView& W, const float* X, int64_t T, float* Y, ThreadPool& pool,
                    MatmulScratch& scratch, const RowsPrep* prep) {
  const TypeTraits& tr = checked_traits(W);
  if (T <= 0 || W.rows == 0) return;
  const KernelTable& k = kernels();
  if (W.x8 && k.gemm_x8_q16[static_cast<uint32_t>(W.type)] && k.quantize_q16) {
    matmul_q16(W, X, T, Y, pool, scratch, prep);
    return;
  }
  const TypeTraits* at = act_traits(tr, k, W.cols, "matmul_precise");
  if (!at) {  // float activations: already exact
    matmul(W, X, T, Y, pool, scratch, prep);
    return;
  }
  if (!has_kernel(k, W))
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
    if (prep) (*prep)(t0, t1);
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
  if (W.x8) {
    const int64_t nb = cols / tr.block_size;
    const X8Act a = x8_act(*at, q, act_row, nb, 2 * T, scratch);
    for_tokens(pool, 2 * T, cols, [&](int64_t t0, int64_t t1) {
      x8_side(*at, q, act_row, nb, t0, t1, x8_wants_sum(W.type), scratch);
    });
    run_x8(W, a, 2 * T, p, pool);
  } else {
    run_dots(W, q, act_row, 2 * T, p, pool);
  }
  for_tokens(pool, T, rows, [&](int64_t t0, int64_t t1) {
    for (int64_t i = t0 * rows; i < t1 * rows; ++i) Y[i] = p[i] + p[T * rows + i];
  });
}

void dequantize_row(const WeightView& W, int64_t r, float* out) {
  const TypeTraits& tr = checked_traits(W);
  if (r < 0 || r >= W.rows)
    throw InvalidArgumentError("dequantize_row: row " + std::to_string(r) + " out of range [0, " +
                               std::to_string(W.rows) + ")");
  if (W.x8) {
    quant::dequantize_row_x8(W.type, static_cast<const uint8_t*>(W.data), W.cols, r, out);
    return;
  }
  auto deq = kernels().dequantize_row[static_cast<uint32_t>(W.type)];
  if (!deq) throw InvalidArgumentError(std::string("dequantize_row: no kernel for ") + tr.name);
  deq(static_cast<const uint8_t*>(W.data) + static_cast<uint64_t>(r) * W.row_stride, out, W.cols);
}

}  // namespace llmasos::cpu
