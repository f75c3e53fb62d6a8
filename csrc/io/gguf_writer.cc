// GGUF v3 writer (little-endian, as the format and every x86/ARM host is).
#include "io/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "llmasos/errors.hpp"

namespace llmasos {

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
    throw InvalidArgumentError("GGUF alignment must be a power of two");
}

GgufWriter::~GgufWriter() {
  if (f_) std::fclose(f_);
}

void GgufWriter::add_kv(const std::string& key, const GgufValue& v) {
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = v;
      return;
    }
  kv_.emplace_back(key, v);
}

void GgufWriter::add_tensor(const std::string& name, uint32_t n_dims, const int64_t ne[4],
                            GgmlType type, uint64_t nbytes) {
  Info t{name, n_dims, {ne[0], ne[1], ne[2], ne[3]}, type, nbytes, 0};
  // Each tensor starts at an aligned offset inside the data section.
  t.offset = (data_size_ + alignment_ - 1) / alignment_ * alignment_;
  data_size_ = t.offset + nbytes;
  tensors_.push_back(t);
}

void GgufWriter::put(const void* p, size_t n) {
  if (n && std::fwrite(p, 1, n, f_) != n)
    throw Error("cannot write '" + path_ + "': " + std::strerror(errno));
  written_ += n;
}

void GgufWriter::pad() {
  static const uint8_t zeros[256] = {};
  uint64_t want = (written_ + alignment_ - 1) / alignment_ * alignment_;
  while (written_ < want) put(zeros, static_cast<size_t>(std::min<uint64_t>(want - written_, sizeof(zeros))));
}

void GgufWriter::put_value(const GgufValue& v, GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8: case GgufValueType::INT8: { uint8_t x = static_cast<uint8_t>(type == GgufValueType::INT8 ? v.i : v.u); put(&x, 1); break; }
    case GgufValueType::UINT16: case GgufValueType::INT16: { uint16_t x = static_cast<uint16_t>(type == GgufValueType::INT16 ? v.i : v.u); put(&x, 2); break; }
    case GgufValueType::UINT32: case GgufValueType::INT32: { uint32_t x = static_cast<uint32_t>(type == GgufValueType::INT32 ? v.i : v.u); put(&x, 4); break; }
    case GgufValueType::UINT64: case GgufValueType::INT64: { uint64_t x = type == GgufValueType::INT64 ? static_cast<uint64_t>(v.i) : v.u; put(&x, 8); break; }
    case GgufValueType::FLOAT32: { float x = static_cast<float>(v.f); put(&x, 4); break; }
    case GgufValueType::FLOAT64: { double x = v.f; put(&x, 8); break; }
    case GgufValueType::BOOL: { uint8_t x = v.b ? 1 : 0; put(&x, 1); break; }
    case GgufValueType::STRING: put_str(v.str); break;
    case GgufValueType::ARRAY: {
      put_u32(static_cast<uint32_t>(v.elem_type));
      put_u64(v.arr.size());
      for (const auto& e : v.arr) put_value(e, v.elem_type);  // nested arrays recurse
      break;
    }
  }
}

void GgufWriter::begin(const std::string& path) {
  path_ = path;
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw Error("cannot create '" + path + "': " + std::strerror(errno));
  put("GGUF", 4);
  put_u32(3);
  put_u64(tensors_.size());
  put_u64(kv_.size());
  for (const auto& [key, v] : kv_) {
    put_str(key);
    put_u32(static_cast<uint32_t>(v.type));
    put_value(v, v.type);
  }
  for (const auto& t : tensors_) {
    put_str(t.name);
    put_u32(t.n_dims);
    for (uint32_t d = 0; d < t.n_dims; ++d) put_u64(static_cast<uint64_t>(t.ne[d]));
    put_u32(static_cast<uint32_t>(t.type));
    put_u64(t.offset);
  }
  pad();
  data_start_ = written_;
}

void GgufWriter::write_tensor_data(const void* data, uint64_t nbytes) {
  if (next_tensor_ >= tensors_.size()) throw Error("GgufWriter: more tensor data than tensors");
  const Info& t = tensors_[next_tensor_++];
  if (nbytes != t.nbytes) throw Error("GgufWriter: tensor '" + t.name + "' data has the wrong size");
  while (written_ - data_start_ < t.offset) {
    uint8_t z = 0;
    put(&z, 1);
  }
  put(data, static_cast<size_t>(nbytes));
}

void GgufWriter::finish() {
  if (next_tensor_ != tensors_.size()) throw Error("GgufWriter: not every tensor was written");
  pad();
  int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) throw Error("cannot close '" + path_ + "': " + std::strerror(errno));
}

}  // namespace llmasos
