// Runtime information and ISA selection for Python (runtime_info, select_isa, supported levels),
// plus thin test hooks over the quantized formats and kernels (dequantize, quantize, matmul,
// gemm_f32, kernel_op for the dense float ops).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/gemm_f32.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/thread_pool.h"
#include "llmasos/errors.hpp"
#include "python/bindings.h"
#include "quant/quant_types.h"

namespace py = pybind11;

namespace llmasos::python {

namespace {

using F32Array = py::array_t<float, py::array::c_style | py::array::forcecast>;

const TypeTraits& traits_or_throw(uint32_t type_id) {
  const TypeTraits* tr = type_traits(type_id);
  if (!tr) throw InvalidArgumentError("unknown or unsupported tensor type id " + std::to_string(type_id));
  return *tr;
}

void check_multiple(const TypeTraits& tr, int64_t n) {
  if (n < 0 || n % tr.block_size != 0)
    throw InvalidArgumentError(std::string(tr.name) + ": " + std::to_string(n) +
                               " elements is not a multiple of the block size " +
                               std::to_string(tr.block_size));
}

// Raw bytes of any buffer (bytes, bytearray, numpy array), checked to hold at least `need` bytes.
const uint8_t* raw_bytes(const py::buffer& b, uint64_t need, const char* what) {
  py::buffer_info info = b.request();
  uint64_t have = static_cast<uint64_t>(info.size) * static_cast<uint64_t>(info.itemsize);
  if (have < need)
    throw InvalidArgumentError(std::string(what) + ": buffer holds " + std::to_string(have) +
                               " bytes, need " + std::to_string(need));
  // The caller keeps `b` alive for the duration of the call, so the pointer stays valid.
  return static_cast<const uint8_t*>(info.ptr);
}

py::array_t<float> dequantize(uint32_t type_id, const py::buffer& data, int64_t n) {
  const TypeTraits& tr = traits_or_throw(type_id);
  check_multiple(tr, n);
  auto deq = cpu::kernels().dequantize_row[type_id];
  if (!deq) throw InvalidArgumentError(std::string("no dequantize kernel for ") + tr.name);
  const uint8_t* src = raw_bytes(data, row_bytes(tr, n), "dequantize");
  py::array_t<float> out(n);
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    deq(src, dst, n);
  }
  return out;
}

// Reference quantize_row (the traits table), or the active level's activation quantizer.
py::array_t<uint8_t> quantize(uint32_t type_id, F32Array x, bool active_kernel) {
  const TypeTraits& tr = traits_or_throw(type_id);
  const int64_t n = static_cast<int64_t>(x.size());
  check_multiple(tr, n);
  auto q = active_kernel ? cpu::kernels().quantize_act[type_id] : tr.quantize_row;
  if (!q) throw InvalidArgumentError(std::string("no quantizer for ") + tr.name);
  py::array_t<uint8_t> out(static_cast<py::ssize_t>(row_bytes(tr, n)));
  const float* src = x.data();
  uint8_t* dst = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    q(src, dst, n);
  }
  return out;
}

py::array_t<float> matmul(uint32_t type_id, const py::buffer& w, int64_t rows, int64_t cols,
                          F32Array x, int threads) {
  const TypeTraits& tr = traits_or_throw(type_id);
  check_multiple(tr, cols);
  if (rows < 0 || cols <= 0) throw InvalidArgumentError("matmul: rows and cols must be positive");
  if (x.ndim() != 2 || x.shape(1) != cols)
    throw InvalidArgumentError("matmul: x must have shape [T, " + std::to_string(cols) + "]");
  const uint64_t stride = row_bytes(tr, cols);
  cpu::WeightView W;
  W.type = static_cast<GgmlType>(type_id);
  W.data = raw_bytes(w, stride * static_cast<uint64_t>(rows), "matmul weights");
  W.rows = rows;
  W.cols = cols;
  W.row_stride = stride;
  const int64_t T = x.shape(0);
  py::array_t<float> out({static_cast<py::ssize_t>(T), static_cast<py::ssize_t>(rows)});
  const float* X = x.data();
  float* Y = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::ThreadPool pool(threads);
    cpu::MatmulScratch scratch;
    cpu::matmul(W, X, T, Y, pool, scratch);
  }
  return out;
}

