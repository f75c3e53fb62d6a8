// Launchers of the CUDA kernels (plain C++ declarations; the kernels live in the .cu files). All
// pointers are device memory; launches go on `stream` (a cudaStream_t; nullptr: the default).
#pragma once
#include <cstdint>

namespace llmasos::cuda {

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, rows x n floats; y may alias x.
void launch_rmsnorm(float* y, const float* x, const float* w, int64_t rows, int64_t n, float eps,
                    void* stream);

// RoPE in place on x [T][n_heads][head_dim] for the first rope_dim dims of each head; neox: pairs
// (i, i + rope_dim/2), else (2i, 2i+1). freq_factors: nullptr or rope_dim/2 divisors.
void launch_rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t pos0,
                 int64_t rope_dim, float freq_base, const float* freq_factors, bool neox,
                 void* stream);

}  // namespace llmasos::cuda
