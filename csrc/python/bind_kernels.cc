// Runtime information and ISA selection for Python (runtime_info, select_isa, supported levels).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/thread_pool.h"
#include "python/bindings.h"

namespace py = pybind11;

namespace llmasos::python {

void register_kernels(py::module_& m) {
  m.def("active_isa", &cpu::active_isa, "Name of the ISA level whose kernels are in use.");
  m.def("compiled_isas", &cpu::compiled_isas, "ISA levels compiled into this build.");
  m.def("supported_isas", &cpu::supported_isas, "ISA levels this CPU and OS can run.");
  m.def("select_isa", &cpu::select_isa, py::arg("name"), "Switch the active ISA level.");
  m.def("cpu_features", &cpu::cpu_features, "CPU features seen by cpuid/XGETBV.");
  m.def("physical_cores", &cpu::physical_cores, "Number of physical CPU cores.");
}

}  // namespace llmasos::python
