# The CUDA switch: LLMASOS_CUDA=AUTO (on when nvcc is found), ON (required) or OFF. When it resolves
# on, cuda/ builds llmasos_cuda and the core defines LLMASOS_WITH_CUDA (device/device.cc uses it).
set(LLMASOS_CUDA "AUTO" CACHE STRING "Build the CUDA kernels: AUTO (when nvcc is found), ON or OFF")
set_property(CACHE LLMASOS_CUDA PROPERTY STRINGS AUTO ON OFF)

set(LLMASOS_WITH_CUDA OFF)
string(TOUPPER "${LLMASOS_CUDA}" _llmasos_cuda)
if(_llmasos_cuda STREQUAL "AUTO")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(LLMASOS_WITH_CUDA ON)
  else()
    message(STATUS "llmasos: CUDA off (no CUDA compiler found)")
  endif()
elseif(LLMASOS_CUDA)
  set(LLMASOS_WITH_CUDA ON)
endif()

if(LLMASOS_WITH_CUDA)
  # Real code for Turing, Ampere and Hopper; PTX for 9.0 lets newer GPUs JIT-compile it.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 75-real 80-real 90)
  endif()
  enable_language(CUDA)
  message(STATUS "llmasos: CUDA on (${CMAKE_CUDA_COMPILER}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  add_subdirectory(cuda)
endif()