// A weight matrix held as the model holds it (ggml rows, or packed x8), with its own thread pool:
// the test and bench hook of the matmul paths. w: [rows, row_bytes] raw blocks of type_id.
class WeightMatrixForTests {
 public:
  WeightMatrixForTests(uint32_t type_id, const py::buffer& w, int64_t rows, int64_t cols, bool packed,
                       int threads)
      : pool_(threads) {
    const TypeTraits& tr = traits_or_throw(type_id);
    check_multiple(tr, cols);
    if (rows <= 0 || cols <= 0) throw InvalidArgumentError("WeightMatrix: rows and cols must be positive");
    const uint64_t stride = row_bytes(tr, cols);
    const uint8_t* src = static_cast<const uint8_t*>(raw_bytes(w, stride * static_cast<uint64_t>(rows), "weights"));
    raw_.assign(src, src + stride * static_cast<uint64_t>(rows));
    W_.type = static_cast<GgmlType>(type_id);
    W_.data = raw_.data();
    W_.rows = rows;
    W_.cols = cols;
    W_.row_stride = stride;
    if (packed) {
      W_ = cpu::pack_x8(W_, packed_);
      raw_.clear();
    }
  }
  py::array_t<float> matmul(F32Array x, bool precise) {
    if (x.ndim() != 2 || x.shape(1) != W_.cols)
      throw InvalidArgumentError("matmul: x must have shape [T, " + std::to_string(W_.cols) + "]");
    const int64_t T = x.shape(0);
    py::array_t<float> out({static_cast<py::ssize_t>(T), static_cast<py::ssize_t>(W_.rows)});
    const float* X = x.data();
    float* Y = out.mutable_data();
    py::gil_scoped_release nogil;
    if (precise)
      cpu::matmul_precise(W_, X, T, Y, pool_, scratch_);
    else
      cpu::matmul(W_, X, T, Y, pool_, scratch_);
    return out;
  }
  py::array_t<float> rows() const {  // every row as float (the embedding lookup path)
    py::array_t<float> out({static_cast<py::ssize_t>(W_.rows), static_cast<py::ssize_t>(W_.cols)});
    for (int64_t r = 0; r < W_.rows; ++r) cpu::dequantize_row(W_, r, out.mutable_data() + r * W_.cols);
    return out;
  }

 private:
  cpu::ThreadPool pool_;
  cpu::MatmulScratch scratch_;
  std::vector<uint8_t> raw_;
  cpu::PackedBytes packed_;
  cpu::WeightView W_;
};

