// The attention driver (compiled once, generic flags): groups consecutive positions of one
// sequence into tiles that share each loaded KV block, hands (tile, KV head) jobs to the pool
// dynamically, and runs the active level's block kernels (attn_qk16, softmax, attn_pv16).
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "kernels/cpu/kernel_table.h"

namespace llmasos::cpu {

namespace {

constexpr int64_t kTileTokens = 8;  // query tokens sharing each KV block load
constexpr int64_t kQkBlocks = 4;    // key blocks per attn_qk16 call (independent chains for few rows)
// KV blocks asked for ahead of use. A sequence's blocks are scattered pages of 2 KB per head (F16,
// head_dim 64), too short for the hardware prefetchers to ramp up, and one block's product takes
// about as long as a memory access. Decode of the default model on 2 Zen 3 cores, interleaved with
// the code before, in a slow phase of the host: one sequence at a 1500-token context 9.6-11.0 ->
// 7.8-8.3 ms per step (1 ahead: 8.1-9.4, 2 ahead: 8.0-8.8); 16 sequences at 400 tokens 33.0-36.8
// -> 30.1-34.7 ms (three of four runs 30.1-31.0). In a calm phase, 1 ahead: 7.61 -> 6.32-6.40 and
// 31.1 -> 28.6 ms.
constexpr int64_t kAhead = 3;

// Asks for the n bytes at p (one KV block of one head) to be brought into cache ahead of use; a
// hint only (no fault on any address), and nothing where the compiler has no prefetch builtin.
inline void prefetch(const void* p, int64_t n) {
#if defined(__GNUC__) || defined(__clang__)
  for (int64_t i = 0; i < n; i += 64) __builtin_prefetch(static_cast<const char*>(p) + i);
#else
  (void)p;
  (void)n;
#endif
}

struct Tile {
  int64_t t0, n;  // tokens t0 .. t0 + n - 1: consecutive positions of one sequence
};

// A Q8_0 cache's quants of one n-element group and their scale (attention.h): d = max |x| / 127,
// q = x / d rounded to nearest even, in [-127, 127]; NaN elements store 0. Quant i goes to
// q[i * q_stride] (keys are stored transposed).
float quantize_kv_group(const float* x, int64_t n, int8_t* q, int64_t q_stride) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));  // NaN never wins
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] * id;
    // |v| < 2^22: adding and taking away 1.5 * 2^23 rounds it to an integer, to nearest even (the
    // default rounding mode), inline at this file's baseline flags, where std::nearbyint is a call.
    constexpr float kRound = 12582912.0f;
    q[i * q_stride] = static_cast<int8_t>(v >= 127.0f ? 127.0f : v <= -127.0f ? -127.0f : v == v ? (v + kRound) - kRound : 0.0f);
  }
  return d;
}

}  // namespace

bool kv_type_supported(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || t == GgmlType::Q8_0;
}

size_t kv_type_size(GgmlType t) { return t == GgmlType::F32 ? 4 : t == GgmlType::Q8_0 ? 1 : 2; }

