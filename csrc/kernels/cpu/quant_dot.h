// Private to the quant_dot*.cc kernel sources of one ISA level: the SIMD halves of the quantized
// kernels override the scalar entries filled by quant_dot.cc. Compiled per level (see isa.h).
#pragma once
#include "kernels/cpu/isa.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
// quant_dot_avx2.cc: AVX2 kernels (with 256-bit VNNI where the level has AVX512-VNNI + VL).
void fill_quant_kernels_avx2(KernelTable& t);
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// quant_dot_avx512.cc: 512-bit float dots and 512-bit VNNI kernels for the hottest formats.
void fill_quant_kernels_avx512(KernelTable& t);
#endif

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
