// Token sampling from logits: penalties, then greedy (temperature 0) or temperature + top-k +
// top-p + min-p filtering and a draw from a seeded generator (same seed, same tokens).
#pragma once
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace llmasos {

struct SamplingOptions {
  float temperature = 0.0f;        // 0: greedy
  int32_t top_k = 0;               // 0: off
  float top_p = 1.0f;              // 1: off
  float min_p = 0.0f;              // 0: off
  float repetition_penalty = 1.0f; // 1: off; >1 discourages tokens already seen (prompt + output)
  float presence_penalty = 0.0f;   // subtracted once from every token already generated
  float frequency_penalty = 0.0f;  // subtracted per occurrence in the generated tokens
  bool has_seed = false;
  uint64_t seed = 0;
  // OpenAI logit_bias: (token id, bias in [-100, 100]) added to the logits before anything else.
  std::vector<std::pair<int32_t, float>> logit_bias;

  // Throws InvalidArgumentError for NaN, negative or out-of-range values (token ids in logit_bias
  // are checked against the vocabulary by the sampler).
  void validate() const;
  // validate() plus: every logit_bias token id is a token of a vocabulary of n_vocab.
  void validate_for_vocab(int64_t n_vocab) const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& opts);

  // Picks the next token. `logits` (n_vocab, modified in place); `prompt` and `generated` feed
  // the penalties.
  int32_t sample(float* logits, int64_t n_vocab, const std::vector<int32_t>& prompt,
                 const std::vector<int32_t>& generated);

 private:
  SamplingOptions o_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;  // reused candidate buffer
};

}  // namespace llmasos
