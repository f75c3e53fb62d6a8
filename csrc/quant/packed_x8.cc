// Repacking of Q4_0 ... Q8_0 and Q4_K / Q5_K / Q6_K matrices into the 8-row interleaved blocks of
// packed_x8.h, and the reverse (one row as float) for embedding lookups of a packed matrix.
#include "quant/packed_x8.h"

#include <cstring>

#include "quant/quant_blocks.h"
#include "quant/quant_kquants.h"

namespace llmasos::quant {

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

namespace {

// Packed block and source block of each format, and what sets the legacy ones apart.
template <GgmlType T> struct X8Types;
template <> struct X8Types<GgmlType::Q4_0> { using Packed = BlockQ4_0x8; using Source = BlockQ4_0; };
template <> struct X8Types<GgmlType::Q4_1> { using Packed = BlockQ4_1x8; using Source = BlockQ4_1; };
template <> struct X8Types<GgmlType::Q5_0> { using Packed = BlockQ5_0x8; using Source = BlockQ5_0; };
template <> struct X8Types<GgmlType::Q5_1> { using Packed = BlockQ5_1x8; using Source = BlockQ5_1; };
template <> struct X8Types<GgmlType::Q8_0> { using Packed = BlockQ8_0x8; using Source = BlockQ8_0; };
template <> struct X8Types<GgmlType::Q4_K> { using Packed = BlockQ4_Kx8; using Source = BlockQ4_K; };
template <> struct X8Types<GgmlType::Q5_K> { using Packed = BlockQ5_Kx8; using Source = BlockQ5_K; };
template <> struct X8Types<GgmlType::Q6_K> { using Packed = BlockQ6_Kx8; using Source = BlockQ6_K; };
template <GgmlType T> constexpr bool kHasMin = T == GgmlType::Q4_1 || T == GgmlType::Q5_1;
template <GgmlType T> constexpr bool kHasQh = T == GgmlType::Q5_0 || T == GgmlType::Q5_1 || T == GgmlType::Q5_K;

// The walk every format shares: each packed block (zeroed first, so rows past `rows` stay zero)
// and each of its rows r that exists: pack(packed block, row r's source block, r).
template <GgmlType T, class Fn>
void pack_rows(const uint8_t* src, uint64_t row_stride, int64_t rows, int64_t cols, uint8_t* dst,
               const Fn& pack) {
  using B = typename X8Types<T>::Packed;
  using S = typename X8Types<T>::Source;
  const int64_t nb = cols / type_traits(T)->block_size, groups = (rows + kX8Rows - 1) / kX8Rows;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      B& out = reinterpret_cast<B*>(dst)[g * nb + b];
      std::memset(&out, 0, sizeof(out));
      for (int r = 0; r < kX8Rows && g * kX8Rows + r < rows; ++r)
        pack(out, reinterpret_cast<const S*>(src + static_cast<uint64_t>(g * kX8Rows + r) * row_stride)[b], r);
    }
  }
}

// The packed blocks of row r, in column order, and its lane in them.
template <GgmlType T>
const typename X8Types<T>::Packed* row_blocks(const uint8_t* packed, int64_t cols, int64_t r) {
  const int64_t nb = cols / type_traits(T)->block_size;
  return reinterpret_cast<const typename X8Types<T>::Packed*>(packed) + (r / kX8Rows) * nb;
}

