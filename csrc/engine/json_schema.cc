// Structured outputs: the schema graph's checks and its byte automaton (json_schema.h).
#include "engine/json_schema.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include "llmasos/errors.hpp"

namespace llmasos {

namespace {

using namespace json_bytes;

// A bounded number has at most 15 significant digits (json_schema.h); a bounded integer 18.
constexpr int kBoundedDigits = 15, kBoundedIntegerDigits = 18;
constexpr int64_t kPow10[19] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
                                10000000000, 100000000000, 1000000000000, 10000000000000, 100000000000000,
                                1000000000000000, 10000000000000000, 100000000000000000, 1000000000000000000};

// A bounded number's integer digits and the units of one (10^frac_digits).
int int_digits(const SchemaNode& n) {
  return n.kind == SchemaNode::kInteger ? kBoundedIntegerDigits : kBoundedDigits - n.frac_digits;
}

// String phases, and number phases (the complete ones: kZero, kInt, kFrac, kExp).
enum : int32_t { kOpen = 0, kChars = 1, kEsc = 2, kHex = 3, kUtf8 = 4 };
enum : int32_t { kStart = 0, kMinus = 1, kZero = 2, kInt = 3, kDot = 4, kFrac = 5, kE = 6, kESign = 7, kExp = 8 };
// Props phases: before '{', after '{', inside a key, after a value, after ','.
enum : int32_t { kPOpen = 0, kPFirst = 1, kPKey = 2, kPAfter = 3, kPComma = 4 };

}  // namespace