void kv_store_position(const KvPagesView& kv, const AttentionShape& s, int64_t page, int64_t slot,
                       const float* k, const float* v) {
  const int64_t d = s.head_dim, kv_dim = s.n_head_kv * d;
  const int64_t base = page * kv.page_stride;
  // K[h][c][slot] (a 16-element stride per dimension), V[h][slot][c] (a head's row contiguous).
  auto k_at = [&](int64_t e) { return base + e * kKvBlockTokens + slot; };  // e = h * d + c
  auto v_at = [&](int64_t h) { return base + (h * kKvBlockTokens + slot) * d; };
  if (kv.type == GgmlType::F32) {
    float* kd = static_cast<float*>(kv.k);
    for (int64_t e = 0; e < kv_dim; ++e) kd[k_at(e)] = k[e];
    for (int64_t h = 0; h < s.n_head_kv; ++h) std::memcpy(static_cast<float*>(kv.v) + v_at(h), v + h * d, sizeof(float) * d);
  } else if (kv.type == GgmlType::F16) {
    // The level's vectorized conversion: values straight into place, keys through a buffer.
    const auto to_f16 = kernels().f32_to_f16;
    uint16_t* kd = static_cast<uint16_t*>(kv.k);
    uint16_t buf[256];
    for (int64_t e0 = 0; e0 < kv_dim; e0 += 256) {
      const int64_t n = std::min<int64_t>(256, kv_dim - e0);
      to_f16(k + e0, buf, n);
      for (int64_t i = 0; i < n; ++i) kd[k_at(e0 + i)] = buf[i];
    }
    for (int64_t h = 0; h < s.n_head_kv; ++h) to_f16(v + h * d, static_cast<uint16_t*>(kv.v) + v_at(h), d);
  } else if (kv.type == GgmlType::Q8_0) {
    int8_t* kd = static_cast<int8_t*>(kv.k);
    int8_t* vd = static_cast<int8_t*>(kv.v);
    float* ks = const_cast<float*>(kv_q8_scales(kd + base, s));
    float* vs = const_cast<float*>(kv_q8_scales(vd + base, s));
    const int64_t g = kv_q8_group(d), ng = d / g;
    for (int64_t h = 0; h < s.n_head_kv; ++h)
      for (int64_t i = 0; i < ng; ++i) {  // scales d[h][group][slot]
        const int64_t at = (h * ng + i) * kKvBlockTokens + slot;
        ks[at] = quantize_kv_group(k + h * d + i * g, g, kd + k_at(h * d + i * g), kKvBlockTokens);
        vs[at] = quantize_kv_group(v + h * d + i * g, g, vd + v_at(h) + i * g, 1);
      }
  } else {
    uint16_t* kd = static_cast<uint16_t*>(kv.k);
    uint16_t* vd = static_cast<uint16_t*>(kv.v);
    for (int64_t e = 0; e < kv_dim; ++e) kd[k_at(e)] = fp32_to_bf16(k[e]);
    for (int64_t h = 0; h < s.n_head_kv; ++h)
      for (int64_t c = 0; c < d; ++c) vd[v_at(h) + c] = fp32_to_bf16(v[h * d + c]);
  }
}