// The element map of packed_x8.h makes every 4-byte run of a source block's quants a 4-byte run
// of the packed block: chunk j of a 4-bit qs holds at 4r + i the byte whose low nibble is element
// 4j + i and high nibble element 16 + 4j + i, i.e. source qs[4j + i] itself; Q8_0's register k
// holds source qs[4k .. 4k + 3]. Only the 5th bits are regrouped (bit 4k + i of the source qh
// becomes bit k of byte 4r + i).
template <GgmlType T>
void repack_legacy(const uint8_t* src, uint64_t row_stride, int64_t rows, int64_t cols, uint8_t* dst) {
  pack_rows<T>(src, row_stride, rows, cols, dst, [](auto& out, const auto& s, int r) {
    out.d[r] = s.d;
    if constexpr (kHasMin<T>) out.m[r] = s.m;
    constexpr int kRuns = T == GgmlType::Q8_0 ? 8 : 4;
    for (int k = 0; k < kRuns; ++k) std::memcpy(out.qs + 32 * k + 4 * r, s.qs + 4 * k, 4);
    if constexpr (kHasQh<T>) {
      uint32_t h;
      std::memcpy(&h, s.qh, 4);
      for (int i = 0; i < 4; ++i) {
        uint8_t v = 0;
        for (int k = 0; k < 8; ++k) v = static_cast<uint8_t>(v | (((h >> (4 * k + i)) & 1u) << k));
        out.qh[4 * r + i] = v;
      }
    }
  });
}

template <GgmlType T>
void dequantize_row_legacy(const uint8_t* packed, int64_t cols, int64_t r, float* out) {
  const auto* blocks = row_blocks<T>(packed, cols, r);
  const int lane = static_cast<int>(r % kX8Rows);
  for (int64_t b = 0; b < cols / kQK; ++b) {
    const auto& x = blocks[b];
    const float d = fp16_to_fp32(x.d[lane]);
    float m = 0.0f;
    if constexpr (kHasMin<T>) m = fp16_to_fp32(x.m[lane]);
    for (int k = 0; k < 8; ++k) {
      for (int i = 0; i < 4; ++i) {
        const int pos = 4 * lane + i;
        float v;
        if constexpr (T == GgmlType::Q8_0) {
          v = d * static_cast<float>(x.qs[32 * k + pos]);
        } else {
          int q = (x.qs[32 * (k % 4) + pos] >> (k < 4 ? 0 : 4)) & 0x0f;
          if constexpr (kHasQh<T>) q |= ((x.qh[pos] >> k) & 1) << 4;
          // The reference dequantizers' expressions: d * (q - off) or d * q + m.
          if constexpr (T == GgmlType::Q4_0) v = d * static_cast<float>(q - 8);
          else if constexpr (T == GgmlType::Q5_0) v = d * static_cast<float>(q - 16);
          else v = d * static_cast<float>(q) + m;
        }
        out[b * kQK + 4 * k + i] = v;
      }
    }
  }
}

// Q4_K and Q5_K: scales and mins unpacked to bytes, quants (and Q5_K's qh) as 4-byte runs.
template <GgmlType T>
void repack_k4(const uint8_t* src, uint64_t row_stride, int64_t rows, int64_t cols, uint8_t* dst) {
  pack_rows<T>(src, row_stride, rows, cols, dst, [](auto& out, const auto& s, int r) {
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
    if constexpr (kHasQh<T>)
      for (int c = 0; c < 8; ++c) std::memcpy(out.qh + 32 * c + 4 * r, s.qh + 4 * c, 4);
  });
}

