"""The device abstraction (csrc/device, cuda/): RMSNorm and RoPE on the CPU device against numpy, on
CUDA devices against the CPU device (skipped without a CUDA build and a GPU), and the CUDA build
itself compiled with nvcc (skipped without nvcc). bench/hw_check.sh runs this file on a GPU."""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from llmasos import InvalidArgumentError, _core

ROOT = Path(__file__).resolve().parent.parent


def _cuda_devices():
    n = _core.cuda_device_count() if _core.cuda_compiled() else 0
    return [f"cuda:{i}" for i in range(n)]


CUDA = _cuda_devices()
needs_gpu = pytest.mark.skipif(not CUDA, reason="needs a CUDA build (LLMASOS_CUDA=ON) and a GPU")


def rmsnorm_ref(x, w, eps):
    x64 = x.astype(np.float64)
    return (x64 / np.sqrt((x64 * x64).mean(axis=-1, keepdims=True) + eps) * w).astype(np.float32)


def rope_ref(x, pos0, rope_dim, base, neox, freq_factors=None):
    T, H, D = x.shape
    half = rope_dim // 2
    inv = base ** (-2.0 * np.arange(half) / rope_dim)
    if freq_factors is not None:
        inv = inv / freq_factors
    ang = (pos0 + np.arange(T))[:, None] * inv[None, :]  # [T][half]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    y = x.astype(np.float64).copy()
    a = np.arange(half) if neox else 2 * np.arange(half)
    b = a + half if neox else a + 1
    x0, x1 = y[:, :, a].copy(), y[:, :, b].copy()
    y[:, :, a] = x0 * c - x1 * s
    y[:, :, b] = x0 * s + x1 * c
    return y.astype(np.float32)


def _rng():
    return np.random.default_rng(1234)


@pytest.mark.parametrize("rows,n", [(1, 1), (3, 7), (5, 576), (2, 4099)])
def test_cpu_rmsnorm_matches_numpy(rows, n):
    r = _rng()
    x = r.uniform(-3, 3, (rows, n)).astype(np.float32) + 0.1
    w = r.uniform(0.5, 1.5, n).astype(np.float32)
    np.testing.assert_allclose(_core.device_rmsnorm("cpu", x, w, 1e-5), rmsnorm_ref(x, w, 1e-5), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("neox", [False, True])
@pytest.mark.parametrize("T,H,D,rope_dim,pos0", [(1, 1, 2, 2, 0), (3, 5, 64, 64, 7), (4, 3, 80, 48, 4000)])
def test_cpu_rope_matches_numpy(neox, T, H, D, rope_dim, pos0):
    x = _rng().uniform(-2, 2, (T, H, D)).astype(np.float32)
    got = _core.device_rope("cpu", x, pos0, rope_dim, 10000.0, neox)
    np.testing.assert_allclose(got, rope_ref(x, pos0, rope_dim, 10000.0, neox), rtol=1e-4, atol=1e-4)


def test_unknown_or_missing_device_is_clear_error():
    with pytest.raises(InvalidArgumentError, match="unknown device"):
        _core.device_name("tpu")
    if not CUDA:
        with pytest.raises(InvalidArgumentError, match="CUDA"):
            _core.device_rmsnorm("cuda", np.ones((1, 4), np.float32), np.ones(4, np.float32), 1e-5)


@needs_gpu
@pytest.mark.parametrize("device", CUDA or ["cuda:0"])
@pytest.mark.parametrize("rows,n", [(1, 1), (3, 7), (17, 576), (2, 4099), (64, 8192)])
def test_cuda_rmsnorm_matches_cpu(device, rows, n):
    r = _rng()
    x = r.uniform(-3, 3, (rows, n)).astype(np.float32) + 0.1
    w = r.uniform(0.5, 1.5, n).astype(np.float32)
    cpu = _core.device_rmsnorm("cpu", x, w, 1e-6)
    np.testing.assert_allclose(_core.device_rmsnorm(device, x, w, 1e-6), cpu, rtol=1e-5, atol=1e-6)


@needs_gpu
@pytest.mark.parametrize("device", CUDA or ["cuda:0"])
@pytest.mark.parametrize("neox", [False, True])
@pytest.mark.parametrize("T,H,D,rope_dim,pos0", [(1, 1, 2, 2, 0), (3, 5, 64, 64, 7), (9, 3, 80, 48, 4000),
                                                 (33, 9, 128, 128, 100000)])
def test_cuda_rope_matches_cpu(device, neox, T, H, D, rope_dim, pos0):
    x = _rng().uniform(-2, 2, (T, H, D)).astype(np.float32)
    ff = np.linspace(1.0, 8.0, rope_dim // 2).astype(np.float32)
    for factors in (None, ff):
        cpu = _core.device_rope("cpu", x, pos0, rope_dim, 500000.0, neox, factors)
        got = _core.device_rope(device, x, pos0, rope_dim, 500000.0, neox, factors)
        np.testing.assert_allclose(got, cpu, rtol=1e-5, atol=2e-6)


def _nvcc():
    return shutil.which("nvcc") or next((p for p in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(p)), None)


@pytest.mark.skipif(_nvcc() is None or shutil.which("cmake") is None, reason="needs nvcc and cmake")
def test_cuda_build_compiles(tmp_path):
    """LLMASOS_CUDA=ON configures and compiles the CUDA kernels and the CUDA-aware device layer."""
    build = tmp_path / "build"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    cfg = subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Release",
                          "-DLLMASOS_BUILD_PYTHON=OFF", "-DLLMASOS_CUDA=ON",
                          f"-DCMAKE_CUDA_COMPILER={_nvcc()}"], capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    assert "llmasos: CUDA on" in cfg.stdout
    b = subprocess.run(["cmake", "--build", str(build), "-j2", "--target", "llmasos_cuda", "llmasos_device"],
                       capture_output=True, text=True, timeout=900)
    assert b.returncode == 0, b.stdout + b.stderr
    assert list(build.rglob("libllmasos_cuda.a"))


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_cuda_off_configures_without_nvcc_lookup(tmp_path):
    cfg = subprocess.run(["cmake", "-S", str(ROOT), "-B", str(tmp_path / "b"), "-DLLMASOS_BUILD_PYTHON=OFF",
                          "-DLLMASOS_CUDA=OFF"], capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    assert "CUDA on" not in cfg.stdout
