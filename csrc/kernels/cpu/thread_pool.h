// A persistent pool of worker threads. run(fn) calls fn(i, n) once for every i in [0, n)
// (n = the pool size) and returns when all calls have finished; parallel_for splits a range into
// chunks the same way. Items are claimed dynamically: whichever thread is free takes the next one,
// the caller included, so a worker that the OS has descheduled (a busy, shared machine) delays
// nothing but its own item. Workers spin briefly between jobs (a decode step issues hundreds of
// small jobs), then yield, then sleep on a condition variable.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llmasos::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_; }
  // fn(i, size()) for each i in [0, size()), concurrently; i identifies the item, not the thread,
  // but no two calls with the same i overlap (so per-i scratch is safe).
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks of about `grain` (at most a few per thread).
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // item(i) once for every i in [0, n_items), each claimed by whichever thread is free (the
  // caller included); serial when the pool or the job has one. Returns when all have finished.
  void run_items(int n_items, const std::function<void(int)>& item);

 private:
  int claim(uint32_t gen);
  void worker();

  int n_;
  std::vector<std::thread> threads_;
  // The current job: ticket_ = (generation << 32) | next unclaimed item. A claim is a CAS that
  // only succeeds within the same generation, so a late worker never runs a finished job; before
  // item_ and n_items_ change, the finished generation is closed (its item index set to all ones),
  // so a worker between its ticket load and its CAS cannot claim an item of the next job's size.
  std::atomic<uint64_t> ticket_{0};
  const std::function<void(int)>* item_ = nullptr;
  std::atomic<int> n_items_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::mutex run_mu_;  // one job at a time
};

// Number of physical cores (falls back to hardware_concurrency).
int physical_cores();

}  // namespace llmasos::cpu
