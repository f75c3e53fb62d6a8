// JSON mode (OpenAI response_format {"type": "json_object"}): a byte-level pushdown automaton for
// one JSON object, and the per-step token mask it gives a sequence. Each step, a token is allowed
// when all of its bytes keep the output a prefix of a JSON object; the sampler draws from the
// allowed tokens only, and generation ends ("stop") the moment the object closes.
//
// As in llama.cpp's JSON grammar, the automaton admits a little less than RFC 8259 so that a
// model cannot loop forever inside one production: at most kMaxWs whitespace bytes in a row, at
// most 20 integer digits, 20 fraction digits and 3 exponent digits, nesting up to kMaxDepth.
// Strings must be valid UTF-8 without raw control characters; escapes are JSON's.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/output_constraint.h"

namespace llmasos {

class Tokenizer;
class JsonSchema;

// JSON's byte rules, shared by JSON mode's automaton (JsonState) and structured outputs'
// (SchemaState, json_schema.h).
namespace json_bytes {

// Digit caps of a number's parts. Two exponent digits keep every number finite as a double (20
// digits times 10^99 is far below DBL_MAX): with three, "1e999" parses as inf, which Python's
// json takes but validators of finite numbers (Pydantic's Decimal, float with allow_inf_nan off)
// refuse.
constexpr uint8_t kMaxIntDigits = 20, kMaxFracDigits = 20, kMaxExpDigits = 2;

inline bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
inline bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
// The byte after a '\' that makes a one-character escape (\u and its hex digits are apart).
inline bool is_escape(uint8_t c) {
  return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't';
}

// A multi-byte character's lead byte c (no overlong forms, no surrogates, nothing past U+10FFFF):
// how many continuation bytes follow, and the range of the first one (the rest are 0x80..0xBF).
// False for a byte that cannot lead one.
inline bool utf8_lead(uint8_t c, uint8_t& need, uint8_t& lo, uint8_t& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c == 0xE0) need = 2, lo = 0xA0;
  else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
  else if (c == 0xED) need = 2, hi = 0x9F;
  else if (c == 0xF0) need = 3, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) need = 3;
  else if (c == 0xF4) need = 3, hi = 0x8F;
  else return false;
  return true;
}

// \uXXXX escapes of UTF-16 surrogates: a high one (D800-DBFF) must be followed at once by a low
// one (DC00-DFFF), which stands nowhere else. Python's json takes a lone one, but strict parsers
// (Pydantic's, serde_json) refuse it as invalid JSON. Each automaton keeps these bits per string.
enum : uint8_t { kSurD = 1, kSurHigh = 2, kSurNeedLow = 4 };
// Hex digit c of an escape, with `left` digits to come counting it (4 .. 1), in state s; false
// where it cannot stand. `none`: no surrogates at all (bounded strings count characters).
inline bool surrogate_digit(uint8_t& s, int left, uint8_t c, bool none) {
  if (left == 4) {
    const bool d = c == 'd' || c == 'D';
    if ((s & kSurNeedLow) && !d) return false;
    s = static_cast<uint8_t>((s & kSurNeedLow) | (d ? kSurD : 0));
  } else if (left == 3 && (s & kSurD)) {
    const bool high = (c >= '8' && c <= '9') || c == 'a' || c == 'b' || c == 'A' || c == 'B';
    const bool low = (c >= 'c' && c <= 'f') || (c >= 'C' && c <= 'F');
    if (none && (high || low)) return false;
    if ((s & kSurNeedLow) ? !low : low) return false;
    if (high) s |= kSurHigh;
  }
  if (left == 1) s = (s & kSurHigh) ? kSurNeedLow : 0;
  return true;
}

}  // namespace json_bytes
class SchemaRun;
struct SchemaNode;

class JsonState {
 public:
  static constexpr int kMaxDepth = 64;
  static constexpr int kMaxWs = 48;

  // Feeds one byte; false (state unchanged only in meaning: discard it) when the byte cannot
  // continue a JSON object from here.
  bool feed(uint8_t c);
  // The object is complete: no byte may follow.
  bool done() const { return mode_ == kDone; }
  // Inside a string with no escape or multi-byte character pending: every printable ASCII byte
  // but '"' and '\' keeps the state exactly as it is.
  bool in_plain_string() const { return mode_ == kString && utf8_need_ == 0 && !(surr_ & json_bytes::kSurNeedLow); }
  // SchemaState's question: how many such bytes may still come (no limit here).
  int64_t plain_room() const { return in_plain_string() ? INT64_MAX : 0; }
  // A space here changes nothing a later byte depends on (always so in JSON mode).
  bool space_neutral() const { return true; }
  bool can_end() const { return false; }  // an object ends with its '}', never before

 private:
  enum Mode : uint8_t {
    kValue, kObjFirst, kObjKey, kColon, kArrFirst, kAfter, kString, kEsc, kHex,
    kNumMinus, kNumZero, kNumInt, kNumDot, kNumFrac, kNumE, kNumESign, kNumExp, kLiteral, kDone,
  };
  bool value_start(uint8_t c);  // c begins a value (mode_ is kValue or kArrFirst)
  bool after_value(uint8_t c);  // c follows a complete value inside a container
  void close_value();           // a value just ended: kAfter in a container, kDone at the top
  bool close_container();       // the innermost container's closing byte: pop it, a value ended
  bool push(char kind);
  bool ws(uint8_t c);           // c is whitespace where whitespace may stand (counts the run)

