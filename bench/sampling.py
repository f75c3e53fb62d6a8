"""What sampling settings cost per engine step: the median decode step of N sequences under greedy
decoding, temperature 0.8, temperature 0.8 with top_p 0.95, llama-cpp-python's defaults (T 0.8,
top_k 40, top_p 0.95, min_p 0.05), JSON mode at temperature 0.8 (its token mask) and a JSON
schema at temperature 0.8 (patterns, bounds, optional properties, a union: the structured outputs'
automaton and mask), a Pydantic-style dict of tuples, and llama.cpp's json.gbnf as a GBNF grammar,
interleaved, on one chat prompt asking for a long JSON object. Sampling runs per sequence after the
forward pass, in parallel across sequences.

    python bench/sampling.py [--model NAME_OR_PATH] [--threads 2] [--seqs 1,16] [--steps 40] [--reps 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from test_grammar import JSON_GBNF  # noqa: E402  (llama.cpp's grammars/json.gbnf)

from llmasos import LLM, SamplingParams, _core, store  # noqa: E402
from llmasos.gbnf import compile_grammar  # noqa: E402
from llmasos.json_schema import compile_schema  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a long JSON object describing ten cats with names, ages, colors "
                                      "and favourite foods."}]
MODES = {
    "greedy": dict(temperature=0.0),
    "T=0.8": dict(temperature=0.8),
    "T=0.8 top_p=0.95": dict(temperature=0.8, top_p=0.95),
    "llama.cpp defaults": dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05),
    "JSON mode T=0.8": dict(temperature=0.8, json_object=True),
    "schema T=0.8": dict(temperature=0.8, json_schema={"type": "object", "properties": {"cats": {
        "type": "array", "items": {"type": "object", "required": ["name", "age"], "properties": {
            "name": {"type": "string", "pattern": "^[A-Z][a-z]+( [A-Z][a-z]+)?$", "maxLength": 40},
            "age": {"type": "integer", "minimum": 0, "maximum": 30},
            "color": {"enum": ["black", "white", "ginger", "tabby", "grey"]},
            "food": {"anyOf": [{"type": "string", "maxLength": 60}, {"type": "array", "items": {"type": "string"}}]},
            "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 15}}}}}}),
    # Dict[str, Tuple[int, Color, Set[Food]]] as Pydantic writes it: a map, a tuple, multipleOf, uniqueItems
    "dict schema T=0.8": dict(temperature=0.8, json_schema={"type": "object", "required": ["cats"], "properties": {
        "cats": {"type": "object", "maxProperties": 10, "propertyNames": {"maxLength": 30}, "additionalProperties": {
            "type": "array", "minItems": 3, "maxItems": 3, "prefixItems": [
                {"type": "integer", "minimum": 0, "maximum": 30, "multipleOf": 1},
                {"enum": ["black", "white", "ginger", "tabby", "grey"]},
                {"type": "array", "uniqueItems": True, "items": {"enum": ["fish", "chicken", "milk", "mice"]}}]}}}}),
    "json.gbnf T=0.8": dict(temperature=0.8, grammar=JSON_GBNF),
}


def step_ms(llm, ids, n_seqs, mode, n_steps):
    """Median step() time once all n_seqs have their prompt in (distinct seeds, one prompt)."""
    engine = _core.Engine(llm._model, max_batch_tokens=512, max_seqs=n_seqs)
    for i in range(n_seqs):
        opts = SamplingParams(max_tokens=n_steps + 16, seed=i, **MODES[mode]).to_core()
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
    for mode in MODES.values():  # compiled once, as the server does per request
        if "json_schema" in mode:
            mode["json_schema"] = compile_schema(mode["json_schema"])
        if "grammar" in mode:
            mode["grammar"] = compile_grammar(mode["grammar"])
    counts = [int(s) for s in a.seqs.split(",")]
    res = {(n, m): [] for n in counts for m in MODES}
    for _ in range(a.reps):  # interleaved, so host noise hits every mode alike
        for n in counts:
            for m in MODES:
                res[(n, m)].append(step_ms(llm, ids, n, m, a.steps))
    print(f"model {a.model}, threads {a.threads}, isa {_core.active_isa()}")
    for n in counts:
        base = statistics.median(res[(n, "greedy")])
        for m in MODES:
            ms = statistics.median(res[(n, m)])
            print(f"{n:3d} sequences, {m:19s}: step {ms:7.2f} ms  ({ms - base:+.2f} ms over greedy)")


if __name__ == "__main__":
    main()
