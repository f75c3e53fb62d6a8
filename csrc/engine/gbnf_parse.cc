// GBNF text -> Grammar (gbnf_parse.h): a recursive-descent parser over the text's code points.
#include "engine/gbnf_parse.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llmasos/errors.hpp"
#include "tokenizer/unicode.h"

namespace llmasos {
namespace {

using Alt = std::vector<GrammarSymbol>;
using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;
constexpr int64_t kMaxRepeat = 10000;  // the largest count a {m,n} may give (each copy is a symbol)
constexpr int kMaxNesting = 1000;      // groups inside groups (the parser recurses on each)

bool is_word(uint32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string utf8(uint32_t cp) {
  std::string s;
  unicode::utf8_append(s, cp);
  return s;
}

class Parser {
 public:
  explicit Parser(const std::string& text) {
    for (size_t i = 0; i < text.size();) {
      const size_t n = unicode::utf8_valid_len(text, i);
      if (n == 0) throw InvalidArgumentError("grammar: the text is not valid UTF-8 (byte " + std::to_string(i) + ")");
      uint32_t cp = static_cast<uint8_t>(text[i]);
      if (n > 1) {
        cp &= 0x7Fu >> n;
        for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(text[i + k]) & 0x3Fu);
      }
      s_.push_back(cp);
      i += n;
    }
  }

  std::shared_ptr<const Grammar> run() {
    bool blank = true;
    for (uint32_t c : s_) blank = blank && (c == ' ' || c == '\t' || c == '\r' || c == '\n');
    if (blank) throw InvalidArgumentError("grammar: the grammar is empty");
    space(true);
    while (i_ < s_.size()) {
      parse_rule();
      space(true);
    }
    for (const auto& [name, r] : index_)
      if (!rules_[static_cast<size_t>(r)])
        throw error("rule '" + name + "' is used but not defined", first_use_[name]);
    if (!index_.count("root")) throw InvalidArgumentError("grammar: there is no 'root' rule (the whole output)");
    std::vector<std::vector<Alt>> rules;
    for (auto& r : rules_) rules.push_back(std::move(*r));
    std::vector<CharClass> classes(class_list_.size());
    for (size_t k = 0; k < class_list_.size(); ++k) classes[k] = CharClass{class_list_[k].first, class_list_[k].second};
    auto g = std::make_shared<const Grammar>(rules, std::move(classes), index_.at("root"), origin_);
    if (GrammarState(g.get()).dead())
      throw InvalidArgumentError("grammar: its first character lies more than " +
                                 std::to_string(GrammarState::kMaxDepth) + " rules deep");
    return g;
  }

 private:
  // -- where, and errors ----------------------------------------------------------------------
  InvalidArgumentError error(const std::string& why, std::optional<size_t> at = std::nullopt) const {
    const size_t p = std::min(at.value_or(i_), s_.size());
    size_t line = 1, col = 1;
    for (size_t k = 0; k < p; ++k) {
      if (s_[k] == '\n') ++line, col = 1;
      else ++col;
    }
    return InvalidArgumentError("grammar, line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + why);
  }
  uint32_t peek(size_t k = 0) const { return i_ + k < s_.size() ? s_[i_ + k] : 0; }
  bool at_end() const { return i_ >= s_.size(); }
  std::string shown(uint32_t c) const { return at_end() && c == 0 ? "the end" : "'" + utf8(c) + "'"; }

  void space(bool newlines) {
    while (i_ < s_.size()) {
      const uint32_t c = s_[i_];
      if (c == ' ' || c == '\t' || (newlines && (c == '\r' || c == '\n'))) {
        ++i_;
      } else if (c == '#') {
        while (i_ < s_.size() && s_[i_] != '\r' && s_[i_] != '\n') ++i_;
      } else {
        return;
      }
    }
  }

  // -- rules ----------------------------------------------------------------------------------
  int32_t rule_id(const std::string& name, const std::string& origin = "") {
    const auto it = index_.find(name);
    if (it != index_.end()) return it->second;
    if (rules_.size() >= static_cast<size_t>(Grammar::kMaxRules))
      throw InvalidArgumentError("grammar: more than " + std::to_string(Grammar::kMaxRules) + " rules");
    const int32_t r = static_cast<int32_t>(rules_.size());
    index_[name] = r;
    rules_.emplace_back();
    origin_.push_back(origin.empty() ? name : origin);
    return r;
  }

  int32_t synthetic(const std::string& base, std::vector<Alt> alts) {
    size_t k = rules_.size();
    while (index_.count(base + "-" + std::to_string(k))) ++k;
    const auto it = index_.find(base);
    const int32_t r = rule_id(base + "-" + std::to_string(k), it != index_.end() ? origin_[static_cast<size_t>(it->second)] : base);
    rules_[static_cast<size_t>(r)] = std::move(alts);
    return r;
  }

  GrammarSymbol char_class(bool negated, Ranges ranges) {
    std::sort(ranges.begin(), ranges.end());
    ranges.erase(std::unique(ranges.begin(), ranges.end()), ranges.end());
    auto key = std::make_pair(negated, ranges);
    auto it = classes_.find(key);
    if (it == classes_.end()) {
      it = classes_.emplace(key, static_cast<int32_t>(class_list_.size())).first;
      class_list_.push_back(std::move(key));
    }
    return GrammarSymbol{GrammarSymbol::kChars, it->second};
  }

  std::string name() {
    const size_t j = i_;
    while (i_ < s_.size() && is_word(s_[i_])) ++i_;
    if (j == i_) throw error("expected a rule name, found " + shown(peek()));
    return std::string(s_.begin() + static_cast<std::ptrdiff_t>(j), s_.begin() + static_cast<std::ptrdiff_t>(i_));
  }

  void parse_rule() {
    const size_t at = i_;
    const std::string n = name();
    space(false);
    if (!(peek() == ':' && peek(1) == ':' && peek(2) == '=')) throw error("expected '::=' after the rule name");
    i_ += 3;
    space(true);
    const int32_t r = rule_id(n);
    if (rules_[static_cast<size_t>(r)]) throw error("rule '" + n + "' is defined twice", at);
    rules_[static_cast<size_t>(r)] = std::vector<Alt>{};  // defined (a reference to itself inside is fine)
    std::vector<Alt> alts = alternates(n, false);
    rules_[static_cast<size_t>(r)] = std::move(alts);
    space(false);
    if (!at_end() && peek() != '\r' && peek() != '\n') throw error("unexpected " + shown(peek()));
  }

  std::vector<Alt> alternates(const std::string& rule, bool nested) {
    std::vector<Alt> alts{sequence(rule, nested)};
    while (peek() == '|') {
      ++i_;
      space(true);
      alts.push_back(sequence(rule, nested));
    }
    return alts;
  }

  // -- sequences ------------------------------------------------------------------------------
  Alt sequence(const std::string& rule, bool nested) {
    Alt syms;
    std::optional<size_t> last;  // where the last item's symbols begin (for a repetition)
    while (!at_end()) {
      const uint32_t c = peek();
      if (c == '"') {
        last = syms.size();
        ++i_;
        while (peek() != '"') {
          if (at_end()) throw error("unterminated literal");
          const uint32_t cp = character();
          syms.push_back(char_class(false, {{cp, cp}}));
        }
        ++i_;
      } else if (c == '[') {
        last = syms.size();
        syms.push_back(bracket());
      } else if (c == '.') {
        last = syms.size();
        ++i_;
        syms.push_back(char_class(true, {}));
      } else if (is_word(c)) {
        last = syms.size();
        const size_t at = i_;
        const std::string n = name();
        first_use_.emplace(n, at);
        syms.push_back(GrammarSymbol{GrammarSymbol::kRule, rule_id(n)});
      } else if (c == '(') {
        last = syms.size();
        if (++depth_ > kMaxNesting) throw error("groups nested deeper than " + std::to_string(kMaxNesting));
        ++i_;
        space(true);
        std::vector<Alt> alts = alternates(rule, true);
        if (peek() != ')') throw error("expected ')'");
        ++i_;
        --depth_;
        syms.push_back(GrammarSymbol{GrammarSymbol::kRule, synthetic(rule, std::move(alts))});
      } else if (c == '<' || (c == '!' && peek(1) == '<')) {
        throw error("token references (<[id]>, <token>, !<...>) are not supported; write the text");
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (!last) throw error("'" + utf8(c) + "' has nothing before it to repeat");
        const auto [lo, hi] = repetition();
        repeat(rule, syms, *last, lo, hi);  // syms[*last:] is now the repetition, which may repeat again
        if (syms.size() == *last) last.reset();  // (x{0}: nothing left to repeat)
      } else {
        break;
      }
      space(nested);
    }
    return syms;
  }

  // One character of a literal or class (an escape read as what it stands for).
  uint32_t character() {
    if (peek() != '\\') return s_[i_++];
    const uint32_t e = peek(1);
    switch (e) {
      case 'n': i_ += 2; return '\n';
      case 'r': i_ += 2; return '\r';
      case 't': i_ += 2; return '\t';
      case '\\': case '"': case '[': case ']': case '-': i_ += 2; return e;
      case 'x': case 'u': case 'U': {
        const int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint64_t cp = 0;
        for (int k = 0; k < n; ++k) {
          const uint32_t d = peek(2 + static_cast<size_t>(k));
          const int v = d >= '0' && d <= '9' ? static_cast<int>(d - '0')
                        : d >= 'a' && d <= 'f' ? static_cast<int>(d - 'a' + 10)
                        : d >= 'A' && d <= 'F' ? static_cast<int>(d - 'A' + 10) : -1;
          if (v < 0) throw error("\\" + utf8(e) + " needs " + std::to_string(n) + " hex digits");
          cp = cp * 16 + static_cast<uint64_t>(v);
        }
        if (cp > 0x10FFFF) throw error("\\" + utf8(e) + " escape beyond Unicode");
        i_ += 2 + static_cast<size_t>(n);
        return static_cast<uint32_t>(cp);
      }
      default:
        throw error(i_ + 1 < s_.size() ? "unknown escape '\\" + utf8(e) + "'" : "unterminated escape");
    }
  }

  GrammarSymbol bracket() {
    ++i_;  // '['
    const bool negated = peek() == '^';
    if (negated) ++i_;
    Ranges ranges;
    while (peek() != ']' || at_end()) {
      if (at_end()) throw error("unterminated character class");
      const uint32_t lo = character();
      uint32_t hi = lo;
      if (peek() == '-' && peek(1) != ']' && i_ + 1 < s_.size()) {
        ++i_;
        hi = character();
        if (hi < lo) throw error("the range '" + utf8(lo) + "'-'" + utf8(hi) + "' runs backwards");
      }
      ranges.emplace_back(lo, hi);
    }
    ++i_;
    return char_class(negated, std::move(ranges));
  }

  // (m, n) of a repetition; n = -1: no maximum.
  std::pair<int64_t, int64_t> repetition() {
    const uint32_t c = s_[i_++];
    if (c == '*') return {0, -1};
    if (c == '+') return {1, -1};
    if (c == '?') return {0, 1};
    auto number = [&]() -> int64_t {  // -1: none
      space(false);
      int64_t v = -1;
      while (peek() >= '0' && peek() <= '9') {
        v = std::min<int64_t>((v < 0 ? 0 : v) * 10 + (peek() - '0'), int64_t(1) << 40);
        ++i_;
      }
      space(false);
      return v;
    };
    int64_t lo = number(), hi = lo;
    const bool comma = peek() == ',';
    if (comma) {
      ++i_;
      hi = number();
    }
    if (peek() != '}') throw error("expected '}' to close a repetition");
    ++i_;
    if (lo < 0 && hi < 0) throw error("a repetition {m,n} needs a number");
    lo = std::max<int64_t>(lo, 0);
    if (std::max(lo, hi) > kMaxRepeat) throw error("a repetition count above " + std::to_string(kMaxRepeat));
    if (hi >= 0 && hi < lo)
      throw error("the repetition {" + std::to_string(lo) + "," + std::to_string(hi) + "} has its maximum below its minimum");
    return {lo, comma ? hi : lo};
  }

  void repeat(const std::string& rule, Alt& syms, size_t last, int64_t lo, int64_t hi) {
    Alt item(syms.begin() + static_cast<std::ptrdiff_t>(last), syms.end());
    syms.resize(last);
    GrammarSymbol x = item.size() == 1 ? item[0] : GrammarSymbol{GrammarSymbol::kRule, synthetic(rule, {item})};
    if (static_cast<int64_t>(syms.size()) + lo > Grammar::kMaxSymbols)
      throw InvalidArgumentError("grammar: more than " + std::to_string(Grammar::kMaxSymbols) + " symbols");
    syms.insert(syms.end(), static_cast<size_t>(lo), x);
    if (hi < 0) {  // r ::= x r | (empty)
      const int32_t r = synthetic(rule, {});
      rules_[static_cast<size_t>(r)] = std::vector<Alt>{{x, GrammarSymbol{GrammarSymbol::kRule, r}}, {}};
      syms.push_back(GrammarSymbol{GrammarSymbol::kRule, r});
    } else if (hi > lo) {  // (x (x (x)?)?)?, innermost first
      std::optional<int32_t> inner;
      for (int64_t k = 0; k < hi - lo; ++k) {
        Alt alt{x};
        if (inner) alt.push_back(GrammarSymbol{GrammarSymbol::kRule, *inner});
        inner = synthetic(rule, {alt, {}});
      }
      syms.push_back(GrammarSymbol{GrammarSymbol::kRule, *inner});
    }
  }

  std::vector<uint32_t> s_;
  size_t i_ = 0;
  int depth_ = 0;  // groups open
  std::map<std::string, int32_t> index_;  // rule name -> its index (ordered: errors name the first)
  std::vector<std::optional<std::vector<Alt>>> rules_;
  std::vector<std::string> origin_;  // the rule a synthetic one was made for (errors)
  std::unordered_map<std::string, size_t> first_use_;  // where a name was first referred to
  std::map<std::pair<bool, Ranges>, int32_t> classes_;
  std::vector<std::pair<bool, Ranges>> class_list_;
};

}  // namespace

std::shared_ptr<const Grammar> parse_gbnf(const std::string& text) { return Parser(text).run(); }

}  // namespace llmasos
