"""Decode and prefill tokens/s of llmasos against llama-cpp-python on the same GGUF, same threads,
in one run. Prints both and the ratios (absolute times vary on a shared machine; ratios matter).

    python bench/decode_prefill.py [--model NAME_OR_PATH] [--threads 2] [--prefill 512] [--decode 128]
"""
from __future__ import annotations

import argparse
import statistics
import time

from llmasos import LLM, SamplingParams, store


def forget_cached_prompts(llm):
    """generate() runs on the batched engine: drop its prefix cache (and the session's) so every
    repetition computes its prompt again."""
    llm._session.reset()
    if llm._engine is not None:
        llm._engine.reset_prefix_cache()


def bench_llmasos(path, threads, n_prefill, n_decode, reps):
    llm = LLM.from_pretrained(path, threads=threads, n_ctx=2048)
    prompt = [(i * 7919) % 10000 + 100 for i in range(n_prefill)]
    llm.logits(prompt[:8])  # warm up
    pre, dec = [], []
    for r in range(reps):
        forget_cached_prompts(llm)
        t0 = time.perf_counter()
        llm.generate([prompt], SamplingParams(max_tokens=1, ignore_eos=True))
        pre.append(n_prefill / (time.perf_counter() - t0))
        forget_cached_prompts(llm)
        short = prompt[:8]
        t0 = time.perf_counter()
        llm.generate([short], SamplingParams(max_tokens=1, ignore_eos=True))
        t_prompt = time.perf_counter() - t0
        forget_cached_prompts(llm)
        t0 = time.perf_counter()
        out = llm.generate([short], SamplingParams(max_tokens=n_decode + 1, ignore_eos=True))[0]
        dt = time.perf_counter() - t0 - t_prompt
        dec.append(n_decode / dt)
        assert len(out.token_ids) == n_decode + 1
    llm.close()
    return statistics.median(pre), statistics.median(dec)


def bench_llama_cpp(path, threads, n_prefill, n_decode, reps):
    from llama_cpp import Llama
    llm = Llama(model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                n_batch=512, verbose=False)
    prompt = [(i * 7919) % 10000 + 100 for i in range(n_prefill)]
    pre, dec = [], []
    for r in range(reps):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        pre.append(n_prefill / (time.perf_counter() - t0))
        llm.reset()
        llm.eval(prompt[:8])
        t0 = time.perf_counter()
        tok = prompt[8]
        for _ in range(n_decode):
            llm.eval([tok])
            tok = int(llm.scores[llm.n_tokens - 1].argmax())
        dec.append(n_decode / (time.perf_counter() - t0))
    return statistics.median(pre), statistics.median(dec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=store.DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    path = store.resolve(a.model)
    ours = bench_llmasos(path, a.threads, a.prefill, a.decode, a.reps)
    print(f"llmasos:          prefill {ours[0]:8.1f} tok/s   decode {ours[1]:7.1f} tok/s")
    try:
        theirs = bench_llama_cpp(path, a.threads, a.prefill, a.decode, a.reps)
    except ImportError:
        print("llama-cpp-python is not installed; no comparison")
        return
    print(f"llama-cpp-python: prefill {theirs[0]:8.1f} tok/s   decode {theirs[1]:7.1f} tok/s")
    print(f"ratio (llmasos / llama-cpp-python): prefill {ours[0] / theirs[0]:.2f}x   decode {ours[1] / theirs[1]:.2f}x")


if __name__ == "__main__":
    main()
