// Scheduler: one step = drain the inbox, schedule (running sequences first, in admission order,
// then waiting ones FIFO), one forward_batch, per-sequence sampling and stop checks, outputs.
// The stop rules are Session::generate's, so a request gives the same tokens here as there.
#include "engine/scheduler.h"

#include <algorithm>
#include <string>

#include "engine/prompt_lookup.h"
#include "llmasos/errors.hpp"

namespace llmasos {

struct Scheduler::Sequence {
  Sequence(int64_t id_, std::vector<int32_t> prompt_, const GenerateOptions& o, const Tokenizer& tok)
      : id(id_), prompt(std::move(prompt_)), opts(o), sampler(make_sampler(tok, o)) {
    tokens = prompt;
  }
  int64_t id;
  std::vector<int32_t> prompt, generated;
  std::vector<int32_t> tokens;  // prompt + generated: what the KV cache must come to hold
  GenerateOptions opts;
  Sampler sampler;
  std::unique_ptr<OutputConstraint> constraint;  // the output's (JSON mode, a schema, a grammar), or null
  KvBlockTable table;
  int64_t n_computed = 0;  // positions whose keys/values are in table
  int64_t cached = -1;     // prompt tokens found in the prefix cache at its first admission
  int64_t k_now = 0;       // prompt lookup's draft length now (next_draft_length; 0: not begun)
  int64_t len() const { return static_cast<int64_t>(tokens.size()); }
};

namespace {

int64_t pool_blocks(const Model& m, const SchedulerOptions& o) {
  const HParams& hp = m.hparams();
  if (o.kv_cache_bytes < 0) throw InvalidArgumentError("kv_cache_bytes must not be negative");
  if (o.max_batch_tokens <= 0) throw InvalidArgumentError("max_batch_tokens must be positive");
  if (o.max_seqs <= 0) throw InvalidArgumentError("max_seqs must be positive");
  if (o.kv_cache_bytes == 0) return PagedKvCache::blocks_for_tokens(4 * m.n_ctx());
  const int64_t n = PagedKvCache::blocks_for_bytes(o.kv_cache_bytes, hp.n_layer, hp.n_head_kv, hp.head_dim, m.kv_type());
  if (n < 1)
    throw InvalidArgumentError("kv_cache_bytes " + std::to_string(o.kv_cache_bytes) +
                               " is smaller than one KV block (" +
                               std::to_string(PagedKvCache::bytes_per_block(hp.n_layer, hp.n_head_kv, hp.head_dim, m.kv_type())) + " bytes)");
  return n;
}

}  // namespace

Scheduler::Scheduler(std::shared_ptr<Model> model, const SchedulerOptions& opts)
    : model_(std::move(model)),
      opts_(opts),
      constraints_(model_),
      n_ctx_(model_->n_ctx()),
      n_vocab_(model_->hparams().n_vocab),
      kv_(model_->hparams().n_layer, model_->hparams().n_head_kv, model_->hparams().head_dim, model_->kv_type(),
          pool_blocks(*model_, opts)) {
  const HParams& hp = model_->hparams();
  counters_.kv_cache_bytes = kv_.n_blocks() * PagedKvCache::bytes_per_block(hp.n_layer, hp.n_head_kv, hp.head_dim, model_->kv_type());
  counters_.max_batch_tokens = opts_.max_batch_tokens;
  counters_.max_seqs = opts_.max_seqs;
  std::lock_guard<std::mutex> lock(mu_);
  publish_stats();
}

Scheduler::~Scheduler() = default;

void Scheduler::add_request(int64_t id, std::vector<int32_t> prompt, const GenerateOptions& opts) {
  if (prompt.empty()) throw InvalidArgumentError("the prompt is empty");
  for (int32_t t : prompt)
    if (t < 0 || t >= n_vocab_)
      throw InvalidArgumentError("token id " + std::to_string(t) + " is out of range [0, " +
                                 std::to_string(n_vocab_) + ")");
  const int64_t P = static_cast<int64_t>(prompt.size());
  if (P >= n_ctx_)
    throw InvalidArgumentError("the prompt has " + std::to_string(P) +
                               " tokens, which does not fit the context size " + std::to_string(n_ctx_) +
                               " (with room for at least one generated token)");
  if (PagedKvCache::blocks_for_tokens(P) > kv_.n_blocks())
    throw InvalidArgumentError("the prompt has " + std::to_string(P) + " tokens, more than the KV pool holds (" +
                               std::to_string(kv_.n_blocks() * PagedKvCache::kBlockTokens) + ")");
  if (opts.max_tokens <= 0) throw InvalidArgumentError("max_tokens must be positive");
  opts.sampling.validate_for_vocab(n_vocab_);
  check_constraint(opts);
  auto seq = std::make_unique<Sequence>(id, std::move(prompt), opts, model_->tokenizer());  // validates the sampling options
  seq->constraint = constraints_.make(opts);
  std::lock_guard<std::mutex> lock(inbox_mu_);
  if (!live_.insert(id).second)
    throw InvalidArgumentError("request id " + std::to_string(id) + " is already in use");
  inbox_.push_back(std::move(seq));
  ++snapshot_.waiting;
}

bool Scheduler::cancel(int64_t id) {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    if (!live_.erase(id)) return false;
    auto it = std::find_if(inbox_.begin(), inbox_.end(), [&](const auto& s) { return s->id == id; });
    if (it != inbox_.end()) {  // never admitted: nothing to free
      inbox_.erase(it);
      --snapshot_.waiting;
      return true;
    }
    cancels_.push_back(id);
  }
  apply_cancels();
  return true;
}

