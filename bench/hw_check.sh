#!/usr/bin/env bash
# Hardware check: what a machine with a GPU, AVX-512 or AMX can verify that a plain AVX2 box cannot.
# Builds the core (with CUDA when nvcc is found) into build/dev-hw, then runs, under every ISA level
# the CPU supports (the fixtures pick them up: avx512 and amx run for real where present):
#   1. the CPU's features and what the core makes of them (runtime_info: level, AMX status);
#   2. the GPU tests (tests/test_device.py: CUDA RMSNorm / RoPE against the CPU device);
#   3. the kernel and model tests (x8 products against their numpy replay, bitwise equality across
#      levels, attention, F32 GEMM, tiny models against transformers);
#   4. bench/isa_kernels.py: quantized matrix-product GMAC/s per level.
# Needs cmake, ninja, pybind11, numpy, pytest, gguf, torch and transformers. Usage:
#   bench/hw_check.sh [LOG_DIR]     # CUDA_ARCHS=90 builds for sm_90 only; JOBS=N compile jobs
set -uo pipefail
cd "$(dirname "$0")/.."
log=${1:-build/hw-check}
mkdir -p "$log"
threads=$(( $(nproc) < 8 ? $(nproc) : 8 ))
step() { echo; echo "=== $*"; }
# $PYTHON, else python, else python3 (some machines have only python3); devbuild.sh takes the same.
export PYTHON=${PYTHON:-$(command -v python || command -v python3)}
python() { "$PYTHON" "$@"; }

step "CPU"
grep -m1 "model name" /proc/cpuinfo
nproc
grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512[a-z_0-9]*|amx[a-z_0-9]*|avx_vnni)$' | tr '\n' ' '
echo
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv

step "build"
cuda=OFF
if command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then cuda=ON; fi
archs=()
if [[ -n "${CUDA_ARCHS:-}" ]]; then archs=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS"); fi
start=$SECONDS
JOBS=${JOBS:-$(nproc)} ./devbuild.sh hw -DLLMASOS_CUDA=$cuda "${archs[@]}" > "$log/build.log" 2>&1 \
  || { tail -40 "$log/build.log"; exit 1; }
echo "built in $((SECONDS - start)) s (CUDA $cuda)"
export LLMASOS_DEV_CORE=build/dev-hw PYTHONPATH=python:tests${PYTHONPATH:+:$PYTHONPATH}

step "runtime"
python - <<'PY'
import llmasos
from llmasos import _core
print(llmasos.runtime_info())
print("emulated:", _core.emulated_isas())
if _core.cuda_compiled():
    n = _core.cuda_device_count()
    print(f"CUDA devices: {n}", *[_core.device_name(f"cuda:{i}") for i in range(n)], sep="\n  ")
PY

rc=0
step "GPU tests"
python -m pytest -q -rs tests/test_device.py 2>&1 | tee "$log/gpu_tests.log" | tail -8 || rc=1
step "kernel and model tests, every level"
python -m pytest -q -rs --maxfail=30 tests/test_packed_x8.py tests/test_isa_determinism.py tests/test_quant_kernels.py \
  tests/test_attention_kernel.py tests/test_gemm_f32.py tests/test_architectures.py \
  "tests/test_api.py::test_amx_level_unavailable_is_a_clear_error" 2>&1 | tee "$log/cpu_tests.log" | tail -15 || rc=1

step "kernel speed per level ($threads threads)"
python bench/isa_kernels.py --threads "$threads" --tokens 1 16 512 --types Q8_0 Q4_1 Q4_K --reps 2 \
  2>&1 | tee "$log/isa_kernels.txt" || rc=1
python bench/isa_kernels.py --threads 1 --tokens 16 512 --types Q8_0 Q4_1 --shapes gate_up --reps 2 \
  2>&1 | tee -a "$log/isa_kernels.txt" || rc=1
exit $rc
