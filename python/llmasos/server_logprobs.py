"""The logprobs objects of OpenAI responses, from the engine's per-token TokenLogprobs.

Tokens are those whose text the response returns (see engine.StreamDelta): one that lies wholly
inside a stop string the server cut off is not reported. Each token's text is its own piece
(logprobs.TokenPieces): raw UTF-8 bytes, U+FFFD in the text where a piece splits a character."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from .logprobs import TokenLogprobs, TokenPieces, as_dicts


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


def token_logprobs(entries: Sequence[TokenLogprobs], pieces: TokenPieces, with_ids: bool = False) -> List[Any]:
    """Per token {token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}, the
    alternatives most likely first (as many as asked for); with_ids adds each one's "id"
    (llama-server's completion_probabilities)."""
    def item(t: int, lp: float) -> Dict[str, Any]:
        b, text = pieces.get(t)
        return {**({"id": t} if with_ids else {}), "token": text, "logprob": lp, "bytes": list(b)}

    return [{**item(e.token_id, e.logprob), "top_logprobs": [item(t, lp) for t, lp in e.top]} for e in entries]


def chat_logprobs(entries: Sequence[TokenLogprobs], pieces: TokenPieces) -> Dict[str, List[Any]]:
    """Chat: {"content": token_logprobs(...)}."""
    return {"content": token_logprobs(entries, pieces)}


def prompt_logprobs(llm, ids: Sequence[int], k: int) -> List[Optional[TokenLogprobs]]:
    """The prompt's own tokens for `echo` with `logprobs` (how lm-evaluation-harness scores text):
    token i's log-softmax under the logits after tokens 0..i-1 (one chunked pass, LLM._score: the
    bits the engine computes for those positions), its rank and the k most likely alternatives;
    token 0 has none (None, as OpenAI and vLLM report it). text_offset: where each token's text
    begins in the echoed text."""
    out = llm._score(list(ids), k)
    # Offsets in one pass, as the generated text's: a token whose bytes only complete a character
    # later starts where that character does.
    dec = llm._core().stream_decoder(False)
    pos = 0
    for e, t in zip(out, ids):
        if e is not None:
            e.text_offset = pos
        pos += len(dec.push(int(t)))
    return out


def vllm_prompt_logprobs(entries: Sequence[Optional[TokenLogprobs]], pieces: TokenPieces) -> List[Any]:
    """vLLM's "prompt_logprobs" (a request field there): per prompt token, null for the first,
    then {token id: {"logprob", "rank", "decoded_token"}}, the prompt's own token first, then
    the k most likely (ranks 1..k), as SamplingParams.prompt_logprobs gives them."""
    out: List[Any] = [None]
    for d in as_dicts([e for e in entries if e is not None], pieces):
        out.append({str(t): {"logprob": lp.logprob, "rank": lp.rank, "decoded_token": lp.decoded_token}
                    for t, lp in d.items()})
    return out


def completion_logprobs_echo(prompt: Optional[List[Optional[TokenLogprobs]]], ids: Sequence[int],
                             generated: Sequence[TokenLogprobs], shift: int,
                             pieces: TokenPieces) -> Dict[str, Any]:
    """With echo: the prompt's tokens (prompt_logprobs; the first with null logprob and
    alternatives, offset 0), when given (the first chunk), then the generated ones, whose offsets
    move past the echoed prompt text."""
    gen = completion_logprobs(generated, pieces)
    gen["text_offset"] = [None if o is None else o + shift for o in gen["text_offset"]]
    if prompt is None:
        return gen
    rest = completion_logprobs([e for e in prompt if e is not None], pieces)
    return {"tokens": [pieces.text(ids[0])] + rest["tokens"] + gen["tokens"],
            "token_logprobs": [None] + rest["token_logprobs"] + gen["token_logprobs"],
            "top_logprobs": [None] + rest["top_logprobs"] + gen["top_logprobs"],
            "text_offset": [0] + rest["text_offset"] + gen["text_offset"]}
