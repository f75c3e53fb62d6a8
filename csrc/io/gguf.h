// GGUF (v2, v3) reader: parses the header, metadata and tensor infos of a memory-mapped file,
// validating every count, length, type id, dimension and offset before use (ModelFormatError).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/mapped_file.h"
#include "quant/quant_types.h"

namespace llmasos {

enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_value_type_name(GgufValueType t);

// One metadata value. Scalars are widened: unsigned -> u, signed -> i, floats -> f.
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  bool b = false;
  std::string str;                       // STRING
  GgufValueType elem_type = GgufValueType::UINT8;  // ARRAY: type of the elements
  std::vector<GgufValue> arr;             // ARRAY (may nest)

  bool is_integer() const;
  bool is_float() const { return type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64; }
};

struct GgufTensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension, as in ggml
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;           // relative to the start of the data section
  const uint8_t* data = nullptr; // inside the mapping
  uint64_t nbytes = 0;
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  // Maps and parses the file; throws ModelFormatError naming the problem.
  static std::unique_ptr<GgufFile> open(const std::string& path);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::string& path() const { return file_->path(); }
  uint64_t file_size() const { return file_->size(); }
  void drop_pages(const void* p, uint64_t n) const { file_->drop_pages(p, n); }  // see MappedFile
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section

  // Every key and value (arrays released by release_arrays() appear empty here; find() has them).
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;  // nullptr if absent

  // Frees the parsed form of arrays of at least min_elems elements (a 49k-token vocabulary is
  // ~15 MB of GgufValues once its tokenizer has been built); find() parses one again from the
  // mapping when it is asked for.
  void release_arrays(uint64_t min_elems);
  // drop_pages over the header and metadata (everything before the data section).
  void drop_metadata_pages() const { file_->drop_pages(file_->data(), data_offset_); }

  // Typed getters. get_* return `def` when absent; require_* throw when absent. Both throw
  // ModelFormatError when the value has the wrong type or does not fit.
  std::string get_string(const std::string& key, const std::string& def) const;
  std::string require_string(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def) const;   // any integer type
  int64_t require_int(const std::string& key) const;
  double get_float(const std::string& key, double def) const;   // float or integer types
  bool get_bool(const std::string& key, bool def) const;
  // Array of `elem` (nullptr if absent); throws if present with another type.
  const std::vector<GgufValue>* get_array(const std::string& key, GgufValueType elem) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* tensor(const std::string& name) const;  // nullptr if absent

 private:
  GgufFile() = default;
  void parse();

  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<uint64_t> kv_value_offset_;  // file offset of each value (re-parsing released arrays)
  std::vector<bool> kv_released_;
  mutable std::mutex reload_mu_;
  mutable std::unordered_map<size_t, std::unique_ptr<GgufValue>> reloaded_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace llmasos
