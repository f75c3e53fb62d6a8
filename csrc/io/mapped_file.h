// A read-only memory mapping of a whole file; the model's weights are used in place from it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace llmasos {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws ModelFormatError / Error
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Hints that bytes [p, p + n) of the mapping will not be read again (their weights were copied
  // into another layout): the whole pages inside it leave this process's resident set. Reading
  // them later is still valid (they fault back in from the file).
  void drop_pages(const void* p, uint64_t n) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace llmasos
