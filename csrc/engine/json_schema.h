// Structured outputs (OpenAI response_format {"type": "json_schema"}): a JSON schema compiled (in
// Python, llmasos/json_schema.py) into a graph of nodes, and the byte automaton that only lets
// through compact JSON (no whitespace) that the schema accepts. Objects emit their declared
// properties in the declared order, the required ones always (a kSeq when all are, as in OpenAI's
// strict mode; else a kProps), so every "required" holds and nothing undeclared appears; the node
// graph may be cyclic ($ref recursion).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/json_constraint.h"

namespace llmasos {

struct SchemaNode {
  enum Kind : int32_t {
    kLiteral = 0,  // exactly the bytes `text`
    kEnum = 1,     // exactly one of `options` (each a compact JSON value)
    kString = 2,   // a JSON string: any, of min_items .. max_items characters, or one the DFA takes
    kNumber = 3,   // a JSON number (within bounds when `bounded`)
    kInteger = 4,  // a JSON number without fraction or exponent (within bounds when `bounded`)
    kSeq = 5,      // `children` one after the other (an object: its literal key runs and values)
    kArray = 6,    // '[' children[0] (',' children[0])* ']', with min_items .. max_items items; with
                   // `unique`, children[0] is an enum and each option comes at most once
    kAnyOf = 7,    // one of `children`, told apart by their first byte
    kObject = 8,   // any JSON object (a schema of type object with no properties)
    // An object whose properties (children, keys in options as '"key":') come in order, each
    // optional one written or left out: '{' then the written ones joined by ',' then '}'.
    kProps = 9,
    // The whole output as raw bytes that the DFA takes (vLLM's guided_regex / guided_choice, not
    // JSON): the output may end where the DFA accepts, and must where nothing can follow.
    kRaw = 10,
    // One of `options` (prefix-free byte strings), matched as an enum, then the child of the same
    // index in the switch's place: an object's tag picks the rest of it (a tool's name, then its
    // arguments).
    kSwitch = 11,
    // An object of any keys (Dict[str, X]): '{' (children[0] ':' children[1]) joined by ',' '}',
    // min_items .. max_items entries; children[0] is the key (a string node, or an enum of
    // quoted strings: propertyNames), children[1] every value (additionalProperties).
    kMap = 12,
  };
  int32_t kind = kLiteral;
  std::string text;
  std::vector<std::string> options;
  std::vector<int32_t> children;
  std::vector<uint8_t> required;  // kProps: per property, 1 when it must be written
  // An array's items; a map's entries; a string's characters (code points; an escape is one, a surrogate pair's
  // escapes are refused when bounded). -1: no limit.
  int32_t min_items = 0, max_items = -1;
  // A string's pattern (and formats), as a DFA over the raw UTF-8 bytes between its quotes (no
  // escapes): state 0 starts, dfa_next[state * dfa_classes + dfa_class[byte]] is the next state
  // or -1, dfa_accept[state] says the string may close there. Every state can still reach an
  // accepting one (llmasos/regex_dfa.py prunes the others), so a string never dead-ends. Empty:
  // no pattern.
  std::vector<uint8_t> dfa_class;  // 256 entries (a kRaw node's DFA: the same tables)
  int32_t dfa_classes = 0;
  std::vector<int32_t> dfa_next;
  std::vector<uint8_t> dfa_accept;
  // Empty when max_items is folded into the DFA; else, per state, the fewest characters still
  // needed to reach an accepting one: a byte is taken only while characters + this <= max_items.
  std::vector<int32_t> dfa_dist;
  // Bounds of a number: its value in units of 10^-frac_digits lies in [min_units, max_units].
  // Bounded numbers have no exponent, at most kBoundedIntDigits integer digits and frac_digits
  // fraction digits (integers: 0 and at most 18 digits), so each is exact in int64 and, having
  // at most 15 significant digits, compares as a double exactly as it does as a decimal.
  bool bounded = false;
  int32_t frac_digits = 0;
  int64_t min_units = 0, max_units = 0;
  // A bounded number's multipleOf, in the same units (0 or 1: any).
  int64_t multiple_units = 0;
  // An array's uniqueItems: its item node is an enum, whose options it keeps a set of.
  bool unique = false;
};

// A validated node graph; node 0 is the root.
class JsonSchema {
 public:
  static constexpr int kMaxOptions = 64;
  // Throws InvalidArgumentError for a graph the automaton cannot run (bad indices, empty
  // literals or enums, more than kMaxOptions options, ...).
  explicit JsonSchema(std::vector<SchemaNode> nodes);
  const SchemaNode& node(int32_t i) const { return nodes_[static_cast<size_t>(i)]; }
  int32_t size() const { return static_cast<int32_t>(nodes_.size()); }
  // Stack frames the shortest completion of node i takes (its own included; huge when it has
  // none, as mandatory recursion). The automaton enters a node only where that many fit, so
  // no prefix it takes is a dead end at the stack's depth.
  int32_t min_depth(int32_t i) const { return min_depth_[static_cast<size_t>(i)]; }