  Mode mode_ = kValue;
  bool key_ = false;            // the string being read is an object key
  uint8_t hex_left_ = 0;        // \uXXXX digits still to come
  uint8_t surr_ = 0;            // json_bytes::kSur* bits: a surrogate escape's pairing
  uint8_t utf8_need_ = 0;       // continuation bytes still to come
  uint8_t utf8_lo_ = 0x80, utf8_hi_ = 0xBF;  // range of the next continuation byte
  uint8_t literal_ = 0, lit_pos_ = 0;        // which of true / false / null, and how far
  uint8_t digits_ = 0;          // digits in the current part of a number
  uint8_t ws_run_ = 0;
  int16_t depth_ = 0;
  char stack_[kMaxDepth] = {};  // '{' or '[' per open container
};

// The vocabulary as JSON mode sees it, built once per model: each token's bytes, and whether it
// may ever appear (control tokens and tokens with no bytes never do). Kept compact, since every
// mask reads the first byte and flags of every token: 2 bytes a token, the bytes themselves only
// for the tokens the first byte does not settle.
class JsonVocab {
 public:
  explicit JsonVocab(const Tokenizer& tok);
  int64_t size() const { return static_cast<int64_t>(first_.size()); }

 private:
  friend class JsonConstraint;
  // kPlain: printable ASCII only, no '"' or '\'. kWsLead: whitespace, then a byte that is not.
  // kQuote: a '"' among its bytes (in a pattern's string, the one byte the DFA alone cannot judge).
  enum : uint8_t { kUsable = 1, kPlain = 2, kWsLead = 4, kQuote = 8 };
  const char* begin(size_t i) const { return blob_.data() + off_[i]; }
  const char* end(size_t i) const { return blob_.data() + off_[i + 1]; }
  std::string blob_;            // the usable tokens' bytes, back to back
  std::vector<uint32_t> off_;   // token i's bytes: blob_[off_[i], off_[i + 1])
  std::vector<uint8_t> first_;  // token i's first byte
  std::vector<uint8_t> after_ws_;  // kWsLead tokens: the first byte after the leading whitespace
  std::vector<uint8_t> flags_;  // kUsable | kPlain | kWsLead
  // The usable tokens by where the mask looks first, so that it visits only the tokens a state
  // can start with (CSR lists: ids of bucket c at ids[off[c] .. off[c + 1])): by first byte the
  // tokens without leading whitespace, by the byte after it those with; and the plain tokens as
  // bits (all of them fit a plain string) beside the list of the others.
  std::vector<uint32_t> first_off_, first_ids_, ws_off_, ws_ids_, other_ids_;
  std::vector<uint64_t> plain_bits_;
  std::vector<uint32_t> plain_by_len_;  // the plain tokens, longest first (for a string's room)
  std::vector<uint32_t> quote_ids_;     // the usable kQuote tokens
  std::vector<uint32_t> eog_ids_;  // end-of-generation tokens, allowed where the output may end
};

// One sequence's JSON state over a shared vocabulary: any JSON object (JSON mode), or the compact
// JSON a schema accepts (json_schema.h) when one is given.
class JsonConstraint : public OutputConstraint {
 public:
  // With `end_tokens`, where the output may end but need not (a raw DFA's accepting state), the
  // end-of-generation tokens are allowed too (the caller stops on them: not with ignore_eos).
  explicit JsonConstraint(std::shared_ptr<const JsonVocab> vocab, std::shared_ptr<const JsonSchema> schema = nullptr,
                          bool end_tokens = true);
  ~JsonConstraint() override;
  int64_t mask(float* logits, int64_t n_vocab) const override;
  bool advance(int32_t id) override;
  bool done() const override;  // the object (or the schema's value) is complete

 private:
  template <class State>
  int64_t mask_with(const State& st, float* logits, int64_t n_vocab) const;
  template <class State>
  bool advance_with(State& st, int32_t id);
  // Inside a pattern's string in DFA state `state`: the tokens without '"' whose bytes the DFA
  // takes, as bits. Made once per (node, state) and kept (a few states recur all along a string),
  // so a mask there is a copy plus the '"' tokens.
  const std::vector<uint64_t>& pattern_bits(const SchemaNode* node, uint32_t state) const;

  std::shared_ptr<const JsonVocab> vocab_;
  std::shared_ptr<const JsonSchema> schema_;
  bool end_tokens_ = true;
  std::unique_ptr<SchemaRun> schema_state_;  // with a schema: it, not st_
  JsonState st_;
  mutable std::vector<uint64_t> bits_;  // mask()'s scratch: one bit per token, 1 = allowed
  struct PatternBits {
    const SchemaNode* node;
    uint32_t state;
    std::vector<uint64_t> bits;
  };
  static constexpr size_t kPatternCache = 16;  // entries of 6 KB (a 49152-token vocabulary)
  mutable std::vector<PatternBits> pattern_cache_;
  mutable size_t pattern_next_ = 0;  // the entry a miss replaces once the cache is full
};

}  // namespace llmasos
