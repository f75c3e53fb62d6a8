// RMSNorm on the GPU: one block per row; the sum of squares is reduced with warp shuffles, then
// across warps through shared memory. Matches kernels/cpu/ops.cc rmsnorm within float rounding.
#include <cuda_runtime.h>

#include "cuda/cuda_check.h"
#include "cuda/kernels.h"

namespace llmasos::cuda {
namespace {

constexpr int kThreads = 256;

__device__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__global__ void rmsnorm_kernel(float* y, const float* x, const float* w, int64_t n, float eps) {
  const float* xr = x + blockIdx.x * n;
  float* yr = y + blockIdx.x * n;
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += xr[i] * xr[i];
  __shared__ float partial[kThreads / 32];
  s = warp_sum(s);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x < 32) {
    s = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.f;
    s = warp_sum(s);
    if (threadIdx.x == 0) partial[0] = s;
  }
  __syncthreads();
  const float scale = rsqrtf(partial[0] / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
}

}  // namespace

void launch_rmsnorm(float* y, const float* x, const float* w, int64_t rows, int64_t n, float eps,
                    void* stream) {
  if (rows <= 0 || n <= 0) return;
  rmsnorm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      y, x, w, n, eps);
  check(cudaGetLastError(), "rmsnorm launch");
}

}  // namespace llmasos::cuda
