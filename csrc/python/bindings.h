// One register_* function per bind_*.cc; module.cc calls them in order.
#pragma once
#include <pybind11/pybind11.h>

namespace llmasos::python {
void register_kernels(pybind11::module_& m);    // runtime info, ISA selection, kernel test hooks
void register_gguf(pybind11::module_& m);       // GgufFile (metadata + tensors as numpy)
void register_tokenizer(pybind11::module_& m);  // Tokenizer, StreamDecoder
void register_model(pybind11::module_& m);      // Model: forward, logits, generate
void register_device(pybind11::module_& m);     // devices (cpu, cuda) and their ops, for tests
void register_engine(pybind11::module_& m);     // Engine: continuous batching over a paged KV cache
}  // namespace llmasos::python
