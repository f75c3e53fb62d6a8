// Two versions of the tile kernels (csrc/kernels/cpu/quant_gemm_amx.cc) in one process, on the
// default model's T = 16 products (8-bit gate|up, down, O; 16-bit Q/K/V and head), alternated
// round by round: on a shared machine whose speed drifts by 2x within minutes, only such paired
// rounds tell a few percent apart. Each round takes each version's fastest of a few calls; the
// figure is the median over rounds of B's time / A's (below 1: B faster). Checks that both give
// the same bytes. Built and run by bench/amx_ab.sh (needs an AMX machine).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/thread_pool.h"
#include "quant/quant_types.h"

namespace llmasos::cpu::amx_ab_a { const KernelTable* table(); }
namespace llmasos::cpu::amx_ab_b { const KernelTable* table(); }

using namespace llmasos;

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1, rounds = argc > 2 ? std::atoi(argv[2]) : 15;
  const int64_t T = 16;
  cpu::select_isa("amx");
  // The active level's table, its product entries swapped between the two versions (a harness
  // only: the table is otherwise read-only).
  cpu::KernelTable& active = const_cast<cpu::KernelTable&>(cpu::kernels());
  const cpu::KernelTable* version[2] = {cpu::amx_ab_a::table(), cpu::amx_ab_b::table()};
  struct Shape {
    const char* name;
    GgmlType type;
    int64_t rows, cols;
    bool precise;
  };
  const Shape shapes[] = {{"gate_up", GgmlType::Q4_1, 3072, 576, false}, {"down", GgmlType::Q4_1, 576, 1536, false},
                          {"o", GgmlType::Q4_1, 576, 576, false}, {"qkv (16-bit)", GgmlType::Q4_1, 960, 576, true},
                          {"head (16-bit)", GgmlType::Q8_0, 49152, 576, true}};
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  cpu::ThreadPool pool(threads);
  cpu::MatmulScratch scratch;
  std::printf("threads %d, %d rounds, T = %lld: B / A (median of the rounds), each one's fastest call\n", threads,
              rounds, static_cast<long long>(T));
  for (const Shape& s : shapes) {
    // Random blocks with sane fp16 scales (d > 0, a small negative min for Q4_1).
    const int64_t nb = s.cols / 32;
    const size_t bs = s.type == GgmlType::Q4_1 ? 20 : 34;
    std::vector<uint8_t> raw(static_cast<size_t>(s.rows * nb) * bs);
    for (auto& b : raw) b = static_cast<uint8_t>(rng());
    for (int64_t i = 0; i < s.rows * nb; ++i) {
      uint8_t* blk = raw.data() + static_cast<size_t>(i) * bs;
      const uint16_t d = fp32_to_fp16(0.01f + static_cast<float>(rng() % 100) * 1e-4f);
      const uint16_t m = fp32_to_fp16(-0.05f + static_cast<float>(rng() % 100) * 1e-4f);
      std::memcpy(blk, &d, 2);
      if (s.type == GgmlType::Q4_1) std::memcpy(blk + 2, &m, 2);
    }
    cpu::WeightView W;
    W.type = s.type;
    W.data = raw.data();
    W.rows = s.rows;
    W.cols = s.cols;
    W.row_stride = static_cast<uint64_t>(nb) * bs;
    cpu::PackedBytes packed;
    const cpu::WeightView P = cpu::pack_x8(W, packed);
    std::vector<float> X(static_cast<size_t>(T * s.cols)), Y(static_cast<size_t>(T * s.rows)), ref;
    for (auto& x : X) x = normal(rng);
    std::vector<double> us[2];
    const int calls = s.rows > 10000 ? 2 : 8;
    const uint32_t id = static_cast<uint32_t>(s.type);
    for (int r = 0; r < rounds; ++r) {
      for (int v = 0; v < 2; ++v) {
        active.gemm_x8[id] = version[v]->gemm_x8[id];
        active.gemm_x8_q16[id] = version[v]->gemm_x8_q16[id];
        double best = 1e30;
        for (int c = 0; c < calls; ++c) {
          const auto t0 = std::chrono::steady_clock::now();
          if (s.precise)
            cpu::matmul_precise(P, X.data(), T, Y.data(), pool, scratch);
          else
            cpu::matmul(P, X.data(), T, Y.data(), pool, scratch);
          best = std::min(best, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        }
        us[v].push_back(best);
        if (ref.empty()) ref = Y;
        if (std::memcmp(ref.data(), Y.data(), sizeof(float) * Y.size()) != 0) {
          std::printf("%s: the versions give different bytes\n", s.name);
          return 1;
        }
      }
    }
    std::vector<double> ratio;
    for (int r = 0; r < rounds; ++r) ratio.push_back(us[1][static_cast<size_t>(r)] / us[0][static_cast<size_t>(r)]);
    std::sort(ratio.begin(), ratio.end());
    for (auto& u : us) std::sort(u.begin(), u.end());
    std::printf("%-14s A %9.1f us  B %9.1f us (fastest round)   B / A %.3f (rounds %.3f .. %.3f)\n", s.name, us[0][0],
                us[1][0], ratio[ratio.size() / 2], ratio.front(), ratio.back());
  }
  return 0;
}
