"""Prompt-lookup speculation: single-sequence greedy decode speed with and without it, on a reply
that copies its prompt (a text to repeat word for word) and on free text (a story), for llmasos
(LLM(prompt_lookup=k): Session::generate) and llama-cpp-python (Llama(draft_model=
LlamaPromptLookupDecoding(num_pred_tokens=k))), same GGUF, same threads, one run.

Each measure: the prompt is evaluated once untimed (both keep it cached), then the reply of
--max-tokens tokens is timed, best of --reps; the tokens are checked equal with and without
lookup (llmasos guarantees it; llama.cpp's are compared and reported). Ratios matter, not times.

    python bench/lookup.py [--model NAME_OR_PATH] [--k 4 10] [--max-tokens 128] [--reps 3] [--no-peer]
"""
from __future__ import annotations

import argparse
import time

from llmasos import LLM, SamplingParams, store

PARA = ("It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, his chin "
        "nuzzled into his breast in an effort to escape the vile wind, slipped quickly through the glass doors "
        "of Victory Mansions, though not quickly enough to prevent a swirl of gritty dust from entering along "
        "with him. The hallway smelt of boiled cabbage and old rag mats.")
TASKS = {
    "copy": [{"role": "user", "content": "Repeat this text exactly, word for word:\n\n" + PARA}],
    "story": [{"role": "user", "content": "Write a short story about a lighthouse keeper and a storm."}],
}


def llmasos_run(llm, ids, k, n):
    opts = SamplingParams(max_tokens=n).to_core()
    opts.lookup_tokens = k
    one = SamplingParams(max_tokens=1).to_core()
    llm._session.generate(ids, one, None)  # the prompt, cached
    t0 = time.perf_counter()
    toks, _, _, _, _, drafted, _ = llm._session.generate(ids, opts, None)
    return time.perf_counter() - t0, list(toks), drafted


def engine_run(llm, ids, k, n, engines={}):
    """The batched engine (LLM.generate, the server) with one request: its prompt's full blocks
    come from the prefix cache of a warm-up run; the rest of the prompt is in the time."""
    from llmasos import _core
    eng = engines.get(k) or engines.setdefault(k, _core.Engine(llm._model, lookup_tokens=k))
    opts = SamplingParams(max_tokens=n).to_core()
    toks = []
    for warm in (True, False):
        t0 = time.perf_counter()
        eng.add_request(0, ids, opts)
        toks = []
        while eng.has_unfinished():
            for _, new, _, _, _, _, _ in eng.step():
                toks += new
    return time.perf_counter() - t0, toks, eng.stats()["drafted"]


def llama_cpp_run(lc, text, n):
    lc.create_completion(text, max_tokens=1, temperature=0)  # the prompt, cached
    t0 = time.perf_counter()
    r = lc.create_completion(text, max_tokens=n, temperature=0)
    return time.perf_counter() - t0, r["choices"][0]["text"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--k", type=int, nargs="+", default=[4, 10])
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-peer", action="store_true")
    a = ap.parse_args()
    path = str(store.resolve(a.model))
    llm = LLM.from_pretrained(path, n_ctx=1024, threads=a.threads)
    peers = {}
    if not a.no_peer:
        from llama_cpp import Llama
        from llama_cpp.llama_speculative import LlamaPromptLookupDecoding
        mk = lambda k: Llama(path, n_ctx=1024, n_threads=a.threads, n_threads_batch=a.threads, verbose=False,
                             draft_model=LlamaPromptLookupDecoding(num_pred_tokens=k) if k else None)
        peers = {k: mk(k) for k in [0] + a.k}
    print(f"{a.model}, {a.threads} threads, {a.max_tokens} tokens greedy, best of {a.reps}")
    for task, msgs in TASKS.items():
        ids = llm.chat_prompt_ids(msgs)
        text = llm.detokenize(ids, special=True)
        base = None
        for k in [0] + a.k:
            runs = [llmasos_run(llm, ids, k, a.max_tokens) for _ in range(a.reps)]
            dt, toks, drafted = min(runs)
            if base is None:
                base, base_toks = dt, toks
            same = "same tokens" if toks == base_toks else "DIFFERENT TOKENS"
            line = (f"  {task:5s} llmasos   k={k:2d}: {len(toks) / dt:7.1f} tok/s  x{base / dt:4.2f}  "
                    f"{drafted}/{len(toks)} from drafts, {same}")
            if k in peers:
                pr = [llama_cpp_run(peers[k], text, a.max_tokens) for _ in range(a.reps)]
                pdt, ptext = min(pr)
                if k == 0:
                    pbase, pbase_text = pdt, ptext
                n_peer = len(peers[k].tokenize(ptext.encode(), add_bos=False)) or 1
                psame = "same text" if ptext == pbase_text else "different text"
                line += (f" | llama.cpp {n_peer / pdt:7.1f} tok/s  x{pbase / pdt:4.2f} ({psame}); "
                         f"llmasos {dt and (len(toks) / dt) / (n_peer / pdt):4.2f}x as fast")
            print(line)
        ebase = None
        for k in [0] + a.k:
            dt, toks, drafted = min(engine_run(llm, ids, k, a.max_tokens) for _ in range(a.reps))
            ebase = ebase or dt
            print(f"  {task:5s} engine    k={k:2d}: {len(toks) / dt:7.1f} tok/s  x{ebase / dt:4.2f}  "
                  f"(drafted so far {drafted})")


if __name__ == "__main__":
    main()
