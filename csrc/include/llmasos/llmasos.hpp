// llmasos C++ API: RAII and std::string_view over the C API (llmasos.h), header-only, so the
// shared library exports only C symbols and an application may use any C++17 compiler. Failures
// throw the exception types of errors.hpp. Mirrors the Python API (LLM, SamplingParams).
//
//   llmasos::LLM llm("model.gguf");
//   llm.generate("The world is", {/*max_tokens=*/32}, [](std::string_view piece) {
//     std::cout << piece << std::flush; });
#pragma once
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmasos/errors.hpp"
#include "llmasos/llmasos.h"

namespace llmasos {

// A read-only view of contiguous elements (std::span<const T> for C++17).
template <class T>
class Span {
 public:
  constexpr Span() = default;
  constexpr Span(const T* data, size_t size) : data_(data), size_(size) {}
  Span(const std::vector<T>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT: implicit
  template <size_t N>
  constexpr Span(const T (&a)[N]) : data_(a), size_(N) {}  // NOLINT: implicit
  constexpr const T* data() const { return data_; }
  constexpr size_t size() const { return size_; }
  constexpr bool empty() const { return size_ == 0; }
  constexpr const T* begin() const { return data_; }
  constexpr const T* end() const { return data_ + size_; }

 private:
  const T* data_ = nullptr;
  size_t size_ = 0;
};

struct LoadOptions {
  int64_t n_ctx = 0;  // 0: the model's context length, capped at 4096
  int threads = 0;    // 0: LLMASOS_THREADS or the number of physical cores
};

struct SamplingParams {
  int64_t max_tokens = 128;
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;  // stop strings: the text ends before the first one ("stop")
  int64_t min_tokens = 0;         // nothing ends the text before this many tokens
  bool ignore_eos = false;
  bool json_object = false;  // JSON mode: the output is one JSON object (ends when it closes)
  std::string grammar;       // GBNF text (llama.cpp's format): the output is text its root derives
};

struct GenerationOutput {
  std::string text;                // the generated text (the prompt excluded)
  std::vector<int32_t> token_ids;  // the generated tokens
  std::string finish_reason;       // "stop" or "length"
};

// Receives the text of each token as it is generated (never a split UTF-8 character); returning
// false stops the generation.
using OnPiece = std::function<bool(std::string_view piece)>;

namespace detail {
// Throws the errors.hpp exception matching a failed status, with the library's message.
inline void check(llmasos_status s) {
  if (s == LLMASOS_OK) return;
  std::string msg = llmasos_last_error();
  if (msg.empty()) msg = llmasos_status_name(s);
  switch (s) {
    case LLMASOS_ERROR_MODEL_FORMAT: throw ModelFormatError(msg);
    case LLMASOS_ERROR_INVALID_ARGUMENT:
    case LLMASOS_ERROR_BUFFER_TOO_SMALL: throw InvalidArgumentError(msg);
    case LLMASOS_ERROR_OUT_OF_MEMORY: throw std::bad_alloc();
    default: throw Error(msg);
  }
}

}  // namespace detail

inline std::string version() { return llmasos_version(); }

// A loaded model with one session (its KV cache): successive prompts sharing a prefix reuse it.
// Move-only; not thread-safe (use one LLM per thread, or guard it).
class LLM {
 public:
  explicit LLM(const std::string& path, const LoadOptions& opts = {}) {
    llmasos_model_options o;
    detail::check(llmasos_model_options_init(&o));
    o.n_ctx = opts.n_ctx;
    o.threads = opts.threads;
    detail::check(llmasos_model_load(path.c_str(), &o, &model_));
    llmasos_status s = llmasos_session_new(model_, &session_);
    if (s != LLMASOS_OK) {
      llmasos_model_free(model_);
      model_ = nullptr;
      detail::check(s);
    }
  }
  LLM(LLM&& o) noexcept
      : model_(std::exchange(o.model_, nullptr)), session_(std::exchange(o.session_, nullptr)),
        grammar_(std::exchange(o.grammar_, nullptr)), grammar_text_(std::move(o.grammar_text_)) {}
  LLM& operator=(LLM&& o) noexcept {
    if (this != &o) {
      close();
      model_ = std::exchange(o.model_, nullptr);
      session_ = std::exchange(o.session_, nullptr);
      grammar_ = std::exchange(o.grammar_, nullptr);
      grammar_text_ = std::move(o.grammar_text_);
    }
    return *this;
  }
  LLM(const LLM&) = delete;
  LLM& operator=(const LLM&) = delete;
  ~LLM() { close(); }

  int32_t n_vocab() const { int32_t v = 0; detail::check(llmasos_model_n_vocab(model_, &v)); return v; }
  int64_t n_ctx() const { int64_t v = 0; detail::check(llmasos_model_n_ctx(model_, &v)); return v; }
  int32_t n_embd() const { int32_t v = 0; detail::check(llmasos_model_n_embd(model_, &v)); return v; }

  // add_bos: nullopt = the model's default. special: text spelling a control token becomes it.
  std::vector<int32_t> tokenize(std::string_view text, std::optional<bool> add_bos = std::nullopt,
                                bool special = false) const {
    const int32_t bos = add_bos ? (*add_bos ? 1 : 0) : -1;
    size_t n = 0;
    detail::check(llmasos_tokenize(model_, text.data(), text.size(), bos, special, nullptr, 0, &n));
    std::vector<int32_t> ids(n);
    detail::check(llmasos_tokenize(model_, text.data(), text.size(), bos, special, ids.data(), ids.size(), &n));
    return ids;
  }

