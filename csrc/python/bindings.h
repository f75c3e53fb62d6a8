// One register_* function per bind_*.cc; module.cc calls them in order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>

namespace llmasos {
struct GgufValue;
struct TokenLogprobs;
class OutputConstraint;
class Tokenizer;
}

namespace llmasos::python {
// Conversions shared by the bindings (defined in bind_gguf.cc).
// Strings in model files are meant to be UTF-8; undecodable bytes survive as surrogates.
pybind11::str utf8_to_str(const std::string& s);
// A GGUF metadata value as a Python value (arrays -> lists, nested as stored).
pybind11::object gguf_value_to_py(const GgufValue& v);
// Per-token logprobs (defined in bind_model.cc): None when `lps` is empty (not requested), else a
// list, one per token, of (logprob, rank, [(token id, logprob), ...] most likely first).
pybind11::object logprobs_to_py(const std::vector<TokenLogprobs>& lps);
// For the tests (defined in bind_engine.cc): a constraint's allowed ids before each token of `ids`
// (each must fit: InvalidArgumentError) and after the last, on the one constraint (caches warm).
std::vector<std::vector<int32_t>> masks_along(OutputConstraint& c, const Tokenizer& tok,
                                              const std::vector<int32_t>& ids);

void register_kernels(pybind11::module_& m);    // runtime info, ISA selection, kernel test hooks
void register_gguf(pybind11::module_& m);       // GgufFile (metadata + tensors as numpy)
void register_tokenizer(pybind11::module_& m);  // Tokenizer, StreamDecoder
void register_model(pybind11::module_& m);      // Model: forward, logits, generate
void register_device(pybind11::module_& m);     // devices (cpu, cuda) and their ops, for tests
void register_engine(pybind11::module_& m);     // Engine: continuous batching over a paged KV cache
void register_grammar(pybind11::module_& m);    // Grammar (GBNF) and its test hooks
}  // namespace llmasos::python
