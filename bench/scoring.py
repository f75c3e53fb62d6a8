"""Scoring a text (echo + logprobs, as lm-evaluation-harness's loglikelihood asks): time and peak
memory to get every prompt token's logprob and its k most likely alternatives, for

  llmasos    LLM._score: one pass in chunks, log-softmax and top-k per row in C++, a few rows of
             logits held at a time (what the server's echo and SamplingParams.prompt_logprobs use);
  whole      the earlier way: LLM.logits() for all T rows ([T, n_vocab] float32, copied once into
             numpy), then a float64 log-softmax and top-k per row in numpy;
  llama.cpp  llama-cpp-python's create_completion(echo=True, logprobs=k, max_tokens=1) on a Llama
             made with logits_all=True (its only way to score a prompt), same threads. Its
             values are not comparable: it scores token i under the logits after token i itself
             (llama-cpp-python issue #1983), so its "sum logprob" differs.

Each runs in its own process; peak memory is the resident-set high-water mark above what the
process held once the model was loaded (reset with /proc/self/clear_refs), so loading is left
out. Ratios matter, not absolute times: the machine is shared.

    python bench/scoring.py [--model smollm2-135m-instruct] [--tokens 1000] [--k 5] [--threads 2] [--reps 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS


def prompt_ids(llm, n: int):
    text = " ".join(f"The {i}th line of a long document says something about item {i * 7}." for i in range(n))
    ids = llm.tokenize(text)[:n]
    assert len(ids) == n, "the text is too short for --tokens"
    return ids


def run_one(method: str, model: str, n: int, k: int, threads: int, reps: int) -> dict:
    from llmasos import LLM, store
    path = str(store.resolve(model))
    times = []
    if method == "llama.cpp":
        from llama_cpp import Llama
        ref = LLM.from_pretrained(path, n_ctx=n + 8, threads=threads)
        text = ref.detokenize(prompt_ids(ref, n))  # its echo takes text, not token ids
        ref.close()
        llm = Llama(path, n_ctx=n + 8, n_threads=threads, n_threads_batch=threads, n_batch=512,
                    logits_all=True, verbose=False)
        base = rss_kib("VmRSS")
        reset_peak()
        for _ in range(reps):
            llm.reset()
            t0 = time.perf_counter()
            r = llm.create_completion(text, max_tokens=1, echo=True, logprobs=k, temperature=0)
            times.append(time.perf_counter() - t0)
        lp = r["choices"][0]["logprobs"]
        assert len(lp["tokens"]) >= n, "llama.cpp tokenized the text differently"
        got = lp["token_logprobs"][1:n]  # the prompt's, as the others' (but see the docstring)
    else:
        llm = LLM.from_pretrained(path, n_ctx=n + 8, threads=threads)
        ids = prompt_ids(llm, n)
        base = rss_kib("VmRSS")
        reset_peak()
        for _ in range(reps):
            t0 = time.perf_counter()
            got = score_whole(llm, ids, k) if method == "whole" else [e.logprob for e in llm._score(ids, k)[1:]]
            times.append(time.perf_counter() - t0)
    return {"method": method, "seconds": statistics.median(times),
            "peak_mib": (rss_kib("VmHWM") - base) / 1024, "sum_logprob": float(sum(got))}


def score_whole(llm, ids, k):
    """The earlier server code: all logits at once, then numpy per row."""
    import numpy as np
    logits = llm.logits(ids)
    out = []
    for i in range(1, len(ids)):
        row, t = logits[i - 1].astype(np.float64), ids[i]
        mx = row.max()
        row -= mx + np.log(np.exp(row - mx).sum())
        top = np.argpartition(-row, k - 1)[:k]
        sorted(((int(j), float(row[j])) for j in top), key=lambda a: (-a[1], a[0]))
        1 + int((row > row[t]).sum())
        out.append(float(row[t]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--methods", default="llmasos,whole,llama.cpp")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a child process: run this method only
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_one(a.one, a.model, a.tokens, a.k, a.threads, a.reps)))
        return
    rows = []
    for m in a.methods.split(","):
        cmd = [sys.executable, __file__, "--one", m, "--model", a.model, "--tokens", str(a.tokens),
               "--k", str(a.k), "--threads", str(a.threads), "--reps", str(a.reps)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{m}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"scoring {a.tokens} tokens of {a.model}, k={a.k}, {a.threads} threads (median of {a.reps})")
    first = rows[0]["seconds"] if rows else 1.0
    for r in rows:
        print(f"  {r['method']:10s} {r['seconds'] * 1000:9.1f} ms  x{r['seconds'] / first:5.2f}  "
              f"peak +{r['peak_mib']:8.1f} MiB  sum logprob {r['sum_logprob']:.3f}")


if __name__ == "__main__":
    main()
