// Repacking of Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 matrices into the 8-row interleaved blocks of
// packed_x8.h, and the reverse (one row as float) for embedding lookups of a packed matrix.
#include "quant/packed_x8.h"

#include <cstring>

#include "quant/quant_blocks.h"
#include "quant/quant_kquants.h"

namespace llmasos::quant {

namespace {

bool has_min(GgmlType t) { return t == GgmlType::Q4_1 || t == GgmlType::Q5_1; }
bool has_qh(GgmlType t) { return t == GgmlType::Q5_0 || t == GgmlType::Q5_1; }

// Offsets of the fields inside a packed block: d[8], then m[8] (_1), qh[32] (5-bit), qs.
struct PackedFields {
  uint64_t m = 0, qh = 0, qs = 0;
  explicit PackedFields(GgmlType t) {
    uint64_t o = 16;
    if (has_min(t)) { m = o; o += 16; }
    if (has_qh(t)) { qh = o; o += 32; }
    qs = o;
  }
};

}  // namespace

uint64_t x8_block_bytes(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return sizeof(BlockQ4_0x8);
    case GgmlType::Q4_1: return sizeof(BlockQ4_1x8);
    case GgmlType::Q5_0: return sizeof(BlockQ5_0x8);
    case GgmlType::Q5_1: return sizeof(BlockQ5_1x8);
    case GgmlType::Q8_0: return sizeof(BlockQ8_0x8);
    case GgmlType::Q4_K: return sizeof(BlockQ4_Kx8);
    case GgmlType::Q5_K: return sizeof(BlockQ5_Kx8);
    case GgmlType::Q6_K: return sizeof(BlockQ6_Kx8);
    default: return 0;
  }
}

uint64_t x8_matrix_bytes(GgmlType t, int64_t rows, int64_t cols) {
  const uint64_t groups = static_cast<uint64_t>((rows + kX8Rows - 1) / kX8Rows);
  return groups * static_cast<uint64_t>(cols / type_traits(t)->block_size) * x8_block_bytes(t);
}

// The element map of packed_x8.h makes every 4-byte run of a source block's quants a 4-byte run
// of the packed block: chunk j of a 4-bit qs holds at 4r + i the byte whose low nibble is element
// 4j + i and high nibble element 16 + 4j + i, i.e. source qs[4j + i] itself; Q8_0's register k
// holds source qs[4k .. 4k + 3]. Only the 5th bits are regrouped (bit 4k + i of the source qh
// becomes bit k of byte 4r + i).
namespace {

// Q4_K and Q5_K (B: the packed block; S: the source block, with qh for Q5_K).
template <class B, class S>
void repack_k4_x8(const uint8_t* src, uint64_t row_stride, int64_t rows, int64_t cols, uint8_t* dst) {
  const int64_t nb = cols / kQKK, groups = (rows + kX8Rows - 1) / kX8Rows;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      B& out = reinterpret_cast<B*>(dst)[g * nb + b];
      std::memset(&out, 0, sizeof(out));
      for (int r = 0; r < kX8Rows; ++r) {
        const int64_t row = g * kX8Rows + r;
        if (row >= rows) break;
        const S& s = reinterpret_cast<const S*>(src + static_cast<uint64_t>(row) * row_stride)[b];
        out.d[r] = s.d;
        out.dmin[r] = s.dmin;
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, m;
          get_scale_min_k4(j, s.scales, &sc, &m);
          out.sc[8 * j + r] = sc;
          out.m[16 * (j / 2) + 2 * r + j % 2] = m;
        }
        for (int k = 0; k < 4; ++k)
          for (int c = 0; c < 8; ++c) std::memcpy(out.qs + 256 * k + 32 * c + 4 * r, s.qs + 32 * k + 4 * c, 4);
        if constexpr (sizeof(S) == sizeof(BlockQ5_K))
          for (int c = 0; c < 8; ++c) std::memcpy(out.qh + 32 * c + 4 * r, s.qh + 4 * c, 4);
      }
    }
  }
}

