// Binds the continuous-batching Scheduler as _core.Engine: add_request / step / cancel / stats.
// step() releases the GIL for the whole batch; add_request and cancel may be called from other
// threads while a step runs.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "engine/scheduler.h"
#include "llmasos/errors.hpp"
#include "python/bindings.h"

namespace py = pybind11;

namespace llmasos::python {

void register_engine(py::module_& m) {
  py::class_<Scheduler>(m, "Engine",
                        "Continuous batching over a paged KV cache. step() returns a list of "
                        "(request_id, new_token_ids, finished, finish_reason or None).")
      .def(py::init([](std::shared_ptr<Model> model, int64_t kv_cache_bytes, int64_t max_batch_tokens,
                       int64_t max_seqs) {
             if (!model) throw InvalidArgumentError("Engine needs a model");
             SchedulerOptions o;
             o.kv_cache_bytes = kv_cache_bytes;
             o.max_batch_tokens = max_batch_tokens;
             o.max_seqs = max_seqs;
             py::gil_scoped_release nogil;
             return std::make_unique<Scheduler>(std::move(model), o);
           }),
           py::arg("model"), py::kw_only(), py::arg("kv_cache_bytes") = 0,
           py::arg("max_batch_tokens") = 512, py::arg("max_seqs") = 64,
           py::keep_alive<1, 2>())
      .def("add_request", [](Scheduler& s, int64_t id, std::vector<int32_t> prompt, const GenerateOptions& o) {
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
                                                               : py::object(py::str(o.finish_reason))));
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
             d["blocks_total"] = st.kv.blocks_total;
             d["blocks_used"] = st.kv.blocks_used;
             d["blocks_free"] = st.kv.blocks_free;
             d["blocks_cached"] = st.kv.blocks_cached;
             d["prefix_queries"] = st.kv.prefix_queries;
             d["prefix_hits"] = st.kv.prefix_hits;
             d["prefix_hit_rate"] = st.kv.prefix_queries
                                        ? static_cast<double>(st.kv.prefix_hits) / st.kv.prefix_queries
                                        : 0.0;
             d["evictions"] = st.kv.evictions;
             d["kv_cache_bytes"] = st.kv_cache_bytes;
             d["block_tokens"] = st.block_tokens;
             d["max_batch_tokens"] = st.max_batch_tokens;
             d["max_seqs"] = st.max_seqs;
             return d;
           });
}

}  // namespace llmasos::python
