// Binds the continuous-batching Scheduler as _core.Engine: add_request / step / cancel / stats.
// step() releases the GIL for the whole batch; add_request and cancel may be called from other
// threads while a step runs.
#include <map>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "engine/json_constraint.h"
#include "engine/json_schema.h"
#include "engine/prompt_lookup.h"
#include "engine/scheduler.h"
#include "tokenizer/tokenizer.h"
#include "llmasos/errors.hpp"
#include "python/bindings.h"

namespace py = pybind11;

namespace llmasos::python {
namespace {

// PagedKvCache with its block tables held by integer handles: lets tests drive the block
// accounting (prefix hits, eviction order, fork) directly.
struct KvCacheForTests {
  KvCacheForTests(int64_t n_layer, int64_t kv_dim, int64_t n_blocks)
      : cache(n_layer, 1, kv_dim, GgmlType::F32, n_blocks) {}
  KvBlockTable& table(int64_t h) {
    auto it = tables.find(h);
    if (it == tables.end()) throw InvalidArgumentError("no block table " + std::to_string(h));
    return it->second;
  }
  int64_t add() {
    tables[next] = KvBlockTable();
    return next++;
  }
  PagedKvCache cache;
  std::map<int64_t, KvBlockTable> tables;
  int64_t next = 0;
};

py::dict kv_stats_dict(const KvCacheStats& s) {
  py::dict d;
  d["blocks_total"] = s.blocks_total;
  d["blocks_used"] = s.blocks_used;
  d["blocks_free"] = s.blocks_free;
  d["blocks_cached"] = s.blocks_cached;
  d["prefix_queries"] = s.prefix_queries;
  d["prefix_hits"] = s.prefix_hits;
  d["prefix_hit_rate"] = s.prefix_queries ? static_cast<double>(s.prefix_hits) / s.prefix_queries : 0.0;
  d["evictions"] = s.evictions;
  return d;
}

// A byte automaton (JSON mode's JsonState, structured outputs' SchemaState) over `data`, for the
// tests: how many leading bytes it takes, and whether exactly those form a complete document.
template <class State>
py::tuple scan(State st, const py::bytes& data) {
  const std::string b = data;
  size_t n = 0;
  while (n < b.size() && st.feed(static_cast<uint8_t>(b[n]))) ++n;
  return py::make_tuple(n, n == b.size() && st.done());
}

// The ids a constraint's mask leaves, and a token the tests feed it (which must fit).
std::vector<int32_t> allowed_ids(const OutputConstraint& c, const Tokenizer& tok) {
  std::vector<float> logits(static_cast<size_t>(tok.n_vocab()), 0.0f);
  c.mask(logits.data(), tok.n_vocab());
  std::vector<int32_t> out;
  for (int32_t i = 0; i < tok.n_vocab(); ++i)
    if (logits[static_cast<size_t>(i)] == 0.0f) out.push_back(i);
  return out;
}

void advance_test_token(OutputConstraint& c, int32_t id) {
  if (!c.advance(id)) throw InvalidArgumentError("token " + std::to_string(id) + " does not fit");
}

}  // namespace

std::vector<std::vector<int32_t>> masks_along(OutputConstraint& c, const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<std::vector<int32_t>> out{allowed_ids(c, tok)};
  for (int32_t id : ids) {
    advance_test_token(c, id);
    out.push_back(allowed_ids(c, tok));
  }
  return out;
}

void register_engine(py::module_& m) {
  py::class_<KvCacheForTests>(m, "_PagedKvCache", "The paged KV cache's block accounting (tests).")
      .def(py::init<int64_t, int64_t, int64_t>(), py::arg("n_layer"), py::arg("kv_dim"), py::arg("n_blocks"))
      .def("new_table", &KvCacheForTests::add)
      .def("match_prefix", [](KvCacheForTests& c, int64_t h, const std::vector<int32_t>& toks) {
             int64_t n = c.cache.match_prefix(toks.data(), static_cast<int64_t>(toks.size()), c.table(h));
             c.cache.record_prefix(static_cast<int64_t>(toks.size()) / PagedKvCache::kBlockTokens,
                                   n / PagedKvCache::kBlockTokens);
             return n;
           })
      .def("reserve", [](KvCacheForTests& c, int64_t h, int64_t n, bool evict) { return c.cache.reserve(c.table(h), n, evict); },
           py::arg("table"), py::arg("n_tokens"), py::arg("evict") = true)
      .def("truncate", [](KvCacheForTests& c, int64_t h, int64_t n) { c.cache.truncate(c.table(h), n); })
      .def("commit", [](KvCacheForTests& c, int64_t h, const std::vector<int32_t>& toks) {
             c.cache.commit(c.table(h), toks.data(), static_cast<int64_t>(toks.size()));
           })
      .def("release", [](KvCacheForTests& c, int64_t h) { c.cache.release(c.table(h)); })
      .def("fork", [](KvCacheForTests& c, int64_t src, int64_t n) -> py::object {
             int64_t h = c.add();
             if (!c.cache.fork(c.table(src), n, c.table(h))) return py::none();
             return py::int_(h);
           })
      .def("blocks", [](KvCacheForTests& c, int64_t h) { return c.table(h).blocks; })
      .def("reset_prefix_cache", [](KvCacheForTests& c) { c.cache.reset_prefix_cache(); })
      .def("stats", [](const KvCacheForTests& c) { return kv_stats_dict(c.cache.stats()); });

  py::class_<Scheduler>(m, "Engine",
                        "Continuous batching over a paged KV cache. step() returns a list of "
                        "(request_id, new_token_ids, finished, finish_reason or None, logprobs or "
                        "None, stop_token_id or None, cached_tokens); logprobs, for requests that "
                        "asked, has one (logprob, rank, [(id, logprob), ...]) per new token, then one "
                        "for the end-of-generation or stop token that ended the request "
                        "(stop_token_id, not among the new tokens); cached_tokens: the prompt tokens "
                        "the prefix cache held when the request was first admitted.")
      .def(py::init([](std::shared_ptr<Model> model, int64_t kv_cache_bytes, int64_t max_batch_tokens,
                       int64_t max_seqs, int64_t lookup_tokens) {
             if (!model) throw InvalidArgumentError("Engine needs a model");
             if (lookup_tokens < 0 || lookup_tokens > kMaxLookupTokens)
               throw InvalidArgumentError("lookup_tokens must be in [0, " + std::to_string(kMaxLookupTokens) + "]");
             SchedulerOptions o;
             o.kv_cache_bytes = kv_cache_bytes;
             o.max_batch_tokens = max_batch_tokens;
             o.max_seqs = max_seqs;
             o.lookup_tokens = lookup_tokens;
             py::gil_scoped_release nogil;
             return std::make_unique<Scheduler>(std::move(model), o);
           }),
           py::arg("model"), py::kw_only(), py::arg("kv_cache_bytes") = 0,
           py::arg("max_batch_tokens") = 512, py::arg("max_seqs") = 64, py::arg("lookup_tokens") = 0,
           py::keep_alive<1, 2>())
      .def("add_request", [](Scheduler& s, int64_t id, std::vector<int32_t> prompt, const GenerateOptions& o) {
             py::gil_scoped_release nogil;  // the first JSON-mode request builds its vocabulary
             s.add_request(id, std::move(prompt), o);
           }, py::arg("request_id"), py::arg("prompt_ids"), py::arg("options"))
      .def("step", [](Scheduler& s) {
             std::vector<StepOutput> outs;
             {
               py::gil_scoped_release nogil;
               outs = s.step();
             }
             py::list l;
             for (auto& o : outs)
               l.append(py::make_tuple(o.request_id, py::cast(o.new_tokens), o.finished,
                                       o.finish_reason.empty() ? py::object(py::none())
                                                               : py::object(py::str(o.finish_reason)),
                                       logprobs_to_py(o.logprobs),
                                       o.stop_token < 0 ? py::object(py::none()) : py::int_(o.stop_token),
                                       o.cached_tokens));
             return l;
           })
      .def("cancel", [](Scheduler& s, int64_t id) {
             py::gil_scoped_release nogil;
             return s.cancel(id);
           }, py::arg("request_id"), "Frees the request's blocks; False if it is unknown or finished.")
      .def("has_unfinished", &Scheduler::has_unfinished)
      .def("reset_prefix_cache", [](Scheduler& s) {
             py::gil_scoped_release nogil;
             s.reset_prefix_cache();
           })
      .def("stats", [](const Scheduler& s) {
             const SchedulerStats st = s.stats();
             py::dict d;
             d["waiting"] = st.waiting;
             d["running"] = st.running;
             d["steps"] = st.steps;
             d["tokens_processed"] = st.tokens_processed;
             d["prompt_tokens"] = st.prompt_tokens;
             d["generated_tokens"] = st.generated_tokens;
             d["preemptions"] = st.preemptions;
             d["finished"] = st.finished;
             d["cancelled"] = st.cancelled;
             d["drafted"] = st.drafted;
             for (auto item : kv_stats_dict(st.kv)) d[item.first] = item.second;
             d["kv_cache_bytes"] = st.kv_cache_bytes;
             d["block_tokens"] = st.block_tokens;
             d["max_batch_tokens"] = st.max_batch_tokens;
             d["max_seqs"] = st.max_seqs;
             return d;
           });

  m.attr("max_lookup_tokens") = kMaxLookupTokens;
  m.def("prompt_lookup_draft", &prompt_lookup_draft, py::arg("prompt"), py::arg("generated"), py::arg("max_draft"),
        "The prompt-lookup draft Session.generate checks after prompt ++ generated (for the tests).");

  // One Sampler (greedy by default) drawing `draws` times from copies of one row of logits, for
  // the tests and bench/sampling.py: the tokens it picks.

  m.def("sample_row", [](const std::vector<float>& logits, const SamplingOptions* opts, int draws) {
    if (logits.empty()) throw InvalidArgumentError("sample_row: no logits");
    const SamplingOptions o = opts ? *opts : SamplingOptions{};
    o.validate_for_vocab(static_cast<int64_t>(logits.size()));
    Sampler s{o};
    std::vector<int32_t> out;
    std::vector<float> row;
    py::gil_scoped_release nogil;
    for (int i = 0; i < draws; ++i) {
      row = logits;
      out.push_back(s.sample(row.data(), static_cast<int64_t>(row.size()), {}, {}));
    }
    return out;
  }, py::arg("logits"), py::arg("options") = nullptr, py::arg("draws") = 1);
  // Structured outputs: the schema graph llmasos/json_schema.py compiles a JSON schema into.
  py::class_<SchemaNode>(m, "SchemaNode")
      .def(py::init<>())
      .def_readwrite("kind", &SchemaNode::kind)
      .def_readwrite("text", &SchemaNode::text)
      .def_readwrite("options", &SchemaNode::options)
      .def_readwrite("children", &SchemaNode::children)
      .def_readwrite("required", &SchemaNode::required)
      .def_readwrite("min_items", &SchemaNode::min_items)
      .def_readwrite("max_items", &SchemaNode::max_items)
      .def_readwrite("dfa_class", &SchemaNode::dfa_class)
      .def_readwrite("dfa_classes", &SchemaNode::dfa_classes)
      .def_readwrite("dfa_next", &SchemaNode::dfa_next)
      .def_readwrite("dfa_accept", &SchemaNode::dfa_accept)
      .def_readwrite("dfa_dist", &SchemaNode::dfa_dist)
      .def_readwrite("bounded", &SchemaNode::bounded)
      .def_readwrite("multiple_units", &SchemaNode::multiple_units)
      .def_readwrite("unique", &SchemaNode::unique)
      .def_readwrite("frac_digits", &SchemaNode::frac_digits)
      .def_readwrite("min_units", &SchemaNode::min_units)
      .def_readwrite("max_units", &SchemaNode::max_units);
  py::class_<JsonSchema, std::shared_ptr<JsonSchema>>(m, "JsonSchema")
      .def(py::init<std::vector<SchemaNode>>(), py::arg("nodes"))
      .def_property_readonly("size", &JsonSchema::size);
  // Its byte automaton, for the tests: how many leading bytes of `data` it takes, and whether
  // exactly those bytes form a complete document.
  m.def("schema_scan", [](const JsonSchema& schema, const py::bytes& data) {
    return scan(SchemaRun(&schema), data);
  }, py::arg("schema"), py::arg("data"));
  // JSON mode's byte automaton, for the tests: how many leading bytes of `data` can start a JSON
  // object, and whether exactly those bytes form a complete one.
  m.def("json_scan", [](const py::bytes& data) { return scan(JsonState(), data); }, py::arg("data"));
  // And its token mask: the ids allowed after the tokens `ids` (which must fit), for the tests;
  // with `schema`, structured outputs' mask.
  m.def("json_allowed", [](const Tokenizer& tok, const std::vector<int32_t>& ids, std::shared_ptr<JsonSchema> schema) {
    JsonConstraint c(std::make_shared<JsonVocab>(tok), schema);
    for (int32_t id : ids) advance_test_token(c, id);
    return allowed_ids(c, tok);
  }, py::arg("tokenizer"), py::arg("ids"), py::arg("schema") = nullptr);
  // The same masks step by step on one constraint (its caches warm, as in generation): the
  // allowed ids before each token of `ids` and after the last.
  m.def("json_masks", [](const Tokenizer& tok, const std::vector<int32_t>& ids, std::shared_ptr<JsonSchema> schema) {
    JsonConstraint c(std::make_shared<JsonVocab>(tok), schema);
    return masks_along(c, tok, ids);
  }, py::arg("tokenizer"), py::arg("ids"), py::arg("schema") = nullptr);
}

}  // namespace llmasos::python
