// GGUF v2/v3 parser over a read-only mapping. Every count, length, id, dimension and offset is
// checked (overflow-safe, against the bytes actually left) before it is used or allocated for.
#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "io/checked.h"
#include "llmasos/errors.hpp"

namespace llmasos {
namespace {

constexpr uint32_t kMaxArrayDepth = 4;         // arrays of arrays of ... at most this deep
constexpr uint64_t kMaxMetadataValues = 1ull << 23;  // all values, array elements included
constexpr uint32_t kMaxDims = 4;               // GGML_MAX_DIMS

// ggml type names by id (ids of removed formats are named too, for clear errors).
const char* ggml_type_name(uint32_t id) {
  static const char* const names[] = {
      "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1",
      "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
      "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
      "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8",
      "IQ4_NL_8_8", "MXFP4"};
  return id < sizeof(names) / sizeof(names[0]) ? names[id] : "unknown";
}

// (block_size, type_size) of the types llmasos computes with; {0, 0} for the rest. Kept here so
// the parser does not depend on which kernels are compiled in.
struct BlockShape {
  int64_t block_size, type_size;
};
BlockShape block_shape(uint32_t id) {
  switch (id) {
    case 0: return {1, 4};      // F32
    case 1: return {1, 2};      // F16
    case 2: return {32, 18};    // Q4_0
    case 3: return {32, 20};    // Q4_1
    case 6: return {32, 22};    // Q5_0
    case 7: return {32, 24};    // Q5_1
    case 8: return {32, 34};    // Q8_0
    case 12: return {256, 144}; // Q4_K
    case 13: return {256, 176}; // Q5_K
    case 14: return {256, 210}; // Q6_K
    case 30: return {1, 2};     // BF16
    default: return {0, 0};
  }
}

// Smallest encoding of one value of each type: bounds how many elements the remaining bytes
// can hold, so a claimed count is checked before anything is reserved for it.
uint64_t min_value_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
    case GgufValueType::STRING: return 8;   // u64 length
    case GgufValueType::ARRAY: return 12;   // u32 element type + u64 count
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::FLOAT64); }

// Cursor over the mapping; every read checks the bytes left and names what it was reading.
class Reader {
 public:
  Reader(const uint8_t* data, uint64_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  uint64_t pos() const { return pos_; }
  void seek(uint64_t pos) { pos_ = pos; }
  uint64_t left() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& msg) const {
    throw ModelFormatError("GGUF file '" + path_ + "': " + msg);
  }

  void need(uint64_t n, const std::string& what) const {
    if (n > left())
      fail("truncated at byte " + std::to_string(pos_) + " reading " + what + " (need " +
           std::to_string(n) + " bytes, " + std::to_string(left()) + " left)");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));  // GGUF is little-endian, as is every host we build for
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    uint64_t len = read<uint64_t>("length of " + what);
    if (len > left())
      fail(what + ": string length " + std::to_string(len) + " exceeds the " +
           std::to_string(left()) + " bytes left in the file");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
};

class Parser {
 public:
  Parser(Reader& r) : r_(r) {}

