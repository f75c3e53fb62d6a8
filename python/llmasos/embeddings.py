"""Embeddings from a decoder model, as llama.cpp computes them: the final-normed hidden states
(what the output head multiplies) of one pass over the input, pooled over its tokens, then
L2-normalized (llama.cpp's and vLLM's default for the OpenAI endpoint)."""
from __future__ import annotations

from typing import List, Optional

POOLINGS = {"mean": 1, "cls": 2, "last": 3}  # GGUF {arch}.pooling_type values


def model_pooling(model) -> str:
    """The GGUF's {arch}.pooling_type when it names one of ours, else mean."""
    arch = model.metadata("general.architecture")
    kind = model.metadata(f"{arch}.pooling_type") if isinstance(arch, str) else None
    for name, value in POOLINGS.items():
        if kind == value:
            return name
    return "mean"


def check_pooling(pooling: Optional[str]) -> None:
    if pooling is not None and pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {sorted(POOLINGS)}, got {pooling!r}")


def pool(hidden, pooling: str, normalize: bool):
    """hidden [T, n_embd] float32 -> [n_embd]: the mean over tokens (in float64, then float32),
    the first token ("cls") or the last; divided by its L2 norm when normalize (a zero vector
    stays zero)."""
    import numpy as np

    if pooling == "mean":
        v = hidden.astype(np.float64).mean(axis=0)
    else:
        v = hidden[0 if pooling == "cls" else -1].astype(np.float64)
    if normalize:
        n = np.linalg.norm(v)
        if n > 0:
            v = v / n
    return v.astype(np.float32)


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