JsonSchema::JsonSchema(std::vector<SchemaNode> nodes) : nodes_(std::move(nodes)) {
  auto bad = [](size_t i, const std::string& why) {
    throw InvalidArgumentError("json_schema: node " + std::to_string(i) + ": " + why);
  };
  auto check_items = [&](size_t i, const SchemaNode& s) {  // an array's items, a string's characters
    if (s.min_items < 0 || s.max_items < -1 || (s.max_items >= 0 && s.max_items < s.min_items))
      bad(i, "min_items / max_items out of range");
  };
  if (nodes_.empty()) throw InvalidArgumentError("json_schema: no nodes");
  const int32_t n = size();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const SchemaNode& s = nodes_[i];
    for (int32_t c : s.children)
      if (c < 0 || c >= n) bad(i, "child " + std::to_string(c) + " is not a node");
    switch (s.kind) {
      case SchemaNode::kLiteral:
        if (s.text.empty()) bad(i, "an empty literal");
        break;
      case SchemaNode::kEnum:
        if (s.options.empty() || s.options.size() > kMaxOptions) bad(i, "an enum needs 1 to 64 options");
        for (const auto& o : s.options)
          if (o.empty()) bad(i, "an empty enum option");
        break;
      case SchemaNode::kRaw:
        if (i != 0 || s.dfa_accept.empty()) bad(i, "a raw DFA is the whole document (node 0) and has a DFA");
        [[fallthrough]];
      case SchemaNode::kString: {
        check_items(i, s);
        if (s.dfa_accept.empty() && s.dfa_next.empty() && s.dfa_class.empty()) break;
        const size_t states = s.dfa_accept.size();
        if (states == 0 || s.dfa_class.size() != 256 || s.dfa_classes <= 0 ||
            s.dfa_next.size() != states * static_cast<size_t>(s.dfa_classes))
          bad(i, "a pattern's DFA tables do not agree in size");
        for (uint8_t k : s.dfa_class)
          if (k >= s.dfa_classes) bad(i, "a byte class out of range");
        for (int32_t t : s.dfa_next)
          if (t < -1 || t >= static_cast<int32_t>(states)) bad(i, "a DFA transition out of range");
        if (!s.dfa_dist.empty() && s.dfa_dist.size() != states) bad(i, "dfa_dist does not have a state's size");
        break;
      }
      case SchemaNode::kNumber: case SchemaNode::kInteger: {
        if (!s.bounded) break;
        const bool integer = s.kind == SchemaNode::kInteger;
        if (s.frac_digits < 0 || s.frac_digits > 9 || (integer && s.frac_digits != 0))
          bad(i, "frac_digits out of range");
        const int64_t most = kPow10[int_digits(s)] * kPow10[s.frac_digits] - 1;
        if (s.min_units > s.max_units || s.min_units < -most || s.max_units > most)
          bad(i, "bounds out of range");
        if (s.multiple_units < 0 || s.multiple_units > most) bad(i, "multiple_units out of range");
        break;
      }
      case SchemaNode::kObject:
        break;
      case SchemaNode::kSwitch:
        if (s.options.empty() || s.options.size() > kMaxOptions || s.options.size() != s.children.size())
          bad(i, "a switch needs 1 to 64 options, each with a child");
        for (size_t a = 0; a < s.options.size(); ++a)
          for (size_t b = 0; b < s.options.size(); ++b)
            if (s.options[a].empty() || (a != b && s.options[b].compare(0, s.options[a].size(), s.options[a]) == 0))
              bad(i, "a switch's options must be non-empty and none a prefix of another");
        break;
      case SchemaNode::kProps:
        if (s.children.empty() || s.children.size() > kMaxOptions || s.options.size() != s.children.size() ||
            s.required.size() != s.children.size())
          bad(i, "props need 1 to 64 properties, each with a key and a required flag");
        for (const auto& o : s.options)
          if (o.size() < 3 || o.front() != '"' || o.back() != ':') bad(i, "a property key must read '\"key\":'");
        break;
      case SchemaNode::kSeq:
        if (s.children.empty()) bad(i, "an empty sequence");
        break;
      case SchemaNode::kArray:
        if (s.children.size() != 1) bad(i, "an array has one item node");
        check_items(i, s);
        if (s.unique && (nodes_[static_cast<size_t>(s.children[0])].kind != SchemaNode::kEnum ||
                         static_cast<size_t>(s.min_items) > nodes_[static_cast<size_t>(s.children[0])].options.size()))
          bad(i, "unique items need an enum of at least min_items options");
        break;
      case SchemaNode::kMap: {
        if (s.children.size() != 2) bad(i, "a map has a key node and a value node");
        check_items(i, s);
        // The key must be a JSON string and nothing else: a string node, or quoted options.
        const SchemaNode& k = nodes_[static_cast<size_t>(s.children[0])];
        bool quoted = k.kind == SchemaNode::kString;
        if (k.kind == SchemaNode::kEnum) {
          quoted = true;
          for (const auto& o : k.options) quoted = quoted && o.size() >= 2 && o.front() == '"' && o.back() == '"';
        }
        if (!quoted) bad(i, "a map's key node must be a string or an enum of strings");
        break;
      }
      case SchemaNode::kAnyOf:
        if (s.children.empty()) bad(i, "anyOf without alternatives");
        for (int32_t c : s.children)
          if (nodes_[static_cast<size_t>(c)].kind == SchemaNode::kAnyOf) bad(i, "anyOf inside anyOf");
        break;
      default:
        bad(i, "unknown kind " + std::to_string(s.kind));
    }
  }
  compute_min_depth();
  if (min_depth_[0] > SchemaState::kMaxDepth)
    throw InvalidArgumentError("json_schema: no document of this schema nests within " +
                               std::to_string(SchemaState::kMaxDepth) + " levels");
}

void JsonSchema::compute_min_depth() {
  // A fixed point from "none" down (the graph may be cyclic): each pass can only lower a value.
  constexpr int32_t kNone = 1 << 20;
  min_depth_.assign(nodes_.size(), kNone);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const SchemaNode& n = nodes_[i];
      auto at = [&](int32_t c) { return min_depth_[static_cast<size_t>(c)]; };
      int32_t d = 1;
      switch (n.kind) {
        case SchemaNode::kSeq:
          for (int32_t c : n.children) d = std::max(d, 1 + at(c));
          break;
        case SchemaNode::kArray:
          if (n.min_items > 0) d = 1 + at(n.children[0]);
          break;
        case SchemaNode::kMap:
          if (n.min_items > 0) d = 1 + std::max(at(n.children[0]), at(n.children[1]));
          break;
        case SchemaNode::kAnyOf: case SchemaNode::kSwitch:  // the frame gives way to the child chosen
          d = kNone;
          for (int32_t c : n.children) d = std::min(d, at(c));
          break;
        case SchemaNode::kProps:
          for (size_t k = 0; k < n.children.size(); ++k)
            if (n.required[k]) d = std::max(d, 1 + at(n.children[k]));
          break;
        default:
          break;
      }
      d = std::min(d, kNone);
      if (d < min_depth_[i]) {
        min_depth_[i] = d;
        changed = true;
      }
    }
  }
}

