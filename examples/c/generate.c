/* generate MODEL.gguf PROMPT [MAX_TOKENS=32] [--stop STR]... [--json | --grammar FILE.gbnf]:
 * streams a greedy completion of PROMPT (the generated text only) to stdout through the llmasos C
 * API; --stop ends it before a stop string, --json asks for one JSON object (JSON mode), --grammar
 * for text the GBNF grammar in FILE derives. Errors go to stderr with the library's message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmasos/llmasos.h>

static int print_piece(void* user_data, int32_t token_id, const char* piece, size_t len) {
  (void)user_data;
  (void)token_id;
  fwrite(piece, 1, len, stdout);
  fflush(stdout);
  return 1; /* go on */
}

static int fail(const char* what, llmasos_status s) {
  fprintf(stderr, "generate: %s failed: %s: %s\n", what, llmasos_status_name(s), llmasos_last_error());
  return 1;
}

/* The whole file at `path` (NUL-terminated, *len bytes), or NULL. */
static char* read_file(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0, got;
  char* buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n + 1 == cap) {
      char* bigger = realloc(buf, cap *= 2);
      if (!bigger) free(buf);
      buf = bigger;
    }
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  *len = n;
  return buf;
}

int main(int argc, char** argv) {
  int json = argc > 1 && strcmp(argv[argc - 1], "--json") == 0;
  if (json) --argc;
  const char* grammar_path = NULL;
  if (argc > 2 && strcmp(argv[argc - 2], "--grammar") == 0) {
    grammar_path = argv[argc - 1];
    argc -= 2;
  }
  /* --stop pairs, last first: stops[] keeps them in the order given. */
  const char* stops[16];
  size_t n_stop = 0;
  int first_stop = argc;
  while (first_stop > 4 && strcmp(argv[first_stop - 2], "--stop") == 0 && n_stop < 16) {
    first_stop -= 2;
    ++n_stop;
  }
  for (size_t i = 0; i < n_stop; ++i) stops[i] = argv[first_stop + 2 * (int)i + 1];
  argc = first_stop;
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: %s MODEL.gguf PROMPT [MAX_TOKENS=32] [--stop STR]... [--json | --grammar FILE.gbnf]\n",
            argv[0]);
    return 2;
  }
  long max_tokens = argc == 4 ? strtol(argv[3], NULL, 10) : 32;

  llmasos_model* model = NULL;
  llmasos_status s = llmasos_model_load(argv[1], NULL, &model);
  if (s != LLMASOS_OK) return fail("loading the model", s);

  /* Tokenize as the Python API does: the model's add_bos default, no special tokens. */
  size_t n = 0;
  s = llmasos_tokenize(model, argv[2], strlen(argv[2]), -1, 0, NULL, 0, &n);
  int32_t* ids = malloc((n ? n : 1) * sizeof(int32_t));
  if (s == LLMASOS_OK) s = llmasos_tokenize(model, argv[2], strlen(argv[2]), -1, 0, ids, n, &n);
  if (s != LLMASOS_OK) {
    free(ids);
    llmasos_model_free(model);
    return fail("tokenizing the prompt", s);
  }

  llmasos_session* session = NULL;
  llmasos_generate_options opts;
  llmasos_generate_options_init(&opts); /* greedy: temperature 0 */
  opts.max_tokens = max_tokens;
  opts.json_object = json;
  opts.stop = stops;
  opts.n_stop = n_stop;
  llmasos_generate_result result;
  llmasos_grammar* grammar = NULL;
  s = llmasos_session_new(model, &session);
  if (s == LLMASOS_OK && grammar_path) {
    size_t len = 0;
    char* text = read_file(grammar_path, &len);
    if (!text) {
      fprintf(stderr, "generate: cannot read %s\n", grammar_path);
      free(ids);
      llmasos_session_free(session);
      llmasos_model_free(model);
      return 1;
    }
    s = llmasos_grammar_parse(text, len, &grammar);
    free(text);
  }
  if (s == LLMASOS_OK)
    s = llmasos_generate_with_grammar(session, ids, n, &opts, grammar, print_piece, NULL, &result);
  llmasos_grammar_free(grammar);
  free(ids);
  llmasos_session_free(session);
  llmasos_model_free(model);
  if (s != LLMASOS_OK) return fail("generating", s);
  fputc('\n', stdout);
  fprintf(stderr, "[%zu tokens, finish: %s]\n", result.n_tokens,
          result.finish_reason == LLMASOS_FINISH_STOP ? "stop" : "length");
  return 0;
}
