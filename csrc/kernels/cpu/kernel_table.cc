// Assembles this ISA level's KernelTable from the kernel families compiled at the same level.
#include "kernels/cpu/isa.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {

#define LLMASOS_STR2(x) #x
#define LLMASOS_STR(x) LLMASOS_STR2(x)

static KernelTable build_table() {
  KernelTable t;
  t.isa = LLMASOS_STR(LLMASOS_ISA_NS);
  fill_quant_kernels(t);
  fill_gemm_x8(t);
  fill_gemm_q16(t);
  fill_ops(t);
  fill_attention_kernels(t);
  fill_gemm_f32(t);
  return t;
}

const KernelTable* table() {
  static const KernelTable t = build_table();
  return &t;
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
