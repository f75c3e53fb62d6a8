// cpuid and XGETBV for dispatch.cc on every x86 compiler (GCC/Clang: <cpuid.h> and inline asm;
// MSVC: <intrin.h>); on other architectures nothing is defined and dispatch offers generic only.
#pragma once

#if defined(LLMASOS_X86)
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#else
#include <cpuid.h>
#endif

namespace llmasos::cpu {

// Highest basic cpuid leaf.
inline unsigned cpuid_max() {
#if defined(_MSC_VER) && !defined(__clang__)
  int r[4];
  __cpuid(r, 0);
  return static_cast<unsigned>(r[0]);
#else
  return __get_cpuid_max(0, nullptr);
#endif
}

// cpuid(leaf, subleaf) -> eax, ebx, ecx, edx. Only for leaf <= cpuid_max().
inline void cpuid(unsigned leaf, unsigned sub, unsigned& a, unsigned& b, unsigned& c, unsigned& d) {
#if defined(_MSC_VER) && !defined(__clang__)
  int r[4];
  __cpuidex(r, static_cast<int>(leaf), static_cast<int>(sub));
  a = static_cast<unsigned>(r[0]), b = static_cast<unsigned>(r[1]);
  c = static_cast<unsigned>(r[2]), d = static_cast<unsigned>(r[3]);
#else
  __cpuid_count(leaf, sub, a, b, c, d);
#endif
}

// XCR0 (the register states the OS saves); only when cpuid says OSXSAVE.
inline unsigned xgetbv0() {
#if defined(_MSC_VER) && !defined(__clang__)
  return static_cast<unsigned>(_xgetbv(0));
#else
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return lo;
#endif
}

}  // namespace llmasos::cpu
#endif  // LLMASOS_X86
