// Continuous batching: requests wait first come, first served; every step() runs one forward pass
// over a batch mixing the decode tokens of running sequences with chunks of waiting prompts under a
// token budget, samples each finished row with the sequence's own sampler, and reports new tokens.
// Sequences that do not fit the KV pool are preempted (blocks freed, recomputed later).
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine/kv_cache_paged.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "model/llama.h"

namespace llmasos {

struct SchedulerOptions {
  int64_t kv_cache_bytes = 0;     // 0: room for 4 * n_ctx positions
  int64_t max_batch_tokens = 512; // tokens per step (decode tokens + prompt chunks)
  int64_t max_seqs = 64;          // running sequences at once
  // Prompt lookup (prompt_lookup.h), as Session::generate's: a decoding sequence also feeds up
  // to this many drafted tokens while at most kLookupMaxSeqs sequences run (a larger batch is
  // bound by arithmetic, where wrong drafts would cost). Same tokens as without it. 0: off.
  int64_t lookup_tokens = 0;
  static constexpr int64_t kLookupMaxSeqs = 4;
};

// What one step produced for one request. finish_reason: "stop" (EOS / stop token) or "length"
// (max_tokens, context full, or a sequence larger than the whole KV pool); empty while running.
// stop_token: the end-of-generation or stop_token_ids token that ended it ("stop"; never in
// new_tokens, as its text is not part of the output), else -1.
// logprobs: when the request asked for them (SamplingOptions::logprobs >= 0), one per new token,
// then one for stop_token when set (OpenAI and vLLM report the end token's logprob: scoring a
// continuation that ends the text, as lm-evaluation-harness does, needs it).
// cached_tokens: how many of the prompt's tokens the prefix cache held when the request was first
// admitted (vLLM's num_cached_tokens; OpenAI's usage cached_tokens), on every output.
struct StepOutput {
  int64_t request_id = 0;
  int64_t cached_tokens = 0;
  std::vector<int32_t> new_tokens;
  std::vector<TokenLogprobs> logprobs;
  bool finished = false;
  std::string finish_reason;
  int32_t stop_token = -1;
};

struct SchedulerStats {
  int64_t waiting = 0, running = 0;
  int64_t steps = 0, tokens_processed = 0, prompt_tokens = 0, generated_tokens = 0;
  int64_t preemptions = 0, finished = 0, cancelled = 0;
  int64_t drafted = 0;  // tokens taken from prompt-lookup drafts (no step of their own)
  KvCacheStats kv;
  int64_t kv_cache_bytes = 0, block_tokens = PagedKvCache::kBlockTokens;
  int64_t max_batch_tokens = 0, max_seqs = 0;
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<Model> model, const SchedulerOptions& opts);
  ~Scheduler();

  // Queues a request. Throws InvalidArgumentError (and queues nothing) for an empty prompt, a
  // token id out of range, a prompt that leaves no room in the context or in the KV pool, bad
  // options, or an id already in use. Safe to call while another thread is inside step().
  void add_request(int64_t id, std::vector<int32_t> prompt, const GenerateOptions& opts);
  // Removes a request; its blocks are freed at once (or at the end of a step running now). Its
  // remaining output is never reported. False when the id is unknown or already finished.
  bool cancel(int64_t id);
  // Runs one batch (nothing when idle) and returns the requests that gained tokens or finished.
  std::vector<StepOutput> step();
  bool has_unfinished() const;
  SchedulerStats stats() const;
  // Forgets cached prefixes no sequence holds (benchmarks; a model swap).
  void reset_prefix_cache();

 private:
  struct Sequence;
  std::vector<StepOutput> step_locked();
  void apply_cancels();      // without mu_: applies queued cancels unless a holder of mu_ will
  void drain_inbox();        // with mu_ held: admits queued requests, applies cancels
  void drop(Sequence& s);    // frees its blocks (full ones stay in the prefix cache)
  void preempt(Sequence& s);
  void publish_stats();      // with mu_ held

  std::shared_ptr<Model> model_;
  SchedulerOptions opts_;
  ConstraintFactory constraints_;
  int64_t n_ctx_ = 0, n_vocab_ = 0;
  PagedKvCache kv_;

  std::mutex mu_;  // the scheduling state below; held for a whole step
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order
  std::vector<float> logits_;
  SchedulerStats counters_;

  mutable std::mutex inbox_mu_;  // what other threads touch while a step runs
  std::vector<std::unique_ptr<Sequence>> inbox_;
  std::vector<int64_t> cancels_;
  std::unordered_set<int64_t> live_;  // ids added and neither finished nor cancelled
  SchedulerStats snapshot_;
};

}  // namespace llmasos