  std::string detokenize(Span<int32_t> ids, bool special = false) const {
    size_t n = 0;
    detail::check(llmasos_detokenize(model_, ids.data(), ids.size(), special, nullptr, 0, &n));
    std::string text(n + 1, '\0');
    detail::check(llmasos_detokenize(model_, ids.data(), ids.size(), special, text.data(), text.size(), &n));
    text.resize(n);
    return text;
  }

  // Generates after the prompt ids; on_piece (optional) streams the text.
  GenerationOutput generate(Span<int32_t> prompt, const SamplingParams& p = {},
                            const OnPiece& on_piece = {}) {
    llmasos_generate_options o;
    detail::check(llmasos_generate_options_init(&o));
    o.max_tokens = p.max_tokens;
    o.sampling.temperature = p.temperature;
    o.sampling.top_k = p.top_k;
    o.sampling.top_p = p.top_p;
    o.sampling.min_p = p.min_p;
    o.sampling.repetition_penalty = p.repetition_penalty;
    o.sampling.presence_penalty = p.presence_penalty;
    o.sampling.frequency_penalty = p.frequency_penalty;
    o.sampling.has_seed = p.seed.has_value();
    o.sampling.seed = p.seed.value_or(0);
    o.ignore_eos = p.ignore_eos;
    o.stop_token_ids = p.stop_token_ids.data();
    o.n_stop_token_ids = p.stop_token_ids.size();
    o.json_object = p.json_object ? 1 : 0;
    std::vector<const char*> stops;
    for (const auto& x : p.stop) stops.push_back(x.c_str());
    o.stop = stops.data();
    o.n_stop = stops.size();
    o.min_tokens = p.min_tokens;
    Stream st{on_piece, {}, {}};
    llmasos_generate_result r{};
    llmasos_status s = llmasos_generate_with_grammar(session_, prompt.data(), prompt.size(), &o, grammar(p.grammar),
                                                     &Stream::trampoline, &st, &r);
    if (st.error) std::rethrow_exception(st.error);  // thrown by on_piece
    detail::check(s);
    return GenerationOutput{std::move(st.out.text), std::move(st.out.token_ids),
                            r.finish_reason == LLMASOS_FINISH_STOP ? "stop" : "length"};
  }

  // Tokenizes the prompt as the Python API does (the model's add_bos, no special tokens).
  GenerationOutput generate(std::string_view prompt, const SamplingParams& p = {},
                            const OnPiece& on_piece = {}) {
    return generate(tokenize(prompt), p, on_piece);
  }

  std::string generate_text(std::string_view prompt, int64_t max_tokens = 128) {
    SamplingParams p;
    p.max_tokens = max_tokens;
    return generate(prompt, p).text;
  }

  // The embedding of the ids (llmasos_embed: pooled final-normed hidden states, L2-normalized
  // unless normalize is false); the text overload tokenizes as generate does.
  std::vector<float> embed(Span<int32_t> ids, llmasos_pooling pooling = LLMASOS_POOLING_MODEL,
                           bool normalize = true) {
    std::vector<float> v(static_cast<size_t>(n_embd()));
    size_t n = 0;
    detail::check(llmasos_embed(session_, ids.data(), ids.size(), pooling, normalize, v.data(), v.size(), &n));
    return v;
  }
  std::vector<float> embed(std::string_view text, llmasos_pooling pooling = LLMASOS_POOLING_MODEL,
                           bool normalize = true) {
    return embed(tokenize(text), pooling, normalize);
  }

  // Forget the cached prompt (the next generate recomputes it from scratch).
  void reset() { detail::check(llmasos_session_reset(session_)); }

  // The C handles, for mixing with the C API (owned by this object).
  llmasos_model* c_model() const { return model_; }
  llmasos_session* c_session() const { return session_; }

 private:
  struct Stream {
    const OnPiece& on_piece;
    GenerationOutput out;
    std::exception_ptr error;
    // No exception may cross the C boundary: keep it and stop.
    static int trampoline(void* ud, int32_t id, const char* piece, size_t len) {
      auto* st = static_cast<Stream*>(ud);
      try {
        if (id != LLMASOS_NO_TOKEN) st->out.token_ids.push_back(id);
        st->out.text.append(piece, len);
        if (st->on_piece && len > 0) return st->on_piece(std::string_view(piece, len)) ? 1 : 0;
        return 1;
      } catch (...) {
        st->error = std::current_exception();
        return 0;
      }
    }
  };

  // The parsed grammar for GBNF text (null for none), the last one kept for the next call.
  const llmasos_grammar* grammar(const std::string& text) {
    if (text.empty()) return nullptr;
    if (grammar_ && text == grammar_text_) return grammar_;
    llmasos_grammar* g = nullptr;
    detail::check(llmasos_grammar_parse(text.data(), text.size(), &g));
    llmasos_grammar_free(grammar_);
    grammar_ = g;
    grammar_text_ = text;
    return grammar_;
  }

  void close() noexcept {
    llmasos_grammar_free(grammar_);
    llmasos_session_free(session_);
    llmasos_model_free(model_);
    grammar_ = nullptr;
    session_ = nullptr;
    model_ = nullptr;
  }

  llmasos_model* model_ = nullptr;
  llmasos_session* session_ = nullptr;
  llmasos_grammar* grammar_ = nullptr;
  std::string grammar_text_;
};

}  // namespace llmasos