  // Reads a value of type `t` into `out`; `where` names the key (and element) for errors.
  void read_value(GgufValueType t, GgufValue& out, const std::string& where, uint32_t depth) {
    if (++n_values_ > kMaxMetadataValues)
      r_.fail(where + ": metadata holds more than " + std::to_string(kMaxMetadataValues) + " values");
    out.type = t;
    switch (t) {
      case GgufValueType::UINT8: out.u = r_.read<uint8_t>(where); break;
      case GgufValueType::UINT16: out.u = r_.read<uint16_t>(where); break;
      case GgufValueType::UINT32: out.u = r_.read<uint32_t>(where); break;
      case GgufValueType::UINT64: out.u = r_.read<uint64_t>(where); break;
      case GgufValueType::INT8: out.i = r_.read<int8_t>(where); break;
      case GgufValueType::INT16: out.i = r_.read<int16_t>(where); break;
      case GgufValueType::INT32: out.i = r_.read<int32_t>(where); break;
      case GgufValueType::INT64: out.i = r_.read<int64_t>(where); break;
      case GgufValueType::FLOAT32: out.f = r_.read<float>(where); break;
      case GgufValueType::FLOAT64: out.f = r_.read<double>(where); break;
      case GgufValueType::BOOL: {
        uint8_t b = r_.read<uint8_t>(where);
        if (b > 1) r_.fail(where + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
        out.b = b != 0;
        break;
      }
      case GgufValueType::STRING: out.str = r_.read_string(where); break;
      case GgufValueType::ARRAY: {
        if (depth >= kMaxArrayDepth)
          r_.fail(where + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
        uint32_t et = r_.read<uint32_t>("element type of " + where);
        if (!valid_value_type(et))
          r_.fail(where + ": unknown array element type " + std::to_string(et));
        out.elem_type = static_cast<GgufValueType>(et);
        uint64_t n = r_.read<uint64_t>("length of " + where);
        uint64_t min_bytes = min_value_bytes(out.elem_type);
        if (n > r_.left() / min_bytes)
          r_.fail(where + ": array length " + std::to_string(n) + " of " +
                  gguf_value_type_name(out.elem_type) + " cannot fit in the " +
                  std::to_string(r_.left()) + " bytes left in the file");
        out.arr.resize(static_cast<size_t>(n));
        for (uint64_t k = 0; k < n; ++k)
          read_value(out.elem_type, out.arr[k], where + "[" + std::to_string(k) + "]", depth + 1);
        break;
      }
      default:
        r_.fail(where + ": unknown value type " + std::to_string(static_cast<uint32_t>(t)));
    }
    // Integers are also mirrored into the other field when representable, so a reader of `i`
    // sees an unsigned value (and vice versa); get_int() stays the checked way to read them.
    if (out.is_integer()) {
      bool is_signed = t == GgufValueType::INT8 || t == GgufValueType::INT16 ||
                       t == GgufValueType::INT32 || t == GgufValueType::INT64;
      if (is_signed && out.i >= 0) out.u = static_cast<uint64_t>(out.i);
      if (!is_signed && out.u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        out.i = static_cast<int64_t>(out.u);
    }
  }

 private:
  Reader& r_;
  uint64_t n_values_ = 0;
};

std::string shape_string(const GgufTensorInfo& t) {
  std::string s = "[";
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}

}  // namespace

const char* gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: return "UINT8";
    case GgufValueType::INT8: return "INT8";
    case GgufValueType::UINT16: return "UINT16";
    case GgufValueType::INT16: return "INT16";
    case GgufValueType::UINT32: return "UINT32";
    case GgufValueType::INT32: return "INT32";
    case GgufValueType::FLOAT32: return "FLOAT32";
    case GgufValueType::BOOL: return "BOOL";
    case GgufValueType::STRING: return "STRING";
    case GgufValueType::ARRAY: return "ARRAY";
    case GgufValueType::UINT64: return "UINT64";
    case GgufValueType::INT64: return "INT64";
    case GgufValueType::FLOAT64: return "FLOAT64";
  }
  return "UNKNOWN";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::UINT8: case GgufValueType::UINT16: case GgufValueType::UINT32:
    case GgufValueType::UINT64: case GgufValueType::INT8: case GgufValueType::INT16:
    case GgufValueType::INT32: case GgufValueType::INT64: return true;
    default: return false;
  }
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->file_ = std::make_unique<MappedFile>(path);
  f->parse();
  return f;
}

