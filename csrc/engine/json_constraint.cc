// JSON mode: the byte automaton (one object, RFC 8259 less the run limits in the header) and the
// token mask built from it.
#include "engine/json_constraint.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "engine/json_schema.h"
#include "tokenizer/tokenizer.h"

namespace llmasos {

namespace {

constexpr const char* kLiterals[3] = {"true", "false", "null"};
constexpr uint8_t kLiteralLen[3] = {4, 5, 4};
using namespace json_bytes;

bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

bool JsonState::ws(uint8_t c) {
  if (!is_ws(c) || ws_run_ >= kMaxWs) return false;
  ++ws_run_;
  return true;
}

bool JsonState::push(char kind) {
  if (depth_ >= kMaxDepth) return false;
  stack_[depth_++] = kind;
  mode_ = kind == '{' ? kObjFirst : kArrFirst;
  return true;
}

void JsonState::close_value() { mode_ = depth_ == 0 ? kDone : kAfter; }

bool JsonState::close_container() {
  --depth_;
  close_value();
  return true;
}

bool JsonState::value_start(uint8_t c) {
  if (depth_ == 0) return c == '{' && push('{');  // the top level is one object
  switch (c) {
    case '{': return push('{');
    case '[': return push('[');
    case '"': mode_ = kString; key_ = false; return true;
    case '-': mode_ = kNumMinus; digits_ = 0; return true;
    case '0': mode_ = kNumZero; digits_ = 1; return true;
    case 't': case 'f': case 'n':
      literal_ = c == 't' ? 0 : c == 'f' ? 1 : 2;
      lit_pos_ = 1;
      mode_ = kLiteral;
      return true;
    default:
      if (c >= '1' && c <= '9') {
        mode_ = kNumInt;
        digits_ = 1;
        return true;
      }
      return false;
  }
}

bool JsonState::after_value(uint8_t c) {
  const char top = stack_[depth_ - 1];
  if (c == ',') {
    mode_ = top == '{' ? kObjKey : kValue;
    return true;
  }
  if ((c == '}' && top == '{') || (c == ']' && top == '[')) return close_container();
  return false;
}

bool JsonState::feed(uint8_t c) {
  switch (mode_) {
    case kString:
      if (utf8_need_ > 0) {  // a continuation byte, in the range UTF-8 allows here
        if (c < utf8_lo_ || c > utf8_hi_) return false;
        --utf8_need_;
        utf8_lo_ = 0x80;
        utf8_hi_ = 0xBF;
        return true;
      }
      if (surr_ & kSurNeedLow) {  // a high surrogate's escape: its low one's must follow
        if (c != '\\') return false;
        mode_ = kEsc;
        return true;
      }
      if (c == '"') {
        if (key_) mode_ = kColon;
        else close_value();
        return true;
      }
      if (c == '\\') {
        mode_ = kEsc;
        return true;
      }
      if (c < 0x20) return false;  // raw control characters must be escaped
      if (c < 0x80) return true;
      return utf8_lead(c, utf8_need_, utf8_lo_, utf8_hi_);
    case kEsc:
      if (c == 'u') {
        mode_ = kHex;
        hex_left_ = 4;
        return true;
      }
      if ((surr_ & kSurNeedLow) || !is_escape(c)) return false;
      mode_ = kString;
      return true;
    case kHex:
      if (!is_hex(c) || !surrogate_digit(surr_, hex_left_, c, false)) return false;
      if (--hex_left_ == 0) mode_ = kString;
      return true;
    case kLiteral: {
      if (c != static_cast<uint8_t>(kLiterals[literal_][lit_pos_])) return false;
      if (++lit_pos_ == kLiteralLen[literal_]) close_value();
      return true;
    }
    case kNumMinus:
      if (c == '0') { mode_ = kNumZero; digits_ = 1; return true; }
      if (c >= '1' && c <= '9') { mode_ = kNumInt; digits_ = 1; return true; }
      return false;
    case kNumDot:
      if (!is_digit(c)) return false;
      mode_ = kNumFrac;
      digits_ = 1;
      return true;
    case kNumE:
      if (c == '+' || c == '-') { mode_ = kNumESign; return true; }
      [[fallthrough]];
    case kNumESign:
      if (!is_digit(c)) return false;
      mode_ = kNumExp;
      digits_ = 1;
      return true;
    case kNumZero: case kNumInt: case kNumFrac: case kNumExp: {
      if (is_digit(c)) {  // kNumZero takes no more digits (no leading zeros)
        const uint8_t cap = mode_ == kNumInt ? kMaxIntDigits : mode_ == kNumFrac ? kMaxFracDigits
                          : mode_ == kNumExp ? kMaxExpDigits : 0;
        if (digits_ >= cap) return false;
        ++digits_;
        return true;
      }
      if (c == '.' && (mode_ == kNumZero || mode_ == kNumInt)) { mode_ = kNumDot; return true; }
      if ((c == 'e' || c == 'E') && mode_ != kNumExp) { mode_ = kNumE; return true; }
      // The number ends here; c is the next structural byte (numbers only stand inside containers).
      close_value();
      ws_run_ = 0;
      return ws(c) || after_value(c);
    }
    case kDone:
      return false;
    default:
      break;
  }
  // Structural modes: whitespace (bounded runs), else the byte the mode expects.
  if (is_ws(c)) return ws(c);
  ws_run_ = 0;
  switch (mode_) {
    case kValue:
      return value_start(c);
    case kArrFirst:
      return c == ']' ? close_container() : value_start(c);
    case kObjFirst:
      if (c == '}') return close_container();
      [[fallthrough]];
    case kObjKey:
      if (c != '"') return false;
      mode_ = kString;
      key_ = true;
      return true;
    case kColon:
      if (c != ':') return false;
      mode_ = kValue;
      return true;
    case kAfter:
      return after_value(c);
    default:
      return false;
  }
}

JsonVocab::JsonVocab(const Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  off_.assign(static_cast<size_t>(n) + 1, 0);
  first_.assign(static_cast<size_t>(n), 0);
  after_ws_.assign(static_cast<size_t>(n), 0);
  flags_.assign(static_cast<size_t>(n), 0);
  for (int32_t i = 0; i < n; ++i) {
    const size_t k = static_cast<size_t>(i);
    if (tok.is_eog(i)) eog_ids_.push_back(static_cast<uint32_t>(i));
    if (!tok.is_control(i) && !tok.is_eog(i)) {
      const std::string b = tok.token_bytes(i);
      if (!b.empty()) {
        bool plain = true;
        for (unsigned char c : b) plain = plain && c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
        flags_[k] = kUsable | (plain ? kPlain : 0) | (b.find('"') != std::string::npos ? kQuote : 0);
        if (flags_[k] & kQuote) quote_ids_.push_back(static_cast<uint32_t>(i));
        first_[k] = static_cast<uint8_t>(b[0]);
        const size_t lead = b.find_first_not_of(" \t\n\r");
        if (lead != 0 && lead != std::string::npos) {
          flags_[k] |= kWsLead;
          after_ws_[k] = static_cast<uint8_t>(b[lead]);
        }
        blob_ += b;
      }
    }
    off_[k + 1] = static_cast<uint32_t>(blob_.size());
  }
  // The buckets, by counting sort (ids ascending within each).
  auto bucket = [&](auto key_of, auto member, std::vector<uint32_t>& off, std::vector<uint32_t>& ids) {
    off.assign(257, 0);
    for (int32_t i = 0; i < n; ++i)
      if (member(static_cast<size_t>(i))) ++off[key_of(static_cast<size_t>(i)) + 1u];
    for (int c = 0; c < 256; ++c) off[c + 1] += off[c];
    ids.assign(off[256], 0);
    std::vector<uint32_t> at(off.begin(), off.end() - 1);
    for (int32_t i = 0; i < n; ++i)
      if (member(static_cast<size_t>(i))) ids[at[key_of(static_cast<size_t>(i))]++] = static_cast<uint32_t>(i);
  };
  bucket([&](size_t k) { return first_[k]; },
         [&](size_t k) { return (flags_[k] & kUsable) && !(flags_[k] & kWsLead); }, first_off_, first_ids_);
  bucket([&](size_t k) { return after_ws_[k]; },
         [&](size_t k) { return (flags_[k] & kUsable) && (flags_[k] & kWsLead); }, ws_off_, ws_ids_);
  plain_bits_.assign((static_cast<size_t>(n) + 63) / 64, 0);
  auto len = [&](uint32_t id) { return off_[id + 1] - off_[id]; };
  for (int32_t i = 0; i < n; ++i) {
    const size_t k = static_cast<size_t>(i);
    if (flags_[k] & kPlain) {
      plain_bits_[k / 64] |= uint64_t(1) << (k % 64);
      plain_by_len_.push_back(static_cast<uint32_t>(i));
    }
    else if (flags_[k] & kUsable) other_ids_.push_back(static_cast<uint32_t>(i));
  }
  std::stable_sort(plain_by_len_.begin(), plain_by_len_.end(), [&](uint32_t a, uint32_t b) { return len(a) > len(b); });
}

namespace {

// Feeds [p, e) to s: whether all of it fits (s is to be discarded when not).
template <class State>
bool feed_all(State& s, const char* p, const char* e) {
  for (; p != e; ++p)
    if (!s.feed(static_cast<uint8_t>(*p))) return false;
  return true;
}

template <class State>
bool fits_all(State s, const char* p, const char* e) { return feed_all(s, p, e); }

// ok[c]: byte c can follow state st (none can when `reachable` is false).
template <class State>
void next_bytes(const State& st, bool reachable, uint8_t ok[256]) {
  for (int c = 0; c < 256; ++c) {
    State s = st;
    ok[c] = reachable && s.feed(static_cast<uint8_t>(c));
  }
}

}  // namespace

JsonConstraint::JsonConstraint(std::shared_ptr<const JsonVocab> vocab, std::shared_ptr<const JsonSchema> schema,
                               bool end_tokens)
    : vocab_(std::move(vocab)), schema_(std::move(schema)), end_tokens_(end_tokens) {
  if (schema_) schema_state_ = std::make_unique<SchemaRun>(schema_.get());
}

JsonConstraint::~JsonConstraint() = default;

bool JsonConstraint::done() const { return schema_state_ ? schema_state_->done() : st_.done(); }

int64_t JsonConstraint::mask(float* logits, int64_t n_vocab) const {
  return schema_state_ ? mask_with(*schema_state_, logits, n_vocab) : mask_with(st_, logits, n_vocab);
}

template <class State>
int64_t JsonConstraint::mask_with(const State& st, float* logits, int64_t n_vocab) const {
  // Which first bytes can follow at all: most tokens are refused on their first byte.
  uint8_t first_ok[256];
  next_bytes(st, true, first_ok);
  // And after one space. Whitespace changes nothing but the run's length outside strings, and a
  // space is plain content inside one, so a token of leading whitespace whose next byte fails
  // here fails (BPE vocabularies start about a third of their tokens with a space). Not so in a
  // string with a length bound or a pattern, where each space counts or moves the pattern: there
  // every byte passes this test and the whole token decides.
  uint8_t ws_ok[256];
  State sp = st;
  const bool space = sp.feed(' ');
  if (st.space_neutral()) next_bytes(sp, space, ws_ok);
  else std::fill(ws_ok, ws_ok + 256, uint8_t{1});
  const JsonVocab& v = *vocab_;
  const int64_t n = std::min<int64_t>(n_vocab, v.size());
  // allowed: one bit per token. A token fits when its first byte may come next, a leading run of
  // whitespace is followed by a byte that may follow one space, and all its bytes feed.
  std::vector<uint64_t>& allowed = bits_;
  const SchemaNode* pat = nullptr;  // inside a pattern's string: its DFA decides all bytes but '"'
  uint32_t pat_state = 0;
  if constexpr (std::is_same_v<State, SchemaRun>) pat = st.pattern_at(&pat_state);
  auto fits = [&](uint32_t id) {
    const size_t k = id;
    return first_ok[v.first_[k]] && (!(v.flags_[k] & JsonVocab::kWsLead) || ws_ok[v.after_ws_[k]]) &&
           fits_all(st, v.begin(k), v.end(k));
  };
  auto set = [&](uint32_t id) { allowed[id / 64] |= uint64_t(1) << (id % 64); };
  const int64_t room = st.plain_room();
  if (pat) {
    // A pattern's string: the DFA state's tokens without '"' (cached), then the '"' tokens, where
    // the string may close, through the whole automaton.
    allowed = pattern_bits(pat, pat_state);
    for (uint32_t id : v.quote_ids_)
      if (fits(id)) set(id);
  } else if (room > 0) {
    // Every plain token keeps a plain string as it is but for its length: all of them that fit
    // the room left (a maxLength), then the others one by one.
    allowed = v.plain_bits_;
    for (uint32_t id : v.plain_by_len_) {
      if (v.off_[id + 1] - v.off_[id] <= room) break;
      allowed[id / 64] &= ~(uint64_t(1) << (id % 64));
    }
    for (uint32_t id : v.other_ids_)
      if (fits(id)) set(id);
  } else {
    // Only the buckets of the bytes that may come next (after whitespace, for the ws tokens).
    allowed.assign(v.plain_bits_.size(), 0);
    for (int c = 0; c < 256; ++c) {
      if (first_ok[c])
        for (uint32_t j = v.first_off_[c]; j < v.first_off_[c + 1]; ++j)
          if (fits(v.first_ids_[j])) set(v.first_ids_[j]);
      if (ws_ok[c])
        for (uint32_t j = v.ws_off_[c]; j < v.ws_off_[c + 1]; ++j)
          if (fits(v.ws_ids_[j])) set(v.ws_ids_[j]);
    }
  }
  if (end_tokens_ && st.can_end())
    for (uint32_t id : v.eog_ids_) set(id);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  int64_t kept = 0;
  for (int64_t w = 0; w * 64 < n; ++w) {
    uint64_t bits = allowed[static_cast<size_t>(w)];
    if (n - 64 * w < 64) bits &= (uint64_t(1) << (n - 64 * w)) - 1;  // ids from n on: none
    kept += __builtin_popcountll(bits);
    if (bits == ~uint64_t(0)) continue;
    const int64_t end = std::min<int64_t>(64 * w + 64, n);
    if (bits == 0) {  // the common word outside strings: a plain fill
      std::fill(logits + 64 * w, logits + end, kNegInf);
      continue;
    }
    for (int64_t i = 64 * w; i < end; ++i)
      if (!(bits >> (i - 64 * w) & 1)) logits[i] = kNegInf;
  }
  for (int64_t i = n; i < n_vocab; ++i) logits[i] = kNegInf;
  return kept;
}

const std::vector<uint64_t>& JsonConstraint::pattern_bits(const SchemaNode* node, uint32_t state) const {
  for (const PatternBits& e : pattern_cache_)
    if (e.node == node && e.state == state) return e.bits;
  const JsonVocab& v = *vocab_;
  PatternBits e{node, state, std::vector<uint64_t>(v.plain_bits_.size(), 0)};
  const uint32_t k = static_cast<uint32_t>(node->dfa_classes);
  for (size_t id = 0; id < v.flags_.size(); ++id) {
    if ((v.flags_[id] & (JsonVocab::kUsable | JsonVocab::kQuote)) != JsonVocab::kUsable) continue;
    uint32_t s = state;
    bool ok = true;
    for (const char* p = v.begin(id); ok && p != v.end(id); ++p) {
      const int32_t next = node->dfa_next[s * k + node->dfa_class[static_cast<uint8_t>(*p)]];
      ok = next >= 0;
      s = static_cast<uint32_t>(next);
    }
    if (ok) e.bits[id / 64] |= uint64_t(1) << (id % 64);
  }
  if (pattern_cache_.size() < kPatternCache) {
    pattern_cache_.push_back(std::move(e));
    return pattern_cache_.back().bits;
  }
  PatternBits& slot = pattern_cache_[pattern_next_];
  pattern_next_ = (pattern_next_ + 1) % kPatternCache;
  slot = std::move(e);
  return slot.bits;
}

bool JsonConstraint::advance(int32_t id) {
  return schema_state_ ? advance_with(*schema_state_, id) : advance_with(st_, id);
}

template <class State>
bool JsonConstraint::advance_with(State& st, int32_t id) {
  if (id < 0 || id >= vocab_->size()) return false;
  const size_t k = static_cast<size_t>(id);
  if (!(vocab_->flags_[k] & JsonVocab::kUsable)) return false;
  State s = st;
  if (!feed_all(s, vocab_->begin(k), vocab_->end(k))) return false;
  st = s;
  return true;
}

}  // namespace llmasos
