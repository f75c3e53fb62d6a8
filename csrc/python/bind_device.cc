// Binds the device abstraction for tests and tools: which devices exist, and the rmsnorm / rope ops
// run on a named device ("cpu", "cuda", "cuda:N") with numpy arrays copied in and out.
#include <memory>
#include <optional>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "device/device.h"
#include "llmasos/errors.hpp"
#include "python/bindings.h"

namespace py = pybind11;

namespace llmasos::python {
namespace {

using FArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// rmsnorm over the last axis of x (any leading shape) with weights w (x.shape[-1]).
FArray device_rmsnorm(const std::string& device, FArray x, FArray w, float eps) {
  if (x.ndim() < 1) throw InvalidArgumentError("x needs at least one dimension");
  const int64_t n = x.shape(x.ndim() - 1);
  if (w.ndim() != 1 || w.shape(0) != n) throw InvalidArgumentError("w must have x.shape[-1] elements");
  const int64_t rows = n ? x.size() / n : 0;
  Device& d = device_by_name(device);
  FArray out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  {
    py::gil_scoped_release nogil;
    DeviceBuffer<float> dx(d, static_cast<size_t>(x.size())), dw(d, static_cast<size_t>(n));
    dx.upload(x.data());
    dw.upload(w.data());
    d.rmsnorm(dx.data(), dx.data(), dw.data(), rows, n, eps);
    d.synchronize();
    dx.download(out.mutable_data());
  }
  return out;
}

// RoPE on x [T][n_heads][head_dim] (a copy is returned).
FArray device_rope(const std::string& device, FArray x, int64_t pos0, int64_t rope_dim,
                   float freq_base, bool neox, std::optional<FArray> freq_factors) {
  if (x.ndim() != 3) throw InvalidArgumentError("x must be [T][n_heads][head_dim]");
  const int64_t T = x.shape(0), H = x.shape(1), D = x.shape(2);
  if (rope_dim <= 0 || rope_dim % 2 || rope_dim > D)
    throw InvalidArgumentError("rope_dim must be even, positive and <= head_dim");
  if (freq_factors && (freq_factors->ndim() != 1 || freq_factors->shape(0) != rope_dim / 2))
    throw InvalidArgumentError("freq_factors must have rope_dim/2 elements");
  Device& d = device_by_name(device);
  FArray out({T, H, D});
  {
    py::gil_scoped_release nogil;
    DeviceBuffer<float> dx(d, static_cast<size_t>(x.size()));
    dx.upload(x.data());
    std::unique_ptr<DeviceBuffer<float>> dff;
    cpu::RopeParams p;
    p.style = neox ? cpu::RopeStyle::Neox : cpu::RopeStyle::Interleaved;
    p.rope_dim = rope_dim;
    p.freq_base = freq_base;
    if (freq_factors) {
      dff = std::make_unique<DeviceBuffer<float>>(d, static_cast<size_t>(rope_dim / 2));
      dff->upload(freq_factors->data());
      p.freq_factors = dff->data();
    }
    d.rope(dx.data(), T, H, D, pos0, p);
    d.synchronize();
    dx.download(out.mutable_data());
  }
  return out;
}

}  // namespace

void register_device(py::module_& m) {
  m.def("cuda_compiled", &cuda_compiled, "True when this build has the CUDA kernels.");
  m.def("cuda_device_count", &cuda_device_count, "CUDA devices usable now (0 without CUDA or a GPU).");
  m.def("device_name", [](const std::string& name) { return device_by_name(name).name(); },
        py::arg("device"));
  m.def("device_rmsnorm", &device_rmsnorm, py::arg("device"), py::arg("x"), py::arg("w"),
        py::arg("eps"));
  m.def("device_rope", &device_rope, py::arg("device"), py::arg("x"), py::arg("pos0"),
        py::arg("rope_dim"), py::arg("freq_base"), py::arg("neox"),
        py::arg("freq_factors") = py::none());
}

}  // namespace llmasos::python