void attention_paged(const float* q, float* out, int64_t T, const int64_t* pos,
                     const int32_t* const* pages, const KvPagesView& kv, const AttentionShape& s,
                     ThreadPool& pool, std::vector<float>& scratch, int64_t q_stride) {
  const KernelTable& kt = kernels();
  const int64_t d = s.head_dim, group = s.n_head / s.n_head_kv;
  if (q_stride == 0) q_stride = s.n_head * d;
  const float scale = s.scale > 0.0f ? s.scale : 1.0f / std::sqrt(static_cast<float>(d));
  // First key a token at position p sees.
  auto first_key = [&](int64_t p) { return s.window > 0 && p >= s.window ? p + 1 - s.window : int64_t(0); };
  const size_t esz = kv_type_size(kv.type);
  // The block kernels read the cache as stored (F16 / BF16 / Q8_0's int8 widened exactly in
  // registers; Q8_0's kernels also take the blocks' scales).
  const bool q8 = kv.type == GgmlType::Q8_0;
  const bool half = kv.type == GgmlType::F16 || kv.type == GgmlType::BF16;
  const auto qk_half = kv.type == GgmlType::BF16 ? kt.attn_qk16_bf16 : kt.attn_qk16_f16;
  const auto pv_half = kv.type == GgmlType::BF16 ? kt.attn_pv16_bf16 : kt.attn_pv16_f16;

  // Tiles: runs of up to kTileTokens consecutive positions of one sequence.
  std::vector<Tile> tiles;
  int64_t max_n = 0;
  for (int64_t t = 0; t < T; ++t) {
    max_n = std::max(max_n, pos[t] + 1);
    if (!tiles.empty()) {
      Tile& last = tiles.back();
      const int64_t prev = last.t0 + last.n - 1;
      if (last.n < kTileTokens && pages[prev] == pages[t] && pos[t] == pos[prev] + 1) {
        ++last.n;
        continue;
      }
    }
    tiles.push_back({t, 1});
  }
  // Jobs: (tile, KV head) with all `group` query heads as rows; with too few of those to keep
  // every thread busy (decode of a few sequences), one query head per job instead.
  const int64_t n_tiles = static_cast<int64_t>(tiles.size());
  const int64_t heads_per_job = n_tiles * s.n_head_kv >= pool.size() ? group : 1;
  const int64_t jobs_per_tile = s.n_head / heads_per_job;
  const int64_t n_jobs = n_tiles * jobs_per_tile;

  // Per-thread scratch: q rows, out rows, scores [rows][n_pad].
  const int64_t max_rows = kTileTokens * heads_per_job;
  const int64_t n_pad = (max_n + kKvBlockTokens - 1) / kKvBlockTokens * kKvBlockTokens;
  const int64_t per_thread = 2 * max_rows * d + max_rows * n_pad;
  const size_t need = static_cast<size_t>(pool.size()) * static_cast<size_t>(per_thread);
  if (scratch.size() < need) scratch.resize(need);

  std::atomic<int64_t> next{0};
  pool.run([&](int ti, int) {
    float* qs = scratch.data() + static_cast<size_t>(ti) * static_cast<size_t>(per_thread);
    float* os = qs + max_rows * d;
    float* sc = os + max_rows * d;
    std::vector<int64_t> n_row(static_cast<size_t>(max_rows)), m_row(static_cast<size_t>(max_rows)),
        lo_row(static_cast<size_t>(max_rows));
    for (int64_t job; (job = next.fetch_add(1, std::memory_order_relaxed)) < n_jobs;) {
      const Tile& tile = tiles[static_cast<size_t>(job / jobs_per_tile)];
      const int64_t h0 = (job % jobs_per_tile) * heads_per_job, hk = h0 / group;
      const int64_t rows = tile.n * heads_per_job;
      // Gather the rows: row = token-in-tile * heads_per_job + head-in-job.
      for (int64_t i = 0; i < tile.n; ++i)
        for (int64_t g = 0; g < heads_per_job; ++g) {
          const int64_t r = i * heads_per_job + g;
          std::memcpy(qs + r * d, q + (tile.t0 + i) * q_stride + (h0 + g) * d, sizeof(float) * d);
          n_row[static_cast<size_t>(r)] = pos[tile.t0 + i] + 1;
          lo_row[static_cast<size_t>(r)] = first_key(pos[tile.t0 + i]);
        }
      const int64_t n_max = pos[tile.t0 + tile.n - 1] + 1;
      const int64_t n_blocks = (n_max + kKvBlockTokens - 1) / kKvBlockTokens;
      // Blocks before b0 hold no key any row of the tile sees (its first token has the lowest lo).
      const int64_t b0 = first_key(pos[tile.t0]) / kKvBlockTokens;
      const int32_t* table = pages[tile.t0];
      const int64_t head_off = hk * d * kKvBlockTokens, block_bytes = d * kKvBlockTokens * static_cast<int64_t>(esz);
      // Block b of this head in the K or V cache (same page layout offset in both).
      auto block = [&](const void* cache, int64_t b) {
        return static_cast<const uint8_t*>(cache) + (table[b] * kv.page_stride + head_off) * esz;
      };
      auto k_block = [&](int64_t b) { return block(kv.k, b); };
      auto v_block = [&](int64_t b) { return block(kv.v, b); };
      // Q8_0: this head's scales of block b in the K or V cache, [group][16].
      const int64_t q8_head = q8 ? d / kv_q8_group(d) * kKvBlockTokens : 0;
      auto q8_scales = [&](const void* cache, int64_t b) {
        return kv_q8_scales(static_cast<const uint8_t*>(cache) + table[b] * kv.page_stride, s) + hk * q8_head;
      };
      // Block i of the walk K b0 .. n_blocks - 1, then V b0 .. n_blocks - 1 (i counted from b0):
      // each step asks for the one kAhead further on (with its scales' line for Q8_0).
      const int64_t n_walk = n_blocks - b0;
      auto walk = [&](int64_t i) { return i < n_walk ? k_block(b0 + i) : v_block(b0 + i - n_walk); };
      auto ask = [&](int64_t i) {
        prefetch(walk(i), block_bytes);
        if (q8) prefetch(i < n_walk ? q8_scales(kv.k, b0 + i) : q8_scales(kv.v, b0 + i - n_walk), 4 * q8_head);
      };
      int64_t ahead = 1;  // the next block of the walk to ask for
      for (; ahead < kAhead && ahead < 2 * n_walk; ++ahead) ask(ahead);
      for (int64_t b = b0; b < n_blocks; b += kQkBlocks) {
        const int64_t nb = std::min(kQkBlocks, n_blocks - b);
        for (; ahead < b - b0 + nb + kAhead && ahead < 2 * n_walk; ++ahead) ask(ahead);
        const uint16_t* kh[kQkBlocks];
        const float* kf[kQkBlocks];
        const int8_t* ki[kQkBlocks];
        const float* ks[kQkBlocks];
        for (int64_t i = 0; i < nb; ++i) {
          kh[i] = reinterpret_cast<const uint16_t*>(k_block(b + i));
          kf[i] = reinterpret_cast<const float*>(k_block(b + i));
          ki[i] = reinterpret_cast<const int8_t*>(k_block(b + i));
          if (q8) ks[i] = q8_scales(kv.k, b + i);
        }
        if (q8) {
          kt.attn_qk16_i8(qs, d, rows, ki, ks, nb, d, scale, sc + b * kKvBlockTokens, n_pad);
        } else if (half) {
          qk_half(qs, d, rows, kh, nb, d, scale, sc + b * kKvBlockTokens, n_pad);
        } else {
          kt.attn_qk16(qs, d, rows, kf, nb, d, scale, sc + b * kKvBlockTokens, n_pad);
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        // The softmax over exactly the row's keys lo..pos, then p = +0 for the keys before lo in
        // lo's block (the value pass starts each row at its own block).
        float* row = sc + r * n_pad;
        const int64_t lo = lo_row[static_cast<size_t>(r)];
        if (s.softcap > 0.0f) kt.softcap(row + lo, n_row[static_cast<size_t>(r)] - lo, s.softcap);
        kt.softmax(row + lo, n_row[static_cast<size_t>(r)] - lo);
        for (int64_t j = lo / kKvBlockTokens * kKvBlockTokens; j < lo; ++j) row[j] = 0.0f;
      }
      std::memset(os, 0, sizeof(float) * static_cast<size_t>(rows * d));
      for (int64_t b = b0; b < n_blocks; ++b) {
        if (b + kAhead < n_blocks) {
          prefetch(v_block(b + kAhead), block_bytes);
          if (q8) prefetch(q8_scales(kv.v, b + kAhead), 4 * q8_head);
        }
        const uint8_t* vraw = v_block(b);
        for (int64_t r = 0; r < rows; ++r)  // none of a block before the row's first key's
          m_row[static_cast<size_t>(r)] =
              b < lo_row[static_cast<size_t>(r)] / kKvBlockTokens
                  ? 0
                  : std::clamp<int64_t>(n_row[static_cast<size_t>(r)] - b * kKvBlockTokens, 0, kKvBlockTokens);
        if (q8)
          kt.attn_pv16_i8(sc + b * kKvBlockTokens, n_pad, m_row.data(), rows, reinterpret_cast<const int8_t*>(vraw),
                          q8_scales(kv.v, b), d, os, d);
        else if (half)
          pv_half(sc + b * kKvBlockTokens, n_pad, m_row.data(), rows, reinterpret_cast<const uint16_t*>(vraw), d, os, d);
        else
          kt.attn_pv16(sc + b * kKvBlockTokens, n_pad, m_row.data(), rows, reinterpret_cast<const float*>(vraw), d, os, d);
      }
      for (int64_t i = 0; i < tile.n; ++i)
        for (int64_t g = 0; g < heads_per_job; ++g)
          std::memcpy(out + ((tile.t0 + i) * s.n_head + h0 + g) * d,
                      os + (i * heads_per_job + g) * d, sizeof(float) * d);
    }
  });
}

}  // namespace llmasos::cpu
