"""GBNF grammars: greedy decode time per token with a grammar against without one, for llmasos
(SamplingParams(grammar=...), the single-sequence session) and llama-cpp-python (create_completion
(grammar=LlamaGrammar.from_string(...))), same GGUF, same threads, one run. Also whether the two
give the same text under the grammar (not required: their logits differ in rounding).

Each measure: the prompt is evaluated once untimed (both keep it cached), then the reply is timed,
best of --reps; the time is per generated token (a grammar may end the reply early). Ratios matter,
not times.

    python bench/grammar.py [--model NAME_OR_PATH] [--max-tokens 96] [--reps 3] [--no-peer]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from test_grammar import JSON_GBNF  # noqa: E402  (llama.cpp's grammars/json.gbnf)

from llmasos import LLM, SamplingParams, store  # noqa: E402
from llmasos.gbnf import compile_grammar  # noqa: E402

GRAMMARS = {
    "json": (JSON_GBNF, "Describe a cat as a JSON object with many fields:"),
    "list": ('root ::= ("- " item "\\n")+\nitem ::= [A-Z] [a-z ,]+', "A long list of animals:\n"),
    "free": ('root ::= [^\\n]+ "\\n"', "Write a long sentence about the sea:"),
}


def llmasos_run(llm, ids, grammar, n):
    opts = SamplingParams(max_tokens=n, grammar=grammar, ignore_eos=grammar is None).to_core()
    llm._session.generate(ids, SamplingParams(max_tokens=1).to_core(), None)  # the prompt, cached
    t0 = time.perf_counter()
    toks = llm._session.generate(ids, opts, None)[0]
    return (time.perf_counter() - t0) / max(len(toks), 1), llm.detokenize(list(toks))


def llama_cpp_run(lc, text, grammar, n):
    lc.create_completion(text, max_tokens=1, temperature=0)  # the prompt, cached
    t0 = time.perf_counter()
    r = lc.create_completion(text, max_tokens=n, temperature=0, grammar=grammar)
    dt = time.perf_counter() - t0
    return dt / max(r["usage"]["completion_tokens"], 1), r["choices"][0]["text"]


def best(fn, reps):
    runs = [fn() for _ in range(reps)]
    return min(r[0] for r in runs), runs[0][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    path = str(store.resolve(args.model))
    llm = LLM.from_pretrained(path, threads=args.threads, n_ctx=1024)
    lc = None
    if not args.no_peer:
        try:
            import llama_cpp
            with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
                lc = llama_cpp.Llama(path, n_ctx=1024, n_threads=args.threads, verbose=False)
        except ImportError:
            print("llama-cpp-python is not installed: llmasos only")
    print(f"model {args.model}, threads {args.threads}, up to {args.max_tokens} tokens, best of {args.reps}")
    for name, (text, prompt) in GRAMMARS.items():
        g = compile_grammar(text)
        ids = llm.tokenize(prompt)
        base, _ = best(lambda: llmasos_run(llm, ids, None, args.max_tokens), args.reps)
        with_g, out = best(lambda: llmasos_run(llm, ids, g, args.max_tokens), args.reps)
        line = (f"{name:5s} llmasos {1000 * base:6.2f} -> {1000 * with_g:6.2f} ms/token "
                f"(x{with_g / base:.2f})")
        if lc is not None:
            import llama_cpp
            lg = llama_cpp.LlamaGrammar.from_string(text, verbose=False)
            lbase, _ = best(lambda: llama_cpp_run(lc, prompt, None, args.max_tokens), args.reps)
            lwith, lout = best(lambda: llama_cpp_run(lc, prompt, lg, args.max_tokens), args.reps)
            line += (f" | llama.cpp {1000 * lbase:6.2f} -> {1000 * lwith:6.2f} ms/token (x{lwith / lbase:.2f})"
                     f" | with the grammar llmasos is {lwith / with_g:.2f}x as fast; same text: {out == lout}")
        print(line)
        print(f"      llmasos: {out[:90]!r}")


if __name__ == "__main__":
    main()
