// AVX2 quantized kernels (placeholder while being written).
#include "kernels/cpu/quant_dot.h"
namespace llmasos::cpu::LLMASOS_ISA_NS {
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
void fill_quant_kernels_avx2(KernelTable& t) { (void)t; }
#endif
}  // namespace llmasos::cpu::LLMASOS_ISA_NS
