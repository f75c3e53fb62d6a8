// Binds Model (load, hyper-parameters, tokenizer access), the option structs and Session
// (logits, generate). Compute runs with the GIL released; the per-token callback re-takes it.
#include <cctype>
#include <cstring>
#include <string>

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "engine/json_schema.h"
#include "engine/session.h"
#include "llmasos/errors.hpp"
#include "model/llama.h"
#include "python/bindings.h"

namespace py = pybind11;

namespace llmasos::python {

namespace {

// The KV cache element types by the names users write ("f16", "f32", "bf16", "q8_0").
GgmlType kv_type_from_name(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "f16" || name == "float16") return GgmlType::F16;
  if (name == "f32" || name == "float32") return GgmlType::F32;
  if (name == "bf16" || name == "bfloat16") return GgmlType::BF16;
  if (name == "q8_0" || name == "q8") return GgmlType::Q8_0;
  throw InvalidArgumentError("kv_cache_type must be 'f16', 'bf16', 'f32' or 'q8_0', got '" + name + "'");
}

const char* kv_type_name(GgmlType t) {
  return t == GgmlType::F32 ? "f32" : t == GgmlType::BF16 ? "bf16" : t == GgmlType::Q8_0 ? "q8_0" : "f16";
}

}  // namespace

py::object logprobs_to_py(const std::vector<TokenLogprobs>& lps) {
  if (lps.empty()) return py::none();
  py::list out;
  for (const TokenLogprobs& lp : lps) out.append(py::make_tuple(lp.logprob, lp.rank, py::cast(lp.top)));
  return out;
}

