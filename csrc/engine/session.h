// One sequence being evaluated: its KV cache, the tokens it holds, and the C++ decode loop
// (prefill, then sample -> forward one token at a time). A new prompt reuses the longest prefix
// it shares with the tokens already in the cache.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/grammar.h"
#include "engine/json_constraint.h"
#include "engine/sampler.h"
#include "model/llama.h"

namespace llmasos {

struct GenerateOptions {
  int64_t max_tokens = 128;
  SamplingOptions sampling;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  // vLLM's min_tokens: end-of-generation tokens (unless ignore_eos) and stop_token_ids cannot be
  // drawn before this many tokens are generated. In [0, max_tokens].
  int64_t min_tokens = 0;
  // JSON mode (json_constraint.h): the output is one JSON object; it ends ("stop") when the object
  // closes, and EOS cannot come before that.
  bool json_object = false;
  // Structured outputs (json_schema.h): the output is the compact JSON this schema accepts, and
  // ends as JSON mode does. Set: json_object is not needed.
  std::shared_ptr<const JsonSchema> json_schema;
  // A GBNF grammar (grammar.h): the output is text its root derives; it ends ("stop") where
  // nothing more can follow, or with an end-of-generation token where the text is complete.
  // Not beside json_object or json_schema.
  std::shared_ptr<const Grammar> grammar;
  // Prompt lookup (Session::generate; the batched engine has SchedulerOptions::lookup_tokens
  // instead, for all its requests): each step also checks
  // up to this many drafted tokens (prompt_lookup.h) in the same forward pass. The output is the
  // same token for token; text that repeats its context (quoting, editing, extraction) comes
  // several tokens per pass. 0: off.
  int64_t lookup_tokens = 0;
};

// Whether `id` ends generation as a stop token: an end-of-generation token (unless ignore_eos) or
// one of stop_token_ids. Session::generate's rule, which the batched engine shares.
bool is_stop_token(const Tokenizer& tok, const GenerateOptions& opts, int32_t id);
// Throws InvalidArgumentError for options that ask for two constraints on the output at once,
// or a min_tokens outside [0, max_tokens].
void check_constraint(const GenerateOptions& opts);
// A sampler for opts.sampling that holds back opts' stop tokens until min_tokens are generated.
Sampler make_sampler(const Tokenizer& tok, const GenerateOptions& opts);

// The output constraint options ask for (JSON mode, a schema, a grammar; null: none), over the
// vocabularies each kind reads, built on first use. Thread-safe; Session and Scheduler hold one.
class ConstraintFactory {
 public:
  explicit ConstraintFactory(std::shared_ptr<Model> model) : model_(std::move(model)) {}
  std::unique_ptr<OutputConstraint> make(const GenerateOptions& opts);

 private:
  std::shared_ptr<Model> model_;
  std::mutex mu_;
  std::shared_ptr<const JsonVocab> json_vocab_;
  std::shared_ptr<const GrammarVocab> grammar_vocab_;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated tokens (without the prompt)
  std::vector<TokenLogprobs> logprobs;  // one per token when sampling.logprobs >= 0, else empty
  std::string finish_reason;    // "stop" (EOS, stop token or callback) or "length"
  int32_t stop_token = -1;      // the EOS / stop_token_ids token that ended it (not in tokens)
  int64_t drafted = 0;          // tokens taken from prompt-lookup drafts (no pass of their own)
  int64_t cached = 0;           // prompt tokens whose keys/values the session held from before
};

class Session {
 public:
  explicit Session(std::shared_ptr<Model> model);

  // Logits at every position of `ids` (evaluated from position 0): [ids.size()][n_vocab].
  std::vector<float> logits(const std::vector<int32_t>& ids);
  // The final-normed hidden state at every position of `ids` (from position 0; no output head):
  // [ids.size()][n_embd], what embeddings are pooled from.
  std::vector<float> hidden_states(const std::vector<int32_t>& ids);
  // The embedding of `ids`: hidden_states pooled (pooling 1 mean, 2 the first token, 3 the last; 0
  // the model's own, HParams::pooling) in double, divided by its L2 norm when `normalize` (a zero
  // vector stays zero), rounded to float: [n_embd].
  std::vector<float> embedding(const std::vector<int32_t>& ids, int pooling, bool normalize);

  // Scores `ids` as given text: for each i >= 1, token i's logprobs (sampler.h, token_logprobs)
  // under the logits after tokens 0..i-1, with the k most likely alternatives: ids.size() - 1
  // entries. The pass runs in chunks, so it holds a few rows of logits, never [T][n_vocab]; each
  // row is bit-identical to logits()'s (see Model::forward_batch).
  std::vector<TokenLogprobs> prompt_logprobs(const std::vector<int32_t>& ids, int32_t k);

  // Generates after `prompt`. `on_token(id)` is called for each new token; returning false stops
  // generation with finish_reason "stop" (used for stop strings and cancellation).
  GenerateResult generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                          const std::function<bool(int32_t)>& on_token);

  // Forget the cached tokens (the KV memory stays allocated for reuse).
  void reset() { cached_.clear(); }
  const std::shared_ptr<Model>& model() const { return model_; }

 private:
  // What a pass over ids from position 0 needs: at least one token, and no more than the context.
  void check_pass(const std::vector<int32_t>& ids, const char* what) const;
  // logits() or hidden_states(): one pass over ids from position 0, every row out.
  std::vector<float> whole_pass(const std::vector<int32_t>& ids, bool hidden);
  // Brings the cache to hold exactly `ids` (reusing a shared prefix); writes the last logits.
  // Returns how many of ids' keys/values it kept.
  int64_t prefill(const std::vector<int32_t>& ids, float* last_logits);

  std::shared_ptr<Model> model_;
  std::shared_ptr<ConstraintFactory> constraints_;  // (a pointer: a Session moves)
  KvCache kv_;
  std::vector<int32_t> cached_;  // tokens whose keys/values are in kv_
};

}  // namespace llmasos
