// The per-ISA kernel table. Each ISA level compiles the same kernel sources into its own namespace
// (llmasos::cpu::generic / avx2 / avx512) and exports one KernelTable; dispatch.cc picks one at
// import. Everything here is plain function pointers over raw buffers: no STL crosses ISA levels.
#pragma once
#include <cstdint>

#include "quant/quant_types.h"

namespace llmasos::cpu {

// The activations of a product with a row-interleaved (x8, quant/packed_x8.h) weight matrix: token
// rows of Q8_0 / Q8_1 / Q8_K blocks, and per token t and block b (index t * nb + b) the block's
// scale as float, its Q8_1 sum field as float, and the exact sum of its 32 quants (Q4_0, Q5_0);
// for Q8_K, sum[4 (t * nb + b) + p] packs the sums of sub-blocks 2p (low 16 bits) and 2p + 1.
struct X8Act {
  const uint8_t* q = nullptr;  // token t's block b at q + t * q_stride + b * block_bytes
  uint64_t q_stride = 0, block_bytes = 0, qs_offset = 0;  // qs_offset: the 32 int8 quants
  int64_t nb = 0;              // blocks per row
  const float* d = nullptr;
  const float* s = nullptr;
  const int32_t* sum = nullptr;
  // A number no other product's activations have had in this process (x8_view): kernels may keep
  // what they derive from these activations, per thread, for the product's other calls.
  uint64_t gen = 0;
};

// matmul_precise's activations for packed Q4_0 ... Q8_0 weights: blocks of 32, float d then 32
// int16 quants.
constexpr uint64_t kQ16BlockBytes = 4 + 2 * 32;

struct KernelTable {
  const char* isa = nullptr;

  // Quantize one activation row of n floats into the activation format `t` (Q8_0, Q8_1, Q8_K),
  // indexed by the type id of that format; nullptr where the format is not an activation format.
  void (*quantize_act[kGgmlTypeCount])(const float* x, void* q, int64_t n) = {};
  // s = dot(weight row w of type t, activation row qx in traits(t).vec_dot_type), n elements.
  // For float weight types (F32, F16, BF16) the activation is plain float (vec_dot_type F32).
  void (*vec_dot[kGgmlTypeCount])(int64_t n, float* s, const void* w, const void* qx) = {};
  // vec_dot of nr weight rows (w_stride bytes apart) with 4 activation rows (qx_stride bytes
  // apart), for prefill: s[t * s_stride + r] = dot(w + r * w_stride, qx + t * qx_stride) for
  // r < nr, t < 4, each bit-identical to vec_dot's; each weight block is unpacked once for the 4
  // tokens. nullptr where a level has none (matmul then loops over vec_dot).
  void (*vec_dot_4x[kGgmlTypeCount])(int64_t n, int64_t nr, float* s, int64_t s_stride,
                                     const void* w, uint64_t w_stride, const void* qx,
                                     uint64_t qx_stride) = {};
  // vec_dot of nr weight rows (w_stride bytes apart) with one activation row, for decode:
  // s[r] = dot(w + r * w_stride, qx), each vec_dot's bits; one call per tile of rows instead of
  // one per row. nullptr where a level has none (matmul then calls vec_dot per row).
  void (*vec_dot_rows[kGgmlTypeCount])(int64_t n, int64_t nr, float* s, const void* w,
                                       uint64_t w_stride, const void* qx) = {};
  // Product with a packed x8 weight matrix of type t (Q4_0 ... Q8_0; canonical order in
  // quant_dot.h): groups [0, ng) of w (8 rows each, contiguous, nb blocks per group), tokens
  // [t0, t0 + nt) with nt <= x8_tokens:  y[t * y_stride + 8 g + r] = dot(row 8 g + r, token t) for the rows
  // 8 g + r < rows (rows counted from w's first group; the zero rows past it are not stored).
  // Most tokens one gemm_x8 call takes: 8 (registers), 16 at the amx level (tile rows).
  int x8_tokens = 8;
  // Whether gemm_x8 for Q8_0 reads X8Act::sum (the exact sums of the activation blocks' quants,
  // which matmul otherwise computes for the _0 formats with an offset only).
  bool x8_q8_sums = false;
  void (*gemm_x8[kGgmlTypeCount])(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a,
                                  int64_t t0, int64_t nt, float* y, int64_t y_stride) = {};
  // matmul_precise on packed Q4_0 ... Q8_0 weights (quant_gemm_q16.cc, canonical order in
  // quant_dot.h): n floats to n / 32 blocks of kQ16BlockBytes, and the product as gemm_x8 with such
  // activations (X8Act: block_bytes kQ16BlockBytes, qs_offset 4, d the blocks' scales, sum the exact
  // sums of their quants, s = d * float(sum); any nt), by weight type (nullptr, the K-quants: the
  // two 8-bit products instead).
  void (*quantize_q16)(const float* x, void* q, int64_t n) = nullptr;
  void (*gemm_x8_q16[kGgmlTypeCount])(int64_t ng, int64_t rows, const uint8_t* w, const X8Act& a,
                                      int64_t t0, int64_t nt, float* y, int64_t y_stride) = {};
  // Dequantize one row of type t to float (used for embeddings lookups).
  void (*dequantize_row[kGgmlTypeCount])(const void* src, float* dst, int64_t n) = {};

