"""Cost of one batched decode step of N sequences against a single-sequence step, on the engine
(continuous batching over the paged KV cache), plus the single-sequence Session decode for scale.
Issue 4 target on a 2-core machine: a 16-sequence decode step costs <= 3x a 1-sequence step.

    python bench/batch.py [--model NAME_OR_PATH] [--threads 2] [--seqs 1,4,16] [--steps 24]
"""
from __future__ import annotations

import argparse
import statistics
import time

from llmasos import LLM, SamplingParams, _core, store


def decode_step_ms(llm, n_seqs, n_steps, prompt_len=32):
    """Median wall time of a step() in which n_seqs sequences each decode one token."""
    engine = _core.Engine(llm._model, max_batch_tokens=512, max_seqs=max(n_seqs, 1))
    opts = SamplingParams(max_tokens=n_steps + 8, ignore_eos=True).to_core()
    for i in range(n_seqs):
        # Distinct prompts (no prefix sharing) of equal length.
        ids = [(j * 7919 + i * 104729) % 20000 + 100 for j in range(prompt_len)]
        engine.add_request(i, ids, opts)
    while engine.stats()["prompt_tokens"] < n_seqs * prompt_len:  # prefill
        engine.step()
    for _ in range(3):  # warm up
        engine.step()
    times = []
    for _ in range(n_steps):
        t0 = time.perf_counter()
        outs = engine.step()
        times.append(time.perf_counter() - t0)
        assert len(outs) == n_seqs and all(len(o[1]) == 1 for o in outs)
    for i in range(n_seqs):
        engine.cancel(i)
    return 1000 * statistics.median(times)


def session_decode_ms(llm, n_tokens):
    ids = [(j * 7919) % 20000 + 100 for j in range(32)]
    p1 = SamplingParams(max_tokens=1, ignore_eos=True)
    t0 = time.perf_counter()
    llm._run(ids, p1)
    t_prompt = time.perf_counter() - t0
    t0 = time.perf_counter()
    llm._run(ids, SamplingParams(max_tokens=n_tokens + 1, ignore_eos=True))
    return 1000 * (time.perf_counter() - t0 - t_prompt) / n_tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=store.DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seqs", default="1,4,16")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    llm = LLM.from_pretrained(a.model, threads=a.threads, n_ctx=1024)
    counts = [int(s) for s in a.seqs.split(",")]
    if 1 not in counts:
        counts = [1] + counts
    res = {n: [] for n in counts}
    sess = []
    for _ in range(a.reps):  # interleaved, so a noisy neighbour hits every size alike
        sess.append(session_decode_ms(llm, a.steps))
        for n in counts:
            res[n].append(decode_step_ms(llm, n, a.steps))
    base = statistics.median(res[1])
    print(f"model {a.model}, threads {a.threads}, isa {_core.active_isa()}")
    print(f"session decode (single sequence, C++ loop): {statistics.median(sess):7.2f} ms/token")
    for n in counts:
        ms = statistics.median(res[n])
        print(f"engine decode step, {n:3d} sequences: {ms:7.2f} ms  = {ms / base:5.2f}x one sequence, "
              f"{1000 * n / ms:7.1f} tokens/s")
    llm.close()


if __name__ == "__main__":
    main()
