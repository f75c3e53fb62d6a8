// Tokenizer: splits text at special tokens, runs the model's encoder (byte-level BPE or
// SentencePiece BPE) on the text between them; decodes ids back to bytes with UTF-8 repair, and
// streams decoded text without splitting characters (StreamDecoder).
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "llmasos/errors.hpp"
#include "tokenizer/merge_encoders.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

namespace llmasos {
namespace {

const char kSpmSpace[] = "\xE2\x96\x81";  // U+2581, how SentencePiece spells a space

// Finds special tokens in text: a byte trie over their texts, longest match at a position wins.
class SpecialMatcher {
 public:
  // always: matched whatever `special` says (USER_DEFINED); else only when special (CONTROL).
  void add(const std::string& text, int32_t id, bool always) {
    if (text.empty()) return;
    first_byte_[static_cast<unsigned char>(text[0])] = true;
    int node = 0;
    for (unsigned char b : text) {
      int next = -1;
      for (auto& [k, child] : nodes_[node].kids) if (k == b) next = child;
      if (next < 0) {
        next = static_cast<int>(nodes_.size());
        nodes_[node].kids.emplace_back(b, next);
        nodes_.emplace_back();
      }
      node = next;
    }
    if (nodes_[node].id < 0) {
      nodes_[node].id = id;
      nodes_[node].always = always;
    }
    if (always) any_always_ = true;
    empty_ = false;
  }
  bool active(bool special) const { return !empty_ && (special || any_always_); }
  // Length of the longest eligible token starting at text[i] (0 if none); its id in *id.
  size_t match(std::string_view text, size_t i, bool special, int32_t* id) const {
    if (!first_byte_[static_cast<unsigned char>(text[i])]) return 0;  // the common case, fast
    int node = 0;
    size_t best = 0;
    for (size_t k = i; k < text.size(); ++k) {
      int next = -1;
      for (auto& [b, child] : nodes_[node].kids) if (b == static_cast<unsigned char>(text[k])) next = child;
      if (next < 0) break;
      node = next;
      if (nodes_[node].id >= 0 && (special || nodes_[node].always)) {
        best = k + 1 - i;
        *id = nodes_[node].id;
      }
    }
    return best;
  }

 private:
  struct Node { std::vector<std::pair<unsigned char, int>> kids; int32_t id = -1; bool always = false; };
  std::vector<Node> nodes_{1};
  std::array<bool, 256> first_byte_{};  // bytes some special token starts with
  bool any_always_ = false, empty_ = true;
};

// Texts of end-of-generation tokens that models mark only by name (as llama.cpp recognises them).
const char* const kEogTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                 "<EOT>", "_<EOT>", "<|end_of_text|>", "<|eom_id|>", "<｜end▁of▁sentence｜>",
                                 "<|return|>", "<|call|>"};

}  // namespace

struct Tokenizer::Impl {
  TokenizerSpec spec;
  bool spm = false;
  PreTokenizer pre = PreTokenizer::GPT2;
  std::vector<TokenType> types;
  std::vector<std::string> bytes;  // what each token decodes to (CONTROL/UNKNOWN: their text)
  std::vector<bool> eog;
  SpecialMatcher specials;
  std::unique_ptr<BpeEncoder> bpe;
  std::unique_ptr<SpmEncoder> spm_enc;

