// Stop strings over streamed text (stop_strings.h). Bytes, not characters: a stop string's UTF-8
// bytes can only occur in valid UTF-8 text at a character boundary, so byte matching finds what
// character matching finds, and a held tail (a prefix of a stop string) starts at a boundary.
#include "engine/stop_strings.h"

#include <algorithm>
#include <utility>

namespace llmasos {

StopStrings::StopStrings(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

size_t StopStrings::find(const std::string& s) const {
  size_t i = buffer_.find(s);
  while (i != std::string::npos && i + s.size() <= quiet_) i = buffer_.find(s, i + 1);
  return i;
}

std::string StopStrings::feed(const std::string& piece, bool can_stop, bool* stopped) {
  *stopped = stopped_;
  if (stopped_) return {};
  buffer_ += piece;
  if (stops_.empty()) return std::exchange(buffer_, {});
  if (can_stop) {
    size_t at = std::string::npos;  // the earliest stop string's start
    for (const auto& s : stops_) at = std::min(at, find(s));
    if (at != std::string::npos) {
      std::string out = buffer_.substr(0, at);
      buffer_.clear();
      stopped_ = *stopped = true;
      return out;
    }
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const auto& s : stops_) {
    for (size_t k = std::min(s.size() - 1, buffer_.size()); k > hold; --k) {
      if (buffer_.compare(buffer_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  const size_t cut = buffer_.size() - hold;
  std::string out = buffer_.substr(0, cut);
  buffer_.erase(0, cut);
  quiet_ = can_stop ? (quiet_ > cut ? quiet_ - cut : 0) : buffer_.size();
  return out;
}

std::string StopStrings::flush() {
  if (stopped_) return {};
  return std::exchange(buffer_, {});
}

}  // namespace llmasos
