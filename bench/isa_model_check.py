"""A model's outputs under every ISA level this machine supports, compared bit for bit: the logits
of every position of a 300-token prompt (prefill through the tile / VNNI / maddubs kernels), the
greedy text of one prompt alone, and six prompts decoded together (batched products). The test suite
does this on the default model (tests/test_parity.py, tests/test_isa_determinism.py); this takes any
GGUF, for a machine that has levels the test machine lacks. Exit status 1 when a level differs.

    python bench/isa_model_check.py MODEL.gguf [MODEL.gguf ...] [--threads 4] [--levels avx2 amx]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from llmasos import LLM, SamplingParams, _core, using_isa

BATCH = ["The world is", "Water boils at a temperature of",
         "List three colours of the rainbow, then explain in a sentence or two why the sky looks blue "
         "on a clear day and red at sunset, and what the ocean has to do with it:",
         "def fibonacci(n):", "Paris is the capital of", "1, 2, 3, 4,"]


def outputs(llm, prompt_ids):
    logits = llm.logits(prompt_ids)
    alone = llm.generate_text("Once upon a time,", max_tokens=24)
    batched = tuple(o.text for o in llm.generate(BATCH, SamplingParams(max_tokens=12, ignore_eos=True)))
    return logits, alone, batched


def check(path, levels, threads):
    ok = True
    with LLM.from_pretrained(path, n_ctx=512, threads=threads) as llm:
        prompt_ids = [(i * 7919 + 100) % llm.n_vocab for i in range(300)]
        got = {}
        for lv in levels:
            with using_isa(lv):
                got[lv] = outputs(llm, prompt_ids)
    ref_lv = levels[0]
    ref = got[ref_lv]
    for lv in levels:
        logits, alone, batched = got[lv]
        same = logits.tobytes() == ref[0].tobytes()
        diff = float(np.max(np.abs(logits - ref[0])))
        ok &= same and alone == ref[1] and batched == ref[2]
        print(f"  {lv:8} logits {'identical' if same else f'DIFFER (max {diff:.3g})'} to {ref_lv}; "
              f"text alone {'same' if alone == ref[1] else 'DIFFERS'}; "
              f"batch of {len(BATCH)} {'same' if batched == ref[2] else 'DIFFERS'}")
    print(f"  text: {ref[1]!r}")
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--levels", nargs="+", default=None, help="default: every supported level")
    args = p.parse_args()
    levels = args.levels or _core.supported_isas()
    ok = True
    for path in args.models:
        print(f"{path}: levels {levels}, {args.threads} threads")
        ok &= check(path, levels, args.threads)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
