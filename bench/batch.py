"""Cost of one batched decode step of N sequences against a single-sequence step, on the engine
(continuous batching over the paged KV cache), plus the single-sequence Session decode for scale.
Issue 4 target on a 2-core machine: a 16-sequence decode step costs <= 3x a 1-sequence step.

    python bench/batch.py [--model NAME_OR_PATH] [--threads 2] [--seqs 1,4,16] [--steps 24] [--no-peer]

The same steps on llama.cpp (llama-cpp-python's low-level batch API, when installed) are timed in
the same run, interleaved.
"""
from __future__ import annotations

import argparse
import ctypes
import statistics
import time

from llmasos import LLM, SamplingParams, _core, store


def prompt_ids(seq, prompt_len):
    """Sequence seq's prompt: distinct per sequence (no prefix sharing), of equal length."""
    return [(j * 7919 + seq * 104729) % 20000 + 100 for j in range(prompt_len)]


def decode_step_ms(llm, n_seqs, n_steps, prompt_len=32):
    """Median wall time of a step() in which n_seqs sequences each decode one token."""
    engine = _core.Engine(llm._model, max_batch_tokens=512, max_seqs=max(n_seqs, 1))
    opts = SamplingParams(max_tokens=n_steps + 8, ignore_eos=True).to_core()
    for i in range(n_seqs):
        engine.add_request(i, prompt_ids(i, prompt_len), opts)
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


def first_token_ms(engine, rid, ids):
    """Time from add_request to the request's first token, stepping the engine alone."""
    opts = SamplingParams(max_tokens=1, ignore_eos=True).to_core()
    t0 = time.perf_counter()
    engine.add_request(rid, ids, opts)
    while engine.has_unfinished():
        engine.step()
    return 1000 * (time.perf_counter() - t0)


def prefix_ttft_ms(llm, prefix_len=768, suffix_len=16):
    """First-token time of a prompt whose first prefix_len tokens are cached (another request
    had them) against the same prompt with an empty prefix cache."""
    engine = _core.Engine(llm._model)
    shared = [(j * 7919) % 20000 + 100 for j in range(prefix_len)]
    a = shared + [(j * 31) % 20000 + 100 for j in range(suffix_len)]
    b = shared + [(j * 37) % 20000 + 200 for j in range(suffix_len)]
    cold = first_token_ms(engine, 1, b)
    engine.reset_prefix_cache()
    first_token_ms(engine, 2, a)
    warm = first_token_ms(engine, 3, b)
    return cold, warm, engine.stats()["prefix_hit_rate"]


def session_decode_ms(llm, n_tokens):
    """Per-token time of the single-sequence Session decode: a run of n_tokens + 1 tokens against
    a run of 1, both starting from the same cached prompt (the Session keeps the KV of a prompt
    it has seen, so the first run's prefill is paid once, before either is timed)."""
    ids = [(j * 7919) % 20000 + 100 for j in range(32)]
    p1 = SamplingParams(max_tokens=1, ignore_eos=True)
    pn = SamplingParams(max_tokens=n_tokens + 1, ignore_eos=True)
    llm._run(ids, p1)
    t0 = time.perf_counter()
    llm._run(ids, p1)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    llm._run(ids, pn)
    return 1000 * (time.perf_counter() - t0 - t_one) / n_tokens


def _quiet_log(level, text, user_data):
    pass


_QUIET = None  # llama.cpp's log callback (made on first use: its ctypes type comes with llama_cpp)


