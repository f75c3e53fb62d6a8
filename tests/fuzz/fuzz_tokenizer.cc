// libFuzzer target for the tokenizer of a real model: the input is arbitrary text (any bytes,
// invalid UTF-8 included) to encode with and without special tokens, and the same bytes read as
// token ids to decode, token by token through the StreamDecoder too. Encoding must give valid ids
// and decoding must not crash; the byte-level BPE must also give valid UTF-8 back exactly.
//
// Build as fuzz_model_load.cc says, with this file; run with the model in LLMASOS_FUZZ_MODEL:
//   LLMASOS_FUZZ_MODEL=path/to/model.gguf build/fuzz/fuzz_tokenizer -max_len=4096 build/fuzz/tok
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "io/gguf.h"
#include "llmasos/errors.hpp"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

const llmasos::Tokenizer& tokenizer() {
  static std::unique_ptr<llmasos::Tokenizer> tok = [] {
    const char* path = std::getenv("LLMASOS_FUZZ_MODEL");
    if (!path) {
      std::fprintf(stderr, "set LLMASOS_FUZZ_MODEL to a GGUF model file\n");
      std::abort();
    }
    auto f = llmasos::GgufFile::open(path);
    return std::make_unique<llmasos::Tokenizer>(llmasos::TokenizerSpec::from_gguf(*f));
  }();
  return *tok;
}

// Whether the vocabulary holds a token for each of the 256 bytes (falcon's lacks 0x0b, for one;
// such bytes are dropped, as Hugging Face and llama.cpp drop them).
bool has_all_bytes(const llmasos::Tokenizer& tok) {
  const auto& tokens = tok.spec().tokens;
  const std::set<std::string> vocab(tokens.begin(), tokens.end());
  for (int b = 0; b < 256; ++b)
    if (!vocab.count(llmasos::unicode::byte_to_unicode(static_cast<uint8_t>(b)))) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const llmasos::Tokenizer& tok = tokenizer();
  const int32_t n_vocab = tok.n_vocab();
  static const bool lossless = tok.spec().model == "gpt2" && has_all_bytes(tok);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool special : {false, true}) {
    const std::vector<int32_t> ids = tok.encode(text, false, special);
    for (int32_t id : ids)
      if (id < 0 || id >= n_vocab) std::abort();
    const std::string back = tok.decode(ids, special);
    // A byte-level BPE with every byte in its vocabulary, without special-token parsing, keeps
    // every byte of valid UTF-8 (decode repairs invalid sequences as U+FFFD, as Hugging Face's
    // decode does).
    if (!special && lossless && llmasos::unicode::utf8_repair(text) == text && back != text) {
      std::fprintf(stderr, "round trip lost bytes: %zu in, %zu out\n", text.size(), back.size());
      std::abort();
    }
  }
  // The same bytes as ids (any int32, out of range included: those must throw, not crash).
  std::vector<int32_t> ids(size / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data, 4 * ids.size());
  try {
    tok.decode(ids, true);
  } catch (const llmasos::InvalidArgumentError&) {
  }
  llmasos::StreamDecoder stream(tok, size & 1);
  for (int32_t id : ids) {
    try {
      stream.push(id);
    } catch (const llmasos::InvalidArgumentError&) {
    }
  }
  stream.flush();
  return 0;
}
