// generate MODEL.gguf PROMPT [MAX_TOKENS=32] [--json]: streams a greedy completion of PROMPT (the
// generated text only) to stdout through the llmasos C++ API; --json asks for one JSON object.
#include <cstdlib>
#include <iostream>
#include <string>

#include <llmasos/llmasos.hpp>

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::string(argv[argc - 1]) == "--json";
  if (json) --argc;
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: " << argv[0] << " MODEL.gguf PROMPT [MAX_TOKENS=32] [--json]\n";
    return 2;
  }
  try {
    llmasos::LLM llm(argv[1]);
    llmasos::SamplingParams params;  // greedy
    params.max_tokens = argc == 4 ? std::atol(argv[3]) : 32;
    params.json_object = json;
    llmasos::GenerationOutput out = llm.generate(argv[2], params, [](std::string_view piece) {
      std::cout << piece << std::flush;
      return true;
    });
    std::cout << "\n";
    std::cerr << "[" << out.token_ids.size() << " tokens, finish: " << out.finish_reason << "]\n";
  } catch (const llmasos::Error& e) {
    std::cerr << "generate: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