def llama_cpp_step_ms(path, n_threads, n_seqs, n_steps, prompt_len=32):
    """The same measurement on llama.cpp (llama-cpp-python's low-level API): median time of one
    llama_decode of n_seqs sequences, each with one new token and its logits, the sequences first
    filled with prompts of the same length. None when llama_cpp is not installed."""
    try:
        import llama_cpp as L
    except ImportError:
        return None
    global _QUIET
    if _QUIET is None:
        _QUIET = L.llama_log_callback(_quiet_log)
    L.llama_log_set(_QUIET, ctypes.c_void_p(0))
    L.llama_backend_init()
    model = L.llama_model_load_from_file(path.encode(), L.llama_model_default_params())
    cp = L.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = 256 * n_seqs, 512, 512, n_seqs
    cp.n_threads = cp.n_threads_batch = n_threads
    ctx = L.llama_init_from_model(model, cp)
    batch = L.llama_batch_init(512, 0, n_seqs)

    def decode(items):  # (token, position, sequence)
        batch.n_tokens = len(items)
        for i, (tok, pos, seq) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = tok, pos, 1, 1
            batch.seq_id[i][0] = seq
        if L.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    try:
        for s in range(n_seqs):  # the prompts decode_step_ms gives the engine
            decode([(tok, j, s) for j, tok in enumerate(prompt_ids(s, prompt_len))])
        times, pos = [], prompt_len
        for k in range(3 + n_steps):  # 3 warm-up steps
            t0 = time.perf_counter()
            decode([(100 + s, pos, s) for s in range(n_seqs)])
            if k >= 3:
                times.append(time.perf_counter() - t0)
            pos += 1
    finally:
        L.llama_batch_free(batch)
        L.llama_free(ctx)
        L.llama_model_free(model)
    return 1000 * statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=store.DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seqs", default="1,4,16")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-peer", action="store_true", help="skip llama.cpp (llama-cpp-python)")
    a = ap.parse_args()
    llm = LLM.from_pretrained(a.model, threads=a.threads, n_ctx=1024)
    counts = [int(s) for s in a.seqs.split(",")]
    if 1 not in counts:
        counts = [1] + counts
    res = {n: [] for n in counts}
    peer = {n: [] for n in counts}
    sess = []
    for _ in range(a.reps):  # interleaved, so a noisy neighbour hits every size alike
        sess.append(session_decode_ms(llm, a.steps))
        for n in counts:
            res[n].append(decode_step_ms(llm, n, a.steps))
            if not a.no_peer:
                peer[n].append(llama_cpp_step_ms(llm.path, a.threads, n, a.steps))
    base = statistics.median(res[1])
    cold, warm, rate = prefix_ttft_ms(llm)
    print(f"model {a.model}, threads {a.threads}, isa {_core.active_isa()}")
    print(f"first token of a 784-token prompt: {cold:7.1f} ms cold, {warm:7.1f} ms with 768 tokens "
          f"in the prefix cache (hit rate {rate:.2f})")
    print(f"session decode (single sequence, C++ loop): {statistics.median(sess):7.2f} ms/token")
    for n in counts:
        ms = statistics.median(res[n])
        print(f"engine decode step, {n:3d} sequences: {ms:7.2f} ms  = {ms / base:5.2f}x one sequence, "
              f"{1000 * n / ms:7.1f} tokens/s")
    # The host's speed drifts over seconds: a ratio within each rep (its 1-sequence and n-sequence
    # steps timed a few seconds apart) is steadier than the ratio of medians taken over all reps.
    for n in counts[1:]:
        per_rep = [r_n / r_1 for r_n, r_1 in zip(res[n], res[1])]
        print(f"  {n:3d} / 1 sequences within each rep: " + ", ".join(f"{r:.2f}x" for r in per_rep) +
              f" (median {statistics.median(per_rep):.2f}x)")
    if peer[1] and None not in peer[1]:
        pbase = statistics.median(peer[1])
        for n in counts:
            ms = statistics.median(peer[n])
            print(f"llama.cpp decode, {n:3d} sequences:   {ms:7.2f} ms  = {ms / pbase:5.2f}x one sequence, "
                  f"{1000 * n / ms:7.1f} tokens/s; llmasos {ms / statistics.median(res[n]):5.2f}x as fast")
        for n in counts[1:]:
            per_rep = [r_n / r_1 for r_n, r_1 in zip(peer[n], peer[1])]
            print(f"  llama.cpp {n:3d} / 1 sequences within each rep: median {statistics.median(per_rep):.2f}x")
    llm.close()


if __name__ == "__main__":
    main()
