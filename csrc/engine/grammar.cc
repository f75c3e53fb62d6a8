// GBNF grammars: the rules checked (grammar.h says which), the parse stacks advanced a code point at
// a time, and the per-step token mask walked over the vocabulary as a trie.
#include "engine/grammar.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "engine/json_constraint.h"  // json_bytes::utf8_lead
#include "llmasos/errors.hpp"
#include "tokenizer/tokenizer.h"

namespace llmasos {

namespace {
constexpr uint32_t kMaxCodePoint = 0x10FFFF;
}  // namespace

// ---- character classes -------------------------------------------------------------------------

bool CharClass::matches(uint32_t cp) const {
  bool in = false;
  for (const auto& r : ranges) in = in || (cp >= r.first && cp <= r.second);
  return in != negated;
}

bool CharClass::meets(uint32_t lo, uint32_t hi) const {
  if (!negated) {
    for (const auto& r : ranges)
      if (r.first <= hi && r.second >= lo) return true;
    return false;
  }
  // Negated: some point of [lo, hi] lies outside every range. Walk up from lo past the ranges
  // that cover it (a few ranges: a quadratic walk is fine).
  uint64_t at = lo;
  for (bool moved = true; moved && at <= hi;) {
    moved = false;
    for (const auto& r : ranges)
      if (r.first <= at && at <= r.second) {
        at = uint64_t(r.second) + 1;
        moved = true;
      }
  }
  return at <= hi;
}

// ---- the grammar -------------------------------------------------------------------------------

Grammar::Grammar(const std::vector<std::vector<std::vector<GrammarSymbol>>>& rules, std::vector<CharClass> classes,
                 int32_t root, const std::vector<std::string>& names)
    : classes_(std::move(classes)), root_(root) {
  const int64_t n = static_cast<int64_t>(rules.size());
  if (n == 0) throw InvalidArgumentError("grammar: no rules");
  if (n > kMaxRules) throw InvalidArgumentError("grammar: more than " + std::to_string(kMaxRules) + " rules");
  if (root < 0 || root >= n) throw InvalidArgumentError("grammar: the root rule is out of range");
  auto name = [&](int64_t r) {
    return static_cast<size_t>(r) < names.size() ? "'" + names[static_cast<size_t>(r)] + "'" : std::to_string(r);
  };
  for (const auto& cls : classes_)
    for (const auto& r : cls.ranges)
      if (r.first > r.second || r.second > kMaxCodePoint)
        throw InvalidArgumentError("grammar: a character range is not within Unicode (0 .. 0x10FFFF)");
  // Every alternative, numbered: (rule, alternative) of alternative k.
  std::vector<std::pair<int32_t, const std::vector<GrammarSymbol>*>> alts;
  int64_t total = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (rules[static_cast<size_t>(r)].empty())
      throw InvalidArgumentError("grammar: rule " + name(r) + " has no alternatives");
    for (const auto& alt : rules[static_cast<size_t>(r)]) {
      total += static_cast<int64_t>(alt.size()) + 1;
      if (total > kMaxSymbols) throw InvalidArgumentError("grammar: more than " + std::to_string(kMaxSymbols) + " symbols");
      for (const GrammarSymbol& s : alt) {
        const bool ok = (s.kind == GrammarSymbol::kRule && s.arg >= 0 && s.arg < n) ||
                        (s.kind == GrammarSymbol::kChars && s.arg >= 0 &&
                         s.arg < static_cast<int64_t>(classes_.size()));
        if (!ok) throw InvalidArgumentError("grammar: rule " + name(r) + " has a bad symbol");
      }
      alts.emplace_back(static_cast<int32_t>(r), &alt);
    }
  }
  // A class can match some text: a Unicode scalar value (surrogates have no UTF-8).
  std::vector<uint8_t> cls_ok(classes_.size());
  for (size_t i = 0; i < classes_.size(); ++i)
    cls_ok[i] = classes_[i].meets(0, 0xD7FF) || classes_[i].meets(0xE000, kMaxCodePoint);

