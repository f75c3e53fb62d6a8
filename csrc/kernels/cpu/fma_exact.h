// fma_exact(a, b, c): the float fused multiply-add, rounded once (round to nearest even), inline at
// every ISA level. Where the level's flags have FMA it is the instruction. Elsewhere (the generic
// level) std::fma would be a library call per term, and on an x86-64 without FMA glibc's software
// path switches the rounding mode twice per call; this computes it in double instead:
//   p = a * b is exact in double (24 + 24 bits < 53); s = p + c rounded to nearest, e the exact
//   error of that sum (Knuth's two-sum), then s rounded to odd (the odd one of the two doubles
//   around p + c when it is inexact) and that rounded to float. Rounding to odd in a format of at
//   least 24 + 2 bits and then to nearest float equals one rounding to nearest float, subnormal
//   results included (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved
//   algorithms using rounding to odd", IEEE TC 2008). p + c can never round to a zero or an
//   infinity in double unless it is one, so the neighbour step stays among finite doubles; for
//   infinite or NaN operands s already is the float result.
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/cpu/isa.h"

namespace llmasos::cpu::LLMASOS_ISA_NS {

inline float fma_exact(float a, float b, float c) {
#if defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  const double p = static_cast<double>(a) * static_cast<double>(b);
  const double cd = c;
  const double s = p + cd;
  const double bb = s - p;
  const double e = (p - (s - bb)) + (cd - bb);  // p + c = s + e exactly
  uint64_t u;
  std::memcpy(&u, &s, 8);
  // Inexact with an even last bit: one ulp toward p + c (up in magnitude when e has s's sign).
  if (e != 0.0 && (u & 1) == 0 && ((u >> 52) & 0x7ff) != 0x7ff) u += (e > 0.0) == (s > 0.0) ? 1 : uint64_t(-1);
  double r;
  std::memcpy(&r, &u, 8);
  return static_cast<float>(r);
#endif
}

}  // namespace llmasos::cpu::LLMASOS_ISA_NS
