// RoPE on the GPU: one thread per (token, head, rotated pair). The angle is computed in double,
// as the CPU kernel does, so long positions agree to float rounding.
#include <cuda_runtime.h>

#include "cuda/cuda_check.h"
#include "cuda/kernels.h"

namespace llmasos::cuda {
namespace {

__global__ void rope_kernel(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t pos0,
                            int64_t rope_dim, float freq_base, const float* freq_factors,
                            bool neox) {
  const int64_t half = rope_dim / 2;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= T * n_heads * half) return;
  const int64_t i = idx % half;
  const int64_t th = idx / half;  // t * n_heads + h
  const int64_t t = th / n_heads;
  double inv = pow(static_cast<double>(freq_base), -2.0 * static_cast<double>(i) / rope_dim);
  if (freq_factors) inv /= freq_factors[i];
  const double ang = static_cast<double>(pos0 + t) * inv;
  const float c = static_cast<float>(cos(ang)), s = static_cast<float>(sin(ang));
  float* v = x + th * head_dim;
  const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * c - x1 * s;
  v[b] = x0 * s + x1 * c;
}

}  // namespace

void launch_rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t pos0,
                 int64_t rope_dim, float freq_base, const float* freq_factors, bool neox,
                 void* stream) {
  const int64_t total = T * n_heads * (rope_dim / 2);
  if (total <= 0) return;
  constexpr int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  rope_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(
      x, T, n_heads, head_dim, pos0, rope_dim, freq_base, freq_factors, neox);
  check(cudaGetLastError(), "rope launch");
}

}  // namespace llmasos::cuda
