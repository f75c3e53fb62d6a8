/* llmasos C API: load a GGUF model, tokenize, and stream a completion from C or any FFI.
 * Opaque handles; every call returns an llmasos_status (except the three text queries at the end)
 * and never lets a C++ exception cross the boundary. On failure llmasos_last_error() holds a
 * message for the calling thread. */
#ifndef LLMASOS_H
#define LLMASOS_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(LLMASOS_BUILDING_LIBRARY)
#    define LLMASOS_API __declspec(dllexport)
#  else
#    define LLMASOS_API __declspec(dllimport)
#  endif
#else
#  define LLMASOS_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum llmasos_status {
  LLMASOS_OK = 0,
  LLMASOS_ERROR_INVALID_ARGUMENT = 1, /* null handle or pointer, bad option, bad token id, ... */
  LLMASOS_ERROR_MODEL_FORMAT = 2,     /* malformed, truncated or unsupported model file */
  LLMASOS_ERROR_IO = 3,               /* a file cannot be opened, read or mapped */
  LLMASOS_ERROR_BUFFER_TOO_SMALL = 4, /* the output buffer is short; *n_out says what is needed */
  LLMASOS_ERROR_OUT_OF_MEMORY = 5,
  LLMASOS_ERROR_INTERNAL = 6          /* anything else (a bug: please report it) */
} llmasos_status;

typedef enum llmasos_finish_reason {
  LLMASOS_FINISH_LENGTH = 0, /* max_tokens reached or the context is full */
  LLMASOS_FINISH_STOP = 1    /* end-of-generation token, a stop token, the callback said stop, or
                                (JSON mode) the object closed */
} llmasos_finish_reason;

typedef struct llmasos_model llmasos_model;     /* weights + tokenizer, shared by sessions */
typedef struct llmasos_session llmasos_session; /* one sequence: its KV cache and decode loop */
typedef struct llmasos_grammar llmasos_grammar; /* a parsed GBNF grammar, usable by any session */

typedef struct llmasos_model_options {
  int64_t n_ctx;   /* 0: the model's context length, capped at 4096 */
  int32_t threads; /* 0: LLMASOS_THREADS or the number of physical cores */
} llmasos_model_options;

typedef struct llmasos_sampling_options {
  float temperature;        /* 0: greedy */
  int32_t top_k;            /* 0: off */
  float top_p;              /* 1: off */
  float min_p;              /* 0: off */
  float repetition_penalty; /* 1: off */
  float presence_penalty;   /* 0: off */
  float frequency_penalty;  /* 0: off */
  int32_t has_seed;         /* nonzero: use `seed` (same seed, same tokens) */
  uint64_t seed;
} llmasos_sampling_options;

typedef struct llmasos_generate_options {
  int64_t max_tokens; /* > 0 */
  llmasos_sampling_options sampling;
  int32_t ignore_eos;            /* nonzero: do not stop at end-of-generation tokens */
  const int32_t* stop_token_ids; /* may be NULL when n_stop_token_ids is 0 */
  size_t n_stop_token_ids;
  int32_t json_object; /* nonzero: JSON mode, the output is one JSON object (ends when it closes) */
  /* Stop strings (n_stop NUL-terminated UTF-8 strings; may be NULL when n_stop is 0): generation
   * ends (STOP) where the text first contains one, found across token boundaries; the callback
   * never receives it or anything after it (a tail that may begin one is held back until it
   * cannot). */
  const char* const* stop;
  size_t n_stop;
  /* End-of-generation tokens, stop_token_ids and stop strings cannot end the text before this
   * many tokens (vLLM's min_tokens); in [0, max_tokens]. */
  int64_t min_tokens;
} llmasos_generate_options;

typedef struct llmasos_generate_result {
  size_t n_tokens; /* tokens generated (the prompt excluded) */
  llmasos_finish_reason finish_reason;
} llmasos_generate_result;

/* Called once per generated token with the UTF-8 text it completes (`piece`, `piece_len` bytes,
 * NUL-terminated; may be empty while a multi-byte character is still incomplete), and once more at
 * the end with token_id = LLMASOS_NO_TOKEN if undecoded bytes remain. Return nonzero to go on,
 * 0 to stop (finish reason STOP). The pieces concatenated are the generated text. The callback
 * must not call llmasos_generate on a session of the same model. */
#define LLMASOS_NO_TOKEN (-1)
typedef int (*llmasos_token_callback)(void* user_data, int32_t token_id, const char* piece,
                                      size_t piece_len);

/* Defaults: n_ctx 0, threads 0 / greedy, no penalties / max_tokens 128. */
LLMASOS_API llmasos_status llmasos_model_options_init(llmasos_model_options* opts);
LLMASOS_API llmasos_status llmasos_sampling_options_init(llmasos_sampling_options* opts);
LLMASOS_API llmasos_status llmasos_generate_options_init(llmasos_generate_options* opts);

/* Loads a GGUF file (memory-mapped). opts may be NULL (defaults). *out is NULL on failure. */
LLMASOS_API llmasos_status llmasos_model_load(const char* path, const llmasos_model_options* opts,
                                              llmasos_model** out);
/* Releases the caller's reference; sessions made from the model keep it alive. NULL is a no-op. */
LLMASOS_API llmasos_status llmasos_model_free(llmasos_model* model);