template <class B>
void dequantize_row_k4_x8(const uint8_t* packed, int64_t cols, int64_t r, float* out) {
  const int64_t nb = cols / kQKK;
  const int lane = static_cast<int>(r % kX8Rows);
  const B* grp = reinterpret_cast<const B*>(packed) + (r / kX8Rows) * nb;
  for (int64_t b = 0; b < nb; ++b) {
    const B& x = grp[b];
    const float d = fp16_to_fp32(x.d[lane]), dmin = fp16_to_fp32(x.dmin[lane]);
    for (int j = 0; j < 8; ++j) {  // the reference's expression: (d * sc) * q - (dmin * m)
      const float d1 = d * x.sc[8 * j + lane], m1 = dmin * x.m[16 * (j / 2) + 2 * lane + j % 2];
      for (int e = 0; e < 32; ++e) {
        const uint8_t byte = x.qs[256 * (j / 2) + 32 * (e / 4) + 4 * lane + e % 4];
        int q = j % 2 ? byte >> 4 : byte & 0x0f;
        if constexpr (sizeof(B) == sizeof(BlockQ5_Kx8))
          q += (x.qh[32 * (e / 4) + 4 * lane + e % 4] >> j) & 1 ? 16 : 0;
        out[b * kQKK + 32 * j + e] = d1 * q - m1;
      }
    }
  }
}

// Element e of a Q6_K block: its 6-bit unsigned quant (see dequant_q6_k's index arithmetic).
int q6_k_quant(const BlockQ6_K& s, int e) {
  const int h = e / 128, quarter = (e % 128) / 32, l = e % 32;
  const uint8_t lo = s.ql[64 * h + l + (quarter & 1 ? 32 : 0)];
  const int nib = quarter < 2 ? lo & 0x0f : lo >> 4;
  return nib | (((s.qh[32 * h + l] >> (2 * quarter)) & 3) << 4);
}

void repack_q6_k_x8(const uint8_t* src, uint64_t row_stride, int64_t rows, int64_t cols, uint8_t* dst) {
  const int64_t nb = cols / kQKK, groups = (rows + kX8Rows - 1) / kX8Rows;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      BlockQ6_Kx8& out = reinterpret_cast<BlockQ6_Kx8*>(dst)[g * nb + b];
      std::memset(&out, 0, sizeof(out));
      for (int r = 0; r < kX8Rows; ++r) {
        const int64_t row = g * kX8Rows + r;
        if (row >= rows) break;
        const BlockQ6_K& s = reinterpret_cast<const BlockQ6_K*>(src + static_cast<uint64_t>(row) * row_stride)[b];
        out.d[r] = s.d;
        for (int j = 0; j < 16; ++j) out.sc[8 * j + r] = s.scales[j];
        for (int e = 0; e < kQKK; ++e) {
          const int q = q6_k_quant(s, e), k = e / 4, pos = 4 * r + e % 4;
          out.ql[32 * (k % 32) + pos] |= static_cast<uint8_t>((q & 0x0f) << (k < 32 ? 0 : 4));
          out.qh[32 * (k % 16) + pos] |= static_cast<uint8_t>((q >> 4) << (2 * (k / 16)));
        }
      }
    }
  }
}

void dequantize_row_q6_k_x8(const uint8_t* packed, int64_t cols, int64_t r, float* out) {
  const int64_t nb = cols / kQKK;
  const int lane = static_cast<int>(r % kX8Rows);
  const BlockQ6_Kx8* grp = reinterpret_cast<const BlockQ6_Kx8*>(packed) + (r / kX8Rows) * nb;
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ6_Kx8& x = grp[b];
    const float d = fp16_to_fp32(x.d[lane]);
    for (int e = 0; e < kQKK; ++e) {
      const int k = e / 4, pos = 4 * lane + e % 4;
      const int lo = (x.ql[32 * (k % 32) + pos] >> (k < 32 ? 0 : 4)) & 0x0f;
      const int hi = (x.qh[32 * (k % 16) + pos] >> (2 * (k / 16))) & 3;
      out[b * kQKK + e] = d * x.sc[8 * (e / 16) + lane] * ((lo | (hi << 4)) - 32);  // the reference's
    }
  }
}

}  // namespace

