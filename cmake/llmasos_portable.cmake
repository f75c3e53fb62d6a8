# Portability of the build: which ISA levels this target gets (LLMASOS_ISA_LEVELS), each compiler
# family's flags (GCC/Clang vs MSVC/clang-cl), and for Linux wheels a C++ runtime linked statically
# with glibc symbol versions no newer than manylinux_2_28 allows (cmake/glibc_compat/).

# The target architecture: macOS cross builds (cibuildwheel's arm64 on an x86_64 runner) name it in
# CMAKE_OSX_ARCHITECTURES, not CMAKE_SYSTEM_PROCESSOR. A multi-arch (universal2) build gets only the
# portable level.
set(LLMASOS_TARGET_ARCH "${CMAKE_SYSTEM_PROCESSOR}")
if(APPLE AND CMAKE_OSX_ARCHITECTURES)
  list(LENGTH CMAKE_OSX_ARCHITECTURES _llmasos_n_arch)
  if(_llmasos_n_arch EQUAL 1)
    set(LLMASOS_TARGET_ARCH "${CMAKE_OSX_ARCHITECTURES}")
  else()
    set(LLMASOS_TARGET_ARCH "universal")
  endif()
endif()
set(X86 OFF)
if(LLMASOS_TARGET_ARCH MATCHES "^(x86_64|AMD64|amd64|x64)$")
  set(X86 ON)
endif()

# MSVC and clang-cl take MSVC-style flags; everything else (GCC, Clang, AppleClang) GCC-style ones.
set(LLMASOS_MSVC_FLAGS OFF)
if(MSVC)
  set(LLMASOS_MSVC_FLAGS ON)
endif()

# ISA levels: every one the target can run by default. The x86 levels need GCC-style -m flags (the
# kernels test __AVX2__, __FMA__, __F16C__, __AVX512VNNI__, which MSVC's /arch does not all define),
# so MSVC-style compilers build the generic level only.
if(X86 AND NOT LLMASOS_MSVC_FLAGS)
  set(_llmasos_default_levels "generic;avx2;avx512")
else()
  set(_llmasos_default_levels "generic")
endif()
set(LLMASOS_ISA_LEVELS "${_llmasos_default_levels}" CACHE STRING
    "ISA levels to compile, ';' or ',' separated (generic is always built; avx2 and avx512 on x86-64 with GCC/Clang)")
string(REPLACE "," ";" _llmasos_levels "${LLMASOS_ISA_LEVELS}")
set(LLMASOS_ISA_LEVEL_LIST generic)
foreach(_level IN LISTS _llmasos_levels)
  string(STRIP "${_level}" _level)
  if(_level STREQUAL "" OR _level STREQUAL "generic")
    continue()
  endif()
  if(NOT _level MATCHES "^(avx2|avx512)$")
    message(FATAL_ERROR "LLMASOS_ISA_LEVELS: unknown level '${_level}' (known: generic, avx2, avx512)")
  endif()
  if(NOT X86 OR LLMASOS_MSVC_FLAGS)
    message(FATAL_ERROR "LLMASOS_ISA_LEVELS: '${_level}' needs an x86-64 target and a GCC-style compiler "
                        "(target ${LLMASOS_TARGET_ARCH}, compiler ${CMAKE_CXX_COMPILER_ID})")
  endif()
  list(APPEND LLMASOS_ISA_LEVEL_LIST ${_level})
endforeach()
list(REMOVE_DUPLICATES LLMASOS_ISA_LEVEL_LIST)
message(STATUS "llmasos: ISA levels ${LLMASOS_ISA_LEVEL_LIST} (target ${LLMASOS_TARGET_ARCH})")

set(LLMASOS_ISA_FLAGS_avx2 -mavx2 -mfma -mf16c -mbmi2)
set(LLMASOS_ISA_FLAGS_avx512 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni ${LLMASOS_ISA_FLAGS_avx2})

# Flags of every kernel level. No a*b+c -> FMA contraction, so every level rounds each float op alike
# and gives bit-identical results (the canonical order is in csrc/kernels/cpu/quant_dot.h). MSVC
# (VS 2022) does not contract under /fp:precise; clang-cl needs it said.
if(LLMASOS_MSVC_FLAGS)
  set(LLMASOS_KERNEL_FLAGS /O2 /fp:precise)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    list(APPEND LLMASOS_KERNEL_FLAGS /clang:-ffp-contract=off)
  endif()
  set(LLMASOS_CORE_FLAGS "")
  # UTF-8 sources (tokenizer tables), large objects, the real __cplusplus, no min/max macros.
  add_compile_options(/utf-8 /bigobj /Zc:__cplusplus)
  add_compile_definitions(NOMINMAX WIN32_LEAN_AND_MEAN _CRT_SECURE_NO_WARNINGS)