void GgufFile::parse() {
  Reader r(file_->data(), file_->size(), file_->path());

  // Header: magic, version, tensor_count (u64), kv_count (u64).
  r.need(4, "magic");
  uint32_t magic = r.read<uint32_t>("magic");
  if (std::memcmp(&magic, "GGUF", 4) != 0) r.fail("not a GGUF file (bad magic)");
  version_ = r.read<uint32_t>("version");
  if (version_ == 1) r.fail("GGUF version 1 is not supported (re-convert the model to v3)");
  if (version_ != 2 && version_ != 3) {
    std::string hint = (version_ & 0xffff) == 0 && version_ != 0 ? " (big-endian file?)" : "";
    r.fail("unsupported GGUF version " + std::to_string(version_) + hint);
  }
  uint64_t n_tensors = r.read<uint64_t>("tensor count");
  uint64_t n_kv = r.read<uint64_t>("metadata count");
  // Minimal encodings: a kv is an empty key + type + 1-byte value (13 bytes); a tensor info is an
  // empty name + n_dims + one dimension + type + offset (32 bytes).
  if (n_kv > r.left() / 13)
    r.fail("metadata count " + std::to_string(n_kv) + " cannot fit in the " +
           std::to_string(r.left()) + " bytes left in the file");
  if (n_tensors > r.left() / 32)
    r.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
           std::to_string(r.left()) + " bytes left in the file");

  // Metadata.
  Parser p(r);
  kv_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = r.read_string("key of metadata entry " + std::to_string(k));
    if (key.empty()) r.fail("metadata entry " + std::to_string(k) + " has an empty key");
    if (kv_index_.count(key)) r.fail("duplicate metadata key '" + key + "'");
    uint32_t t = r.read<uint32_t>("type of key '" + key + "'");
    if (!valid_value_type(t)) r.fail("key '" + key + "': unknown value type " + std::to_string(t));
    GgufValue v;
    kv_value_offset_.push_back(r.pos());
    p.read_value(static_cast<GgufValueType>(t), v, "key '" + key + "'", 0);
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufValueType::UINT32)
      r.fail(std::string("key 'general.alignment' must be UINT32, not ") + gguf_value_type_name(a->type));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      r.fail("key 'general.alignment' is " + std::to_string(a->u) + ", not a nonzero power of two");
    alignment_ = a->u;
  }

  // Tensor infos.
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo ti;
    ti.name = r.read_string("name of tensor " + std::to_string(k));
    if (ti.name.empty()) r.fail("tensor " + std::to_string(k) + " has an empty name");
    const std::string where = "tensor '" + ti.name + "'";
    if (tensor_index_.count(ti.name)) r.fail("duplicate tensor name '" + ti.name + "'");
    ti.n_dims = r.read<uint32_t>("n_dims of " + where);
    if (ti.n_dims < 1 || ti.n_dims > kMaxDims)
      r.fail(where + ": n_dims " + std::to_string(ti.n_dims) + " is outside 1.." + std::to_string(kMaxDims));
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < ti.n_dims; ++d) {
      uint64_t ne = r.read<uint64_t>("dimension " + std::to_string(d) + " of " + where);
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        r.fail(where + ": dimension " + std::to_string(d) + " is " + std::to_string(ne) +
               " (must be positive and fit int64)");
      ti.ne[d] = static_cast<int64_t>(ne);
      if (mul_overflow(n_el, ne, &n_el) ||
          n_el > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        r.fail(where + ": element count of the shape overflows int64");
    }
    uint32_t type_id = r.read<uint32_t>("type of " + where);
    BlockShape bs = block_shape(type_id);
    if (bs.block_size == 0)
      r.fail(where + " has unsupported type id " + std::to_string(type_id) + " (" +
             ggml_type_name(type_id) + ")");
    ti.type = static_cast<GgmlType>(type_id);
    if (ti.ne[0] % bs.block_size != 0)
      r.fail(where + ": row length " + std::to_string(ti.ne[0]) + " is not a multiple of the " +
             ggml_type_name(type_id) + " block size " + std::to_string(bs.block_size));
    // nbytes = ne0 / block * type_size * ne1 * ne2 * ne3, each step checked.
    bool nb_overflow = mul_overflow(static_cast<uint64_t>(ti.ne[0] / bs.block_size),
                                    static_cast<uint64_t>(bs.type_size), &ti.nbytes);
    for (int d = 1; d < 4; ++d)
      nb_overflow |= mul_overflow(ti.nbytes, static_cast<uint64_t>(ti.ne[d]), &ti.nbytes);
    if (nb_overflow) r.fail(where + ": byte size of the shape overflows 64 bits");
    ti.offset = r.read<uint64_t>("offset of " + where);
    if (ti.offset % alignment_ != 0)
      r.fail(where + ": data offset " + std::to_string(ti.offset) + " is not a multiple of the alignment " +
             std::to_string(alignment_));
    tensor_index_.emplace(ti.name, tensors_.size());
    tensors_.push_back(std::move(ti));
  }

  // Data section: starts at the header's end rounded up to the alignment.
  uint64_t header_end = r.pos();
  data_offset_ = checked_add(header_end, alignment_ - 1, "data section offset") / alignment_ * alignment_;
  const uint64_t fsize = file_->size();
  for (GgufTensorInfo& ti : tensors_) {
    uint64_t begin, end;
    if (add_overflow(data_offset_, ti.offset, &begin) || add_overflow(begin, ti.nbytes, &end))
      r.fail("tensor '" + ti.name + "': data offset " + std::to_string(ti.offset) + " + size " +
             std::to_string(ti.nbytes) + " overflows 64 bits");
    if (end > fsize)
      r.fail("tensor '" + ti.name + "' " + shape_string(ti) + ": data [" + std::to_string(begin) + ", " +
             std::to_string(end) + ") extends past the end of the file (" + std::to_string(fsize) + " bytes)");
    ti.data = file_->data() + begin;
  }
  // No two tensors may share bytes: sort by offset and compare neighbours.
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const auto& ti : tensors_) by_offset.push_back(&ti);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const GgufTensorInfo* a = by_offset[k - 1];
    const GgufTensorInfo* b = by_offset[k];
    if (b->offset < a->offset + a->nbytes)  // a->offset + a->nbytes <= file size: no overflow
      r.fail("tensors '" + a->name + "' and '" + b->name + "' overlap in the data section");
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  if (it == kv_index_.end()) return nullptr;
  const size_t i = it->second;
  if (i >= kv_released_.size() || !kv_released_[i]) return &kv_[i].second;
  std::lock_guard<std::mutex> lock(reload_mu_);
  std::unique_ptr<GgufValue>& v = reloaded_[i];
  if (!v) {  // parsed once already, so it parses again
    Reader r(file_->data(), file_->size(), file_->path());
    r.seek(kv_value_offset_[i]);
    Parser p(r);
    v = std::make_unique<GgufValue>();
    p.read_value(kv_[i].second.type, *v, "key '" + key + "'", 0);
  }
  return v.get();
}

