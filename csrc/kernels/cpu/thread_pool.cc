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
constexpr int kSpinIters = 4000;    // pause-spins before yielding (~tens of microseconds)
constexpr int kYieldIters = 200;    // then yields before sleeping
}

ThreadPool::ThreadPool(int n_threads) : n_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_; ++i) threads_.emplace_back(&ThreadPool::worker, this);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    ticket_.fetch_add(uint64_t(1) << 32);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

int ThreadPool::claim(uint32_t gen) {
  uint64_t t = ticket_.load();
  for (;;) {
    if (static_cast<uint32_t>(t >> 32) != gen) return -1;
    const uint32_t idx = static_cast<uint32_t>(t & 0xffffffffu);
    if (idx >= static_cast<uint32_t>(n_items_.load())) return -1;
    if (ticket_.compare_exchange_weak(t, t + 1)) return static_cast<int>(idx);
  }
}

void ThreadPool::worker() {
  uint32_t seen = 0;
  for (;;) {
    auto gen_of = [&] { return static_cast<uint32_t>(ticket_.load(std::memory_order_acquire) >> 32); };
    int spins = 0;
    while (gen_of() == seen) {
      ++spins;
      if (spins < kSpinIters) {
        LLMASOS_PAUSE();
      } else if (spins < kSpinIters + kYieldIters) {
        std::this_thread::yield();
      } else {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return gen_of() != seen; });
      }
    }
    seen = gen_of();
    if (stop_.load()) return;
    // item_ and n_items_ belong to generation `seen` for as long as one of its items is unclaimed
    // or running: the caller waits for done_ before publishing another job.
    for (int i = claim(seen); i >= 0; i = claim(seen)) {
      (*item_)(i);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }
}

void ThreadPool::run_items(int n_items, const std::function<void(int)>& item) {
  if (n_items <= 0) return;
  if (n_ == 1 || n_items == 1) {
    for (int i = 0; i < n_items; ++i) item(i);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mu_);
  // Close the finished generation first (every claim of it now fails, even one that already read
  // the old ticket), then describe the new job, then publish it with a new generation. Without
  // the close, a late worker could pair the old ticket with the new n_items_, run a bogus item and
  // count it in done_, leaving this thread waiting for a count it has passed.
  ticket_.store(ticket_.load() | 0xffffffffu);
  item_ = &item;
  n_items_.store(n_items);
  done_.store(0);
  uint32_t gen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gen = static_cast<uint32_t>(ticket_.load() >> 32) + 1;
    ticket_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
  }
  cv_.notify_all();
  for (int i = claim(gen); i >= 0; i = claim(gen)) {
    item(i);
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
  while (done_.load(std::memory_order_acquire) != n_items) LLMASOS_PAUSE();
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  const int n = n_;
  run_items(n, [&](int i) { fn(i, n); });
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  // Items of whole grains; up to 4 per thread so a slow thread's share can be picked up.
  const int64_t grains = (n + grain - 1) / grain;
  const int64_t items = grains < int64_t(4) * n_ ? grains : int64_t(4) * n_;
  const int64_t per = (grains + items - 1) / items;  // grains per item
  run_items(static_cast<int>(items), [&](int i) {
    const int64_t lo = i * per * grain;
    const int64_t hi = (i + 1) * per * grain < n ? (i + 1) * per * grain : n;
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
