"""One engine x model measurement in a process of its own (run by bench/run.py), so its load time and
peak resident memory are its own: prints one JSON object with load time, prefill and decode tokens/s,
Python overhead per decode step (llmasos), KV cache bytes and VmHWM after filling the context.

    python bench/engine_worker.py {llmasos|llama-cpp-python} MODEL.gguf --threads 2 --prefill 128,512 --decode 128
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def vm_kib(field: str) -> int:
    """A VmRSS / VmHWM line of /proc/self/status in KiB (ru_maxrss where /proc is absent)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def prompt_ids(n: int, salt: int = 0):
    """n ordinary token ids (no BOS/EOS), distinct per salt so no prompt shares a prefix."""
    return [(i * 7919 + salt * 104729) % 10000 + 100 for i in range(n)]


class TimedEngine:
    """Stands in for the _core.Engine inside LLM: times every step() (the one call into C++ per
    decode step), so wall time minus the steps' time is what Python spends around them."""

    def __init__(self, engine):
        self._engine = engine
        self.inside = 0.0
        self.steps = 0

    def step(self):
        t0 = time.perf_counter()
        out = self._engine.step()
        self.inside += time.perf_counter() - t0
        self.steps += 1
        return out

    def __getattr__(self, name):
        return getattr(self._engine, name)


def bench_llmasos(path, threads, n_ctx, prefills, n_decode, reps, fill):
    from llmasos import LLM, SamplingParams

    def forget(llm):  # as bench/decode_prefill.py: every repetition computes its prompt again
        llm._session.reset()
        llm._get_engine().reset_prefix_cache()

    def gen(llm, ids, n):
        forget(llm)
        t0 = time.perf_counter()
        out = llm.generate([ids], SamplingParams(max_tokens=n, ignore_eos=True))[0]
        assert len(out.token_ids) == n, (len(out.token_ids), n)
        return time.perf_counter() - t0

    rss0 = vm_kib("VmRSS")
    t0 = time.perf_counter()
    llm = LLM.from_pretrained(path, threads=threads, n_ctx=n_ctx)  # what `llmasos serve --n-ctx` does
    load_s = time.perf_counter() - t0
    rss1 = vm_kib("VmRSS")
    gen(llm, prompt_ids(8), 2)  # warm up (and create the engine)
    st = llm._engine.stats()
    kv_per_token = st["kv_cache_bytes"] / (st["blocks_total"] * st["block_tokens"])
    res = {"load_s": load_s, "rss_before_load_kib": rss0, "rss_after_load_kib": rss1, "prefill": {},
           "kv_bytes_per_token": kv_per_token,
           "kv_bytes_ctx": kv_per_token * n_ctx, "kv_source": "Engine.stats(): kv_cache_bytes / pool positions"}
    for n in prefills:
        res["prefill"][str(n)] = statistics.median(n / gen(llm, prompt_ids(n, 1), 1) for _ in range(reps))
    short = prompt_ids(8, 2)
    dec, overhead, per_step = [], [], []
    for _ in range(reps if n_decode else 0):
        t_prompt = gen(llm, short, 1)
        timed = TimedEngine(llm._engine)
        llm._engine = timed
        try:
            wall = gen(llm, short, n_decode + 1)
        finally:
            llm._engine = timed._engine
        dec.append(n_decode / (wall - t_prompt))
        overhead.append((wall - timed.inside) / wall)
        per_step.append((wall - timed.inside) / timed.steps)
    if dec:
        res["decode"] = statistics.median(dec)
        res["python_overhead_fraction"] = statistics.median(overhead)
        res["python_overhead_us_per_step"] = 1e6 * statistics.median(per_step)
    if fill:  # serve one request that fills the whole context
        gen(llm, prompt_ids(n_ctx - fill, 3), fill)
    res["filled_tokens"] = n_ctx if fill else 0
    llm.close()
    return res


def bench_llama_cpp(path, threads, n_ctx, prefills, n_decode, reps, fill):
    from llama_cpp import Llama

    rss0 = vm_kib("VmRSS")
    t0 = time.perf_counter()
    llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                n_batch=512, verbose=False)
    load_s = time.perf_counter() - t0
    res = {"load_s": load_s, "rss_before_load_kib": rss0, "rss_after_load_kib": vm_kib("VmRSS"), "prefill": {}}
    llm.eval(prompt_ids(8))  # warm up
    for n in prefills:
        rates = []
        for _ in range(reps):
            llm.reset()
            ids = prompt_ids(n, 1)
            t0 = time.perf_counter()
            llm.eval(ids)
            rates.append(n / (time.perf_counter() - t0))
        res["prefill"][str(n)] = statistics.median(rates)

    def decode(ids, n):  # greedy, one eval() per token, as bench/decode_prefill.py
        llm.reset()
        llm.eval(ids)
        tok = int(llm.scores[llm.n_tokens - 1].argmax())
        t0 = time.perf_counter()
        for _ in range(n):
            llm.eval([tok])
            tok = int(llm.scores[llm.n_tokens - 1].argmax())
        return time.perf_counter() - t0

    if n_decode:
        res["decode"] = statistics.median(n_decode / decode(prompt_ids(8, 2), n_decode) for _ in range(reps))
    if fill:  # one token at a time past the prompt (scores past n_batch rows are not kept: no argmax)
        ids = prompt_ids(n_ctx, 3)
        llm.reset()
        llm.eval(ids[:n_ctx - fill])
        for t in ids[n_ctx - fill:]:
            llm.eval([t])
    res["filled_tokens"] = n_ctx if fill else 0
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("engine", choices=["llmasos", "llama-cpp-python"])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--prefill", default="128,512", help="prompt lengths ('' for none)")
    ap.add_argument("--decode", type=int, default=128, help="tokens to decode (0: skip)")
    ap.add_argument("--reps", type=int, default=1, help="repetitions inside this process (median)")
    ap.add_argument("--fill", type=int, default=0,
                    help="at the end, serve a request of n_ctx - FILL prompt tokens and FILL generated "
                         "ones, so the peak memory is that of a full context (0: skip)")
    a = ap.parse_args()
    prefills = [int(s) for s in a.prefill.split(",") if s]
    fn = bench_llmasos if a.engine == "llmasos" else bench_llama_cpp
    res = fn(a.model, a.threads, a.n_ctx, prefills, a.decode, a.reps, a.fill)
    res.update(engine=a.engine, model=os.path.abspath(a.model), file_bytes=os.path.getsize(a.model),
               threads=a.threads, n_ctx=a.n_ctx, peak_rss_kib=vm_kib("VmHWM"))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