void register_model(py::module_& m) {
  py::class_<SamplingOptions>(m, "SamplingOptions")
      .def(py::init<>())
      .def_readwrite("temperature", &SamplingOptions::temperature)
      .def_readwrite("top_k", &SamplingOptions::top_k)
      .def_readwrite("top_p", &SamplingOptions::top_p)
      .def_readwrite("min_p", &SamplingOptions::min_p)
      .def_readwrite("repetition_penalty", &SamplingOptions::repetition_penalty)
      .def_readwrite("repetition_last_n", &SamplingOptions::repetition_last_n)
      .def_readwrite("allowed_token_ids", &SamplingOptions::allowed_token_ids)
      .def_readwrite("presence_penalty", &SamplingOptions::presence_penalty)
      .def_readwrite("frequency_penalty", &SamplingOptions::frequency_penalty)
      .def_readwrite("has_seed", &SamplingOptions::has_seed)
      .def_readwrite("seed", &SamplingOptions::seed)
      .def_readwrite("logit_bias", &SamplingOptions::logit_bias)
      .def_readwrite("logprobs", &SamplingOptions::logprobs)
      .def_readonly_static("max_logprobs", &SamplingOptions::kMaxLogprobs)
      .def("validate", &SamplingOptions::validate);

  py::class_<GenerateOptions>(m, "GenerateOptions")
      .def(py::init<>())
      .def_readwrite("max_tokens", &GenerateOptions::max_tokens)
      .def_readwrite("sampling", &GenerateOptions::sampling)
      .def_readwrite("ignore_eos", &GenerateOptions::ignore_eos)
      .def_readwrite("lookup_tokens", &GenerateOptions::lookup_tokens)
      .def_readwrite("stop_token_ids", &GenerateOptions::stop_token_ids)
      .def_readwrite("min_tokens", &GenerateOptions::min_tokens)
      .def_readwrite("json_object", &GenerateOptions::json_object)
      .def_property("json_schema",
                    [](const GenerateOptions& o) { return std::const_pointer_cast<JsonSchema>(o.json_schema); },
                    [](GenerateOptions& o, std::shared_ptr<JsonSchema> s) { o.json_schema = std::move(s); })
      .def_property("grammar",
                    [](const GenerateOptions& o) { return std::const_pointer_cast<Grammar>(o.grammar); },
                    [](GenerateOptions& o, std::shared_ptr<Grammar> g) { o.grammar = std::move(g); });

  py::class_<Model, std::shared_ptr<Model>>(m, "Model")
      .def(py::init([](const std::string& path, int64_t n_ctx, int threads, const std::string& kv_type,
                       bool repack) {
             ModelOptions o;
             o.n_ctx = n_ctx;
             o.threads = threads;
             o.kv_type = kv_type_from_name(kv_type);
             o.repack = repack;
             py::gil_scoped_release nogil;
             return std::shared_ptr<Model>(Model::load(path, o));
           }),
           py::arg("path"), py::kw_only(), py::arg("n_ctx") = 0, py::arg("threads") = 0,
           py::arg("kv_cache_type") = "f16", py::arg("repack") = true)
      .def_property_readonly("kv_cache_type", [](const Model& m) { return kv_type_name(m.kv_type()); })
      .def_property_readonly("arch", [](const Model& m) { return m.hparams().arch; })
      .def_property_readonly("n_vocab", [](const Model& m) { return m.hparams().n_vocab; })
      .def_property_readonly("n_embd", [](const Model& m) { return m.hparams().n_embd; })
      .def_property_readonly("n_layer", [](const Model& m) { return m.hparams().n_layer; })
      .def_property_readonly("n_ctx", &Model::n_ctx)
      .def_property_readonly("n_ctx_train", [](const Model& m) { return m.hparams().n_ctx_train; })
      .def_property_readonly("threads", &Model::threads)
      .def_property_readonly("bos_id", [](const Model& m) { return m.tokenizer().bos_id(); })
      .def_property_readonly("eos_id", [](const Model& m) { return m.tokenizer().eos_id(); })
      .def_property_readonly("add_bos", [](const Model& m) { return m.tokenizer().add_bos_default(); })
      .def("metadata", [](const Model& m, const std::string& key) -> py::object {
             const GgufValue* v = m.gguf().find(key);
             return v ? gguf_value_to_py(*v) : py::none();
           }, py::arg("key"), "A GGUF metadata value, or None.")
      .def("tokenize", [](const Model& m, const std::string& text, bool add_bos, bool special) {
             py::gil_scoped_release nogil;
             return m.tokenizer().encode(text, add_bos, special);
           }, py::arg("text"), py::arg("add_bos"), py::arg("special"))
      .def("detokenize", [](const Model& m, const std::vector<int32_t>& ids, bool special) {
             return m.tokenizer().decode(ids, special);
           }, py::arg("ids"), py::arg("special") = false)
      .def("token_text", [](const Model& m, int32_t id) { return m.tokenizer().token_text(id); })
      .def("is_eog", [](const Model& m, int32_t id) { return m.tokenizer().is_eog(id); })
      .def("token_bytes", [](const Model& m, int32_t id, bool special) {
             if (id < 0 || id >= m.hparams().n_vocab)
               throw InvalidArgumentError("token id " + std::to_string(id) + " is out of range");
             return py::bytes(m.tokenizer().token_bytes(id, special));
           }, py::arg("id"), py::arg("special") = false,
           "The raw bytes a token stands for (may be part of a UTF-8 character).")
      .def("stream_decoder", [](const Model& m, bool special) { return StreamDecoder(m.tokenizer(), special); },
           py::arg("special") = false, py::keep_alive<0, 1>(),
           "A StreamDecoder over this model's tokenizer (text per token, never splitting UTF-8).");

  py::class_<Session>(m, "Session")
      .def(py::init<std::shared_ptr<Model>>(), py::arg("model"))
      .def("reset", &Session::reset)
      .def("logits", [](Session& s, const std::vector<int32_t>& ids) {
             std::vector<float> out;
             {
               py::gil_scoped_release nogil;
               out = s.logits(ids);
             }
             const py::ssize_t V = static_cast<py::ssize_t>(s.model()->hparams().n_vocab);
             py::array_t<float> arr({static_cast<py::ssize_t>(ids.size()), V});
             std::memcpy(arr.mutable_data(), out.data(), out.size() * sizeof(float));
             return arr;
           }, py::arg("ids"), "Logits at every position, shape (len(ids), n_vocab).")
      .def("prompt_logprobs", [](Session& s, const std::vector<int32_t>& ids, int32_t k) {
             std::vector<TokenLogprobs> out;
             {
               py::gil_scoped_release nogil;
               out = s.prompt_logprobs(ids, k);
             }
             return logprobs_to_py(out);
           }, py::arg("ids"), py::arg("k"),
           "Scores ids as given text: for each token after the first, (logprob, rank, [(id, "
           "logprob), ...] the k most likely) under the logits before it; None for one token.")
      .def("embedding", [](Session& s, const std::vector<int32_t>& ids, int pooling, bool normalize) {
             std::vector<float> out;
             {
               py::gil_scoped_release nogil;
               out = s.embedding(ids, pooling, normalize);
             }
             py::array_t<float> arr(static_cast<py::ssize_t>(out.size()));
             std::memcpy(arr.mutable_data(), out.data(), out.size() * sizeof(float));
             return arr;
           }, py::arg("ids"), py::arg("pooling") = 0, py::arg("normalize") = true,
           "hidden_states pooled (0 the model's pooling, 1 mean, 2 first, 3 last), L2-normalized: (n_embd,).")
      .def("generate", [](Session& s, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                          py::object on_piece) {
             // on_piece(token_id, text) is called per token; text never splits a UTF-8 character.
             // Returning False stops generation.
             StreamDecoder dec(s.model()->tokenizer());
             std::function<bool(int32_t)> cb;
             if (!on_piece.is_none()) {
               cb = [&](int32_t id) {
                 std::string piece = dec.push(id);
                 py::gil_scoped_acquire gil;
                 py::object r = on_piece(id, py::str(piece));
                 return r.is_none() || r.cast<bool>();
               };
             }
             GenerateResult res;
             std::string tail;
             {
               py::gil_scoped_release nogil;
               res = s.generate(prompt, o, cb);
               tail = dec.flush();
             }
             return py::make_tuple(res.tokens, res.finish_reason, tail, logprobs_to_py(res.logprobs),
                                   res.stop_token < 0 ? py::object(py::none()) : py::int_(res.stop_token),
                                   res.drafted, res.cached);
           }, py::arg("prompt"), py::arg("options"), py::arg("on_piece") = py::none(),
           "Returns (generated ids, finish_reason, undecoded tail text, logprobs or None, the "
           "EOS / stop_token_ids token that ended it or None, how many tokens came from "
           "prompt-lookup drafts, how many prompt tokens the session held from before).");
}

}  // namespace llmasos::python
