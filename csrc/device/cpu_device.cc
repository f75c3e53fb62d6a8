// The CPU device: host memory and the active ISA level's rmsnorm / rope kernels.
#include <cstdlib>
#include <cstring>
#include <new>

#include "device/device.h"
#include "kernels/cpu/kernel_table.h"

namespace llmasos {
namespace {

class CpuDevice final : public Device {
 public:
  DeviceKind kind() const override { return DeviceKind::CPU; }
  std::string name() const override { return "cpu"; }
  void* alloc(size_t bytes) override {
    void* p = std::malloc(bytes ? bytes : 1);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void free(void* p) noexcept override { std::free(p); }
  void copy_from_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void synchronize() override {}
  void rmsnorm(float* y, const float* x, const float* w, int64_t rows, int64_t n, float eps) override {
    const auto& kt = cpu::kernels();
    for (int64_t r = 0; r < rows; ++r) kt.rmsnorm(y + r * n, x + r * n, w, n, eps);
  }
  void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t pos0,
            const cpu::RopeParams& p) override {
    cpu::rope_inplace(x, T, n_heads, head_dim, pos0, p);
  }
};

}  // namespace

Device& cpu_device() {
  static CpuDevice d;
  return d;
}

}  // namespace llmasos
