// Binding placeholder being written; see bindings.h.
#include "python/bindings.h"
namespace llmasos::python {
void register_model(pybind11::module_& m) { (void)m; }
}  // namespace llmasos::python
