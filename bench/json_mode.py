"""What JSON mode (SamplingParams.json_object) costs per engine step: the median decode step of N
sequences sampling at temperature 0.8 with and without the JSON token mask, interleaved, on one
chat prompt asking for a long object. The mask is computed per sequence per step, in parallel
across sequences like the rest of the sampling.

    python bench/json_mode.py [--model NAME_OR_PATH] [--threads 2] [--seqs 1,16] [--steps 40] [--reps 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

from llmasos import LLM, SamplingParams, _core, store

PROMPT = [{"role": "user", "content": "Write a long JSON object describing ten cats with names, ages, colors "
                                      "and favourite foods."}]


def step_ms(llm, ids, n_seqs, json_mode, n_steps):
    """Median step() time once all n_seqs have their prompt in (distinct seeds, one prompt)."""
    engine = _core.Engine(llm._model, max_batch_tokens=512, max_seqs=n_seqs)
    for i in range(n_seqs):
        opts = SamplingParams(max_tokens=n_steps + 16, temperature=0.8, seed=i, json_object=json_mode).to_core()
        engine.add_request(i, ids, opts)
    for _ in range(3):  # the prompt (cached after the first sequence), then warm-up
        engine.step()
    times = []
    for _ in range(n_steps):
        t0 = time.perf_counter()
        engine.step()
        times.append(time.perf_counter() - t0)
        if not engine.has_unfinished():
            break
    for i in range(n_seqs):
        engine.cancel(i)
    return 1000 * statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=store.DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seqs", default="1,16")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    llm = LLM.from_pretrained(a.model, threads=a.threads, n_ctx=1024)
    ids = llm.chat_prompt_ids(PROMPT)
    counts = [int(s) for s in a.seqs.split(",")]
    res = {(n, j): [] for n in counts for j in (False, True)}
    for _ in range(a.reps):  # interleaved, so host noise hits both modes alike
        for n in counts:
            for j in (False, True):
                res[(n, j)].append(step_ms(llm, ids, n, j, a.steps))
    print(f"model {a.model}, threads {a.threads}, isa {_core.active_isa()}")
    for n in counts:
        free, js = statistics.median(res[(n, False)]), statistics.median(res[(n, True)])
        print(f"{n:3d} sequences: step {free:7.2f} ms free, {js:7.2f} ms JSON mode ({js / free:.3f}x)")


if __name__ == "__main__":
    main()
