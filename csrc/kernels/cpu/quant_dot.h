// Private to the kernel sources of one ISA level (quant_dot*.cc, ops.cc): the canonical order of
// float operations that every level follows, so all levels give bit-identical results, and the
// hook by which the SIMD halves of the quantized kernels override quant_dot.cc's scalar entries.
//
// Canonical order (all levels; kernels are compiled with -ffp-contract=off, so a fused multiply-add
// happens only where written, in every level alike):
//  * Legacy quantized dots (32-element blocks against Q8_0 / Q8_1): per block b, 8 exact int32
//    lane sums p_b[l] = sum of q_e * x_e over elements e = 4l .. 4l+3 (the lanes of maddubs+madd
//    or dpbusd), and d_b = dw * dx (fp16 -> float is exact; each float op rounds once); then
//      acc[(b % 2) * 8 + l] += d_b * float(p_b[l])        (acc: 16 lanes starting at +0)
//    result = tree16(acc); Q4_1 / Q5_1 add the min terms summed in block order:
//      ms += mw * sx;  result = tree16(acc) + ms.
//  * x8 products (row-interleaved packed Q4_0 ... Q8_0, quant/packed_x8.h; matmul on a packed
//    matrix): per output (row, token), per block b in increasing order, the exact int32 sum
//    S_b = sum of q_e * x_e (q - 8 / q - 16 for Q4_0 / Q5_0, as an integer: sum q x - off * sum x),
//    d_b = dw * dx, then, fused (rounded once: fma_exact.h, the instruction where the level has it)
//      acc = fma(d_b, float(S_b), acc);   Q4_1 / Q5_1 also  accm = fma(mw, sx, accm)   (both from +0)
//    result = acc (+ accm). One accumulator per output: a SIMD lane is a row, never a partial sum.
//    Fused because at 16 tokens the AMX kernels are bound by these vector ops, not by the tiles:
//    one op fewer per block and output (of 4, and of 2 for the min terms) made the default
//    model's T = 16 products 5-10% faster (bench/amx_ab.sh).
//    Q4_K / Q5_K x8: per super-block b, exact sumi = sum_j sc_j S_j and summ = sum_j m_j bsum_j, then
//      acc = acc + ((dw * dx) * float(sumi) - (dminw * dx) * float(summ)).
//    Q6_K x8: per super-block, exact sumi = sum_j sc_j sum_e (q_e - 32) x_e, then
//      acc = acc + (dw * dx) * float(sumi).
//    Q4_0 ... Q8_0 x8 with 16-bit activations (matmul_precise, quant_gemm_q16.cc): per block of 32
//    floats, amax = max |x| (NaN never wins), d = amax / 32767, id = d != 0 ? 1 / d : 0, q = x * id
//    rounded to nearest even after clamping to +-32767 (NaN -> 0), sx = d * float(sum q); then per
//    output and block, exact int32 S_b = sum of w_e * q_e (q - 8 / q - 16 for Q4_0 / Q5_0, as an
//    integer: sum w q - off * sum q) and
//      acc = fma(dw * dx, float(S_b), acc)   (float() rounds to nearest even);
//    Q4_1 / Q5_1 also accm = fma(mw, sx, accm); result acc (+ accm).
//    The integer sums may come from anywhere exact: maddubs/madd (avx2), dpbusd (avx512), or one
//    AMX tile product per block / sub-block (amx, quant_gemm_amx.cc); the float ops never change.
//  * K-quant dots, per super-block b: exact integer sums, then
//      Q4_K, Q5_K:  t = (dx * dw) * float(sumi) - (dx * dminw) * float(summ)
//      Q6_K:        t = (dx * dw) * float(sumi)
//    accumulated as acc[b % 8] += t, then tree8(acc).
//  * Float dots (F32/F16/BF16 weights, dot_f32, sum of squares): acc[i % 32] += w_i * x_i, then
//    tree32(acc). Widened weights (f16, bf16 -> float) are exact.
//  * F32 GEMM (gemm_f32.h): each C[i,j] is c = +0; c = fma(a[i,k], b[k,j], c) for k = 0, 1, ...
//    in increasing order, one term at a time (no tree: a tile's lanes are distinct outputs).
// A SIMD lane that holds no block or element adds +0, which leaves an accumulator unchanged (an
// accumulator that starts at +0 can never become -0 under round-to-nearest). tree<n> is the
// halving tree of canonical_tree below.
#pragma once
#include "kernels/cpu/isa.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {

// Halving tree: a[j] += a[j + h] for h = n/2 ... 1; returns a[0]. For n = 8 this is
// ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)), the order of an AVX hsum.
inline float canonical_tree(float* a, int n) {
  for (int h = n / 2; h >= 1; h /= 2)
    for (int j = 0; j < h; ++j) a[j] = a[j] + a[h + j];
  return a[0];
}

// The K-quant per-super-block float sequences above (fp16 fields already widened to float).
inline float canonical_kterm_min(float dx, float dw, float dminw, int sumi, int summ) {
  const float d = dx * dw;
  const float m = dx * dminw;
  const float a = d * static_cast<float>(sumi);
  const float b = m * static_cast<float>(summ);
  return a - b;
}
inline float canonical_kterm(float dx, float dw, int sumi) {
  const float d = dx * dw;
  return d * static_cast<float>(sumi);
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
// quant_dot_avx2.cc: AVX2 kernels (with 256-bit VNNI where the level has AVX512-VNNI + VL).
void fill_quant_kernels_avx2(KernelTable& t);
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// quant_dot_avx512.cc: 512-bit float dots and 512-bit VNNI kernels for the hottest formats.
void fill_quant_kernels_avx512(KernelTable& t);
#endif

}  // namespace llmasos::cpu::LLMASOS_ISA_NS

#if defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>

namespace llmasos::cpu::LLMASOS_ISA_NS {

// canonical_tree over the 8 lanes of v.
inline float canonical_tree8_ps(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));  // h = 4
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));                                         // h = 2
  r = _mm_add_ss(r, _mm_movehdup_ps(r));                                          // h = 1
  return _mm_cvtss_f32(r);
}

// canonical_tree over 32 lanes held as a0 = lanes 0..7, a1 = 8..15, a2 = 16..23, a3 = 24..31.
inline float canonical_tree32_ps(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 b0 = _mm256_add_ps(a0, a2), b1 = _mm256_add_ps(a1, a3);  // h = 16
  return canonical_tree8_ps(_mm256_add_ps(b0, b1));                     // h = 8, 4, 2, 1
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
#endif
