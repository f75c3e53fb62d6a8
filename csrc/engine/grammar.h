// GBNF grammars (llama.cpp's grammar format; llama-cpp-python's LlamaGrammar, llama.cpp server's
// and vLLM's `grammar` / `guided_grammar`): the output is text the grammar's root rule derives.
// gbnf_parse.h parses the text into rules of symbols (rule references and character classes;
// repetitions become rules of their own); here they are checked, and run as llama.cpp runs them:
// a set of parse stacks over Unicode code points, advanced a code point at a time.
//
// A stack lists positions in the rules' flattened alternatives, innermost last; after expansion
// its top is always a character class (or the stack is empty: the root is complete). A reference
// that ends its alternative is replaced rather than kept under the callee, so right recursion
// (which every repetition is) keeps stacks short.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/output_constraint.h"

namespace llmasos {

class Tokenizer;
class GrammarVocab;
struct GrammarMemo;

struct GrammarSymbol {
  enum Kind : int32_t { kEnd = 0, kRule = 1, kChars = 2 };
  int32_t kind = kEnd;
  int32_t arg = 0;  // kRule: the rule's index; kChars: the class's index
};

// A set of code points: the union of ranges, or everything but them when `negated`.
struct CharClass {
  bool negated = false;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive
  bool matches(uint32_t cp) const;
  // Some code point in [lo, hi] is in the class.
  bool meets(uint32_t lo, uint32_t hi) const;
};

class Grammar {
 public:
  static constexpr int32_t kMaxRules = 1 << 16, kMaxSymbols = 1 << 20;
  // rules[r]: rule r's alternatives, each a sequence of kRule / kChars symbols (empty: the empty
  // string). Throws InvalidArgumentError for a reference or class out of range, a range out of
  // Unicode, left recursion (a rule that can reach itself before any character: it would expand
  // forever), or a root that derives no finite text. Alternatives that can never finish (through
  // a rule that derives nothing, or a class with no code point) are left out, so that every parse
  // the automaton keeps can still complete. `names` (optional, one per rule) name rules in errors.
  // Linear in the grammar's size (chains of thousands of rules are what repetitions make).
  Grammar(const std::vector<std::vector<std::vector<GrammarSymbol>>>& rules, std::vector<CharClass> classes,
          int32_t root, const std::vector<std::string>& names = {});
  const GrammarSymbol& symbol(int32_t pos) const { return syms_[static_cast<size_t>(pos)]; }
  const CharClass& char_class(int32_t i) const { return classes_[static_cast<size_t>(i)]; }
  // Rule r's alternatives: their first positions.
  const std::vector<int32_t>& alternatives(int32_t r) const { return alts_[static_cast<size_t>(r)]; }
  int32_t root() const { return root_; }
  // Everything from position pos to the end of its alternative can derive the empty string.
  bool nullable_from(int32_t pos) const { return nullable_from_[static_cast<size_t>(pos)] != 0; }
  // The masks made under this grammar over `vocab`, shared by every sequence that uses both (the
  // choices of one request, the requests of one compiled grammar): one warms them for all.
  std::shared_ptr<GrammarMemo> memo_for(const std::shared_ptr<const GrammarVocab>& vocab) const;

 private:
  mutable std::mutex memo_mu_;
  mutable std::vector<std::pair<std::weak_ptr<const GrammarVocab>, std::shared_ptr<GrammarMemo>>> memos_;
  std::vector<GrammarSymbol> syms_;       // every kept alternative's symbols, each ended by kEnd
  std::vector<std::vector<int32_t>> alts_;
  std::vector<uint8_t> nullable_from_;    // per position of syms_
  std::vector<CharClass> classes_;
  int32_t root_ = 0;
};

// One point of the parse: the stacks still open, and a code point's UTF-8 bytes still to come.
class GrammarState {
 public:
  // Bounds on one point of the parse: the stacks kept (an ambiguous or branching grammar can have
  // exponentially many parses; beyond these, the later ones in sort order are dropped and the
  // text still matches), their depth (nesting deeper than this is not followed), and the stacks
  // one expansion may emit and the work it may do (the empty stack, where the text is complete,
  // is kept even past them).
  static constexpr int32_t kMaxStacks = 4096, kMaxDepth = 1 << 14;
  static constexpr int64_t kMaxEmit = 1 << 14, kMaxWork = 1 << 18;
  explicit GrammarState(const Grammar* g);
  // Feeds one byte of UTF-8 (false: it cannot come next; the state is then to be discarded).
  bool feed(uint8_t c);
  // The text so far is complete (some stack empty), with no code point half-written.
  bool can_end() const;
  // No parse left (only for a grammar whose first character lies deeper than kMaxDepth rules).
  bool dead() const { return data_.empty(); }
  // Complete, and nothing can follow.
  bool done() const { return need_ == 0 && data_.size() == 1 && data_[0] == 0; }
  bool operator==(const GrammarState& o) const {
    return need_ == o.need_ && cp_ == o.cp_ && lo_ == o.lo_ && hi_ == o.hi_ && data_ == o.data_;
  }
  uint64_t hash() const;
  size_t footprint() const { return data_.size(); }  // ints held

