// What the sampler asks of a constraint on the output (JSON mode and structured outputs,
// json_constraint.h; a GBNF grammar, grammar.h): a mask of the tokens that may come next, and the
// state moved on by the token drawn. One per sequence; not shared between threads.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace llmasos {

class OutputConstraint {
 public:
  virtual ~OutputConstraint() = default;
  // Sets the logits of the tokens that cannot come next to -inf; returns how many remain.
  virtual int64_t mask(float* logits, int64_t n_vocab) const = 0;
  // Takes the sampled token (one mask() allowed). False if it does not fit (state unchanged).
  virtual bool advance(int32_t id) = 0;
  // Nothing more may follow: generation ends here ("stop").
  virtual bool done() const = 0;
  // advance() for a token the sampler drew from this mask: not fitting is a bug, not bad input.
  void advance_or_throw(int32_t id) {
    if (!advance(id))
      throw std::logic_error("constrained output: token " + std::to_string(id) +
                             " was drawn but does not fit the constraint");
  }
};

}  // namespace llmasos