// One sequence's keys and values stored as the model's cache stores them (16-position pages of
// f32 / f16 / bf16 / q8_0, in reversed page order), with its own thread pool: the attention kernel's test
// and bench hook. k, v: [S, n_head_kv, head_dim].
class KvPagesForTests {
 public:
  KvPagesForTests(F32Array k, F32Array v, const std::string& kv_type, int threads) : pool_(threads) {
    if (k.ndim() != 3 || v.ndim() != 3)
      throw InvalidArgumentError("attention: q, k and v must be 3-d [tokens, heads, head_dim]");
    S_ = k.shape(0);
    Hkv_ = k.shape(1);
    D_ = k.shape(2);
    if (S_ <= 0 || Hkv_ <= 0 || D_ <= 0 || v.shape(0) != S_ || v.shape(1) != Hkv_ || v.shape(2) != D_)
      throw InvalidArgumentError("attention: k and v must both be [positions, n_head_kv, head_dim]");
    if (kv_type != "f32" && kv_type != "f16" && kv_type != "bf16" && kv_type != "q8_0")
      throw InvalidArgumentError("attention: kv_type must be f32, f16, bf16 or q8_0");
    type_ = kv_type == "f32"   ? GgmlType::F32
            : kv_type == "f16" ? GgmlType::F16
            : kv_type == "q8_0" ? GgmlType::Q8_0
                               : GgmlType::BF16;
    const cpu::AttentionShape s{Hkv_, Hkv_, D_};
    const int64_t n_pages = (S_ + cpu::kKvBlockTokens - 1) / cpu::kKvBlockTokens;
    page_elems_ = cpu::kv_page_layer_elems(s, type_);
    const size_t bytes = static_cast<size_t>(n_pages * page_elems_) * cpu::kv_type_size(type_);
    k_.resize(bytes);
    v_.resize(bytes);
    table_.resize(static_cast<size_t>(n_pages));
    for (int64_t p = 0; p < n_pages; ++p) table_[static_cast<size_t>(p)] = static_cast<int32_t>(n_pages - 1 - p);
    const float *kp = k.data(), *vp = v.data();
    for (int64_t j = 0; j < S_; ++j)
      cpu::kv_store_position(view(), s, table_[static_cast<size_t>(j / cpu::kKvBlockTokens)],
                             j % cpu::kKvBlockTokens, kp + j * Hkv_ * D_, vp + j * Hkv_ * D_);
  }

  // q [T, n_head, head_dim] at positions S - T .. S - 1 -> [T, n_head, head_dim]; window, scale
  // and softcap as in cpu::AttentionShape (0: all earlier positions, 1 / sqrt(head_dim), none).
  py::array_t<float> attention(F32Array q, int64_t window, float scale, float softcap) {
    if (q.ndim() != 3) throw InvalidArgumentError("attention: q, k and v must be 3-d [tokens, heads, head_dim]");
    const int64_t T = q.shape(0), H = q.shape(1);
    if (T <= 0 || H <= 0 || H % Hkv_ != 0)
      throw InvalidArgumentError("attention: need n_head a positive multiple of n_head_kv");
    if (q.shape(2) != D_) throw InvalidArgumentError("attention: q's head_dim differs from k's");
    if (T > S_) throw InvalidArgumentError("attention: more queries than stored positions (k and v must be [pos0 + T, ...])");
    if (window < 0 || !(scale >= 0.0f) || !std::isfinite(scale) || !(softcap == 0.0f || softcap >= 1e-3f) ||
        !std::isfinite(softcap))
      throw InvalidArgumentError("attention: window, scale and softcap must be >= 0 (0: none / the default)");
    const cpu::AttentionShape s{H, Hkv_, D_, scale, window, softcap};
    std::vector<int64_t> pos(static_cast<size_t>(T));
    std::vector<const int32_t*> pages(static_cast<size_t>(T), table_.data());
    for (int64_t t = 0; t < T; ++t) pos[static_cast<size_t>(t)] = S_ - T + t;
    py::array_t<float> out({static_cast<py::ssize_t>(T), static_cast<py::ssize_t>(H),
                            static_cast<py::ssize_t>(D_)});
    const float* qp = q.data();
    float* o = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      cpu::attention_paged(qp, o, T, pos.data(), pages.data(), view(), s, pool_, scratch_);
    }
    return out;
  }

 private:
  cpu::KvPagesView view() { return {k_.data(), v_.data(), type_, page_elems_}; }
  cpu::ThreadPool pool_;
  int64_t S_ = 0, Hkv_ = 0, D_ = 0, page_elems_ = 0;
  GgmlType type_ = GgmlType::F32;
  std::vector<uint8_t> k_, v_;
  std::vector<int32_t> table_;
  std::vector<float> scratch_;
};

