// Binds GgufFile as _core.GgufFile: metadata as a dict, tensor infos as dicts, and tensor bytes as
// read-only numpy views of the mapping (each view keeps the mapping alive after close()).
#include <memory>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "io/gguf.h"
#include "python/bindings.h"
#include "quant/requantize.h"

namespace py = pybind11;

namespace llmasos::python {

py::str utf8_to_str(const std::string& s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "surrogateescape");
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(o);
}

py::object gguf_value_to_py(const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::STRING: return utf8_to_str(v.str);
    case GgufValueType::BOOL: return py::bool_(v.b);
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64: return py::float_(v.f);
    case GgufValueType::INT8:
    case GgufValueType::INT16:
    case GgufValueType::INT32:
    case GgufValueType::INT64: return py::int_(v.i);
    case GgufValueType::ARRAY: {
      py::list l(v.arr.size());
      for (size_t k = 0; k < v.arr.size(); ++k) l[k] = gguf_value_to_py(v.arr[k]);
      return std::move(l);
    }
    default: return py::int_(v.u);
  }
}

namespace {

const char* type_name(GgmlType t) {
  const TypeTraits* tr = type_traits(t);
  if (tr && tr->name) return tr->name;
  switch (t) {  // until every traits row exists, name the formats the parser accepts
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q4_0: return "Q4_0";
    case GgmlType::Q4_1: return "Q4_1";
    case GgmlType::Q5_0: return "Q5_0";
    case GgmlType::Q5_1: return "Q5_1";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::Q4_K: return "Q4_K";
    case GgmlType::Q5_K: return "Q5_K";
    case GgmlType::Q6_K: return "Q6_K";
    case GgmlType::BF16: return "BF16";
    default: return "unknown";
  }
}

// Python-side handle: close() drops this reference; numpy views hold their own.
struct PyGguf {
  std::shared_ptr<const GgufFile> f;
  py::object metadata_cache;

  const GgufFile& get() const {
    if (!f) throw py::value_error("GgufFile is closed");
    return *f;
  }
};

}  // namespace

void register_gguf(py::module_& m) {
  py::class_<PyGguf>(m, "GgufFile", "A parsed, memory-mapped GGUF file (v2 or v3).")
      .def(py::init([](const std::string& path) {
             std::shared_ptr<const GgufFile> f;
             {
               py::gil_scoped_release nogil;
               f = GgufFile::open(path);
             }
             return PyGguf{std::move(f), py::none()};
           }),
           py::arg("path"))
      .def_property_readonly("path", [](const PyGguf& g) { return g.get().path(); })
      .def_property_readonly("version", [](const PyGguf& g) { return g.get().version(); })
      .def_property_readonly("alignment", [](const PyGguf& g) { return g.get().alignment(); })
      .def_property_readonly("data_offset", [](const PyGguf& g) { return g.get().data_offset(); })
      .def_property_readonly("file_size", [](const PyGguf& g) { return g.get().file_size(); })
      .def_property_readonly(
          "metadata",
          [](PyGguf& g) {
            const GgufFile& f = g.get();
            if (g.metadata_cache.is_none()) {
              py::dict d;
              for (const auto& kv : f.metadata()) d[utf8_to_str(kv.first)] = gguf_value_to_py(kv.second);
              g.metadata_cache = std::move(d);
            }
            return py::dict(g.metadata_cache);  // a copy: callers may mutate theirs
          },
          "dict key -> value; arrays become lists")
      .def_property_readonly(
          "tensors",
          [](const PyGguf& g) {
            py::list out;
            for (const GgufTensorInfo& t : g.get().tensors()) {
              py::list shape;
              for (uint32_t d = 0; d < t.n_dims; ++d) shape.append(t.ne[d]);
              py::dict d;
              d["name"] = utf8_to_str(t.name);
              d["shape"] = shape;  // ggml order: shape[0] is the contiguous dimension
              d["type"] = static_cast<uint32_t>(t.type);
              d["type_name"] = type_name(t.type);
              d["offset"] = t.offset;  // relative to data_offset
              d["nbytes"] = t.nbytes;
              out.append(d);
            }
            return out;
          },
          "list of dicts: name, shape (ggml ne order), type, type_name, offset, nbytes")
      .def(
          "tensor_bytes",
          [](const PyGguf& g, const std::string& name) {
            const GgufTensorInfo* t = g.get().tensor(name);
            if (!t) throw py::key_error("no tensor named '" + name + "'");
            // The capsule owns a reference to the file, so the mapping outlives close().
            auto* keep = new std::shared_ptr<const GgufFile>(g.f);
            py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<const GgufFile>*>(p); });
            py::array_t<uint8_t> a({static_cast<py::ssize_t>(t->nbytes)}, {1}, t->data, base);
            a.attr("setflags")(py::arg("write") = false);  // the mapping is PROT_READ
            return a;
          },
          py::arg("name"), "Raw bytes of a tensor: a read-only uint8 view of the mapping")
      .def("has_tensor", [](const PyGguf& g, const std::string& name) { return g.get().tensor(name) != nullptr; })
      .def("__contains__", [](const PyGguf& g, const std::string& key) { return g.get().find(key) != nullptr; },
           "whether a metadata key is present")
      .def("close", [](PyGguf& g) { g.f.reset(); g.metadata_cache = py::none(); })
      .def_property_readonly("closed", [](const PyGguf& g) { return !g.f; })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyGguf& g, py::args) { g.f.reset(); g.metadata_cache = py::none(); return false; })
      .def("__repr__", [](const PyGguf& g) {
        if (!g.f) return std::string("<GgufFile closed>");
        return "<GgufFile '" + g.f->path() + "' v" + std::to_string(g.f->version()) + ", " +
               std::to_string(g.f->metadata().size()) + " keys, " + std::to_string(g.f->tensors().size()) +
               " tensors>";
      });

  m.def(
      "quantize_gguf",
      [](const std::string& in, const std::string& out, const std::string& type, int threads) {
        GgmlType t = quant_type_from_name(type);
        QuantizeReport r;
        {
          py::gil_scoped_release nogil;
          r = quantize_gguf(in, out, t, threads);
        }
        py::dict d;
        d["tensors"] = r.n_tensors;
        d["quantized"] = r.n_quantized;
        d["fallback"] = r.n_fallback;
        d["in_bytes"] = r.in_bytes;
        d["out_bytes"] = r.out_bytes;
        return d;
      },
      py::arg("input"), py::arg("output"), py::arg("type"), py::arg("threads") = 0,
      "Re-quantizes a GGUF file's weight matrices to `type`; returns a summary dict.");
}

}  // namespace llmasos::python
