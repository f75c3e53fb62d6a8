// Overflow-safe size arithmetic for everything read from a file: each helper throws
// ModelFormatError (naming `what`) instead of wrapping around.
#pragma once
#include <cstdint>
#include <string>
#include "llmasos/errors.hpp"

namespace llmasos {

// *r = a + b (a * b); true when the exact result does not fit in 64 bits. GCC/Clang builtins, a
// portable check elsewhere (MSVC).
inline bool add_overflow(uint64_t a, uint64_t b, uint64_t* r) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_add_overflow(a, b, r);
#else
  *r = a + b;
  return *r < a;
#endif
}

inline bool mul_overflow(uint64_t a, uint64_t b, uint64_t* r) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_mul_overflow(a, b, r);
#else
  *r = a * b;
  return a != 0 && *r / a != b;
#endif
}

inline uint64_t checked_add(uint64_t a, uint64_t b, const char* what) {
  uint64_t r;
  if (add_overflow(a, b, &r)) throw ModelFormatError(std::string("size overflow in ") + what);
  return r;
}

inline uint64_t checked_mul(uint64_t a, uint64_t b, const char* what) {
  uint64_t r;
  if (mul_overflow(a, b, &r)) throw ModelFormatError(std::string("size overflow in ") + what);
  return r;
}

}  // namespace llmasos