// C[M, N] = a[M, K] @ b[K, N] in float32, the canonical order of gemm_f32.h (test and bench hook).
py::array_t<float> gemm_f32(F32Array a, F32Array b, int threads) {
  if (a.ndim() != 2 || b.ndim() != 2)
    throw InvalidArgumentError("gemm_f32: a and b must be 2-d (got " + std::to_string(a.ndim()) +
                               "-d and " + std::to_string(b.ndim()) + "-d)");
  const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
  if (b.shape(0) != K)
    throw InvalidArgumentError("gemm_f32: a is [" + std::to_string(M) + ", " + std::to_string(K) +
                               "] but b has " + std::to_string(b.shape(0)) + " rows");
  if (M == 0 || N == 0 || K == 0)
    throw InvalidArgumentError("gemm_f32: empty operand (M, N, K = " + std::to_string(M) + ", " +
                               std::to_string(N) + ", " + std::to_string(K) + ")");
  if (threads < 1) throw InvalidArgumentError("gemm_f32: threads must be at least 1");
  py::array_t<float> out({static_cast<py::ssize_t>(M), static_cast<py::ssize_t>(N)});
  const float *ap = a.data(), *bp = b.data();
  float* cp = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    // Kept per calling thread, as a BLAS keeps its threads and buffers: repeated calls (benches)
    // reuse the pages and wake parked workers instead of starting threads (a new pool per call
    // cost about 8% at 1024^3 on 2 threads). Idle workers spin briefly, then sleep.
    thread_local cpu::GemmScratch scratch;
    thread_local std::unique_ptr<cpu::ThreadPool> pool;
    if (!pool || pool->size() != threads) {
      pool.reset();
      pool = std::make_unique<cpu::ThreadPool>(threads);
    }
    cpu::gemm_f32(M, N, K, ap, K, bp, N, cp, N, *pool, scratch);
  }
  return out;
}

// Causal grouped-query attention (test hook): q [T, n_head, d] at positions pos0..pos0+T-1 over
// k, v [pos0+T, n_head_kv, d] -> [T, n_head, d].
py::array_t<float> attention(F32Array q, F32Array k, F32Array v, int64_t pos0, int threads,
                             const std::string& kv_type, int64_t window, float scale, float softcap) {
  if (q.ndim() != 3 || k.ndim() != 3 || v.ndim() != 3)
    throw InvalidArgumentError("attention: q, k and v must be 3-d [tokens, heads, head_dim]");
  if (pos0 < 0 || k.shape(0) != pos0 + q.shape(0))
    throw InvalidArgumentError("attention: k and v must be [pos0 + T, n_head_kv, head_dim]");
  KvPagesForTests pages(k, v, kv_type, threads);
  return pages.attention(q, window, scale, softcap);
}

