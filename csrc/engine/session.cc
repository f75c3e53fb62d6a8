// Session: prefix-reusing prefill and the decode loop, entirely in C++.
#include "engine/session.h"

#include <algorithm>
#include <cmath>

#include "engine/prompt_lookup.h"
#include "llmasos/errors.hpp"

namespace llmasos {

bool is_stop_token(const Tokenizer& tok, const GenerateOptions& opts, int32_t id) {
  return (!opts.ignore_eos && tok.is_eog(id)) ||
         std::find(opts.stop_token_ids.begin(), opts.stop_token_ids.end(), id) != opts.stop_token_ids.end();
}

void check_constraint(const GenerateOptions& opts) {
  if (opts.grammar && (opts.json_object || opts.json_schema))
    throw InvalidArgumentError("give a grammar or JSON mode / a JSON schema, not both");
  if (opts.min_tokens < 0 || opts.min_tokens > opts.max_tokens)
    throw InvalidArgumentError("min_tokens must be in [0, max_tokens], got " + std::to_string(opts.min_tokens));
}

Sampler make_sampler(const Tokenizer& tok, const GenerateOptions& opts) {
  Sampler s(opts.sampling);
  if (opts.min_tokens > 0) {
    std::vector<int32_t> ends = opts.stop_token_ids;
    if (!opts.ignore_eos)
      for (int32_t i = 0; i < tok.n_vocab(); ++i)
        if (tok.is_eog(i)) ends.push_back(i);
    s.hold_ends(opts.min_tokens, std::move(ends));
  }
  return s;
}

std::unique_ptr<OutputConstraint> ConstraintFactory::make(const GenerateOptions& opts) {
  if (!opts.grammar && !opts.json_object && !opts.json_schema) return nullptr;
  std::unique_lock<std::mutex> lock(mu_);
  if (opts.grammar) {
    if (!grammar_vocab_) grammar_vocab_ = std::make_shared<GrammarVocab>(model_->tokenizer());
    std::shared_ptr<const GrammarVocab> vocab = grammar_vocab_;
    lock.unlock();
    return std::make_unique<GrammarConstraint>(std::move(vocab), opts.grammar, !opts.ignore_eos);
  }
  if (!json_vocab_) json_vocab_ = std::make_shared<JsonVocab>(model_->tokenizer());
  std::shared_ptr<const JsonVocab> vocab = json_vocab_;
  lock.unlock();
  return std::make_unique<JsonConstraint>(std::move(vocab), opts.json_schema, !opts.ignore_eos);
}

Session::Session(std::shared_ptr<Model> model)
    : model_(std::move(model)), constraints_(std::make_shared<ConstraintFactory>(model_)), kv_(model_->new_kv_cache()) {}

std::vector<float> Session::logits(const std::vector<int32_t>& ids) { return whole_pass(ids, false); }

std::vector<float> Session::hidden_states(const std::vector<int32_t>& ids) { return whole_pass(ids, true); }

std::vector<float> Session::embedding(const std::vector<int32_t>& ids, int pooling, bool normalize) {
  if (pooling < 0 || pooling > 3)
    throw InvalidArgumentError("pooling must be 0 (the model's), 1 (mean), 2 (first) or 3 (last)");
  if (pooling == 0) pooling = model_->hparams().pooling;
  const std::vector<float> h = hidden_states(ids);
  const size_t E = static_cast<size_t>(model_->hparams().n_embd), T = ids.size();
  std::vector<double> v(E, 0.0);
  if (pooling == 1) {
    for (size_t t = 0; t < T; ++t)
      for (size_t e = 0; e < E; ++e) v[e] += h[t * E + e];
    for (double& x : v) x /= static_cast<double>(T);
  } else {
    const size_t t = pooling == 2 ? 0 : T - 1;
    for (size_t e = 0; e < E; ++e) v[e] = h[t * E + e];
  }
  if (normalize) {
    double ss = 0.0;
    for (double x : v) ss += x * x;
    if (ss > 0.0) {
      const double norm = std::sqrt(ss);
      for (double& x : v) x /= norm;
    }
  }
  return std::vector<float>(v.begin(), v.end());
}

void Session::check_pass(const std::vector<int32_t>& ids, const char* what) const {
  if (ids.empty()) throw InvalidArgumentError(std::string(what) + "() needs at least one token");
  if (static_cast<int64_t>(ids.size()) > model_->n_ctx())
    throw InvalidArgumentError(std::to_string(ids.size()) + " tokens exceed the context size " +
                               std::to_string(model_->n_ctx()));
}

std::vector<TokenLogprobs> Session::prompt_logprobs(const std::vector<int32_t>& ids, int32_t k) {
  check_pass(ids, "prompt_logprobs");
  if (k < 0 || k > SamplingOptions::kMaxLogprobs)
    throw InvalidArgumentError("logprobs must be in [0, " + std::to_string(SamplingOptions::kMaxLogprobs) +
                               "], got " + std::to_string(k));
  const int64_t T = static_cast<int64_t>(ids.size()), V = model_->hparams().n_vocab;
  for (int32_t id : ids)  // (token_logprobs would throw inside the pool)
    if (id < 0 || id >= V) throw InvalidArgumentError("token id " + std::to_string(id) + " is outside the vocabulary");
  // Chunks of up to 256 positions whose logits fit in 64 MiB (64 rows of a 262k vocabulary).
  const int64_t chunk = std::clamp<int64_t>((int64_t{64} << 20) / (4 * V), 1, 256);
  std::vector<float> rows(static_cast<size_t>(std::min(chunk, T) * V));
  std::vector<TokenLogprobs> out(static_cast<size_t>(T - 1));
  cached_.clear();
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t n = std::min(chunk, T - t0);
    model_->forward(ids.data() + t0, n, t0, kv_, rows.data(), true, nullptr);
    // Row r holds the logits after position t0 + r, which score token t0 + r + 1.
    const int64_t scored = std::min(n, T - 1 - t0);
    model_->pool().parallel_for(scored, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        out[static_cast<size_t>(t0 + r)] = token_logprobs(rows.data() + r * V, V, ids[static_cast<size_t>(t0 + r + 1)], k);
    });
  }
  cached_ = ids;
  return out;
}

