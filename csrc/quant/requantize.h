// Re-quantizes a GGUF file to another weight type (`llmasos quantize IN OUT TYPE`): 2-D weights
// become TYPE (or the nearest type whose block fits the row), 1-D tensors (norms, biases) F32;
// metadata is copied with its exact types and general.file_type is updated.
#pragma once
#include <cstdint>
#include <string>

#include "quant/quant_types.h"

namespace llmasos {

struct QuantizeReport {
  int64_t n_tensors = 0, n_quantized = 0, n_fallback = 0;
  uint64_t in_bytes = 0, out_bytes = 0;
};

// Type by name ("Q4_0", "q4_k", "F16", ...); throws InvalidArgumentError naming the valid ones.
GgmlType quant_type_from_name(const std::string& name);

// Writes OUT atomically (a temporary file renamed at the end). threads <= 0: physical cores.
QuantizeReport quantize_gguf(const std::string& in, const std::string& out, GgmlType target,
                             int threads);

}  // namespace llmasos
