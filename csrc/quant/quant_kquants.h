// Scalar reference routines of the K-quants (Q4_K, Q5_K, Q6_K: 256-element super-blocks), used by
// the traits table in quant_types.cc. Not for the per-ISA kernel sources (they carry their own).
#pragma once
#include <cstdint>

namespace llmasos::quant {

// Round to nearest, ties to even, for |x| < 2^22 (ggml's nearest_int).
int nearest_int(float x);
// Unpacks the 6-bit scale and min of sub-block j (0..7) from a K-quant's 12 `scales` bytes.
void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m);

void dequant_q4_k(const void* src, float* dst, int64_t n);
void dequant_q5_k(const void* src, float* dst, int64_t n);
void dequant_q6_k(const void* src, float* dst, int64_t n);

// ggml's reference quantizers (quantize_row_q*_K_ref).
void quant_q4_k(const float* src, void* dst, int64_t n);
void quant_q5_k(const float* src, void* dst, int64_t n);
void quant_q6_k(const float* src, void* dst, int64_t n);

}  // namespace llmasos::quant
