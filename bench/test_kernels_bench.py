"""Kernel micro-benchmarks (pytest-benchmark): llmasos F32 matrix product against numpy, and attention
against torch's scaled_dot_product_attention at the default model's shapes. Timings only, no timing asserts.

    python -m pytest bench/test_kernels_bench.py [--benchmark-json=out.json]
Environment: LLMASOS_BENCH_THREADS (default 2) threads for llmasos and torch (bench/run.py also sets
OPENBLAS/OMP/MKL_NUM_THREADS for numpy to it); LLMASOS_BENCH_QUICK=1 runs
the smallest case of each family. Each benchmark's extra_info names its family, case and side.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from llmasos import _core

THREADS = int(os.environ.get("LLMASOS_BENCH_THREADS", "2"))
QUICK = os.environ.get("LLMASOS_BENCH_QUICK") == "1"
# SmolLM2-135M: 9 query heads sharing 3 key/value heads of 64.
N_HEAD, N_KV, HEAD_DIM = 9, 3, 64

GEMM_SIZES = [1024] if QUICK else [1024, 2048]
# (case, new tokens T, cached positions pos0)
ATTN_CASES = [("decode-512", 1, 512)] if QUICK else [
    ("decode-512", 1, 512), ("decode-2048", 1, 2048), ("prefill-512", 512, 0)]


def rand(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def run(benchmark, family, case, side, fn):
    benchmark.group = f"{family} {case}"
    benchmark.extra_info.update(family=family, case=case, side=side, threads=THREADS)
    return benchmark(fn)


@pytest.mark.parametrize("n", GEMM_SIZES)
@pytest.mark.parametrize("side", ["llmasos", "numpy"])
def test_gemm_f32(benchmark, side, n):
    """C[n,n] = A[n,n] @ B[n,n] in float32."""
    rng = np.random.default_rng(n)
    a, b = rand(rng, n, n), rand(rng, n, n)
    if side == "numpy":
        run(benchmark, "gemm_f32", f"{n}^3", side, lambda: a @ b)
        return
    if not hasattr(_core, "gemm_f32"):
        pytest.skip("this build of llmasos._core has no gemm_f32(a, b, threads) yet")
    ref = a @ b
    out = run(benchmark, "gemm_f32", f"{n}^3", side, lambda: _core.gemm_f32(a, b, THREADS))
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-3 * np.sqrt(n))  # same work on both sides


@pytest.mark.parametrize("case,T,pos0", ATTN_CASES, ids=[c[0] for c in ATTN_CASES])
@pytest.mark.parametrize("side", ["llmasos", "torch"])
def test_attention(benchmark, side, case, T, pos0):
    """Causal GQA attention of T new queries over pos0 + T positions."""
    rng = np.random.default_rng(T + pos0)
    S = pos0 + T
    q, k, v = rand(rng, T, N_HEAD, HEAD_DIM), rand(rng, S, N_KV, HEAD_DIM), rand(rng, S, N_KV, HEAD_DIM)
    if side == "llmasos":
        # Keys and values stored once in an F16 cache (the default) with a pool kept, as in a model.
        pages = _core.KvPages(k, v, "f16", THREADS)
        run(benchmark, "attention", case, side, lambda: pages.attention(q))
        return
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    torch.set_num_threads(THREADS)
    # torch's own layout [batch, heads, tokens, d], made once outside the timed call.
    tq, tk, tv = (torch.from_numpy(x).permute(1, 0, 2).unsqueeze(0).contiguous() for x in (q, k, v))
    # is_causal aligns the mask top-left, so it is right only when the queries start at 0; a single
    # query at the end of the cache sees every position anyway.
    causal = pos0 == 0 and T > 1
    if T > 1 and pos0 > 0:
        raise ValueError("no case of queries in the middle of the cache")

    def sdpa():
        with torch.inference_mode():
            return F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal, enable_gqa=True)

    out = run(benchmark, "attention", case, side, sdpa)
    ours = _core.attention(q, k, v, pos0, THREADS, "f16")
    np.testing.assert_allclose(out[0].permute(1, 0, 2).numpy(), ours, rtol=1e-3, atol=2e-3)