template <GgmlType T>
void dequantize_row_k4(const uint8_t* packed, int64_t cols, int64_t r, float* out) {
  const auto* blocks = row_blocks<T>(packed, cols, r);
  const int lane = static_cast<int>(r % kX8Rows);
  for (int64_t b = 0; b < cols / kQKK; ++b) {
    const auto& x = blocks[b];
    const float d = fp16_to_fp32(x.d[lane]), dmin = fp16_to_fp32(x.dmin[lane]);
    for (int j = 0; j < 8; ++j) {  // the reference's expression: (d * sc) * q - (dmin * m)
      const float d1 = d * x.sc[8 * j + lane], m1 = dmin * x.m[16 * (j / 2) + 2 * lane + j % 2];
      for (int e = 0; e < 32; ++e) {
        const uint8_t byte = x.qs[256 * (j / 2) + 32 * (e / 4) + 4 * lane + e % 4];
        int q = j % 2 ? byte >> 4 : byte & 0x0f;
        if constexpr (kHasQh<T>) q += (x.qh[32 * (e / 4) + 4 * lane + e % 4] >> j) & 1 ? 16 : 0;
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

void repack_q6_k(const uint8_t* src, uint64_t row_stride, int64_t rows, int64_t cols, uint8_t* dst) {
  pack_rows<GgmlType::Q6_K>(src, row_stride, rows, cols, dst, [](BlockQ6_Kx8& out, const BlockQ6_K& s, int r) {
    out.d[r] = s.d;
    for (int j = 0; j < 16; ++j) out.sc[8 * j + r] = s.scales[j];
    for (int e = 0; e < kQKK; ++e) {
      const int q = q6_k_quant(s, e), k = e / 4, pos = 4 * r + e % 4;
      out.ql[32 * (k % 32) + pos] |= static_cast<uint8_t>((q & 0x0f) << (k < 32 ? 0 : 4));
      out.qh[32 * (k % 16) + pos] |= static_cast<uint8_t>((q >> 4) << (2 * (k / 16)));
    }
  });
}

void dequantize_row_q6_k(const uint8_t* packed, int64_t cols, int64_t r, float* out) {
  const BlockQ6_Kx8* blocks = row_blocks<GgmlType::Q6_K>(packed, cols, r);
  const int lane = static_cast<int>(r % kX8Rows);
  for (int64_t b = 0; b < cols / kQKK; ++b) {
    const BlockQ6_Kx8& x = blocks[b];
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
  switch (t) {
    case GgmlType::Q4_0: return repack_legacy<GgmlType::Q4_0>(src, row_stride, rows, cols, dst);
    case GgmlType::Q4_1: return repack_legacy<GgmlType::Q4_1>(src, row_stride, rows, cols, dst);
    case GgmlType::Q5_0: return repack_legacy<GgmlType::Q5_0>(src, row_stride, rows, cols, dst);
    case GgmlType::Q5_1: return repack_legacy<GgmlType::Q5_1>(src, row_stride, rows, cols, dst);
    case GgmlType::Q8_0: return repack_legacy<GgmlType::Q8_0>(src, row_stride, rows, cols, dst);
    case GgmlType::Q4_K: return repack_k4<GgmlType::Q4_K>(src, row_stride, rows, cols, dst);
    case GgmlType::Q5_K: return repack_k4<GgmlType::Q5_K>(src, row_stride, rows, cols, dst);
    case GgmlType::Q6_K: return repack_q6_k(src, row_stride, rows, cols, dst);
    default: return;  // callers check x8_block_bytes first
  }
}

void dequantize_row_x8(GgmlType t, const uint8_t* packed, int64_t cols, int64_t r, float* out) {
  switch (t) {
    case GgmlType::Q4_0: return dequantize_row_legacy<GgmlType::Q4_0>(packed, cols, r, out);
    case GgmlType::Q4_1: return dequantize_row_legacy<GgmlType::Q4_1>(packed, cols, r, out);
    case GgmlType::Q5_0: return dequantize_row_legacy<GgmlType::Q5_0>(packed, cols, r, out);
    case GgmlType::Q5_1: return dequantize_row_legacy<GgmlType::Q5_1>(packed, cols, r, out);
    case GgmlType::Q8_0: return dequantize_row_legacy<GgmlType::Q8_0>(packed, cols, r, out);
    case GgmlType::Q4_K: return dequantize_row_k4<GgmlType::Q4_K>(packed, cols, r, out);
    case GgmlType::Q5_K: return dequantize_row_k4<GgmlType::Q5_K>(packed, cols, r, out);
    case GgmlType::Q6_K: return dequantize_row_q6_k(packed, cols, r, out);
    default: return;  // callers check x8_block_bytes first
  }
}

}  // namespace llmasos::quant
