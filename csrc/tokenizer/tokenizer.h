// Tokenizers built from GGUF metadata: byte-level BPE (tokenizer.ggml.model = "gpt2", the
// pre-tokenizer split chosen by tokenizer.ggml.pre) and SentencePiece-style ("llama": scores +
// byte fallback). Decoding never emits a broken UTF-8 character (StreamDecoder for token-by-token).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llmasos {

class GgufFile;

// Token attribute, as in tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  UNDEFINED = 0, NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6,
};

// Everything a tokenizer needs, read from GGUF metadata (validated by from_gguf).
struct TokenizerSpec {
  std::string model;                 // "gpt2" or "llama"
  std::string pre;                   // pre-tokenizer name for gpt2 ("default" if absent)
  std::vector<std::string> tokens;
  std::vector<float> scores;         // may be empty for gpt2
  std::vector<int32_t> token_types;  // may be empty: all NORMAL
  std::vector<std::string> merges;   // gpt2 only: "a b" pairs, rank = index
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1, eot_id = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;

  // Reads and validates tokenizer.ggml.* keys; throws ModelFormatError on wrong types/lengths.
  static TokenizerSpec from_gguf(const GgufFile& f);
};

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerSpec spec);  // throws ModelFormatError on inconsistent specs
  ~Tokenizer();

  // Text -> ids. add_bos adds the BOS token (if the model has one). With special=true, text that
  // spells a CONTROL/USER_DEFINED token (e.g. "<|im_start|>") becomes that token; otherwise it is
  // tokenized as plain text.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool special) const;
  // Ids -> text. Invalid UTF-8 (split multi-byte characters) becomes U+FFFD. Control tokens are
  // rendered only when `special` is true. Throws InvalidArgumentError on out-of-range ids.
  std::string decode(const std::vector<int32_t>& ids, bool special = false) const;
  // The raw bytes one token stands for (no UTF-8 repair), used by StreamDecoder.
  std::string token_bytes(int32_t id, bool special = false) const;

  int32_t n_vocab() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  bool add_bos_default() const;
  // True for tokens that end generation (EOS, EOT and other end-of-generation control tokens).
  bool is_eog(int32_t id) const;
  const std::string& token_text(int32_t id) const;  // the vocabulary string as stored
  // The spec it was built from, less merges, scores and token_types (the encoders keep those).
  const TokenizerSpec& spec() const;
  // True for tokens rendered only when `special` (CONTROL, UNKNOWN).
  bool is_control(int32_t id) const;
  // SentencePiece with add_space_prefix: decoding drops the leading space of the first piece.
  bool strips_leading_space() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of token ids into text pieces that never split a UTF-8 character: bytes of an
// incomplete character are held until the next token completes them (flush() emits the rest,
// repairing anything invalid as U+FFFD). For SentencePiece models it also drops the leading space
// of the first piece like decode() does.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool special = false);
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool special_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace llmasos
