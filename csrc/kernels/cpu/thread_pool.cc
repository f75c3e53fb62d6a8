// Persistent thread pool: generation counter + spin-then-sleep workers.
#include "kernels/cpu/thread_pool.h"

#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LLMASOS_PAUSE() _mm_pause()
#else
#define LLMASOS_PAUSE() ((void)0)
#endif

namespace llmasos::cpu {

namespace {
constexpr int kSpinIters = 20000;  // ~ tens of microseconds before falling asleep
}

ThreadPool::ThreadPool(int n_threads) : n_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_; ++i) threads_.emplace_back(&ThreadPool::worker, this, i);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    int spins = 0;
    while (g == seen) {
      if (++spins < kSpinIters) {
        LLMASOS_PAUSE();
      } else {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    (*job_)(index, n_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_ == 1) {
    fn(0, 1);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mu_);
  job_ = &fn;
  pending_.store(n_ - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  fn(0, n_);
  while (pending_.load(std::memory_order_acquire) != 0) LLMASOS_PAUSE();
  job_ = nullptr;
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t chunks = (n + grain - 1) / grain;
  int used = static_cast<int>(chunks < n_ ? chunks : n_);
  if (used <= 1) {
    fn(0, n);
    return;
  }
  run([&](int i, int) {
    if (i >= used) return;
    int64_t per = (chunks + used - 1) / used;  // chunks per thread
    int64_t lo = i * per * grain, hi = (i + 1) * per * grain;
    if (hi > n) hi = n;
    if (lo < hi) fn(lo, hi);
  });
}

int physical_cores() {
  // Count distinct (physical id, core id) pairs; fall back to the logical count.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    auto val = [&] { auto p = line.find(':'); return p == std::string::npos ? std::string() : line.substr(p + 1); };
    if (line.rfind("physical id", 0) == 0) phys = val();
    if (line.rfind("core id", 0) == 0) cores.insert({phys, val()});
  }
  int logical = static_cast<int>(std::thread::hardware_concurrency());
  if (logical < 1) logical = 1;
  if (cores.empty()) return logical;
  return static_cast<int>(cores.size()) < logical ? static_cast<int>(cores.size()) : logical;
}

}  // namespace llmasos::cpu
