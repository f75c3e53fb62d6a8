// The pybind11 module llmasos._core: defines the exception hierarchy, then each bind_*.cc
// registers its classes. Python-facing API lives in python/llmasos/; this layer stays thin.
#include <pybind11/pybind11.h>

#include "kernels/cpu/kernel_table.h"
#include "llmasos/errors.hpp"
#include "python/bindings.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "llmasos C++ core";
#ifdef LLMASOS_VERSION
  m.attr("__version__") = LLMASOS_VERSION;
#else
  m.attr("__version__") = "0.0.0";
#endif
  static py::exception<llmasos::Error> base(m, "LLMasOSError");
  static py::exception<llmasos::ModelFormatError> fmt(m, "ModelFormatError", base.ptr());
  static py::exception<llmasos::InvalidArgumentError> arg(m, "InvalidArgumentError", base.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const llmasos::ModelFormatError& e) {
      py::set_error(fmt, e.what());
    } catch (const llmasos::InvalidArgumentError& e) {
      py::set_error(arg, e.what());
    } catch (const llmasos::Error& e) {
      py::set_error(base, e.what());
    }
  });
  // Choose the kernel level now, so an impossible LLMASOS_FORCE_ISA fails the import clearly.
  llmasos::cpu::kernels();
  llmasos::python::register_kernels(m);
  llmasos::python::register_gguf(m);
  llmasos::python::register_tokenizer(m);
  llmasos::python::register_model(m);
  llmasos::python::register_device(m);
  llmasos::python::register_engine(m);
  llmasos::python::register_grammar(m);
}
