// Pre-tokenizers of byte-level BPE models: split text into the pieces that BPE encodes one by
// one. Hand-written matchers reproduce the peers' regexes (first match at each position, same
// alternation order and backtracking) over Unicode classes, without a regex engine.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace llmasos {

enum class PreTokenizer {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  GPT2,
  // each \p{N} alone, then GPT2 on the text between (StarCoder, SmolLM: HF Digits + ByteLevel)
  DIGITS_GPT2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
  // \s*[\r\n]+|\s+(?!\S)|\s+
  LLAMA3,
  // LLAMA3 with \p{N} instead of \p{N}{1,3}
  QWEN2,
};

// Maps tokenizer.ggml.pre (as llama.cpp names them) to a pre-tokenizer. Unknown names give GPT2
// and set *known = false, so callers may warn.
PreTokenizer pre_tokenizer_from_name(std::string_view name, bool* known = nullptr);
const char* pre_tokenizer_name(PreTokenizer p);

// Appends the pieces of `text` (views into it, in order, covering every byte) to `pieces`.
// Invalid UTF-8 bytes are kept, each as its own character of class "other".
void pretokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& pieces);

}  // namespace llmasos