// Thread pool check (test hook): `rounds` jobs of varying item counts (1 .. 4 * threads, and
// parallel_for over varying ranges) back to back; returns how many items ran other than exactly
// once (0 when every job ran each of its items once).
int64_t pool_stress(int threads, int64_t rounds) {
  py::gil_scoped_release nogil;
  cpu::ThreadPool pool(threads);
  int64_t bad = 0;
  std::vector<std::atomic<int>> hits(static_cast<size_t>(64 * threads + 64));
  for (int64_t r = 0; r < rounds; ++r) {
    const int64_t n = 1 + (r * 7919) % (16 * threads + 7);
    for (auto& h : hits) h.store(0);
    if (r % 2 == 0) {
      pool.parallel_for(n, 1 + r % 3, [&](int64_t a, int64_t b) {
        for (int64_t i = a; i < b; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      });
    } else {
      pool.run([&](int i, int) { hits[static_cast<size_t>(i)].fetch_add(1); });
    }
    const int64_t m = r % 2 == 0 ? n : pool.size();
    for (int64_t i = 0; i < m; ++i) bad += hits[static_cast<size_t>(i)].load() != 1;
  }
  return bad;
}

// One dense op of the active level's table on copies of its inputs (test hook):
//   dot_f32(x, y) -> [dot]       rmsnorm(x, y=w, a=eps)    silu_mul(x=g, y=u)   gelu_mul(x=g, y=u)
//   axpy(x, y, a) -> x + a * y   scale(x, a) -> x * a      softmax(x)   softcap(x, a) -> a tanh(x / a)
//   f32_to_f16(x) -> the F16 bit patterns, as floats (exact)
py::array_t<float> kernel_op(const std::string& name, F32Array x, std::optional<F32Array> y, float a) {
  const cpu::KernelTable& k = cpu::kernels();
  const int64_t n = static_cast<int64_t>(x.size());
  const bool needs_y = name == "dot_f32" || name == "rmsnorm" || name == "silu_mul" || name == "gelu_mul" ||
                       name == "axpy";
  if (!needs_y && name != "scale" && name != "softmax" && name != "softcap" && name != "f32_to_f16")
    throw InvalidArgumentError("kernel_op: unknown op '" + name + "'");
  if (needs_y && (!y || static_cast<int64_t>(y->size()) != n))
    throw InvalidArgumentError("kernel_op " + name + ": y must have as many elements as x");
  if (name == "softcap" && !(a > 0.0f)) throw InvalidArgumentError("kernel_op softcap: a must be > 0");
  const float* yp = needs_y ? y->data() : nullptr;
  py::array_t<float> out(name == "dot_f32" ? 1 : n);
  float* o = out.mutable_data();
  const float* xp = x.data();
  {
    py::gil_scoped_release nogil;
    if (name == "dot_f32") {
      o[0] = k.dot_f32(xp, yp, n);
    } else if (name == "rmsnorm") {
      k.rmsnorm(o, xp, yp, n, a);
    } else if (name == "f32_to_f16") {
      std::vector<uint16_t> h(static_cast<size_t>(n));
      k.f32_to_f16(xp, h.data(), n);
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<float>(h[static_cast<size_t>(i)]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i] = xp[i];
      if (name == "silu_mul") k.silu_mul(o, o, yp, n);
      else if (name == "gelu_mul") k.gelu_mul(o, o, yp, n);
      else if (name == "axpy") k.axpy(o, a, yp, n);
      else if (name == "scale") k.scale(o, a, n);
      else if (name == "softcap") k.softcap(o, n, a);
      else k.softmax(o, n);
    }
  }
  return out;
}

py::dict type_info(uint32_t type_id) {
  const TypeTraits& tr = traits_or_throw(type_id);
  py::dict d;
  d["name"] = tr.name;
  d["block_size"] = tr.block_size;
  d["type_size"] = tr.type_size;
  d["vec_dot_type"] = static_cast<uint32_t>(tr.vec_dot_type);
  d["has_quantize"] = tr.quantize_row != nullptr;
  return d;
}

}  // namespace

