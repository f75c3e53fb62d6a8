#include "engine/prompt_lookup.h"

#include <algorithm>

namespace llmasos {

std::vector<int32_t> prompt_lookup_draft(const std::vector<int32_t>& prompt, const std::vector<int32_t>& generated,
                                         int64_t max_draft) {
  std::vector<int32_t> out;
  if (max_draft <= 0) return out;
  const int64_t P = static_cast<int64_t>(prompt.size()), L = P + static_cast<int64_t>(generated.size());
  auto at = [&](int64_t i) { return i < P ? prompt[static_cast<size_t>(i)] : generated[static_cast<size_t>(i - P)]; };
  for (int64_t n = kMaxNgram; n >= kMinNgram; --n) {
    if (L < n + 1) continue;
    // The tail is [L - n, L); a match [j, j + n) must end before L so something follows it.
    for (int64_t j = L - n - 1; j >= 0; --j) {
      int64_t k = 0;
      while (k < n && at(j + k) == at(L - n + k)) ++k;
      if (k < n) continue;
      const int64_t end = std::min(L, j + n + max_draft);
      for (int64_t i = j + n; i < end; ++i) out.push_back(at(i));
      return out;
    }
  }
  return out;
}

}  // namespace llmasos