 private:
  void compute_min_depth();
  std::vector<SchemaNode> nodes_;
  std::vector<int32_t> min_depth_;
};

// One parse of the document: a stack of frames, one per node being matched. The token mask
// copies the states once per token it tries, so copies take only the frames in use.
class SchemaState {
 public:
  static constexpr int kMaxDepth = 32;
  explicit SchemaState(const JsonSchema* schema);
  SchemaState(const SchemaState& o) : schema_(o.schema_), depth_(o.depth_), free_(o.free_) { copy_frames(o); }
  SchemaState& operator=(const SchemaState& o);
  // Feeds one byte (false: it cannot come next; the state is then to be discarded). Where an
  // anyOf's alternatives could each take it, the first goes on here and the others are added to
  // `forks` (dropped without it).
  bool feed(uint8_t c, std::vector<SchemaState>* forks = nullptr);
  bool done() const { return depth_ == 0; }
  // The output may end here, though more could follow (a kRaw DFA in an accepting state).
  bool can_end() const;
  // The same parse state (two alternatives that have come to the same point merge).
  bool same_as(const SchemaState& o) const;
  // Inside a string with no escape or multi-byte character pending, where printable ASCII but
  // '"' and '\' is content that changes nothing but the string's length: how many such bytes may
  // still come (0: not in such a string).
  int64_t plain_room() const;
  // A space here changes nothing a later byte depends on: not inside a string with a length
  // bound or a pattern (the mask's whitespace shortcut holds only where this does).
  bool space_neutral() const;
  // Inside a pattern's string: its node, with the DFA state in *dfa_state; else null. Until a
  // closing quote, the string's bytes are the DFA's alone, so the mask runs tokens through it.
  const SchemaNode* pattern_at(uint32_t* dfa_state) const;

 private:
  struct Frame {
    int32_t node;
    int32_t pos;      // literal / enum: bytes matched; string / number / array / props / map: phase;
                      // seq: next child
    int32_t count;    // array: items; map: entries; string: hex digits or UTF-8 bytes left; number: digits in this
                      // part; props: bytes of the key matched
    uint32_t aux;     // string: UTF-8 continuation range (lo | hi << 8) in a character, else the
                      // surrogate bits (json_bytes::kSur*), or the DFA state; number:
                      // sign; props: the next property that may be written
    uint64_t cand;    // enum / props' keys: options still matching; string: characters; bounded
                      // number: |value|; unique array: the item enum's options written
  };
  void copy_frames(const SchemaState& o);
  bool push(int32_t node);
  bool fork(const SchemaNode& n, uint8_t c, std::vector<SchemaState>* forks);
  bool step(Frame& f, const SchemaNode& n, uint8_t c, bool& pop, bool& retry);
  bool string_byte(Frame& f, const SchemaNode& n, uint8_t c, bool& pop);
  bool number_byte(Frame& f, const SchemaNode& n, uint8_t c, bool& pop, bool& retry);
  bool bounded_byte(Frame& f, const SchemaNode& n, uint8_t c, bool& pop, bool& retry);
  bool props_byte(Frame& f, const SchemaNode& n, uint8_t c, bool& pop);
  bool map_byte(Frame& f, const SchemaNode& n, uint8_t c, bool& pop, bool& retry);
  uint64_t unused_options(const SchemaNode& array, const Frame& f) const;
  void note_unique_item(const Frame& item);

  const JsonSchema* schema_;
  int32_t depth_ = 0;
  Frame stack_[kMaxDepth];  // only [0, depth_) is ever read: copies skip the rest
  JsonState free_;  // the one kObject being read (nothing schema-shaped nests inside it)
};

// Structured outputs' automaton: the parses still open. An anyOf whose alternatives start alike
// (Union[Cat, Dog]: two objects) opens one parse per alternative that takes the byte; each is
// dropped at the first byte it cannot take, and parses that come to the same state merge. At
// most kMaxBranches are kept (past that, later alternatives are not followed: what is produced
// still matches the schema). With one parse open, as almost always, it costs what one state does.
class SchemaRun {
 public:
  static constexpr int kMaxBranches = 16;
  explicit SchemaRun(const JsonSchema* schema);
  SchemaRun(const SchemaRun& o) : n_(0) { *this = o; }
  SchemaRun& operator=(const SchemaRun& o);  // copies the open parses only
  ~SchemaRun() {}
  bool feed(uint8_t c);
  bool done() const;  // some parse is complete
  bool can_end() const;
  int open() const { return n_; }
  // As SchemaState's, for the mask: with several parses open, no shortcut (0, false, null).
  int64_t plain_room() const { return n_ == 1 ? b_[0].plain_room() : 0; }
  bool space_neutral() const { return n_ == 1 && b_[0].space_neutral(); }
  const SchemaNode* pattern_at(uint32_t* dfa_state) const { return n_ == 1 ? b_[0].pattern_at(dfa_state) : nullptr; }

 private:
  void add(const SchemaState& s);
  int n_;
  union {  // [0, n_) constructed; the rest raw, so that a copy does not build 16 states
    SchemaState b_[kMaxBranches];
  };
};

}  // namespace llmasos