void GgufFile::release_arrays(uint64_t min_elems) {
  kv_released_.resize(kv_.size(), false);
  for (size_t i = 0; i < kv_.size(); ++i) {
    GgufValue& v = kv_[i].second;
    if (v.type != GgufValueType::ARRAY || v.arr.size() < min_elems || i >= kv_value_offset_.size()) continue;
    std::vector<GgufValue>().swap(v.arr);
    kv_released_[i] = true;
  }
}

const GgufTensorInfo* GgufFile::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const char* expected,
                             const GgufValue& v) {
  std::string actual = gguf_value_type_name(v.type);
  if (v.type == GgufValueType::ARRAY) actual += std::string(" of ") + gguf_value_type_name(v.elem_type);
  throw ModelFormatError("GGUF file '" + path + "': key '" + key + "' should be " + expected +
                         " but is " + actual);
}
[[noreturn]] void missing(const std::string& path, const std::string& key) {
  throw ModelFormatError("GGUF file '" + path + "': required key '" + key + "' is missing");
}
}  // namespace

std::string GgufFile::get_string(const std::string& key, const std::string& def) const {
  const GgufValue* v = find(key);
  if (!v) return def;
  if (v->type != GgufValueType::STRING) wrong_type(path(), key, "STRING", *v);
  return v->str;
}

std::string GgufFile::require_string(const std::string& key) const {
  if (!find(key)) missing(path(), key);
  return get_string(key, "");
}

int64_t GgufFile::get_int(const std::string& key, int64_t def) const {
  const GgufValue* v = find(key);
  if (!v) return def;
  if (!v->is_integer()) wrong_type(path(), key, "an integer", *v);
  switch (v->type) {
    case GgufValueType::INT8: case GgufValueType::INT16:
    case GgufValueType::INT32: case GgufValueType::INT64: return v->i;
    default:
      if (v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw ModelFormatError("GGUF file '" + path() + "': key '" + key + "' value " +
                               std::to_string(v->u) + " does not fit int64");
      return static_cast<int64_t>(v->u);
  }
}

int64_t GgufFile::require_int(const std::string& key) const {
  if (!find(key)) missing(path(), key);
  return get_int(key, 0);
}

double GgufFile::get_float(const std::string& key, double def) const {
  const GgufValue* v = find(key);
  if (!v) return def;
  if (v->is_float()) return v->f;
  if (v->is_integer()) return static_cast<double>(get_int(key, 0));
  wrong_type(path(), key, "a number", *v);
}

bool GgufFile::get_bool(const std::string& key, bool def) const {
  const GgufValue* v = find(key);
  if (!v) return def;
  if (v->type != GgufValueType::BOOL) wrong_type(path(), key, "BOOL", *v);
  return v->b;
}

const std::vector<GgufValue>* GgufFile::get_array(const std::string& key, GgufValueType elem) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufValueType::ARRAY || v->elem_type != elem)
    wrong_type(path(), key, (std::string("ARRAY of ") + gguf_value_type_name(elem)).c_str(), *v);
  return &v->arr;
}

}  // namespace llmasos