else()
  # -fno-trapping-math lets GCC if-convert float selects (canonical_exp's clamps) into vector
  # blends; it changes no rounding.
  set(LLMASOS_KERNEL_FLAGS -O3 -fno-math-errno -fno-trapping-math -ffp-contract=off)
  set(LLMASOS_CORE_FLAGS -O2)
endif()

# Linux: libstdc++ goes into _core and libllmasos (-static-libstdc++) and stays hidden
# (--exclude-libs), so a wheel needs only glibc and libgcc_s (kept shared: a static unwinder built on
# glibc >= 2.35 calls _dl_find_object) from the system.
set(_llmasos_linux_gnu OFF)
if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  set(_llmasos_linux_gnu ON)
endif()
option(LLMASOS_STATIC_CXX_RUNTIME "Link libstdc++ statically into the Linux libraries" ${_llmasos_linux_gnu})

# On a build machine whose glibc is newer than 2.28 (manylinux_2_28's), LLMASOS_GLIBC_COMPAT binds
# the glibc symbols whose default versions are newer to their old versions (csrc/compat/glibc_compat.cc),
# so `auditwheel repair --plat manylinux_2_28_x86_64` holds. Inside a manylinux_2_28 image it is off.
set(_llmasos_new_glibc OFF)
if(_llmasos_linux_gnu AND LLMASOS_TARGET_ARCH MATCHES "^(x86_64|aarch64)$")
  include(CheckCXXSourceCompiles)
  check_cxx_source_compiles("
    #include <features.h>
    #if !defined(__GLIBC__) || (__GLIBC__ == 2 && __GLIBC_MINOR__ <= 28)
    #error glibc 2.28 or older, or not glibc
    #endif
    int main() { return 0; }" LLMASOS_GLIBC_NEWER_THAN_2_28)
  if(LLMASOS_GLIBC_NEWER_THAN_2_28)
    set(_llmasos_new_glibc ON)
  endif()
endif()
option(LLMASOS_GLIBC_COMPAT "Bind glibc symbols newer than 2.28 to their old versions (Linux x86_64/aarch64)"
       ${_llmasos_new_glibc})
# Every glibc symbol (of ours or of the static libstdc++) whose default version is newer than 2.28;
# tests/test_wheel.py fails when a new one appears (auditwheel then refuses manylinux_2_28).
# (pthread_cond_clockwait and pthread_mutex_clocklock, GLIBC_2.30, have no old version: a
# std::condition_variable wait_for, or wait_until on steady_clock, uses them; wait_until on a
# std::chrono::system_clock deadline does not.)
set(LLMASOS_GLIBC_WRAPPED __libc_single_threaded pow exp log stat lstat fstat fstat64 arc4random
    pthread_create pthread_join pthread_detach pthread_once pthread_key_create __pthread_key_create
    pthread_key_delete pthread_getspecific pthread_setspecific pthread_mutex_trylock
    pthread_rwlock_rdlock pthread_rwlock_wrlock pthread_rwlock_unlock pthread_rwlock_tryrdlock
    pthread_rwlock_trywrlock pthread_rwlock_init pthread_rwlock_destroy)

# Applies the runtime choices to a shared library or module that links llmasos_core.
function(llmasos_portable_link target)
  if(LLMASOS_STATIC_CXX_RUNTIME)
    target_link_options(${target} PRIVATE -static-libstdc++ -Wl,--exclude-libs,ALL)
  endif()
  if(LLMASOS_GLIBC_COMPAT)
    # A plain object: .symver is top-level asm, which LTO (pybind11 turns it on for _core) loses.
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/csrc/compat/glibc_compat.cc)
    set_source_files_properties(${PROJECT_SOURCE_DIR}/csrc/compat/glibc_compat.cc PROPERTIES COMPILE_OPTIONS -fno-lto)
    foreach(sym IN LISTS LLMASOS_GLIBC_WRAPPED)
      target_link_options(${target} PRIVATE -Wl,--wrap=${sym})
    endforeach()
    # The old pthread versions live in libpthread.so.0 on glibc < 2.34.
    target_link_options(${target} PRIVATE -Wl,--push-state,--no-as-needed -l:libpthread.so.0 -Wl,--pop-state)
  endif()
endfunction()
