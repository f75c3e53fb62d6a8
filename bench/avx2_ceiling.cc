// What one core can do at most with the AVX2 instruction mixes of the integer product kernels, in
// registers (no memory traffic but the 4-byte activation broadcasts from L1, no loop tails): the
// ceiling the quantized products are measured against. Build and run:
//
//   mkdir -p build && g++ -O2 -mavx2 -o build/avx2_ceiling bench/avx2_ceiling.cc && build/avx2_ceiling
//
// Each mix runs as 8 independent chains in inline asm (the compiler cannot reorder or spill them).
// One "step" covers 32 multiply-adds (8 rows x 4 columns of an x8 block, one token):
//   q8   Q8_0 x Q8_0: vpbroadcastd x, vpsignb x by w, vpmaddubsw |w| * x, vpmaddwd by ones, vpaddd
//   q4   Q4_x x Q8:   vpbroadcastd x, vpmaddubsw w * x, vpaddw (16-bit sums; madd once per block)
//   pair vpmaddubsw + vpmaddwd alone (the two multiplies every 8-bit step needs without VNNI)
// The clock is estimated from a chain of dependent 1-cycle integer adds.
#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {

#define R8(I) I(0) I(1) I(2) I(3) I(4) I(5) I(6) I(7)
#define CLOBBER "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
                "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

alignas(64) int32_t xbuf[16] = {0x01020304, 0x7f7f7f7f};

template <int K>
double steps_per_ns(long n) {
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) {
    if constexpr (K == 0) {
      __asm__ volatile(
#define I(x) "vpbroadcastd (%0), %%ymm8\n vpsignb %%ymm15, %%ymm8, %%ymm8\n vpmaddubsw %%ymm8, %%ymm14, %%ymm8\n" \
             "vpmaddwd %%ymm13, %%ymm8, %%ymm8\n vpaddd %%ymm8, %%ymm" #x ", %%ymm" #x "\n"
          R8(I)
#undef I
          : : "r"(xbuf) : CLOBBER);
    } else if constexpr (K == 1) {
      __asm__ volatile(
#define I(x) "vpbroadcastd (%0), %%ymm8\n vpmaddubsw %%ymm8, %%ymm14, %%ymm8\n vpaddw %%ymm8, %%ymm" #x ", %%ymm" #x "\n"
          R8(I)
#undef I
          : : "r"(xbuf) : CLOBBER);
    } else {
      __asm__ volatile(
#define I(x) "vpmaddubsw %%ymm15, %%ymm14, %%ymm8\n vpmaddwd %%ymm13, %%ymm8, %%ymm8\n vpaddd %%ymm8, %%ymm" #x ", %%ymm" #x "\n"
          R8(I)
#undef I
          : : : CLOBBER);
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 8.0 * static_cast<double>(n) / s / 1e9;
}

double clock_ghz() {
  const long n = 400000000;
  const auto t0 = std::chrono::steady_clock::now();
  long x = 0;
  for (long i = 0; i < n; ++i) __asm__ volatile("add $1, %0" : "+r"(x));
  return static_cast<double>(n) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9;
}

}  // namespace

int main() {
  const long n = 30000000;
  steps_per_ns<2>(n / 10);  // warm up the clock
  const double ghz = clock_ghz();
  const char* names[3] = {"q8   (Q8_0 step)", "q4   (Q4_x step)", "pair (maddubs+madd)"};
  const double r[3] = {steps_per_ns<0>(n), steps_per_ns<1>(n), steps_per_ns<2>(n)};
  std::printf("clock ~%.2f GHz (dependent adds)\n", ghz);
  for (int k = 0; k < 3; ++k)
    std::printf("%-20s %.2f steps/cycle  ceiling %.0f GMAC/s per core\n", names[k], r[k] / ghz, 32.0 * r[k]);
  return 0;
}