void Scheduler::apply_cancels() {
  // Whoever holds mu_ calls this after letting go, so a cancel queued meanwhile is never left
  // waiting for a later step.
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      if (cancels_.empty()) return;
    }
    std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) return;  // a step (or cancel) is running and will apply them
    drain_inbox();
    publish_stats();
  }
}

bool Scheduler::has_unfinished() const {
  std::lock_guard<std::mutex> lock(inbox_mu_);
  return !live_.empty();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(inbox_mu_);
  return snapshot_;
}

void Scheduler::reset_prefix_cache() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    kv_.reset_prefix_cache();
    publish_stats();
  }
  apply_cancels();
}

void Scheduler::drain_inbox() {
  std::vector<std::unique_ptr<Sequence>> adds;
  std::vector<int64_t> cancels;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    adds.swap(inbox_);
    cancels.swap(cancels_);
  }
  // Cancels first: they name sequences admitted earlier (queued ones are removed by cancel()),
  // and a new request may already reuse the id.
  for (int64_t id : cancels) {
    auto match = [&](const std::unique_ptr<Sequence>& s) { return s->id == id; };
    auto r = std::find_if(running_.begin(), running_.end(), match);
    if (r != running_.end()) {
      drop(**r);
      running_.erase(r);
      ++counters_.cancelled;
      continue;
    }
    auto w = std::find_if(waiting_.begin(), waiting_.end(), match);
    if (w != waiting_.end()) {
      drop(**w);
      waiting_.erase(w);
      ++counters_.cancelled;
    }
  }
  for (auto& s : adds) waiting_.push_back(std::move(s));
}

void Scheduler::drop(Sequence& s) { kv_.release(s.table); }

void Scheduler::preempt(Sequence& s) {
  kv_.release(s.table);  // its full blocks stay cached: recomputing may find them again
  s.n_computed = 0;
  ++counters_.preemptions;
}

void Scheduler::publish_stats() {
  SchedulerStats s = counters_;
  s.running = static_cast<int64_t>(running_.size());
  s.kv = kv_.stats();
  std::lock_guard<std::mutex> lock(inbox_mu_);
  s.waiting = static_cast<int64_t>(waiting_.size() + inbox_.size());
  snapshot_ = s;
}

