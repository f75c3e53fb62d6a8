// Overflow-safe size arithmetic for everything read from a file: each helper throws
// ModelFormatError (naming `what`) instead of wrapping around.
#pragma once
#include <cstdint>
#include <string>
#include "llmasos/errors.hpp"

namespace llmasos {

inline uint64_t checked_add(uint64_t a, uint64_t b, const char* what) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw ModelFormatError(std::string("size overflow in ") + what);
  return r;
}

inline uint64_t checked_mul(uint64_t a, uint64_t b, const char* what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw ModelFormatError(std::string("size overflow in ") + what);
  return r;
}

}  // namespace llmasos