SchemaState::SchemaState(const JsonSchema* schema) : schema_(schema) { push(0); }

void SchemaState::copy_frames(const SchemaState& o) {
  std::copy(o.stack_, o.stack_ + o.depth_, stack_);  // the frames above depth_ are never read
}

SchemaState& SchemaState::operator=(const SchemaState& o) {
  schema_ = o.schema_;
  depth_ = o.depth_;
  copy_frames(o);
  free_ = o.free_;
  return *this;
}

bool SchemaState::same_as(const SchemaState& o) const {
  if (depth_ != o.depth_ || schema_ != o.schema_) return false;
  for (int32_t i = 0; i < depth_; ++i) {
    const Frame &a = stack_[i], &b = o.stack_[i];
    if (a.node != b.node || a.pos != b.pos || a.count != b.count || a.aux != b.aux || a.cand != b.cand) return false;
  }
  // free_ matters only under a kObject, which is always the top frame (nothing nests in it).
  if (depth_ > 0 && schema_->node(stack_[depth_ - 1].node).kind == SchemaNode::kObject)
    return std::memcmp(&free_, &o.free_, sizeof(JsonState)) == 0;  // unequal padding: no merge, harmless
  return true;
}

SchemaRun::SchemaRun(const JsonSchema* schema) : n_(1) { new (&b_[0]) SchemaState(schema); }

SchemaRun& SchemaRun::operator=(const SchemaRun& o) {
  if (this == &o) return *this;
  for (int i = 0; i < o.n_; ++i) {
    if (i < n_) b_[i] = o.b_[i];
    else new (&b_[i]) SchemaState(o.b_[i]);
  }
  n_ = o.n_;  // states past n_ are left as they are: trivially destructible, never read
  return *this;
}

void SchemaRun::add(const SchemaState& s) {
  for (int i = 0; i < n_; ++i)
    if (b_[i].same_as(s)) return;
  if (n_ < kMaxBranches) new (&b_[n_++]) SchemaState(s);
}

bool SchemaRun::feed(uint8_t c) {
  std::vector<SchemaState> forks;  // allocates only when an anyOf forks
  int kept = 0;
  for (int i = 0; i < n_; ++i) {
    if (!b_[i].feed(c, &forks)) continue;
    bool merged = false;
    for (int j = 0; j < kept && !merged; ++j) merged = b_[j].same_as(b_[i]);
    if (merged) continue;
    if (kept != i) b_[kept] = b_[i];
    ++kept;
  }
  n_ = kept;
  for (const SchemaState& s : forks) add(s);
  return n_ > 0;
}

bool SchemaState::can_end() const {
  if (depth_ != 1) return false;
  const SchemaNode& n = schema_->node(stack_[0].node);
  return n.kind == SchemaNode::kRaw && n.dfa_accept[stack_[0].aux];
}

bool SchemaRun::can_end() const {
  for (int i = 0; i < n_; ++i)
    if (b_[i].can_end()) return true;
  return false;
}

bool SchemaRun::done() const {
  for (int i = 0; i < n_; ++i)
    if (b_[i].done()) return true;
  return false;
}

bool SchemaState::push(int32_t node) {
  if (depth_ + schema_->min_depth(node) > kMaxDepth) return false;  // it could not be completed
  const SchemaNode& n = schema_->node(node);
  stack_[depth_++] = Frame{node, 0, 0, 0, n.kind == SchemaNode::kEnum ? (n.options.size() == 64
      ? ~uint64_t(0) : (uint64_t(1) << n.options.size()) - 1) : 0};
  if (n.kind == SchemaNode::kObject) free_ = JsonState();
  return true;
}

int64_t SchemaState::plain_room() const {
  if (depth_ == 0) return 0;
  const Frame& f = stack_[depth_ - 1];
  const SchemaNode& n = schema_->node(f.node);
  if (n.kind == SchemaNode::kString) {
    // (A pattern's bytes each move its DFA; a pending low surrogate's escape takes only '\'.)
    if (f.pos != kChars || !n.dfa_accept.empty() || (f.aux & kSurNeedLow)) return 0;
    return n.max_items < 0 ? std::numeric_limits<int64_t>::max() : n.max_items - static_cast<int64_t>(f.cand);
  }
  return n.kind == SchemaNode::kObject ? free_.plain_room() : 0;
}

