"""F32 matrix product GFLOP/s of llmasos (_core.gemm_f32) against numpy's `a @ b` (OpenBLAS) with the
same thread count, at square sizes. Runs alternate between the two so machine noise hits both;
prints the median of each and the ratio llmasos / numpy (on a shared machine the ratio matters).
After each of its calls OpenBLAS's worker threads spin for a while (about 0.1 s) before they sleep,
taking a core from whatever runs next, so each repetition first waits for them to settle, then
wakes both cores with 50 ms of untimed work (on this VM a core idle for 0.3 s runs the next tens
of milliseconds at about 2/3 speed), then times llmasos and numpy (llmasos ends its threads with
each call: nothing of it lingers).

    python bench/gemm_f32.py [--threads 2] [--sizes 1024 2048] [--reps 7] [--isa avx2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


OPENBLAS_SETTLE_S = 0.3
WAKE_S = 0.05


def gflops(flops, fn):
    t0 = time.perf_counter()
    fn()
    return flops / (time.perf_counter() - t0) / 1e9


def wake_cores(core, m, threads):
    """Untimed small products on every thread until WAKE_S has passed."""
    t_end = time.perf_counter() + WAKE_S
    while time.perf_counter() < t_end:
        core.gemm_f32(m, m, threads)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--isa", default=None, help="force an ISA level (default: the best supported)")
    return p.parse_args()


def main():
    args = parse_args()
    # OpenBLAS reads its thread count when numpy is first imported.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if "numpy" in sys.modules:
        sys.exit("bench/gemm_f32.py: numpy was imported before the thread count was set")
    import numpy as np

    from llmasos import _core

    if args.isa:
        _core.select_isa(args.isa)
    print(f"isa {_core.active_isa()}, threads {args.threads}, reps {args.reps}")
    print(f"{'size':>6} {'llmasos GFLOP/s':>16} {'numpy GFLOP/s':>14} {'ratio':>6}")
    rng = np.random.default_rng(0)
    warm = rng.standard_normal((256, 256), dtype=np.float32)
    for n in args.sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        flops = 2.0 * n * n * n
        _core.gemm_f32(a, b, args.threads)  # warm up: page in, start threads
        a @ b
        ours, theirs = [], []
        for _ in range(args.reps):
            time.sleep(OPENBLAS_SETTLE_S)
            wake_cores(_core, warm, args.threads)
            ours.append(gflops(flops, lambda: _core.gemm_f32(a, b, args.threads)))
            theirs.append(gflops(flops, lambda: a @ b))
        g_ours, g_np = statistics.median(ours), statistics.median(theirs)
        print(f"{n:>6} {g_ours:>16.1f} {g_np:>14.1f} {g_ours / g_np:>6.2f}")


if __name__ == "__main__":
    main()
