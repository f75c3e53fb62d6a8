/* error_paths MODEL.gguf CORRUPT.gguf: drives the C API through bad paths, corrupt files, NULL
 * handles and pointers, bad options and short buffers. Each check prints
 * "ok|FAIL <name> <status> <message>"; the exit code is the number of failures. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <llmasos/llmasos.h>

static int failures = 0;

static void expect(const char* name, llmasos_status got, llmasos_status want) {
  const char* msg = got == LLMASOS_OK ? "" : llmasos_last_error();
  int ok = got == want && (got == LLMASOS_OK || msg[0] != '\0');
  if (!ok) ++failures;
  printf("%s %s %s %s\n", ok ? "ok" : "FAIL", name, llmasos_status_name(got), msg);
}

static int stop_after_two(void* ud, int32_t id, const char* piece, size_t len) {
  (void)id, (void)piece, (void)len;
  int* n = (int*)ud;
  return ++*n < 2;
}

/* Two sessions of one model generating on two threads at once get the single-thread tokens. */
typedef struct {
  llmasos_session* session;
  const int32_t* prompt;
  size_t n_prompt;
  int32_t out[8];
  int n_out;
  llmasos_status status;
} gen_job;

static int collect(void* ud, int32_t id, const char* piece, size_t len) {
  (void)piece, (void)len;
  gen_job* j = (gen_job*)ud;
  if (id != LLMASOS_NO_TOKEN && j->n_out < 8) j->out[j->n_out++] = id;
  return 1;
}

static void* run_job(void* arg) {
  gen_job* j = (gen_job*)arg;
  llmasos_generate_options o;
  llmasos_generate_options_init(&o);
  o.max_tokens = 8;
  o.ignore_eos = 1;
  j->status = llmasos_generate(j->session, j->prompt, j->n_prompt, &o, collect, j, NULL);
  return NULL;
}

