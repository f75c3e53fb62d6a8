// Small SIMD helpers shared by the kernel sources of one ISA level (quant_dot_avx2.cc,
// quant_dot_avx512.cc, quant_gemm_q16.cc, quant_gemm_x8.cc, attention_block.cc): the exact widening
// of F16 / BF16 vectors to float, the horizontal max, and VNNI dot products with an embedded
// broadcast. Everything lands in the including level's namespace.
#pragma once
#include <cstdint>
#include <cstring>

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
// The largest of the 8 lanes.
inline float hmax_ps(__m256 v) {
  __m128 r = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_max_ps(r, _mm_movehl_ps(r, r));
  r = _mm_max_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}
#endif

// s + each lane's VNNI dot product of w with the 4 bytes at p, the same 4 for every lane
// (dpbusd_bcast: w's u8 quads with 4 int8; dpwssd_bcast: w's int16 pairs with 2 int16): the
// instruction with an embedded broadcast ({1to8} for ymm, {1to16} for zmm: the kernels that run a
// pair of x8 groups as one zmm) memory operand. GCC 12 does not fold a set1 into it, and a
// separate vpbroadcastd measured 1.52 instead of 1.88 vpdpbusd per cycle (Zen 4, register-only),
// so GCC gets the instruction in asm; LLVM folds the broadcast itself.
#if defined(__clang__)
#define LLMASOS_VNNI_BCAST(name, vec, set1, bcast, insn, intrinsic) \
  inline vec name(vec s, vec w, const void* p) {                    \
    int32_t v;                                                      \
    std::memcpy(&v, p, 4);                                          \
    return intrinsic(s, w, set1(v));                                \
  }
#else
#define LLMASOS_VNNI_BCAST(name, vec, set1, bcast, insn, intrinsic)                     \
  inline vec name(vec s, vec w, const void* p) {                                        \
    __asm__(insn " %2%{" bcast "%}, %1, %0" : "+v"(s) : "v"(w), "m"(*static_cast<const int32_t*>(p))); \
    return s;                                                                           \
  }
#endif
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
LLMASOS_VNNI_BCAST(dpbusd_bcast, __m256i, _mm256_set1_epi32, "1to8", "vpdpbusd", _mm256_dpbusd_epi32)
LLMASOS_VNNI_BCAST(dpwssd_bcast, __m256i, _mm256_set1_epi32, "1to8", "vpdpwssd", _mm256_dpwssd_epi32)
#endif
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
LLMASOS_VNNI_BCAST(dpbusd_bcast16, __m512i, _mm512_set1_epi32, "1to16", "vpdpbusd", _mm512_dpbusd_epi32)
LLMASOS_VNNI_BCAST(dpwssd_bcast16, __m512i, _mm512_set1_epi32, "1to16", "vpdpwssd", _mm512_dpwssd_epi32)
#endif
#undef LLMASOS_VNNI_BCAST

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
