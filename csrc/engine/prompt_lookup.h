// Prompt-lookup drafting (as llama-cpp-python's LlamaPromptLookupDecoding and vLLM's "ngram"
// speculation): the tokens that followed the most recent earlier occurrence of the text's last
// few tokens, proposed as its continuation. Session::generate checks them all in one forward pass.
#pragma once
#include <cstdint>
#include <vector>

namespace llmasos {

// Up to max_draft tokens: for n-gram sizes from kMaxNgram down to kMinNgram, the last n tokens of
// prompt ++ generated are looked for earlier in it (the latest match wins); the tokens after the
// match are the draft. Empty when nothing matches. 3 tokens at least: shorter matches are common
// in text that does not repeat its context ("of the"), and a wrong draft costs rows of a pass
// (bench/lookup.py: a story lost about 10% with 2-token matches, nothing measurable with 3).
std::vector<int32_t> prompt_lookup_draft(const std::vector<int32_t>& prompt, const std::vector<int32_t>& generated,
                                         int64_t max_draft);

constexpr int64_t kMaxNgram = 3, kMinNgram = 3;
// The most drafted tokens a pass may check (each is a row of logits: n_vocab floats).
constexpr int64_t kMaxLookupTokens = 64;

// The next draft length after a draft of `drafted` tokens of which `taken` were taken: halved
// (to 1 at least) when its first token was wrong, doubled (to max_len at most) when it was taken
// whole, else kept; so text that does not repeat its context pays for short drafts only.
inline int64_t next_draft_length(int64_t len, int64_t drafted, int64_t taken, int64_t max_len) {
  if (taken == 0) return len / 2 > 1 ? len / 2 : 1;
  if (taken == drafted) return 2 * len < max_len ? 2 * len : max_len;
  return len;
}

}  // namespace llmasos