  bool hidden_unless_special(int32_t id) const {
    const TokenType t = types[id];
    return t == TokenType::CONTROL || t == TokenType::UNKNOWN;
  }
  void encode_text(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const;
};

static std::string bpe_token_bytes(const std::string& text) {
  // Each character of a byte-level token stands for one byte; a character outside the alphabet
  // (not produced by the converter, but possible in a hand-made vocabulary) stands for itself.
  std::string out;
  for (const auto& c : unicode::utf8_decode(text)) {
    const int b = c.cp == 0xFFFD && c.len == 1 ? -1 : unicode::unicode_to_byte(c.cp);
    if (b >= 0) out += static_cast<char>(b);
    else out.append(text, c.offset, c.len);
  }
  return out;
}

static int parse_byte_token(const std::string& t) {  // "<0xAB>" -> 0xAB, else -1
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
    out.append(s, pos, hit - pos).append(to);
  return out.append(s, pos, std::string::npos);
}

Tokenizer::Tokenizer(TokenizerSpec spec) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const size_t n = spec.tokens.size();
  if (n == 0) throw ModelFormatError("tokenizer.ggml.tokens: the vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX)) throw ModelFormatError("tokenizer.ggml.tokens: too many tokens");
  if (!spec.scores.empty() && spec.scores.size() != n)
    throw ModelFormatError("tokenizer.ggml.scores: " + std::to_string(spec.scores.size()) +
                           " scores for " + std::to_string(n) + " tokens");
  if (!spec.token_types.empty() && spec.token_types.size() != n)
    throw ModelFormatError("tokenizer.ggml.token_type: " + std::to_string(spec.token_types.size()) +
                           " types for " + std::to_string(n) + " tokens");
  const std::pair<const char*, int32_t> ids[] = {{"bos_token_id", spec.bos_id}, {"eos_token_id", spec.eos_id},
      {"unknown_token_id", spec.unk_id}, {"padding_token_id", spec.pad_id}, {"eot_token_id", spec.eot_id}};
  for (const auto& [key, id] : ids)
    if (id < -1 || id >= static_cast<int64_t>(n))
      throw ModelFormatError(std::string("tokenizer.ggml.") + key + " = " + std::to_string(id) +
                             " is outside the vocabulary of " + std::to_string(n));
  if (spec.model == "llama") m.spm = true;
  else if (spec.model != "gpt2")
    throw ModelFormatError("tokenizer.ggml.model: unsupported tokenizer model '" + spec.model + "'");
  if (spec.pre.empty()) spec.pre = "default";
  m.pre = pre_tokenizer_from_name(spec.pre);

  m.types.resize(n, TokenType::NORMAL);
  for (size_t i = 0; i < spec.token_types.size(); ++i) {
    const int32_t t = spec.token_types[i];
    m.types[i] = (t >= 0 && t <= 6) ? static_cast<TokenType>(t) : TokenType::NORMAL;
    if (m.types[i] == TokenType::UNDEFINED) m.types[i] = TokenType::NORMAL;
  }
  TokenIds all_ids;
  all_ids.reserve(n);
  for (size_t i = 0; i < n; ++i) all_ids[spec.tokens[i]] = static_cast<int32_t>(i);  // last wins, as in the peers

  m.bytes.resize(n);
  std::array<int32_t, 256> byte_ids;
  byte_ids.fill(-1);
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = spec.tokens[i];
    switch (m.types[i]) {
      case TokenType::CONTROL: case TokenType::UNKNOWN: case TokenType::USER_DEFINED:
        m.bytes[i] = t;
        break;
      case TokenType::BYTE: {
        const int b = parse_byte_token(t);
        if (b >= 0) {
          m.bytes[i] = std::string(1, static_cast<char>(b));
          if (byte_ids[b] < 0) byte_ids[b] = static_cast<int32_t>(i);
        } else {
          m.bytes[i] = m.spm ? t : bpe_token_bytes(t);
        }
        break;
      }
      default:
        m.bytes[i] = m.spm ? replace_all(t, kSpmSpace, " ") : bpe_token_bytes(t);
    }
    if (m.types[i] == TokenType::CONTROL) m.specials.add(t, static_cast<int32_t>(i), false);
    if (m.types[i] == TokenType::USER_DEFINED) m.specials.add(t, static_cast<int32_t>(i), true);
  }

  if (m.spm) {
    TokenIds mergeable;
    std::vector<bool> unused(n, false);
    for (size_t i = 0; i < n; ++i) {
      const TokenType t = m.types[i];
      if (t == TokenType::NORMAL || t == TokenType::USER_DEFINED || t == TokenType::UNUSED)
        mergeable[spec.tokens[i]] = static_cast<int32_t>(i);
      unused[i] = t == TokenType::UNUSED;
    }
    m.spm_enc = std::make_unique<SpmEncoder>(std::move(mergeable), spec.scores, std::move(unused), byte_ids);
  } else {
    m.bpe = std::make_unique<BpeEncoder>(all_ids, spec.merges);
  }

