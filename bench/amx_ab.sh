#!/usr/bin/env bash
# Paired A/B of two versions of the AMX tile kernels (bench/amx_ab.cc): each a git revision or a
# file of csrc/kernels/cpu/quant_gemm_amx.cc, compiled side by side into one harness with the core
# of a development build (./devbuild.sh NAME), so both run in one process, alternated.
#
#   bench/amx_ab.sh A B [threads] [rounds]       e.g.  bench/amx_ab.sh HEAD~1 HEAD 2 15
#
# LLMASOS_AB_BUILD: the development build to link (default build/dev-main).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { echo "usage: bench/amx_ab.sh A B [threads] [rounds]" >&2; exit 2; }
build=${LLMASOS_AB_BUILD:-build/dev-main}
[[ -f $build/libllmasos_core.a ]] || { echo "amx_ab.sh: no $build/libllmasos_core.a (run ./devbuild.sh first)" >&2; exit 1; }
out=$build/amx_ab
mkdir -p "$out"
# The amx level's flags (CMakeLists.txt); the tile instructions are inline assembly.
flags=(-O3 -DNDEBUG -std=gnu++17 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c
       -mbmi2 -fno-math-errno -fno-trapping-math -ffp-contract=off -Icsrc -DLLMASOS_AMX_BASE=avx512
       -DLLMASOS_AMX_EMULATE=0)
objs=()
for v in a b; do
  src=$1; shift
  if [[ -f $src ]]; then cp "$src" "$out/$v.cc"; else git show "$src:csrc/kernels/cpu/quant_gemm_amx.cc" > "$out/$v.cc"; fi
  g++ "${flags[@]}" -DLLMASOS_ISA_NS=amx_ab_$v -c "$out/$v.cc" -o "$out/$v.o"
  objs+=("$out/$v.o")
done
g++ -O2 -std=gnu++17 -Icsrc bench/amx_ab.cc "${objs[@]}" "$build/libllmasos_core.a" -lpthread -o "$out/amx_ab"
"$out/amx_ab" "$@"
