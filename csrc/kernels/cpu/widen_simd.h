// Exact widening of F16 / BF16 vectors to float, shared by the kernel sources of one ISA level
// (quant_dot_avx2.cc, quant_dot_avx512.cc, attention_block.cc). Everything lands in the including
// level's namespace.
#pragma once
#include <cstdint>

#include "kernels/cpu/isa.h"

#if defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>
#endif

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

#if defined(__AVX2__) && defined(__F16C__)
inline __m256 load8_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load8_bf16(const uint16_t* p) {  // bf16 is a float's top half
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
#endif

#if defined(__AVX512F__)
inline __m512 load16_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 bf16x16(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
inline __m512 load16_bf16(const uint16_t* p) {
  return bf16x16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
#endif

}  // namespace
}  // namespace llmasos::cpu::LLMASOS_ISA_NS
