// Exception types the core throws; the Python binding maps each to a subclass of llmasos.LLMasOSError.
#pragma once
#include <stdexcept>
#include <string>

namespace llmasos {

// Base of every error the core raises on purpose.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A model file is malformed, truncated, inconsistent or unsupported.
struct ModelFormatError : Error {
  using Error::Error;
};

// A caller passed an argument that cannot be honoured (bad token id, context overflow, ...).
struct InvalidArgumentError : Error {
  using Error::Error;
};

}  // namespace llmasos