static void* other_thread(void* arg) {
  (void)arg;
  /* The last error is per thread: this thread has not failed yet. */
  return (void*)(strcmp(llmasos_last_error(), "") == 0 ? (void*)1 : (void*)0);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL.gguf CORRUPT.gguf\n", argv[0]);
    return 100;
  }
  llmasos_model* m = (llmasos_model*)1;
  expect("load_missing_file", llmasos_model_load("/nonexistent/model.gguf", NULL, &m), LLMASOS_ERROR_IO);
  if (m != NULL) { ++failures; puts("FAIL load_missing_file_sets_null"); }
  expect("load_corrupt_file", llmasos_model_load(argv[2], NULL, &m), LLMASOS_ERROR_MODEL_FORMAT);
  expect("load_directory", llmasos_model_load("/", NULL, &m), LLMASOS_ERROR_MODEL_FORMAT);
  expect("load_null_path", llmasos_model_load(NULL, NULL, &m), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("load_null_out", llmasos_model_load(argv[1], NULL, NULL), LLMASOS_ERROR_INVALID_ARGUMENT);
  llmasos_model_options mo;
  expect("model_options_init_null", llmasos_model_options_init(NULL), LLMASOS_ERROR_INVALID_ARGUMENT);
  llmasos_model_options_init(&mo);
  mo.n_ctx = -5;
  llmasos_status s = llmasos_model_load(argv[1], &mo, &m);
  printf("info load_negative_n_ctx %s %s\n", llmasos_status_name(s), s ? llmasos_last_error() : "");
  if (s == LLMASOS_OK) llmasos_model_free(m);

  /* NULL handles everywhere. */
  size_t n = 0;
  int32_t ids[64];
  char text[64];
  int32_t v32;
  int64_t v64;
  llmasos_session* sess = NULL;
  expect("model_free_null", llmasos_model_free(NULL), LLMASOS_OK);
  expect("session_free_null", llmasos_session_free(NULL), LLMASOS_OK);
  expect("n_vocab_null_model", llmasos_model_n_vocab(NULL, &v32), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("n_ctx_null_model", llmasos_model_n_ctx(NULL, &v64), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("tokenize_null_model", llmasos_tokenize(NULL, "hi", 2, -1, 0, ids, 64, &n), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("detokenize_null_model", llmasos_detokenize(NULL, ids, 1, 0, text, 64, &n), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("session_new_null_model", llmasos_session_new(NULL, &sess), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("session_reset_null", llmasos_session_reset(NULL), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("generate_null_session", llmasos_generate(NULL, ids, 1, NULL, NULL, NULL, NULL), LLMASOS_ERROR_INVALID_ARGUMENT);

  /* A real model, then bad arguments against it. */
  expect("load_ok", llmasos_model_load(argv[1], NULL, &m), LLMASOS_OK);
  if (!m) return failures + 1;
  expect("n_vocab_null_out", llmasos_model_n_vocab(m, NULL), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("tokenize_null_text", llmasos_tokenize(m, NULL, 3, -1, 0, ids, 64, &n), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("tokenize_null_n_out", llmasos_tokenize(m, "hi", 2, -1, 0, ids, 64, NULL), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("tokenize_size_query", llmasos_tokenize(m, "hello world", 11, -1, 0, NULL, 0, &n), LLMASOS_OK);
  expect("tokenize_short_buffer", llmasos_tokenize(m, "hello world", 11, -1, 0, ids, 1, &n),
         n > 1 ? LLMASOS_ERROR_BUFFER_TOO_SMALL : LLMASOS_OK);
  expect("tokenize_ok", llmasos_tokenize(m, "hello world", 11, -1, 0, ids, 64, &n), LLMASOS_OK);
  const size_t n_prompt = n;
  expect("detokenize_short_buffer", llmasos_detokenize(m, ids, n_prompt, 0, text, 3, &n), LLMASOS_ERROR_BUFFER_TOO_SMALL);
  expect("detokenize_ok", llmasos_detokenize(m, ids, n_prompt, 0, text, sizeof text, &n), LLMASOS_OK);
  if (strcmp(text, "hello world") != 0) { ++failures; printf("FAIL detokenize_roundtrip '%s'\n", text); }
  int32_t bad_id = 1 << 30;
  expect("detokenize_bad_id", llmasos_detokenize(m, &bad_id, 1, 0, text, sizeof text, &n), LLMASOS_ERROR_INVALID_ARGUMENT);
  bad_id = -7;
  expect("detokenize_negative_id", llmasos_detokenize(m, &bad_id, 1, 0, text, sizeof text, &n), LLMASOS_ERROR_INVALID_ARGUMENT);

  int32_t n_embd = 0;
  expect("n_embd_null_out", llmasos_model_n_embd(m, NULL), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("n_embd_ok", llmasos_model_n_embd(m, &n_embd), LLMASOS_OK);
  expect("session_new_null_out", llmasos_session_new(m, NULL), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("session_new_ok", llmasos_session_new(m, &sess), LLMASOS_OK);
  llmasos_model_free(m); /* the session keeps the model alive */
  llmasos_generate_options go;
  llmasos_generate_options_init(&go);
  go.max_tokens = 4;
  llmasos_generate_result r;
  expect("generate_null_prompt", llmasos_generate(sess, NULL, 1, &go, NULL, NULL, &r), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("generate_empty_prompt", llmasos_generate(sess, ids, 0, &go, NULL, NULL, &r), LLMASOS_ERROR_INVALID_ARGUMENT);
  expect("generate_bad_token", llmasos_generate(sess, &bad_id, 1, &go, NULL, NULL, &r), LLMASOS_ERROR_INVALID_ARGUMENT);
  go.max_tokens = 0;
  expect("generate_zero_max_tokens", llmasos_generate(sess, ids, n_prompt, &go, NULL, NULL, &r), LLMASOS_ERROR_INVALID_ARGUMENT);
  go.max_tokens = 4;
  go.sampling.temperature = NAN;
  expect("generate_nan_temperature", llmasos_generate(sess, ids, n_prompt, &go, NULL, NULL, &r), LLMASOS_ERROR_INVALID_ARGUMENT);
  go.sampling.temperature = 0.0f;
  go.sampling.top_p = -1.0f;
  expect("generate_negative_top_p", llmasos_generate(sess, ids, n_prompt, &go, NULL, NULL, &r), LLMASOS_ERROR_INVALID_ARGUMENT);
  go.sampling.top_p = 1.0f;
  go.n_stop_token_ids = 3;
  expect("generate_null_stop_ids", llmasos_generate(sess, ids, n_prompt, &go, NULL, NULL, &r), LLMASOS_ERROR_INVALID_ARGUMENT);
  go.n_stop_token_ids = 0;
  go.n_stop = 2;
  expect("generate_null_stop", llmasos_generate(sess, ids, n_prompt, &go, NULL, NULL, &r), LLMASOS_ERROR_INVALID_ARGUMENT);
  {
    const char* one_null[2] = {"x", NULL};
    go.stop = one_null;
    expect("generate_null_stop_string", llmasos_generate(sess, ids, n_prompt, &go, NULL, NULL, &r),
           LLMASOS_ERROR_INVALID_ARGUMENT);
    go.stop = NULL;
  }
  go.n_stop = 0;
  go.min_tokens = 5; /* above max_tokens (4) */
  expect("generate_min_tokens_above_max", llmasos_generate(sess, ids, n_prompt, &go, NULL, NULL, &r),
         LLMASOS_ERROR_INVALID_ARGUMENT);
  go.min_tokens = 0;
  expect("generate_ok", llmasos_generate(sess, ids, n_prompt, &go, NULL, NULL, &r), LLMASOS_OK);
  if (r.n_tokens != 4 || r.finish_reason != LLMASOS_FINISH_LENGTH) { ++failures; puts("FAIL generate_ok_result"); }
  {
    /* Embeddings: size query, short buffer, bad pooling, empty and bad ids; then a unit vector. */
    float emb[4096];
    size_t ne = 0;
    expect("embed_size_query", llmasos_embed(sess, ids, n_prompt, LLMASOS_POOLING_MODEL, 1, NULL, 0, &ne), LLMASOS_OK);
    if ((int32_t)ne != n_embd || n_embd <= 0 || n_embd > 4096) { ++failures; puts("FAIL embed_size_query_n"); }
    expect("embed_short_buffer", llmasos_embed(sess, ids, n_prompt, LLMASOS_POOLING_MEAN, 1, emb, 3, &ne),
           LLMASOS_ERROR_BUFFER_TOO_SMALL);
    expect("embed_null_ids", llmasos_embed(sess, NULL, 1, LLMASOS_POOLING_MEAN, 1, emb, 4096, &ne), LLMASOS_ERROR_INVALID_ARGUMENT);
    expect("embed_null_n_out", llmasos_embed(sess, ids, n_prompt, LLMASOS_POOLING_MEAN, 1, emb, 4096, NULL),
           LLMASOS_ERROR_INVALID_ARGUMENT);
    expect("embed_empty", llmasos_embed(sess, ids, 0, LLMASOS_POOLING_MEAN, 1, emb, 4096, &ne), LLMASOS_ERROR_INVALID_ARGUMENT);
    expect("embed_bad_token", llmasos_embed(sess, &bad_id, 1, LLMASOS_POOLING_MEAN, 1, emb, 4096, &ne),
           LLMASOS_ERROR_INVALID_ARGUMENT);
    expect("embed_bad_pooling", llmasos_embed(sess, ids, n_prompt, (llmasos_pooling)7, 1, emb, 4096, &ne),
           LLMASOS_ERROR_INVALID_ARGUMENT);
    expect("embed_ok", llmasos_embed(sess, ids, n_prompt, LLMASOS_POOLING_LAST, 1, emb, 4096, &ne), LLMASOS_OK);
    double ss = 0.0;
    for (size_t i = 0; i < ne; ++i) ss += (double)emb[i] * emb[i];
    if (fabs(ss - 1.0) > 1e-5) { ++failures; printf("FAIL embed_unit_norm %g\n", ss); }
  }
  int calls = 0;
  go.max_tokens = 10;
  expect("generate_callback_stops", llmasos_generate(sess, ids, n_prompt, &go, stop_after_two, &calls, &r), LLMASOS_OK);
  if (calls != 2 || r.n_tokens != 2 || r.finish_reason != LLMASOS_FINISH_STOP) {
    ++failures;
    printf("FAIL generate_callback_stops_result calls=%d n=%zu\n", calls, r.n_tokens);
  }
  {
    /* Grammars: bad text and NULLs are clear errors; a grammar beside JSON mode is refused; a
     * grammar applies to the call it is given to only. */
    llmasos_grammar* g = NULL;
    const char* bad = "root ::= [a-";
    expect("grammar_parse_bad", llmasos_grammar_parse(bad, strlen(bad), &g), LLMASOS_ERROR_INVALID_ARGUMENT);
    if (g) { ++failures; printf("FAIL grammar_parse_bad_out\n"); }
    const char* invalid_utf8 = "root ::= \"\xff\"";
    expect("grammar_parse_not_utf8", llmasos_grammar_parse(invalid_utf8, strlen(invalid_utf8), &g),
           LLMASOS_ERROR_INVALID_ARGUMENT);
    expect("grammar_parse_null_text", llmasos_grammar_parse(NULL, 3, &g), LLMASOS_ERROR_INVALID_ARGUMENT);
    expect("grammar_parse_null_out", llmasos_grammar_parse("x", 1, NULL), LLMASOS_ERROR_INVALID_ARGUMENT);
    const char* yes = "root ::= \"yes\" | \"no\"";
    expect("grammar_parse_ok", llmasos_grammar_parse(yes, strlen(yes), &g), LLMASOS_OK);
    expect("grammar_null_session", llmasos_generate_with_grammar(NULL, ids, n_prompt, NULL, g, NULL, NULL, &r),
           LLMASOS_ERROR_INVALID_ARGUMENT);
    go.max_tokens = 10;
    go.json_object = 1;
    expect("grammar_with_json_mode", llmasos_generate_with_grammar(sess, ids, n_prompt, &go, g, NULL, NULL, &r),
           LLMASOS_ERROR_INVALID_ARGUMENT);
    go.json_object = 0;
    expect("grammar_generate", llmasos_generate_with_grammar(sess, ids, n_prompt, &go, g, NULL, NULL, &r), LLMASOS_OK);
    if (r.finish_reason != LLMASOS_FINISH_STOP || r.n_tokens < 1 || r.n_tokens > 3) {
      ++failures;
      printf("FAIL grammar_generate_result n=%zu\n", r.n_tokens);
    }
    go.ignore_eos = 1; /* unconstrained again: exactly max_tokens */
    expect("grammar_then_none", llmasos_generate(sess, ids, n_prompt, &go, NULL, NULL, &r), LLMASOS_OK);
    if (r.n_tokens != 10) { ++failures; printf("FAIL grammar_then_none n=%zu\n", r.n_tokens); }
    go.ignore_eos = 0;
    llmasos_grammar_free(g);
    expect("grammar_free_null", llmasos_grammar_free(NULL), LLMASOS_OK);
  }
  {
    gen_job ref = {sess, ids, n_prompt, {0}, 0, LLMASOS_OK}, a = ref, b = ref;
    run_job(&ref);
    pthread_t ta, tb;
    llmasos_session *sa = NULL, *sb = NULL;
    llmasos_model* again = NULL; /* two fresh sessions of one model, on two threads */
    llmasos_status s1 = llmasos_model_load(argv[1], NULL, &again);
    if (s1 == LLMASOS_OK) {
      llmasos_session_new(again, &sa);
      llmasos_session_new(again, &sb);
      llmasos_model_free(again);
      a.session = sa;
      b.session = sb;
      a.n_out = b.n_out = 0;
      pthread_create(&ta, NULL, run_job, &a);
      pthread_create(&tb, NULL, run_job, &b);
      pthread_join(ta, NULL);
      pthread_join(tb, NULL);
    }
    int same = s1 == LLMASOS_OK && ref.status == LLMASOS_OK && a.status == LLMASOS_OK &&
               b.status == LLMASOS_OK && ref.n_out == 8 && a.n_out == 8 && b.n_out == 8 &&
               memcmp(ref.out, a.out, sizeof ref.out) == 0 && memcmp(ref.out, b.out, sizeof ref.out) == 0;
    if (!same) ++failures;
    printf("%s two_threads_two_sessions_one_model\n", same ? "ok" : "FAIL");
    llmasos_session_free(sa);
    llmasos_session_free(sb);
  }
  llmasos_session_free(sess);

  /* The last error is thread-local. */
  llmasos_model_load(NULL, NULL, &m);
  pthread_t t;
  void* clean = NULL;
  pthread_create(&t, NULL, other_thread, NULL);
  pthread_join(t, &clean);
  if (!clean) { ++failures; puts("FAIL last_error_thread_local"); }
  if (strlen(llmasos_version()) == 0) { ++failures; puts("FAIL version"); }
  printf("version %s\n", llmasos_version());
  printf("failures %d\n", failures);
  return failures;
}
