// GBNF grammars (engine/gbnf_parse.h, engine/grammar.h): the parser, and test hooks for the
// automaton and its token mask.
#include <memory>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "engine/gbnf_parse.h"
#include "engine/grammar.h"
#include "tokenizer/tokenizer.h"

namespace py = pybind11;

namespace llmasos::python {

void register_grammar(py::module_& m) {
  py::class_<Grammar, std::shared_ptr<Grammar>>(m, "Grammar", "A checked GBNF grammar (parse_gbnf).");
  // GBNF text (UTF-8 bytes) -> its grammar; InvalidArgumentError says where and why it cannot be.
  m.def("parse_gbnf", [](const py::bytes& text) {
    const std::string t = text;
    py::gil_scoped_release release;
    return std::const_pointer_cast<Grammar>(parse_gbnf(t));
  }, py::arg("text"));
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
    return masks_along(c, tok, ids);
  }, py::arg("tokenizer"), py::arg("grammar"), py::arg("ids"));
}

}  // namespace llmasos::python