void register_kernels(py::module_& m) {
  m.def("active_isa", &cpu::active_isa, "Name of the ISA level whose kernels are in use.");
  m.def("compiled_isas", &cpu::compiled_isas, "ISA levels compiled into this build.");
  m.def("supported_isas", &cpu::supported_isas, "ISA levels this CPU and OS can run.");
  m.def("select_isa", &cpu::select_isa, py::arg("name"), "Switch the active ISA level.");
  m.def("emulated_isas", &cpu::emulated_isas,
        "Levels running the tile kernels on a scalar model of the tile unit (tests; never the default).");
  m.def("amx_status", &cpu::amx_status, "Whether the amx level can run here, or why not.");
  m.def("cpu_features", &cpu::cpu_features, "CPU features seen by cpuid/XGETBV.");
  m.def("physical_cores", &cpu::physical_cores, "Number of physical CPU cores.");

  // Test hooks over the quantized formats (type ids are ggml's, as in GGUF).
  m.def("dequantize", &dequantize, py::arg("type_id"), py::arg("data"), py::arg("n"),
        "Dequantize n elements of raw blocks with the active ISA level's kernel -> float32[n].");
  m.def("quantize", [](uint32_t t, F32Array x) { return quantize(t, x, false); },
        py::arg("type_id"), py::arg("x"),
        "Reference quantize_row of a float32 array (n a multiple of the block size) -> uint8 bytes.");
  m.def("quantize_act", [](uint32_t t, F32Array x) { return quantize(t, x, true); },
        py::arg("type_id"), py::arg("x"),
        "The active level's activation quantizer (Q8_0, Q8_1, Q8_K) -> uint8 bytes.");
  m.def("matmul", &matmul, py::arg("type_id"), py::arg("w"), py::arg("rows"), py::arg("cols"),
        py::arg("x"), py::arg("threads") = 1,
        "Y[T, rows] = X[T, cols] @ W.T for W given as rows x row_bytes raw blocks.");
  py::class_<WeightMatrixForTests>(m, "WeightMatrix",
                                   "A weight matrix [rows, row_bytes] held as the model holds it (packed: "
                                   "8-row interleaved x8 blocks) with its own pool of `threads`.")
      .def(py::init<uint32_t, const py::buffer&, int64_t, int64_t, bool, int>(), py::arg("type_id"),
           py::arg("w"), py::arg("rows"), py::arg("cols"), py::arg("packed") = true, py::arg("threads") = 1)
      .def("matmul", &WeightMatrixForTests::matmul, py::arg("x"), py::arg("precise") = false,
           "Y[T, rows] = X[T, cols] @ W.T (precise: ~16-bit activations, as the model's Q/K/V).")
      .def("rows", &WeightMatrixForTests::rows, "Every row as float.");
  m.def("gemm_f32", &gemm_f32, py::arg("a"), py::arg("b"), py::arg("threads") = 1,
        "C[M, N] = a[M, K] @ b[K, N] in float32 with the active ISA level's GEMM kernel "
        "(bit-identical across levels and thread counts).");
  m.def("attention", &attention, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("pos0") = 0,
        py::arg("threads") = 1, py::arg("kv_type") = "f32", py::arg("window") = 0, py::arg("scale") = 0.0f,
        py::arg("softcap") = 0.0f,
        "Causal GQA attention: q [T, n_head, d] at positions pos0.., k/v [pos0+T, n_head_kv, d]; "
        "window > 0: each position sees its last `window` positions; scale 0: 1 / sqrt(d); "
        "softcap > 0: scores softcap * tanh(score / softcap).");
  py::class_<KvPagesForTests>(m, "KvPages",
                              "Keys/values [S, n_head_kv, d] stored once as the model's KV cache "
                              "stores them; .attention(q [T, n_head, d]) attends from positions S-T..S-1.")
      .def(py::init<F32Array, F32Array, const std::string&, int>(), py::arg("k"), py::arg("v"),
           py::arg("kv_type") = "f32", py::arg("threads") = 1)
      .def("attention", &KvPagesForTests::attention, py::arg("q"), py::arg("window") = 0,
           py::arg("scale") = 0.0f, py::arg("softcap") = 0.0f);
  m.def("pool_stress", &pool_stress, py::arg("threads"), py::arg("rounds"),
        "Runs many thread-pool jobs of varying sizes; returns the items not run exactly once.");
  m.def("kernel_op", &kernel_op, py::arg("name"), py::arg("x"), py::arg("y") = py::none(),
        py::arg("a") = 0.0f,
        "A dense float op of the active ISA level (dot_f32, rmsnorm, silu_mul, gelu_mul, axpy, scale, "
        "softmax, softcap, f32_to_f16) on copies of float32 arrays.");
  m.def("type_info", &type_info, py::arg("type_id"),
        "Traits of a tensor type: name, block_size, type_size, vec_dot_type, has_quantize.");
}

}  // namespace llmasos::python
