// F32 GEMM packing and register tiles, compiled once per ISA level: generic 4x8 plain loops, avx2
// 6x16 (12 ymm accumulators), avx512 12x32 (24 zmm accumulators). Every tile follows the canonical
// order of gemm_f32.h (per k: one fused multiply-add, rounded once), so all levels agree bit for
// bit: FMA instructions at avx2 / avx512, fma_exact (correctly rounded) in the generic loops.
#include <cstdint>
#include <cstring>

#include "kernels/cpu/fma_exact.h"
#include "kernels/cpu/isa.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

// A rows [0, m) x [0, kc) -> ceil(m / MR) panels of kc x MR, k-major, zero rows past m.
template <int MR>
void pack_a(const float* a, int64_t lda, int64_t m, int64_t kc, float* out) {
  for (int64_t i0 = 0; i0 < m; i0 += MR, out += kc * MR) {
    const int rows = m - i0 < MR ? static_cast<int>(m - i0) : MR;
    const float* src = a + i0 * lda;
    if (rows == MR) {
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) out[k * MR + r] = src[r * lda + k];
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) out[k * MR + r] = r < rows ? src[r * lda + k] : 0.0f;
    }
  }
}

// B rows [0, kc) x [0, n) -> ceil(n / NR) panels of kc x NR, zero columns past n.
template <int NR>
void pack_b(const float* b, int64_t ldb, int64_t kc, int64_t n, float* out) {
  for (int64_t j0 = 0; j0 < n; j0 += NR, out += kc * NR) {
    const int cols = n - j0 < NR ? static_cast<int>(n - j0) : NR;
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = b + k * ldb + j0;
      float* dst = out + k * NR;
      if (cols == NR) {
        std::memcpy(dst, src, NR * sizeof(float));
      } else {
        for (int j = 0; j < NR; ++j) dst[j] = j < cols ? src[j] : 0.0f;
      }
    }
  }
}

// The reference tile: plain loops in the canonical order, fma_exact per term (one rounding: the
// instruction where the level has FMA, exact double arithmetic at the generic level).
template <int MR, int NR>
void tile_loops(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool first) {
  float acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) acc[r][j] = first ? 0.0f : c[r * ldc + j];
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR)
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) acc[r][j] = fma_exact(a[r], b[j], acc[r][j]);
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) c[r * ldc + j] = acc[r][j];
}

#if defined(__AVX2__) && !defined(__AVX512F__)
// The k loop of the 6 x 16 tile, in asm so that all 16 ymm registers hold what they should: 12
// accumulators (operands c00 .. c51: row r, columns 8h .. 8h+7), B's two vectors (ymm12, ymm13)
// and the broadcast of A (ymm14). Per k: 2 loads of B, 6 broadcasts, 12 FMA (the canonical
// order), four k per trip. GCC's own code for the same intrinsics spills when unrolled, and an FMA
// that reads B from memory overloads the load ports (12 loads per k instead of 2). From L1 this
// runs at 97% of the FMA peak on Zen 3; the former mul + add pair (product rounded, then added)
// reached 81%: 24 ops per k where the FMA form has 12.
#define LLMASOS_ROW(ao, r)                                  \
  "vbroadcastss " #ao "(%[a]), %%ymm14\n\t"                 \
  "vfmadd231ps %%ymm12, %%ymm14, %[c" #r "0]\n\t"           \
  "vfmadd231ps %%ymm13, %%ymm14, %[c" #r "1]\n\t"
// One k step: A's 6 values at byte offsets a0 .. a5, B's 16 at bo0 (columns 0-7) and bo1 (8-15).
#define LLMASOS_STEP(a0, a1, a2, a3, a4, a5, bo0, bo1)                   \
  "vmovups " #bo0 "(%[b]), %%ymm12\n\t"                                 \
  "vmovups " #bo1 "(%[b]), %%ymm13\n\t"                                 \
  LLMASOS_ROW(a0, 0) LLMASOS_ROW(a1, 1) LLMASOS_ROW(a2, 2)               \
  LLMASOS_ROW(a3, 3) LLMASOS_ROW(a4, 4) LLMASOS_ROW(a5, 5)
#define LLMASOS_OPERANDS                                                                    \
  : [a] "+r"(a), [b] "+r"(b), [n] "+r"(n), [c00] "+x"(c00), [c01] "+x"(c01),               \
    [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30),    \
    [c31] "+x"(c31), [c40] "+x"(c40), [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51)    \
  :                                                                                         \
  : "xmm12", "xmm13", "xmm14", "cc", "memory"

