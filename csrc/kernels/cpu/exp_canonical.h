// A float exp made of plain +, -, * and integer bit moves, so every ISA level vectorizes the same
// operations and rounds identically (libm's expf is a scalar call per element: ~10 ns each, a
// quarter of a prompt's time in softmax and SiLU). Cephes' expf: range reduction by ln 2 in two
// parts, a degree-6 polynomial, then scaling by 2^k through the exponent bits. Max relative error
// about 2 ulp over the clamped range.
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/cpu/isa.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {

inline float canonical_exp(float x) {
  // Clamp so that 2^k stays a normal float: exp(88.3) ~ 2.2e38, exp(-87.3) ~ 1.2e-38 (below that the
  // true result is denormal or 0; callers only add or divide by these). NaN passes through.
  x = x > 88.3f ? 88.3f : x;
  x = x < -87.3f ? -87.3f : x;
  // k = round(x / ln 2): adding and subtracting 1.5 * 2^23 rounds to nearest in float.
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - k * 0.693359375f;  // ln 2 split: this product is exact for |k| < 2^10
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
