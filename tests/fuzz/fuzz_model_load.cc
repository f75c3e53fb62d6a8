// libFuzzer target for the rule "bad input raises a clear error, never crashes": the input's bytes
// are a GGUF file, loaded as a model (header, metadata, tensor infos, hyper-parameters, weight
// binding, x8 repacking, tokenizer), then tokenized, detokenized and run forward for two tokens.
// Any exception that is not an llmasos::Error, any sanitizer report and any hang is a finding.
//
// Build (clang with its libFuzzer runtime; the core built with the same sanitizers):
//   CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
//     -DLLMASOS_CUDA=OFF -DLLMASOS_BUILD_PYTHON=OFF -DLLMASOS_STATIC_CXX_RUNTIME=OFF \
//     -DLLMASOS_GLIBC_COMPAT=OFF "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined,fuzzer-no-link \
//     -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
//   cmake --build build/fuzz --target llmasos_core
//   clang++ -std=c++17 -g -O1 -fsanitize=address,undefined,fuzzer -fno-sanitize-recover=undefined \
//     -Icsrc -Icsrc/include tests/fuzz/fuzz_model_load.cc build/fuzz/libllmasos_core.a -lpthread \
//     -o build/fuzz/fuzz_model_load
// Seeds: python tests/fuzz/make_seeds.py build/fuzz/seeds (small valid models of every weight
// format the loader takes). Run:
//   build/fuzz/fuzz_model_load -rss_limit_mb=4096 -max_len=200000 -timeout=20 \
//     build/fuzz/corpus build/fuzz/seeds
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "llmasos/errors.hpp"
#include "model/llama.h"

namespace {

// The input as a file the loader can map: one memory-backed file reused for every input.
const std::string& input_path(const uint8_t* data, size_t size) {
  static int fd = -1;
  static std::string path;
  if (fd < 0) {
    fd = memfd_create("fuzz-model", 0);
    if (fd < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
    std::perror("writing the input");
    std::abort();
  }
  return path;
}

void exercise(const std::string& path, bool repack) {
  llmasos::ModelOptions opts;
  opts.n_ctx = 16;
  opts.threads = 1;
  opts.repack = repack;
  auto model = llmasos::Model::load(path, opts);
  const llmasos::Tokenizer& tok = model->tokenizer();
  const int32_t n_vocab = tok.n_vocab();
  std::vector<int32_t> ids = tok.encode("Hello, world! <|im_start|>x \xc3\xbc\xf0\x9f\x98\x80 12\n\t ", true, true);
  tok.decode(ids, true);
  tok.decode(ids, false);
  for (int32_t i = 0; i < n_vocab && i < 300; ++i) tok.token_bytes(i, true);
  llmasos::KvCache kv = model->new_kv_cache();
  const int32_t tokens[2] = {ids.empty() ? 0 : ids[0], n_vocab - 1};
  std::vector<float> logits(2 * static_cast<size_t>(n_vocab));
  model->forward(tokens, 2, 0, kv, logits.data(), true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = input_path(data, size);
  // Both weight paths: repacked into x8 blocks, and used in place from the mapping.
  for (bool repack : {true, false}) {
    try {
      exercise(path, repack);
    } catch (const llmasos::Error&) {
      // the expected outcome for a bad file
    }
  }
  return 0;
}
