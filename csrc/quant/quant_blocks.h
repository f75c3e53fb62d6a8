// Byte layouts of ggml's quantized blocks (as stored in GGUF files), shared by the reference
// routines (quant_types.cc) and the per-ISA kernels. Plain structs only: no code lives here.
#pragma once
#include <cstdint>

namespace llmasos::quant {

constexpr int kQK = 32;    // elements per block of the legacy formats (Q4_0 ... Q8_1)
constexpr int kQKK = 256;  // elements per super-block of the K-quants

// fp16 fields are raw IEEE half bits. Element j < 16 of a 4-bit block is the low nibble of qs[j],
// element j + 16 the high nibble; the 5th bit of element j is bit j of qh (little endian).
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };                  // x = d * (q - 8)
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[16]; };               // x = d * q + m
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };   // x = d * (q - 16)
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };  // x = d * q + m
struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };                   // x = d * q
struct BlockQ8_1 { uint16_t d, s; int8_t qs[32]; };                // s = d * sum(q)

// K-quants: 256 elements in 8 sub-blocks of 32 (Q4_K, Q5_K) or 16 of 16 (Q6_K). `scales` packs
// eight 6-bit scales and eight 6-bit mins (see get_scale_min_k4 in quant_types.cc).
// Q4_K: x = d * sc[j] * q - dmin * m[j]; element 64*k + l (l < 32) is the low nibble of
// qs[32*k + l], element 64*k + 32 + l its high nibble.
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; };
// Q5_K: as Q4_K, the 5th bit of element 64*k + l is bit 2k of qh[l], of 64*k + 32 + l bit 2k+1.
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
// Q6_K: x = d * scales[e / 16] * (q - 32), q 6 bits: 4 in ql, 2 in qh (layout in quant_types.cc).
struct BlockQ6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };
// Q8_K (activations of K-quant dot products): bsums[i] = sum of qs[16 i .. 16 i + 15].
struct BlockQ8_K { float d; int8_t qs[256]; int16_t bsums[16]; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20, "ggml layout");
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24, "ggml layout");
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36, "ggml layout");
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176, "ggml layout");
static_assert(sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292, "ggml layout");

}  // namespace llmasos::quant
