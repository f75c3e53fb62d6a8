// Stop strings over streamed text (the C API's, as Python's stop_strings.StopMatcher): found across
// token boundaries, holding back only the text that could still be the start of one.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace llmasos {

class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops);

  // Adds a piece of UTF-8 text; returns the text safe to release now, and sets *stopped once a
  // stop string appears (the text before it is released; nothing after it ever is). can_stop
  // false (min_tokens not reached): no stop string ends here, though one this text begins may
  // end it later.
  std::string feed(const std::string& piece, bool can_stop, bool* stopped);
  // The held text at the end of the generation (nothing once stopped).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  // Where `s` first occurs in the buffer ending past its quiet part, or npos.
  size_t find(const std::string& s) const;

  std::vector<std::string> stops_;
  std::string buffer_;  // received, not yet released
  size_t quiet_ = 0;    // the buffer's first bytes came while stops were off
  bool stopped_ = false;
};

}  // namespace llmasos
