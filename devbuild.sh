#!/usr/bin/env bash
# Development build of the C++ core into build/dev-$1 (default "main"), without pip. Extra arguments
# go to CMake (e.g. -DLLMASOS_CUDA=ON; CUDA is off here unless asked, to keep the loop fast); JOBS
# sets the parallel compile jobs (default 2).
# Use it with: LLMASOS_DEV_CORE=build/dev-NAME PYTHONPATH=python python -m pytest tests/...
set -euo pipefail
# The interpreter whose pybind11 builds the module: $PYTHON, else python, else python3.
py=${PYTHON:-$(command -v python || command -v python3 || true)}
[[ -n "$py" ]] || { echo "devbuild.sh: no python or python3 on PATH (set PYTHON)" >&2; exit 1; }
name=${1:-main}
shift || true
cd "$(dirname "$0")"
cmake -S . -B build/dev-$name -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLMASOS_CUDA=OFF \
  -Dpybind11_DIR="$("$py" -c 'import pybind11; print(pybind11.get_cmake_dir())')" "$@" >/dev/null
cmake --build build/dev-$name -j"${JOBS:-2}"
