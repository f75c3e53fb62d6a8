#!/usr/bin/env bash
# GPU check: build the core with CUDA (LLMASOS_CUDA=ON) into build/dev-cuda and run the device tests,
# which compare the CUDA RMSNorm / RoPE kernels with the CPU ones on every visible GPU. Needs nvcc,
# cmake, ninja, pybind11, numpy and pytest. Extra arguments go to pytest.
#   bench/gpu_check.sh            # CUDA_ARCHS=90 bench/gpu_check.sh builds for sm_90 only (faster)
set -euo pipefail
cd "$(dirname "$0")/.."
archs=()
if [[ -n "${CUDA_ARCHS:-}" ]]; then archs=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS"); fi
./devbuild.sh cuda -DLLMASOS_CUDA=ON "${archs[@]}"
export LLMASOS_DEV_CORE=build/dev-cuda PYTHONPATH=python
python - <<'PY'
from llmasos import _core
assert _core.cuda_compiled(), "build/dev-cuda was built without CUDA"
n = _core.cuda_device_count()
print(f"CUDA devices: {n}", *[_core.device_name(f"cuda:{i}") for i in range(n)], sep="\n  ")
if n == 0:
    print("no GPU visible: the GPU tests will skip")
PY
python -m pytest -v -rs tests/test_device.py "$@"
