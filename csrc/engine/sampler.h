// Token sampling from logits: penalties, then greedy (temperature 0) or temperature + top-k +
// top-p + min-p filtering and a draw from a seeded generator (same seed, same tokens). On request,
// also the sampled token's log-probability and the top-k alternatives (OpenAI / vLLM logprobs).
#pragma once
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace llmasos {

class OutputConstraint;

struct SamplingOptions {
  float temperature = 0.0f;        // 0: greedy
  int32_t top_k = 0;               // 0: off
  float top_p = 1.0f;              // 1: off
  float min_p = 0.0f;              // 0: off
  float repetition_penalty = 1.0f; // 1: off; >1 discourages tokens already seen (prompt + output)
  // The tokens repetition_penalty looks at: 0 all of prompt + output (HF, vLLM), n > 0 the last n
  // of them (llama.cpp's repeat_last_n).
  int32_t repetition_last_n = 0;
  float presence_penalty = 0.0f;   // subtracted once from every token already generated
  float frequency_penalty = 0.0f;  // subtracted per occurrence in the generated tokens
  bool has_seed = false;
  uint64_t seed = 0;
  // OpenAI logit_bias: (token id, bias in [-100, 100]) added to the logits before anything else.
  std::vector<std::pair<int32_t, float>> logit_bias;
  // vLLM's allowed_token_ids: when not empty, only these tokens can be drawn.
  std::vector<int32_t> allowed_token_ids;
  // Logprobs: -1 off (nothing computed); 0 only the sampled token's; k in (0, kMaxLogprobs] also
  // the k most likely tokens. As vLLM and OpenAI: log-softmax of the model's raw logits, before
  // logit_bias, penalties and temperature, so they describe the model, not the sampling settings.
  static constexpr int32_t kMaxLogprobs = 20;
  int32_t logprobs = -1;

  // Throws InvalidArgumentError for NaN, negative or out-of-range values (token ids in logit_bias
  // are checked against the vocabulary by the sampler).
  void validate() const;
  // validate() plus: every logit_bias token id is a token of a vocabulary of n_vocab.
  void validate_for_vocab(int64_t n_vocab) const;
};

// The log-probabilities of one sampled token: its own, its rank (1 = most likely) and the top
// alternatives, most likely first (ties: lower id first). Natural log, float from a double sum.
struct TokenLogprobs {
  float logprob = 0.0f;
  int32_t rank = 0;
  std::vector<std::pair<int32_t, float>> top;  // (token id, logprob), size min(k, n_vocab)
};

// The log-probabilities of `token` under one row of raw logits (n_vocab), with the k most likely
// alternatives: what Sampler::sample reports for a token it picked from that row. For scoring
// given text (a prompt's own tokens).
TokenLogprobs token_logprobs(const float* logits, int64_t n_vocab, int32_t token, int32_t k);

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& opts);

  // Picks the next token. `logits` (n_vocab, modified in place); `prompt` and `generated` feed
  // the penalties. When the options ask for logprobs and `lp` is given, fills it for the token.
  // With `constraint` (JSON mode, a schema, a grammar), only the tokens it allows can be drawn
  // (logprobs still describe the model's own distribution); -1 when it allows none.
  int32_t sample(float* logits, int64_t n_vocab, const std::vector<int32_t>& prompt,
                 const std::vector<int32_t>& generated, TokenLogprobs* lp = nullptr,
                 const OutputConstraint* constraint = nullptr);
  bool wants_logprobs() const { return o_.logprobs >= 0; }
  // Until `generated` holds `until` tokens, `ids` (end tokens: min_tokens) cannot be drawn.
  void hold_ends(int64_t until, std::vector<int32_t> ids) {
    hold_until_ = until;
    hold_ids_ = std::move(ids);
  }

 private:
  int32_t pick(float* logits, int64_t n_vocab, const std::vector<int32_t>& prompt,
               const std::vector<int32_t>& generated);
  // id when JSON mode's mask left it in, else the best token it left in (-1: none).
  static int32_t allowed(int32_t id, const float* logits, int64_t n_vocab);
  // The temperature draw (sampler.cc) from finite-or-masked logits whose largest is at i_top.
  int32_t draw(const float* logits, int64_t n_vocab, int64_t i_top);
  int32_t draw_all(const float* logits, int64_t n_vocab, int64_t i_top);
  void select_top_k(const float* logits, int64_t n_vocab, size_t k);
  // Appends to cand_, in id order, every unmasked token of weight (w_) > 0 and >= from.
  void collect(const float* logits, int64_t n_vocab, float from);

  SamplingOptions o_;
  std::vector<uint8_t> allowed_;  // allowed_token_ids as a flag per token, made on first use
  int64_t hold_until_ = 0;
  std::vector<int32_t> hold_ids_;
  std::mt19937_64 rng_;
  struct Cand {
    float x;   // logit (after bias and penalties)
    float w;   // proportional to exp((x - max) / temperature)
    int32_t id;
  };
  // The candidates' order: logit descending, lower id first among equals.
  static bool better(const Cand& a, const Cand& b) { return a.x > b.x || (a.x == b.x && a.id < b.id); }
  std::vector<Cand> cand_;  // reused candidate buffer
  std::vector<float> raw_;                        // raw logits, kept when logprobs need them
  std::vector<float> w_;                          // every token's weight (no top-k)
};

}  // namespace llmasos
