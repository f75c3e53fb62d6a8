// The CUDA implementation of Device: cudaMalloc'd memory, synchronous copies, and the rmsnorm /
// rope kernels on the default stream. One instance per GPU, created on first use.
#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/kernels.h"
#include "device/device.h"

namespace llmasos::cuda {
namespace {

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(int ordinal) : ordinal_(ordinal) {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, ordinal), "cudaGetDeviceProperties");
    name_ = "cuda:" + std::to_string(ordinal) + " (" + prop.name + ")";
  }
  DeviceKind kind() const override { return DeviceKind::CUDA; }
  std::string name() const override { return name_; }
  void* alloc(size_t bytes) override {
    use();
    void* p = nullptr;
    check(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
    return p;
  }
  void free(void* p) noexcept override {
    if (p) cudaFree(p);
  }
  void copy_from_host(void* dst, const void* src, size_t bytes) override {
    use();
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    use();
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
  }
  void synchronize() override {
    use();
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }
  void rmsnorm(float* y, const float* x, const float* w, int64_t rows, int64_t n, float eps) override {
    use();
    launch_rmsnorm(y, x, w, rows, n, eps, nullptr);
  }
  void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t pos0,
            const cpu::RopeParams& p) override {
    use();
    launch_rope(x, T, n_heads, head_dim, pos0, p.rope_dim, p.freq_base, p.freq_factors,
                p.style == cpu::RopeStyle::Neox, nullptr);
  }

 private:
  void use() { check(cudaSetDevice(ordinal_), "cudaSetDevice"); }
  int ordinal_;
  std::string name_;
};

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no GPU: clear the sticky error, report none
    return 0;
  }
  return n;
}

Device& device(int ordinal) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<CudaDevice>> devices;
  std::lock_guard<std::mutex> lock(mu);
  const int n = device_count();
  if (ordinal < 0 || ordinal >= n)
    throw InvalidArgumentError("no CUDA device " + std::to_string(ordinal) + " (" +
                               std::to_string(n) + " found)");
  if (devices.size() < static_cast<size_t>(n)) devices.resize(n);
  if (!devices[ordinal]) devices[ordinal] = std::make_unique<CudaDevice>(ordinal);
  return *devices[ordinal];
}

}  // namespace llmasos::cuda