std::vector<float> Session::whole_pass(const std::vector<int32_t>& ids, bool hidden) {
  check_pass(ids, hidden ? "hidden_states" : "logits");
  const int64_t W = hidden ? model_->hparams().n_embd : model_->hparams().n_vocab;
  std::vector<float> out(ids.size() * static_cast<size_t>(W));
  cached_.clear();
  model_->forward(ids.data(), static_cast<int64_t>(ids.size()), 0, kv_, hidden ? nullptr : out.data(), true,
                  hidden ? out.data() : nullptr);
  cached_ = ids;
  return out;
}

int64_t Session::prefill(const std::vector<int32_t>& ids, float* last_logits) {
  // Reuse the shared prefix but always recompute at least the last token to get its logits.
  size_t keep = 0;
  const size_t limit = ids.size() - 1;
  while (keep < limit && keep < cached_.size() && cached_[keep] == ids[keep]) ++keep;
  cached_.resize(keep);
  model_->forward(ids.data() + keep, static_cast<int64_t>(ids.size() - keep), static_cast<int64_t>(keep),
                  kv_, last_logits, false);
  cached_ = ids;
  return static_cast<int64_t>(keep);
}

GenerateResult Session::generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                                 const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) throw InvalidArgumentError("the prompt is empty");
  if (opts.max_tokens <= 0) throw InvalidArgumentError("max_tokens must be positive");
  opts.sampling.validate_for_vocab(model_->hparams().n_vocab);
  const int64_t n_ctx = model_->n_ctx();
  if (static_cast<int64_t>(prompt.size()) >= n_ctx)
    throw InvalidArgumentError("the prompt has " + std::to_string(prompt.size()) +
                               " tokens, which does not fit the context size " + std::to_string(n_ctx) +
                               " (with room for at least one generated token)");
  const Tokenizer& tok = model_->tokenizer();
  const int64_t V = model_->hparams().n_vocab;
  check_constraint(opts);
  Sampler sampler = make_sampler(tok, opts);
  const std::unique_ptr<OutputConstraint> constraint = constraints_->make(opts);
  if (opts.lookup_tokens < 0 || opts.lookup_tokens > kMaxLookupTokens)
    throw InvalidArgumentError("lookup_tokens must be in [0, " + std::to_string(kMaxLookupTokens) + "]");
  // No draft is ever longer than the tokens left to generate or the positions left.
  const int64_t K = std::max<int64_t>(0, std::min({opts.lookup_tokens, opts.max_tokens - 1,
                                                   n_ctx - static_cast<int64_t>(prompt.size()) - 1}));
  // rows: the logits after each fed token, K + 1 rows when a draft is checked.
  std::vector<float> rows(static_cast<size_t>((K + 1) * V));
  GenerateResult res;
  res.finish_reason = "length";
  res.cached = prefill(prompt, rows.data());

  // Samples from one row of logits and takes the token: false once generation is over.
  auto take = [&](float* row) -> bool {
    TokenLogprobs lp;
    const int32_t id = sampler.sample(row, V, prompt, res.tokens, &lp, constraint.get());
    if (id < 0) return false;  // constrained, no token fits (a vocabulary without the needed bytes): "length"
    if (is_stop_token(tok, opts, id)) {
      res.finish_reason = "stop";
      res.stop_token = id;
      return false;
    }
    res.tokens.push_back(id);
    if (sampler.wants_logprobs()) res.logprobs.push_back(std::move(lp));
    if (on_token && !on_token(id)) {
      res.finish_reason = "stop";
      return false;
    }
    if (constraint) {
      constraint->advance_or_throw(id);
      if (constraint->done()) {  // the object (or the grammar's text) is complete
        res.finish_reason = "stop";
        return false;
      }
    }
    return static_cast<int64_t>(res.tokens.size()) < opts.max_tokens;  // else "length"
  };

  // Each round feeds the last token taken, plus (prompt lookup) a draft of the tokens that may
  // follow it, in one forward pass; then takes tokens from the rows in order while each equals
  // the draft's next one. Row i's logits are bit-identical to those of a pass over that token
  // alone (Model::forward_batch), and the sampler draws in the same order, so the tokens are
  // those of plain one-token steps, greedy or seeded; a wrong draft costs only its rows.
  if (!take(rows.data())) return res;
  int64_t k_now = K;  // the draft length now (next_draft_length)
  for (;;) {
    const int64_t pos = static_cast<int64_t>(cached_.size());  // where the last token goes
    if (pos >= n_ctx) break;  // context full: "length"
    const int64_t room = std::min(opts.max_tokens - static_cast<int64_t>(res.tokens.size()) - 1, n_ctx - pos - 1);
    std::vector<int32_t> feed{res.tokens.back()};
    if (K > 0 && room > 0) {
      const std::vector<int32_t> draft = prompt_lookup_draft(prompt, res.tokens, std::min(k_now, room));
      feed.insert(feed.end(), draft.begin(), draft.end());
    }
    const int64_t n = static_cast<int64_t>(feed.size());
    model_->forward(feed.data(), n, pos, kv_, rows.data(), n > 1);
    cached_.push_back(feed[0]);
    bool more = true;
    int64_t taken = 0;  // draft tokens taken this round
    for (int64_t i = 0; i < n && more; ++i) {
      more = take(rows.data() + i * V);
      // The token taken is the draft's next: its keys and values are already in the cache, and
      // the next row follows it. Else the round ends with it, to be fed next.
      if (!more || i + 1 == n || res.tokens.back() != feed[static_cast<size_t>(i + 1)]) break;
      cached_.push_back(feed[static_cast<size_t>(i + 1)]);
      ++taken;
    }
    res.drafted += taken;
    if (n > 1) k_now = next_draft_length(k_now, n - 1, taken, K);
    if (!more) break;
  }
  return res;
}

}  // namespace llmasos
