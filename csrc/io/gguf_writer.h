// Writes GGUF v3 files: metadata values with their exact types (as GgufValue holds them), tensor
// infos, and tensor data at the file's alignment. Used by `llmasos quantize`.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace llmasos {

class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 32);

  void add_kv(const std::string& key, const GgufValue& v);
  // Declares a tensor; its data must be `nbytes` long and is written in declaration order.
  void add_tensor(const std::string& name, uint32_t n_dims, const int64_t ne[4], GgmlType type,
                  uint64_t nbytes);
  // Writes header, metadata and tensor infos; then write_tensor_data for each tensor in order.
  void begin(const std::string& path);
  void write_tensor_data(const void* data, uint64_t nbytes);
  void finish();  // flushes, checks every tensor was written, closes (throws Error on I/O errors)
  ~GgufWriter();

 private:
  struct Info {
    std::string name;
    uint32_t n_dims;
    int64_t ne[4];
    GgmlType type;
    uint64_t nbytes, offset;
  };
  void put(const void* p, size_t n);
  void put_u32(uint32_t v) { put(&v, 4); }
  void put_u64(uint64_t v) { put(&v, 8); }
  void put_str(const std::string& s) { put_u64(s.size()); put(s.data(), s.size()); }
  void put_value(const GgufValue& v, GgufValueType type);
  void pad();

  uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Info> tensors_;
  size_t next_tensor_ = 0;
  uint64_t data_size_ = 0;
  std::FILE* f_ = nullptr;
  std::string path_;
  uint64_t written_ = 0;
  uint64_t data_start_ = 0;  // file offset of the data section
};

}  // namespace llmasos