const SchemaNode* SchemaState::pattern_at(uint32_t* dfa_state) const {
  if (depth_ == 0) return nullptr;
  const Frame& f = stack_[depth_ - 1];
  const SchemaNode& n = schema_->node(f.node);
  if (n.kind == SchemaNode::kRaw) {
    *dfa_state = f.aux;
    return &n;
  }
  // (Not where the automaton also keeps a count against dfa_dist: the walk alone would miss it.)
  if (n.kind != SchemaNode::kString || n.dfa_accept.empty() || !n.dfa_dist.empty() || f.pos != kChars)
    return nullptr;
  *dfa_state = f.aux;
  return &n;
}

bool SchemaState::space_neutral() const {
  // Compact JSON has whitespace only as content: in a plain string (a space is one more plain
  // byte) and in a free object (JSON mode's own rules). A literal, enum or key with spaces in it
  // is no place for the shortcut (two spaces in a row would be judged by one).
  if (depth_ == 0) return false;
  const Frame& f = stack_[depth_ - 1];
  const SchemaNode& n = schema_->node(f.node);
  if (n.kind == SchemaNode::kObject) return true;
  return n.kind == SchemaNode::kString && f.pos == kChars && n.dfa_accept.empty() && n.min_items == 0 &&
         n.max_items < 0 && !(f.aux & kSurNeedLow);
}

bool SchemaState::string_byte(Frame& f, const SchemaNode& n, uint8_t c, bool& pop) {
  // f.cand counts the characters so far; a bounded string takes a character only below
  // max_items and closes only from min_items on (a pattern's DFA has both folded in).
  const bool bounded = n.min_items > 0 || n.max_items >= 0;
  if (f.pos == kChars && c == '"') {
    if (static_cast<int64_t>(f.cand) < n.min_items) return false;
    if (n.dfa_accept.empty() && (f.aux & kSurNeedLow)) return false;  // a high surrogate's pair is due
    if (!n.dfa_accept.empty() && !n.dfa_accept[f.aux]) return false;
    pop = true;
    return true;
  }
  if (!n.dfa_accept.empty()) {  // a pattern: every byte between the quotes moves its DFA
    if (f.pos == kOpen) {
      if (c != '"') return false;
      f.pos = kChars;
      return true;
    }
    const int32_t next = n.dfa_next[f.aux * static_cast<uint32_t>(n.dfa_classes) + n.dfa_class[c]];
    if (next < 0) return false;
    const uint64_t chars = f.cand + ((c & 0xC0) != 0x80);  // not a continuation byte: a character starts
    if (!n.dfa_dist.empty() && n.max_items >= 0 &&
        static_cast<int64_t>(chars) + n.dfa_dist[static_cast<size_t>(next)] > n.max_items)
      return false;
    f.aux = static_cast<uint32_t>(next);
    f.cand = chars;
    return true;
  }
  switch (f.pos) {
    case kOpen:
      if (c != '"') return false;
      f.pos = kChars;
      return true;
    case kChars:
      if (f.aux & kSurNeedLow) {  // a high surrogate's escape: its low one's must follow
        if (c != '\\') return false;
        f.pos = kEsc;
        return true;
      }
      if (n.max_items >= 0 && static_cast<int64_t>(f.cand) >= n.max_items) return false;  // full
      if (c == '\\') { f.pos = kEsc; ++f.cand; return true; }
      if (c < 0x20) return false;  // raw control characters must be escaped
      if (c < 0x80) { ++f.cand; return true; }
      {  // a multi-byte character's lead byte
        uint8_t need, lo, hi;
        if (!utf8_lead(c, need, lo, hi)) return false;
        f.count = need;
        f.aux = lo | static_cast<uint32_t>(hi) << 8;
      }
      f.pos = kUtf8;
      ++f.cand;
      return true;
    case kUtf8:
      if (c < (f.aux & 0xFF) || c > (f.aux >> 8)) return false;
      f.aux = 0x80 | (0xBF << 8);
      if (--f.count == 0) {
        f.pos = kChars;
        f.aux = 0;  // in kChars, aux holds only the surrogate bits
      }
      return true;
    case kEsc:
      if (c == 'u') { f.pos = kHex; f.count = 4; return true; }
      if ((f.aux & kSurNeedLow) || !is_escape(c)) return false;
      f.pos = kChars;
      return true;
    case kHex: {
      // A bounded string counts escapes as characters, so it refuses surrogates' (\uD800 ..
      // \uDFFF): a pair of them is one character. Its UTF-8 bytes stand instead.
      uint8_t sur = static_cast<uint8_t>(f.aux);
      if (!is_hex(c) || !surrogate_digit(sur, f.count, c, bounded)) return false;
      f.aux = sur;
      if (--f.count == 0) f.pos = kChars;
      return true;
    }
    default:
      return false;
  }
}

