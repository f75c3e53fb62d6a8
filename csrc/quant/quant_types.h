// Tensor element types (ggml numbering, as stored in GGUF) and one traits row per type:
// block size, bytes per block, the activation format its integer dot product wants, and scalar
// reference dequantize / quantize routines (the ground truth the ISA kernels are tested against).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace llmasos {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};
constexpr uint32_t kGgmlTypeCount = 40;  // table size; ids >= this are rejected

// Row of reference routines. `n` is a number of elements and must be a multiple of block_size.
struct TypeTraits {
  const char* name = nullptr;        // nullptr: type not supported by llmasos
  int64_t block_size = 0;            // elements per block
  int64_t type_size = 0;             // bytes per block
  GgmlType vec_dot_type = GgmlType::F32;  // activation format for dot products with this weight type
  void (*dequantize_row)(const void* src, float* dst, int64_t n) = nullptr;
  void (*quantize_row)(const float* src, void* dst, int64_t n) = nullptr;  // may be nullptr
};

// Traits of a type id, or nullptr when the id is unknown or unsupported.
const TypeTraits* type_traits(uint32_t type_id);
inline const TypeTraits* type_traits(GgmlType t) { return type_traits(static_cast<uint32_t>(t)); }

// Bytes of one row of `n` elements (n must be a multiple of the block size; checked by callers).
inline uint64_t row_bytes(const TypeTraits& t, int64_t n) {
  return static_cast<uint64_t>(n / t.block_size) * static_cast<uint64_t>(t.type_size);
}

// A float's bit pattern and back.
inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float f32_from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// IEEE half / bfloat16 <-> float, portable scalar versions. Inline: the x8 products' side arrays
// convert two halves per activation block in generic code (an out-of-line call each was 0.5% of a
// 16-sequence decode step).
inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float
    const float f = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return f32_from_bits(f32_bits(f) | sign);
  }
  if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (mant << 13));  // inf / nan
  return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}
// Round to nearest even, overflow to inf, nan stays nan (the FP16 library's method, as in ggml):
// scaling by 2^112 then 2^-110 lets the float unit do the rounding of the dropped mantissa bits.
// Inline and branch-free, so a loop of it vectorizes (the KV cache stores, ops.cc f32_to_f16).
inline uint16_t fp32_to_fp16(float f) {
  const uint32_t w = f32_bits(f);
  float base = (f32_from_bits(w & 0x7fffffffu) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xff000000u;
  bias = bias < 0x71000000u ? 0x71000000u : bias;
  base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t b = f32_bits(base);
  const uint32_t nonsign = ((b >> 13) & 0x00007c00u) + (b & 0x00000fffu);
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xff000000u ? 0x7e00u : nonsign));
}
inline float bf16_to_fp32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }
uint16_t fp32_to_bf16(float f);

}  // namespace llmasos