  // Dense float ops used by the model forward.
  float (*dot_f32)(const float* a, const float* b, int64_t n) = nullptr;
  // y = x / rms(x) * w  (y may alias x)
  void (*rmsnorm)(float* y, const float* x, const float* w, int64_t n, float eps) = nullptr;
  // y = silu(g) * u  (y may alias g)
  void (*silu_mul)(float* y, const float* g, const float* u, int64_t n) = nullptr;
  // y = gelu_tanh(g) * u  (y may alias g; ops.cc has the form)
  void (*gelu_mul)(float* y, const float* g, const float* u, int64_t n) = nullptr;
  // x = cap * tanh(x / cap), in place (Gemma 2's score and logit soft-capping; ops.cc)
  void (*softcap)(float* x, int64_t n, float cap) = nullptr;
  // y += a * x
  void (*axpy)(float* y, float a, const float* x, int64_t n) = nullptr;
  // x *= a
  void (*scale)(float* x, float a, int64_t n) = nullptr;
  // in-place softmax over n values; returns nothing
  void (*softmax)(float* x, int64_t n) = nullptr;
  // RoPE of one token, in place (rope.h): heads of head_dim floats, their first rd rotated,
  // x[j] = x[j] * cs[j] + x[partner(j)] * cs[rd + j], partner(j) = j ^ 1, or j +- rd / 2 (neox).
  void (*rope_rotate)(float* x, int64_t n_heads, int64_t head_dim, int64_t rd, const float* cs, bool neox) = nullptr;
  // y[i] = (x[i] - m) / d (x and y do not overlap): the sampler's temperature, before softmax.
  void (*sub_div)(const float* x, float m, float d, float* y, int64_t n) = nullptr;
  // y[i] = fp32_to_fp16(x[i]) (round to nearest even; the same bits at every level): the KV cache.
  void (*f32_to_f16)(const float* x, uint16_t* y, int64_t n) = nullptr;

  // Attention over 16-position KV blocks (attention.h): for each block b < nblk,
  // s[r * s_stride + 16 b + j] = scale * sum_c q[r * q_stride + c] * kt[b][c * 16 + j], j < 16,
  // r < nq, the sum taken in increasing c; kt[b] is block b's keys transposed, [d][16]. Several
  // blocks per call let a few query rows (decode) run several independent chains.
  void (*attn_qk16)(const float* q, int64_t q_stride, int64_t nq, const float* const* kt, int64_t nblk,
                    int64_t d, float scale, float* s, int64_t s_stride) = nullptr;
  // o[r * o_stride + c] += p[r * p_stride + j] * v[j * d + c] for j < min(m[r], 16) in increasing
  // order (one add per term); v is the block's values, [16][d].
  void (*attn_pv16)(const float* p, int64_t p_stride, const int64_t* m, int64_t nq, const float* v,
                    int64_t d, float* o, int64_t o_stride) = nullptr;
  // The same two over an F16 / BF16 cache's block as stored (keys and values widened exactly on
  // the fly, so the bits are those of the float kernels over the widened block).
  void (*attn_qk16_f16)(const float* q, int64_t q_stride, int64_t nq, const uint16_t* const* kt,
                        int64_t nblk, int64_t d, float scale, float* s, int64_t s_stride) = nullptr;
  void (*attn_pv16_f16)(const float* p, int64_t p_stride, const int64_t* m, int64_t nq,
                        const uint16_t* v, int64_t d, float* o, int64_t o_stride) = nullptr;
  void (*attn_qk16_bf16)(const float* q, int64_t q_stride, int64_t nq, const uint16_t* const* kt,
                         int64_t nblk, int64_t d, float scale, float* s, int64_t s_stride) = nullptr;
  void (*attn_pv16_bf16)(const float* p, int64_t p_stride, const int64_t* m, int64_t nq,
                         const uint16_t* v, int64_t d, float* o, int64_t o_stride) = nullptr;
  // The same two over the int8 quants of a Q8_0 cache's block (widened exactly) with one KV head's
  // scales of the block, [group][16] (ks[b] for block b's keys, ds for the values), in
  // attention.h's order: the scores summed a group of dimensions at a time and scaled per group,
  // p_j * dv_gj in place of p_j for the group's columns.
  void (*attn_qk16_i8)(const float* q, int64_t q_stride, int64_t nq, const int8_t* const* kt,
                       const float* const* ks, int64_t nblk, int64_t d, float scale, float* s,
                       int64_t s_stride) = nullptr;
  void (*attn_pv16_i8)(const float* p, int64_t p_stride, const int64_t* m, int64_t nq,
                       const int8_t* v, const float* ds, int64_t d, float* o, int64_t o_stride) = nullptr;
  // F32 GEMM building blocks; gemm_f32.h has the canonical order and the driver (blocking, edges,
  // threads). The register tile is gemm_mr x gemm_nr; gemm_mc rows of A x gemm_kc depth is the
  // packed A block kept in L2, and a gemm_kc x gemm_nr panel of B stays in L1.
  int gemm_mr = 0, gemm_nr = 0, gemm_mc = 0, gemm_kc = 0;
  // Packs A rows [0, m) x columns [0, kc) (row stride lda) into ceil(m / mr) panels of kc x mr,
  // k-major (panel[k * mr + r]); rows past m are zero.
  void (*gemm_pack_a)(const float* a, int64_t lda, int64_t m, int64_t kc, float* out) = nullptr;
  // Packs B rows [0, kc) x columns [0, n) (row stride ldb) into ceil(n / nr) panels of kc x nr
  // (panel[k * nr + j]); columns past n are zero.
  void (*gemm_pack_b)(const float* b, int64_t ldb, int64_t kc, int64_t n, float* out) = nullptr;
  // One full mr x nr tile over packed panels a (kc x mr) and b (kc x nr):
  //   c[r * ldc + j] = (first ? +0 : c[r * ldc + j]) then += a[k * mr + r] * b[k * nr + j], k < kc.
  void (*gemm_tile)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                    bool first) = nullptr;
};

// The active table (chosen once; see dispatch.h).
const KernelTable& kernels();

}  // namespace llmasos::cpu
