// placeholder being written: quantized dot products per ISA level.
#include "kernels/cpu/isa.h"
namespace llmasos::cpu::LLMASOS_ISA_NS {
void fill_quant_kernels(KernelTable& t) { (void)t; }
}  // namespace llmasos::cpu::LLMASOS_ISA_NS