// A bounded number: the grammar below without exponents, each byte taken only when some
// completion of the number lies within the bounds, and the number ending only inside them. The
// value so far, in units, is f.cand (integer digits: the integer part; from the '.' on: scaled),
// its sign f.aux.
bool SchemaState::bounded_byte(Frame& f, const SchemaNode& n, uint8_t c, bool& pop, bool& retry) {
  const int digits = int_digits(n), frac = n.frac_digits;
  const int64_t unit = kPow10[frac];
  // Magnitudes [lo, hi] of sign neg meet the bounds, at a multiple of multiple_units if one is set.
  auto fits = [&](uint32_t neg, int64_t lo, int64_t hi) {
    const int64_t a = std::max(neg ? -hi : lo, n.min_units), b = std::min(neg ? -lo : hi, n.max_units);
    if (a > b) return false;
    const int64_t m = n.multiple_units;
    if (m <= 1) return true;
    const int64_t r = ((a % m) + m) % m;  // the first multiple at or above a (|a|, m <= 10^18)
    return r == 0 || a + (m - r) <= b;
  };
  // Integer part v of k digits: the completions with j more digits and any fraction.
  auto int_fits = [&](int64_t v, int k) {
    if (v == 0) return fits(f.aux, 0, unit - 1);  // a leading 0 takes no more digits
    for (int j = 0; k + j <= digits; ++j)
      if (fits(f.aux, v * kPow10[j] * unit, (v * kPow10[j] + kPow10[j]) * unit - 1)) return true;
    return false;
  };
  auto ends_in = [&](int64_t m) {
    const int64_t x = f.aux ? -m : m;
    return x >= n.min_units && x <= n.max_units && (n.multiple_units <= 1 || x % n.multiple_units == 0);
  };
  switch (f.pos) {
    case kStart:
      if (c == '-') {
        if (!fits(1, 0, kPow10[digits] * unit - 1)) return false;
        f.aux = 1;
        f.pos = kMinus;
        return true;
      }
      [[fallthrough]];
    case kMinus:
      if (!is_digit(c) || !int_fits(c - '0', 1)) return false;
      f.cand = c - '0';
      f.count = 1;
      f.pos = c == '0' ? kZero : kInt;
      return true;
    case kZero: case kInt: {
      const int64_t v = static_cast<int64_t>(f.cand);
      if (is_digit(c) && f.pos == kInt && f.count < digits) {
        if (!int_fits(v * 10 + (c - '0'), f.count + 1)) return false;
        f.cand = static_cast<uint64_t>(v * 10 + (c - '0'));
        ++f.count;
        return true;
      }
      if (c == '.' && frac > 0) {
        if (!fits(f.aux, v * unit, v * unit + unit - 1)) return false;
        f.cand = static_cast<uint64_t>(v * unit);
        f.count = 0;
        f.pos = kDot;
        return true;
      }
      if (!ends_in(v * unit)) return false;
      pop = retry = true;  // the number ended before c
      return true;
    }
    case kDot: case kFrac: {
      if (is_digit(c) && f.count < frac) {
        const int64_t step = kPow10[frac - f.count - 1], m = static_cast<int64_t>(f.cand) + (c - '0') * step;
        if (!fits(f.aux, m, m + step - 1)) return false;
        f.cand = static_cast<uint64_t>(m);
        ++f.count;
        f.pos = kFrac;
        return true;
      }
      if (f.pos == kDot || !ends_in(static_cast<int64_t>(f.cand))) return false;
      pop = retry = true;
      return true;
    }
    default:
      return false;
  }
}