void tile_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool first) {
  __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (first) {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
  } else {
#define LLMASOS_LOAD_ROW(r)                              \
  c##r##0 = _mm256_loadu_ps(c + r * ldc);                \
  c##r##1 = _mm256_loadu_ps(c + r * ldc + 8);
    LLMASOS_LOAD_ROW(0) LLMASOS_LOAD_ROW(1) LLMASOS_LOAD_ROW(2)
    LLMASOS_LOAD_ROW(3) LLMASOS_LOAD_ROW(4) LLMASOS_LOAD_ROW(5)
#undef LLMASOS_LOAD_ROW
  }
  int64_t n = kc / 4;  // trips of four k steps (a: 96 bytes, b: 256 bytes each)
  if (n > 0)
    asm volatile(
        "1:\n\t"
        LLMASOS_STEP(0, 4, 8, 12, 16, 20, 0, 32)
        LLMASOS_STEP(24, 28, 32, 36, 40, 44, 64, 96)
        LLMASOS_STEP(48, 52, 56, 60, 64, 68, 128, 160)
        LLMASOS_STEP(72, 76, 80, 84, 88, 92, 192, 224)
        "addq $96, %[a]\n\t"
        "addq $256, %[b]\n\t"
        "decq %[n]\n\t"
        "jnz 1b\n\t"
        LLMASOS_OPERANDS);
  n = kc % 4;  // the last 0-3 k steps, one per trip
  if (n > 0)
    asm volatile(
        "1:\n\t"
        LLMASOS_STEP(0, 4, 8, 12, 16, 20, 0, 32)
        "addq $24, %[a]\n\t"
        "addq $64, %[b]\n\t"
        "decq %[n]\n\t"
        "jnz 1b\n\t"
        LLMASOS_OPERANDS);
#define LLMASOS_STORE_ROW(r)                             \
  _mm256_storeu_ps(c + r * ldc, c##r##0);                \
  _mm256_storeu_ps(c + r * ldc + 8, c##r##1);
  LLMASOS_STORE_ROW(0) LLMASOS_STORE_ROW(1) LLMASOS_STORE_ROW(2)
  LLMASOS_STORE_ROW(3) LLMASOS_STORE_ROW(4) LLMASOS_STORE_ROW(5)
#undef LLMASOS_STORE_ROW
}
#undef LLMASOS_OPERANDS
#undef LLMASOS_STEP
#undef LLMASOS_ROW
#endif

#if defined(__AVX512F__)
// 12 rows x 32 columns: per k, 2 loads of B, 12 broadcasts of A, 24 FMA into 24 zmm accumulators
// (of 32 registers): the 6x16 tile widened, checked against the generic level by the
// determinism tests where it runs.
void tile_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool first) {
  __m512 acc[12][2];
  for (int r = 0; r < 12; ++r) {
    acc[r][0] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * ldc);
    acc[r][1] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * ldc + 16);
  }
  for (int64_t k = 0; k < kc; ++k, a += 12, b += 32) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < 12; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < 12; ++r) {
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}
#endif

template <int MR, int NR>
void set_shape(KernelTable& t, int mc, int kc) {
  t.gemm_mr = MR;
  t.gemm_nr = NR;
  t.gemm_mc = mc;
  t.gemm_kc = kc;
  t.gemm_pack_a = pack_a<MR>;
  t.gemm_pack_b = pack_b<NR>;
}

}  // namespace

// Cache blocks: mc x kc floats of packed A stay in L2 (512 KiB on Zen 3, 1-2 MiB on AVX-512
// parts), mc a multiple of mr; a kc x nr panel of B is read from L1/L2 by every mr-row panel. A
// longer kc means fewer passes over C (avx2: kc 512 measured a few percent above 256 on Zen 3).
// avx512, 2 threads on Zen 4, best of 5 (GFLOP/s, kc 192 -> 768): 2048^3 183 -> 204-205,
// 512^3 189-197 -> 205-206, 512 x 576 x 1536 162-164 -> 172-203; numpy (OpenBLAS) 197-205.
// The A block (144 x 768, 432 KiB) still fits L2; the B panel streams from L2 at 128 bytes per
// 24 FMA cycles.
void fill_gemm_f32(KernelTable& t) {
#if defined(__AVX512F__)
  set_shape<12, 32>(t, 144, 768);
  t.gemm_tile = tile_12x32;
#elif defined(__AVX2__)
  set_shape<6, 16>(t, 144, 512);
  t.gemm_tile = tile_6x16;
#else
  set_shape<4, 8>(t, 128, 256);
  t.gemm_tile = tile_loops<4, 8>;
#endif
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
