// Unicode helpers for the tokenizers: lenient UTF-8 decoding, code point classes (\p{L}, \p{N},
// \s ...) from the generated range table, UTF-8 repair (U+FFFD) and the GPT-2 byte<->unicode map.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmasos::unicode {

// General-category class of a code point (the first letter of its Unicode category).
enum class CpClass : uint8_t { OTHER = 0, LETTER = 1, NUMBER = 2, MARK = 3, PUNCT = 4, SYMBOL = 5,
                               SEPARATOR = 6 };

struct CpInfo {
  CpClass cls = CpClass::OTHER;
  bool whitespace = false;  // the White_Space property (what regex \s means in the peers)
};
CpInfo cp_info(uint32_t cp);
inline bool is_letter(uint32_t cp) { return cp_info(cp).cls == CpClass::LETTER; }
inline bool is_number(uint32_t cp) { return cp_info(cp).cls == CpClass::NUMBER; }
inline bool is_space(uint32_t cp) { return cp_info(cp).whitespace; }

// One decoded character: its code point and where its bytes lie in the source text. An invalid
// byte decodes as its own one-byte "character" with code point 0xFFFD + class OTHER, so every byte
// of the input lands in exactly one character and nothing is lost or read past the end.
struct Utf8Char {
  uint32_t cp;
  uint32_t offset;  // byte offset in the text
  uint32_t len;     // 1..4 bytes
};
// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if it is not valid there.
size_t utf8_valid_len(std::string_view s, size_t i);
std::vector<Utf8Char> utf8_decode(std::string_view s);
void utf8_append(std::string& out, uint32_t cp);

// Replaces each maximal invalid subpart of `s` by U+FFFD (the policy of Python's
// errors="replace" and Rust's from_utf8_lossy).
std::string utf8_repair(std::string_view s);
// Bytes at the end of `s` that begin a valid but not yet complete UTF-8 character (0..3).
size_t utf8_incomplete_tail(std::string_view s);

// GPT-2 byte-level alphabet: each byte maps to one printable code point (UTF-8 encoded).
const std::string& byte_to_unicode(uint8_t b);
// Inverse: code point -> byte, or -1 if the code point is not in the alphabet.
int unicode_to_byte(uint32_t cp);

}  // namespace llmasos::unicode