// An object of optional properties: f.aux is the first property that may still be written; a key
// is matched against the candidates (f.cand) from there up to the first required one.
bool SchemaState::props_byte(Frame& f, const SchemaNode& n, uint8_t c, bool& pop) {
  const uint32_t np = static_cast<uint32_t>(n.children.size());
  auto required_left = [&] {
    for (uint32_t i = f.aux; i < np; ++i)
      if (n.required[i]) return true;
    return false;
  };
  // The properties that may come next: from f.aux up to the first required one, those whose
  // value fits the stack (a required one always does: the object was entered only so).
  auto candidates = [&] {
    uint64_t cand = 0;
    for (uint32_t i = f.aux; i < np; ++i) {
      if (depth_ + schema_->min_depth(n.children[i]) <= kMaxDepth) cand |= uint64_t(1) << i;
      if (n.required[i]) break;
    }
    return cand;
  };
  auto start_key = [&] {  // c is '"': the candidates' keys all start with it
    f.cand = candidates();
    f.count = 1;
    f.pos = kPKey;
    return f.cand != 0;
  };
  switch (f.pos) {
    case kPOpen:
      if (c != '{') return false;
      f.pos = kPFirst;
      return true;
    case kPFirst:
      if (c == '"' && candidates() != 0) return start_key();
      if (c == '}' && !required_left()) { pop = true; return true; }
      return false;
    case kPComma:
      return c == '"' && start_key();
    case kPAfter:
      if (c == ',' && candidates() != 0) { f.pos = kPComma; return true; }
      if (c == '}' && !required_left()) { pop = true; return true; }
      return false;
    default: {  // kPKey
      uint64_t next = 0;
      for (uint32_t i = f.aux; i < np; ++i)
        if ((f.cand >> i & 1) && static_cast<uint8_t>(n.options[i][static_cast<size_t>(f.count)]) == c)
          next |= uint64_t(1) << i;
      if (next == 0) return false;
      f.cand = next;
      ++f.count;
      for (uint32_t i = f.aux; i < np; ++i)  // a key ends in '"' ':', so one complete key is the only match
        if ((next >> i & 1) && static_cast<int32_t>(n.options[i].size()) == f.count) {
          f.aux = i + 1;
          f.pos = kPAfter;
          return push(n.children[i]);
        }
      return true;
    }
  }
}

bool SchemaState::number_byte(Frame& f, const SchemaNode& n, uint8_t c, bool& pop, bool& retry) {
  if (n.bounded) return bounded_byte(f, n, c, pop, retry);
  const bool integer = n.kind == SchemaNode::kInteger;
  auto digit = [&](int32_t phase, uint8_t cap) {
    if (f.pos != phase) f.count = 0;
    if (f.count >= cap) return false;
    f.pos = phase;
    ++f.count;
    return true;
  };
  switch (f.pos) {
    case kStart:
      if (c == '-') { f.pos = kMinus; return true; }
      [[fallthrough]];
    case kMinus:
      if (c == '0') { f.pos = kZero; return true; }
      if (c >= '1' && c <= '9') return digit(kInt, kMaxIntDigits);
      return false;
    case kDot:
      return is_digit(c) && digit(kFrac, kMaxFracDigits);
    case kE:
      if (c == '+' || c == '-') { f.pos = kESign; return true; }
      [[fallthrough]];
    case kESign:
      return is_digit(c) && digit(kExp, kMaxExpDigits);
    default:  // kZero, kInt, kFrac, kExp: complete, and maybe continued
      if (is_digit(c) && f.pos != kZero)
        return digit(f.pos, f.pos == kInt ? kMaxIntDigits : f.pos == kFrac ? kMaxFracDigits : kMaxExpDigits);
      if (!integer && c == '.' && (f.pos == kZero || f.pos == kInt)) { f.pos = kDot; return true; }
      if (!integer && (c == 'e' || c == 'E') && f.pos != kExp) { f.pos = kE; return true; }
      pop = retry = true;  // the number ended before c
      return true;
  }
}