  m.eog.assign(n, false);
  for (int32_t id : {spec.eos_id, spec.eot_id}) if (id >= 0) m.eog[id] = true;
  for (const char* text : kEogTexts) {
    auto it = all_ids.find(text);
    if (it != all_ids.end() && m.types[it->second] == TokenType::CONTROL) m.eog[it->second] = true;
  }
  m.spec = std::move(spec);
  // The encoders hold the merges and scores in their own form now; keep only what decoding and
  // the accessors read (tokens, ids, flags), not a second copy of a 49k-entry merge list.
  std::vector<std::string>().swap(m.spec.merges);
  std::vector<float>().swap(m.spec.scores);
  std::vector<int32_t>().swap(m.spec.token_types);
}

Tokenizer::~Tokenizer() = default;

void Tokenizer::Impl::encode_text(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const {
  if (spm) {
    std::string esc = prefix_space ? std::string(kSpmSpace) : std::string();
    for (char c : text) {
      if (c == ' ') esc += kSpmSpace;
      else esc += c;
    }
    spm_enc->encode(esc, spec.unk_id, out);
    return;
  }
  std::vector<std::string_view> pieces;
  pretokenize(pre, text, pieces);
  // Bytes missing from the vocabulary are dropped, as HF's BPE (built without unk) does, unless
  // the unknown token is a real UNKNOWN token (SmolLM2 names <|endoftext|>, a control token).
  const int32_t unk = spec.unk_id >= 0 && types[spec.unk_id] == TokenType::UNKNOWN ? spec.unk_id : -1;
  for (std::string_view p : pieces) bpe->encode_piece(p, unk, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool special) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  if (add_bos && m.spec.bos_id >= 0) out.push_back(m.spec.bos_id);
  // SentencePiece: a space goes before the first text and before text that follows a special
  // token (llama.cpp's rule), when the model asks for it (add_space_prefix).
  bool after_special = true;
  size_t start = 0;
  auto flush_text = [&](size_t end) {
    if (end > start) {
      m.encode_text(text.substr(start, end - start), m.spm && m.spec.add_space_prefix && after_special, out);
      after_special = false;
    }
  };
  if (m.specials.active(special)) {
    for (size_t i = 0; i < text.size();) {
      int32_t id = -1;
      const size_t len = m.specials.match(text, i, special, &id);
      if (len == 0) { ++i; continue; }
      flush_text(i);
      out.push_back(id);
      after_special = true;
      i += len;
      start = i;
    }
  }
  flush_text(text.size());
  return out;
}

std::string Tokenizer::token_bytes(int32_t id, bool special) const {
  if (id < 0 || id >= n_vocab())
    throw InvalidArgumentError("token id " + std::to_string(id) + " is outside the vocabulary of " +
                               std::to_string(n_vocab()));
  if (!special && impl_->hidden_unless_special(id)) return std::string();
  return impl_->bytes[id];
}

bool Tokenizer::strips_leading_space() const { return impl_->spm && impl_->spec.add_space_prefix; }

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < n_vocab() && impl_->hidden_unless_special(id);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool special) const {
  std::string raw;
  bool first = true;  // SentencePiece: the first non-control piece loses its leading space
  for (int32_t id : ids) {
    std::string piece = token_bytes(id, special);
    if (first && !is_control(id)) {
      first = false;
      if (strips_leading_space() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    }
    raw += piece;
  }
  return unicode::utf8_repair(raw);
}

int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->spec.tokens.size()); }
int32_t Tokenizer::bos_id() const { return impl_->spec.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->spec.eos_id; }
bool Tokenizer::add_bos_default() const { return impl_->spec.add_bos; }
bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < n_vocab() && impl_->eog[id]; }
const TokenizerSpec& Tokenizer::spec() const { return impl_->spec; }

const std::string& Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= n_vocab())
    throw InvalidArgumentError("token id " + std::to_string(id) + " is outside the vocabulary of " +
                               std::to_string(n_vocab()));
  return impl_->spec.tokens[id];
}

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool special) : tok_(tok), special_(special) {}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tok_.token_bytes(id, special_);
  if (first_ && !tok_.is_control(id)) {
    first_ = false;
    if (tok_.strips_leading_space() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  }
  pending_ += piece;
  // Emit everything up to a character still waiting for its continuation bytes.
  const size_t keep = unicode::utf8_incomplete_tail(pending_);
  std::string out = unicode::utf8_repair(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = unicode::utf8_repair(pending_);
  pending_.clear();
  return out;
}

}  // namespace llmasos
