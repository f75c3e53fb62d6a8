// Unicode helpers for the tokenizers: code point classes from the generated range table, lenient
// UTF-8 decoding and repair, the GPT-2 byte-level alphabet.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace llmasos::unicode {
namespace {

struct CpRange {
  uint32_t first, last;
  uint8_t flags;  // CpClass | 8 if White_Space
};

constexpr CpRange kRanges[] = {
#include "tokenizer/unicode_tables.inc"
};

CpInfo info_from_flags(uint8_t f) {
  CpInfo r;
  r.cls = (f & 7) == 7 ? CpClass::OTHER : static_cast<CpClass>(f & 7);
  r.whitespace = (f & 8) != 0;
  return r;
}

// ASCII and Latin-1 are looked up directly; the rest by binary search over kRanges.
struct Latin1Table {
  std::array<CpInfo, 256> info{};
  Latin1Table() {
    for (const CpRange& r : kRanges) {
      if (r.first > 255) break;
      for (uint32_t c = r.first; c <= std::min<uint32_t>(r.last, 255); ++c) info[c] = info_from_flags(r.flags);
    }
  }
};
const Latin1Table& latin1() {
  static const Latin1Table t;
  return t;
}

// The bytes GPT-2 keeps as themselves: printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ').
bool gpt2_keeps(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

struct ByteAlphabet {
  std::array<std::string, 256> to_unicode;
  std::array<int, 324> from_unicode;  // code points used are < 256 + 68
  ByteAlphabet() {
    from_unicode.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      uint32_t cp = gpt2_keeps(b) ? static_cast<uint32_t>(b) : static_cast<uint32_t>(next++);
      utf8_append(to_unicode[b], cp);
      from_unicode[cp] = b;
    }
  }
};
const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

CpInfo cp_info(uint32_t cp) {
  if (cp < 256) return latin1().info[cp];
  const CpRange* end = kRanges + sizeof(kRanges) / sizeof(kRanges[0]);
  const CpRange* it = std::upper_bound(kRanges, end, cp,
                                       [](uint32_t c, const CpRange& r) { return c < r.first; });
  if (it == kRanges) return CpInfo{};
  --it;
  return cp <= it->last ? info_from_flags(it->flags) : CpInfo{};
}

size_t utf8_valid_len(std::string_view s, size_t i) {
  const size_t n = s.size() - i;
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const uint8_t c = b(0);
  if (c < 0x80) return 1;
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
  else return 0;
  if (n < len) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < len; ++k)
    if ((b(k) & 0xC0) != 0x80) return 0;
  return len;
}

// Length of the longest prefix at s[i] that could start a valid character (the "maximal subpart").
static size_t utf8_valid_prefix(std::string_view s, size_t i) {
  const uint8_t c = static_cast<uint8_t>(s[i]);
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
  else return c < 0x80 ? 1 : 0;
  size_t k = 1;
  for (; k < len && i + k < s.size(); ++k) {
    const uint8_t d = static_cast<uint8_t>(s[i + k]);
    if (k == 1 ? (d < lo || d > hi) : ((d & 0xC0) != 0x80)) break;
  }
  return k;
}

static uint32_t decode_at(std::string_view s, size_t i, size_t len) {
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(s[i + k])); };
  switch (len) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

std::vector<Utf8Char> utf8_decode(std::string_view s) {
  std::vector<Utf8Char> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_valid_len(s, i);
    if (len == 0) {
      out.push_back({0xFFFD, static_cast<uint32_t>(i), 1});
      ++i;
    } else {
      out.push_back({decode_at(s, i, len), static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
      i += len;
    }
  }
  return out;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_repair(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_valid_len(s, i);
    if (len > 0) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal invalid subpart (at least one byte)
      i += std::max<size_t>(1, utf8_valid_prefix(s, i));
    }
  }
  return out;
}

size_t utf8_incomplete_tail(std::string_view s) {
  // A lead byte among the last 3 whose sequence runs past the end, with valid bytes so far.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t i = n - back;
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    if (c < 0xC2 || c > 0xF4) return 0;
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (back >= need) return 0;  // complete (or invalid) already
    return utf8_valid_prefix(s, i) == back ? back : 0;
  }
  return 0;
}

const std::string& byte_to_unicode(uint8_t b) { return alphabet().to_unicode[b]; }

int unicode_to_byte(uint32_t cp) {
  return cp < alphabet().from_unicode.size() ? alphabet().from_unicode[cp] : -1;
}

}  // namespace llmasos::unicode
