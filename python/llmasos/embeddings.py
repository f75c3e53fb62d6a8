"""Embeddings from a decoder model, as llama.cpp computes them: the final-normed hidden states
(what the output head multiplies) of one pass over the input, pooled over its tokens, then
L2-normalized (llama.cpp's and vLLM's default for the OpenAI endpoint). The pooling itself runs in
C++ (Session::embedding), shared with the C API's llmasos_embed."""
from __future__ import annotations

POOLINGS = {"mean": 1, "cls": 2, "last": 3}  # as the GGUF's {arch}.pooling_type numbers them


def pooling_code(pooling) -> int:
    """0 (the model's own: its GGUF pooling_type, else mean) for None, else the named kind's."""
    if pooling is None:
        return 0
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {sorted(POOLINGS)}, got {pooling!r}")
    return POOLINGS[pooling]


def split_inputs(inputs) -> tuple:
    """(list of prompts, single): a str or a token-id list is one input; a list of them is many."""
    if isinstance(inputs, str):
        return [inputs], True
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, int) and not isinstance(t, bool)
                                                            for t in inputs):
        return [list(inputs)], True
    if isinstance(inputs, (list, tuple)) and inputs:
        return list(inputs), False
    raise TypeError("embed() takes a str, a list of token ids, or a non-empty list of those")