bool SchemaState::step(Frame& f, const SchemaNode& n, uint8_t c, bool& pop, bool& retry) {
  switch (n.kind) {
    case SchemaNode::kLiteral:
      if (static_cast<uint8_t>(n.text[static_cast<size_t>(f.pos)]) != c) return false;
      pop = ++f.pos == static_cast<int32_t>(n.text.size());
      return true;
    case SchemaNode::kEnum: {
      uint64_t next = 0;
      bool complete = false, longer = false;  // of the options matched so far
      for (size_t i = 0; i < n.options.size(); ++i) {
        if (!(f.cand >> i & 1)) continue;
        const std::string& o = n.options[i];
        if (static_cast<int32_t>(o.size()) == f.pos) complete = true;
        else if (static_cast<uint8_t>(o[static_cast<size_t>(f.pos)]) == c) next |= uint64_t(1) << i;
      }
      if (next == 0) {  // c continues no option: the value ended before c, if one is complete
        if (!complete) return false;
        pop = retry = true;
        return true;
      }
      f.cand = next;
      ++f.pos;
      for (size_t i = 0; i < n.options.size(); ++i)
        if ((next >> i & 1) && static_cast<int32_t>(n.options[i].size()) > f.pos) longer = true;
      pop = !longer;  // every option still matching is complete: nothing can extend it
      return true;
    }
    case SchemaNode::kString:
      return string_byte(f, n, c, pop);
    case SchemaNode::kNumber: case SchemaNode::kInteger:
      return number_byte(f, n, c, pop, retry);
    case SchemaNode::kProps:
      return props_byte(f, n, c, pop);
    case SchemaNode::kSwitch: {
      if (f.pos == 0) {  // the options whose child fits the stack, in the switch's own frame
        f.cand = 0;
        for (size_t i = 0; i < n.options.size(); ++i)
          if (depth_ - 1 + schema_->min_depth(n.children[i]) <= kMaxDepth) f.cand |= uint64_t(1) << i;
      }
      uint64_t next = 0;
      for (size_t i = 0; i < n.options.size(); ++i)
        if ((f.cand >> i & 1) && static_cast<uint8_t>(n.options[i][static_cast<size_t>(f.pos)]) == c)
          next |= uint64_t(1) << i;
      if (next == 0) return false;
      f.cand = next;
      ++f.pos;
      for (size_t i = 0; i < n.options.size(); ++i)  // prefix-free: a complete option is the only match
        if ((next >> i & 1) && static_cast<int32_t>(n.options[i].size()) == f.pos) {
          --depth_;  // the chosen child takes the switch's frame (f is not used again)
          return push(n.children[i]);
        }
      return true;
    }
    case SchemaNode::kRaw: {
      const uint32_t k = static_cast<uint32_t>(n.dfa_classes);
      const int32_t next = n.dfa_next[f.aux * k + n.dfa_class[c]];
      if (next < 0) return false;
      f.aux = static_cast<uint32_t>(next);
      pop = n.dfa_accept[f.aux];  // where nothing can follow (a DFA of live states only), the end
      for (uint32_t j = 0; pop && j < k; ++j) pop = n.dfa_next[f.aux * k + j] < 0;
      return true;
    }
    case SchemaNode::kObject:
      if (!free_.feed(c)) return false;
      pop = free_.done();
      return true;
    case SchemaNode::kSeq:
      if (f.pos == static_cast<int32_t>(n.children.size())) {
        pop = retry = true;
        return true;
      }
      retry = true;
      return push(n.children[static_cast<size_t>(f.pos++)]);
    case SchemaNode::kArray:
      switch (f.pos) {
        case 0:
          if (c != '[') return false;
          f.pos = 1;
          return true;
        case 1:
          if (c == ']' && n.min_items == 0) { pop = true; return true; }
          if (n.max_items == 0) return false;
          break;
        case 2:
          if (c == ',' && (n.max_items < 0 || f.count < n.max_items) && (!n.unique || unused_options(n, f) != 0)) {
            f.pos = 3;
            return true;
          }
          if (c == ']' && f.count >= n.min_items) { pop = true; return true; }
          return false;
        default:
          break;
      }
      ++f.count;  // phases 1 and 3: an item starts with c
      f.pos = 2;
      retry = true;
      if (!push(n.children[0])) return false;
      if (n.unique) stack_[depth_ - 1].cand = unused_options(n, f);  // (f is the array frame below it)
      return true;
    case SchemaNode::kMap:
      return map_byte(f, n, c, pop, retry);
    default:
      return false;
  }
}