  // Productive rules (those that derive some finite text) and nullable ones (the empty string),
  // each by a worklist: an alternative counts the symbols it still waits for, and a rule found
  // so tells the alternatives that use it. Linear, where repeated passes would be quadratic on
  // the chains of rules repetitions make.
  std::vector<std::vector<int32_t>> users(static_cast<size_t>(n));  // rule -> alternatives using it (per use)
  for (size_t k = 0; k < alts.size(); ++k)
    for (const GrammarSymbol& s : *alts[k].second)
      if (s.kind == GrammarSymbol::kRule) users[static_cast<size_t>(s.arg)].push_back(static_cast<int32_t>(k));
  auto solve = [&](bool nullable) {
    std::vector<uint8_t> yes(static_cast<size_t>(n), 0);
    std::vector<int64_t> waits(alts.size(), 0);
    std::vector<int32_t> queue;
    for (size_t k = 0; k < alts.size(); ++k) {
      for (const GrammarSymbol& s : *alts[k].second) {
        if (s.kind == GrammarSymbol::kRule) ++waits[k];
        else if (nullable || !cls_ok[static_cast<size_t>(s.arg)]) waits[k] = INT64_MIN / 2;  // never
      }
      if (waits[k] == 0 && !yes[static_cast<size_t>(alts[k].first)]) {
        yes[static_cast<size_t>(alts[k].first)] = 1;
        queue.push_back(alts[k].first);
      }
    }
    while (!queue.empty()) {
      const int32_t r = queue.back();
      queue.pop_back();
      for (int32_t k : users[static_cast<size_t>(r)])
        if (--waits[static_cast<size_t>(k)] == 0 && !yes[static_cast<size_t>(alts[static_cast<size_t>(k)].first)]) {
          yes[static_cast<size_t>(alts[static_cast<size_t>(k)].first)] = 1;
          queue.push_back(alts[static_cast<size_t>(k)].first);
        }
    }
    return yes;
  };
  const std::vector<uint8_t> prod = solve(false), nullable = solve(true);
  if (!prod[static_cast<size_t>(root)]) throw InvalidArgumentError("grammar: the root rule derives no finite text");
  auto alt_ok = [&](const std::vector<GrammarSymbol>& alt) {
    for (const GrammarSymbol& s : alt)
      if (!(s.kind == GrammarSymbol::kChars ? cls_ok[static_cast<size_t>(s.arg)] : prod[static_cast<size_t>(s.arg)]))
        return false;
    return true;
  };

  // Left recursion: an edge r -> s where s can come first in a kept alternative of r (after
  // nullable rules only); a cycle would expand forever. Depth first without recursion, as a
  // grammar's rules may chain tens of thousands deep.
  auto edges = [&](int32_t r) {
    std::vector<int32_t> out;
    for (const auto& alt : rules[static_cast<size_t>(r)]) {
      if (!alt_ok(alt)) continue;
      for (const GrammarSymbol& s : alt) {
        if (s.kind != GrammarSymbol::kRule) break;
        out.push_back(s.arg);
        if (!nullable[static_cast<size_t>(s.arg)]) break;
      }
    }
    return out;
  };
  std::vector<uint8_t> mark(static_cast<size_t>(n), 0);  // 0 unseen, 1 on the path, 2 done
  for (int32_t start = 0; start < n; ++start) {
    if (!prod[static_cast<size_t>(start)] || mark[static_cast<size_t>(start)]) continue;
    std::vector<std::pair<int32_t, std::vector<int32_t>>> path;
    std::vector<size_t> next;
    mark[static_cast<size_t>(start)] = 1;
    path.emplace_back(start, edges(start));
    next.push_back(0);
    while (!path.empty()) {
      if (next.back() == path.back().second.size()) {
        mark[static_cast<size_t>(path.back().first)] = 2;
        path.pop_back();
        next.pop_back();
        continue;
      }
      const int32_t s = path.back().second[next.back()++];
      if (mark[static_cast<size_t>(s)] == 1)
        throw InvalidArgumentError("grammar: left recursion in rule " + name(s) +
                                   ": it can come back to itself before any character (a repetition of "
                                   "something that can be empty does too), which would expand forever");
      if (mark[static_cast<size_t>(s)] == 0) {
        mark[static_cast<size_t>(s)] = 1;
        path.emplace_back(s, edges(s));
        next.push_back(0);
      }
    }
  }

