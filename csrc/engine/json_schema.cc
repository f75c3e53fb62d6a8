// Structured outputs: the schema graph's checks and its byte automaton (json_schema.h).
#include "engine/json_schema.h"

#include <string>

#include "llmasos/errors.hpp"

namespace llmasos {

namespace {

constexpr uint8_t kMaxIntDigits = 20, kMaxFracDigits = 20, kMaxExpDigits = 3;

bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// String phases, and number phases (the complete ones: kZero, kInt, kFrac, kExp).
enum : int32_t { kOpen = 0, kChars = 1, kEsc = 2, kHex = 3, kUtf8 = 4 };
enum : int32_t { kStart = 0, kMinus = 1, kZero = 2, kInt = 3, kDot = 4, kFrac = 5, kE = 6, kESign = 7, kExp = 8 };

}  // namespace

JsonSchema::JsonSchema(std::vector<SchemaNode> nodes) : nodes_(std::move(nodes)) {
  auto bad = [](size_t i, const std::string& why) {
    throw InvalidArgumentError("json_schema: node " + std::to_string(i) + ": " + why);
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
      case SchemaNode::kString: case SchemaNode::kNumber: case SchemaNode::kInteger: case SchemaNode::kObject:
        break;
      case SchemaNode::kSeq:
        if (s.children.empty()) bad(i, "an empty sequence");
        break;
      case SchemaNode::kArray:
        if (s.children.size() != 1) bad(i, "an array has one item node");
        if (s.min_items < 0 || s.max_items < -1 || (s.max_items >= 0 && s.max_items < s.min_items))
          bad(i, "min_items / max_items out of range");
        break;
      case SchemaNode::kAnyOf:
        if (s.children.empty()) bad(i, "anyOf without alternatives");
        for (int32_t c : s.children)
          if (nodes_[static_cast<size_t>(c)].kind == SchemaNode::kAnyOf) bad(i, "anyOf inside anyOf");
        break;
      default:
        bad(i, "unknown kind " + std::to_string(s.kind));
    }
  }
}

SchemaState::SchemaState(const JsonSchema* schema) : schema_(schema) { push(0); }

bool SchemaState::push(int32_t node) {
  if (depth_ >= kMaxDepth) return false;
  const SchemaNode& n = schema_->node(node);
  stack_[depth_++] = Frame{node, 0, 0, 0, n.kind == SchemaNode::kEnum ? (n.options.size() == 64
      ? ~uint64_t(0) : (uint64_t(1) << n.options.size()) - 1) : 0};
  if (n.kind == SchemaNode::kObject) free_ = JsonState();
  return true;
}

bool SchemaState::in_plain_string() const {
  if (depth_ == 0) return false;
  const Frame& f = stack_[depth_ - 1];
  const int32_t kind = schema_->node(f.node).kind;
  if (kind == SchemaNode::kString) return f.pos == kChars;
  return kind == SchemaNode::kObject && free_.in_plain_string();
}

bool SchemaState::string_byte(Frame& f, uint8_t c, bool& pop) {
  switch (f.pos) {
    case kOpen:
      if (c != '"') return false;
      f.pos = kChars;
      return true;
    case kChars:
      if (c == '"') { pop = true; return true; }
      if (c == '\\') { f.pos = kEsc; return true; }
      if (c < 0x20) return false;  // raw control characters must be escaped
      if (c < 0x80) return true;
      // A multi-byte character's lead byte (as JsonState: no overlong forms, no surrogates).
      f.aux = 0x80 | (0xBF << 8);
      if (c >= 0xC2 && c <= 0xDF) f.count = 1;
      else if (c == 0xE0) f.count = 2, f.aux = 0xA0 | (0xBF << 8);
      else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) f.count = 2;
      else if (c == 0xED) f.count = 2, f.aux = 0x80 | (0x9F << 8);
      else if (c == 0xF0) f.count = 3, f.aux = 0x90 | (0xBF << 8);
      else if (c >= 0xF1 && c <= 0xF3) f.count = 3;
      else if (c == 0xF4) f.count = 3, f.aux = 0x80 | (0x8F << 8);
      else return false;
      f.pos = kUtf8;
      return true;
    case kUtf8:
      if (c < (f.aux & 0xFF) || c > (f.aux >> 8)) return false;
      f.aux = 0x80 | (0xBF << 8);
      if (--f.count == 0) f.pos = kChars;
      return true;
    case kEsc:
      if (c == 'u') { f.pos = kHex; f.count = 4; return true; }
      if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
        f.pos = kChars;
        return true;
      }
      return false;
    case kHex:
      if (!is_hex(c)) return false;
      if (--f.count == 0) f.pos = kChars;
      return true;
    default:
      return false;
  }
}

bool SchemaState::number_byte(Frame& f, bool integer, uint8_t c, bool& pop, bool& retry) {
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
      return string_byte(f, c, pop);
    case SchemaNode::kNumber: case SchemaNode::kInteger:
      return number_byte(f, n.kind == SchemaNode::kInteger, c, pop, retry);
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
          if (c == ',' && (n.max_items < 0 || f.count < n.max_items)) { f.pos = 3; return true; }
          if (c == ']' && f.count >= n.min_items) { pop = true; return true; }
          return false;
        default:
          break;
      }
      ++f.count;  // phases 1 and 3: an item starts with c
      f.pos = 2;
      retry = true;
      return push(n.children[0]);
    case SchemaNode::kAnyOf:
      // The first alternative that takes c (the compiler makes their first bytes differ).
      for (int32_t alt : n.children) {
        SchemaState t = *this;
        --t.depth_;
        if (t.push(alt) && t.feed(c)) {
          *this = t;
          return true;  // consumed by the copy, now this state
        }
      }
      return false;
    default:
      return false;
  }
}

bool SchemaState::feed(uint8_t c) {
  // Each retry pops a frame or pushes one (bounded by kMaxDepth), so this ends.
  for (int guard = 0; guard < 4 * kMaxDepth + 8; ++guard) {
    if (depth_ == 0) return false;  // the document is complete: nothing may follow
    Frame& f = stack_[depth_ - 1];
    const SchemaNode& n = schema_->node(f.node);
    bool pop = false, retry = false;  // pop: f (still the top: no step both pushes and pops) ended
    if (!step(f, n, c, pop, retry)) return false;
    if (n.kind == SchemaNode::kAnyOf) return true;  // the chosen alternative took c
    if (pop) {
      --depth_;
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
