// Binds the tokenizer as _core.Tokenizer (from a GGUF file or a TokenizerSpec), _core.TokenizerSpec
// and _core.StreamDecoder. Encoding long texts runs without the GIL.
#include <memory>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "io/gguf.h"
#include "python/bindings.h"
#include "tokenizer/tokenizer.h"

namespace py = pybind11;

namespace llmasos::python {
namespace {

constexpr size_t kReleaseGilAbove = 4096;  // bytes of text; short texts are not worth the switch

}  // namespace

void register_tokenizer(py::module_& m) {
  py::class_<TokenizerSpec>(m, "TokenizerSpec",
                            "What a tokenizer is built from (normally read from GGUF metadata).")
      .def(py::init<>())
      .def_readwrite("model", &TokenizerSpec::model)
      .def_readwrite("pre", &TokenizerSpec::pre)
      .def_readwrite("tokens", &TokenizerSpec::tokens)
      .def_readwrite("scores", &TokenizerSpec::scores)
      .def_readwrite("token_types", &TokenizerSpec::token_types)
      .def_readwrite("merges", &TokenizerSpec::merges)
      .def_readwrite("bos_id", &TokenizerSpec::bos_id)
      .def_readwrite("eos_id", &TokenizerSpec::eos_id)
      .def_readwrite("unk_id", &TokenizerSpec::unk_id)
      .def_readwrite("pad_id", &TokenizerSpec::pad_id)
      .def_readwrite("eot_id", &TokenizerSpec::eot_id)
      .def_readwrite("add_bos", &TokenizerSpec::add_bos)
      .def_readwrite("add_eos", &TokenizerSpec::add_eos)
      .def_readwrite("add_space_prefix", &TokenizerSpec::add_space_prefix)
      .def_static("from_gguf", [](const std::string& path) {
        auto f = GgufFile::open(path);
        return TokenizerSpec::from_gguf(*f);
      }, py::arg("path"));

  py::class_<Tokenizer>(m, "Tokenizer", "Byte-level BPE or SentencePiece tokenizer from model metadata.")
      .def(py::init<TokenizerSpec>(), py::arg("spec"))
      .def_static("from_gguf", [](const std::string& path) {
        auto f = GgufFile::open(path);
        return std::make_unique<Tokenizer>(TokenizerSpec::from_gguf(*f));
      }, py::arg("path"))
      .def("encode", [](const Tokenizer& t, const std::string& text, bool add_bos, bool special) {
        if (text.size() < kReleaseGilAbove) return t.encode(text, add_bos, special);
        py::gil_scoped_release release;
        return t.encode(text, add_bos, special);
      }, py::arg("text"), py::arg("add_bos") = false, py::arg("special") = false)
      .def("decode", &Tokenizer::decode, py::arg("ids"), py::arg("special") = false)
      .def("token_bytes", [](const Tokenizer& t, int32_t id, bool special) {
        return py::bytes(t.token_bytes(id, special));
      }, py::arg("id"), py::arg("special") = false)
      .def("token_text", [](const Tokenizer& t, int32_t id) { return utf8_to_str(t.token_text(id)); }, py::arg("id"))
      .def("is_eog", &Tokenizer::is_eog, py::arg("id"))
      .def("is_control", &Tokenizer::is_control, py::arg("id"))
      .def_property_readonly("n_vocab", &Tokenizer::n_vocab)
      .def_property_readonly("bos_id", &Tokenizer::bos_id)
      .def_property_readonly("eos_id", &Tokenizer::eos_id)
      .def_property_readonly("add_bos", &Tokenizer::add_bos_default)
      .def_property_readonly("model", [](const Tokenizer& t) { return t.spec().model; })
      .def_property_readonly("pre", [](const Tokenizer& t) { return t.spec().pre; })
      .def("__len__", &Tokenizer::n_vocab);

  py::class_<StreamDecoder>(m, "StreamDecoder",
                            "Token-by-token decoding that never splits a UTF-8 character.")
      .def(py::init<const Tokenizer&, bool>(), py::arg("tokenizer"), py::arg("special") = false,
           py::keep_alive<1, 2>())
      .def("push", &StreamDecoder::push, py::arg("id"))
      .def("flush", &StreamDecoder::flush);
}

}  // namespace llmasos::python
