// AVX-512 quantized kernels (placeholder while being written).
#include "kernels/cpu/quant_dot.h"
namespace llmasos::cpu::LLMASOS_ISA_NS {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
void fill_quant_kernels_avx512(KernelTable& t) { (void)t; }
#endif
}  // namespace llmasos::cpu::LLMASOS_ISA_NS
