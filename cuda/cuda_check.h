// CUDA runtime errors become llmasos::Error with the failing call named.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "llmasos/errors.hpp"

namespace llmasos::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

}  // namespace llmasos::cuda
