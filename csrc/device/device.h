// The device abstraction: model code asks a Device for an op over buffers in that device's memory,
// and the CPU (always) or CUDA (when built with LLMASOS_CUDA and a GPU is present) implementation
// answers. Only RMSNorm and RoPE exist on both so far; the forward pass still calls the CPU kernels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/rope.h"

namespace llmasos {

enum class DeviceKind { CPU, CUDA };

class Device {
 public:
  virtual ~Device() = default;
  virtual DeviceKind kind() const = 0;
  virtual std::string name() const = 0;  // "cpu", "cuda:0 (NVIDIA H100 ...)"

  // Memory in this device's address space (bytes). free(nullptr) is a no-op.
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p) noexcept = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  // Waits for the work queued so far (a no-op on the CPU).
  virtual void synchronize() = 0;

  // y[r] = x[r] / rms(x[r]) * w for `rows` rows of n floats (y may alias x). Device pointers.
  virtual void rmsnorm(float* y, const float* x, const float* w, int64_t rows, int64_t n,
                       float eps) = 0;
  // RoPE in place on x: [T][n_heads][head_dim], token t at position pos0 + t. p.freq_factors, if
  // set, must point to rope_dim/2 floats in this device's memory.
  virtual void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t pos0,
                    const cpu::RopeParams& p) = 0;
};

// The CPU device (the active ISA level's kernels).
Device& cpu_device();
// True when this build contains the CUDA kernels.
bool cuda_compiled();
// Number of CUDA devices usable now (0 without CUDA support, a driver or a GPU).
int cuda_device_count();
// The CUDA device `ordinal`; throws InvalidArgumentError when there is none.
Device& cuda_device(int ordinal = 0);
// "cpu", "cuda" (= "cuda:0") or "cuda:N".
Device& device_by_name(const std::string& name);

// A buffer of T in a device's memory (RAII).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer(Device& d, size_t n) : d_(&d), n_(n), p_(static_cast<T*>(d.alloc(n * sizeof(T)))) {}
  DeviceBuffer(Device& d, const std::vector<T>& host) : DeviceBuffer(d, host.size()) { upload(host.data()); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { d_->free(p_); }
  T* data() { return p_; }
  size_t size() const { return n_; }
  void upload(const T* host) { d_->copy_from_host(p_, host, n_ * sizeof(T)); }
  void download(T* host) { d_->copy_to_host(host, p_, n_ * sizeof(T)); }

 private:
  Device* d_;
  size_t n_;
  T* p_;
};

}  // namespace llmasos