  alts_.resize(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r)
    for (const auto& alt : rules[static_cast<size_t>(r)])
      if (alt_ok(alt)) {
        alts_[static_cast<size_t>(r)].push_back(static_cast<int32_t>(syms_.size()));
        syms_.insert(syms_.end(), alt.begin(), alt.end());
        syms_.push_back(GrammarSymbol{});
      }
  // nullable_from_, backwards through each alternative from its kEnd.
  nullable_from_.assign(syms_.size(), 0);
  for (size_t p = syms_.size(); p-- > 0;) {
    const GrammarSymbol& s = syms_[p];
    nullable_from_[p] = s.kind == GrammarSymbol::kEnd ||
                        (s.kind == GrammarSymbol::kRule && nullable[static_cast<size_t>(s.arg)] && nullable_from_[p + 1]);
  }
}

// ---- the parse state ---------------------------------------------------------------------------

namespace {
thread_local std::vector<int32_t> t_stack, t_out;
}  // namespace

GrammarState::GrammarState(const Grammar* g) : g_(g) {
  std::vector<int32_t>& out = t_out;
  out.clear();
  int count = 0;
  // The root as if referred to from an empty stack whose alternative ends there.
  for (int32_t a : g->alternatives(g->root()))
    expand(g->symbol(a).kind == GrammarSymbol::kEnd ? std::vector<int32_t>{} : std::vector<int32_t>{a}, out, count);
  normalize(out, count);
}

// Emits every stack `stack` becomes once its top is a character class: a rule reference at the
// top is replaced by each of the rule's alternatives (its own continuation kept under them unless
// the reference ended its alternative). Left recursion is refused, so this ends; it runs on a work
// list, depth first in the rules' order, as chains of rules can be deep. Past kMaxEmit stacks or
// kMaxWork steps (a blow-up) it only looks for the empty stack, so "complete" is never lost.
void GrammarState::expand(const std::vector<int32_t>& stack, std::vector<int32_t>& out, int& count) const {
  thread_local std::vector<std::vector<int32_t>> work;
  work.clear();
  work.push_back(stack);
  int64_t steps = 0;
  bool empty_sent = false;
  while (!work.empty()) {
    std::vector<int32_t> st = std::move(work.back());
    work.pop_back();
    if (count >= kMaxEmit || ++steps > kMaxWork) {
      if (!empty_sent && all_nullable(st)) {
        out.push_back(0);
        ++count;
        empty_sent = true;
      }
      continue;
    }
    if (st.empty() || g_->symbol(st.back()).kind == GrammarSymbol::kChars) {
      if (static_cast<int32_t>(st.size()) > kMaxDepth) continue;
      out.push_back(static_cast<int32_t>(st.size()));
      out.insert(out.end(), st.begin(), st.end());
      ++count;
      empty_sent = empty_sent || st.empty();
      continue;
    }
    const int32_t p = st.back();
    const std::vector<int32_t>& alts = g_->alternatives(g_->symbol(p).arg);
    st.pop_back();
    if (g_->symbol(p + 1).kind != GrammarSymbol::kEnd) st.push_back(p + 1);
    for (size_t k = alts.size(); k-- > 0;) {  // reversed onto the work list: popped in order
      work.push_back(st);
      if (g_->symbol(alts[k]).kind != GrammarSymbol::kEnd) work.back().push_back(alts[k]);  // else: the empty alternative
    }
  }
}

// Every frame of the stack can finish without a character: the text may be complete here.
bool GrammarState::all_nullable(const std::vector<int32_t>& stack) const {
  for (int32_t p : stack)
    if (!g_->nullable_from(p)) return false;
  return true;
}

