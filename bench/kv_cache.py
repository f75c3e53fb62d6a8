"""The KV cache types side by side on one model: quality against an F32 cache (teacher-forced
next-token distributions over a text: mean / max KL, top-1 agreement, mean NLL) and the batched
decode step of N sequences as their contexts grow, F16 and Q8_0 engines alternated in one process
(chunks of steps at matched contexts), so the host's phases hit both alike.

    python bench/kv_cache.py [--model NAME_OR_PATH] [--seqs 16] [--steps 800] [--text FILE]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from llmasos import LLM, SamplingParams, _core, store

TYPES = ("f16", "q8_0")


def log_softmax(x):
    x = x.astype(np.float64) - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def quality(model, text, n_tokens=1000):
    logp = {}
    for t in ("f32",) + TYPES:
        with LLM.from_pretrained(model, n_ctx=2048, threads=2, kv_cache_type=t) as m:
            ids = m.tokenize(text)[:n_tokens]
            logp[t] = log_softmax(m.logits(ids))
    ids = np.array(ids)
    ref = logp["f32"]
    nll = lambda lp: -lp[np.arange(len(ids) - 1), ids[1:]].mean()
    print(f"quality over {len(ids)} tokens against an F32 cache (F32 NLL {nll(ref):.4f}):")
    for t in TYPES:
        kl = (np.exp(ref) * (ref - logp[t])).sum(axis=-1)
        top = (ref.argmax(-1) == logp[t].argmax(-1)).mean()
        print(f"  {t:5s} mean KL {kl.mean():.2e}  max KL {kl.max():.2e}  top-1 agreement {top:.4f}  "
              f"NLL {nll(logp[t]):.4f}")


def decode_steps(model, n_seqs, steps, chunk=50):
    engines = []
    for t in TYPES:
        llm = LLM.from_pretrained(model, threads=2, n_ctx=steps + 64, kv_cache_type=t)
        e = _core.Engine(llm._model, max_batch_tokens=512, max_seqs=n_seqs)
        opts = SamplingParams(max_tokens=steps + 16, ignore_eos=True).to_core()
        for i in range(n_seqs):
            e.add_request(i, [(j * 7919 + i * 104729) % 20000 + 100 for j in range(32)], opts)
        while len(e.step()) < n_seqs:  # prefill
            pass
        engines.append((llm, e))
    print(f"decode step of {n_seqs} sequences, ms (each row: {chunk} steps of each, alternated):")
    ratios = []
    for s0 in range(0, steps, chunk):
        ms = []
        for _, e in engines:
            t0 = time.perf_counter()
            for _ in range(chunk):
                e.step()
            ms.append(1000 * (time.perf_counter() - t0) / chunk)
        ratios.append(ms[1] / ms[0])
        print(f"  context {32 + s0 + chunk:5d}: f16 {ms[0]:6.2f}  q8_0 {ms[1]:6.2f}  q8_0 / f16 {ratios[-1]:.3f}")
    print(f"  q8_0 / f16 median {statistics.median(ratios):.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=store.DEFAULT_MODEL)
    ap.add_argument("--seqs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--text", default=str(Path(__file__).resolve().parents[1] / "README.md"))
    a = ap.parse_args()
    path = store.resolve(a.model)
    quality(path, Path(a.text).read_text())
    decode_steps(path, a.seqs, a.steps)


if __name__ == "__main__":
    main()
