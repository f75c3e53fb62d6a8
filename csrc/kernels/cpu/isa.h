// Declarations shared by the kernel sources of one ISA level. Included only by files compiled
// once per level; LLMASOS_ISA_NS (generic, avx2, avx512) names the namespace of this copy.
#pragma once
#include "kernels/cpu/kernel_table.h"

#ifndef LLMASOS_ISA_NS
#error "kernel sources must be compiled with -DLLMASOS_ISA_NS=<level>"
#endif

namespace llmasos::cpu::LLMASOS_ISA_NS {

// quant_dot.cc: activation quantizers, quantized dot products and row dequantizers.
void fill_quant_kernels(KernelTable& t);
// quant_gemm_x8.cc: products with row-interleaved (x8) packed weights.
void fill_gemm_x8(KernelTable& t);
// quant_gemm_q16.cc: packed Q4_0 ... Q8_0 products with 16-bit activations (matmul_precise).
void fill_gemm_q16(KernelTable& t);
// ops.cc: dense float ops (norms, activations, softmax, dot, axpy).
void fill_ops(KernelTable& t);
// attention_block.cc: the inner products of attention over one 16-position KV block.
void fill_attention_kernels(KernelTable& t);
// gemm_f32_kernels.cc: F32 GEMM packing and register tile (canonical order in gemm_f32.h).
void fill_gemm_f32(KernelTable& t);
// kernel_table.cc: the complete table of this level.
const KernelTable* table();

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