 private:
  bool advance(uint32_t cp);
  // Some stack could take a code point in [lo, hi] next.
  bool viable(uint32_t lo, uint32_t hi) const;
  // Adds to `out` every stack `stack` becomes once its top is a character class.
  void expand(const std::vector<int32_t>& stack, std::vector<int32_t>& out, int& count) const;
  bool all_nullable(const std::vector<int32_t>& stack) const;
  void normalize(std::vector<int32_t>& flat, int count);

  const Grammar* g_;
  // The stacks, flat and sorted: for each, its length then its positions (bottom first).
  std::vector<int32_t> data_;
  // A multi-byte code point being read: its bits so far, continuation bytes still to come, and
  // the range the next continuation byte must lie in.
  uint32_t cp_ = 0;
  uint8_t need_ = 0, lo_ = 0x80, hi_ = 0xBF;
};

// The vocabulary as a grammar sees it, built once per model: the usable tokens (not control or
// end-of-generation tokens, with bytes) sorted by their bytes, with the length each shares with
// the one before, so that a mask walks them as a trie and feeds a shared prefix once.
class GrammarVocab {
 public:
  explicit GrammarVocab(const Tokenizer& tok);

 private:
  friend class GrammarConstraint;
  std::string blob_;            // the sorted tokens' bytes, back to back
  std::vector<uint32_t> off_;   // sorted token i's bytes: blob_[off_[i], off_[i + 1])
  std::vector<uint32_t> ids_;   // sorted token i's id
  std::vector<uint32_t> lcp_;   // bytes sorted token i shares with sorted token i - 1
  std::vector<int32_t> pos_;    // token id -> its index in the sorted order (-1: not usable)
  std::vector<uint32_t> eog_ids_;
  uint32_t max_len_ = 0;
  int64_t n_vocab_ = 0;
};

// What the masks under one grammar over one vocabulary have found, shared by the sequences that
// use them (each mask takes `mu` for its lookup or walk).
struct GrammarMemo {
  // The states the masks meet, interned, with their moves by byte kept: free text and
  // repetitions come back to the same few states, so most bytes of a walk over the vocabulary
  // are one lookup. Cleared when it grows past kMaxStates or kMaxInts ints of stacks (between
  // masks, never during one).
  struct StateTable {
    static constexpr size_t kMaxStates = 1 << 13, kMaxInts = 1 << 22;
    size_t ints = 0;
    std::vector<GrammarState> states;
    std::unordered_map<uint64_t, std::vector<int32_t>> by_hash;
    std::unordered_map<uint64_t, int32_t> moves;  // id << 8 | byte -> the next id, or -1
    int32_t intern(const GrammarState& s);
    int32_t move(int32_t id, uint8_t byte);
    void clear();
  };

  // Masks of recent states (their ids in table): a repetition comes back to the same state, and
  // sequences in the same state share one.
  struct Cached {
    int32_t state;
    std::vector<uint64_t> bits;
  };
  static constexpr size_t kCache = 64;
  std::mutex mu;
  StateTable table;
  std::vector<Cached> cache;
  size_t cache_next = 0;
  std::vector<int32_t> walk;  // a walk's state ids, one per depth
};

class GrammarConstraint : public OutputConstraint {
 public:
  // With `end_tokens`, end-of-generation tokens are allowed where the text is complete.
  GrammarConstraint(std::shared_ptr<const GrammarVocab> vocab, std::shared_ptr<const Grammar> grammar,
                    bool end_tokens = true);
  int64_t mask(float* logits, int64_t n_vocab) const override;
  bool advance(int32_t id) override;
  bool done() const override { return state_.done(); }

 private:
  void allowed_bits() const;  // into bits_

  std::shared_ptr<const GrammarVocab> vocab_;
  std::shared_ptr<const Grammar> grammar_;
  bool end_tokens_;
  GrammarState state_;
  std::shared_ptr<GrammarMemo> memo_;
  mutable std::vector<uint64_t> bits_;  // this mask's allowed tokens, copied out of the memo
};

}  // namespace llmasos
