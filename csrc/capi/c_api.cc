// The C API (llmasos.h) over the core classes: Model::load, Tokenizer, and the same
// Session::generate decode loop the Python binding runs. Every entry point catches everything and
// turns it into a status code plus a thread-local message.
#include "llmasos/llmasos.h"

#include <algorithm>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "engine/gbnf_parse.h"
#include "engine/session.h"
#include "engine/stop_strings.h"
#include "llmasos/errors.hpp"
#include "model/llama.h"

// Model::forward is one call at a time (its scratch buffers are shared), so sessions of one model
// serialize their generate calls on the model's mutex.
struct llmasos_model {
  std::shared_ptr<llmasos::Model> model;
  std::shared_ptr<std::mutex> forward_mu = std::make_shared<std::mutex>();
};
struct llmasos_session {
  llmasos::Session session;
  std::shared_ptr<std::mutex> forward_mu;
};
struct llmasos_grammar {
  std::shared_ptr<const llmasos::Grammar> grammar;
};

namespace {

thread_local std::string g_last_error;

llmasos_status fail(llmasos_status s, std::string msg) {
  try {
    g_last_error = std::move(msg);
  } catch (...) {
    // Out of memory for the message itself: keep the status.
  }
  return s;
}

// Runs `f` (which returns a status), mapping every exception to a status (the message goes to llmasos_last_error()).
template <class F>
llmasos_status guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const llmasos::ModelFormatError& e) {
    return fail(LLMASOS_ERROR_MODEL_FORMAT, e.what());
  } catch (const llmasos::InvalidArgumentError& e) {
    return fail(LLMASOS_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const llmasos::Error& e) {
    return fail(LLMASOS_ERROR_IO, e.what());
  } catch (const std::bad_alloc&) {
    return fail(LLMASOS_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(LLMASOS_ERROR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(LLMASOS_ERROR_INTERNAL, "internal error: unknown exception");
  }
}

llmasos_status null_arg(const char* fn, const char* what) {
  return fail(LLMASOS_ERROR_INVALID_ARGUMENT, std::string(fn) + ": " + what + " is NULL");
}

#define LLMASOS_REQUIRE(p) \
  do {                     \
    if (!(p)) return null_arg(__func__, #p); \
  } while (0)

llmasos::SamplingOptions to_core(const llmasos_sampling_options& s) {
  llmasos::SamplingOptions o;
  o.temperature = s.temperature;
  o.top_k = s.top_k;
  o.top_p = s.top_p;
  o.min_p = s.min_p;
  o.repetition_penalty = s.repetition_penalty;
  o.presence_penalty = s.presence_penalty;
  o.frequency_penalty = s.frequency_penalty;
  o.has_seed = s.has_seed != 0;
  o.seed = s.seed;
  return o;
}

}  // namespace

extern "C" {

llmasos_status llmasos_model_options_init(llmasos_model_options* opts) {
  LLMASOS_REQUIRE(opts);
  const llmasos::ModelOptions d;
  opts->n_ctx = d.n_ctx;
  opts->threads = d.threads;
  return LLMASOS_OK;
}

llmasos_status llmasos_sampling_options_init(llmasos_sampling_options* opts) {
  LLMASOS_REQUIRE(opts);
  const llmasos::SamplingOptions d;
  opts->temperature = d.temperature;
  opts->top_k = d.top_k;
  opts->top_p = d.top_p;
  opts->min_p = d.min_p;
  opts->repetition_penalty = d.repetition_penalty;
  opts->presence_penalty = d.presence_penalty;
  opts->frequency_penalty = d.frequency_penalty;
  opts->has_seed = d.has_seed ? 1 : 0;
  opts->seed = d.seed;
  return LLMASOS_OK;
}

llmasos_status llmasos_generate_options_init(llmasos_generate_options* opts) {
  LLMASOS_REQUIRE(opts);
  const llmasos::GenerateOptions d;
  opts->max_tokens = d.max_tokens;
  llmasos_sampling_options_init(&opts->sampling);
  opts->ignore_eos = d.ignore_eos ? 1 : 0;
  opts->stop_token_ids = nullptr;
  opts->n_stop_token_ids = 0;
  opts->json_object = d.json_object ? 1 : 0;
  opts->stop = nullptr;
  opts->n_stop = 0;
  opts->min_tokens = d.min_tokens;
  return LLMASOS_OK;
}

llmasos_status llmasos_model_load(const char* path, const llmasos_model_options* opts,
                                  llmasos_model** out) {
  LLMASOS_REQUIRE(out);
  *out = nullptr;
  LLMASOS_REQUIRE(path);
  return guarded([&] {
    llmasos::ModelOptions o;
    if (opts) {
      o.n_ctx = opts->n_ctx;
      o.threads = opts->threads;
    }
    auto h = std::make_unique<llmasos_model>();
    h->model = std::shared_ptr<llmasos::Model>(llmasos::Model::load(path, o));
    *out = h.release();
    return LLMASOS_OK;
  });
}

llmasos_status llmasos_model_free(llmasos_model* model) {
  delete model;
  return LLMASOS_OK;
}

llmasos_status llmasos_model_n_vocab(const llmasos_model* model, int32_t* out) {
  LLMASOS_REQUIRE(model);
  LLMASOS_REQUIRE(out);
  *out = model->model->tokenizer().n_vocab();
  return LLMASOS_OK;
}

llmasos_status llmasos_model_n_ctx(const llmasos_model* model, int64_t* out) {
  LLMASOS_REQUIRE(model);
  LLMASOS_REQUIRE(out);
  *out = model->model->n_ctx();
  return LLMASOS_OK;
}

llmasos_status llmasos_model_bos_id(const llmasos_model* model, int32_t* out) {
  LLMASOS_REQUIRE(model);
  LLMASOS_REQUIRE(out);
  *out = model->model->tokenizer().bos_id();
  return LLMASOS_OK;
}

llmasos_status llmasos_model_eos_id(const llmasos_model* model, int32_t* out) {
  LLMASOS_REQUIRE(model);
  LLMASOS_REQUIRE(out);
  *out = model->model->tokenizer().eos_id();
  return LLMASOS_OK;
}

llmasos_status llmasos_model_n_embd(const llmasos_model* model, int32_t* out) {
  LLMASOS_REQUIRE(model);
  LLMASOS_REQUIRE(out);
  *out = static_cast<int32_t>(model->model->hparams().n_embd);
  return LLMASOS_OK;
}

llmasos_status llmasos_tokenize(const llmasos_model* model, const char* text, size_t text_len,
                                int32_t add_bos, int32_t special, int32_t* ids, size_t capacity,
                                size_t* n_out) {
  LLMASOS_REQUIRE(n_out);
  *n_out = 0;
  LLMASOS_REQUIRE(model);
  if (!text && text_len > 0) return null_arg(__func__, "text");
  if (!ids && capacity > 0) return null_arg(__func__, "ids");
  return guarded([&] {
    const llmasos::Tokenizer& tok = model->model->tokenizer();
    const bool bos = add_bos < 0 ? tok.add_bos_default() : add_bos != 0;
    std::vector<int32_t> v =
        tok.encode(std::string_view(text ? text : "", text_len), bos, special != 0);
    *n_out = v.size();
    if (!ids && capacity == 0) return LLMASOS_OK;  // size query
    if (v.size() > capacity)
      return fail(LLMASOS_ERROR_BUFFER_TOO_SMALL, "llmasos_tokenize: " + std::to_string(v.size()) +
                                                      " ids do not fit a buffer of " +
                                                      std::to_string(capacity));
    std::copy(v.begin(), v.end(), ids);
    return LLMASOS_OK;
  });
}

llmasos_status llmasos_detokenize(const llmasos_model* model, const int32_t* ids, size_t n_ids,
                                  int32_t special, char* text, size_t capacity, size_t* n_out) {
  LLMASOS_REQUIRE(n_out);
  *n_out = 0;
  LLMASOS_REQUIRE(model);
  if (!ids && n_ids > 0) return null_arg(__func__, "ids");
  if (!text && capacity > 0) return null_arg(__func__, "text");
  return guarded([&] {
    std::string s = model->model->tokenizer().decode(std::vector<int32_t>(ids, ids + n_ids), special != 0);
    *n_out = s.size();
    if (!text && capacity == 0) return LLMASOS_OK;  // size query
    if (s.size() + 1 > capacity)
      return fail(LLMASOS_ERROR_BUFFER_TOO_SMALL, "llmasos_detokenize: " +
                                                      std::to_string(s.size() + 1) +
                                                      " bytes do not fit a buffer of " +
                                                      std::to_string(capacity));
    std::copy(s.begin(), s.end(), text);
    text[s.size()] = '\0';
    return LLMASOS_OK;
  });
}

llmasos_status llmasos_session_new(llmasos_model* model, llmasos_session** out) {
  LLMASOS_REQUIRE(out);
  *out = nullptr;
  LLMASOS_REQUIRE(model);
  return guarded([&] {
    *out = new llmasos_session{llmasos::Session(model->model), model->forward_mu};
    return LLMASOS_OK;
  });
}

llmasos_status llmasos_session_free(llmasos_session* session) {
  delete session;
  return LLMASOS_OK;
}

llmasos_status llmasos_grammar_parse(const char* text, size_t text_len, llmasos_grammar** out) {
  LLMASOS_REQUIRE(out);
  *out = nullptr;
  LLMASOS_REQUIRE(text);
  return guarded([&] {
    auto h = std::make_unique<llmasos_grammar>();
    h->grammar = llmasos::parse_gbnf(std::string(text, text_len));
    *out = h.release();
    return LLMASOS_OK;
  });
}

llmasos_status llmasos_grammar_free(llmasos_grammar* grammar) {
  delete grammar;
  return LLMASOS_OK;
}

llmasos_status llmasos_session_reset(llmasos_session* session) {
  LLMASOS_REQUIRE(session);
  session->session.reset();
  return LLMASOS_OK;
}

llmasos_status llmasos_embed(llmasos_session* session, const int32_t* ids, size_t n_ids,
                             llmasos_pooling pooling, int32_t normalize, float* out, size_t capacity,
                             size_t* n_out) {
  LLMASOS_REQUIRE(n_out);
  *n_out = 0;
  LLMASOS_REQUIRE(session);
  LLMASOS_REQUIRE(ids);
  if (!out && capacity > 0) return null_arg(__func__, "out");
  return guarded([&] {
    const size_t E = static_cast<size_t>(session->session.model()->hparams().n_embd);
    *n_out = E;
    if (!out && capacity == 0) return LLMASOS_OK;  // size query
    if (capacity < E)
      return fail(LLMASOS_ERROR_BUFFER_TOO_SMALL, "llmasos_embed: " + std::to_string(E) +
                                                      " floats do not fit a buffer of " + std::to_string(capacity));
    const std::vector<float> v =
        session->session.embedding(std::vector<int32_t>(ids, ids + n_ids), static_cast<int>(pooling), normalize != 0);
    std::copy(v.begin(), v.end(), out);
    return LLMASOS_OK;
  });
}

llmasos_status llmasos_generate(llmasos_session* session, const int32_t* prompt, size_t n_prompt,
                                const llmasos_generate_options* opts,
                                llmasos_token_callback callback, void* user_data,
                                llmasos_generate_result* result) {
  return llmasos_generate_with_grammar(session, prompt, n_prompt, opts, nullptr, callback, user_data, result);
}

llmasos_status llmasos_generate_with_grammar(llmasos_session* session, const int32_t* prompt, size_t n_prompt,
                                             const llmasos_generate_options* opts, const llmasos_grammar* grammar,
                                             llmasos_token_callback callback, void* user_data,
                                             llmasos_generate_result* result) {
  if (result) *result = llmasos_generate_result{0, LLMASOS_FINISH_LENGTH};
  LLMASOS_REQUIRE(session);
  LLMASOS_REQUIRE(prompt);
  return guarded([&] {
    llmasos::GenerateOptions o;
    std::vector<std::string> stops;
    if (opts) {
      if (!opts->stop_token_ids && opts->n_stop_token_ids > 0)
        return null_arg("llmasos_generate", "opts->stop_token_ids");
      if (!opts->stop && opts->n_stop > 0) return null_arg("llmasos_generate", "opts->stop");
      for (size_t i = 0; i < opts->n_stop; ++i) {
        if (!opts->stop[i]) return null_arg("llmasos_generate", "opts->stop[i]");
        stops.emplace_back(opts->stop[i]);
      }
      o.max_tokens = opts->max_tokens;
      o.sampling = to_core(opts->sampling);
      o.ignore_eos = opts->ignore_eos != 0;
      o.stop_token_ids.assign(opts->stop_token_ids, opts->stop_token_ids + opts->n_stop_token_ids);
      o.json_object = opts->json_object != 0;
      o.min_tokens = opts->min_tokens;
    }
    if (grammar) o.grammar = grammar->grammar;
    o.sampling.validate();
    const llmasos::Tokenizer& tok = session->session.model()->tokenizer();
    llmasos::StreamDecoder dec(tok);
    llmasos::StopStrings matcher(std::move(stops));
    bool go_on = true;  // false once the callback asked to stop or a stop string came
    int64_t n_tokens = 0;
    std::function<bool(int32_t)> on_token = [&](int32_t id) {
      bool hit = false;
      const std::string piece = matcher.feed(dec.push(id), ++n_tokens >= o.min_tokens, &hit);
      if (callback) go_on = callback(user_data, id, piece.c_str(), piece.size()) != 0;
      go_on = go_on && !hit;
      return go_on;
    };
    std::lock_guard<std::mutex> lock(*session->forward_mu);
    llmasos::GenerateResult r =
        session->session.generate(std::vector<int32_t>(prompt, prompt + n_prompt), o, on_token);
    bool tail_hit = false;  // the undecoded bytes at the end completed a stop string
    if (go_on) {
      const std::string tail = matcher.feed(dec.flush(), n_tokens >= o.min_tokens, &tail_hit) + matcher.flush();
      if (callback && !tail.empty()) callback(user_data, LLMASOS_NO_TOKEN, tail.c_str(), tail.size());
    }
    if (result) {
      result->n_tokens = r.tokens.size();
      result->finish_reason = r.finish_reason == "stop" || tail_hit ? LLMASOS_FINISH_STOP : LLMASOS_FINISH_LENGTH;
    }
    return LLMASOS_OK;
  });
}

const char* llmasos_version(void) { return LLMASOS_VERSION_STRING; }

const char* llmasos_status_name(llmasos_status s) {
  switch (s) {
    case LLMASOS_OK: return "LLMASOS_OK";
    case LLMASOS_ERROR_INVALID_ARGUMENT: return "LLMASOS_ERROR_INVALID_ARGUMENT";
    case LLMASOS_ERROR_MODEL_FORMAT: return "LLMASOS_ERROR_MODEL_FORMAT";
    case LLMASOS_ERROR_IO: return "LLMASOS_ERROR_IO";
    case LLMASOS_ERROR_BUFFER_TOO_SMALL: return "LLMASOS_ERROR_BUFFER_TOO_SMALL";
    case LLMASOS_ERROR_OUT_OF_MEMORY: return "LLMASOS_ERROR_OUT_OF_MEMORY";
    case LLMASOS_ERROR_INTERNAL: return "LLMASOS_ERROR_INTERNAL";
  }
  return "LLMASOS_STATUS_UNKNOWN";
}

const char* llmasos_last_error(void) { return g_last_error.c_str(); }

}  // extern "C"
