/* embed MODEL.gguf TEXT...: prints one line per TEXT, its embedding (the model's pooling, L2-
 * normalized) as space-separated floats, through the llmasos C API. Errors go to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmasos/llmasos.h>

static int fail(const char* what, llmasos_status s) {
  fprintf(stderr, "embed: %s failed: %s: %s\n", what, llmasos_status_name(s), llmasos_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.gguf TEXT...\n", argv[0]);
    return 2;
  }
  llmasos_model* model = NULL;
  llmasos_session* session = NULL;
  llmasos_status s = llmasos_model_load(argv[1], NULL, &model);
  if (s != LLMASOS_OK) return fail("loading the model", s);
  s = llmasos_session_new(model, &session);
  int32_t n_embd = 0;
  if (s == LLMASOS_OK) s = llmasos_model_n_embd(model, &n_embd);
  float* v = malloc((size_t)(n_embd > 0 ? n_embd : 1) * sizeof(float));
  for (int a = 2; a < argc && s == LLMASOS_OK; ++a) {
    size_t n = 0;  /* tokenized as the Python API does: the model's add_bos, no special tokens */
    s = llmasos_tokenize(model, argv[a], strlen(argv[a]), -1, 0, NULL, 0, &n);
    int32_t* ids = malloc((n ? n : 1) * sizeof(int32_t));
    if (s == LLMASOS_OK) s = llmasos_tokenize(model, argv[a], strlen(argv[a]), -1, 0, ids, n, &n);
    size_t n_out = 0;
    if (s == LLMASOS_OK) s = llmasos_embed(session, ids, n, LLMASOS_POOLING_MODEL, 1, v, (size_t)n_embd, &n_out);
    free(ids);
    for (size_t i = 0; s == LLMASOS_OK && i < n_out; ++i) printf(i ? " %.9g" : "%.9g", v[i]);
    if (s == LLMASOS_OK) putchar('\n');
  }
  free(v);
  llmasos_session_free(session);
  llmasos_model_free(model);
  return s == LLMASOS_OK ? 0 : fail("embedding", s);
}