void repack_x8(GgmlType t, const uint8_t* src, uint64_t row_stride, int64_t rows, int64_t cols,
               uint8_t* dst) {
  if (t == GgmlType::Q4_K) return repack_k4_x8<BlockQ4_Kx8, BlockQ4_K>(src, row_stride, rows, cols, dst);
  if (t == GgmlType::Q5_K) return repack_k4_x8<BlockQ5_Kx8, BlockQ5_K>(src, row_stride, rows, cols, dst);
  if (t == GgmlType::Q6_K) return repack_q6_k_x8(src, row_stride, rows, cols, dst);
  const uint64_t bb = x8_block_bytes(t);
  const uint64_t sb = static_cast<uint64_t>(type_traits(t)->type_size);
  const int64_t nb = cols / kQK, groups = (rows + kX8Rows - 1) / kX8Rows;
  const PackedFields f(t);
  const bool q8 = t == GgmlType::Q8_0, min = has_min(t), qh = has_qh(t);
  const uint64_t src_qs = 2 + (min ? 2 : 0) + (qh ? 4 : 0), src_qh = min ? 4 : 2;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* out = dst + (static_cast<uint64_t>(g * nb + b)) * bb;
      std::memset(out, 0, bb);
      for (int r = 0; r < kX8Rows; ++r) {
        const int64_t row = g * kX8Rows + r;
        if (row >= rows) break;
        const uint8_t* s = src + static_cast<uint64_t>(row) * row_stride + static_cast<uint64_t>(b) * sb;
        std::memcpy(out + 2 * r, s, 2);                       // d
        if (min) std::memcpy(out + f.m + 2 * r, s + 2, 2);    // m
        const int runs = q8 ? 8 : 4;
        for (int k = 0; k < runs; ++k) std::memcpy(out + f.qs + 32 * k + 4 * r, s + src_qs + 4 * k, 4);
        if (qh) {
          uint32_t h;
          std::memcpy(&h, s + src_qh, 4);
          for (int i = 0; i < 4; ++i) {
            uint8_t v = 0;
            for (int k = 0; k < 8; ++k) v = static_cast<uint8_t>(v | (((h >> (4 * k + i)) & 1u) << k));
            out[f.qh + 4 * r + i] = v;
          }
        }
      }
    }
  }
}

void dequantize_row_x8(GgmlType t, const uint8_t* packed, int64_t cols, int64_t r, float* out) {
  if (t == GgmlType::Q4_K) return dequantize_row_k4_x8<BlockQ4_Kx8>(packed, cols, r, out);
  if (t == GgmlType::Q5_K) return dequantize_row_k4_x8<BlockQ5_Kx8>(packed, cols, r, out);
  if (t == GgmlType::Q6_K) return dequantize_row_q6_k_x8(packed, cols, r, out);
  const uint64_t bb = x8_block_bytes(t);
  const int64_t nb = cols / kQK;
  const int lane = static_cast<int>(r % kX8Rows);
  const PackedFields f(t);
  const uint8_t* grp = packed + static_cast<uint64_t>(r / kX8Rows) * static_cast<uint64_t>(nb) * bb;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = grp + static_cast<uint64_t>(b) * bb;
    uint16_t dh, mh = 0;
    std::memcpy(&dh, blk + 2 * lane, 2);
    if (has_min(t)) std::memcpy(&mh, blk + f.m + 2 * lane, 2);
    const float d = fp16_to_fp32(dh), m = fp16_to_fp32(mh);
    for (int k = 0; k < 8; ++k) {
      for (int i = 0; i < 4; ++i) {
        const int pos = 4 * lane + i;
        float v;
        if (t == GgmlType::Q8_0) {
          v = d * static_cast<float>(static_cast<int8_t>(blk[f.qs + 32 * k + pos]));
        } else {
          int q = (blk[f.qs + 32 * (k % 4) + pos] >> (k < 4 ? 0 : 4)) & 0x0f;
          if (has_qh(t)) q |= ((blk[f.qh + pos] >> k) & 1) << 4;
          // The reference dequantizers' expressions: d * (q - off) or d * q + m.
          if (t == GgmlType::Q4_0) v = d * static_cast<float>(q - 8);
          else if (t == GgmlType::Q5_0) v = d * static_cast<float>(q - 16);
          else v = d * static_cast<float>(q) + m;
        }
        out[b * kQK + 4 * k + i] = v;
      }
    }
  }
}

}  // namespace llmasos::quant
