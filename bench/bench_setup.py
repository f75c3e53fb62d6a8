"""What bench/run.py needs before it measures: the default model and its Q8_0 / Q4_K variants (made
once with `llmasos quantize`, then reused), and llama-cpp-python (pip-built for this CPU when missing).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# pip builds llama-cpp-python from source: never GGML_NATIVE (its native build and the AVX-512 flags
# die with SIGILL on AVX2-only machines of this kind), and AVX-512 only when the CPU has all of it.
AVX2_FLAGS = ("-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
              "-DGGML_BMI2=ON")
AVX512_FLAGS = AVX2_FLAGS + " -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON"


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def llama_cpp_cmake_args(flags: set) -> str:
    if {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags:
        return AVX512_FLAGS
    return AVX2_FLAGS


def ensure_llama_cpp() -> str:
    """The installed llama-cpp-python version, installing it first when `import llama_cpp` fails."""
    try:
        import llama_cpp
        return llama_cpp.__version__
    except ImportError:
        pass
    args = llama_cpp_cmake_args(cpu_flags())
    cmd = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "llama-cpp-python"]
    print(f"llama-cpp-python is missing: CMAKE_ARGS='{args}' {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "CMAKE_ARGS": args, "FORCE_CMAKE": "1"})
    out = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
                         check=True, capture_output=True, text=True)
    print(f"installed llama-cpp-python {out.stdout.strip()}", flush=True)
    return out.stdout.strip()


def model_cache_dir() -> Path:
    from llmasos import store
    return store.home() / "bench-models"


def ensure_models(types, env) -> dict:
    """{type: path}: the default model (its own type, Q4_1) and each other type quantized from it
    into model_cache_dir() by `llmasos quantize`, reused when present."""
    from llmasos import store
    src = Path(store.resolve(store.DEFAULT_MODEL))
    own = "Q4_1"  # the store's file; checked against its name below
    if own not in src.name:
        raise RuntimeError(f"the default model {src.name} is no longer Q4_1; update bench_setup.py")
    out = {}
    for t in types:
        if t == own:
            out[t] = src
            continue
        dst = model_cache_dir() / f"smollm2-{t}.gguf"
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_suffix(".tmp")
            cmd = [sys.executable, "-m", "llmasos", "quantize", str(src), str(tmp), t]
            print("making", dst.name, ":", " ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, check=True, env=env)
            tmp.replace(dst)
        out[t] = dst
    return out
