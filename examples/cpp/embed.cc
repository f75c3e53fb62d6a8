// embed MODEL.gguf TEXT...: prints one line per TEXT, its embedding (the model's pooling, L2-
// normalized) as space-separated floats, through the llmasos C++ API.
#include <cstdio>
#include <iostream>

#include <llmasos/llmasos.hpp>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " MODEL.gguf TEXT...\n";
    return 2;
  }
  try {
    llmasos::LLM llm(argv[1]);
    for (int a = 2; a < argc; ++a) {
      const std::vector<float> v = llm.embed(argv[a]);
      for (size_t i = 0; i < v.size(); ++i) std::printf(i ? " %.9g" : "%.9g", v[i]);
      std::printf("\n");
    }
  } catch (const llmasos::Error& e) {
    std::cerr << "embed: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
