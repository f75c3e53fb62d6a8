// Row-interleaved ("x8") layouts of the legacy 32-element formats, made once at load by repack_x8.
// Eight weight rows share each packed block, so one 256-bit register holds four consecutive
// elements of each of the 8 rows and a 4-byte broadcast of an activation block multiplies all 8
// rows at once: the 8 lanes of an integer sum are 8 distinct outputs (no horizontal reduction,
// and one float scale multiply per 8 outputs instead of one per output).
//
// Common element map: unpacked register k (k < 8), lane r (the row within the group), byte i holds
// element 4k + i of row r. fp16 scales stay fp16 (the same bytes as the source blocks: a packed
// matrix is exactly as large as the file's, plus zero rows up to a multiple of 8).
#pragma once
#include <cstdint>

#include "quant/quant_types.h"

namespace llmasos::quant {

constexpr int kX8Rows = 8;

// 4-bit: chunk j < 4 of qs (32 bytes), byte 4r + i: low nibble = element 4j + i of row r (register
// j), high nibble = element 16 + 4j + i (register j + 4).
struct BlockQ4_0x8 { uint16_t d[8]; uint8_t qs[128]; };              // x = d * (q - 8)
struct BlockQ4_1x8 { uint16_t d[8], m[8]; uint8_t qs[128]; };        // x = d * q + m
// 5-bit: qs as the 4-bit layouts (low 4 bits); qh byte 4r + i, bit k = bit 4 of element 4k + i of
// row r, i.e. of the byte that register k holds at that position.
struct BlockQ5_0x8 { uint16_t d[8]; uint8_t qh[32]; uint8_t qs[128]; };        // x = d * (q - 16)
struct BlockQ5_1x8 { uint16_t d[8], m[8]; uint8_t qh[32]; uint8_t qs[128]; };  // x = d * q + m
// 8-bit: register k is qs[32k .. 32k + 31], byte 4r + i = element 4k + i of row r.
struct BlockQ8_0x8 { uint16_t d[8]; int8_t qs[256]; };               // x = d * q

// Q4_K (256-element super-blocks of 8 sub-blocks j of 32): x = d * sc[j] * q - dmin * m[j].
// sc[8 j + r], the 6-bit scale of sub-block j of row r; m[16 p + 2 r + e], the 6-bit min of
// sub-block 2p + e of row r (pairs of sub-blocks side by side, as one madd takes them). qs: for
// each source qs run k < 4 (sub-blocks 2k, 2k + 1), 8 chunks c of 32 bytes, byte 4r + i of chunk
// c = source qs[32 k + 4 c + i] of row r: its low nibble is element 4c + i of sub-block 2k, its
// high nibble the same element of sub-block 2k + 1.
struct BlockQ4_Kx8 { uint16_t d[8], dmin[8]; uint8_t sc[64]; uint8_t m[64]; uint8_t qs[1024]; };

// Q5_K: as Q4_K, plus qh: chunk c < 8, byte 4r + i, bit j = the 5th bit of element 4c + i of
// sub-block j of row r (exactly the source's qh[4c + i]).
struct BlockQ5_Kx8 { uint16_t d[8], dmin[8]; uint8_t sc[64]; uint8_t m[64]; uint8_t qh[256]; uint8_t qs[1024]; };
// Q6_K (16 sub-blocks j of 16, signed 8-bit scales): x = d * sc[j] * (q - 32), q 6 bits.
// sc[8 j + r]; ql chunk c < 32, byte 4r + i: low nibble = low 4 bits of element 4c + i of row r,
// high nibble those of element 128 + 4c + i; qh chunk c < 16, byte 4r + i, bits 2m, 2m + 1 = the
// top 2 bits of element 64m + 4c + i. Register k (elements 4k .. 4k + 3) thus takes the nibble of
// ql chunk k % 32 and bits 2 (k / 16) of qh chunk k % 16.
struct BlockQ6_Kx8 { uint16_t d[8]; int8_t sc[128]; uint8_t ql[1024]; uint8_t qh[512]; };

static_assert(sizeof(BlockQ4_Kx8) == 32 + 128 + 1024, "x8 layout");
static_assert(sizeof(BlockQ6_Kx8) == 8 * 210, "x8 layout");
static_assert(sizeof(BlockQ5_Kx8) == 32 + 128 + 256 + 1024, "x8 layout");
static_assert(sizeof(BlockQ4_0x8) == 8 * 18 && sizeof(BlockQ4_1x8) == 8 * 20, "x8 layout");
static_assert(sizeof(BlockQ5_0x8) == 8 * 22 && sizeof(BlockQ5_1x8) == 8 * 24, "x8 layout");
static_assert(sizeof(BlockQ8_0x8) == 8 * 34, "x8 layout");

// Bytes of one packed block of 8 rows x one block of `t` (32 elements; 256 for the K-quants), or 0 when
// t has no x8 layout.
uint64_t x8_block_bytes(GgmlType t);

// Bytes of a packed [rows, cols] matrix: ceil(rows / 8) groups of cols / block_size blocks each.
uint64_t x8_matrix_bytes(GgmlType t, int64_t rows, int64_t cols);

// Packs rows [0, rows) of a ggml-layout matrix (rows `row_stride` bytes apart, cols a multiple of
// the block size) into dst (x8_matrix_bytes). Group g (rows 8g .. 8g + 7) is contiguous: its blocks in column
// order. Rows past `rows` in the last group are zero (scales 0: they add +0 and are never stored).
void repack_x8(GgmlType t, const uint8_t* src, uint64_t row_stride, int64_t rows, int64_t cols,
               uint8_t* dst);

// Row r of a packed matrix as float, equal to the source format's reference dequantize.
void dequantize_row_x8(GgmlType t, const uint8_t* packed, int64_t cols, int64_t r, float* out);

}  // namespace llmasos::quant
