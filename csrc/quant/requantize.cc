// Requantization: dequantize each row to float with the source type's reference routine, then
// quantize it with the target type's reference quantizer, rows split across threads.
#include "quant/requantize.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <vector>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "kernels/cpu/thread_pool.h"
#include "llmasos/errors.hpp"

namespace llmasos {
namespace {

const GgmlType kTargets[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                             GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                             GgmlType::F16,  GgmlType::BF16, GgmlType::F32};

// llama.cpp's general.file_type (llama_ftype) for a file made of one weight type.
uint32_t file_type_of(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q4_1: return 3;
    case GgmlType::Q8_0: return 7;
    case GgmlType::Q5_0: return 8;
    case GgmlType::Q5_1: return 9;
    case GgmlType::Q4_K: return 14;  // Q4_K_S: every weight Q4_K
    case GgmlType::Q5_K: return 16;  // Q5_K_S
    case GgmlType::Q6_K: return 18;
    case GgmlType::BF16: return 32;
    default: return 0;
  }
}

// The 32-element format standing in for a K-quant on rows that 256-element super-blocks do not
// tile (as llama.cpp's quantizer does: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0).
GgmlType legacy_fallback(GgmlType target) {
  switch (target) {
    case GgmlType::Q4_K: return GgmlType::Q5_0;
    case GgmlType::Q5_K: return GgmlType::Q5_1;
    default: return GgmlType::Q8_0;
  }
}

// The type a row of `cols` elements gets: the target if its block fits, else a finer fallback.
GgmlType fit_type(GgmlType target, int64_t cols) {
  for (GgmlType t : {target, legacy_fallback(target), GgmlType::Q8_0, GgmlType::F16}) {
    const TypeTraits* tr = type_traits(t);
    if (tr && cols % tr->block_size == 0) return t;
  }
  return GgmlType::F32;
}

}  // namespace

GgmlType quant_type_from_name(const std::string& name) {
  std::string up = name;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string valid;
  for (GgmlType t : kTargets) {
    const char* n = type_traits(t)->name;
    if (up == n) return t;
    valid += std::string(valid.empty() ? "" : ", ") + n;
  }
  throw InvalidArgumentError("unknown quantization type '" + name + "' (valid: " + valid + ")");
}

QuantizeReport quantize_gguf(const std::string& in, const std::string& out, GgmlType target,
                             int threads) {
  auto src = GgufFile::open(in);
  QuantizeReport rep;
  rep.in_bytes = src->file_size();
  GgufWriter w(src->alignment());
  for (const auto& [key, v] : src->metadata()) w.add_kv(key, v);
  GgufValue ft;
  ft.type = GgufValueType::UINT32;
  ft.u = file_type_of(target);
  ft.i = static_cast<int64_t>(ft.u);
  w.add_kv("general.file_type", ft);

  // Plan: the output type of every tensor.
  std::vector<GgmlType> out_types;
  for (const auto& t : src->tensors()) {
    const bool is_matrix = t.n_dims >= 2 && t.ne[1] > 1;
    GgmlType ot = is_matrix ? fit_type(target, t.ne[0]) : GgmlType::F32;
    if (is_matrix && ot != target) ++rep.n_fallback;
    if (is_matrix) ++rep.n_quantized;
    const TypeTraits* tr = type_traits(ot);
    uint64_t rows = static_cast<uint64_t>(t.n_elements() / t.ne[0]);
    w.add_tensor(t.name, t.n_dims, t.ne, ot, rows * row_bytes(*tr, t.ne[0]));
    out_types.push_back(ot);
  }
  rep.n_tensors = static_cast<int64_t>(out_types.size());

  const std::string tmp = out + ".part";
  cpu::ThreadPool pool(threads > 0 ? threads : cpu::physical_cores());
  try {
    w.begin(tmp);
    std::vector<uint8_t> buf;
    for (size_t i = 0; i < src->tensors().size(); ++i) {
      const GgufTensorInfo& t = src->tensors()[i];
      const TypeTraits* si = type_traits(t.type);
      const TypeTraits* so = type_traits(out_types[i]);
      if (!si || !si->dequantize_row) throw ModelFormatError("tensor '" + t.name + "' has a type that cannot be read");
      if (!so->quantize_row) throw InvalidArgumentError(std::string("no quantizer for ") + so->name);
      const int64_t cols = t.ne[0], rows = t.n_elements() / cols;
      const uint64_t in_row = row_bytes(*si, cols), out_row = row_bytes(*so, cols);
      buf.resize(static_cast<size_t>(rows * out_row));
      if (t.type == out_types[i]) {
        std::copy(t.data, t.data + buf.size(), buf.begin());
      } else {
        pool.parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
          std::vector<float> row(static_cast<size_t>(cols));
          for (int64_t r = r0; r < r1; ++r) {
            si->dequantize_row(t.data + r * in_row, row.data(), cols);
            so->quantize_row(row.data(), buf.data() + r * out_row, cols);
          }
        });
      }
      w.write_tensor_data(buf.data(), buf.size());
    }
    w.finish();
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), out.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("cannot rename '" + tmp + "' to '" + out + "'");
  }
  auto check = GgufFile::open(out);  // what we wrote must parse
  rep.out_bytes = check->file_size();
  return rep;
}

}  // namespace llmasos
