"""Per-token log-probabilities: the core's raw tuples -> Python objects (vLLM's Logprob dicts for
LLM.generate, TokenLogprobs for the server), and each token's text and bytes.

The values are the log-softmax of the model's raw logits at that position (natural log), taken
before logit_bias, penalties and temperature, as vLLM and OpenAI report them."""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

from ._core_loader import _core

MAX_LOGPROBS = _core.SamplingOptions.max_logprobs  # the most alternatives a request may ask for


@dataclasses.dataclass
class Logprob:
    """One token's log-probability, as in vLLM: its rank (1 = most likely) and its text."""

    logprob: float
    rank: Optional[int] = None
    decoded_token: Optional[str] = None


@dataclasses.dataclass
class TokenLogprobs:
    """One sampled token: its logprob and rank, the `top` alternatives (token id, logprob), most
    likely first, and where its text begins in the generated text (characters), when known."""

    token_id: int
    logprob: float
    rank: int
    top: List[Tuple[int, float]]
    text_offset: Optional[int] = None


def from_core(ids: Sequence[int], raw) -> List[TokenLogprobs]:
    """Pairs the sampled ids with the core's (logprob, rank, [(id, logprob), ...]) tuples."""
    return [TokenLogprobs(t, lp, rank, top) for t, (lp, rank, top) in zip(ids, raw)]


class TokenPieces:
    """Each token's bytes and text for logprobs: the token's own piece (a leading space kept,
    special tokens spelled out). A piece that is part of a UTF-8 character keeps its raw bytes
    and shows U+FFFD in its text, as OpenAI and vLLM do. Cached per token id."""

    def __init__(self, model: "_core.Model"):
        self._model = model
        self._cache: Dict[int, Tuple[bytes, str]] = {}

    def get(self, token_id: int) -> Tuple[bytes, str]:
        hit = self._cache.get(token_id)
        if hit is None:
            b = self._model.token_bytes(token_id, True)
            hit = self._cache[token_id] = (b, b.decode("utf-8", errors="replace"))
        return hit

    def text(self, token_id: int) -> str:
        return self.get(token_id)[1]

    def bytes(self, token_id: int) -> bytes:
        return self.get(token_id)[0]


def as_dicts(entries: Sequence[TokenLogprobs], pieces: TokenPieces) -> List[Dict[int, Logprob]]:
    """vLLM's SampleLogprobs: per token, {token id: Logprob}, the sampled token first, then the
    top alternatives (k or k + 1 entries)."""
    out = []
    for e in entries:
        d = {e.token_id: Logprob(e.logprob, e.rank, pieces.text(e.token_id))}
        for rank, (t, lp) in enumerate(e.top, 1):
            if t != e.token_id:
                d[t] = Logprob(lp, rank, pieces.text(t))
        out.append(d)
    return out