// data_ = the stacks of `flat` (count of them), sorted and without repeats, at most kMaxStacks.
void GrammarState::normalize(std::vector<int32_t>& flat, int count) {
  if (count <= 1) {
    data_.assign(flat.begin(), flat.end());
    return;
  }
  std::vector<std::pair<int32_t, int32_t>> spans;  // (offset of the length, length)
  spans.reserve(static_cast<size_t>(count));
  for (size_t i = 0; i < flat.size(); i += static_cast<size_t>(flat[i]) + 1)
    spans.emplace_back(static_cast<int32_t>(i), flat[i]);
  auto begin = [&](const std::pair<int32_t, int32_t>& s) { return flat.begin() + s.first + 1; };
  auto less = [&](const auto& a, const auto& b) {
    return std::lexicographical_compare(begin(a), begin(a) + a.second, begin(b), begin(b) + b.second);
  };
  auto same = [&](const auto& a, const auto& b) {
    return a.second == b.second && std::equal(begin(a), begin(a) + a.second, begin(b));
  };
  std::sort(spans.begin(), spans.end(), less);
  spans.erase(std::unique(spans.begin(), spans.end(), same), spans.end());
  if (static_cast<int32_t>(spans.size()) > kMaxStacks) spans.resize(kMaxStacks);
  data_.clear();
  for (const auto& s : spans) data_.insert(data_.end(), flat.begin() + s.first, flat.begin() + s.first + 1 + s.second);
}

bool GrammarState::advance(uint32_t cp) {
  std::vector<int32_t>& out = t_out;
  std::vector<int32_t>& stack = t_stack;
  out.clear();
  int count = 0;
  for (size_t i = 0; i < data_.size(); i += static_cast<size_t>(data_[i]) + 1) {
    const int32_t len = data_[i];
    if (len == 0) continue;
    const int32_t top = data_[i + static_cast<size_t>(len)];
    if (!g_->char_class(g_->symbol(top).arg).matches(cp)) continue;
    stack.assign(data_.begin() + static_cast<std::ptrdiff_t>(i) + 1, data_.begin() + static_cast<std::ptrdiff_t>(i) + len);
    if (g_->symbol(top + 1).kind != GrammarSymbol::kEnd) stack.push_back(top + 1);
    expand(stack, out, count);
  }
  if (count == 0) return false;
  normalize(out, count);
  return true;
}

bool GrammarState::viable(uint32_t lo, uint32_t hi) const {
  for (size_t i = 0; i < data_.size(); i += static_cast<size_t>(data_[i]) + 1)
    if (data_[i] > 0 && g_->char_class(g_->symbol(data_[i + static_cast<size_t>(data_[i])]).arg).meets(lo, hi))
      return true;
  return false;
}

bool GrammarState::feed(uint8_t c) {
  if (need_ == 0) {
    if (c < 0x80) return advance(c);
    uint8_t need = 0, lo = 0, hi = 0;
    if (!json_bytes::utf8_lead(c, need, lo, hi)) return false;
    cp_ = c & (need == 1 ? 0x1Fu : need == 2 ? 0x0Fu : 0x07u);
    need_ = need;
    lo_ = lo;
    hi_ = hi;
  } else {
    if (c < lo_ || c > hi_) return false;
    cp_ = (cp_ << 6) | (c & 0x3Fu);
    --need_;
    lo_ = 0x80;
    hi_ = 0xBF;
    if (need_ == 0) {
      const uint32_t cp = cp_;
      cp_ = 0;
      return advance(cp);
    }
  }
  // A code point half-written: some stack must take one that starts so. Its next byte lies in
  // [lo_, hi_] (which rules out overlong forms, surrogates and what lies past U+10FFFF), any
  // byte after that in 0x80..0xBF.
  const int rest = 6 * (need_ - 1);
  const uint32_t low = ((cp_ << 6) | (lo_ & 0x3Fu)) << rest;
  const uint32_t high = (((cp_ << 6) | (hi_ & 0x3Fu)) << rest) | ((1u << rest) - 1);
  return viable(low, high);
}

