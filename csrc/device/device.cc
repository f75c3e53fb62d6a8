// Device lookup: the CPU device always; CUDA devices through cuda/ when built with LLMASOS_CUDA.
#include <string>

#include "device/device.h"
#include "llmasos/errors.hpp"

#ifdef LLMASOS_WITH_CUDA
namespace llmasos::cuda {
int device_count();          // cuda/cuda_device.cu
Device& device(int ordinal);  // throws InvalidArgumentError for a bad ordinal
}  // namespace llmasos::cuda
#endif

namespace llmasos {

bool cuda_compiled() {
#ifdef LLMASOS_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef LLMASOS_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

Device& cuda_device(int ordinal) {
#ifdef LLMASOS_WITH_CUDA
  return cuda::device(ordinal);
#else
  (void)ordinal;
  throw InvalidArgumentError("this build of llmasos has no CUDA support (build with -DLLMASOS_CUDA=ON)");
#endif
}

Device& device_by_name(const std::string& name) {
  if (name == "cpu") return cpu_device();
  if (name == "cuda") return cuda_device(0);
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() < 9 &&
      name.find_first_not_of("0123456789", 5) == std::string::npos)
    return cuda_device(std::stoi(name.substr(5)));
  throw InvalidArgumentError("unknown device '" + name + "' (known: cpu, cuda, cuda:N)");
}

}  // namespace llmasos
