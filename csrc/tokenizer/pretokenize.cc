// Pre-tokenizer matchers (see pretokenize.h for the regex each one reproduces). Text is decoded
// once into characters with a class each; a matcher returns the end of the match at position i.
#include "tokenizer/pretokenize.h"

#include <cstdint>

#include "tokenizer/unicode.h"

namespace llmasos {
namespace {

// One character as the matchers see it.
struct Ch {
  uint32_t cp;
  uint32_t offset, len;
  bool letter, number, space;
  bool other() const { return !letter && !number && !space; }  // [^\s\p{L}\p{N}]
};

std::vector<Ch> classify(std::string_view text) {
  std::vector<Ch> out;
  const auto chars = unicode::utf8_decode(text);
  out.reserve(chars.size());
  for (const auto& c : chars) {
    // Invalid bytes decode as U+FFFD: class "other", which is how the peers treat U+FFFD too.
    const unicode::CpInfo info = unicode::cp_info(c.cp);
    out.push_back({c.cp, c.offset, c.len, info.cls == unicode::CpClass::LETTER,
                   info.cls == unicode::CpClass::NUMBER, info.whitespace});
  }
  return out;
}

uint32_t lower_ascii(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's 't 're 've 'm 'll 'd at i: returns the end, or i when there is none.
size_t match_contraction(const std::vector<Ch>& c, size_t i, size_t e, bool ignore_case) {
  if (c[i].cp != '\'' || i + 1 >= e) return i;
  auto at = [&](size_t k) { return ignore_case ? lower_ascii(c[k].cp) : c[k].cp; };
  const uint32_t a = at(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  if (i + 2 < e) {
    const uint32_t b = at(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  }
  return i;
}

// \s+(?!\S)|\s+ at a whitespace character i: a whitespace run leaves its last character to the
// next match when a non-space follows (so " word" keeps its space), unless the run is one long.
size_t match_space_run(const std::vector<Ch>& c, size_t i, size_t e) {
  size_t k = i;
  while (k < e && c[k].space) ++k;
  if (k == e || k - i == 1) return k;
  return k - 1;
}

size_t gpt2_match(const std::vector<Ch>& c, size_t i, size_t e) {
  size_t k = match_contraction(c, i, e, false);
  if (k != i) return k;
  const size_t j = (c[i].cp == ' ' && i + 1 < e) ? i + 1 : i;  // the optional leading space
  if (c[j].letter) {
    for (k = j; k < e && c[k].letter; ++k) {}
    return k;
  }
  if (c[j].number) {
    for (k = j; k < e && c[k].number; ++k) {}
    return k;
  }
  if (c[j].other()) {
    for (k = j; k < e && c[k].other(); ++k) {}
    return k;
  }
  return match_space_run(c, i, e);  // c[i] is whitespace here
}

bool is_crlf(uint32_t cp) { return cp == '\r' || cp == '\n'; }

size_t llama3_match(const std::vector<Ch>& c, size_t i, size_t e, size_t max_digits) {
  size_t k = match_contraction(c, i, e, true);
  if (k != i) return k;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  size_t j = i;
  if (!c[i].letter && !c[i].number && !is_crlf(c[i].cp) && i + 1 < e && c[i + 1].letter) j = i + 1;
  if (c[j].letter) {
    for (k = j; k < e && c[k].letter; ++k) {}
    return k;
  }
  // \p{N}{1,max_digits}
  if (c[i].number) {
    for (k = i; k < e && k - i < max_digits && c[k].number; ++k) {}
    return k;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  j = (c[i].cp == ' ' && i + 1 < e) ? i + 1 : i;
  if (c[j].other()) {
    for (k = j; k < e && c[k].other(); ++k) {}
    while (k < e && is_crlf(c[k].cp)) ++k;
    return k;
  }
  // \s*[\r\n]+ : the whitespace run up to and including its last \r or \n
  size_t run_end = i;
  while (run_end < e && c[run_end].space) ++run_end;
  for (size_t m = run_end; m > i; --m)
    if (is_crlf(c[m - 1].cp)) return m;
  return match_space_run(c, i, e);
}

// Splits c[b, e) by `match` into pieces appended as views of text.
template <typename Match>
void split_span(const std::vector<Ch>& c, size_t b, size_t e, std::string_view text,
                std::vector<std::string_view>& pieces, Match match) {
  for (size_t i = b; i < e;) {
    size_t k = match(c, i, e);
    if (k <= i) k = i + 1;  // never stall (cannot happen: every class has a branch)
    const size_t off = c[i].offset, end = c[k - 1].offset + c[k - 1].len;
    pieces.push_back(text.substr(off, end - off));
    i = k;
  }
}

}  // namespace

PreTokenizer pre_tokenizer_from_name(std::string_view n, bool* known) {
  if (known) *known = true;
  for (const char* s : {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                        "minerva-7b"})
    if (n == s) return PreTokenizer::DIGITS_GPT2;
  for (const char* s : {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                        "midm-2.0", "lfm2", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4"})
    if (n == s) return PreTokenizer::LLAMA3;
  for (const char* s : {"qwen2", "stablelm2", "deepseek-r1-qwen", "megrez", "hunyuan", "grok-2"})
    if (n == s) return PreTokenizer::QWEN2;
  for (const char* s : {"default", "gpt2", "gpt-2", "mpt", "olmo", "jais", "phi-2", "trillion",
                        "granite-docling", "exaone4", "jina-es", "jina-de", "jina-v1-en",
                        "jina-v2-es", "jina-v2-de", "gigachat", "a.x-4.0", "mellum"})
    if (n == s) return PreTokenizer::GPT2;
  if (known) *known = false;
  return PreTokenizer::GPT2;
}

const char* pre_tokenizer_name(PreTokenizer p) {
  switch (p) {
    case PreTokenizer::GPT2: return "gpt2";
    case PreTokenizer::DIGITS_GPT2: return "digits+gpt2";
    case PreTokenizer::LLAMA3: return "llama3";
    case PreTokenizer::QWEN2: return "qwen2";
  }
  return "?";
}

void pretokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& pieces) {
  if (text.empty()) return;
  const std::vector<Ch> c = classify(text);
  const size_t n = c.size();
  switch (kind) {
    case PreTokenizer::GPT2:
      split_span(c, 0, n, text, pieces, gpt2_match);
      break;
    case PreTokenizer::DIGITS_GPT2: {
      // Each number character is a piece of its own; GPT2 splits the spans between them, each
      // span on its own (a whitespace run before a digit ends its span: (?!\S) sees the end).
      size_t b = 0;
      for (size_t i = 0; i <= n; ++i) {
        if (i < n && !c[i].number) continue;
        split_span(c, b, i, text, pieces, gpt2_match);
        if (i < n) pieces.push_back(text.substr(c[i].offset, c[i].len));
        b = i + 1;
      }
      break;
    }
    case PreTokenizer::LLAMA3:
      split_span(c, 0, n, text, pieces,
                 [](const std::vector<Ch>& cc, size_t i, size_t e) { return llama3_match(cc, i, e, 3); });
      break;
    case PreTokenizer::QWEN2:
      split_span(c, 0, n, text, pieces,
                 [](const std::vector<Ch>& cc, size_t i, size_t e) { return llama3_match(cc, i, e, 1); });
      break;
  }
}

}  // namespace llmasos