bool GrammarState::can_end() const { return need_ == 0 && !data_.empty() && data_[0] == 0; }

// ---- the vocabulary and the mask ---------------------------------------------------------------

GrammarVocab::GrammarVocab(const Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  n_vocab_ = n;
  std::vector<std::pair<std::string, int32_t>> toks;
  for (int32_t i = 0; i < n; ++i) {
    if (tok.is_eog(i)) eog_ids_.push_back(static_cast<uint32_t>(i));
    if (tok.is_control(i) || tok.is_eog(i)) continue;
    std::string b = tok.token_bytes(i);
    if (!b.empty()) toks.emplace_back(std::move(b), i);
  }
  std::sort(toks.begin(), toks.end());
  pos_.assign(static_cast<size_t>(n), -1);
  off_.push_back(0);
  for (size_t i = 0; i < toks.size(); ++i) {
    const std::string& b = toks[i].first;
    uint32_t l = 0;
    if (i > 0) {
      const std::string& p = toks[i - 1].first;
      while (l < p.size() && l < b.size() && p[l] == b[l]) ++l;
    }
    lcp_.push_back(l);
    ids_.push_back(static_cast<uint32_t>(toks[i].second));
    pos_[static_cast<size_t>(toks[i].second)] = static_cast<int32_t>(i);
    blob_ += b;
    off_.push_back(static_cast<uint32_t>(blob_.size()));
    max_len_ = std::max<uint32_t>(max_len_, static_cast<uint32_t>(b.size()));
  }
}

GrammarConstraint::GrammarConstraint(std::shared_ptr<const GrammarVocab> vocab, std::shared_ptr<const Grammar> grammar,
                                     bool end_tokens)
    : vocab_(std::move(vocab)), grammar_(std::move(grammar)), end_tokens_(end_tokens), state_(grammar_.get()),
      memo_(grammar_->memo_for(vocab_)) {}

uint64_t GrammarState::hash() const {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the stacks and the pending code point
  auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  for (int32_t v : data_) mix(static_cast<uint32_t>(v));
  mix(cp_);
  mix(uint64_t(need_) | uint64_t(lo_) << 8 | uint64_t(hi_) << 16);
  return h;
}

int32_t GrammarMemo::StateTable::intern(const GrammarState& s) {
  std::vector<int32_t>& ids = by_hash[s.hash()];
  for (int32_t id : ids)
    if (states[static_cast<size_t>(id)] == s) return id;
  states.push_back(s);
  ints += s.footprint();
  ids.push_back(static_cast<int32_t>(states.size() - 1));
  return ids.back();
}

int32_t GrammarMemo::StateTable::move(int32_t id, uint8_t byte) {
  const uint64_t key = uint64_t(static_cast<uint32_t>(id)) << 8 | byte;
  const auto it = moves.find(key);
  if (it != moves.end()) return it->second;
  GrammarState next = states[static_cast<size_t>(id)];
  const int32_t to = next.feed(byte) ? intern(next) : -1;
  moves.emplace(key, to);
  return to;
}

void GrammarMemo::StateTable::clear() {
  ints = 0;
  states.clear();
  by_hash.clear();
  moves.clear();
}

std::shared_ptr<GrammarMemo> Grammar::memo_for(const std::shared_ptr<const GrammarVocab>& vocab) const {
  std::lock_guard<std::mutex> lock(memo_mu_);
  std::shared_ptr<GrammarMemo> found;
  size_t live = 0;  // entries of vocabularies still alive, moved to the front
  for (size_t k = 0; k < memos_.size(); ++k) {
    const std::shared_ptr<const GrammarVocab> held = memos_[k].first.lock();
    if (!held) continue;
    if (held == vocab) found = memos_[k].second;
    if (live != k) memos_[live] = std::move(memos_[k]);
    ++live;
  }
  memos_.resize(live);
  if (!found) {
    found = std::make_shared<GrammarMemo>();
    memos_.emplace_back(vocab, found);
  }
  return found;
}

