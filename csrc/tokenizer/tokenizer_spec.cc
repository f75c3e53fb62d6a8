// TokenizerSpec::from_gguf: reads tokenizer.ggml.* metadata with its types and lengths checked;
// the Tokenizer constructor then checks consistency (ids in range, known model name).
#include <string>

#include "io/gguf.h"
#include "llmasos/errors.hpp"
#include "tokenizer/tokenizer.h"

namespace llmasos {
namespace {

const char* type_name(GgufValueType t) { return gguf_value_type_name(t); }

// The array under `key` (nullptr if absent); throws unless it is an array whose elements pass
// `elem_ok` (described by `want` in the message).
template <typename Pred>
const std::vector<GgufValue>* array_of(const GgufFile& f, const std::string& key, const char* want, Pred elem_ok) {
  const GgufValue* v = f.find(key);
  if (!v) return nullptr;
  if (v->type != GgufValueType::ARRAY)
    throw ModelFormatError(key + ": expected an array of " + want + ", got " + type_name(v->type));
  if (!v->arr.empty() && !elem_ok(v->elem_type))
    throw ModelFormatError(key + ": expected an array of " + want + ", got an array of " + type_name(v->elem_type));
  return &v->arr;
}

bool is_int_type(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::UINT16:
    case GgufValueType::INT16: case GgufValueType::UINT32: case GgufValueType::INT32:
    case GgufValueType::UINT64: case GgufValueType::INT64:
      return true;
    default:
      return false;
  }
}

int32_t token_id(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) return -1;
  if (!is_int_type(v->type)) throw ModelFormatError(key + ": expected an integer, got " + type_name(v->type));
  const bool is_signed = v->type == GgufValueType::INT8 || v->type == GgufValueType::INT16 ||
                         v->type == GgufValueType::INT32 || v->type == GgufValueType::INT64;
  const int64_t id = is_signed ? v->i : (v->u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v->u));
  if (id == -1) return -1;  // some converters write -1 for "none"
  if (id < 0 || id > INT32_MAX) throw ModelFormatError(key + " = " + std::to_string(id) + " is not a token id");
  return static_cast<int32_t>(id);
}

}  // namespace

TokenizerSpec TokenizerSpec::from_gguf(const GgufFile& f) {
  TokenizerSpec s;
  const GgufValue* model = f.find("tokenizer.ggml.model");
  if (!model) throw ModelFormatError("tokenizer.ggml.model: missing (the file has no tokenizer)");
  if (model->type != GgufValueType::STRING)
    throw ModelFormatError(std::string("tokenizer.ggml.model: expected a string, got ") + type_name(model->type));
  s.model = model->str;
  if (s.model != "gpt2" && s.model != "llama")
    throw ModelFormatError("tokenizer.ggml.model: unsupported tokenizer model '" + s.model +
                           "' (supported: gpt2, llama)");
  const GgufValue* pre = f.find("tokenizer.ggml.pre");
  if (pre && pre->type != GgufValueType::STRING)
    throw ModelFormatError(std::string("tokenizer.ggml.pre: expected a string, got ") + type_name(pre->type));
  s.pre = pre ? pre->str : "default";

  auto is_string = [](GgufValueType t) { return t == GgufValueType::STRING; };
  const auto* tokens = array_of(f, "tokenizer.ggml.tokens", "strings", is_string);
  if (!tokens) throw ModelFormatError("tokenizer.ggml.tokens: missing");
  if (tokens->empty()) throw ModelFormatError("tokenizer.ggml.tokens: the vocabulary is empty");
  s.tokens.reserve(tokens->size());
  for (const GgufValue& v : *tokens) s.tokens.push_back(v.str);
  const size_t n = s.tokens.size();

  if (const auto* scores = array_of(f, "tokenizer.ggml.scores", "floats",
                                    [](GgufValueType t) { return t == GgufValueType::FLOAT32 || t == GgufValueType::FLOAT64; })) {
    if (scores->size() != n)
      throw ModelFormatError("tokenizer.ggml.scores: " + std::to_string(scores->size()) + " scores for " +
                             std::to_string(n) + " tokens");
    s.scores.reserve(n);
    for (const GgufValue& v : *scores) s.scores.push_back(static_cast<float>(v.f));
  }
  if (const auto* types = array_of(f, "tokenizer.ggml.token_type", "integers", is_int_type)) {
    if (types->size() != n)
      throw ModelFormatError("tokenizer.ggml.token_type: " + std::to_string(types->size()) + " types for " +
                             std::to_string(n) + " tokens");
    s.token_types.reserve(n);
    for (const GgufValue& v : *types) {
      const int64_t t = v.type == GgufValueType::UINT8 || v.type == GgufValueType::UINT16 ||
                        v.type == GgufValueType::UINT32 || v.type == GgufValueType::UINT64 ? static_cast<int64_t>(v.u) : v.i;
      if (t < 0 || t > 6)
        throw ModelFormatError("tokenizer.ggml.token_type: unknown token type " + std::to_string(t));
      s.token_types.push_back(static_cast<int32_t>(t));
    }
  }
  if (const auto* merges = array_of(f, "tokenizer.ggml.merges", "strings", is_string)) {
    s.merges.reserve(merges->size());
    for (const GgufValue& v : *merges) s.merges.push_back(v.str);
  }
  if (s.model == "gpt2" && s.merges.empty())
    throw ModelFormatError("tokenizer.ggml.merges: missing or empty for a gpt2 (BPE) tokenizer");

  s.bos_id = token_id(f, "tokenizer.ggml.bos_token_id");
  s.eos_id = token_id(f, "tokenizer.ggml.eos_token_id");
  s.unk_id = token_id(f, "tokenizer.ggml.unknown_token_id");
  s.pad_id = token_id(f, "tokenizer.ggml.padding_token_id");
  s.eot_id = token_id(f, "tokenizer.ggml.eot_token_id");
  for (const auto& [key, id] : {std::make_pair("bos_token_id", s.bos_id), std::make_pair("eos_token_id", s.eos_id),
                                std::make_pair("unknown_token_id", s.unk_id), std::make_pair("padding_token_id", s.pad_id),
                                std::make_pair("eot_token_id", s.eot_id)})
    if (id >= static_cast<int64_t>(n))
      throw ModelFormatError(std::string("tokenizer.ggml.") + key + " = " + std::to_string(id) +
                             " is outside the vocabulary of " + std::to_string(n));
  const bool spm = s.model == "llama";
  s.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", spm);
  s.add_eos = f.get_bool("tokenizer.ggml.add_eos_token", false);
  s.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix", spm);
  return s;
}

}  // namespace llmasos
