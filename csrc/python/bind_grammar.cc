// GBNF grammars (engine/grammar.h): the checked rules llmasos/gbnf.py builds from a grammar's
// text, and test hooks for the automaton and its token mask.
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "engine/grammar.h"
#include "llmasos/errors.hpp"
#include "tokenizer/tokenizer.h"

namespace py = pybind11;

namespace llmasos::python {
namespace {

using Alt = std::vector<std::pair<int32_t, int32_t>>;  // (kind, arg) per symbol

std::shared_ptr<Grammar> make_grammar(const std::vector<std::vector<Alt>>& rules,
                                      const std::vector<std::pair<bool, std::vector<std::pair<uint32_t, uint32_t>>>>& classes,
                                      int32_t root) {
  std::vector<std::vector<std::vector<GrammarSymbol>>> r(rules.size());
  for (size_t i = 0; i < rules.size(); ++i)
    for (const Alt& alt : rules[i]) {
      std::vector<GrammarSymbol> syms;
      for (const auto& [kind, arg] : alt) {
        if (kind != GrammarSymbol::kRule && kind != GrammarSymbol::kChars)
          throw InvalidArgumentError("grammar: a symbol's kind must be 1 (rule) or 2 (characters)");
        syms.push_back(GrammarSymbol{kind, arg});
      }
      r[i].push_back(std::move(syms));
    }
  std::vector<CharClass> cls;
  for (const auto& [negated, ranges] : classes) cls.push_back(CharClass{negated, ranges});
  py::gil_scoped_release release;
  return std::make_shared<Grammar>(r, std::move(cls), root);
}

std::vector<int32_t> allowed_ids(const OutputConstraint& c, const Tokenizer& tok) {
  std::vector<float> logits(static_cast<size_t>(tok.n_vocab()), 0.0f);
  c.mask(logits.data(), tok.n_vocab());
  std::vector<int32_t> out;
  for (int32_t i = 0; i < tok.n_vocab(); ++i)
    if (logits[static_cast<size_t>(i)] == 0.0f) out.push_back(i);
  return out;
}

}  // namespace

void register_grammar(py::module_& m) {
  py::class_<Grammar, std::shared_ptr<Grammar>>(m, "Grammar")
      .def(py::init(&make_grammar), py::arg("rules"), py::arg("classes"), py::arg("root"),
           "rules[r]: alternatives, each a list of (kind, arg): (1, rule) or (2, class); classes: "
           "(negated, [(lo, hi), ...]) code point ranges.");
  // The automaton over `data` (UTF-8), for the tests: how many leading bytes it takes, whether
  // the text so far is complete there, and whether nothing more could follow.
  m.def("grammar_scan", [](const Grammar& g, const py::bytes& data) {
    const std::string b = data;
    GrammarState st(&g);
    size_t n = 0;
    for (; n < b.size(); ++n) {
      GrammarState next = st;
      if (!next.feed(static_cast<uint8_t>(b[n]))) break;
      st = next;
    }
    return py::make_tuple(n, st.can_end(), st.done());
  }, py::arg("grammar"), py::arg("data"));
  // Its token masks step by step on one constraint (caches warm, as in generation): the allowed
  // ids before each token of `ids` (which must fit) and after the last.
  m.def("grammar_masks", [](const Tokenizer& tok, std::shared_ptr<Grammar> g, const std::vector<int32_t>& ids) {
    GrammarConstraint c(std::make_shared<GrammarVocab>(tok), g);
    std::vector<std::vector<int32_t>> out{allowed_ids(c, tok)};
    for (int32_t id : ids) {
      if (!c.advance(id)) throw InvalidArgumentError("token " + std::to_string(id) + " does not fit");
      out.push_back(allowed_ids(c, tok));
    }
    return out;
  }, py::arg("tokenizer"), py::arg("grammar"), py::arg("ids"));
}

}  // namespace llmasos::python