std::vector<StepOutput> Scheduler::step() {
  std::vector<StepOutput> outputs = step_locked();
  apply_cancels();  // those that arrived while the step ran: freed now, not at the next step
  return outputs;
}

std::vector<StepOutput> Scheduler::step_locked() {
  std::lock_guard<std::mutex> lock(mu_);
  drain_inbox();
  std::vector<StepOutput> outputs;

  // 1. Schedule: running sequences keep going (oldest first); when the pool runs out the youngest
  //    running sequence is preempted. Then waiting requests are admitted FIFO while budget lasts.
  struct Item {
    Sequence* s;
    int64_t n_new;
    std::vector<int32_t> draft;  // prompt lookup: tokens fed after the n_new ones, checked by sampling
    int64_t row0 = 0;            // its first logits row, when it has rows
  };
  std::vector<Item> batch;
  int64_t budget = opts_.max_batch_tokens;
  bool preempted = false;
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence& s = *running_[i];
    const int64_t n_new = std::min(s.len() - s.n_computed, budget);
    bool scheduled = true;
    while (!kv_.reserve(s.table, s.n_computed + n_new)) {
      preempted = true;
      if (running_.size() - 1 > i) {  // preempt the youngest other sequence
        preempt(*running_.back());
        waiting_.push_front(std::move(running_.back()));
        running_.pop_back();
        continue;
      }
      scheduled = false;
      if (i == 0) {  // alone and still too large for the whole pool: end it
        StepOutput o;
        o.request_id = s.id;
        o.cached_tokens = std::max<int64_t>(s.cached, 0);
        o.finished = true;
        o.finish_reason = "length";
        outputs.push_back(std::move(o));
        drop(s);
        running_.erase(running_.begin());
        ++counters_.finished;
      } else {
        preempt(s);
        waiting_.push_front(std::move(running_.back()));
        running_.pop_back();
      }
      break;
    }
    if (!scheduled) break;
    batch.push_back({&s, n_new, {}});
    budget -= n_new;
    ++i;
  }
  while (!preempted && budget > 0 && !waiting_.empty() &&
         static_cast<int64_t>(running_.size()) < opts_.max_seqs) {
    Sequence& s = *waiting_.front();
    // The last token is always computed: its logits give the next token.
    s.n_computed = kv_.match_prefix(s.tokens.data(), s.len() - 1, s.table);
    const int64_t n_new = std::min(s.len() - s.n_computed, budget);
    if (!kv_.reserve(s.table, s.n_computed + n_new)) {
      kv_.release(s.table);
      s.n_computed = 0;
      break;
    }
    kv_.record_prefix((s.len() - 1) / PagedKvCache::kBlockTokens, s.n_computed / PagedKvCache::kBlockTokens);
    if (s.cached < 0) s.cached = s.n_computed;  // (a preempted sequence's recompute is not the request's)
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    batch.push_back({&s, n_new, {}});
    budget -= n_new;
  }
  // Prompt lookup, with what is left once every real token is scheduled: a decoding sequence
  // (its last token pending) also feeds a draft where the budget, its max_tokens, the context and
  // the free blocks allow (evicting no cached prefix; none in a step that preempted or left a
  // request waiting), and hands a rejected draft's blocks back at once: reserving a draft never
  // preempts, delays or evicts anything.
  if (opts_.lookup_tokens > 0 && static_cast<int64_t>(running_.size()) <= SchedulerOptions::kLookupMaxSeqs &&
      !preempted && waiting_.empty()) {
    for (Item& it : batch) {
      Sequence& s = *it.s;
      if (budget <= 0) break;
      if (it.n_new != 1 || s.n_computed + 1 != s.len() || s.generated.empty()) continue;
      if (s.k_now == 0) s.k_now = opts_.lookup_tokens;
      const int64_t room = std::min({s.k_now, budget, s.opts.max_tokens - static_cast<int64_t>(s.generated.size()) - 1,
                                     n_ctx_ - s.len()});
      if (room <= 0) continue;
      it.draft = prompt_lookup_draft(s.prompt, s.generated, room);
      if (!it.draft.empty() && !kv_.reserve(s.table, s.len() + static_cast<int64_t>(it.draft.size()), false))
        it.draft.clear();
      budget -= static_cast<int64_t>(it.draft.size());
    }
  }

  if (!batch.empty()) {
    // 2. One forward pass over every scheduled token.
    std::vector<int32_t> tokens, seq;
    std::vector<int64_t> pos, rows, n_pages;
    std::vector<const int32_t*> pages;
    for (size_t k = 0; k < batch.size(); ++k) {
      Item& it = batch[k];
      const Sequence& s = *it.s;
      for (int64_t j = 0; j < it.n_new; ++j) {
        tokens.push_back(s.tokens[static_cast<size_t>(s.n_computed + j)]);
        seq.push_back(static_cast<int32_t>(k));
        pos.push_back(s.n_computed + j);
      }
      if (s.n_computed + it.n_new == s.len()) {
        it.row0 = static_cast<int64_t>(rows.size());
        rows.push_back(static_cast<int64_t>(tokens.size()) - 1);
        for (size_t j = 0; j < it.draft.size(); ++j) {  // a row after each drafted token too
          tokens.push_back(it.draft[j]);
          seq.push_back(static_cast<int32_t>(k));
          pos.push_back(s.len() + static_cast<int64_t>(j));
          rows.push_back(static_cast<int64_t>(tokens.size()) - 1);
        }
      }
      pages.push_back(s.table.blocks.data());
      n_pages.push_back(static_cast<int64_t>(s.table.blocks.size()));
    }
    logits_.resize(rows.size() * static_cast<size_t>(n_vocab_));
    ForwardBatch b;
    b.tokens = tokens.data();
    b.seq = seq.data();
    b.pos = pos.data();
    b.n_tokens = static_cast<int64_t>(tokens.size());
    b.seq_pages = pages.data();
    b.seq_n_pages = n_pages.data();
    b.n_seqs = static_cast<int64_t>(batch.size());
    b.logit_rows = rows.data();
    b.n_logit_rows = static_cast<int64_t>(rows.size());
    b.logits = logits_.data();
    model_->forward_batch(b, kv_.store());
    ++counters_.steps;

    // 3. Per sequence: commit its full blocks to the prefix cache; sample where a row is ready
    //    (in parallel: every sequence has its own sampler and logits rows).
    std::vector<const Item*> ready;
    for (const Item& it : batch) {
      Sequence& s = *it.s;
      const int64_t P = static_cast<int64_t>(s.prompt.size());
      counters_.prompt_tokens += std::max<int64_t>(0, std::min(s.n_computed + it.n_new, P) - s.n_computed);
      s.n_computed += it.n_new;
      counters_.tokens_processed += it.n_new + static_cast<int64_t>(it.draft.size());
      kv_.commit(s.table, s.tokens.data(), s.n_computed);
      if (s.n_computed == s.len()) ready.push_back(&it);  // else its prefill continues next step
    }
    auto row = [&](int64_t r) { return logits_.data() + static_cast<size_t>(r) * static_cast<size_t>(n_vocab_); };
    std::vector<int32_t> sampled(ready.size());
    std::vector<TokenLogprobs> lps(ready.size());
    model_->pool().parallel_for(static_cast<int64_t>(ready.size()), 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const Item& it = *ready[static_cast<size_t>(r)];
        Sequence& s = *it.s;
        sampled[static_cast<size_t>(r)] =
            s.sampler.sample(row(it.row0), n_vocab_, s.prompt, s.generated, &lps[static_cast<size_t>(r)], s.constraint.get());
      }
    });
    const Tokenizer& tok = model_->tokenizer();
    std::vector<Sequence*> finished;
    // Takes token id (its logprobs lp) for s into o, with Session::generate's stop rules: false
    // once s has finished.
    auto take = [&](Sequence& s, int32_t id, TokenLogprobs& lp, StepOutput& o) -> bool {
      if (id < 0) {  // the constraint let no token through (a vocabulary without the needed bytes)
        o.finished = true;
        o.finish_reason = "length";
      } else if (is_stop_token(tok, s.opts, id)) {
        o.finished = true;
        o.finish_reason = "stop";
        o.stop_token = id;
        if (s.sampler.wants_logprobs()) o.logprobs.push_back(std::move(lp));
      } else {
        s.generated.push_back(id);
        s.tokens.push_back(id);
        o.new_tokens.push_back(id);
        if (s.sampler.wants_logprobs()) o.logprobs.push_back(std::move(lp));
        ++counters_.generated_tokens;
        const int64_t G = static_cast<int64_t>(s.generated.size());
        if (s.constraint) s.constraint->advance_or_throw(id);
        if (s.constraint && s.constraint->done()) {  // the JSON object (or the grammar's text) is complete
          o.finished = true;
          o.finish_reason = "stop";
        } else if (G >= s.opts.max_tokens || s.len() - 1 >= n_ctx_) {
          // As Session::generate: max_tokens reached, or no position left for the new token.
          o.finished = true;
          o.finish_reason = "length";
        }
      }
      return !o.finished;
    };
    for (size_t r = 0; r < ready.size(); ++r) {
      const Item& it = *ready[r];
      Sequence& s = *it.s;
      StepOutput o;
      o.request_id = s.id;
      o.cached_tokens = s.cached;
      bool more = take(s, sampled[r], lps[r], o);
      // Prompt lookup: while the token taken is the draft's next, that token's keys and values
      // are in the cache already and the next row follows it. Rows are bit-identical to one-token
      // steps and the sampler draws in order, so the tokens are those of plain steps.
      size_t taken = 0;
      while (more && taken < it.draft.size() && s.generated.back() == it.draft[taken]) {
        ++s.n_computed;
        ++taken;
        TokenLogprobs lp;
        const int32_t id = s.sampler.sample(row(it.row0 + static_cast<int64_t>(taken)), n_vocab_, s.prompt,
                                            s.generated, &lp, s.constraint.get());
        more = take(s, id, lp, o);
      }
      if (!it.draft.empty()) {
        counters_.drafted += static_cast<int64_t>(taken);
        kv_.commit(s.table, s.tokens.data(), s.n_computed);
        kv_.truncate(s.table, s.len());
        s.k_now = next_draft_length(s.k_now, static_cast<int64_t>(it.draft.size()), static_cast<int64_t>(taken),
                                    opts_.lookup_tokens);
      }
      if (o.finished) finished.push_back(&s);
      outputs.push_back(std::move(o));
    }
    for (Sequence* s : finished) {
      drop(*s);
      ++counters_.finished;
      running_.erase(std::find_if(running_.begin(), running_.end(),
                                  [&](const auto& p) { return p.get() == s; }));
    }
  }

  // 4. Report only requests not cancelled meanwhile; finished ones leave the live set.
  {
    std::lock_guard<std::mutex> ilock(inbox_mu_);
    std::vector<StepOutput> kept;
    for (auto& o : outputs) {
      // Cancelled meanwhile (a pending cancel means the id, if live, is a newer request's).
      if (!live_.count(o.request_id) ||
          std::find(cancels_.begin(), cancels_.end(), o.request_id) != cancels_.end())
        continue;
      if (o.finished) live_.erase(o.request_id);
      kept.push_back(std::move(o));
    }
    outputs.swap(kept);
  }
  drain_inbox();
  publish_stats();
  return outputs;
}

}  // namespace llmasos