// A map: phases before '{', after '{', after a key, after ':', after a value, after ','. Each
// key and value is its own frame pushed above this one, entered with the byte that starts it.
bool SchemaState::map_byte(Frame& f, const SchemaNode& n, uint8_t c, bool& pop, bool& retry) {
  // An entry is begun only where its value fits the stack above this frame (a map with
  // min_items > 0 was entered only where one does, so this never dead-ends).
  const bool fits = depth_ + std::max(schema_->min_depth(n.children[0]), schema_->min_depth(n.children[1])) <= kMaxDepth;
  switch (f.pos) {
    case 0:
      if (c != '{') return false;
      f.pos = 1;
      return true;
    case 1:
      if (c == '}' && n.min_items == 0) { pop = true; return true; }
      if (n.max_items == 0 || !fits) return false;
      break;
    case 2:
      if (c != ':') return false;
      f.pos = 3;  // the value starts with the next byte
      return true;
    case 3:
      f.pos = 4;
      retry = true;
      return push(n.children[1]);
    case 4:
      if (c == ',' && fits && (n.max_items < 0 || f.count < n.max_items)) { f.pos = 5; return true; }
      if (c == '}' && f.count >= n.min_items) { pop = true; return true; }
      return false;
    default:
      break;
  }
  ++f.count;  // phases 1 and 5: a key starts with c
  f.pos = 2;
  retry = true;
  return push(n.children[0]);
}

// A unique array's item enum: the options it may still take (those not written yet).
uint64_t SchemaState::unused_options(const SchemaNode& array, const Frame& f) const {
  const size_t k = schema_->node(array.children[0]).options.size();
  return (k == 64 ? ~uint64_t(0) : (uint64_t(1) << k) - 1) & ~f.cand;
}

// `item` just ended: under a unique array, the option it wrote is added to the array's set.
void SchemaState::note_unique_item(const Frame& item) {
  Frame& top = stack_[depth_ - 1];
  const SchemaNode& tn = schema_->node(top.node);
  if (tn.kind != SchemaNode::kArray || !tn.unique) return;
  const SchemaNode& e = schema_->node(item.node);  // the enum: the option of its length is the one
  for (size_t i = 0; i < e.options.size(); ++i)
    if ((item.cand >> i & 1) && static_cast<int32_t>(e.options[i].size()) == item.pos) top.cand |= uint64_t(1) << i;
}

// An anyOf on top, about to take c: it becomes each alternative that takes c in turn; the first
// goes on here, the others to `forks` (without it, the first wins).
bool SchemaState::fork(const SchemaNode& n, uint8_t c, std::vector<SchemaState>* forks) {
  const SchemaState base = *this;
  bool took = false;
  for (int32_t alt : n.children) {
    SchemaState t = base;
    --t.depth_;
    if (!t.push(alt) || !t.feed(c, forks)) continue;
    if (took) {
      forks->push_back(t);
      continue;
    }
    *this = t;  // consumed by the copy, now this state
    took = true;
    if (!forks) break;
  }
  return took;
}

bool SchemaState::feed(uint8_t c, std::vector<SchemaState>* forks) {
  // Each retry pops a frame or pushes one (bounded by kMaxDepth), so this ends.
  for (int guard = 0; guard < 4 * kMaxDepth + 8; ++guard) {
    if (depth_ == 0) return false;  // the document is complete: nothing may follow
    Frame& f = stack_[depth_ - 1];
    const SchemaNode& n = schema_->node(f.node);
    if (n.kind == SchemaNode::kAnyOf) return fork(n, c, forks);
    bool pop = false, retry = false;  // pop: f (still the top: no step both pushes and pops) ended
    if (!step(f, n, c, pop, retry)) return false;
    if (pop) {
      --depth_;
      if (depth_ > 0) note_unique_item(stack_[depth_]);  // the frame just popped is still in place
      // A sequence whose last child just ended is complete too (the root's closing '}').
      while (depth_ > 0) {
        const Frame& top = stack_[depth_ - 1];
        const SchemaNode& tn = schema_->node(top.node);
        if (tn.kind != SchemaNode::kSeq || top.pos != static_cast<int32_t>(tn.children.size())) break;
        --depth_;
      }
    }
    if (!retry) return true;
  }
  return false;
}

}  // namespace llmasos