// The usable tokens whose bytes all feed from the state, as bits by id, into bits_. The tokens
// are walked in byte order, each from the state of the prefix it shares with the one before; a
// prefix that fails fails every token after it that shares it. Under the memo's lock: another
// sequence may be using it.
void GrammarConstraint::allowed_bits() const {
  GrammarMemo& m = *memo_;
  std::lock_guard<std::mutex> lock(m.mu);
  GrammarMemo::StateTable& table = m.table;
  if (table.states.size() > GrammarMemo::StateTable::kMaxStates || table.ints > GrammarMemo::StateTable::kMaxInts) {
    table.clear();
    m.cache.clear();
    m.cache_next = 0;
  }
  const int32_t start = table.intern(state_);
  for (const GrammarMemo::Cached& c : m.cache)
    if (c.state == start) {
      bits_ = c.bits;
      return;
    }
  const GrammarVocab& v = *vocab_;
  std::vector<uint64_t> bits((static_cast<size_t>(v.n_vocab_) + 63) / 64, 0);
  std::vector<int32_t>& walk = m.walk;
  walk.assign(static_cast<size_t>(v.max_len_) + 1, start);
  size_t dead = std::numeric_limits<size_t>::max();  // the current prefix's length that failed
  size_t valid = 0;  // walk[0 .. valid] hold the states of the current token's prefixes
  for (size_t i = 0; i < v.ids_.size(); ++i) {
    const size_t l = v.lcp_[i];
    if (dead <= l) continue;
    dead = std::numeric_limits<size_t>::max();
    const char* b = v.blob_.data() + v.off_[i];
    const size_t len = v.off_[i + 1] - v.off_[i];
    size_t d = std::min(l, valid);
    for (; d < len; ++d) {
      const int32_t next = table.move(walk[d], static_cast<uint8_t>(b[d]));
      if (next < 0) {
        dead = d + 1;
        break;
      }
      walk[d + 1] = next;
    }
    valid = d;  // all of it, or the prefix before the failing byte
    if (d == len) bits[v.ids_[i] / 64] |= uint64_t(1) << (v.ids_[i] % 64);
  }
  bits_ = bits;
  if (m.cache.size() < GrammarMemo::kCache) {
    m.cache.push_back(GrammarMemo::Cached{start, std::move(bits)});
    return;
  }
  m.cache[m.cache_next] = GrammarMemo::Cached{start, std::move(bits)};
  m.cache_next = (m.cache_next + 1) % GrammarMemo::kCache;
}

int64_t GrammarConstraint::mask(float* logits, int64_t n_vocab) const {
  allowed_bits();
  const std::vector<uint64_t>& bits = bits_;
  const int64_t n = std::min<int64_t>(n_vocab, vocab_->n_vocab_);
  // Where the text is complete, the end-of-generation tokens stay (usable tokens never are ones).
  std::vector<std::pair<int64_t, float>> ends;
  if (end_tokens_ && state_.can_end())
    for (uint32_t id : vocab_->eog_ids_)
      if (id < n) ends.emplace_back(id, logits[id]);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (bits[static_cast<size_t>(i) / 64] >> (i % 64) & 1) ++kept;
    else logits[i] = kNegInf;
  }
  for (int64_t i = n; i < n_vocab; ++i) logits[i] = kNegInf;
  for (const auto& [id, x] : ends) logits[id] = x;
  return kept + static_cast<int64_t>(ends.size());
}

bool GrammarConstraint::advance(int32_t id) {
  const GrammarVocab& v = *vocab_;
  if (id < 0 || id >= v.n_vocab_ || v.pos_[static_cast<size_t>(id)] < 0) return false;
  const size_t i = static_cast<size_t>(v.pos_[static_cast<size_t>(id)]);
  GrammarState s = state_;
  for (uint32_t k = v.off_[i]; k < v.off_[i + 1]; ++k)
    if (!s.feed(static_cast<uint8_t>(v.blob_[k]))) return false;
  state_ = std::move(s);
  return true;
}

}  // namespace llmasos
