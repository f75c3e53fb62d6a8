"""Quantized matrix-product throughput (GMAC/s) under every ISA level this CPU supports, on the default
model's matrix shapes: the figure that says what each level (avx2 maddubs, avx512 VNNI, amx tiles)
buys on one machine. Weights are random, quantized with the core's reference quantizer and packed as
the model packs them; x is [T, cols] float32 (the product quantizes it per call, as the model does).
Levels alternate within each repetition so machine noise hits them alike; the median is printed.

    python bench/isa_kernels.py [--threads 2] [--tokens 1 16 512] [--types Q8_0 Q4_1 Q4_K] [--reps 3]
                                [--precise]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from llmasos import _core, using_isa

TYPE_IDS = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14}
# SmolLM2-135M: q|k|v stacked (576 + 2 * 192 rows), gate|up stacked (2 * 1536), down, the head.
SHAPES = [("qkv", 960, 576), ("gate_up", 3072, 576), ("down", 576, 1536), ("head", 49152, 576)]


def weights(type_id, rows, cols, rng):
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    return np.asarray(_core.quantize(type_id, x.reshape(-1))).reshape(rows, -1)


def time_call(fn, min_s=0.2):
    """Seconds per call: repeat fn until min_s has passed (at least twice), after one warm-up."""
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if n >= 2 and dt >= min_s:
            return dt / n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tokens", type=int, nargs="+", default=[1, 16, 512])
    p.add_argument("--types", nargs="+", default=["Q8_0", "Q4_1", "Q4_K"], choices=sorted(TYPE_IDS))
    p.add_argument("--shapes", nargs="+", default=[s[0] for s in SHAPES if s[0] != "head"],
                   choices=[s[0] for s in SHAPES])
    p.add_argument("--levels", nargs="+", default=None,
                   help="default: every supported level but generic (the scalar reference)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--precise", action="store_true",
                   help="time matmul_precise (the model's Q/K/V: 16-bit activations for Q4_0 ... Q8_0)")
    args = p.parse_args()
    levels = args.levels or [lv for lv in _core.supported_isas() if lv != "generic"]
    rng = np.random.default_rng(0)
    print(f"levels {levels} (default {_core.active_isa()}), threads {args.threads}{', precise' if args.precise else ''}")
    print(f"{'type':6} {'matrix':8} {'T':>5} " + " ".join(f"{lv:>9}" for lv in levels) + "   GMAC/s")
    for tname in args.types:
        tid = TYPE_IDS[tname]
        for sname, rows, cols in [s for s in SHAPES if s[0] in args.shapes]:
            if tname.endswith("_K"):  # 256-element super-blocks: the next multiple of 256
                cols = -(-cols // 256) * 256
            W = _core.WeightMatrix(tid, weights(tid, rows, cols, rng), rows, cols, True, args.threads)
            for T in args.tokens:
                x = rng.standard_normal((T, cols)).astype(np.float32)
                runs = {lv: [] for lv in levels}
                for _ in range(args.reps):
                    for lv in levels:
                        with using_isa(lv):
                            runs[lv].append(time_call(lambda: W.matmul(x, precise=args.precise)))
                macs = rows * cols * T
                cells = [f"{macs / statistics.median(runs[lv]) / 1e9:9.1f}" for lv in levels]
                print(f"{tname:6} {sname:8} {T:5d} " + " ".join(cells) + f"   [{rows}x{cols}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
