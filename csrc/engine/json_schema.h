// Structured outputs (OpenAI response_format {"type": "json_schema"}): a JSON schema compiled (in
// Python, llmasos/json_schema.py) into a graph of nodes, and the byte automaton that only lets
// through compact JSON (no whitespace) that the schema accepts. Objects emit every declared
// property, in the declared order (so every "required" holds and nothing undeclared appears), as
// OpenAI's strict mode does; the node graph may be cyclic ($ref recursion).
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
    kString = 2,   // any JSON string
    kNumber = 3,   // any JSON number
    kInteger = 4,  // a JSON number without fraction or exponent
    kSeq = 5,      // `children` one after the other (an object: its literal key runs and values)
    kArray = 6,    // '[' children[0] (',' children[0])* ']', with min_items .. max_items items
    kAnyOf = 7,    // one of `children`, told apart by their first byte
    kObject = 8,   // any JSON object (a schema of type object with no properties)
  };
  int32_t kind = kLiteral;
  std::string text;
  std::vector<std::string> options;
  std::vector<int32_t> children;
  int32_t min_items = 0, max_items = -1;  // -1: no limit
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

 private:
  std::vector<SchemaNode> nodes_;
};

// The automaton: a stack of frames, one per node being matched. POD apart from the schema pointer,
// so the token mask can copy it per token.
class SchemaState {
 public:
  static constexpr int kMaxDepth = 32;
  explicit SchemaState(const JsonSchema* schema);
  bool feed(uint8_t c);
  bool done() const { return depth_ == 0; }
  // Inside a string with no escape or multi-byte character pending: printable ASCII but '"' and
  // '\' keeps the state exactly as it is.
  bool in_plain_string() const;

 private:
  struct Frame {
    int32_t node;
    int32_t pos;      // literal / enum: bytes matched; string / number / array: phase; seq: next child
    int32_t count;    // array: items; string: hex digits or UTF-8 bytes left; number: digits
    uint32_t aux;     // string: UTF-8 continuation range (lo | hi << 8)
    uint64_t cand;    // enum: options still matching
  };
  bool push(int32_t node);
  bool step(Frame& f, const SchemaNode& n, uint8_t c, bool& pop, bool& retry);
  bool string_byte(Frame& f, uint8_t c, bool& pop);
  bool number_byte(Frame& f, bool integer, uint8_t c, bool& pop, bool& retry);

  const JsonSchema* schema_;
  int32_t depth_ = 0;
  Frame stack_[kMaxDepth] = {};
  JsonState free_;  // the one kObject being read (nothing schema-shaped nests inside it)
};

}  // namespace llmasos
