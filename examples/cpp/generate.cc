// generate MODEL.gguf PROMPT [MAX_TOKENS=32] [--stop STR]... [--json | --grammar FILE.gbnf]: streams
// a greedy completion of PROMPT (the generated text only) to stdout through the llmasos C++ API;
// --stop ends it before a stop string, --json asks for one JSON object, --grammar for text the GBNF
// grammar in FILE derives.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <llmasos/llmasos.hpp>

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::string(argv[argc - 1]) == "--json";
  if (json) --argc;
  std::string grammar;
  if (argc > 2 && std::string(argv[argc - 2]) == "--grammar") {
    std::ifstream f(argv[argc - 1], std::ios::binary);
    if (!f) {
      std::cerr << "generate: cannot read " << argv[argc - 1] << "\n";
      return 1;
    }
    std::ostringstream text;
    text << f.rdbuf();
    grammar = text.str();
    argc -= 2;
  }
  std::vector<std::string> stop;
  for (; argc > 2 && std::string(argv[argc - 2]) == "--stop"; argc -= 2) stop.push_back(argv[argc - 1]);
  std::reverse(stop.begin(), stop.end());
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: " << argv[0]
              << " MODEL.gguf PROMPT [MAX_TOKENS=32] [--stop STR]... [--json | --grammar FILE.gbnf]\n";
    return 2;
  }
  try {
    llmasos::LLM llm(argv[1]);
    llmasos::SamplingParams params;  // greedy
    params.max_tokens = argc == 4 ? std::atol(argv[3]) : 32;
    params.json_object = json;
    params.grammar = grammar;
    params.stop = stop;
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