/* Model facts. */
LLMASOS_API llmasos_status llmasos_model_n_vocab(const llmasos_model* model, int32_t* out);
LLMASOS_API llmasos_status llmasos_model_n_ctx(const llmasos_model* model, int64_t* out);
LLMASOS_API llmasos_status llmasos_model_bos_id(const llmasos_model* model, int32_t* out);
LLMASOS_API llmasos_status llmasos_model_eos_id(const llmasos_model* model, int32_t* out);
LLMASOS_API llmasos_status llmasos_model_n_embd(const llmasos_model* model, int32_t* out);

/* Text (text_len bytes of UTF-8) -> token ids. add_bos: -1 the model's default, 0 no, 1 yes.
 * special nonzero: text spelling a control token (e.g. "<|im_start|>") becomes that token.
 * *n_out receives the number of ids; if it exceeds `capacity` nothing is written and the status is
 * LLMASOS_ERROR_BUFFER_TOO_SMALL (ids = NULL with capacity = 0 is a size query and returns OK). */
LLMASOS_API llmasos_status llmasos_tokenize(const llmasos_model* model, const char* text,
                                            size_t text_len, int32_t add_bos, int32_t special,
                                            int32_t* ids, size_t capacity, size_t* n_out);
/* Token ids -> UTF-8 text, NUL-terminated. *n_out receives the text length without the NUL; the
 * buffer needs n_out + 1 bytes (same BUFFER_TOO_SMALL / size-query rules as llmasos_tokenize). */
LLMASOS_API llmasos_status llmasos_detokenize(const llmasos_model* model, const int32_t* ids,
                                              size_t n_ids, int32_t special, char* text,
                                              size_t capacity, size_t* n_out);

/* A session evaluates one sequence at a time; a new prompt reuses the KV entries of the longest
 * prefix it shares with the previous one. A session must not be used by two threads at once.
 * Sessions of one model may live on different threads, but their llmasos_generate calls take
 * turns (the model computes one batch at a time); load the model twice to run in parallel. */
LLMASOS_API llmasos_status llmasos_session_new(llmasos_model* model, llmasos_session** out);
LLMASOS_API llmasos_status llmasos_session_free(llmasos_session* session); /* NULL: no-op */
LLMASOS_API llmasos_status llmasos_session_reset(llmasos_session* session);

/* Generates after the prompt ids, calling `callback` (may be NULL) per token. opts may be NULL
 * (defaults); result may be NULL. */
LLMASOS_API llmasos_status llmasos_generate(llmasos_session* session, const int32_t* prompt,
                                            size_t n_prompt, const llmasos_generate_options* opts,
                                            llmasos_token_callback callback, void* user_data,
                                            llmasos_generate_result* result);

/* Parses a GBNF grammar (text_len bytes of UTF-8; llama.cpp's grammar format: `root ::= ...`
 * rules, literals, classes, `.`, groups, `|`, `* + ? {m,n}`, comments). *out is NULL on failure;
 * LLMASOS_ERROR_INVALID_ARGUMENT with llmasos_last_error() saying where (line, column) and why. */
LLMASOS_API llmasos_status llmasos_grammar_parse(const char* text, size_t text_len, llmasos_grammar** out);
LLMASOS_API llmasos_status llmasos_grammar_free(llmasos_grammar* grammar); /* NULL: no-op */
/* llmasos_generate with the output held to text the grammar's root derives (NULL: none):
 * generation ends (STOP) where nothing more can follow, or at an end-of-generation token where
 * the text is complete. A grammar is read-only here: one may serve many sessions and threads at
 * once. Not together with json_object (INVALID_ARGUMENT). */
LLMASOS_API llmasos_status llmasos_generate_with_grammar(llmasos_session* session, const int32_t* prompt,
                                                         size_t n_prompt, const llmasos_generate_options* opts,
                                                         const llmasos_grammar* grammar,
                                                         llmasos_token_callback callback, void* user_data,
                                                         llmasos_generate_result* result);

/* How llmasos_embed pools a sequence's hidden states. */
typedef enum llmasos_pooling {
  LLMASOS_POOLING_MODEL = 0, /* the model file's pooling_type, else mean */
  LLMASOS_POOLING_MEAN = 1,
  LLMASOS_POOLING_FIRST = 2, /* the first token's ("cls") */
  LLMASOS_POOLING_LAST = 3
} llmasos_pooling;

/* The embedding of the prompt ids: the final-normed hidden states of one pass over them (no output
 * head), pooled, then divided by their L2 norm when normalize is nonzero; the same floats as
 * Python's LLM.embed. *n_out receives n_embd; out needs that many floats (same BUFFER_TOO_SMALL /
 * size-query rules as llmasos_tokenize). Runs on the session's KV cache, which then holds these
 * ids (a following llmasos_generate may reuse them as its prompt's prefix). */
LLMASOS_API llmasos_status llmasos_embed(llmasos_session* session, const int32_t* ids, size_t n_ids,
                                         llmasos_pooling pooling, int32_t normalize, float* out,
                                         size_t capacity, size_t* n_out);

/* Text queries that cannot fail. */
LLMASOS_API const char* llmasos_version(void);                  /* e.g. "0.3.0" */
LLMASOS_API const char* llmasos_status_name(llmasos_status s);  /* e.g. "LLMASOS_ERROR_IO" */
/* The message of the last failed call on this thread ("" if none); valid until the next call. */
LLMASOS_API const char* llmasos_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* LLMASOS_H */
