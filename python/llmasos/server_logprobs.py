"""The logprobs objects of OpenAI responses, from the engine's per-token TokenLogprobs.

Tokens are those whose text the response returns (see engine.StreamDelta): one that lies wholly
inside a stop string the server cut off is not reported. Each token's text is its own piece
(logprobs.TokenPieces): raw UTF-8 bytes, U+FFFD in the text where a piece splits a character."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

from .logprobs import TokenLogprobs, TokenPieces


def completion_logprobs(entries: Sequence[TokenLogprobs], pieces: TokenPieces) -> Dict[str, Any]:
    """Legacy completions: parallel lists; top_logprobs maps text -> logprob for the k most
    likely tokens plus the sampled one (so up to k + 1 entries, as OpenAI and vLLM). Tokens whose
    texts are equal (pieces of characters all show U+FFFD) share a key: the most likely keeps it."""
    tokens, token_logprobs, top, offsets = [], [], [], []
    for e in entries:
        tokens.append(pieces.text(e.token_id))
        token_logprobs.append(e.logprob)
        alts: Dict[str, float] = {}
        for t, lp in e.top:
            alts.setdefault(pieces.text(t), lp)
        alts.setdefault(pieces.text(e.token_id), e.logprob)
        top.append(alts)
        offsets.append(e.text_offset)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top,
            "text_offset": offsets}


def chat_logprobs(entries: Sequence[TokenLogprobs], pieces: TokenPieces) -> Dict[str, List[Any]]:
    """Chat: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}, the
    alternatives most likely first (as many as top_logprobs asked for)."""
    def item(t: int, lp: float) -> Dict[str, Any]:
        b, text = pieces.get(t)
        return {"token": text, "logprob": lp, "bytes": list(b)}

    return {"content": [{**item(e.token_id, e.logprob), "top_logprobs": [item(t, lp) for t, lp in e.top]}
                        for e in entries]}
